//! What an import hands the store, one batch at a time, and the pure logic
//! both backends share to judge a batch against the database: duplicate
//! classification in record order and the `--max-rejects` cut.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::Range;

use compact_str::CompactString;

use crate::domain::{RejectReason, Rejection};
use crate::numbers::NumberFormat;

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
    pub fn keys(&self) -> RowKeys<'_> {
        RowKeys {
            record: self.record,
            keys: [Some(self.card_number.as_str()), self.external_id.as_deref()],
        }
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
}

impl ValidBatch {
    /// The last record number of the batch (the checkpoint once it is committed).
    pub fn last_record(&self) -> u64 {
        self.first_record + self.sources.len() as u64 - 1
    }

    pub fn source(&self, record: u64) -> &SourceInfo {
        &self.sources[(record - self.first_record) as usize]
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

/// How an import is started.
#[derive(Debug, Clone)]
pub struct ImportStart {
    pub kind: ImportKind,
    pub input_name: String,
    pub input_hash: String,
    pub dry_run: bool,
    /// Consecutive batches may share a transaction (`--batch-size` not
    /// given); otherwise each batch is committed on its own.
    pub group_commits: bool,
    /// `import external-ids --overwrite`.
    pub overwrite_external_ids: bool,
    /// The org's external-ID format and counter floor, for customers without one.
    pub external_id_generation: Option<(NumberFormat, u64)>,
}

/// The status of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Being written, or stopped without a word (a crash, `kill -9`, a lost connection).
    Running,
    Completed,
    /// Stopped at `--max-rejects`.
    Aborted,
    /// Stopped by SIGINT or SIGTERM at a batch boundary.
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Aborted => "aborted",
            RunStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(text: &str) -> Option<RunStatus> {
        match text {
            "running" => Some(RunStatus::Running),
            "completed" => Some(RunStatus::Completed),
            "aborted" => Some(RunStatus::Aborted),
            "interrupted" => Some(RunStatus::Interrupted),
            _ => None,
        }
    }
}

/// A run as stored: its identity, status and committed totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunState {
    pub run_id: i64,
    pub status: RunStatus,
    /// Every record up to this number has its verdict committed.
    pub records_committed: u64,
    pub inserted: u64,
    pub rejected: u64,
}

/// What one committed batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub inserted: u64,
    pub rejected: u64,
    /// Set when `--max-rejects` was exceeded: the record of the reject that
    /// exceeded it; records after it were not judged.
    pub stopped_at: Option<u64>,
}

/// Who already holds a key in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOwner {
    /// A record of this run (an earlier batch): the new record is a duplicate in the file.
    ThisRun,
    /// Anything else: a duplicate in the database.
    Other,
}

/// Up to two unique keys of a row (e.g. card number and external ID), with their column names.
pub struct RowKeys<'a> {
    pub record: u64,
    pub keys: [Option<&'a str>; 2],
}

/// Judges rows against each other and against what the database already
/// holds, in record order: a key already taken by an accepted record of this
/// run (this batch or an earlier one) is `DUPLICATE_IN_FILE`, a key held by
/// anything else `DUPLICATE_IN_DATABASE`; in-file is checked before database.
/// Returns one verdict per row (`None` = accepted).
pub fn classify_duplicates(
    rows: &[RowKeys<'_>],
    existing: [&HashMap<String, KeyOwner>; 2],
    fields: [&'static str; 2],
) -> Vec<Option<Rejection>> {
    let mut accepted: [HashSet<&str>; 2] = [HashSet::new(), HashSet::new()];
    rows.iter()
        .map(|row| {
            let owner = |i: usize| {
                let key = row.keys[i]?;
                if accepted[i].contains(key) {
                    return Some(KeyOwner::ThisRun);
                }
                existing[i].get(key).copied()
            };
            let verdict = duplicate_verdict(row, [owner(0), owner(1)], fields);
            if verdict.is_none() {
                for (set, key) in accepted.iter_mut().zip(row.keys) {
                    if let Some(key) = key {
                        set.insert(key);
                    }
                }
            }
            verdict
        })
        .collect()
}

/// The verdict for a row whose keys are held by `owners`: in-file before
/// database, the first key before the second; `None` when no key is held.
fn duplicate_verdict(row: &RowKeys<'_>, owners: [Option<KeyOwner>; 2], fields: [&'static str; 2]) -> Option<Rejection> {
    [KeyOwner::ThisRun, KeyOwner::Other].into_iter().find_map(|wanted| {
        (0..2)
            .find(|&i| owners[i] == Some(wanted))
            .map(|i| duplicate(wanted, fields[i], row.keys[i]))
    })
}

fn duplicate(owner: KeyOwner, field: &'static str, key: Option<&str>) -> Rejection {
    let key = key.unwrap_or_default();
    match owner {
        KeyOwner::ThisRun => Rejection::new(
            RejectReason::DuplicateInFile,
            field,
            format!("{field} {key:?} appears earlier in the input"),
        ),
        KeyOwner::Other => Rejection::new(
            RejectReason::DuplicateInDatabase,
            field,
            format!("{field} {key:?} already exists in the database"),
        ),
    }
}

/// A card as the external-ID import sees it.
#[derive(Debug, Clone)]
pub struct CardExternalId {
    pub external_id: Option<String>,
    /// The run that last set the external ID.
    pub external_id_run_id: Option<i64>,
}

/// Judges external-ID assignments in record order, given the cards they name
/// (`cards`, by card number) and the cards already holding their external
/// IDs (`held_by`: external ID to card number and the run that set it).
pub fn judge_external_id_rows(
    rows: &[ExternalIdRow],
    cards: &HashMap<String, CardExternalId>,
    held_by: &HashMap<String, (String, Option<i64>)>,
    run_id: i64,
    overwrite: bool,
) -> Vec<Option<Rejection>> {
    let this_run = Some(run_id);
    let mut done_cards: HashSet<&str> = HashSet::new();
    let mut done_ids: HashSet<&str> = HashSet::new();
    rows.iter()
        .map(|row| {
            let (number, id) = (row.card_number.as_str(), row.external_id.as_str());
            let Some(card) = cards.get(number) else {
                return Some(Rejection::new(
                    RejectReason::CardNotFound,
                    "card_number",
                    format!("card {number:?} does not exist"),
                ));
            };
            let holder = held_by.get(id);
            let verdict = if done_cards.contains(number) || card.external_id_run_id == this_run {
                Some(Rejection::new(
                    RejectReason::DuplicateInFile,
                    "card_number",
                    format!("card {number:?} gets an external ID earlier in the input"),
                ))
            } else if done_ids.contains(id) || holder.is_some_and(|(_, run)| *run == this_run) {
                Some(Rejection::new(
                    RejectReason::DuplicateInFile,
                    "external_id",
                    format!("external_id {id:?} appears earlier in the input"),
                ))
            } else if card.external_id.as_deref() == Some(id) {
                Some(Rejection::new(
                    RejectReason::DuplicateInDatabase,
                    "external_id",
                    format!("card {number:?} already has external ID {id:?}"),
                ))
            } else if let Some((other, _)) = holder {
                Some(Rejection::new(
                    RejectReason::DuplicateInDatabase,
                    "external_id",
                    format!("external_id {id:?} already belongs to card {other:?}"),
                ))
            } else {
                let keep_current = !overwrite;
                card.external_id.as_deref().filter(|_| keep_current).map(|current| {
                    Rejection::new(
                        RejectReason::ExternalIdAlreadySet,
                        "external_id",
                        format!("card {number:?} already has external ID {current:?} (use --overwrite to replace it)"),
                    )
                })
            };
            if verdict.is_none() {
                done_cards.insert(number);
                done_ids.insert(id);
            }
            verdict
        })
        .collect()
}

/// Judges customer registrations in record order, given who already holds
/// each customer id (`customers`, keyed by the id as text: `keys[i]` for
/// `rows[i]`) and each external ID (`external_ids`).
pub fn judge_customer_rows(
    rows: &[CustomerRow],
    keys: &[String],
    customers: &HashMap<String, KeyOwner>,
    external_ids: &HashMap<String, KeyOwner>,
) -> Vec<Option<Rejection>> {
    let keys: Vec<RowKeys<'_>> = rows
        .iter()
        .zip(keys)
        .map(|(r, key)| RowKeys {
            record: r.record,
            keys: [Some(key.as_str()), r.external_id.as_deref()],
        })
        .collect();
    classify_duplicates(&keys, [customers, external_ids], ["customer_id", "external_id"])
}

/// The rejections among `verdicts`, paired with their rows' record numbers.
pub fn database_rejects(records: impl Iterator<Item = u64>, verdicts: &[Option<Rejection>]) -> Vec<(u64, Rejection)> {
    records
        .zip(verdicts)
        .filter_map(|(record, verdict)| verdict.clone().map(|r| (record, r)))
        .collect()
}

/// The rows that passed the database checks and lie before the budget cut.
pub fn accepted<'r, T>(
    rows: &'r [T],
    verdicts: &[Option<Rejection>],
    plan: &BatchPlan,
    record: impl Fn(&T) -> u64,
) -> Vec<&'r T> {
    rows.iter()
        .zip(verdicts)
        .filter(|(row, verdict)| verdict.is_none() && record(row) < plan.accept_below)
        .map(|(row, _)| row)
        .collect()
}

/// The verdicts of a batch after the database checks, cut at `--max-rejects`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchPlan {
    /// Every reject to store, in record order.
    pub rejects: Vec<(u64, Rejection)>,
    /// Rows are accepted only below this record (exclusive); the checkpoint is `through`.
    pub accept_below: u64,
    pub through: u64,
    pub stopped_at: Option<u64>,
}

/// Merges validation and database rejects in record order and applies the
/// reject budget: when the run's `budget` (rejects still allowed) is exceeded,
/// the batch stops at the reject that exceeded it.
pub fn plan_batch(batch: &ValidBatch, database_rejects: Vec<(u64, Rejection)>, budget: Option<u64>) -> BatchPlan {
    let mut rejects: Vec<(u64, Rejection)> = batch.rejects.iter().cloned().chain(database_rejects).collect();
    rejects.sort_by_key(|(record, _)| *record);
    let last = batch.last_record();
    match budget {
        Some(budget) if rejects.len() as u64 > budget => {
            let stop = rejects[budget as usize].0;
            rejects.truncate(budget as usize + 1);
            BatchPlan {
                rejects,
                accept_below: stop,
                through: stop,
                stopped_at: Some(stop),
            }
        }
        _ => BatchPlan {
            rejects,
            accept_below: last + 1,
            through: last,
            stopped_at: None,
        },
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

    fn keys(record: u64, a: &'static str, b: Option<&'static str>) -> RowKeys<'static> {
        RowKeys {
            record,
            keys: [Some(a), b],
        }
    }

    fn reasons(verdicts: &[Option<Rejection>]) -> Vec<Option<(RejectReason, &'static str)>> {
        verdicts
            .iter()
            .map(|v| v.as_ref().map(|r| (r.reason, r.field)))
            .collect()
    }

    #[test]
    fn first_occurrence_wins_and_database_comes_second() {
        let mut numbers = HashMap::new();
        numbers.insert("N9".to_string(), KeyOwner::Other);
        numbers.insert("N7".to_string(), KeyOwner::ThisRun);
        let mut externals = HashMap::new();
        externals.insert("E9".to_string(), KeyOwner::Other);
        let rows = [
            keys(1, "N1", Some("E1")),
            keys(2, "N1", Some("E2")), // number repeats record 1
            keys(3, "N2", Some("E1")), // external ID repeats record 1
            keys(4, "N9", None),       // in the database
            keys(5, "N7", None),       // inserted by an earlier batch of this run
            keys(6, "N3", Some("E9")), // external ID in the database
            keys(7, "N9", Some("E1")), // both: in-file wins
            keys(8, "N3", None),       // record 6 was rejected, so N3 is free
        ];
        let verdicts = classify_duplicates(&rows, [&numbers, &externals], ["card_number", "external_id"]);
        assert_eq!(
            reasons(&verdicts),
            [
                None,
                Some((RejectReason::DuplicateInFile, "card_number")),
                Some((RejectReason::DuplicateInFile, "external_id")),
                Some((RejectReason::DuplicateInDatabase, "card_number")),
                Some((RejectReason::DuplicateInFile, "card_number")),
                Some((RejectReason::DuplicateInDatabase, "external_id")),
                Some((RejectReason::DuplicateInFile, "external_id")),
                None,
            ]
        );
    }

    fn batch(first: u64, count: usize, rejects: Vec<(u64, Rejection)>) -> ValidBatch {
        ValidBatch {
            first_record: first,
            sources: (0..count)
                .map(|i| SourceInfo {
                    line: first + i as u64 + 1,
                    raw: 0..0,
                })
                .collect(),
            raw_text: String::new(),
            rows: Rows::Cards(Vec::new()),
            rejects,
        }
    }

    fn missing(record: u64) -> (u64, Rejection) {
        (
            record,
            Rejection::new(RejectReason::MissingField, "card_number", "missing"),
        )
    }

    #[test]
    fn budget_cuts_at_the_reject_that_exceeds_it() {
        let b = batch(11, 10, vec![missing(12), missing(15), missing(19)]);
        let unlimited = plan_batch(&b, vec![missing(13)], None);
        assert_eq!(
            unlimited.rejects.iter().map(|r| r.0).collect::<Vec<_>>(),
            [12, 13, 15, 19]
        );
        assert_eq!(
            (unlimited.accept_below, unlimited.through, unlimited.stopped_at),
            (21, 20, None)
        );
        let cut = plan_batch(&b, vec![missing(13)], Some(2));
        assert_eq!(cut.rejects.iter().map(|r| r.0).collect::<Vec<_>>(), [12, 13, 15]);
        assert_eq!((cut.accept_below, cut.through, cut.stopped_at), (15, 15, Some(15)));
        let exact = plan_batch(&b, vec![], Some(3));
        assert_eq!(exact.stopped_at, None);
    }
}
