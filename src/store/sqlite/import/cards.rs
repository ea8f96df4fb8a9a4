//! Writing a batch of cards: duplicates within the batch judged in memory and
//! the rest inserted optimistically, with a fall-back that judges the batch
//! against the database first.

use std::collections::HashMap;

use sqlx::SqliteConnection;

use super::{RunContext, owners};
use crate::store::StoreError;
use crate::store::batch::{
    BatchPlan, CARD_KEY_FIELDS, CardRow, ValidBatch, accepted, classify_duplicates, database_rejects, plan_batch,
};
use crate::store::sqlite::json_rows::{JsonRows, json_strings};

/// Writes a batch of cards. Optimistically first: duplicates within the
/// batch are judged in memory and the rest is inserted inside a savepoint; if
/// no row met a key already in the database, every verdict is final. If one
/// did (or a reject budget needs the verdicts before writing), the batch is
/// judged against the database first and only the accepted rows go in.
pub(super) async fn write_cards(
    connection: &mut SqliteConnection,
    context: &RunContext<'_>,
    batch: &ValidBatch,
    rows: &[CardRow],
    budget: Option<u64>,
) -> Result<(BatchPlan, u64), StoreError> {
    if budget.is_none() {
        let nothing_stored = HashMap::new();
        let in_batch = classify_duplicates(
            &rows.iter().map(CardRow::keys).collect::<Vec<_>>(),
            [&nothing_stored, &nothing_stored],
            CARD_KEY_FIELDS,
        );
        let sent: Vec<&CardRow> = rows
            .iter()
            .zip(&in_batch)
            .filter(|(_, v)| v.is_none())
            .map(|(r, _)| r)
            .collect();
        sqlx::raw_sql("SAVEPOINT card_batch").execute(&mut *connection).await?;
        let inserted = insert_cards(connection, context, &sent).await?;
        if inserted == sent.len() as u64 {
            sqlx::raw_sql("RELEASE card_batch").execute(&mut *connection).await?;
            let plan = plan_batch(batch, database_rejects(rows.iter().map(|r| r.record), &in_batch), None);
            return Ok((plan, inserted));
        }
        sqlx::raw_sql("ROLLBACK TO card_batch; RELEASE card_batch")
            .execute(&mut *connection)
            .await?;
    }
    let numbers = owners(
        connection,
        context,
        "SELECT card_number, run_id FROM cards WHERE org_id = ? AND card_number IN (SELECT value FROM json_each(?))",
        json_strings(rows.iter().map(|r| r.card_number.as_str())),
    )
    .await?;
    let external_ids = owners(
        connection,
        context,
        "SELECT external_id, run_id FROM cards WHERE org_id = ? AND external_id IN (SELECT value FROM json_each(?))",
        json_strings(rows.iter().filter_map(|r| r.external_id.as_deref())),
    )
    .await?;
    let verdicts = classify_duplicates(
        &rows.iter().map(CardRow::keys).collect::<Vec<_>>(),
        [&numbers, &external_ids],
        CARD_KEY_FIELDS,
    );
    let plan = plan_batch(
        batch,
        database_rejects(rows.iter().map(|r| r.record), &verdicts),
        budget,
    );
    let accepted = accepted(rows, &verdicts, &plan, |r| r.record);
    let inserted = insert_cards(connection, context, &accepted).await?;
    Ok((plan, inserted))
}

/// Inserts cards in record order, skipping any whose card number or external
/// ID is taken, with one `card_created` event each; returns how many went in.
async fn insert_cards(
    connection: &mut SqliteConnection,
    context: &RunContext<'_>,
    rows: &[&CardRow],
) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut json = JsonRows::with_capacity(rows.len() * 96);
    for row in rows {
        json.begin_row();
        let extras = row.extras();
        json.integer(row.series_id);
        json.string(&row.card_number);
        json.optional_string(row.external_id.as_deref());
        json.string(&row.status_label);
        json.optional_string(extras.status_reason.as_deref());
        json.optional_integer(row.customer_id);
        json.optional_json(extras.extended_fields.as_deref());
        json.optional_json(extras.custom_fields.as_deref());
        json.optional_json(extras.mapped_entity.as_deref());
        json.integer(row.record as i64);
        json.end_row();
    }
    let max_before: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM cards")
        .fetch_one(&mut *connection)
        .await?;
    let inserted = sqlx::query(
        "INSERT INTO cards (org_id, series_id, card_number, external_id, status_label, status_reason, customer_id, \
         extended_fields, custom_fields, mapped_entity, import_record, run_id, external_id_run_id, created_at) \
         SELECT ?1, value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7, value->>8, \
         value->>9, ?2, CASE WHEN value->>2 IS NULL THEN NULL ELSE ?2 END, ?3 FROM jsonb_each(?4) WHERE true \
         ON CONFLICT DO NOTHING",
    )
    .bind(context.org_id)
    .bind(context.run_id)
    .bind(&context.created_at)
    .bind(json.finish())
    .execute(&mut *connection)
    .await?
    .rows_affected();
    // Rowids grow monotonically under the write lock, so the new cards are exactly those above max_before.
    sqlx::query(
        "INSERT INTO events (org_id, run_id, kind, payload, created_at) \
         SELECT org_id, run_id, 'card_created', json_object('card_id', id, 'series_id', series_id, \
         'card_number', card_number, 'external_id', external_id, 'status_label', status_label, \
         'status_reason', status_reason, 'customer_id', customer_id), created_at \
         FROM cards WHERE id > ? ORDER BY id",
    )
    .bind(max_before)
    .execute(&mut *connection)
    .await?;
    Ok(inserted)
}
