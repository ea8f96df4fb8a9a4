//! Writing a batch of cards: duplicates within the batch are judged in
//! memory; the rest is copied into the session's staging table and inserted
//! with one `INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING` that
//! also writes each new card's event. A staged row that did not go in met a
//! key the database already holds (committed by anyone, this run included):
//! its owner is looked up and it becomes a duplicate reject.

use std::collections::{HashMap, HashSet};

use sqlx::{Connection, PgConnection};

use super::{RunContext, copy_in, owners};
use crate::domain::Rejection;
use crate::store::StoreError;
use crate::store::batch::{
    BatchPlan, CARD_KEY_FIELDS, CardRow, RowKeys, ValidBatch, classify_duplicates, database_rejects, plan_batch,
};
use crate::store::postgres::copy::CopyRows;

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

/// Inserts the staged rows below record `below` that are not `excluded`, in
/// record order, skipping any whose card number or external ID is taken, with
/// one `card_created` event each (in card id order). Returns the records inserted.
const INSERT_STAGED: &str = "WITH inserted AS (\
     INSERT INTO cards (org_id, series_id, card_number, external_id, status_label, status_reason, customer_id, \
     extended_fields, custom_fields, mapped_entity, import_record, run_id, external_id_run_id, created_at) \
     SELECT $1, series_id, card_number, external_id, status_label, status_reason, customer_id, \
     extended_fields, custom_fields, mapped_entity, record, $2, CASE WHEN external_id IS NULL THEN NULL ELSE $2 END, \
     $3::timestamptz FROM cardbatch_stage_cards WHERE record < $4 AND record <> ALL($5::bigint[]) ORDER BY record \
     ON CONFLICT DO NOTHING \
     RETURNING id, org_id, run_id, series_id, card_number, external_id, status_label, status_reason, customer_id, \
     import_record, created_at), \
     events AS (INSERT INTO events (org_id, run_id, kind, payload, created_at) \
     SELECT org_id, run_id, 'card_created', json_build_object('card_id', id, 'series_id', series_id, \
     'card_number', card_number, 'external_id', external_id, 'status_label', status_label, \
     'status_reason', status_reason, 'customer_id', customer_id), created_at FROM inserted ORDER BY id) \
     SELECT import_record FROM inserted";

/// Writes a batch of cards and returns its plan and how many went in.
///
/// With a reject budget, a cut can fall inside the batch after rows past it
/// went in: the batch's savepoint is rolled back and the rows before the cut
/// inserted again, until no inserted row lies past the cut. (A concurrent
/// writer can only add rejects, so the cut only moves earlier.)
pub(super) async fn write_cards(
    connection: &mut PgConnection,
    context: &RunContext<'_>,
    batch: &ValidBatch,
    rows: &[CardRow],
    budget: Option<u64>,
) -> Result<(BatchPlan, u64), StoreError> {
    let keys: Vec<RowKeys<'_>> = rows.iter().map(CardRow::keys).collect();
    let nothing_stored = HashMap::new();
    let in_batch = classify_duplicates(&keys, [&nothing_stored, &nothing_stored], CARD_KEY_FIELDS);
    let staged: Vec<&CardRow> = rows
        .iter()
        .zip(&in_batch)
        .filter(|(_, verdict)| verdict.is_none())
        .map(|(row, _)| row)
        .collect();
    stage(connection, &staged).await?;

    let mut rejects = database_rejects(rows.iter().map(|r| r.record), &in_batch);
    // Records known not to go in (keys held in the database), skipped by the insert.
    let mut excluded: HashSet<u64> = HashSet::new();
    let mut below = batch.last_record() + 1;
    loop {
        let mut savepoint = Connection::begin(&mut *connection).await?;
        let inserted: HashSet<i64> = sqlx::query_scalar(INSERT_STAGED)
            .bind(context.org_id)
            .bind(context.run_id)
            .bind(&context.created_at)
            .bind(below as i64)
            .bind(excluded.iter().map(|&record| record as i64).collect::<Vec<_>>())
            .fetch_all(&mut *savepoint)
            .await?
            .into_iter()
            .collect();
        let missed: Vec<&CardRow> = staged
            .iter()
            .copied()
            .filter(|r| r.record < below && !excluded.contains(&r.record) && !inserted.contains(&(r.record as i64)))
            .collect();
        for (record, rejection) in judge_missed(&mut savepoint, context, &missed).await? {
            rejects.push((record, rejection));
            excluded.insert(record);
        }
        let plan = plan_batch(batch, rejects.clone(), budget);
        if inserted.iter().all(|&record| (record as u64) < plan.accept_below) {
            savepoint.commit().await?;
            return Ok((plan, inserted.len() as u64));
        }
        savepoint.rollback().await?;
        below = plan.accept_below;
    }
}

/// Copies the rows into the (emptied) staging table.
async fn stage(connection: &mut PgConnection, rows: &[&CardRow]) -> Result<(), StoreError> {
    sqlx::raw_sql("TRUNCATE cardbatch_stage_cards")
        .execute(&mut *connection)
        .await?;
    let mut copy = CopyRows::with_capacity(rows.len() * 96);
    for row in rows {
        copy.integer(row.record as i64);
        copy.integer(row.series_id);
        copy.text(&row.card_number);
        copy.optional_text(row.external_id.as_deref());
        copy.text(&row.status_label);
        copy.optional_text(row.status_reason.as_deref());
        copy.optional_integer(row.customer_id);
        copy.optional_text(row.extended_fields.as_deref());
        copy.optional_text(row.custom_fields.as_deref());
        copy.optional_text(row.mapped_entity.as_deref());
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

/// The verdicts for staged rows the insert skipped: each met a key that a
/// committed row holds, this run's (a duplicate in the file) or another's.
async fn judge_missed(
    connection: &mut PgConnection,
    context: &RunContext<'_>,
    missed: &[&CardRow],
) -> Result<Vec<(u64, Rejection)>, StoreError> {
    if missed.is_empty() {
        return Ok(Vec::new());
    }
    let numbers: Vec<&str> = missed.iter().map(|r| r.card_number.as_str()).collect();
    let external_ids: Vec<&str> = missed.iter().filter_map(|r| r.external_id.as_deref()).collect();
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
    let keys: Vec<RowKeys<'_>> = missed.iter().map(|row| row.keys()).collect();
    let verdicts = classify_duplicates(&keys, [&number_owners, &external_id_owners], CARD_KEY_FIELDS);
    missed
        .iter()
        .zip(verdicts)
        .map(|(row, verdict)| {
            // ON CONFLICT DO NOTHING skips a row only for a committed (or our own) holder of its key.
            verdict.map(|rejection| (row.record, rejection)).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "card {:?} was neither inserted nor found in the database",
                    row.card_number
                ))
            })
        })
        .collect()
}
