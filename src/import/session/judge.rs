//! Judging a batch's rows for duplicates, in record order: against each
//! other, against what this run has already inserted, and against the rest
//! of the database. Pure functions over what the session looked up, shared
//! by both stores.
//!
//! A record whose key the database already holds with exactly the values
//! the record gives is `unchanged` (a cumulative or re-sent file): not
//! inserted, not rejected, no event. A held key with other values is a
//! duplicate in the database, and its message names the first field that
//! differs.

use std::collections::HashMap;

use rustc_hash::FxHashMap;

use crate::batch::{CardRow, CustomerRow, ExternalIdRow};
use crate::domain::{RejectReason, Rejection};
use crate::store::backend::{CardExternalId, Holder, StoredCard};

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

/// The verdict on one row after the database checks.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// To be written.
    Accepted,
    /// Stored already with the same values: nothing to write.
    Unchanged,
    Rejected(Rejection),
}

impl Verdict {
    pub fn is_accepted(&self) -> bool {
        matches!(self, Verdict::Accepted)
    }

    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            Verdict::Rejected(rejection) => Some(rejection),
            _ => None,
        }
    }
}

/// How a record compares with what the database holds for its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    Same,
    /// The first field (in column order) whose values differ, as a message shows them.
    Differs {
        field: &'static str,
        stored: String,
        given: String,
    },
}

/// Compares a card record with the card stored under its number, field by
/// field in column order; JSON fields are compared as JSON values (key
/// order and spacing do not matter). `series_codes` names series in messages.
pub fn compare_card(row: &CardRow, stored: &StoredCard, series_codes: &HashMap<i64, String>) -> Comparison {
    let series = |id: i64| {
        series_codes
            .get(&id)
            .map_or_else(|| format!("series {id}"), |code| format!("{code:?}"))
    };
    let text = |value: Option<&str>| value.map_or_else(|| "empty".to_string(), |value| format!("{value:?}"));
    let differs = |field: &'static str, stored: String, given: String| Comparison::Differs { field, stored, given };
    let extras = row.extras();
    if row.series_id != stored.series_id {
        return differs("series", series(stored.series_id), series(row.series_id));
    }
    if row.status_label.as_str() != stored.status_label {
        return differs(
            "status_label",
            text(Some(&stored.status_label)),
            text(Some(&row.status_label)),
        );
    }
    if row.external_id.as_deref() != stored.external_id.as_deref() {
        return differs(
            "external_id",
            text(stored.external_id.as_deref()),
            text(row.external_id.as_deref()),
        );
    }
    if row.customer_id != stored.customer_id {
        let id = |id: Option<i64>| id.map_or_else(|| "empty".to_string(), |id| id.to_string());
        return differs("customer_id", id(stored.customer_id), id(row.customer_id));
    }
    if extras.status_reason.as_deref() != stored.status_reason.as_deref() {
        return differs(
            "status_reason",
            text(stored.status_reason.as_deref()),
            text(extras.status_reason.as_deref()),
        );
    }
    let json_fields = [
        ("extended_fields", &extras.extended_fields, &stored.extended_fields),
        ("custom_fields", &extras.custom_fields, &stored.custom_fields),
        ("mapped_entity", &extras.mapped_entity, &stored.mapped_entity),
    ];
    for (field, given, held) in json_fields {
        if !same_json(given.as_deref(), held.as_deref()) {
            return differs(field, text(held.as_deref()), text(given.as_deref()));
        }
    }
    Comparison::Same
}

/// True when two optional JSON texts hold the same value (an empty object
/// and no value are not the same).
fn same_json(given: Option<&str>, stored: Option<&str>) -> bool {
    match (given, stored) {
        (None, None) => true,
        (Some(given), Some(stored)) if given == stored => true,
        (Some(given), Some(stored)) => {
            let parse = |text: &str| serde_json::from_str::<serde_json::Value>(text).ok();
            matches!((parse(given), parse(stored)), (Some(a), Some(b)) if a == b)
        }
        _ => false,
    }
}

/// Compares the `index`-th row with the stored values of its first key;
/// `None` when the session has none to compare with.
pub type Compare<'a> = &'a dyn Fn(usize) -> Option<Comparison>;

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
/// run (this batch or an earlier one) is `DUPLICATE_IN_FILE`; a first key
/// held by anything else is unchanged when `compare` finds the stored values
/// the same, `DUPLICATE_IN_DATABASE` otherwise, as is a second key held by
/// anything else. In-file is checked before database. One verdict per row.
pub fn classify_duplicates(
    rows: &[RowKeys<'_>],
    existing: &[Owners; 2],
    fields: [&'static str; 2],
    line_of: LineOf<'_>,
    compare: Compare<'_>,
) -> Vec<Verdict> {
    // FxHash: a batch's keys are hashed twice per row on the writer's thread.
    // Each accepted key maps to the record that holds it.
    let capacity = rows.len();
    let mut accepted: [FxHashMap<&str, u64>; 2] = [
        FxHashMap::with_capacity_and_hasher(capacity, Default::default()),
        FxHashMap::with_capacity_and_hasher(capacity, Default::default()),
    ];
    rows.iter()
        .enumerate()
        .map(|(index, row)| {
            let owner = |i: usize| {
                let key = row.keys[i]?;
                if let Some(&record) = accepted[i].get(key) {
                    return Some(KeyOwner::ThisRun { record: Some(record) });
                }
                existing[i].get(key).copied()
            };
            let verdict = duplicate_verdict(row, [owner(0), owner(1)], fields, line_of, &|| compare(index));
            if verdict.is_accepted() {
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
/// database, the first key before the second; a first key held elsewhere
/// with the same values (`compare`) is unchanged.
fn duplicate_verdict(
    row: &RowKeys<'_>,
    owners: [Option<KeyOwner>; 2],
    fields: [&'static str; 2],
    line_of: LineOf<'_>,
    compare: &dyn Fn() -> Option<Comparison>,
) -> Verdict {
    if let Some(i) = (0..2).find(|&i| owners[i].is_some_and(KeyOwner::in_file)) {
        let owner = owners[i].expect("found above");
        return Verdict::Rejected(duplicate(owner, fields[i], row.keys[i], line_of));
    }
    match owners {
        [Some(owner @ KeyOwner::Other { run_id }), _] => match compare() {
            Some(Comparison::Same) => Verdict::Unchanged,
            Some(Comparison::Differs { field, stored, given }) => {
                let mut rejection = duplicate(owner, fields[0], row.keys[0], line_of);
                rejection.message = format!(
                    "{} {:?} already exists in the database{} with other values: its {field} is {stored}, \
                     this record's {given}",
                    fields[0],
                    row.keys[0].unwrap_or_default(),
                    stored_by(run_id)
                );
                Verdict::Rejected(rejection)
            }
            None => Verdict::Rejected(duplicate(owner, fields[0], row.keys[0], line_of)),
        },
        [_, Some(owner)] => Verdict::Rejected(duplicate(owner, fields[1], row.keys[1], line_of)),
        _ => Verdict::Accepted,
    }
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
) -> Vec<Verdict> {
    let this_run = Some(run_id);
    // Card numbers and external IDs set by earlier records of the batch, with those records.
    let mut done_cards: HashMap<&str, u64> = HashMap::new();
    let mut done_ids: HashMap<&str, u64> = HashMap::new();
    rows.iter()
        .map(|row| {
            let (number, id) = (row.card_number.as_str(), row.external_id.as_str());
            let Some(card) = cards.get(number) else {
                return Verdict::Rejected(Rejection::new(
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
                Verdict::Rejected(Rejection::new(
                    RejectReason::DuplicateInFile,
                    "card_number",
                    format!(
                        "card {number:?} gets an external ID earlier in the input{}",
                        earlier(record, line_of)
                    ),
                ))
            } else if let Some(record) = id_set_earlier {
                Verdict::Rejected(Rejection::new(
                    RejectReason::DuplicateInFile,
                    "external_id",
                    format!(
                        "external_id {id:?} appears earlier in the input{}",
                        earlier(record, line_of)
                    ),
                ))
            } else if card.external_id.as_deref() == Some(id) {
                // Set already, by another run or by hand: nothing to change.
                Verdict::Unchanged
            } else if let Some((other, set_by)) = holder {
                Verdict::Rejected(Rejection::new(
                    RejectReason::DuplicateInDatabase,
                    "external_id",
                    format!(
                        "external_id {id:?} already belongs to card {other:?}{}",
                        stored_by(set_by.run_id)
                    ),
                ))
            } else {
                match card.external_id.as_deref().filter(|_| !overwrite) {
                    Some(current) => Verdict::Rejected(Rejection::new(
                        RejectReason::ExternalIdAlreadySet,
                        "external_id",
                        format!("card {number:?} already has external ID {current:?} (use --overwrite to replace it)"),
                    )),
                    None => Verdict::Accepted,
                }
            };
            if verdict.is_accepted() {
                done_cards.insert(number, row.record);
                done_ids.insert(id, row.record);
            }
            verdict
        })
        .collect()
}

/// Judges customer registrations in record order, given who already holds
/// each customer id (`existing[0]`, keyed by the id as text: `keys[i]` for
/// `rows[i]`) and each external ID (`existing[1]`), and the external IDs
/// registered customers have (`stored`, by customer id as text): a customer
/// registered already with the external ID the record gives (or, when it
/// gives none, with any) is unchanged.
pub fn judge_customer_rows(
    rows: &[CustomerRow],
    keys: &[String],
    existing: &[Owners; 2],
    stored: &HashMap<String, String>,
    line_of: LineOf<'_>,
) -> Vec<Verdict> {
    let row_keys: Vec<RowKeys<'_>> = rows
        .iter()
        .zip(keys)
        .map(|(r, key)| RowKeys {
            record: r.record,
            keys: [Some(key.as_str()), r.external_id.as_deref()],
        })
        .collect();
    let compare = |index: usize| {
        let registered = stored.get(&keys[index])?;
        Some(match rows[index].external_id.as_deref() {
            None => Comparison::Same,
            Some(given) if given == registered => Comparison::Same,
            Some(given) => Comparison::Differs {
                field: "external_id",
                stored: format!("{registered:?}"),
                given: format!("{given:?}"),
            },
        })
    };
    classify_duplicates(&row_keys, existing, ["customer_id", "external_id"], line_of, &compare)
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

    fn reasons(verdicts: &[Verdict]) -> Vec<Option<(RejectReason, &'static str)>> {
        verdicts
            .iter()
            .map(|v| v.rejection().map(|r| (r.reason, r.field)))
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
        let verdicts = classify_duplicates(
            &rows,
            &[numbers, externals],
            ["card_number", "external_id"],
            &line_of,
            &|_| None,
        );
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
        let messages: Vec<&str> = verdicts
            .iter()
            .filter_map(Verdict::rejection)
            .map(|r| r.message.as_str())
            .collect();
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

    #[test]
    fn a_key_stored_with_the_same_values_is_unchanged_and_other_values_are_named() {
        let mut numbers = Owners::default();
        numbers.insert("N1".to_string(), KeyOwner::Other { run_id: Some(3) });
        numbers.insert("N2".to_string(), KeyOwner::Other { run_id: None });
        let rows = [
            keys(1, "N1", None),
            keys(2, "N2", None),
            keys(3, "N1", None),
            keys(4, "N3", None),
        ];
        let compare = |index: usize| match index {
            0 | 2 => Some(Comparison::Same),
            1 => Some(Comparison::Differs {
                field: "status_label",
                stored: "\"ACTIVE\"".into(),
                given: "\"NOT_ISSUED\"".into(),
            }),
            _ => None,
        };
        let verdicts = classify_duplicates(
            &rows,
            &[numbers, Owners::default()],
            ["card_number", "external_id"],
            &|_| None,
            &compare,
        );
        // An unchanged record holds nothing: the same record again is unchanged too.
        assert_eq!(verdicts[0], Verdict::Unchanged);
        assert_eq!(verdicts[2], Verdict::Unchanged);
        assert_eq!(verdicts[3], Verdict::Accepted);
        assert_eq!(
            verdicts[1].rejection().unwrap().message,
            "card_number \"N2\" already exists in the database (added by hand, by a single-record command) with \
             other values: its status_label is \"ACTIVE\", this record's \"NOT_ISSUED\""
        );
    }
}
