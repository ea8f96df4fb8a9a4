//! Judging a batch's rows for duplicates, in record order: against each
//! other, against what this run has already inserted, and against the rest
//! of the database. Pure functions over what the session looked up, shared
//! by both stores.

use std::collections::{HashMap, HashSet};

use rustc_hash::{FxHashMap, FxHashSet};

use super::backend::CardExternalId;
use crate::batch::{CustomerRow, ExternalIdRow};
use crate::domain::{RejectReason, Rejection};

/// Who holds each looked-up key, keyed by the key (FxHash: the writer's
/// thread asks about every row's keys).
pub type Owners = FxHashMap<String, KeyOwner>;

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
    existing: &[Owners; 2],
    fields: [&'static str; 2],
) -> Vec<Option<Rejection>> {
    // FxHash: a batch's keys are hashed twice per row on the writer's thread.
    let capacity = rows.len();
    let mut accepted: [FxHashSet<&str>; 2] = [
        FxHashSet::with_capacity_and_hasher(capacity, Default::default()),
        FxHashSet::with_capacity_and_hasher(capacity, Default::default()),
    ];
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
/// each customer id (`existing[0]`, keyed by the id as text: `keys[i]` for
/// `rows[i]`) and each external ID (`existing[1]`).
pub fn judge_customer_rows(rows: &[CustomerRow], keys: &[String], existing: &[Owners; 2]) -> Vec<Option<Rejection>> {
    let keys: Vec<RowKeys<'_>> = rows
        .iter()
        .zip(keys)
        .map(|(r, key)| RowKeys {
            record: r.record,
            keys: [Some(key.as_str()), r.external_id.as_deref()],
        })
        .collect();
    classify_duplicates(&keys, existing, ["customer_id", "external_id"])
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
        numbers.insert("N9".to_string(), KeyOwner::Other);
        numbers.insert("N7".to_string(), KeyOwner::ThisRun);
        let mut externals = Owners::default();
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
        let verdicts = classify_duplicates(&rows, &[numbers, externals], ["card_number", "external_id"]);
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
}
