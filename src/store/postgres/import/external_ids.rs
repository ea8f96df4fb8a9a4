//! Writing a batch of external-ID assignments to existing cards. The named
//! cards are locked while the batch is judged, so their verdicts hold until
//! commit; an external ID another writer takes meanwhile fails the update,
//! and the session judges the batch again.

use std::collections::HashMap;

use sqlx::PgConnection;

use super::RunContext;
use crate::domain::Rejection;
use crate::store::batch::{CardExternalId, ExternalIdRow, judge_external_id_rows};
use crate::store::{StoreError, decode};

pub(super) async fn judge_external_ids(
    connection: &mut PgConnection,
    context: &RunContext<'_>,
    rows: &[ExternalIdRow],
) -> Result<Vec<Option<Rejection>>, StoreError> {
    let numbers: Vec<&str> = rows.iter().map(|r| r.card_number.as_str()).collect();
    let found = sqlx::query(
        "SELECT card_number, external_id, external_id_run_id FROM cards \
         WHERE org_id = $1 AND card_number = ANY($2) ORDER BY card_number FOR UPDATE",
    )
    .bind(context.org_id)
    .bind(&numbers)
    .fetch_all(&mut *connection)
    .await?;
    let cards: HashMap<String, CardExternalId> =
        found.iter().map(decode::card_external_id).collect::<Result<_, _>>()?;
    let external_ids: Vec<&str> = rows.iter().map(|r| r.external_id.as_str()).collect();
    let holders = sqlx::query(
        "SELECT external_id, card_number, external_id_run_id FROM cards WHERE org_id = $1 AND external_id = ANY($2)",
    )
    .bind(context.org_id)
    .bind(&external_ids)
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
    connection: &mut PgConnection,
    context: &RunContext<'_>,
    rows: &[&ExternalIdRow],
) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let numbers: Vec<&str> = rows.iter().map(|r| r.card_number.as_str()).collect();
    let external_ids: Vec<&str> = rows.iter().map(|r| r.external_id.as_str()).collect();
    // The event carries the previous external ID, so it is written before the update.
    sqlx::query(
        "INSERT INTO events (org_id, run_id, kind, payload, created_at) \
         SELECT c.org_id, $2, 'card_external_id_set', json_build_object('card_id', c.id, \
         'card_number', c.card_number, 'external_id', u.external_id, 'previous_external_id', c.external_id), \
         $3::timestamptz \
         FROM unnest($4::text[], $5::text[]) WITH ORDINALITY AS u(card_number, external_id, n) \
         JOIN cards AS c ON c.org_id = $1 AND c.card_number = u.card_number ORDER BY u.n",
    )
    .bind(context.org_id)
    .bind(context.run_id)
    .bind(&context.created_at)
    .bind(&numbers)
    .bind(&external_ids)
    .execute(&mut *connection)
    .await?;
    // No accepted external ID is held by any card at this point (judged
    // above), so the update cannot trip the unique index midway.
    let updated = sqlx::query(
        "UPDATE cards SET external_id = u.external_id, external_id_run_id = $2 \
         FROM unnest($3::text[], $4::text[]) AS u(card_number, external_id) \
         WHERE cards.org_id = $1 AND cards.card_number = u.card_number",
    )
    .bind(context.org_id)
    .bind(context.run_id)
    .bind(&numbers)
    .bind(&external_ids)
    .execute(&mut *connection)
    .await?
    .rows_affected();
    Ok(updated)
}
