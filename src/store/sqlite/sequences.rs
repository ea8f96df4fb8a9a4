//! Counters: the per-series counter behind `cards generate` and the org-level
//! sequence behind generated external IDs. Both are reserved inside the
//! caller's write transaction, so a rolled-back batch gives its values back.

use std::collections::HashSet;

use sqlx::{Row, SqliteConnection};

use super::json_rows::json_strings;
use crate::numbers::{NumberFormat, PermutationKey};
use crate::store::sequences::FreeIds;
use crate::store::{StoreError, new_secret};

/// Atomically moves the series counter forward by `count` and returns the first
/// reserved value, or `CounterExhausted` when the range does not fit under `max`.
pub(super) async fn reserve_counter_range(
    connection: &mut SqliteConnection,
    org_id: i64,
    series_id: i64,
    count: u64,
    max: u64,
) -> Result<u64, StoreError> {
    // The last reserved value, next + count - 1, must be at most max.
    let highest_start = (max + 1).checked_sub(count);
    if let Some(highest_start) = highest_start {
        let first: Option<i64> = sqlx::query_scalar(
            "UPDATE card_series SET next_counter = next_counter + ? \
             WHERE org_id = ? AND id = ? AND next_counter <= ? RETURNING next_counter - ?",
        )
        .bind(count as i64)
        .bind(org_id)
        .bind(series_id)
        .bind(highest_start as i64)
        .bind(count as i64)
        .fetch_optional(&mut *connection)
        .await?;
        if let Some(first) = first {
            return Ok(first as u64);
        }
    }
    let next: Option<i64> = sqlx::query_scalar("SELECT next_counter FROM card_series WHERE org_id = ? AND id = ?")
        .bind(org_id)
        .bind(series_id)
        .fetch_optional(&mut *connection)
        .await?;
    match next {
        Some(next) => Err(StoreError::CounterExhausted {
            next: next as u64,
            requested: count,
            max,
        }),
        None => Err(StoreError::SeriesNotFound(series_id)),
    }
}

/// Reserves `count` org-level external IDs of `format`, skipping values a card
/// or customer already uses. The counter starts at `offset` on first use and
/// never moves back; raising the offset moves it forward. The write lock
/// (`BEGIN IMMEDIATE`) keeps other writers out until the caller commits.
pub(super) async fn reserve_external_ids(
    connection: &mut SqliteConnection,
    org_id: i64,
    format: &NumberFormat,
    offset: u64,
    count: usize,
) -> Result<Vec<String>, StoreError> {
    sqlx::query(
        "INSERT INTO org_sequences (org_id, next_counter, secret_key) VALUES (?, ?, ?) ON CONFLICT (org_id) DO NOTHING",
    )
    .bind(org_id)
    .bind(offset as i64)
    .bind(new_secret()?.to_hex())
    .execute(&mut *connection)
    .await?;
    let row = sqlx::query("SELECT next_counter, secret_key FROM org_sequences WHERE org_id = ?")
        .bind(org_id)
        .fetch_one(&mut *connection)
        .await?;
    let key = PermutationKey::from_hex(&row.try_get::<String, _>("secret_key")?)
        .ok_or_else(|| StoreError::Corrupt("org_sequences.secret_key".into()))?;
    let mut reservation = FreeIds::new(
        format,
        key,
        row.try_get::<i64, _>("next_counter")? as u64,
        offset,
        count,
    );
    while let Some(candidates) = reservation.candidates()? {
        let taken: HashSet<String> = sqlx::query_scalar(
            "SELECT external_id FROM cards WHERE org_id = ?1 AND external_id IN (SELECT value FROM json_each(?2)) \
             UNION SELECT external_id FROM customers WHERE org_id = ?1 AND external_id IN (SELECT value FROM json_each(?2))",
        )
        .bind(org_id)
        .bind(json_strings(candidates.iter().map(String::as_str)))
        .fetch_all(&mut *connection)
        .await?
        .into_iter()
        .collect();
        reservation.keep(candidates, &taken);
    }
    let (ids, counter) = reservation.finish();
    sqlx::query("UPDATE org_sequences SET next_counter = ? WHERE org_id = ?")
        .bind(counter as i64)
        .bind(org_id)
        .execute(&mut *connection)
        .await?;
    Ok(ids)
}
