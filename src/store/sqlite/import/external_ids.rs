//! Writing a batch of external-ID assignments to existing cards.

use std::collections::{HashMap, HashSet};

use sqlx::{Row, SqliteConnection};

use super::RunContext;
use crate::domain::{RejectReason, Rejection};
use crate::store::StoreError;
use crate::store::batch::ExternalIdRow;
use crate::store::sqlite::json_rows::{JsonRows, json_strings};

/// A card as the external-ID import sees it.
struct CardState {
    external_id: Option<String>,
    external_id_run_id: Option<i64>,
}

pub(super) async fn judge_external_ids(
    connection: &mut SqliteConnection,
    context: &RunContext<'_>,
    rows: &[ExternalIdRow],
) -> Result<Vec<Option<Rejection>>, StoreError> {
    let found = sqlx::query(
        "SELECT card_number, external_id, external_id_run_id FROM cards \
         WHERE org_id = ? AND card_number IN (SELECT value FROM json_each(?))",
    )
    .bind(context.org_id)
    .bind(json_strings(rows.iter().map(|r| r.card_number.as_str())))
    .fetch_all(&mut *connection)
    .await?;
    let mut cards = HashMap::with_capacity(found.len());
    for row in &found {
        cards.insert(
            row.try_get::<String, _>("card_number")?,
            CardState {
                external_id: row.try_get("external_id")?,
                external_id_run_id: row.try_get("external_id_run_id")?,
            },
        );
    }
    let holders = sqlx::query(
        "SELECT external_id, card_number, external_id_run_id FROM cards WHERE org_id = ? \
         AND external_id IN (SELECT value FROM json_each(?))",
    )
    .bind(context.org_id)
    .bind(json_strings(rows.iter().map(|r| r.external_id.as_str())))
    .fetch_all(&mut *connection)
    .await?;
    let mut held_by: HashMap<String, (String, Option<i64>)> = HashMap::with_capacity(holders.len());
    for row in &holders {
        held_by.insert(
            row.try_get("external_id")?,
            (row.try_get("card_number")?, row.try_get("external_id_run_id")?),
        );
    }
    let this_run = Some(context.run_id);
    let mut done_cards: HashSet<&str> = HashSet::new();
    let mut done_ids: HashSet<&str> = HashSet::new();
    let verdicts = rows
        .iter()
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
                let keep_current = !context.start.overwrite_external_ids;
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
        .collect();
    Ok(verdicts)
}

pub(super) async fn update_external_ids(
    connection: &mut SqliteConnection,
    context: &RunContext<'_>,
    rows: &[&ExternalIdRow],
) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut json = JsonRows::with_capacity(rows.len() * 48);
    for row in rows {
        json.begin_row();
        json.string(&row.card_number);
        json.string(&row.external_id);
        json.end_row();
    }
    let json = json.finish();
    // The event carries the previous external ID, so it is written before the update.
    sqlx::query(
        "INSERT INTO events (org_id, run_id, kind, payload, created_at) \
         SELECT c.org_id, ?2, 'card_external_id_set', json_object('card_id', c.id, 'card_number', c.card_number, \
         'external_id', j.value->>1, 'previous_external_id', c.external_id), ?3 \
         FROM jsonb_each(?4) AS j JOIN cards AS c ON c.org_id = ?1 AND c.card_number = j.value->>0 ORDER BY j.key",
    )
    .bind(context.org_id)
    .bind(context.run_id)
    .bind(&context.created_at)
    .bind(&json)
    .execute(&mut *connection)
    .await?;
    // No accepted external ID is held by any card at this point (judged above),
    // so the row-by-row update can never trip the unique index midway.
    let updated = sqlx::query(
        "UPDATE cards SET external_id = j.value->>1, external_id_run_id = ?2 FROM jsonb_each(?3) AS j \
         WHERE cards.org_id = ?1 AND cards.card_number = j.value->>0",
    )
    .bind(context.org_id)
    .bind(context.run_id)
    .bind(&json)
    .execute(&mut *connection)
    .await?
    .rows_affected();
    Ok(updated)
}
