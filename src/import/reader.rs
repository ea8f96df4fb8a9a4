//! Record readers: CSV and JSON lines, over the bounded record splitter
//! ([`records`](super::records)). Each produces batches whose field values
//! and raw texts live in one string per batch, so a record costs no
//! allocation of its own. A record that cannot be read (bad UTF-8, a wrong
//! field count, a quote never closed, a record over the cap, a JSON line that
//! is not an object) becomes a `MALFORMED_RECORD` verdict with its line
//! number, never an error, and the records after it are read as usual.

use std::collections::BTreeSet;
use std::io::{self, BufRead};
use std::ops::Range;

use serde_json::Value;

use super::columns::{ColumnType, MAX_COLUMNS, check_required, columns, find_column};
use super::input::InputError;
use super::records::{Ending, RawRecord, RecordSplitter};
use crate::batch::ImportKind;
use crate::domain::{RejectReason, Rejection};

/// The default cap on one record's size (`--max-record-bytes`).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1024 * 1024;

/// How much of a record over the cap its raw text keeps.
pub const RAW_CUT_BYTES: usize = 1024;

/// A field's place in its batch's text; `None` when the field is absent or empty.
pub type Fields = [Option<Range<u32>>; MAX_COLUMNS];

/// One input record.
#[derive(Debug, Clone)]
pub struct SourceRecord {
    /// 1-based line where the record starts.
    pub line: u64,
    /// The record as it appeared, in the batch's text.
    pub raw: Range<usize>,
    /// The fields, or why the record could not be read.
    pub fields: Result<Fields, Rejection>,
}

/// Consecutive records and the text they point into.
#[derive(Debug, Clone, Default)]
pub struct RecordBatch {
    /// Record number (1-based) of `records[0]`.
    pub first_record: u64,
    pub text: String,
    pub records: Vec<SourceRecord>,
}

impl RecordBatch {
    /// The value of column `column` of `fields`.
    pub fn field<'a>(&'a self, fields: &Fields, column: usize) -> Option<&'a str> {
        fields[column]
            .as_ref()
            .map(|range| &self.text[range.start as usize..range.end as usize])
    }

    fn push_field(&mut self, value: &str) -> Option<Range<u32>> {
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        let start = self.text.len() as u32;
        self.text.push_str(value);
        Some(start..self.text.len() as u32)
    }

    fn push_raw(&mut self, raw: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.push_str(raw.trim_end_matches(['\r', '\n']));
        start..self.text.len()
    }
}

/// A source of record batches.
pub trait RecordSource: Send {
    /// The next batch of up to `size` records, skipping (but counting) records
    /// numbered `skip_through` or lower; `None` at the end of the input.
    fn next_batch(&mut self, size: usize, skip_through: u64) -> io::Result<Option<RecordBatch>>;

    /// Records seen so far, skipped ones included.
    fn records_seen(&self) -> u64;

    /// Warnings about the input (unknown columns), each given once.
    fn warnings(&self) -> Vec<String>;

    /// The CSV header line as read (without its line end); `None` for JSON lines.
    fn header(&self) -> Option<&str> {
        None
    }
}

/// Opens the record source for `kind` and `format`, holding at most
/// `max_record_bytes` of one record; header problems are errors (exit 2).
pub fn open_source(
    reader: Box<dyn BufRead + Send>,
    kind: ImportKind,
    format: super::input::Format,
    max_record_bytes: usize,
) -> Result<Box<dyn RecordSource>, InputError> {
    let unreadable = |e: io::Error| InputError::Invalid(format!("cannot read the input: {e}"));
    Ok(match format {
        super::input::Format::Csv => {
            let splitter = RecordSplitter::new(reader, true, max_record_bytes).map_err(unreadable)?;
            Box::new(CsvSource::open(splitter, kind, max_record_bytes)?)
        }
        super::input::Format::Jsonl => {
            let splitter = RecordSplitter::new(reader, false, max_record_bytes).map_err(unreadable)?;
            Box::new(JsonLinesSource::new(splitter, kind, max_record_bytes))
        }
    })
}

type Splitter = RecordSplitter<Box<dyn BufRead + Send>>;

fn malformed(message: String) -> Rejection {
    Rejection::new(RejectReason::MalformedRecord, "", message)
}

/// The verdict on a record that did not end normally (an open quote, the
/// cap), with its raw text as the report shows it; `None` for a complete record.
fn broken_record(record: &RawRecord<'_>, cap: usize) -> Option<(String, Rejection)> {
    let cap_text = format!("the {cap}-byte cap (--max-record-bytes)");
    match record.ending {
        Ending::Complete => None,
        Ending::OpenQuote { opened_line } => Some((
            String::from_utf8_lossy(record.bytes).into_owned(),
            malformed(format!(
                "a quoted field opened on line {opened_line} is never closed; reading resumed at line {}",
                opened_line + 1
            )),
        )),
        Ending::OverCap {
            total_bytes,
            open_quote: Some(opened_line),
        } => Some((
            cut_raw(record.bytes, record.bytes.len() as u64),
            malformed(format!(
                "a quoted field opened on line {opened_line} is still open after {total_bytes} bytes, past {cap_text}; \
                 reading resumed at line {}",
                opened_line + 1
            )),
        )),
        Ending::OverCap {
            total_bytes,
            open_quote: None,
        } => Some((
            cut_raw(record.bytes, total_bytes),
            malformed(format!("the record is {total_bytes} bytes, over {cap_text}")),
        )),
    }
}

/// A record's text, or, for a record that cannot be read (see
/// [`broken_record`], or bytes that are not UTF-8, worded by `not_utf8`),
/// the raw text the report shows (pushed into `batch`) and the rejection.
fn record_text<'r>(
    record: &RawRecord<'r>,
    cap: usize,
    batch: &mut RecordBatch,
    not_utf8: impl FnOnce(std::str::Utf8Error) -> String,
) -> Result<&'r str, (Range<usize>, Rejection)> {
    if let Some((raw, rejection)) = broken_record(record, cap) {
        return Err((batch.push_raw(&raw), rejection));
    }
    std::str::from_utf8(record.bytes).map_err(|error| {
        (
            batch.push_raw(&String::from_utf8_lossy(record.bytes)),
            malformed(not_utf8(error)),
        )
    })
}

/// The first [`RAW_CUT_BYTES`] of a record (whole characters), saying so
/// when the record (`total_bytes` long) was longer.
fn cut_raw(bytes: &[u8], total_bytes: u64) -> String {
    if bytes.len() <= RAW_CUT_BYTES && total_bytes as usize <= RAW_CUT_BYTES {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let mut head = String::from_utf8_lossy(&bytes[..bytes.len().min(RAW_CUT_BYTES)]).into_owned();
    // A character split by the cut shows as U+FFFD at the end; drop it.
    if head.ends_with('\u{FFFD}') {
        head.pop();
    }
    format!("{head}... [cut: the record is {total_bytes} bytes; the first {RAW_CUT_BYTES} {CUT_END}")
}

/// How [`cut_raw`]'s marker ends.
const CUT_END: &str = "are shown]";

/// Whether a reject's raw text was cut by [`cut_raw`] (so it is not the record as it was).
pub fn is_cut_raw(raw: &str) -> bool {
    raw.ends_with(CUT_END) && raw.contains("... [cut: the record is ")
}

struct CsvSource {
    splitter: Splitter,
    cap: usize,
    /// For each CSV column, the import column it feeds.
    mapping: Vec<Option<usize>>,
    header_len: usize,
    /// The header line as read.
    header: String,
    fields: CsvFields,
    seen: u64,
    warnings: Vec<String>,
}

/// Splits one complete CSV record into fields with `csv-core`, reusing its buffers.
struct CsvFields {
    parser: csv_core::Reader,
    output: Vec<u8>,
    ends: Vec<usize>,
    count: usize,
}

impl CsvFields {
    fn new() -> Self {
        CsvFields {
            parser: csv_core::Reader::new(),
            output: Vec::new(),
            ends: Vec::new(),
            count: 0,
        }
    }

    /// Parses `record` (one whole record, no final line end); an error names
    /// what makes it unreadable.
    fn parse(&mut self, record: &[u8]) -> Result<(), String> {
        // Fields are never longer than the record, and never more than its commas plus one.
        self.output.resize(record.len().max(1), 0);
        self.ends.resize(memchr::memchr_iter(b',', record).count() + 2, 0);
        let (result, read, written, ended) = self.parser.read_record(record, &mut self.output, &mut self.ends);
        let (result, ended) = match result {
            csv_core::ReadRecordResult::InputEmpty => {
                let (result, _, _, more) =
                    self.parser
                        .read_record(b"\n", &mut self.output[written..], &mut self.ends[ended..]);
                (result, ended + more)
            }
            other => (other, ended),
        };
        if result != csv_core::ReadRecordResult::Record || read < record.len() {
            self.parser.reset();
            return Err("the record holds a carriage return outside quotes".into());
        }
        self.count = ended;
        Ok(())
    }

    /// The fields of the last record parsed, as bytes.
    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends[..self.count].iter().map(move |&end| {
            let field = &self.output[start..end];
            start = end;
            field
        })
    }
}

impl CsvSource {
    fn open(mut splitter: Splitter, kind: ImportKind, cap: usize) -> Result<Self, InputError> {
        let invalid = |message: String| InputError::Invalid(message);
        let mut fields = CsvFields::new();
        let header_text: String;
        let names: Vec<String> = {
            let header = splitter
                .next_record()
                .map_err(|e| invalid(format!("cannot read the CSV header: {e}")))?
                .ok_or_else(|| invalid("the input is empty: a CSV file needs a header line".into()))?;
            if let Some((_, rejection)) = broken_record(&header, cap) {
                return Err(invalid(format!("cannot read the CSV header: {}", rejection.message)));
            }
            fields
                .parse(header.bytes)
                .map_err(|e| invalid(format!("cannot read the CSV header: {e}")))?;
            header_text = String::from_utf8_lossy(header.bytes)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            fields
                .iter()
                .map(|name| std::str::from_utf8(name).map(|n| n.trim().to_string()))
                .collect::<Result<_, _>>()
                .map_err(|_| invalid("the CSV header is not valid UTF-8".into()))?
        };
        let mut present = [false; MAX_COLUMNS];
        let mut mapping = Vec::with_capacity(names.len());
        let mut unknown = Vec::new();
        for name in &names {
            match find_column(kind, name) {
                Some(column) if !present[column] => {
                    present[column] = true;
                    mapping.push(Some(column));
                }
                Some(_) => {
                    unknown.push(format!("{name} (repeated)"));
                    mapping.push(None);
                }
                None => {
                    unknown.push(name.clone());
                    mapping.push(None);
                }
            }
        }
        check_required(kind, &present).map_err(InputError::Invalid)?;
        let warnings = if unknown.is_empty() {
            Vec::new()
        } else {
            vec![format!("ignored unknown column(s): {}", unknown.join(", "))]
        };
        Ok(CsvSource {
            splitter,
            cap,
            mapping,
            header_len: names.len(),
            header: header_text,
            fields,
            seen: 0,
            warnings,
        })
    }

    /// Reads one record into `batch` (or only past it, when `keep` is false);
    /// false at the end of the input.
    fn read_into(&mut self, batch: &mut RecordBatch, keep: bool) -> io::Result<bool> {
        let Some(record) = self.splitter.next_record()? else {
            return Ok(false);
        };
        self.seen += 1;
        if !keep {
            return Ok(true);
        }
        let line = record.line;
        let not_utf8 = |error: std::str::Utf8Error| {
            format!(
                "the record is not valid UTF-8 (byte {} of the record)",
                error.valid_up_to() + 1
            )
        };
        let source = match record_text(&record, self.cap, batch, not_utf8) {
            Err((raw, rejection)) => SourceRecord {
                line,
                raw,
                fields: Err(rejection),
            },
            Ok(text) => {
                let raw = batch.push_raw(text);
                let fields = match self.fields.parse(record.bytes) {
                    Err(message) => Err(malformed(message)),
                    Ok(()) if self.fields.count != self.header_len => Err(malformed(format!(
                        "the record has {} field(s), the header has {}",
                        self.fields.count, self.header_len
                    ))),
                    Ok(()) => {
                        let mut fields: Fields = Default::default();
                        for (value, column) in self.fields.iter().zip(&self.mapping) {
                            if let Some(column) = column {
                                // The whole record is valid UTF-8, and a field is
                                // the record less whole ASCII quotes and commas.
                                fields[*column] = batch.push_field(std::str::from_utf8(value).unwrap_or_default());
                            }
                        }
                        Ok(fields)
                    }
                };
                SourceRecord { line, raw, fields }
            }
        };
        batch.records.push(source);
        Ok(true)
    }
}

impl RecordSource for CsvSource {
    fn next_batch(&mut self, size: usize, skip_through: u64) -> io::Result<Option<RecordBatch>> {
        let mut batch = RecordBatch {
            first_record: self.seen + 1,
            ..Default::default()
        };
        while batch.records.len() < size {
            let keep = self.seen + 1 > skip_through;
            if keep && batch.records.is_empty() {
                batch.first_record = self.seen + 1;
            }
            if !self.read_into(&mut batch, keep)? {
                break;
            }
        }
        Ok((!batch.records.is_empty()).then_some(batch))
    }

    fn records_seen(&self) -> u64 {
        self.seen
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    fn header(&self) -> Option<&str> {
        Some(&self.header)
    }
}

struct JsonLinesSource {
    splitter: Splitter,
    cap: usize,
    kind: ImportKind,
    seen: u64,
    unknown_keys: BTreeSet<String>,
}

impl JsonLinesSource {
    fn new(splitter: Splitter, kind: ImportKind, cap: usize) -> Self {
        JsonLinesSource {
            splitter,
            cap,
            kind,
            seen: 0,
            unknown_keys: BTreeSet::new(),
        }
    }
}

/// The fields of one JSON line; keys no column knows are noted in `unknown_keys` (up to 50).
fn parse_json_line(
    kind: ImportKind,
    unknown_keys: &mut BTreeSet<String>,
    batch: &mut RecordBatch,
    text: &str,
) -> Result<Fields, Rejection> {
    let value: Value = serde_json::from_str(text).map_err(|e| malformed(format!("not valid JSON: {e}")))?;
    let Value::Object(object) = value else {
        return Err(malformed("a JSON line must be an object".into()));
    };
    for key in object.keys() {
        let known = find_column(kind, key).is_some() || (key == "statusInfo" && kind == ImportKind::Cards);
        if !known && unknown_keys.len() < 50 {
            unknown_keys.insert(key.clone());
        }
    }
    let mut fields: Fields = Default::default();
    for (index, column) in columns(kind).iter().enumerate() {
        let value = std::iter::once(column.name)
            .chain(column.aliases.iter().copied())
            .find_map(|name| match name.split_once('.') {
                Some((outer, inner)) => object.get(outer).and_then(|nested| nested.get(inner)),
                None => object.get(name),
            });
        let text = match (value, column.column_type) {
            (None | Some(Value::Null), _) => continue,
            (Some(Value::String(text)), ColumnType::Text | ColumnType::Integer) => text.clone(),
            (Some(Value::Number(number)), ColumnType::Integer) => number.to_string(),
            (Some(object @ Value::Object(_)), ColumnType::Object) => object.to_string(),
            (Some(other), expected) => {
                let wanted = match expected {
                    ColumnType::Text => "a string",
                    ColumnType::Integer => "an integer",
                    ColumnType::Object => "an object",
                };
                return Err(Rejection::new(
                    RejectReason::MalformedRecord,
                    column.name,
                    format!("{} must be {wanted}, not {}", column.name, json_type(other)),
                ));
            }
        };
        fields[index] = batch.push_field(&text);
    }
    Ok(fields)
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl RecordSource for JsonLinesSource {
    fn next_batch(&mut self, size: usize, skip_through: u64) -> io::Result<Option<RecordBatch>> {
        let mut batch = RecordBatch::default();
        while batch.records.len() < size {
            let Some(record) = self.splitter.next_record()? else {
                break;
            };
            self.seen += 1;
            if self.seen <= skip_through {
                continue;
            }
            if batch.records.is_empty() {
                batch.first_record = self.seen;
            }
            let line = record.line;
            let source = match record_text(&record, self.cap, &mut batch, |_| "the line is not valid UTF-8".into()) {
                Err((raw, rejection)) => SourceRecord {
                    line,
                    raw,
                    fields: Err(rejection),
                },
                Ok(text) => {
                    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
                    let raw = batch.push_raw(text);
                    let fields = parse_json_line(self.kind, &mut self.unknown_keys, &mut batch, text);
                    SourceRecord { line, raw, fields }
                }
            };
            batch.records.push(source);
        }
        Ok((!batch.records.is_empty()).then_some(batch))
    }

    fn records_seen(&self) -> u64 {
        self.seen
    }

    fn warnings(&self) -> Vec<String> {
        if self.unknown_keys.is_empty() {
            Vec::new()
        } else {
            vec![format!(
                "ignored unknown key(s): {}",
                self.unknown_keys.iter().cloned().collect::<Vec<_>>().join(", ")
            )]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::input::Format;

    /// (line, raw text, first three fields or the reject reason) of each record.
    type ReadRecord = (u64, String, Result<Vec<Option<String>>, RejectReason>);

    fn read_all(text: &str, format: Format) -> Vec<ReadRecord> {
        let mut source = open_source(
            Box::new(io::Cursor::new(text.as_bytes().to_vec())),
            ImportKind::Cards,
            format,
            DEFAULT_MAX_RECORD_BYTES,
        )
        .unwrap();
        let mut out = Vec::new();
        while let Some(batch) = source.next_batch(2, 0).unwrap() {
            for record in &batch.records {
                let fields = record
                    .fields
                    .as_ref()
                    .map(|f| (0..3).map(|c| batch.field(f, c).map(str::to_string)).collect())
                    .map_err(|r| r.reason);
                out.push((record.line, batch.text[record.raw.clone()].to_string(), fields));
            }
        }
        out
    }

    #[test]
    fn csv_lines_raw_text_and_malformed_records() {
        let text = "\u{feff}series_code,card_number\r\nS1,\"A,1\"\r\nS2,\"multi\nline\"\r\nS3\r\nS4,B4\r\n";
        let records = read_all(text, Format::Csv);
        assert_eq!(records.len(), 4);
        assert_eq!(
            records[0],
            (
                2,
                "S1,\"A,1\"".into(),
                Ok(vec![Some("A,1".into()), Some("S1".into()), None])
            )
        );
        assert_eq!(records[1].0, 3);
        assert_eq!(records[1].1, "S2,\"multi\nline\"");
        assert_eq!(records[2], (5, "S3".into(), Err(RejectReason::MalformedRecord)));
        assert_eq!(records[3].0, 6);
    }

    #[test]
    fn csv_without_required_columns_is_refused() {
        let source = open_source(
            Box::new(io::Cursor::new(b"card_number,colour\n1,red\n".to_vec())),
            ImportKind::Cards,
            Format::Csv,
            DEFAULT_MAX_RECORD_BYTES,
        );
        assert!(matches!(source, Err(InputError::Invalid(message)) if message.contains("series_code or series_id")));
        let empty = open_source(
            Box::new(io::Cursor::new(Vec::new())),
            ImportKind::Cards,
            Format::Csv,
            DEFAULT_MAX_RECORD_BYTES,
        );
        assert!(empty.is_err());
    }

    #[test]
    fn json_lines_accept_both_spellings_and_reject_wrong_types() {
        let text = "{\"cardNumber\":\"A1\",\"seriesCode\":\"S\",\"seriesId\":7}\n\n{\"card_number\":\"A2\",\"series_code\":\"S\"}\n[1,2]\n{\"cardNumber\":5}\nnot json\n";
        let records = read_all(text, Format::Jsonl);
        assert_eq!(
            records[0],
            (
                1,
                records[0].1.clone(),
                Ok(vec![Some("A1".into()), Some("S".into()), Some("7".into())])
            )
        );
        assert_eq!(records[1].0, 3, "blank lines are not records but still count as lines");
        assert_eq!(records[2].2, Err(RejectReason::MalformedRecord));
        assert_eq!(records[3].2, Err(RejectReason::MalformedRecord));
        assert_eq!(records[4].2, Err(RejectReason::MalformedRecord));
    }

    #[test]
    fn skipped_records_are_counted_not_returned() {
        let text = "card_number,series_code\nA,S\nB,S\nC,S\n";
        let mut source = open_source(
            Box::new(io::Cursor::new(text.as_bytes().to_vec())),
            ImportKind::Cards,
            Format::Csv,
            DEFAULT_MAX_RECORD_BYTES,
        )
        .unwrap();
        let batch = source.next_batch(10, 2).unwrap().unwrap();
        assert_eq!(batch.first_record, 3);
        assert_eq!(batch.records.len(), 1);
        assert_eq!(batch.records[0].line, 4);
        assert_eq!(source.records_seen(), 3);
    }
}
