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

use super::columns::{ColumnType, MAX_COLUMNS, columns, find_column};
use super::encoding;
use super::input::InputError;
use super::mapping::{KeyMapping, Mapping, resolve_header, resolve_keys, resolve_positions};
use super::reading::{CANDIDATE_DELIMITERS, ReadingOptions, ReadingPlan, shown_character};
use super::records::{Dialect, Ending, RawRecord, RecordSplitter};
use crate::batch::{Format, ImportKind};
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

/// A record source, and the plan it reads the input by.
pub struct OpenedSource {
    pub source: Box<dyn RecordSource>,
    pub plan: ReadingPlan,
}

/// Opens the record source for `kind` and `format` as `options` say
/// (encoding, dialect, mapping), holding at most `max_record_bytes` of one
/// record; what the input's first lines make impossible (no usable header,
/// a mapping that names what is not there) is an error (exit 2).
pub fn open_source(
    reader: Box<dyn BufRead + Send>,
    kind: ImportKind,
    format: Format,
    max_record_bytes: usize,
    options: &ReadingOptions,
) -> Result<OpenedSource, InputError> {
    let unreadable = |e: io::Error| InputError::Invalid(format!("cannot read the input: {e}"));
    let decoded = encoding::decode(reader, options.encoding).map_err(unreadable)?;
    let mut plan = ReadingPlan {
        encoding: decoded.encoding.name().to_string(),
        bom: decoded.bom,
        header: !options.no_header,
        skip_lines: options.skip_lines,
        mapping: options.mapping.clone(),
        strip_separators: options.strip_separators,
        ..ReadingPlan::default_for(format)
    };
    let source: Box<dyn RecordSource> = match format {
        Format::Csv => {
            let dialect = Dialect {
                delimiter: options.delimiter.unwrap_or(b','),
                quote: options.quote.unwrap_or(b'"'),
            };
            let mut splitter = RecordSplitter::new(decoded.reader, true, dialect, max_record_bytes);
            splitter.skip_lines(options.skip_lines).map_err(unreadable)?;
            let source = CsvSource::open(splitter, kind, max_record_bytes, options)?;
            plan.delimiter = char::from(source.dialect.delimiter);
            plan.delimiter_detected = options.delimiter.is_none();
            plan.quote = char::from(source.dialect.quote);
            plan.crlf = source.crlf;
            Box::new(source)
        }
        Format::Jsonl => {
            if options.delimiter.is_some() || options.quote.is_some() || options.no_header {
                return Err(InputError::Invalid(
                    "--delimiter, --quote and --no-header are for CSV; this input is JSON lines".into(),
                ));
            }
            let keys = resolve_keys(kind, &options.mapping).map_err(InputError::Invalid)?;
            let mut splitter = RecordSplitter::new(decoded.reader, false, Dialect::default(), max_record_bytes);
            splitter.skip_lines(options.skip_lines).map_err(unreadable)?;
            Box::new(JsonLinesSource::new(splitter, kind, max_record_bytes, keys))
        }
    };
    Ok(OpenedSource { source, plan })
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
    dialect: Dialect,
    /// For each CSV column, the import column it feeds.
    mapping: Vec<Option<usize>>,
    /// Fields with one value for every record (`--set`).
    constants: Vec<(usize, String)>,
    /// The number of fields every record must have: the header's, or the first record's.
    width: usize,
    /// The header line as read; `None` without a header.
    header: Option<String>,
    /// The first record, read to tell the dialect of a file without a header.
    pending: Option<OwnedRecord>,
    /// Whether the header (or first record) ended with CR LF.
    crlf: bool,
    fields: CsvFields,
    seen: u64,
    warnings: Vec<String>,
}

/// A raw record kept past the splitter's next call.
struct OwnedRecord {
    line: u64,
    bytes: Vec<u8>,
    ending: Ending,
}

impl OwnedRecord {
    fn raw(&self) -> RawRecord<'_> {
        RawRecord {
            line: self.line,
            bytes: &self.bytes,
            ending: self.ending,
        }
    }
}

/// Splits one complete CSV record into fields with `csv-core`, reusing its buffers.
struct CsvFields {
    parser: csv_core::Reader,
    delimiter: u8,
    output: Vec<u8>,
    ends: Vec<usize>,
    count: usize,
}

impl CsvFields {
    fn new(dialect: Dialect) -> Self {
        CsvFields {
            parser: csv_core::ReaderBuilder::new()
                .delimiter(dialect.delimiter)
                .quote(dialect.quote)
                .build(),
            delimiter: dialect.delimiter,
            output: Vec::new(),
            ends: Vec::new(),
            count: 0,
        }
    }

    /// Parses `record` (one whole record, no final line end); an error names
    /// what makes it unreadable.
    fn parse(&mut self, record: &[u8]) -> Result<(), String> {
        // Fields are never longer than the record (one byte more keeps
        // csv-core from finding the output full at a one-field record's
        // end), and never more than its delimiters plus one.
        self.output.resize(record.len() + 1, 0);
        self.ends
            .resize(memchr::memchr_iter(self.delimiter, record).count() + 2, 0);
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
            // csv-core ends a record at a carriage return: one outside quotes
            // left bytes over.
            return Err(if read < record.len() && record[..read].ends_with(b"\r") {
                format!("the record holds a carriage return outside quotes (byte {read})")
            } else {
                "the record cannot be split into fields".to_string()
            });
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

    /// The fields of the last record parsed, as trimmed text.
    fn names(&self) -> Vec<String> {
        self.iter()
            .map(|name| String::from_utf8_lossy(name).trim().to_string())
            .collect()
    }
}

/// One delimiter tried on the header (or first record) and what it gave.
struct Reading {
    delimiter: u8,
    names: Vec<String>,
    mapping: Result<Mapping, String>,
}

impl CsvSource {
    /// Reads the header (or, without one, the first record), tells the
    /// delimiter when none is given, and resolves the mapping against it.
    fn open(
        mut splitter: Splitter,
        kind: ImportKind,
        cap: usize,
        options: &ReadingOptions,
    ) -> Result<Self, InputError> {
        let invalid = |message: String| InputError::Invalid(message);
        let header = !options.no_header;
        let quote = options.quote.unwrap_or(b'"');
        let what = if header { "the CSV header" } else { "the first record" };
        let first = splitter
            .next_record()
            .map_err(|e| invalid(format!("cannot read {what}: {e}")))?;
        let first = match first {
            Some(record) => {
                if let Some((_, rejection)) = broken_record(&record, cap).filter(|_| header) {
                    return Err(invalid(format!("cannot read the CSV header: {}", rejection.message)));
                }
                if header && std::str::from_utf8(record.bytes).is_err() {
                    return Err(invalid(
                        "the CSV header is not valid UTF-8: give the file's encoding with --encoding \
                         (windows-1252 for most spreadsheet exports)"
                            .into(),
                    ));
                }
                Some(OwnedRecord {
                    line: record.line,
                    bytes: record.bytes.to_vec(),
                    ending: record.ending,
                })
            }
            None if header => {
                return Err(invalid("the input is empty: a CSV file needs a header line".into()));
            }
            None => None,
        };
        let crlf = splitter.ended_with_crlf();
        let candidates = match options.delimiter {
            Some(delimiter) => vec![delimiter],
            None => CANDIDATE_DELIMITERS.to_vec(),
        };
        let readings: Vec<Reading> = candidates
            .iter()
            .map(|&delimiter| {
                let mut fields = CsvFields::new(Dialect { delimiter, quote });
                let parsed = match &first {
                    Some(record) => fields.parse(&record.bytes).map(|()| fields.names()),
                    None => Ok(Vec::new()),
                };
                let (names, mapping) = match parsed {
                    Err(error) => (Vec::new(), Err(error)),
                    Ok(names) if header => {
                        let mapping = resolve_header(kind, &names, &options.mapping);
                        (names, mapping)
                    }
                    Ok(names) => {
                        // An empty file has no record to tell the width: the mapping's is taken.
                        let width = match &first {
                            Some(_) => names.len(),
                            None => options
                                .mapping
                                .columns
                                .iter()
                                .filter_map(|(_, column)| column.trim().parse::<usize>().ok())
                                .max()
                                .unwrap_or(0),
                        };
                        let mapping = resolve_positions(kind, width, &options.mapping);
                        (names, mapping)
                    }
                };
                Reading {
                    delimiter,
                    names,
                    mapping,
                }
            })
            .collect();
        let text = first
            .as_ref()
            .map(|record| String::from_utf8_lossy(&record.bytes).into_owned())
            .unwrap_or_default();
        let chosen = choose_reading(&readings, what, &text)?;
        let mapping = match &chosen.mapping {
            Ok(mapping) => mapping.clone(),
            Err(error) => {
                let line = first.as_ref().map_or(1, |record| record.line);
                let mut message = format!(
                    "{error}; {what} (line {line}) is {text:?}, {} field(s) with delimiter {}",
                    chosen.names.len(),
                    shown_character(char::from(chosen.delimiter))
                );
                if let Some(other) = one_field_hint(&chosen.names, chosen.delimiter) {
                    message.push_str(&format!(
                        ": it looks {}-separated, give --delimiter {}",
                        shown_character(char::from(other)),
                        delimiter_flag(other)
                    ));
                }
                return Err(invalid(message));
            }
        };
        let dialect = Dialect {
            delimiter: chosen.delimiter,
            quote,
        };
        splitter.set_dialect(dialect);
        let mut warnings = Vec::new();
        if !mapping.ignored.is_empty() {
            warnings.push(format!("ignored unknown column(s): {}", mapping.ignored.join(", ")));
        }
        if options.delimiter.is_none() && dialect.delimiter != b',' {
            warnings.push(format!(
                "delimiter {} detected from {what} (--delimiter chooses another)",
                shown_character(char::from(dialect.delimiter))
            ));
        }
        Ok(CsvSource {
            splitter,
            cap,
            dialect,
            width: chosen.names.len(),
            mapping: mapping.by_file_column,
            constants: mapping.constants,
            header: header.then(|| text.trim_end_matches(['\r', '\n']).to_string()),
            pending: if header { None } else { first },
            crlf,
            fields: CsvFields::new(dialect),
            seen: 0,
            warnings,
        })
    }

    /// Reads one record into `batch` (or only past it, when `keep` is false);
    /// `constants` are the batch's `--set` values. False at the end of the input.
    fn read_into(
        &mut self,
        batch: &mut RecordBatch,
        keep: bool,
        constants: &[(usize, Range<u32>)],
    ) -> io::Result<bool> {
        let pending = self.pending.take();
        let record = match &pending {
            Some(record) => record.raw(),
            None => match self.splitter.next_record()? {
                Some(record) => record,
                None => return Ok(false),
            },
        };
        self.seen += 1;
        if !keep {
            return Ok(true);
        }
        let line = record.line;
        let not_utf8 = |error: std::str::Utf8Error| {
            format!(
                "the record is not valid UTF-8 (byte {} of the record); if the file is not UTF-8, give its \
                 encoding with --encoding (windows-1252 for most spreadsheet exports)",
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
                    Ok(()) if self.fields.count != self.width => Err(malformed(self.width_message())),
                    Ok(()) => {
                        let mut fields: Fields = Default::default();
                        for (value, column) in self.fields.iter().zip(&self.mapping) {
                            if let Some(column) = column {
                                // The whole record is valid UTF-8, and a field is
                                // the record less whole ASCII quotes and delimiters.
                                fields[*column] = batch.push_field(std::str::from_utf8(value).unwrap_or_default());
                            }
                        }
                        for (column, range) in constants {
                            fields[*column] = Some(range.clone());
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

    /// Why the record just parsed has the wrong number of fields.
    fn width_message(&self) -> String {
        let against = if self.header.is_some() {
            "the header"
        } else {
            "the first record"
        };
        let mut message = format!(
            "the record has {} field(s), {against} has {}",
            self.fields.count, self.width
        );
        if self.fields.count > self.width {
            message.push_str(&format!(
                " (a delimiter {} inside a value needs the value in quotes)",
                shown_character(char::from(self.dialect.delimiter))
            ));
        }
        message
    }
}

/// The reading to go by: the one delimiter whose fields resolve the
/// mapping (several that split the line alike are one), or, when none
/// does, the one with the most fields, whose error is then told. Two that
/// split differently and both resolve it are a question for the user.
fn choose_reading<'r>(readings: &'r [Reading], what: &str, text: &str) -> Result<&'r Reading, InputError> {
    let working: Vec<&Reading> = readings.iter().filter(|r| r.mapping.is_ok()).collect();
    if let Some(first) = working.first() {
        if let Some(other) = working.iter().find(|r| r.names != first.names) {
            return Err(InputError::Invalid(format!(
                "cannot tell the delimiter from {what} {text:?}: it reads as {} field(s) with {} and as {} with {}, \
                 and both give the fields needed: give --delimiter",
                first.names.len(),
                shown_character(char::from(first.delimiter)),
                other.names.len(),
                shown_character(char::from(other.delimiter)),
            )));
        }
        return Ok(first);
    }
    let most = readings.iter().map(|r| r.names.len()).max().unwrap_or(0);
    readings
        .iter()
        .find(|r| r.names.len() == most)
        .ok_or_else(|| InputError::Invalid(format!("cannot read {what}")))
}

/// A one-field line that holds another candidate delimiter: the one it
/// probably needs.
fn one_field_hint(names: &[String], used: u8) -> Option<u8> {
    let [only] = names else { return None };
    CANDIDATE_DELIMITERS
        .into_iter()
        .filter(|&candidate| candidate != used)
        .find(|&candidate| only.as_bytes().contains(&candidate))
}

/// How `--delimiter` is written for `delimiter`.
fn delimiter_flag(delimiter: u8) -> String {
    if delimiter == b'\t' {
        "tab".to_string()
    } else {
        format!("'{}'", char::from(delimiter))
    }
}

impl RecordSource for CsvSource {
    fn next_batch(&mut self, size: usize, skip_through: u64) -> io::Result<Option<RecordBatch>> {
        let mut batch = RecordBatch {
            first_record: self.seen + 1,
            ..Default::default()
        };
        // A constant is one text per batch, which every record's field points to.
        let constants: Vec<(usize, Range<u32>)> = self
            .constants
            .iter()
            .filter_map(|(column, value)| Some((*column, batch.push_field(value)?)))
            .collect();
        while batch.records.len() < size {
            let keep = self.seen + 1 > skip_through;
            if keep && batch.records.is_empty() {
                batch.first_record = self.seen + 1;
            }
            if !self.read_into(&mut batch, keep, &constants)? {
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
        self.header.as_deref()
    }
}

struct JsonLinesSource {
    splitter: Splitter,
    cap: usize,
    kind: ImportKind,
    keys: KeyMapping,
    seen: u64,
    unknown_keys: BTreeSet<String>,
}

impl JsonLinesSource {
    fn new(splitter: Splitter, kind: ImportKind, cap: usize, keys: KeyMapping) -> Self {
        JsonLinesSource {
            splitter,
            cap,
            kind,
            keys,
            seen: 0,
            unknown_keys: BTreeSet::new(),
        }
    }
}

/// The value of `name` in `object` (`a.b`: key `b` of the object at `a`).
fn json_value<'v>(object: &'v serde_json::Map<String, Value>, name: &str) -> Option<&'v Value> {
    match name.split_once('.') {
        Some((outer, inner)) => object.get(outer).and_then(|nested| nested.get(inner)),
        None => object.get(name),
    }
}

/// The fields of one JSON line (`constants`: the batch's `--set` values);
/// keys no column knows are noted in `unknown_keys` (up to 50).
fn parse_json_line(
    kind: ImportKind,
    keys: &KeyMapping,
    constants: &[(usize, Range<u32>)],
    unknown_keys: &mut BTreeSet<String>,
    batch: &mut RecordBatch,
    text: &str,
) -> Result<Fields, Rejection> {
    let value: Value = serde_json::from_str(text).map_err(|e| malformed(format!("not valid JSON: {e}")))?;
    let Value::Object(object) = value else {
        return Err(malformed("a JSON line must be an object".into()));
    };
    for key in object.keys() {
        let mapped = keys
            .keys
            .iter()
            .flatten()
            .any(|name| name.split('.').next() == Some(key.as_str()));
        let known = mapped || find_column(kind, key).is_some() || (key == "statusInfo" && kind == ImportKind::Cards);
        if !known && unknown_keys.len() < 50 {
            unknown_keys.insert(key.clone());
        }
    }
    let mut fields: Fields = Default::default();
    for (index, column) in columns(kind).iter().enumerate() {
        let value = match &keys.keys[index] {
            Some(key) => json_value(&object, key),
            None => std::iter::once(column.name)
                .chain(column.aliases.iter().copied())
                .find_map(|name| json_value(&object, name)),
        };
        if let Some((_, range)) = constants.iter().find(|(c, _)| *c == index) {
            if value.is_some_and(|v| !v.is_null()) {
                return Err(Rejection::new(
                    RejectReason::MalformedRecord,
                    column.name,
                    format!(
                        "the record has {} although --set gives it for every record",
                        column.name
                    ),
                ));
            }
            fields[index] = Some(range.clone());
            continue;
        }
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
        let constants: Vec<(usize, Range<u32>)> = self
            .keys
            .constants
            .iter()
            .filter_map(|(column, value)| Some((*column, batch.push_field(value)?)))
            .collect();
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
                    let fields = parse_json_line(
                        self.kind,
                        &self.keys,
                        &constants,
                        &mut self.unknown_keys,
                        &mut batch,
                        text,
                    );
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
    use crate::import::mapping::MappingOptions;

    /// (line, raw text, first three fields or the reject reason) of each record.
    type ReadRecord = (u64, String, Result<Vec<Option<String>>, RejectReason>);

    fn open(bytes: &[u8], kind: ImportKind, format: Format, options: &ReadingOptions) -> Result<OpenedSource, String> {
        open_source(
            Box::new(io::Cursor::new(bytes.to_vec())),
            kind,
            format,
            DEFAULT_MAX_RECORD_BYTES,
            options,
        )
        .map_err(|e| e.to_string())
    }

    fn read_with(bytes: &[u8], format: Format, options: &ReadingOptions) -> (Vec<ReadRecord>, ReadingPlan) {
        let OpenedSource { mut source, plan } = open(bytes, ImportKind::Cards, format, options).unwrap();
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
        (out, plan)
    }

    fn read_all(text: &str, format: Format) -> Vec<ReadRecord> {
        read_with(text.as_bytes(), format, &ReadingOptions::default()).0
    }

    fn fields(values: &[Option<&str>]) -> Result<Vec<Option<String>>, RejectReason> {
        Ok(values.iter().map(|v| v.map(str::to_string)).collect())
    }

    fn options(columns: &[(&str, &str)], constants: &[(&str, &str)]) -> ReadingOptions {
        let pairs = |list: &[(&str, &str)]| list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        ReadingOptions {
            mapping: MappingOptions {
                columns: pairs(columns),
                constants: pairs(constants),
            },
            ..ReadingOptions::default()
        }
    }

    #[test]
    fn csv_lines_raw_text_and_malformed_records() {
        let text = "\u{feff}series_code,card_number\r\nS1,\"A,1\"\r\nS2,\"multi\nline\"\r\nS3\r\nS4,B4\r\n";
        let (records, plan) = read_with(text.as_bytes(), Format::Csv, &ReadingOptions::default());
        assert_eq!(records.len(), 4);
        assert_eq!(
            records[0],
            (2, "S1,\"A,1\"".into(), fields(&[Some("A,1"), Some("S1"), None]))
        );
        assert_eq!(records[1].0, 3);
        assert_eq!(records[1].1, "S2,\"multi\nline\"");
        assert_eq!(records[2], (5, "S3".into(), Err(RejectReason::MalformedRecord)));
        assert_eq!(records[3].0, 6);
        assert!(plan.bom && plan.crlf && plan.delimiter_detected);
        assert_eq!(plan.delimiter, ',');
    }

    #[test]
    fn one_field_records_are_read() {
        let OpenedSource { mut source, .. } = open(
            b"customer_id\n123\n\"456\"\n",
            ImportKind::Customers,
            Format::Csv,
            &ReadingOptions::default(),
        )
        .unwrap();
        let batch = source.next_batch(10, 0).unwrap().unwrap();
        let values: Vec<Option<&str>> = batch
            .records
            .iter()
            .map(|r| batch.field(r.fields.as_ref().unwrap(), 0))
            .collect();
        assert_eq!(values, [Some("123"), Some("456")]);
    }

    #[test]
    fn the_delimiter_is_detected_from_the_header() {
        for (delimiter, name) in [(';', ';'), ('\t', '\t'), ('|', '|')] {
            let text = format!("card_number{delimiter}series_code\r\nA1{delimiter}S\r\n");
            let (records, plan) = read_with(text.as_bytes(), Format::Csv, &ReadingOptions::default());
            assert_eq!(plan.delimiter, name);
            assert_eq!(records[0].2, fields(&[Some("A1"), Some("S"), None]));
        }
        // Both read the header as the required columns, differently: ask.
        let ambiguous = open(
            b"card_number,series_code,x;series_id;card_number\n",
            ImportKind::Cards,
            Format::Csv,
            &ReadingOptions::default(),
        );
        assert!(ambiguous.err().unwrap().contains("give --delimiter"));
    }

    #[test]
    fn a_header_that_names_too_little_says_what_it_read() {
        let error = open(
            b"CardNo,Series,Status\n",
            ImportKind::Cards,
            Format::Csv,
            &ReadingOptions::default(),
        )
        .err()
        .unwrap();
        assert!(
            error.contains("no card_number, no series_code or series_id column"),
            "{error}"
        );
        assert!(error.contains("\"CardNo,Series,Status\", 3 field(s)"), "{error}");
        let forced = ReadingOptions {
            delimiter: Some(b','),
            ..ReadingOptions::default()
        };
        let error = open(b"card_number;series_code\n", ImportKind::Cards, Format::Csv, &forced)
            .err()
            .unwrap();
        assert!(
            error.contains("it looks ';'-separated, give --delimiter ';'"),
            "{error}"
        );
    }

    #[test]
    fn columns_are_mapped_set_and_read_by_position() {
        let mapped = options(&[("card_number", "CardNo")], &[("series_code", "GOLD")]);
        let (records, _) = read_with(b"Status;CardNo\nX;A1\nY;A2\n", Format::Csv, &mapped);
        assert_eq!(records[1].2, fields(&[Some("A2"), Some("GOLD"), None]));
        let positions = ReadingOptions {
            no_header: true,
            skip_lines: 1,
            ..options(&[("card_number", "2"), ("series_id", "1")], &[])
        };
        let (records, plan) = read_with(b"Export of 2026-12-05\n7|A1\n8|A2\n9\n", Format::Csv, &positions);
        assert_eq!(plan.delimiter, '|');
        assert_eq!(records[0], (2, "7|A1".into(), fields(&[Some("A1"), None, Some("7")])));
        assert_eq!(records[1].2, fields(&[Some("A2"), None, Some("8")]));
        assert_eq!(records[2].2, Err(RejectReason::MalformedRecord));
        // --set for a field the file has a column for is refused.
        let clash = options(&[], &[("series_code", "GOLD")]);
        assert!(
            open(b"card_number,series_code\n", ImportKind::Cards, Format::Csv, &clash)
                .err()
                .unwrap()
                .contains("drop --set")
        );
    }

    #[test]
    fn another_quote_character_and_encoding() {
        let options = ReadingOptions {
            quote: Some(b'\''),
            encoding: Some(encoding_rs::WINDOWS_1252),
            ..ReadingOptions::default()
        };
        let (records, plan) = read_with(b"card_number;series_code\n'A;1';Z\xFCrich\n", Format::Csv, &options);
        assert_eq!(records[0].2, fields(&[Some("A;1"), Some("Zürich"), None]));
        assert_eq!(records[0].1, "'A;1';Zürich");
        assert_eq!(plan.encoding, "windows-1252");
    }

    #[test]
    fn bad_utf_8_says_which_encoding_to_try() {
        let records = read_all("card_number,series_code\nA1,Z\u{fc}rich\n", Format::Csv);
        assert!(records[0].2.is_ok());
        let (records, _) = read_with(
            b"card_number,series_code\nA1,Z\xFCrich\n",
            Format::Csv,
            &ReadingOptions::default(),
        );
        assert_eq!(records[0].2, Err(RejectReason::MalformedRecord));
    }

    #[test]
    fn csv_without_required_columns_is_refused() {
        let source = open(
            b"card_number,colour\n1,red\n",
            ImportKind::Cards,
            Format::Csv,
            &ReadingOptions::default(),
        );
        assert!(source.err().unwrap().contains("series_code or series_id"));
        assert!(open(b"", ImportKind::Cards, Format::Csv, &ReadingOptions::default()).is_err());
    }

    #[test]
    fn json_lines_accept_both_spellings_and_reject_wrong_types() {
        let text = "{\"cardNumber\":\"A1\",\"seriesCode\":\"S\",\"seriesId\":7}\n\n{\"card_number\":\"A2\",\"series_code\":\"S\"}\n[1,2]\n{\"cardNumber\":5}\nnot json\n";
        let records = read_all(text, Format::Jsonl);
        assert_eq!(
            records[0],
            (1, records[0].1.clone(), fields(&[Some("A1"), Some("S"), Some("7")]))
        );
        assert_eq!(records[1].0, 3, "blank lines are not records but still count as lines");
        assert_eq!(records[2].2, Err(RejectReason::MalformedRecord));
        assert_eq!(records[3].2, Err(RejectReason::MalformedRecord));
        assert_eq!(records[4].2, Err(RejectReason::MalformedRecord));
    }

    #[test]
    fn json_lines_map_keys_and_set_fields() {
        let mapped = options(&[("card_number", "card.no")], &[("series_code", "GOLD")]);
        let text = "{\"card\":{\"no\":\"A1\"}}\n{\"card\":{\"no\":\"A2\"},\"series_code\":\"X\"}\n";
        let (records, _) = read_with(text.as_bytes(), Format::Jsonl, &mapped);
        assert_eq!(records[0].2, fields(&[Some("A1"), Some("GOLD"), None]));
        assert_eq!(records[1].2, Err(RejectReason::MalformedRecord));
        let dialect = ReadingOptions {
            delimiter: Some(b';'),
            ..ReadingOptions::default()
        };
        assert!(open(b"{}", ImportKind::Cards, Format::Jsonl, &dialect).is_err());
    }

    #[test]
    fn skipped_records_are_counted_not_returned() {
        let text = "card_number,series_code\nA,S\nB,S\nC,S\n";
        let OpenedSource { mut source, .. } = open(
            text.as_bytes(),
            ImportKind::Cards,
            Format::Csv,
            &ReadingOptions::default(),
        )
        .unwrap();
        let batch = source.next_batch(10, 2).unwrap().unwrap();
        assert_eq!(batch.first_record, 3);
        assert_eq!(batch.records.len(), 1);
        assert_eq!(batch.records[0].line, 4);
        assert_eq!(source.records_seen(), 3);
    }
}
