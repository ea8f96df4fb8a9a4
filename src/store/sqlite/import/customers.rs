//! Writing a batch of customer registrations, generating the external IDs
//! that are missing.

use sqlx::SqliteConnection;

use super::{RunContext, owners};
use crate::domain::Rejection;
use crate::store::StoreError;
use crate::store::batch::{CustomerRow, judge_customer_rows};
use crate::store::sqlite::json_rows::{JsonRows, json_strings};
use crate::store::sqlite::sequences::reserve_external_ids;

pub(super) async fn judge_customers(
    connection: &mut SqliteConnection,
    context: &RunContext<'_>,
    rows: &[CustomerRow],
) -> Result<Vec<Option<Rejection>>, StoreError> {
    let customer_keys: Vec<String> = rows.iter().map(|r| r.customer_id.to_string()).collect();
    let customers = owners(
        connection,
        context,
        "SELECT CAST(customer_id AS TEXT), run_id FROM customers \
         WHERE org_id = ? AND customer_id IN (SELECT value FROM json_each(?))",
        format!("[{}]", customer_keys.join(",")),
    )
    .await?;
    let external_ids = owners(
        connection,
        context,
        "SELECT external_id, run_id FROM customers WHERE org_id = ? AND external_id IN (SELECT value FROM json_each(?))",
        json_strings(rows.iter().filter_map(|r| r.external_id.as_deref())),
    )
    .await?;
    Ok(judge_customer_rows(rows, &customer_keys, &customers, &external_ids))
}

pub(super) async fn insert_customers(
    connection: &mut SqliteConnection,
    context: &RunContext<'_>,
    rows: &[&CustomerRow],
) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let max_before: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM customers")
        .fetch_one(&mut *connection)
        .await?;
    // Customers with an external ID go in first, so generated IDs can skip theirs.
    let (given, missing): (Vec<&CustomerRow>, Vec<&CustomerRow>) = rows.iter().partition(|r| r.external_id.is_some());
    let mut json = JsonRows::with_capacity(rows.len() * 40);
    for row in &given {
        json.begin_row();
        json.integer(row.customer_id);
        json.optional_string(row.external_id.as_deref());
        json.integer(0);
        json.end_row();
    }
    let mut inserted = insert_customer_rows(connection, context, json).await?;
    if !missing.is_empty() {
        let Some((format, offset)) = &context.start.external_id_generation else {
            return Err(StoreError::Corrupt(
                "customers without external ID but no generation format".into(),
            ));
        };
        let generated = reserve_external_ids(connection, context.org_id, format, *offset, missing.len()).await?;
        let mut json = JsonRows::with_capacity(missing.len() * 40);
        for (row, external_id) in missing.iter().zip(&generated) {
            json.begin_row();
            json.integer(row.customer_id);
            json.string(external_id);
            json.integer(1);
            json.end_row();
        }
        inserted += insert_customer_rows(connection, context, json).await?;
    }
    sqlx::query(
        "INSERT INTO events (org_id, run_id, kind, payload, created_at) \
         SELECT org_id, run_id, 'customer_registered', json_object('customer_row_id', id, 'customer_id', customer_id, \
         'external_id', external_id, 'external_id_generated', json(CASE external_id_generated WHEN 1 THEN 'true' ELSE 'false' END)), \
         created_at FROM customers WHERE id > ? ORDER BY id",
    )
    .bind(max_before)
    .execute(&mut *connection)
    .await?;
    Ok(inserted)
}

async fn insert_customer_rows(
    connection: &mut SqliteConnection,
    context: &RunContext<'_>,
    json: JsonRows,
) -> Result<u64, StoreError> {
    if json.is_empty() {
        return Ok(0);
    }
    Ok(sqlx::query(
        "INSERT INTO customers (org_id, customer_id, external_id, external_id_generated, run_id, created_at) \
         SELECT ?, value->>0, value->>1, value->>2, ?, ? FROM jsonb_each(?)",
    )
    .bind(context.org_id)
    .bind(context.run_id)
    .bind(&context.created_at)
    .bind(json.finish())
    .execute(&mut *connection)
    .await?
    .rows_affected())
}
