//! Reviewing a run's rejects: the groups `rejects summary` and the HTML
//! report show, the rejected field's value read back out of the raw record,
//! and the rejected records as the input had them (`rejects export
//! --as-input`).
//!
//! Everything here reads the run's rejects page by page
//! ([`for_each_reject`]), so memory stays
//! flat however many rejects a run has: a group keeps its count and its
//! first few examples only.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;
use serde_json::Value;

use super::mask::CardMask;
use super::reject_report::{RejectFilter, ReportError, for_each_reject};
use crate::batch::{Format, ImportKind};
use crate::domain::RejectReason;
use crate::import::columns::{MAX_COLUMNS, columns};
use crate::import::encoding;
use crate::import::mapping::{resolve_header, resolve_keys, resolve_positions};
use crate::import::reader::is_cut_raw;
use crate::import::reading::ReadingPlan;
use crate::store::{RejectPages, RunInfo, StoreError};

/// Examples kept per group.
pub const EXAMPLES_PER_GROUP: usize = 3;

/// Why a review could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Write(#[from] std::io::Error),
    /// The run cannot give back its input's records.
    #[error("{0}")]
    NotPossible(String),
}

impl From<ReportError> for ReviewError {
    fn from(error: ReportError) -> Self {
        match error {
            ReportError::Store(error) => ReviewError::Store(error),
            ReportError::Write(error) => ReviewError::Write(error),
        }
    }
}

/// One reject, as an example of its group.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Example {
    pub line: u64,
    pub record: u64,
    /// The rejected field's value, read back from the raw record (absent when
    /// the record could not be read, or the field was missing).
    pub value: Option<String>,
    /// The record as it was (shown escaped in the HTML report).
    #[serde(skip)]
    pub raw: String,
    #[serde(skip)]
    pub message: String,
}

/// The rejects that share a reason and a field.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Group {
    pub reason: RejectReason,
    pub field: String,
    pub count: u64,
    pub examples: Vec<Example>,
}

/// A run's rejects, grouped, with where in the input they fall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// Largest group first; ties by reason, then field.
    pub groups: Vec<Group>,
    /// Every reject's record number, in bins along the run's records (for
    /// the report's strip): `bins[i]` counts rejects in the i-th slice.
    pub bins: Vec<u64>,
    pub total: u64,
}

/// Slices of the input in the report's strip.
pub const BINS: usize = 200;

/// Groups the run's rejects by reason and field, keeping the first examples
/// of each, and bins their records along the run's `records` records.
pub async fn review(
    pages: &mut dyn RejectPages,
    run: &RunInfo,
    filter: &RejectFilter,
    mask: Option<&CardMask>,
) -> Result<Review, ReviewError> {
    let reader = FieldReader::for_run(run);
    let records = run.records_committed.max(1);
    let mut groups: BTreeMap<(RejectReason, String), Group> = BTreeMap::new();
    let mut bins = vec![0u64; BINS];
    let mut total = 0;
    for_each_reject(pages, filter, |row| {
        let masked;
        let row = match mask {
            Some(mask) => {
                masked = mask.row(row);
                &masked
            }
            None => row,
        };
        total += 1;
        let bin = ((row.record.saturating_sub(1)) * BINS as u64 / records).min(BINS as u64 - 1);
        bins[bin as usize] += 1;
        let group = groups.entry((row.reason, row.field.clone())).or_insert_with(|| Group {
            reason: row.reason,
            field: row.field.clone(),
            count: 0,
            examples: Vec::new(),
        });
        group.count += 1;
        if group.examples.len() < EXAMPLES_PER_GROUP {
            group.examples.push(Example {
                line: row.line,
                record: row.record,
                value: reader.value(&row.raw, &row.field),
                raw: row.raw.clone(),
                message: row.message.clone(),
            });
        }
        Ok(())
    })
    .await?;
    let mut groups: Vec<Group> = groups.into_values().collect();
    groups.sort_by_key(|group| std::cmp::Reverse(group.count));
    Ok(Review { groups, bins, total })
}

/// Reads one field's value back out of a raw record, knowing how the run
/// read its input: format, dialect, header and mapping.
pub struct FieldReader {
    kind: Option<ImportKind>,
    plan: ReadingPlan,
    /// CSV: for each of cardbatch's fields, the position of the file's column that feeds it.
    positions: [Option<usize>; MAX_COLUMNS],
    /// JSON lines: the keys `--column` named.
    keys: [Option<String>; MAX_COLUMNS],
    /// Fields `--set` gave, with their values.
    constants: Vec<(usize, String)>,
}

impl FieldReader {
    pub fn for_run(run: &RunInfo) -> FieldReader {
        let kind = ImportKind::from_run_kind(&run.kind);
        let format = run
            .input_format
            .as_deref()
            .and_then(Format::parse)
            .unwrap_or(Format::Csv);
        let plan = ReadingPlan::from_stored(run.reading_plan.as_deref(), format);
        let mut reader = FieldReader {
            kind,
            plan,
            positions: Default::default(),
            keys: Default::default(),
            constants: Vec::new(),
        };
        let Some(kind) = kind else { return reader };
        let plan = &reader.plan;
        match plan.format {
            Format::Jsonl => {
                if let Ok(keys) = resolve_keys(kind, &plan.mapping) {
                    reader.keys = keys.keys;
                    reader.constants = keys.constants;
                }
            }
            Format::Csv => {
                let mapping = if plan.header {
                    let names = run
                        .input_header
                        .as_deref()
                        .and_then(|header| csv_fields(header, plan))
                        .unwrap_or_default();
                    resolve_header(kind, &names, &plan.mapping)
                } else {
                    let width = plan
                        .mapping
                        .columns
                        .iter()
                        .filter_map(|(_, position)| position.trim().parse::<usize>().ok())
                        .max()
                        .unwrap_or(0);
                    resolve_positions(kind, width, &plan.mapping)
                };
                if let Ok(mapping) = mapping {
                    for (position, field) in mapping.by_file_column.iter().enumerate() {
                        if let Some(field) = field {
                            reader.positions[*field] = Some(position);
                        }
                    }
                    reader.constants = mapping.constants;
                }
            }
        }
        reader
    }

    /// The value of `field` (a column's canonical name) in `raw`, if the
    /// record can be read and has it (or `--set` gave it).
    pub fn value(&self, raw: &str, field: &str) -> Option<String> {
        let kind = self.kind?;
        let column = columns(kind).iter().position(|c| c.name == field)?;
        if let Some((_, value)) = self.constants.iter().find(|(c, _)| *c == column) {
            return Some(value.clone());
        }
        let text = match self.plan.format {
            Format::Csv => csv_fields(raw, &self.plan)?.into_iter().nth(self.positions[column]?)?,
            Format::Jsonl => {
                let object: Value = serde_json::from_str(raw).ok()?;
                let value = match &self.keys[column] {
                    Some(key) => lookup(&object, key),
                    None => std::iter::once(columns(kind)[column].name)
                        .chain(columns(kind)[column].aliases.iter().copied())
                        .find_map(|name| lookup(&object, name)),
                }?;
                match value {
                    Value::String(text) => text.clone(),
                    Value::Null => return None,
                    other => other.to_string(),
                }
            }
        };
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_string())
    }
}

/// `a.b` looks up a nested key.
fn lookup<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    name.split('.').try_fold(object, |value, key| value.get(key))
}

/// The fields of one CSV record (the whole text is one record), in the plan's dialect.
fn csv_fields(text: &str, plan: &ReadingPlan) -> Option<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(plan.delimiter_byte())
        .quote(plan.quote_byte())
        .from_reader(text.as_bytes());
    let record = reader.records().next()?.ok()?;
    Some(record.iter().map(str::to_string).collect())
}

/// The input a run read, as far as writing its records back needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputShape<'a> {
    /// How the run read the input: format, encoding, byte-order mark, line ends, header.
    pub plan: ReadingPlan,
    /// The CSV header line (decoded), when the input had one.
    pub header: Option<&'a str>,
}

/// The shape of the run's input, or why its records cannot be given back
/// (checked before anything is written).
pub fn input_shape(run: &RunInfo) -> Result<InputShape<'_>, ReviewError> {
    let format = run.input_format.as_deref().and_then(Format::parse).ok_or_else(|| {
        ReviewError::NotPossible(format!(
            "run {} has no input format on record (it is not an import, or was imported before cardbatch kept it)",
            run.run_id
        ))
    })?;
    let plan = ReadingPlan::from_stored(run.reading_plan.as_deref(), format);
    let header = run.input_header.as_deref();
    if format == Format::Csv && plan.header && header.is_none() {
        return Err(ReviewError::NotPossible(format!(
            "run {} has no CSV header on record",
            run.run_id
        )));
    }
    Ok(InputShape { plan, header })
}

/// Writes the rejects `filter` takes as the input had them, in the input's
/// encoding (its byte-order mark and line ends too): for CSV the run's
/// header line first (title lines skipped with `--skip-lines` are not
/// kept), then each rejected record's raw text, one per line (a record with
/// quoted line breaks keeps them); for JSON lines, each rejected line.
/// Records whose raw text was cut (over `--max-record-bytes`) cannot be
/// given back: they are left out and counted in the result.
pub async fn write_as_input<W: Write>(
    pages: &mut dyn RejectPages,
    shape: InputShape<'_>,
    filter: &RejectFilter,
    mut out: W,
) -> Result<(W, AsInputCounts), ReviewError> {
    let plan = &shape.plan;
    let output_encoding = plan.encoding();
    let line_end = if plan.crlf { "\r\n" } else { "\n" };
    let write_line = |out: &mut W, text: &str| -> std::io::Result<()> {
        out.write_all(&encoding::encode(text, output_encoding))?;
        out.write_all(&encoding::encode(line_end, output_encoding))
    };
    if plan.bom {
        out.write_all(encoding::bom(output_encoding))?;
    }
    if let Some(header) = shape.header.filter(|_| plan.format == Format::Csv && plan.header) {
        write_line(&mut out, header)?;
    }
    let mut counts = AsInputCounts::default();
    for_each_reject(pages, filter, |row| {
        if row.reason == RejectReason::MalformedRecord && is_cut_raw(&row.raw) {
            counts.cut += 1;
            return Ok(());
        }
        counts.written += 1;
        write_line(&mut out, &row.raw)
    })
    .await?;
    out.flush()?;
    Ok((out, counts))
}

/// What `write_as_input` wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AsInputCounts {
    pub written: u64,
    /// Records left out because their raw text was cut.
    pub cut: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RunStatus;

    fn run(format: &str, header: Option<&str>) -> RunInfo {
        RunInfo {
            run_id: 1,
            kind: "import_cards".into(),
            input: Some("drop".into()),
            input_format: Some(format.into()),
            input_header: header.map(str::to_string),
            reading_plan: None,
            reject_report: None,
            input_details: Default::default(),
            status: RunStatus::Completed,
            records_committed: 10,
            inserted: 5,
            unchanged: 0,
            rejected: 5,
            already_committed: 0,
            started_at: "2026-12-01T00:00:00.000Z".into(),
            finished_at: None,
        }
    }

    #[test]
    fn values_come_back_out_of_csv_records_by_header_and_alias() {
        let reader = FieldReader::for_run(&run("csv", Some("cardNumber,series_code,external_id,Status_Label")));
        let raw = "6001000000000018, LUHN1 ,\"CX,1\",SHINY";
        assert_eq!(reader.value(raw, "card_number").as_deref(), Some("6001000000000018"));
        assert_eq!(reader.value(raw, "series_code").as_deref(), Some("LUHN1"));
        assert_eq!(reader.value(raw, "external_id").as_deref(), Some("CX,1"));
        assert_eq!(reader.value(raw, "status_label").as_deref(), Some("SHINY"));
        assert_eq!(reader.value(raw, "customer_id"), None);
        assert_eq!(reader.value("", "card_number"), None);
    }

    #[test]
    fn values_come_back_out_of_json_lines_nested_and_camel_case() {
        let reader = FieldReader::for_run(&run("jsonl", None));
        let raw = r#"{"cardNumber":"60010","customerId":12,"statusInfo":{"reason":"lost"}}"#;
        assert_eq!(reader.value(raw, "card_number").as_deref(), Some("60010"));
        assert_eq!(reader.value(raw, "customer_id").as_deref(), Some("12"));
        assert_eq!(reader.value(raw, "status_reason").as_deref(), Some("lost"));
        assert_eq!(reader.value("not json", "card_number"), None);
    }
}
