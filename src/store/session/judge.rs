//! Judging a batch's rows for duplicates, in record order: against each
//! other, against what this run has already inserted, and against the rest
//! of the database. Pure functions over what the session looked up, shared
//! by both stores.

use std::collections::HashMap;

use rustc_hash::FxHashMap;

use super::backend::{CardExternalId, Holder};
use crate::batch::{CustomerRow, ExternalIdRow};
use crate::domain::{RejectReason, Rejection};

/// Who holds each looked-up key, keyed by the key (FxHash: the writer's
/// thread asks about every row's keys).
pub type Owners = FxHashMap<String, KeyOwner>;

/// Who already holds a key in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOwner {
    /// A record of this run (an earlier batch): the new record is a duplicate in the file.
    ThisRun { record: Option<u64> },
    /// Anything else, a run or a single-record command (`run_id` `None`): a
    /// duplicate in the database.
    Other { run_id: Option<i64> },
}

impl KeyOwner {
    fn in_file(self) -> bool {
        matches!(self, KeyOwner::ThisRun { .. })
    }
}

/// The input line where a record of this run starts, when it is known.
pub type LineOf<'a> = &'a dyn Fn(u64) -> Option<u64>;

/// Where an earlier record is, for a message: "on line 12" (or "in record
/// 11" when its line is unknown).
fn earlier(record: Option<u64>, line_of: LineOf<'_>) -> String {
    match (record, record.and_then(line_of)) {
        (_, Some(line)) => format!(", on line {line}"),
        (Some(record), None) => format!(", in record {record}"),
        (None, None) => String::new(),
    }
}

/// Who stored a key, for a message.
fn stored_by(run_id: Option<i64>) -> String {
    match run_id {
        Some(run) => format!(" (stored by run {run})"),
        None => " (added by hand, by a single-record command)".to_string(),
    }
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
    existing: &[Owners; 2],
    fields: [&'static str; 2],
    line_of: LineOf<'_>,
) -> Vec<Option<Rejection>> {
    // FxHash: a batch's keys are hashed twice per row on the writer's thread.
    // Each accepted key maps to the record that holds it.
    let capacity = rows.len();
    let mut accepted: [FxHashMap<&str, u64>; 2] = [
        FxHashMap::with_capacity_and_hasher(capacity, Default::default()),
        FxHashMap::with_capacity_and_hasher(capacity, Default::default()),
    ];
    rows.iter()
        .map(|row| {
            let owner = |i: usize| {
                let key = row.keys[i]?;
                if let Some(&record) = accepted[i].get(key) {
                    return Some(KeyOwner::ThisRun { record: Some(record) });
                }
                existing[i].get(key).copied()
            };
            let verdict = duplicate_verdict(row, [owner(0), owner(1)], fields, line_of);
            if verdict.is_none() {
                for (map, key) in accepted.iter_mut().zip(row.keys) {
                    if let Some(key) = key {
                        map.insert(key, row.record);
                    }
                }
            }
            verdict
        })
        .collect()
}

/// The verdict for a row whose keys are held by `owners`: in-file before
/// database, the first key before the second; `None` when no key is held.
fn duplicate_verdict(
    row: &RowKeys<'_>,
    owners: [Option<KeyOwner>; 2],
    fields: [&'static str; 2],
    line_of: LineOf<'_>,
) -> Option<Rejection> {
    [true, false].into_iter().find_map(|in_file| {
        (0..2).find_map(|i| {
            let owner = owners[i].filter(|owner| owner.in_file() == in_file)?;
            Some(duplicate(owner, fields[i], row.keys[i], line_of))
        })
    })
}

fn duplicate(owner: KeyOwner, field: &'static str, key: Option<&str>, line_of: LineOf<'_>) -> Rejection {
    let key = key.unwrap_or_default();
    match owner {
        KeyOwner::ThisRun { record } => Rejection::new(
            RejectReason::DuplicateInFile,
            field,
            format!(
                "{field} {key:?} appears earlier in the input{}",
                earlier(record, line_of)
            ),
        ),
        KeyOwner::Other { run_id } => Rejection::new(
            RejectReason::DuplicateInDatabase,
            field,
            format!("{field} {key:?} already exists in the database{}", stored_by(run_id)),
        ),
    }
}

/// Judges external-ID assignments in record order, given the cards they name
/// (`cards`, by card number) and the cards already holding their external
/// IDs (`held_by`: external ID to card number and the run that set it).
pub fn judge_external_id_rows(
    rows: &[ExternalIdRow],
    cards: &HashMap<String, CardExternalId>,
    held_by: &HashMap<String, (String, Holder)>,
    run_id: i64,
    overwrite: bool,
    line_of: LineOf<'_>,
) -> Vec<Option<Rejection>> {
    let this_run = Some(run_id);
    // Card numbers and external IDs set by earlier records of the batch, with those records.
    let mut done_cards: HashMap<&str, u64> = HashMap::new();
    let mut done_ids: HashMap<&str, u64> = HashMap::new();
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
            let card_set_earlier = match done_cards.get(number) {
                Some(&record) => Some(Some(record)),
                None => (card.external_id_set_by.run_id == this_run).then_some(card.external_id_set_by.record),
            };
            let id_set_earlier = match done_ids.get(id) {
                Some(&record) => Some(Some(record)),
                None => holder
                    .filter(|(_, set_by)| set_by.run_id == this_run)
                    .map(|(_, set_by)| set_by.record),
            };
            let verdict = if let Some(record) = card_set_earlier {
                Some(Rejection::new(
                    RejectReason::DuplicateInFile,
                    "card_number",
                    format!(
                        "card {number:?} gets an external ID earlier in the input{}",
                        earlier(record, line_of)
                    ),
                ))
            } else if let Some(record) = id_set_earlier {
                Some(Rejection::new(
                    RejectReason::DuplicateInFile,
                    "external_id",
                    format!(
                        "external_id {id:?} appears earlier in the input{}",
                        earlier(record, line_of)
                    ),
                ))
            } else if card.external_id.as_deref() == Some(id) {
                Some(Rejection::new(
                    RejectReason::DuplicateInDatabase,
                    "external_id",
                    format!(
                        "card {number:?} already has external ID {id:?}{}",
                        stored_by(card.external_id_set_by.run_id)
                    ),
                ))
            } else if let Some((other, set_by)) = holder {
                Some(Rejection::new(
                    RejectReason::DuplicateInDatabase,
                    "external_id",
                    format!(
                        "external_id {id:?} already belongs to card {other:?}{}",
                        stored_by(set_by.run_id)
                    ),
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
                done_cards.insert(number, row.record);
                done_ids.insert(id, row.record);
            }
            verdict
        })
        .collect()
}

/// Judges customer registrations in record order, given who already holds
/// each customer id (`existing[0]`, keyed by the id as text: `keys[i]` for
/// `rows[i]`) and each external ID (`existing[1]`).
pub fn judge_customer_rows(
    rows: &[CustomerRow],
    keys: &[String],
    existing: &[Owners; 2],
    line_of: LineOf<'_>,
) -> Vec<Option<Rejection>> {
    let keys: Vec<RowKeys<'_>> = rows
        .iter()
        .zip(keys)
        .map(|(r, key)| RowKeys {
            record: r.record,
            keys: [Some(key.as_str()), r.external_id.as_deref()],
        })
        .collect();
    classify_duplicates(&keys, existing, ["customer_id", "external_id"], line_of)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut numbers = Owners::default();
        numbers.insert("N9".to_string(), KeyOwner::Other { run_id: Some(3) });
        numbers.insert("N7".to_string(), KeyOwner::ThisRun { record: Some(1) });
        let mut externals = Owners::default();
        externals.insert("E9".to_string(), KeyOwner::Other { run_id: None });
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
        let line_of = |record: u64| (record < 1000).then_some(record + 1);
        let verdicts = classify_duplicates(&rows, &[numbers, externals], ["card_number", "external_id"], &line_of);
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
        let messages: Vec<&str> = verdicts.iter().flatten().map(|r| r.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "card_number \"N1\" appears earlier in the input, on line 2",
                "external_id \"E1\" appears earlier in the input, on line 2",
                "card_number \"N9\" already exists in the database (stored by run 3)",
                "card_number \"N7\" appears earlier in the input, on line 2",
                "external_id \"E9\" already exists in the database (added by hand, by a single-record command)",
                "external_id \"E1\" appears earlier in the input, on line 2",
            ]
        );
    }
}
