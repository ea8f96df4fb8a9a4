//! Splitting an input into raw records with bounded memory.
//!
//! A record is one line, or for CSV several lines while a quoted field is
//! open. Its bytes are held only up to the record cap (`--max-record-bytes`),
//! so one enormous line or a quote that never closes can not fill memory:
//!
//! - a record that passes the cap is cut there; the rest of the line it
//!   passed the cap on is skipped (counted, not held) and reading resumes at
//!   the next line;
//! - a quoted field still open at the end of the input, or when the record
//!   passes the cap, ends the record at the line where the quote opened, and
//!   reading resumes at the line after it: the lines read past it are read
//!   again (they are held, so at most one cap's worth), and every later
//!   record gets its own verdict.
//!
//! Quotes follow the CSV rules of `csv-core` (which parses the fields of a
//! complete record afterwards), with the input's delimiter and quote
//! character (`,` and `"` unless `--delimiter` and `--quote` say otherwise):
//! a quote opens a quoted field only at the start of a field, two quotes
//! inside one are a quote, and a quote followed by anything else closes it.

use std::io::{self, BufRead};

use memchr::memchr;

/// How a raw record ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// At a line end outside quotes, or at the end of the input.
    Complete,
    /// A quoted field opened on `opened_line` was never closed: the record
    /// runs through that line only.
    OpenQuote { opened_line: u64 },
    /// The record passed the cap; `bytes` holds its first `cap` bytes.
    /// `total_bytes` counts it through the end of the line it passed the
    /// cap on. `open_quote` is the line of a quote still open there.
    OverCap { total_bytes: u64, open_quote: Option<u64> },
}

/// One raw record, borrowed from the splitter until the next call.
#[derive(Debug, PartialEq, Eq)]
pub struct RawRecord<'a> {
    /// 1-based line where the record starts.
    pub line: u64,
    /// The record as it appeared, without its final line end (cut at the cap for `OverCap`).
    pub bytes: &'a [u8],
    pub ending: Ending,
}

/// Where the quote scan stands at the end of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuoteState {
    /// At the start of a field (a `"` here opens a quoted field).
    FieldStart,
    /// Inside an unquoted field.
    InField,
    /// Inside a quoted field.
    Quoted,
    /// Just after a `"` inside a quoted field: `""` or the closing quote.
    QuoteInQuoted,
}

impl QuoteState {
    /// The state after `bytes`, starting from `self`, and whether the quoted
    /// field open at the end (if one is) was opened within `bytes`.
    fn after(mut self, bytes: &[u8], dialect: Dialect) -> (QuoteState, bool) {
        let mut opened_here = false;
        let Dialect { delimiter, quote } = dialect;
        for &byte in bytes {
            self = match self {
                QuoteState::FieldStart if byte == quote => {
                    opened_here = true;
                    QuoteState::Quoted
                }
                QuoteState::FieldStart | QuoteState::InField if byte == delimiter => QuoteState::FieldStart,
                QuoteState::FieldStart | QuoteState::InField => QuoteState::InField,
                QuoteState::Quoted if byte == quote => QuoteState::QuoteInQuoted,
                QuoteState::Quoted => QuoteState::Quoted,
                QuoteState::QuoteInQuoted if byte == quote => QuoteState::Quoted,
                QuoteState::QuoteInQuoted if byte == delimiter => QuoteState::FieldStart,
                QuoteState::QuoteInQuoted => QuoteState::InField,
            };
        }
        (self, opened_here && self == QuoteState::Quoted)
    }

    /// True when a line end here belongs to a quoted field.
    fn is_quoted(self) -> bool {
        self == QuoteState::Quoted
    }
}

/// A CSV file's delimiter and quote character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    pub delimiter: u8,
    pub quote: u8,
}

impl Default for Dialect {
    fn default() -> Self {
        Dialect {
            delimiter: b',',
            quote: b'"',
        }
    }
}

/// How reading one line ended.
enum LineEnd {
    Newline,
    EndOfInput,
    /// The record reached the cap before the line ended; the rest of the line is unread.
    Cap,
}

/// Bytes to read again, then the underlying reader.
struct Refeed<R> {
    pending: Vec<u8>,
    position: usize,
    inner: R,
}

impl<R: BufRead> Refeed<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.position < self.pending.len() {
            return Ok(&self.pending[self.position..]);
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        if self.position < self.pending.len() {
            self.position += amount;
            if self.position == self.pending.len() {
                self.pending = Vec::new();
                self.position = 0;
            }
        } else {
            self.inner.consume(amount);
        }
    }

    /// Puts `bytes` in front of whatever is still unread.
    fn unread(&mut self, bytes: &[u8]) {
        let mut pending = Vec::with_capacity(bytes.len() + self.pending.len() - self.position);
        pending.extend_from_slice(bytes);
        pending.extend_from_slice(&self.pending[self.position..]);
        self.pending = pending;
        self.position = 0;
    }
}

/// Splits an input into raw records, holding at most `cap` bytes of one.
pub struct RecordSplitter<R> {
    input: Refeed<R>,
    /// CSV: a quoted field may span lines. JSON lines: every line is a record.
    csv_quotes: bool,
    dialect: Dialect,
    /// Whether the last complete record's line ended with CR LF.
    crlf: bool,
    cap: usize,
    /// Lines read through their end so far.
    lines_done: u64,
    /// The current record's bytes, line ends included.
    held: Vec<u8>,
    /// Where each of the current record's lines starts in `held`.
    line_starts: Vec<usize>,
}

impl<R: BufRead> RecordSplitter<R> {
    /// A splitter over `input` (UTF-8; a byte-order mark is the decoder's
    /// to skip), with CSV's quoted line ends (`csv_quotes`) in `dialect`.
    pub fn new(input: R, csv_quotes: bool, dialect: Dialect, cap: usize) -> Self {
        RecordSplitter {
            input: Refeed {
                pending: Vec::new(),
                position: 0,
                inner: input,
            },
            csv_quotes,
            dialect,
            crlf: false,
            cap: cap.max(1),
            lines_done: 0,
            held: Vec::new(),
            line_starts: Vec::new(),
        }
    }

    /// Reads the records after this with `dialect` (once the header told it).
    pub fn set_dialect(&mut self, dialect: Dialect) {
        self.dialect = dialect;
    }

    /// Skips `lines` lines (title lines before a header), without holding
    /// them; they count for the line numbers after.
    pub fn skip_lines(&mut self, lines: u64) -> io::Result<()> {
        for _ in 0..lines {
            let (_, newline) = self.skip_line()?;
            if !newline {
                break;
            }
            self.lines_done += 1;
        }
        Ok(())
    }

    /// Whether the last complete record's (last) line ended with CR LF.
    pub fn ended_with_crlf(&self) -> bool {
        self.crlf
    }

    /// The next record, or `None` at the end of the input. Blank lines are
    /// not records (for JSON lines, neither are lines of white space).
    pub fn next_record(&mut self) -> io::Result<Option<RawRecord<'_>>> {
        self.held.clear();
        self.line_starts.clear();
        let mut first_line = self.lines_done + 1;
        let mut state = QuoteState::FieldStart;
        let mut quote_opened = first_line;
        loop {
            let line = self.lines_done + 1;
            let start = self.held.len();
            self.line_starts.push(start);
            let end = self.read_line()?;
            if matches!(end, LineEnd::Newline) {
                self.lines_done += 1;
            }
            let content = trim_line_end(&self.held[start..]);
            if start == 0 && !matches!(end, LineEnd::Cap) && self.is_blank(content) {
                if matches!(end, LineEnd::EndOfInput) {
                    return Ok(None);
                }
                self.held.clear();
                self.line_starts.clear();
                first_line = self.lines_done + 1;
                continue;
            }
            if self.csv_quotes && (state.is_quoted() || memchr(self.dialect.quote, content).is_some()) {
                let (after, opened_here) = state.after(content, self.dialect);
                if opened_here {
                    quote_opened = line;
                }
                state = after;
            }
            let quoted = state.is_quoted();
            match end {
                LineEnd::Newline if quoted => {}
                LineEnd::Newline | LineEnd::EndOfInput if !quoted => {
                    self.crlf = self.held.ends_with(b"\r\n");
                    return Ok(Some(RawRecord {
                        line: first_line,
                        bytes: trim_line_end(&self.held),
                        ending: Ending::Complete,
                    }));
                }
                LineEnd::Newline | LineEnd::EndOfInput => {
                    let ending = Ending::OpenQuote {
                        opened_line: quote_opened,
                    };
                    return Ok(Some(self.end_after_line(first_line, quote_opened, ending)));
                }
                LineEnd::Cap if quoted && quote_opened < line => {
                    let ending = Ending::OverCap {
                        total_bytes: self.held.len() as u64,
                        open_quote: Some(quote_opened),
                    };
                    return Ok(Some(self.end_after_line(first_line, quote_opened, ending)));
                }
                LineEnd::Cap => {
                    let (skipped, newline) = self.skip_line()?;
                    if newline {
                        self.lines_done += 1;
                    }
                    return Ok(Some(RawRecord {
                        line: first_line,
                        bytes: &self.held,
                        ending: Ending::OverCap {
                            total_bytes: self.held.len() as u64 + skipped,
                            open_quote: quoted.then_some(quote_opened),
                        },
                    }));
                }
            }
        }
    }

    /// Lines read so far through their end.
    pub fn lines_read(&self) -> u64 {
        self.lines_done
    }

    /// Ends the record (which started on `first_line`) after `last_line`,
    /// where an unclosed quote opened, and puts the lines held after it back
    /// to be read again.
    fn end_after_line(&mut self, first_line: u64, last_line: u64, ending: Ending) -> RawRecord<'_> {
        let next_line_index = (last_line - first_line + 1) as usize;
        let cut = self
            .line_starts
            .get(next_line_index)
            .copied()
            .unwrap_or(self.held.len());
        self.input.unread(&self.held[cut..]);
        self.lines_done = last_line;
        self.held.truncate(cut);
        RawRecord {
            line: first_line,
            bytes: trim_line_end(&self.held),
            ending,
        }
    }

    fn is_blank(&self, line: &[u8]) -> bool {
        if self.csv_quotes {
            line.iter().all(|&b| b == b'\r')
        } else {
            line.iter().all(u8::is_ascii_whitespace)
        }
    }

    /// Appends one line (with its `\n`) to `held`, stopping when the record
    /// would pass the cap (a line end may follow the cap's last byte).
    fn read_line(&mut self) -> io::Result<LineEnd> {
        loop {
            let room = self.cap.saturating_sub(self.held.len());
            let chunk = self.input.fill_buf()?;
            if chunk.is_empty() {
                return Ok(LineEnd::EndOfInput);
            }
            let (take, end) = match memchr(b'\n', chunk) {
                Some(newline) if newline <= room => (newline + 1, Some(LineEnd::Newline)),
                _ if chunk.len() > room => (room, Some(LineEnd::Cap)),
                _ => (chunk.len(), None),
            };
            self.held.extend_from_slice(&chunk[..take]);
            self.input.consume(take);
            if let Some(end) = end {
                return Ok(end);
            }
        }
    }

    /// Skips the rest of the current line without holding it; returns the
    /// bytes skipped (its `\n` not counted) and whether a `\n` ended it.
    fn skip_line(&mut self) -> io::Result<(u64, bool)> {
        let mut skipped = 0u64;
        loop {
            let chunk = self.input.fill_buf()?;
            if chunk.is_empty() {
                return Ok((skipped, false));
            }
            match memchr(b'\n', chunk) {
                Some(newline) => {
                    self.input.consume(newline + 1);
                    return Ok((skipped + newline as u64, true));
                }
                None => {
                    let length = chunk.len();
                    self.input.consume(length);
                    skipped += length as u64;
                }
            }
        }
    }
}

/// `bytes` without a final `\n` or `\r\n`.
fn trim_line_end(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    bytes.strip_suffix(b"\r").unwrap_or(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (line, text, ending) of every record of `input`.
    fn split(input: &str, csv: bool, cap: usize) -> Vec<(u64, String, Ending)> {
        // A tiny buffer, so that records and line ends straddle reads.
        let reader = io::BufReader::with_capacity(3, input.as_bytes());
        let mut splitter = RecordSplitter::new(reader, csv, Dialect::default(), cap);
        let mut out = Vec::new();
        while let Some(record) = splitter.next_record().unwrap() {
            out.push((
                record.line,
                String::from_utf8_lossy(record.bytes).into_owned(),
                record.ending,
            ));
        }
        out
    }

    fn complete(line: u64, text: &str) -> (u64, String, Ending) {
        (line, text.to_string(), Ending::Complete)
    }

    #[test]
    fn lines_blank_lines_crlf_and_quoted_line_ends() {
        let input = "h1,h2\r\n\r\na,\"x\r\ny\"\r\nb,\"q\"\"\"\n\nc,d";
        assert_eq!(
            split(input, true, 1024),
            [
                complete(1, "h1,h2"),
                complete(3, "a,\"x\r\ny\""),
                complete(5, "b,\"q\"\"\""),
                complete(7, "c,d"),
            ]
        );
    }

    #[test]
    fn a_quote_inside_an_unquoted_field_is_just_a_character() {
        assert_eq!(
            split("a,b\"c\nd,e\n", true, 1024),
            [complete(1, "a,b\"c"), complete(2, "d,e")]
        );
        // A quote closed and followed by more text leaves the field unquoted.
        assert_eq!(
            split("\"a\"b,\"c\nd\"\ne\n", true, 1024),
            [complete(1, "\"a\"b,\"c\nd\""), complete(3, "e")]
        );
    }

    #[test]
    fn an_open_quote_ends_its_record_at_the_line_where_it_opened() {
        let input = "h\nr1\nr2,\"never closed\nr3\nr4\n";
        assert_eq!(
            split(input, true, 1024),
            [
                complete(1, "h"),
                complete(2, "r1"),
                (3, "r2,\"never closed".into(), Ending::OpenQuote { opened_line: 3 }),
                complete(4, "r3"),
                complete(5, "r4"),
            ]
        );
        // Opened on the second line of a record that spans lines.
        let input = "\"a\nb\",\"c\nd\ne\n";
        assert_eq!(
            split(input, true, 1024),
            [
                (1, "\"a\nb\",\"c".into(), Ending::OpenQuote { opened_line: 2 }),
                complete(3, "d"),
                complete(4, "e"),
            ]
        );
    }

    #[test]
    fn a_record_past_the_cap_is_cut_and_the_rest_of_its_line_skipped() {
        let input = format!("h\n{}\nnext\n", "x".repeat(50));
        assert_eq!(
            split(&input, true, 10),
            [
                complete(1, "h"),
                (
                    2,
                    "x".repeat(10),
                    Ending::OverCap {
                        total_bytes: 50,
                        open_quote: None
                    }
                ),
                complete(3, "next"),
            ]
        );
        // A record of exactly the cap fits.
        assert_eq!(split("abcde\n", true, 5), [complete(1, "abcde")]);
        // JSON lines: the same, quotes or not.
        assert_eq!(split("{\"a\":\"0123456789\"}\n{}\n", false, 8)[1], complete(2, "{}"));
    }

    #[test]
    fn an_open_quote_past_the_cap_resumes_after_the_quote_line() {
        let input = "r1,\"open\nr2\nr3 is long enough to pass the cap\nr4\n";
        let records = split(input, true, 24);
        assert_eq!(records[0].0, 1);
        assert_eq!(records[0].1, "r1,\"open");
        assert!(matches!(
            records[0].2,
            Ending::OverCap {
                open_quote: Some(1),
                ..
            }
        ));
        assert_eq!(records[1], complete(2, "r2"));
        assert_eq!(records[2].0, 3);
        assert!(matches!(records[2].2, Ending::OverCap { open_quote: None, .. }));
        assert_eq!(records[3], complete(4, "r4"));
        // The quote opened on the very line that passes the cap.
        let input = format!("\"{}\nr2\n", "y".repeat(40));
        let records = split(&input, true, 16);
        assert!(matches!(
            records[0].2,
            Ending::OverCap {
                open_quote: Some(1),
                total_bytes: 41
            }
        ));
        assert_eq!(records[1], complete(2, "r2"));
    }

    #[test]
    fn json_lines_skip_white_space_lines_and_ignore_quotes() {
        assert_eq!(
            split("{\"a\":\"\\\"\"}\n  \t\n\"\n{}", false, 1024),
            [complete(1, "{\"a\":\"\\\"\"}"), complete(3, "\""), complete(4, "{}"),]
        );
    }
}
