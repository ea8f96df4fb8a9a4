//! Record readers: CSV (one reused `ByteRecord`, raw bytes captured exactly
//! as they appeared) and JSON lines. Each produces batches whose field values
//! and raw texts live in one string per batch, so a record costs no
//! allocation of its own. A record that cannot be parsed becomes a
//! `MALFORMED_RECORD` verdict with its line number, never an error.

use std::collections::BTreeSet;
use std::io::{self, BufRead, Read};
use std::ops::Range;

use serde_json::Value;

use super::columns::{ColumnType, MAX_COLUMNS, check_required, columns, find_column};
use super::input::InputError;
use crate::domain::{RejectReason, Rejection};
use crate::store::ImportKind;

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
}

/// Opens the record source for `kind` and `format`; header problems are errors (exit 2).
pub fn open_source(
    reader: Box<dyn BufRead + Send>,
    kind: ImportKind,
    format: super::input::Format,
) -> Result<Box<dyn RecordSource>, InputError> {
    Ok(match format {
        super::input::Format::Csv => Box::new(CsvSource::open(reader, kind)?),
        super::input::Format::Jsonl => Box::new(JsonLinesSource::new(reader, kind)),
    })
}

/// Keeps every byte the CSV parser reads, so a record's raw text can be cut
/// out by byte position.
struct RawCapture<R> {
    inner: R,
    buffer: Vec<u8>,
    /// Stream offset of `buffer[0]`.
    base: u64,
}

impl<R: Read> Read for RawCapture<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        self.buffer.extend_from_slice(&out[..n]);
        Ok(n)
    }
}

impl<R> RawCapture<R> {
    fn slice(&self, start: u64, end: u64) -> &[u8] {
        &self.buffer[(start - self.base) as usize..(end - self.base) as usize]
    }

    /// Drops bytes before `position` once enough have piled up.
    fn release_before(&mut self, position: u64) {
        let consumed = (position - self.base) as usize;
        if consumed > 1 << 20 {
            self.buffer.drain(..consumed);
            self.base = position;
        }
    }
}

struct CsvSource {
    reader: csv::Reader<RawCapture<Box<dyn BufRead + Send>>>,
    /// For each CSV column, the import column it feeds.
    mapping: Vec<Option<usize>>,
    header_len: usize,
    record: csv::ByteRecord,
    seen: u64,
    warnings: Vec<String>,
}

impl CsvSource {
    fn open(input: Box<dyn BufRead + Send>, kind: ImportKind) -> Result<Self, InputError> {
        let capture = RawCapture {
            inner: input,
            buffer: Vec::new(),
            base: 0,
        };
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(true)
            .from_reader(capture);
        let header = reader
            .byte_headers()
            .map_err(|e| InputError::Invalid(format!("cannot read the CSV header: {e}")))?
            .clone();
        if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
            return Err(InputError::Invalid(
                "the input is empty: a CSV file needs a header line".into(),
            ));
        }
        let names: Vec<String> = header
            .iter()
            .map(|name| String::from_utf8(name.to_vec()).map(|n| n.trim().to_string()))
            .collect::<Result<_, _>>()
            .map_err(|_| InputError::Invalid("the CSV header is not valid UTF-8".into()))?;
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
            reader,
            mapping,
            header_len: names.len(),
            record: csv::ByteRecord::new(),
            seen: 0,
            warnings,
        })
    }

    /// Reads one record into `batch`; false at the end of the input.
    fn read_into(&mut self, batch: &mut RecordBatch, keep: bool) -> io::Result<bool> {
        let more = self
            .reader
            .read_byte_record(&mut self.record)
            .map_err(|error| match error.into_kind() {
                csv::ErrorKind::Io(error) => error,
                other => io::Error::new(io::ErrorKind::InvalidData, format!("{other:?}")),
            })?;
        if !more {
            return Ok(false);
        }
        self.seen += 1;
        let start = self.record.position().map_or(0, |p| p.byte());
        let end = self.reader.position().byte();
        if keep {
            let mut line = self.record.position().map_or(0, |p| p.line());
            let mut raw_bytes = self.reader.get_ref().slice(start, end);
            // After a CRLF, a record's recorded start is the previous line's LF.
            while let [first @ (b'\r' | b'\n'), rest @ ..] = raw_bytes {
                line += u64::from(*first == b'\n');
                raw_bytes = rest;
            }
            let record = match std::str::from_utf8(raw_bytes) {
                Err(error) => {
                    let raw = String::from_utf8_lossy(raw_bytes).into_owned();
                    let raw = batch.push_raw(&raw);
                    let message = format!(
                        "the record is not valid UTF-8 (byte {} of the record)",
                        error.valid_up_to() + 1
                    );
                    SourceRecord {
                        line,
                        raw,
                        fields: Err(Rejection::new(RejectReason::MalformedRecord, "", message)),
                    }
                }
                Ok(raw_text) => {
                    let raw_text = raw_text.to_string();
                    let raw = batch.push_raw(&raw_text);
                    let fields = if self.record.len() != self.header_len {
                        Err(Rejection::new(
                            RejectReason::MalformedRecord,
                            "",
                            format!(
                                "the record has {} field(s), the header has {}",
                                self.record.len(),
                                self.header_len
                            ),
                        ))
                    } else {
                        let mut fields: Fields = Default::default();
                        for (value, column) in self.record.iter().zip(&self.mapping) {
                            if let Some(column) = column {
                                // The whole record is valid UTF-8, so each field is too.
                                fields[*column] = batch.push_field(std::str::from_utf8(value).unwrap_or_default());
                            }
                        }
                        Ok(fields)
                    };
                    SourceRecord { line, raw, fields }
                }
            };
            batch.records.push(record);
        }
        self.reader.get_mut().release_before(end);
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
}

struct JsonLinesSource {
    reader: Box<dyn BufRead + Send>,
    kind: ImportKind,
    line_buffer: Vec<u8>,
    line: u64,
    seen: u64,
    unknown_keys: BTreeSet<String>,
}

impl JsonLinesSource {
    fn new(reader: Box<dyn BufRead + Send>, kind: ImportKind) -> Self {
        JsonLinesSource {
            reader,
            kind,
            line_buffer: Vec::new(),
            line: 0,
            seen: 0,
            unknown_keys: BTreeSet::new(),
        }
    }

    fn parse(&mut self, batch: &mut RecordBatch, text: &str) -> Result<Fields, Rejection> {
        let malformed = |message: String| Rejection::new(RejectReason::MalformedRecord, "", message);
        let value: Value = serde_json::from_str(text).map_err(|e| malformed(format!("not valid JSON: {e}")))?;
        let Value::Object(object) = value else {
            return Err(malformed("a JSON line must be an object".into()));
        };
        for key in object.keys() {
            let known =
                find_column(self.kind, key).is_some() || (key == "statusInfo" && self.kind == ImportKind::Cards);
            if !known && self.unknown_keys.len() < 50 {
                self.unknown_keys.insert(key.clone());
            }
        }
        let mut fields: Fields = Default::default();
        for (index, column) in columns(self.kind).iter().enumerate() {
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
            self.line_buffer.clear();
            if self.reader.read_until(b'\n', &mut self.line_buffer)? == 0 {
                break;
            }
            self.line += 1;
            if self.line_buffer.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            self.seen += 1;
            if self.seen <= skip_through {
                continue;
            }
            if batch.records.is_empty() {
                batch.first_record = self.seen;
            }
            let line_buffer = std::mem::take(&mut self.line_buffer);
            let record = match std::str::from_utf8(&line_buffer) {
                Err(_) => {
                    let raw = batch.push_raw(&String::from_utf8_lossy(&line_buffer));
                    let rejection = Rejection::new(RejectReason::MalformedRecord, "", "the line is not valid UTF-8");
                    SourceRecord {
                        line: self.line,
                        raw,
                        fields: Err(rejection),
                    }
                }
                Ok(text) => {
                    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
                    let raw = batch.push_raw(text);
                    let fields = self.parse(&mut batch, text);
                    SourceRecord {
                        line: self.line,
                        raw,
                        fields,
                    }
                }
            };
            self.line_buffer = line_buffer;
            batch.records.push(record);
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
        );
        assert!(matches!(source, Err(InputError::Invalid(message)) if message.contains("series_code or series_id")));
        let empty = open_source(Box::new(io::Cursor::new(Vec::new())), ImportKind::Cards, Format::Csv);
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
        )
        .unwrap();
        let batch = source.next_batch(10, 2).unwrap().unwrap();
        assert_eq!(batch.first_record, 3);
        assert_eq!(batch.records.len(), 1);
        assert_eq!(batch.records[0].line, 4);
        assert_eq!(source.records_seen(), 3);
    }
}
