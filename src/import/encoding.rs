//! An input's text encoding: the WHATWG label given with `--encoding`
//! (UTF-8 by default), or a byte-order mark at the start of the input,
//! which wins whatever the flag says (UTF-8, UTF-16LE, UTF-16BE).
//!
//! UTF-8 passes through as bytes: a record that is not valid UTF-8 is
//! rejected on its own, the records around it are read as usual. Any other
//! encoding is decoded to UTF-8 as it streams, by `encoding_rs` (through
//! `encoding_rs_io`). Stored values are UTF-8; rejected records go back out
//! in the input's encoding ([`encode`]), so that `rejects export --as-input`
//! of a Windows-1252 file is Windows-1252 again, byte for byte.

use std::borrow::Cow;
use std::io::{self, BufRead, BufReader, Cursor, Read};

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE};
use encoding_rs_io::DecodeReaderBytesBuilder;

/// The encoding of a WHATWG label (`utf-8`, `windows-1252`, `latin1`,
/// `iso-8859-15`, `utf-16le`, `shift_jis`, ...), or a message naming some.
pub fn parse_label(label: &str) -> Result<&'static Encoding, String> {
    match Encoding::for_label(label.trim().as_bytes()) {
        // The "replacement" encoding decodes every input to one U+FFFD.
        Some(encoding) if encoding != encoding_rs::REPLACEMENT => Ok(encoding),
        _ => Err(format!(
            "unknown encoding {label:?}: give a WHATWG label such as utf-8, windows-1252, iso-8859-1, \
             iso-8859-15, utf-16le, utf-16be, shift_jis or gb18030"
        )),
    }
}

/// The encoding a stored name (from [`Encoding::name`]) stands for.
pub fn by_name(name: &str) -> Option<&'static Encoding> {
    Encoding::for_label(name.as_bytes())
}

/// An input as UTF-8 bytes, and what it was.
pub struct Decoded {
    pub reader: Box<dyn BufRead + Send>,
    pub encoding: &'static Encoding,
    /// Whether the input began with a byte-order mark (left out of `reader`).
    pub bom: bool,
}

/// Reads `input` as `requested` (UTF-8 when `None`) unless it begins with a
/// byte-order mark, which decides instead; the mark itself is skipped.
pub fn decode(mut input: Box<dyn BufRead + Send>, requested: Option<&'static Encoding>) -> io::Result<Decoded> {
    // The longest mark is 3 bytes; a short first read must not hide one.
    let mut start = Vec::with_capacity(3);
    while start.len() < 3 {
        let available = input.fill_buf()?;
        if available.is_empty() {
            break;
        }
        let take = available.len().min(3 - start.len());
        start.extend_from_slice(&available[..take]);
        input.consume(take);
    }
    let (encoding, bom_length) = match Encoding::for_bom(&start) {
        Some((encoding, length)) => (encoding, length),
        None => (requested.unwrap_or(UTF_8), 0),
    };
    let rest: Box<dyn BufRead + Send> = Box::new(Cursor::new(start[bom_length..].to_vec()).chain(input));
    let reader: Box<dyn BufRead + Send> = if encoding == UTF_8 {
        rest
    } else {
        let decoder = DecodeReaderBytesBuilder::new().encoding(Some(encoding)).build(rest);
        Box::new(BufReader::with_capacity(1 << 18, decoder))
    };
    Ok(Decoded {
        reader,
        encoding,
        bom: bom_length > 0,
    })
}

/// `text` in `encoding` (every character of a text decoded from it maps back).
pub fn encode<'a>(text: &'a str, encoding: &'static Encoding) -> Cow<'a, [u8]> {
    // encoding_rs encodes to UTF-16 no more than browsers do: by hand.
    if encoding == UTF_16LE {
        Cow::Owned(text.encode_utf16().flat_map(u16::to_le_bytes).collect())
    } else if encoding == UTF_16BE {
        Cow::Owned(text.encode_utf16().flat_map(u16::to_be_bytes).collect())
    } else {
        encoding.encode(text).0
    }
}

/// The byte-order mark of `encoding`, for an output that had one.
pub fn bom(encoding: &'static Encoding) -> &'static [u8] {
    if encoding == UTF_8 {
        b"\xEF\xBB\xBF"
    } else if encoding == UTF_16LE {
        b"\xFF\xFE"
    } else if encoding == UTF_16BE {
        b"\xFE\xFF"
    } else {
        b""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8], requested: Option<&'static Encoding>) -> (String, &'static str, bool) {
        let input: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(1, Cursor::new(bytes.to_vec())));
        let mut decoded = decode(input, requested).unwrap();
        let mut text = Vec::new();
        decoded.reader.read_to_end(&mut text).unwrap();
        (String::from_utf8(text).unwrap(), decoded.encoding.name(), decoded.bom)
    }

    #[test]
    fn labels_are_whatwg_labels() {
        assert_eq!(parse_label("windows-1252").unwrap().name(), "windows-1252");
        // WHATWG reads Latin-1 as Windows-1252, as browsers do.
        assert_eq!(parse_label("ISO-8859-1").unwrap().name(), "windows-1252");
        assert_eq!(parse_label("l9").unwrap().name(), "ISO-8859-15");
        assert_eq!(parse_label(" utf-16 ").unwrap().name(), "UTF-16LE");
        assert!(parse_label("klingon").unwrap_err().contains("windows-1252"));
        assert!(parse_label("iso-2022-kr").is_err());
    }

    #[test]
    fn windows_1252_is_decoded_and_encoded_back_byte_for_byte() {
        let bytes = b"Carte \xE9mise \xE0 Z\xFCrich \x96 5\x80 \x81\n";
        let (text, name, bom) = read_all(bytes, Some(parse_label("windows-1252").unwrap()));
        assert_eq!(text, "Carte émise à Zürich – 5€ \u{81}\n");
        assert_eq!((name, bom), ("windows-1252", false));
        assert_eq!(&*encode(&text, parse_label("windows-1252").unwrap()), bytes);
    }

    #[test]
    fn a_byte_order_mark_wins_over_the_flag() {
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend("é,1\n".encode_utf16().flat_map(u16::to_le_bytes));
        let (text, name, bom) = read_all(&utf16, Some(parse_label("windows-1252").unwrap()));
        assert_eq!((text.as_str(), name, bom), ("é,1\n", "UTF-16LE", true));
        assert_eq!(&*encode("é,1\n", UTF_16LE), &utf16[2..]);
        let (text, name, bom) = read_all("\u{feff}é".as_bytes(), Some(parse_label("windows-1252").unwrap()));
        assert_eq!((text.as_str(), name, bom), ("é", "UTF-8", true));
    }

    #[test]
    fn utf_8_passes_through_unchecked_and_short_inputs_are_whole() {
        let (text, name, bom) = read_all(b"a", None);
        assert_eq!((text.as_str(), name, bom), ("a", "UTF-8", false));
        let input: Box<dyn BufRead + Send> = Box::new(Cursor::new(b"ok,\xFF\n".to_vec()));
        let mut decoded = decode(input, None).unwrap();
        let mut bytes = Vec::new();
        decoded.reader.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, b"ok,\xFF\n", "bad UTF-8 is left for the record's own verdict");
    }
}
