//! The SQLite import session: each batch in one `BEGIN IMMEDIATE`
//! transaction (a dry run: all batches in one transaction, rolled back at
//! the end). Under the write lock, a batch first looks up which of its keys
//! the database already holds, judges duplicates in record order, then
//! writes rows, events, rejects and the run's checkpoint with one statement
//! each over `json_each(?)`.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::{Connection, Row, Sqlite, SqliteConnection, SqlitePool, Transaction};

use super::json_rows::{JsonRows, json_strings};
use super::sequences::reserve_external_ids;
use crate::domain::{RejectReason, Rejection};
use crate::store::batch::{
    BatchOutcome, BatchPlan, CardRow, CustomerRow, ExternalIdRow, ImportStart, KeyOwner, RejectRow, RowKeys, Rows,
    RunState, RunStatus, ValidBatch, classify_duplicates, plan_batch,
};
use crate::store::{ImportSession, StoreError, now};

pub(super) struct SqliteImportSession {
    link: Link,
    org_id: i64,
    start: ImportStart,
    state: RunState,
}

/// How a session reaches the database. Either way it is one connection for
/// the whole run: its page cache stays warm from batch to batch, and a long
/// run never fills the caches of several pooled connections.
enum Link {
    /// A real run: one transaction per batch on this connection.
    Connection(PoolConnection<Sqlite>),
    /// A dry run: one transaction for everything, rolled back by `close`.
    DryRun(Transaction<'static, Sqlite>),
}

impl Link {
    fn connection(&mut self) -> &mut SqliteConnection {
        match self {
            Link::Connection(connection) => connection,
            Link::DryRun(transaction) => transaction,
        }
    }
}

/// Finds or creates the run and opens its session.
pub(super) async fn begin(
    pool: &SqlitePool,
    org_id: i64,
    start: ImportStart,
) -> Result<SqliteImportSession, StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let existing = if start.dry_run {
        None
    } else {
        sqlx::query(
            "SELECT id, status, records_committed, inserted, rejected FROM runs \
             WHERE org_id = ? AND kind = ? AND input_hash = ?",
        )
        .bind(org_id)
        .bind(start.kind.as_str())
        .bind(&start.input_hash)
        .fetch_optional(&mut *tx)
        .await?
    };
    let state = match existing {
        Some(row) => run_state(&row)?,
        None => {
            // A dry run's row has no input hash, so it never collides with the real run of the same input.
            let run_id: i64 = sqlx::query_scalar(
                "INSERT INTO runs (org_id, kind, input_name, input_hash, status, started_at) \
                 VALUES (?, ?, ?, ?, 'running', ?) RETURNING id",
            )
            .bind(org_id)
            .bind(start.kind.as_str())
            .bind(&start.input_name)
            .bind((!start.dry_run).then_some(&start.input_hash))
            .bind(now())
            .fetch_one(&mut *tx)
            .await?;
            RunState {
                run_id,
                status: RunStatus::Running,
                records_committed: 0,
                inserted: 0,
                rejected: 0,
            }
        }
    };
    let link = if start.dry_run {
        Link::DryRun(tx)
    } else {
        tx.commit().await?;
        Link::Connection(pool.acquire().await?)
    };
    Ok(SqliteImportSession {
        link,
        org_id,
        start,
        state,
    })
}

pub(super) fn run_state(row: &sqlx::sqlite::SqliteRow) -> Result<RunState, StoreError> {
    let status: String = row.try_get("status")?;
    Ok(RunState {
        run_id: row.try_get("id")?,
        status: RunStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("run status {status:?}")))?,
        records_committed: row.try_get::<i64, _>("records_committed")? as u64,
        inserted: row.try_get::<i64, _>("inserted")? as u64,
        rejected: row.try_get::<i64, _>("rejected")? as u64,
    })
}

/// What every batch writer needs to know about its run.
struct RunContext<'a> {
    org_id: i64,
    run_id: i64,
    start: &'a ImportStart,
    created_at: String,
}

#[async_trait]
impl ImportSession for SqliteImportSession {
    fn state(&self) -> &RunState {
        &self.state
    }

    async fn write_batch(
        &mut self,
        batch: &ValidBatch,
        reject_budget: Option<u64>,
    ) -> Result<BatchOutcome, StoreError> {
        let context = RunContext {
            org_id: self.org_id,
            run_id: self.state.run_id,
            start: &self.start,
            created_at: now(),
        };
        let outcome = match &mut self.link {
            Link::DryRun(tx) => write_batch(tx, &context, batch, reject_budget).await?,
            Link::Connection(connection) => {
                let mut tx = Connection::begin_with(&mut **connection, "BEGIN IMMEDIATE").await?;
                let outcome = write_batch(&mut tx, &context, batch, reject_budget).await?;
                tx.commit().await?;
                outcome
            }
        };
        self.state.records_committed = outcome.stopped_at.unwrap_or_else(|| batch.last_record());
        self.state.inserted += outcome.inserted;
        self.state.rejected += outcome.rejected.len() as u64;
        Ok(outcome)
    }

    async fn finish(&mut self, status: RunStatus) -> Result<(), StoreError> {
        let query = sqlx::query("UPDATE runs SET status = ?, finished_at = ? WHERE org_id = ? AND id = ?")
            .bind(status.as_str())
            .bind(now())
            .bind(self.org_id)
            .bind(self.state.run_id);
        query.execute(self.link.connection()).await?;
        self.state.status = status;
        Ok(())
    }

    async fn reject_page(&mut self, after_record: u64, limit: u32) -> Result<Vec<RejectRow>, StoreError> {
        let (org_id, run_id) = (self.org_id, self.state.run_id);
        reject_page(self.link.connection(), org_id, run_id, after_record, limit).await
    }

    async fn reason_counts(&mut self, after_record: u64) -> Result<Vec<(RejectReason, u64)>, StoreError> {
        let query = sqlx::query(
            "SELECT reason, count(*) AS n FROM rejects WHERE org_id = ? AND run_id = ? AND record > ? GROUP BY reason",
        )
        .bind(self.org_id)
        .bind(self.state.run_id)
        .bind(after_record as i64);
        let rows = query.fetch_all(self.link.connection()).await?;
        rows.iter()
            .map(|row| {
                Ok((
                    parse_reason(&row.try_get::<String, _>("reason")?)?,
                    row.try_get::<i64, _>("n")? as u64,
                ))
            })
            .collect()
    }

    async fn close(self: Box<Self>) -> Result<(), StoreError> {
        if let Link::DryRun(tx) = self.link {
            tx.rollback().await?;
        }
        Ok(())
    }
}

fn parse_reason(text: &str) -> Result<RejectReason, StoreError> {
    text.parse().map_err(StoreError::Corrupt)
}

/// Up to `limit` rejects of a run above `after_record`, in record order.
pub(super) async fn reject_page(
    connection: &mut SqliteConnection,
    org_id: i64,
    run_id: i64,
    after_record: u64,
    limit: u32,
) -> Result<Vec<RejectRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT record, line, reason, field, message, raw FROM rejects \
         WHERE org_id = ? AND run_id = ? AND record > ? ORDER BY record LIMIT ?",
    )
    .bind(org_id)
    .bind(run_id)
    .bind(after_record as i64)
    .bind(i64::from(limit))
    .fetch_all(&mut *connection)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(RejectRow {
                record: row.try_get::<i64, _>("record")? as u64,
                line: row.try_get::<i64, _>("line")? as u64,
                reason: parse_reason(&row.try_get::<String, _>("reason")?)?,
                field: row.try_get("field")?,
                message: row.try_get("message")?,
                raw: row.try_get("raw")?,
            })
        })
        .collect()
}

/// One batch: judge against the database, cut at the budget, write everything.
async fn write_batch(
    connection: &mut SqliteConnection,
    context: &RunContext<'_>,
    batch: &ValidBatch,
    budget: Option<u64>,
) -> Result<BatchOutcome, StoreError> {
    let (plan, inserted) = match &batch.rows {
        Rows::Cards(rows) => write_cards(connection, context, batch, rows, budget).await?,
        Rows::ExternalIds(rows) => {
            let verdicts = judge_external_ids(connection, context, rows).await?;
            let plan = plan_batch(
                batch,
                database_rejects(rows.iter().map(|r| r.record), &verdicts),
                budget,
            );
            let accepted = accepted(rows, &verdicts, &plan, |r| r.record);
            (plan, update_external_ids(connection, context, &accepted).await?)
        }
        Rows::Customers(rows) => {
            let verdicts = judge_customers(connection, context, rows).await?;
            let plan = plan_batch(
                batch,
                database_rejects(rows.iter().map(|r| r.record), &verdicts),
                budget,
            );
            let accepted = accepted(rows, &verdicts, &plan, |r| r.record);
            (plan, insert_customers(connection, context, &accepted).await?)
        }
    };
    insert_rejects(connection, context, batch, &plan.rejects).await?;
    sqlx::query(
        "UPDATE runs SET records_committed = ?, inserted = inserted + ?, rejected = rejected + ? \
         WHERE org_id = ? AND id = ?",
    )
    .bind(plan.through as i64)
    .bind(inserted as i64)
    .bind(plan.rejects.len() as i64)
    .bind(context.org_id)
    .bind(context.run_id)
    .execute(&mut *connection)
    .await?;
    Ok(BatchOutcome {
        inserted,
        rejected: plan.rejects.iter().map(|(_, r)| r.reason).collect(),
        stopped_at: plan.stopped_at,
    })
}

fn database_rejects(records: impl Iterator<Item = u64>, verdicts: &[Option<Rejection>]) -> Vec<(u64, Rejection)> {
    records
        .zip(verdicts)
        .filter_map(|(record, verdict)| verdict.clone().map(|r| (record, r)))
        .collect()
}

/// The rows that passed the database checks and lie before the budget cut.
fn accepted<'r, T>(
    rows: &'r [T],
    verdicts: &[Option<Rejection>],
    plan: &BatchPlan,
    record: impl Fn(&T) -> u64,
) -> Vec<&'r T> {
    rows.iter()
        .zip(verdicts)
        .filter(|(row, verdict)| verdict.is_none() && record(row) < plan.accept_below)
        .map(|(row, _)| row)
        .collect()
}

/// Which of `keys` the column `column` of `table` already holds, and whether this run wrote them.
async fn owners(
    connection: &mut SqliteConnection,
    context: &RunContext<'_>,
    sql: &'static str,
    keys: String,
) -> Result<HashMap<String, KeyOwner>, StoreError> {
    let rows = sqlx::query(sql)
        .bind(context.org_id)
        .bind(keys)
        .fetch_all(&mut *connection)
        .await?;
    rows.iter()
        .map(|row| {
            let owner = match row.try_get::<Option<i64>, _>(1)? {
                Some(run_id) if run_id == context.run_id => KeyOwner::ThisRun,
                _ => KeyOwner::Other,
            };
            Ok((row.try_get::<String, _>(0)?, owner))
        })
        .collect()
}

const CARD_KEY_FIELDS: [&str; 2] = ["card_number", "external_id"];

fn card_keys(rows: &[CardRow]) -> Vec<RowKeys<'_>> {
    rows.iter()
        .map(|r| RowKeys {
            record: r.record,
            keys: [Some(r.card_number.as_str()), r.external_id.as_deref()],
        })
        .collect()
}

/// Writes a batch of cards. Optimistically first: duplicates within the
/// batch are judged in memory and the rest is inserted inside a savepoint; if
/// no row met a key already in the database, every verdict is final. If one
/// did (or a reject budget needs the verdicts before writing), the batch is
/// judged against the database first and only the accepted rows go in.
async fn write_cards(
    connection: &mut SqliteConnection,
    context: &RunContext<'_>,
    batch: &ValidBatch,
    rows: &[CardRow],
    budget: Option<u64>,
) -> Result<(BatchPlan, u64), StoreError> {
    if budget.is_none() {
        let nothing_stored = HashMap::new();
        let in_batch = classify_duplicates(&card_keys(rows), [&nothing_stored, &nothing_stored], CARD_KEY_FIELDS);
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
    let verdicts = classify_duplicates(&card_keys(rows), [&numbers, &external_ids], CARD_KEY_FIELDS);
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
        json.integer(row.series_id);
        json.string(&row.card_number);
        json.optional_string(row.external_id.as_deref());
        json.string(&row.status_label);
        json.optional_string(row.status_reason.as_deref());
        json.optional_integer(row.customer_id);
        json.optional_json(row.extended_fields.as_deref());
        json.optional_json(row.custom_fields.as_deref());
        json.optional_json(row.mapped_entity.as_deref());
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

/// A card as the external-ID import sees it.
struct CardState {
    external_id: Option<String>,
    external_id_run_id: Option<i64>,
}

async fn judge_external_ids(
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

async fn update_external_ids(
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

async fn judge_customers(
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
    let keys: Vec<RowKeys<'_>> = rows
        .iter()
        .zip(&customer_keys)
        .map(|(r, key)| RowKeys {
            record: r.record,
            keys: [Some(key.as_str()), r.external_id.as_deref()],
        })
        .collect();
    Ok(classify_duplicates(
        &keys,
        [&customers, &external_ids],
        ["customer_id", "external_id"],
    ))
}

async fn insert_customers(
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

async fn insert_rejects(
    connection: &mut SqliteConnection,
    context: &RunContext<'_>,
    batch: &ValidBatch,
    rejects: &[(u64, Rejection)],
) -> Result<(), StoreError> {
    if rejects.is_empty() {
        return Ok(());
    }
    let mut json = JsonRows::with_capacity(rejects.len() * 160);
    for (record, rejection) in rejects {
        let row = batch.reject_row(*record, rejection);
        json.begin_row();
        json.integer(row.record as i64);
        json.integer(row.line as i64);
        json.string(row.reason.as_str());
        json.string(&row.field);
        json.string(&row.message);
        json.string(&row.raw);
        json.end_row();
    }
    sqlx::query(
        "INSERT INTO rejects (org_id, run_id, record, line, reason, field, message, raw) \
         SELECT ?, ?, value->>0, value->>1, value->>2, value->>3, value->>4, value->>5 FROM jsonb_each(?)",
    )
    .bind(context.org_id)
    .bind(context.run_id)
    .bind(json.finish())
    .execute(&mut *connection)
    .await?;
    Ok(())
}
