//! Property tests of the reader and the validator over arbitrary bytes and
//! over mutated CSV and JSON-lines drops, with small record caps and batch
//! sizes so every path (open quotes, records over the cap, bad UTF-8, wrong
//! field counts) is met. For every input that has a usable header:
//!
//! - nothing panics;
//! - every record gets exactly one verdict: valid rows + rejects = records read;
//! - records are numbered 1, 2, 3, ... across batches, and start on
//!   increasing lines, every one inside the input;
//! - every reject's line is inside the input.
//!
//! The same holds for drops in other dialects: delimiters `;` tab `|`
//! (given or detected), another quote character, CR LF, and encodings
//! (Windows-1252, UTF-16 with its byte-order mark), mutated as bytes.
//!
//! The nastiest inputs found are kept in `tests/data/fuzz/` and run on
//! every build. CI runs [`CASES`] generated cases per property;
//! `PROPTEST_CASES=N` runs N instead.

use std::io::Cursor;
use std::path::Path;

use cardbatch::batch::{ImportKind, Rows};
use cardbatch::domain::{OrgConfig, SeriesRequest};
use cardbatch::import::input::Format;
use cardbatch::import::reader::open_source;
use cardbatch::import::reading::ReadingOptions;
use cardbatch::import::validate::{ValidationContext, validate_batch};
use cardbatch::numbers::PermutationKey;
use encoding_rs::Encoding;
use proptest::prelude::*;

/// Generated cases per property in CI (four properties).
const CASES: u32 = 512;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(CASES)
}

const FUZZ_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fuzz");
const IMPORT_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/import");

fn context() -> ValidationContext {
    let series = |id: i64, code: &str, prefix: &str, length: usize, method: &str| {
        let request: SeriesRequest = serde_json::from_value(serde_json::json!({
            "code": code, "type": "DIGITAL",
            "cardGenerationConfiguration": {"prefix": prefix, "length": length, "method": method}
        }))
        .unwrap();
        cardbatch::domain::Series {
            id,
            org_id: 1,
            definition: request.validate().unwrap(),
            next_counter: 1,
            secret: PermutationKey([0; 16]),
        }
    };
    let org = OrgConfig::from_stored([
        ("CONF_CARD_NUMBER_LENGTH", "10"),
        ("CONF_CARD_NUMBER_PREFIX", "CX"),
        ("CARD_STATUS_LABELS", "LOST:SUSPENDED"),
    ])
    .unwrap();
    ValidationContext::new(
        ImportKind::Cards,
        org,
        vec![
            series(1, "LUHN1", "6001", 16, "LUHN_ALGO"),
            series(2, "MOD1", "77", 12, "MOD7_ALGO"),
        ],
    )
}

/// Lines in `bytes` (in `encoding`, a byte-order mark deciding) as a line
/// counter sees the decoded text: each `\n` ends one, and text after the
/// last `\n` is one more.
fn line_count(bytes: &[u8], encoding: &'static Encoding) -> u64 {
    let (text, _, _) = encoding.decode(bytes);
    let bytes = text.as_bytes();
    let newlines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    newlines + u64::from(bytes.last().is_some_and(|&b| b != b'\n'))
}

/// Reads and validates all of `bytes`, checking the invariants; returns the
/// number of records, or `None` when the input has no usable header.
fn check_invariants(bytes: &[u8], format: Format, cap: usize, batch_size: usize) -> Option<u64> {
    check_invariants_with(bytes, format, cap, batch_size, &ReadingOptions::default())
}

/// [`check_invariants`] of an input read as `options` say.
fn check_invariants_with(
    bytes: &[u8],
    format: Format,
    cap: usize,
    batch_size: usize,
    options: &ReadingOptions,
) -> Option<u64> {
    let context = context();
    let mut source = open_source(
        Box::new(Cursor::new(bytes.to_vec())),
        ImportKind::Cards,
        format,
        cap,
        options,
    )
    .ok()?
    .source;
    let lines = line_count(bytes, options.encoding.unwrap_or(encoding_rs::UTF_8));
    let mut next_record = 1;
    let mut last_line = 0;
    while let Some(batch) = source
        .next_batch(batch_size, 0)
        .expect("reading from memory cannot fail")
    {
        assert_eq!(batch.first_record, next_record, "records are numbered without gaps");
        for record in &batch.records {
            assert!(record.line > last_line, "records start on increasing lines");
            assert!(record.line <= lines, "line {} of {lines}", record.line);
            last_line = record.line;
        }
        let records = batch.records.len() as u64;
        let valid = validate_batch(batch, &context);
        let rows = match &valid.rows {
            Rows::Cards(rows) => rows.iter().map(|r| r.record).collect::<Vec<_>>(),
            _ => unreachable!("a cards import"),
        };
        let mut judged: Vec<u64> = rows
            .iter()
            .copied()
            .chain(valid.rejects.iter().map(|(r, _)| *r))
            .collect();
        judged.sort_unstable();
        let expected: Vec<u64> = (next_record..next_record + records).collect();
        assert_eq!(judged, expected, "one verdict per record");
        for (record, rejection) in &valid.rejects {
            let row = valid.reject_row(*record, rejection);
            assert!((1..=lines).contains(&row.line), "reject line {} of {lines}", row.line);
            assert!(!row.raw.contains('\0'));
        }
        next_record += records;
    }
    assert_eq!(
        source.records_seen(),
        next_record - 1,
        "records read = inserted + rejected"
    );
    Some(next_record - 1)
}

/// One edit of a seed input.
#[derive(Debug, Clone)]
enum Mutation {
    Insert(prop::sample::Index, u8),
    Delete(prop::sample::Index, usize),
    Duplicate(prop::sample::Index, usize),
    Truncate(prop::sample::Index),
}

/// Bytes that make or break records.
const NASTY: &[u8] = b"\"\",,\n\n\r\0{}[]\\: \xc3\xa9\xff\xef\xbb\xbf";

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), prop::sample::select(NASTY)).prop_map(|(at, b)| Mutation::Insert(at, b)),
        (any::<prop::sample::Index>(), 1usize..40).prop_map(|(at, n)| Mutation::Delete(at, n)),
        (any::<prop::sample::Index>(), 1usize..200).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(seed: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for mutation in mutations {
        let at = |index: &prop::sample::Index, bytes: &Vec<u8>| index.index(bytes.len() + 1);
        match mutation {
            Mutation::Insert(index, byte) => {
                let at = at(index, &bytes);
                bytes.insert(at, *byte);
            }
            Mutation::Delete(index, n) => {
                let at = at(index, &bytes);
                let end = (at + n).min(bytes.len());
                bytes.drain(at..end);
            }
            Mutation::Duplicate(index, n) => {
                let at = at(index, &bytes);
                let end = (at + n).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                bytes.splice(at..at, copy);
            }
            Mutation::Truncate(index) => {
                let at = at(index, &bytes);
                bytes.truncate(at);
            }
        }
    }
    bytes
}

fn seed(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(IMPORT_DATA).join(name)).unwrap()
}

/// A dialect a drop is rewritten into: delimiter, quote, line end, encoding.
#[derive(Debug, Clone)]
struct Dialect {
    delimiter: u8,
    /// Given with `--delimiter`, or left to detection.
    given: bool,
    quote: u8,
    crlf: bool,
    encoding: &'static Encoding,
}

fn dialect() -> impl Strategy<Value = Dialect> {
    (
        prop::sample::select(vec![b',', b';', b'\t', b'|']),
        any::<bool>(),
        prop::sample::select(vec![b'"', b'\'']),
        any::<bool>(),
        prop::sample::select(vec![
            encoding_rs::UTF_8,
            encoding_rs::WINDOWS_1252,
            encoding_rs::UTF_16LE,
        ]),
    )
        .prop_map(|(delimiter, given, quote, crlf, encoding)| Dialect {
            delimiter,
            given,
            quote,
            crlf,
            encoding,
        })
}

impl Dialect {
    /// `csv` (UTF-8, comma, `"`, LF) rewritten into this dialect; UTF-16
    /// with its byte-order mark.
    fn rewrite(&self, csv: &[u8]) -> Vec<u8> {
        let text = String::from_utf8_lossy(csv);
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                ',' => out.push(char::from(self.delimiter)),
                '"' => out.push(char::from(self.quote)),
                '\n' if self.crlf => out.push_str("\r\n"),
                other => out.push(other),
            }
        }
        if self.encoding == encoding_rs::UTF_16LE {
            let mut bytes = vec![0xFF, 0xFE];
            bytes.extend(out.encode_utf16().flat_map(u16::to_le_bytes));
            return bytes;
        }
        self.encoding.encode(&out).0.into_owned()
    }

    fn options(&self) -> ReadingOptions {
        ReadingOptions {
            delimiter: self.given.then_some(self.delimiter),
            quote: Some(self.quote),
            encoding: Some(self.encoding),
            ..ReadingOptions::default()
        }
    }
}

/// Caps from far below a record to the default.
fn cap() -> impl Strategy<Value = usize> {
    prop_oneof![Just(64usize), 65usize..400, Just(1 << 20)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600), csv in any::<bool>(),
                       cap in cap(), batch in 1usize..9) {
        // A header the reader accepts, then anything.
        let format = if csv { Format::Csv } else { Format::Jsonl };
        let mut input = if csv { b"card_number,series_code\n".to_vec() } else { Vec::new() };
        input.extend_from_slice(&bytes);
        check_invariants(&input, format, cap, batch);
        check_invariants(&bytes, format, cap, batch);
    }

    #[test]
    fn mutated_csv(mutations in prop::collection::vec(mutation(), 0..10), cap in cap(), batch in 1usize..9) {
        let input = mutate(&seed("cards_every_reason.csv"), &mutations);
        check_invariants(&input, Format::Csv, cap, batch);
    }

    #[test]
    fn mutated_csv_in_other_dialects(dialect in dialect(), mutations in prop::collection::vec(mutation(), 0..10),
                                     cap in cap(), batch in 1usize..9) {
        let clean = dialect.rewrite(&seed("cards_every_reason.csv"));
        // Unmutated, the drop reads whole in its dialect, as many records as in its own.
        let expected = check_invariants(&seed("cards_every_reason.csv"), Format::Csv, 1 << 20, 10_000);
        prop_assert_eq!(check_invariants_with(&clean, Format::Csv, 1 << 20, batch, &dialect.options()), expected);
        let input = mutate(&clean, &mutations);
        check_invariants_with(&input, Format::Csv, cap, batch, &dialect.options());
    }

    #[test]
    fn mutated_json_lines(mutations in prop::collection::vec(mutation(), 0..10), cap in cap(), batch in 1usize..9) {
        let input = mutate(&seed("cards_every_reason.jsonl"), &mutations);
        check_invariants(&input, Format::Jsonl, cap, batch);
    }
}

/// The kept corpus: each file, at several caps and batch sizes, keeps the
/// invariants and reads the number of records its `.records` file says
/// (`none`: the input has no usable header).
#[test]
fn kept_corpus() {
    let mut checked = 0;
    for entry in std::fs::read_dir(FUZZ_DATA).unwrap() {
        let path = entry.unwrap().path();
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some("csv") => Format::Csv,
            Some("jsonl") => Format::Jsonl,
            _ => continue,
        };
        let bytes = std::fs::read(&path).unwrap();
        let expected = std::fs::read_to_string(path.with_extension("records")).unwrap();
        let expected: Option<u64> = expected.trim().parse().ok();
        for cap in [64, 100, 1 << 20] {
            for batch in [1, 3, 10_000] {
                let records = check_invariants(&bytes, format, cap, batch);
                if cap == 1 << 20 {
                    assert_eq!(records, expected, "{}", path.display());
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 5, "the corpus is there");
}
