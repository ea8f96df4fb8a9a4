//! Writing a batch of customer registrations, generating the external IDs
//! that are missing.

use sqlx::PgConnection;

use super::{RunContext, owners};
use crate::domain::Rejection;
use crate::store::StoreError;
use crate::store::batch::{CustomerRow, judge_customer_rows};
use crate::store::postgres::reserve_external_ids;

pub(super) async fn judge_customers(
    connection: &mut PgConnection,
    context: &RunContext<'_>,
    rows: &[CustomerRow],
) -> Result<Vec<Option<Rejection>>, StoreError> {
    let customer_keys: Vec<String> = rows.iter().map(|r| r.customer_id.to_string()).collect();
    let customers = owners(
        connection,
        context,
        "SELECT customer_id::text, run_id FROM customers WHERE org_id = $1 AND customer_id = ANY($2::text[]::bigint[])",
        &customer_keys.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await?;
    let external_ids = owners(
        connection,
        context,
        "SELECT external_id, run_id FROM customers WHERE org_id = $1 AND external_id = ANY($2)",
        &rows.iter().filter_map(|r| r.external_id.as_deref()).collect::<Vec<_>>(),
    )
    .await?;
    Ok(judge_customer_rows(rows, &customer_keys, &customers, &external_ids))
}

/// Inserts customers with their external IDs (given first, then generated,
/// so generated IDs can skip the given ones), each with its event.
pub(super) async fn insert_customers(
    connection: &mut PgConnection,
    context: &RunContext<'_>,
    rows: &[&CustomerRow],
) -> Result<u64, StoreError> {
    let (given, missing): (Vec<&CustomerRow>, Vec<&CustomerRow>) = rows.iter().partition(|r| r.external_id.is_some());
    let mut inserted = insert_customer_rows(
        connection,
        context,
        given.iter().map(|r| r.customer_id).collect(),
        given
            .iter()
            .filter_map(|r| r.external_id.as_deref().map(str::to_string))
            .collect(),
        false,
    )
    .await?;
    if !missing.is_empty() {
        let Some((format, offset)) = &context.start.external_id_generation else {
            return Err(StoreError::Corrupt(
                "customers without external ID but no generation format".into(),
            ));
        };
        let generated = reserve_external_ids(connection, context.org_id, format, *offset, missing.len()).await?;
        inserted += insert_customer_rows(
            connection,
            context,
            missing.iter().map(|r| r.customer_id).collect(),
            generated,
            true,
        )
        .await?;
    }
    Ok(inserted)
}

async fn insert_customer_rows(
    connection: &mut PgConnection,
    context: &RunContext<'_>,
    customer_ids: Vec<i64>,
    external_ids: Vec<String>,
    generated: bool,
) -> Result<u64, StoreError> {
    if customer_ids.is_empty() {
        return Ok(0);
    }
    Ok(sqlx::query(
        "WITH inserted AS (\
         INSERT INTO customers (org_id, customer_id, external_id, external_id_generated, run_id, created_at) \
         SELECT $1, u.customer_id, u.external_id, $2, $3, $4::timestamptz \
         FROM unnest($5::bigint[], $6::text[]) WITH ORDINALITY AS u(customer_id, external_id, n) ORDER BY u.n \
         RETURNING id, org_id, customer_id, external_id, external_id_generated, run_id, created_at) \
         INSERT INTO events (org_id, run_id, kind, payload, created_at) \
         SELECT org_id, run_id, 'customer_registered', json_build_object('customer_row_id', id, \
         'customer_id', customer_id, 'external_id', external_id, 'external_id_generated', external_id_generated), \
         created_at FROM inserted ORDER BY id",
    )
    .bind(context.org_id)
    .bind(generated)
    .bind(context.run_id)
    .bind(&context.created_at)
    .bind(&customer_ids)
    .bind(&external_ids)
    .execute(&mut *connection)
    .await?
    .rows_affected())
}
