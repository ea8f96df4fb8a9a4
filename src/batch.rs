//! The pipeline's contract with the store: what an import hands the store,
//! one validated batch at a time. It sits below both: the import pipeline
//! builds these values, the store's import session judges and writes them.

use std::fmt;
use std::ops::Range;

use compact_str::CompactString;

use crate::domain::{RejectReason, Rejection};

/// The three import kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImportKind {
    Cards,
    ExternalIds,
    Customers,
}

impl ImportKind {
    /// The run kind stored in `runs.kind` and printed in the summary.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Cards => "import_cards",
            ImportKind::ExternalIds => "import_external_ids",
            ImportKind::Customers => "import_customers",
        }
    }

    /// The import kind of a stored run kind (`None` for `generate`).
    pub fn from_run_kind(kind: &str) -> Option<ImportKind> {
        [ImportKind::Cards, ImportKind::ExternalIds, ImportKind::Customers]
            .into_iter()
            .find(|k| k.as_str() == kind)
    }
}

impl fmt::Display for ImportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A card row that passed validation. Short texts (card numbers, external
/// IDs, labels: up to 24 bytes) are stored inline, so a typical row costs no
/// allocation of its own; the fields most rows leave empty are behind one
/// box, which keeps the row at 112 bytes (200 with them inline: validation
/// moves every row once more when it gathers a batch's rows).
#[derive(Debug, Clone, PartialEq)]
pub struct CardRow {
    pub record: u64,
    pub series_id: i64,
    pub card_number: CompactString,
    pub external_id: Option<CompactString>,
    pub status_label: CompactString,
    pub customer_id: Option<i64>,
    /// `None` when all of them are empty.
    pub extras: Option<Box<CardExtras>>,
}

/// The optional card fields most input rows leave empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CardExtras {
    pub status_reason: Option<String>,
    /// JSON object texts.
    pub extended_fields: Option<String>,
    pub custom_fields: Option<String>,
    pub mapped_entity: Option<String>,
}

/// The names of a card's two unique keys, as reject reports give them.
pub const CARD_KEY_FIELDS: [&str; 2] = ["card_number", "external_id"];

impl CardRow {
    /// The row's extra fields; all empty when it has none.
    pub fn extras(&self) -> &CardExtras {
        static NONE: CardExtras = CardExtras {
            status_reason: None,
            extended_fields: None,
            custom_fields: None,
            mapped_entity: None,
        };
        self.extras.as_deref().unwrap_or(&NONE)
    }

    /// The card's unique keys: card number and external ID.
    pub fn keys(&self) -> [Option<&str>; 2] {
        [Some(self.card_number.as_str()), self.external_id.as_deref()]
    }
}

/// An external-ID assignment that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalIdRow {
    pub record: u64,
    pub card_number: CompactString,
    pub external_id: CompactString,
}

/// A customer registration that passed validation; `external_id: None` is generated.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerRow {
    pub record: u64,
    pub customer_id: i64,
    pub external_id: Option<CompactString>,
}

/// The valid rows of a batch, of one kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Rows {
    Cards(Vec<CardRow>),
    ExternalIds(Vec<ExternalIdRow>),
    Customers(Vec<CustomerRow>),
}

/// Where a record came from: its first line and its raw text in the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    pub line: u64,
    pub raw: Range<usize>,
}

/// A validated batch: every record of a contiguous range, each either a valid row or a rejection.
#[derive(Debug, Clone)]
pub struct ValidBatch {
    /// Record number of `sources[0]`.
    pub first_record: u64,
    /// One entry per record of the batch, in order.
    pub sources: Vec<SourceInfo>,
    pub raw_text: String,
    pub rows: Rows,
    /// Validation rejects, in record order.
    pub rejects: Vec<(u64, Rejection)>,
    /// Records whose card number lost its separators (`--strip-separators`).
    pub separators_stripped: u64,
}

impl ValidBatch {
    /// The last record number of the batch (the checkpoint once it is committed).
    pub fn last_record(&self) -> u64 {
        self.first_record + self.sources.len() as u64 - 1
    }

    pub fn source(&self, record: u64) -> &SourceInfo {
        &self.sources[(record - self.first_record) as usize]
    }

    /// The line where `record` starts, if it is in this batch.
    pub fn line_of(&self, record: u64) -> Option<u64> {
        let index = record.checked_sub(self.first_record)?;
        self.sources.get(usize::try_from(index).ok()?).map(|source| source.line)
    }

    /// The records where `line - record` changes, with the new offset, given
    /// the offset of the record before the batch (`None`: unknown, so the
    /// batch's first record is one). Most files have one offset throughout.
    pub fn line_offsets(&self, before: Option<i64>) -> Vec<(u64, i64)> {
        let mut current = before;
        let mut changes = Vec::new();
        for (record, source) in (self.first_record..).zip(&self.sources) {
            let offset = source.line as i64 - record as i64;
            if current != Some(offset) {
                changes.push((record, offset));
                current = Some(offset);
            }
        }
        changes
    }

    /// `line - record` of the batch's last record.
    pub fn last_line_offset(&self) -> Option<i64> {
        let last = self.sources.last()?;
        Some(last.line as i64 - self.last_record() as i64)
    }

    /// The reject-table row for `record`. A NUL in the raw text is stored as
    /// U+FFFD on both stores (PostgreSQL text cannot hold one).
    pub fn reject_row(&self, record: u64, rejection: &Rejection) -> RejectRow {
        let source = self.source(record);
        let raw = &self.raw_text[source.raw.clone()];
        RejectRow {
            record,
            line: source.line,
            reason: rejection.reason,
            field: rejection.field.to_string(),
            message: rejection.message.clone(),
            raw: if raw.contains('\0') {
                raw.replace('\0', "\u{FFFD}")
            } else {
                raw.to_string()
            },
        }
    }
}

/// A row of the rejects table and of the reject report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectRow {
    pub record: u64,
    pub line: u64,
    pub reason: RejectReason,
    pub field: String,
    pub message: String,
    pub raw: String,
}

/// The input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Jsonl,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
        }
    }

    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "csv" => Some(Format::Csv),
            "jsonl" => Some(Format::Jsonl),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_row_stays_small() {
        // Validation moves every row once more when it gathers a batch's rows.
        assert!(
            std::mem::size_of::<CardRow>() <= 112,
            "{}",
            std::mem::size_of::<CardRow>()
        );
    }
}
