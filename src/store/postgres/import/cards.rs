//! Writing a batch of cards: the rows to insert are copied into the
//! session's staging table and inserted with one `INSERT ... SELECT` that
//! also writes each new card's event from its `RETURNING` rows.

use std::collections::HashMap;

use sqlx::{Connection, PgConnection};

use super::{RunContext, copy_in, owners};
use crate::store::batch::{
    BatchPlan, CARD_KEY_FIELDS, CardRow, RowKeys, ValidBatch, accepted, classify_duplicates, database_rejects,
    plan_batch,
};
use crate::store::postgres::copy::CopyRows;
use crate::store::{StoreError, is_unique_violation};

/// Creates the session's staging table (a temporary table lives as long as its connection).
pub(super) async fn create_staging(connection: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::raw_sql(
        "SET client_min_messages = warning; \
         CREATE TEMPORARY TABLE IF NOT EXISTS cardbatch_stage_cards (\
         record bigint NOT NULL, series_id bigint NOT NULL, card_number text NOT NULL, external_id text, \
         status_label text NOT NULL, status_reason text, customer_id bigint, \
         extended_fields json, custom_fields json, mapped_entity json)",
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Inserts every staged row, in record order, with one `card_created` event
/// each (in card id order); returns how many went in. A plain insert, not
/// `ON CONFLICT DO NOTHING`: the speculative insertion that needs costs about
/// half of the statement, and a taken key is rare, so it is met as a unique
/// violation and the batch judged against the database instead.
const INSERT_STAGED: &str = "WITH inserted AS (\
     INSERT INTO cards (org_id, series_id, card_number, external_id, status_label, status_reason, customer_id, \
     extended_fields, custom_fields, mapped_entity, import_record, run_id, external_id_run_id, created_at) \
     SELECT $1, series_id, card_number, external_id, status_label, status_reason, customer_id, \
     extended_fields, custom_fields, mapped_entity, record, $2, CASE WHEN external_id IS NULL THEN NULL ELSE $2 END, \
     $3::timestamptz FROM cardbatch_stage_cards ORDER BY record \
     RETURNING id, org_id, run_id, series_id, card_number, external_id, status_label, status_reason, customer_id, \
     created_at), \
     events AS (INSERT INTO events (org_id, run_id, kind, payload, created_at) \
     SELECT org_id, run_id, 'card_created', json_build_object('card_id', id, 'series_id', series_id, \
     'card_number', card_number, 'external_id', external_id, 'status_label', status_label, \
     'status_reason', status_reason, 'customer_id', customer_id), created_at FROM inserted ORDER BY id) \
     SELECT count(*) FROM inserted";

/// Writes a batch of cards and returns its plan and how many went in.
///
/// Optimistically first, as on SQLite: duplicates within the batch are judged
/// in memory and the rest inserted inside a savepoint; if no row met a key
/// the database holds, every verdict is final. If one did (or a reject budget
/// needs the verdicts before writing), the savepoint is rolled back and the
/// batch judged against the database first: a record rejected for a key in
/// the database then holds none of its keys for the records after it.
pub(super) async fn write_cards(
    connection: &mut PgConnection,
    context: &RunContext<'_>,
    batch: &ValidBatch,
    rows: &[CardRow],
    budget: Option<u64>,
) -> Result<(BatchPlan, u64), StoreError> {
    let keys: Vec<RowKeys<'_>> = rows.iter().map(CardRow::keys).collect();
    if budget.is_none() {
        let nothing_stored = HashMap::new();
        let in_batch = classify_duplicates(&keys, [&nothing_stored, &nothing_stored], CARD_KEY_FIELDS);
        let sent: Vec<&CardRow> = rows
            .iter()
            .zip(&in_batch)
            .filter(|(_, verdict)| verdict.is_none())
            .map(|(row, _)| row)
            .collect();
        let mut savepoint = Connection::begin(&mut *connection).await?;
        match insert_cards(&mut savepoint, context, &sent).await {
            Ok(inserted) => {
                savepoint.commit().await?;
                let plan = plan_batch(batch, database_rejects(rows.iter().map(|r| r.record), &in_batch), None);
                return Ok((plan, inserted));
            }
            Err(StoreError::Database(error)) if is_unique_violation(&error) => savepoint.rollback().await?,
            Err(error) => return Err(error),
        }
    }
    let numbers: Vec<&str> = rows.iter().map(|r| r.card_number.as_str()).collect();
    let external_ids: Vec<&str> = rows.iter().filter_map(|r| r.external_id.as_deref()).collect();
    let number_owners = owners(
        connection,
        context,
        "SELECT card_number, run_id FROM cards WHERE org_id = $1 AND card_number = ANY($2)",
        &numbers,
    )
    .await?;
    let external_id_owners = owners(
        connection,
        context,
        "SELECT external_id, run_id FROM cards WHERE org_id = $1 AND external_id = ANY($2)",
        &external_ids,
    )
    .await?;
    let verdicts = classify_duplicates(&keys, [&number_owners, &external_id_owners], CARD_KEY_FIELDS);
    let plan = plan_batch(
        batch,
        database_rejects(rows.iter().map(|r| r.record), &verdicts),
        budget,
    );
    // A key committed by another writer since the lookup fails this insert
    // with a unique violation, and the session judges the batch again.
    let inserted = insert_cards(connection, context, &accepted(rows, &verdicts, &plan, |r| r.record)).await?;
    Ok((plan, inserted))
}

/// Stages `rows` and inserts them, with their events; returns how many went in.
async fn insert_cards(
    connection: &mut PgConnection,
    context: &RunContext<'_>,
    rows: &[&CardRow],
) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    stage(connection, rows).await?;
    let inserted: i64 = sqlx::query_scalar(INSERT_STAGED)
        .bind(context.org_id)
        .bind(context.run_id)
        .bind(&context.created_at)
        .fetch_one(&mut *connection)
        .await?;
    Ok(inserted as u64)
}

/// Copies the rows into the (emptied) staging table.
async fn stage(connection: &mut PgConnection, rows: &[&CardRow]) -> Result<(), StoreError> {
    sqlx::raw_sql("TRUNCATE cardbatch_stage_cards")
        .execute(&mut *connection)
        .await?;
    let mut copy = CopyRows::with_capacity(rows.len() * 96);
    for row in rows {
        let extras = row.extras();
        copy.integer(row.record as i64);
        copy.integer(row.series_id);
        copy.text(&row.card_number);
        copy.optional_text(row.external_id.as_deref());
        copy.text(&row.status_label);
        copy.optional_text(extras.status_reason.as_deref());
        copy.optional_integer(row.customer_id);
        copy.optional_text(extras.extended_fields.as_deref());
        copy.optional_text(extras.custom_fields.as_deref());
        copy.optional_text(extras.mapped_entity.as_deref());
        copy.end_row();
    }
    copy_in(
        connection,
        "COPY cardbatch_stage_cards (record, series_id, card_number, external_id, status_label, status_reason, \
         customer_id, extended_fields, custom_fields, mapped_entity) FROM STDIN",
        copy,
    )
    .await?;
    Ok(())
}
