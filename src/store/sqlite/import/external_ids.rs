//! Writing a batch of external-ID assignments to existing cards.

use std::collections::HashMap;

use sqlx::SqliteConnection;

use super::RunContext;
use crate::domain::Rejection;
use crate::store::batch::{CardExternalId, ExternalIdRow, judge_external_id_rows};
use crate::store::sqlite::json_rows::{JsonRows, json_strings};
use crate::store::{StoreError, decode};

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
    let cards: HashMap<String, CardExternalId> =
        found.iter().map(decode::card_external_id).collect::<Result<_, _>>()?;
    let holders = sqlx::query(
        "SELECT external_id, card_number, external_id_run_id FROM cards WHERE org_id = ? \
         AND external_id IN (SELECT value FROM json_each(?))",
    )
    .bind(context.org_id)
    .bind(json_strings(rows.iter().map(|r| r.external_id.as_str())))
    .fetch_all(&mut *connection)
    .await?;
    let held_by: HashMap<String, (String, Option<i64>)> = holders
        .iter()
        .map(decode::external_id_holder)
        .collect::<Result<_, _>>()?;
    Ok(judge_external_id_rows(
        rows,
        &cards,
        &held_by,
        context.run_id,
        context.start.overwrite_external_ids,
    ))
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
