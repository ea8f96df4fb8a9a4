//! The SQLite import session. Batches are written in `BEGIN IMMEDIATE`
//! transactions, each holding whole batches with their rows, events, rejects
//! and the run's checkpoint; unless the user chose `--batch-size`, consecutive
//! batches share a transaction until it has been open for [`COMMIT_INTERVAL`]
//! (a dry run: all batches in one
//! transaction, rolled back at the end). Under the write lock, a batch first
//! looks up which of its keys the database already holds, judges duplicates
//! in record order, then writes with one statement each over `json_each(?)`.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

mod cards;
mod customers;
mod external_ids;

use async_trait::async_trait;
use sqlx::{Row, Sqlite, SqliteConnection, SqlitePool};

use super::json_rows::JsonRows;
use super::lock::{LockWait, RunLock};
use crate::domain::{RejectReason, Rejection};
use crate::store::batch::{
    BatchOutcome, ImportStart, KeyOwner, RejectRow, Rows, RunState, RunStatus, ValidBatch, accepted, database_rejects,
    plan_batch,
};
use crate::store::link::Link;
use crate::store::{ImportSession, RejectPages, StoreError, decode, now};

/// How long a transaction keeps taking batches before it commits. Every
/// commit writes each page the transaction changed to the WAL; card numbers
/// are random, so one batch changes pages all over the card-number index and
/// the next batches change most of the same pages again. Sharing a commit
/// writes those pages once (1M rows: 15.5 s with a commit per batch of
/// 10,000). A crash loses at most this much work, which the re-run redoes.
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

pub(super) struct SqliteImportSession {
    link: Link<Sqlite>,
    lock_wait: LockWait,
    org_id: i64,
    start: ImportStart,
    state: RunState,
    /// When the open write transaction of a real run began, if one is open.
    open_since: Option<Instant>,
    /// Keeps other processes off this run while the session writes it.
    _run_lock: Option<RunLock>,
}

/// Finds or creates the run, takes its lock (a real run of a database file)
/// and opens its session. A run that exists is locked before anything is
/// written, so a second process of the same run waits for the run, not for
/// SQLite's write lock.
pub(super) async fn begin(
    pool: &SqlitePool,
    lock_wait: &LockWait,
    database: Option<&Path>,
    org_id: i64,
    start: ImportStart,
) -> Result<SqliteImportSession, StoreError> {
    if start.dry_run {
        let mut tx = lock_wait.retry(|| pool.begin_with("BEGIN IMMEDIATE")).await?;
        let state = create_run(&mut tx, org_id, &start).await?;
        return Ok(SqliteImportSession {
            link: Link::DryRun(tx),
            lock_wait: lock_wait.clone(),
            org_id,
            start,
            state,
            open_since: None,
            _run_lock: None,
        });
    }
    let mut connection = pool.acquire().await?;
    // Its transactions are begun and committed by hand (they span batches),
    // so it never goes back to the pool, where a session dropped
    // mid-transaction would leave one open.
    connection.close_on_drop();
    let run_id = match find_run(&mut connection, org_id, &start).await? {
        Some(state) => state.run_id,
        None => {
            lock_wait.begin_immediate(&mut connection).await?;
            // Another process may have created it since we looked.
            let state = match find_run(&mut connection, org_id, &start).await? {
                Some(state) => state,
                None => create_run(&mut connection, org_id, &start).await?,
            };
            sqlx::raw_sql("COMMIT").execute(&mut *connection).await?;
            state.run_id
        }
    };
    let run_lock = match database {
        Some(file) => Some(RunLock::acquire(file, run_id, lock_wait).await?),
        None => None,
    };
    // The run may have moved on before its lock was ours.
    let state = find_run(&mut connection, org_id, &start)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("run {run_id} disappeared")))?;
    Ok(SqliteImportSession {
        link: Link::Connection(connection),
        lock_wait: lock_wait.clone(),
        org_id,
        start,
        state,
        open_since: None,
        _run_lock: run_lock,
    })
}

/// The run of this input, if there is one.
async fn find_run(
    connection: &mut SqliteConnection,
    org_id: i64,
    start: &ImportStart,
) -> Result<Option<RunState>, StoreError> {
    let row = sqlx::query(
        "SELECT id, status, records_committed, inserted, rejected FROM runs \
         WHERE org_id = ? AND kind = ? AND input_hash = ?",
    )
    .bind(org_id)
    .bind(start.kind.as_str())
    .bind(&start.input_hash)
    .fetch_optional(&mut *connection)
    .await?;
    row.as_ref().map(decode::run_state).transpose()
}

/// Creates the run (inside the caller's write transaction). A dry run's row
/// has no input hash, so it never collides with the real run of the same input.
async fn create_run(
    connection: &mut SqliteConnection,
    org_id: i64,
    start: &ImportStart,
) -> Result<RunState, StoreError> {
    let run_id: i64 = sqlx::query_scalar(
        "INSERT INTO runs (org_id, kind, input_name, input_hash, status, started_at) \
         VALUES (?, ?, ?, ?, 'running', ?) RETURNING id",
    )
    .bind(org_id)
    .bind(start.kind.as_str())
    .bind(&start.input_name)
    .bind((!start.dry_run).then_some(&start.input_hash))
    .bind(now())
    .fetch_one(&mut *connection)
    .await?;
    Ok(RunState {
        run_id,
        status: RunStatus::Running,
        records_committed: 0,
        inserted: 0,
        rejected: 0,
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
                if self.open_since.is_none() {
                    self.lock_wait.begin_immediate(connection).await?;
                    self.open_since = Some(Instant::now());
                }
                match write_batch(connection, &context, batch, reject_budget).await {
                    Ok(outcome) => outcome,
                    Err(error) => {
                        // The batches since the last commit are undone with it; a re-run redoes them.
                        self.open_since = None;
                        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut **connection).await;
                        return Err(error);
                    }
                }
            }
        };
        let interval = if self.start.group_commits {
            COMMIT_INTERVAL
        } else {
            Duration::ZERO
        };
        if self.open_since.is_some_and(|since| since.elapsed() >= interval) {
            self.commit().await?;
        }
        self.state.records_committed = outcome.stopped_at.unwrap_or_else(|| batch.last_record());
        self.state.inserted += outcome.inserted;
        self.state.rejected += outcome.rejected;
        Ok(outcome)
    }

    async fn finish(&mut self, status: RunStatus) -> Result<(), StoreError> {
        if let (None, Link::Connection(connection)) = (self.open_since, &mut self.link) {
            self.lock_wait.begin_immediate(connection).await?;
            self.open_since = Some(Instant::now());
        }
        let query = sqlx::query("UPDATE runs SET status = ?, finished_at = ? WHERE org_id = ? AND id = ?")
            .bind(status.as_str())
            .bind(now())
            .bind(self.org_id)
            .bind(self.state.run_id);
        query.execute(self.link.connection()).await?;
        self.commit().await?;
        self.state.status = status;
        Ok(())
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
                    decode::reason(&row.try_get::<String, _>("reason")?)?,
                    row.try_get::<i64, _>("n")? as u64,
                ))
            })
            .collect()
    }

    async fn close(mut self: Box<Self>) -> Result<(), StoreError> {
        self.commit().await?;
        Ok(self.link.close().await?)
    }
}

impl SqliteImportSession {
    /// Commits the open write transaction of a real run, if there is one.
    async fn commit(&mut self) -> Result<(), StoreError> {
        if let (Some(_), Link::Connection(connection)) = (self.open_since.take(), &mut self.link) {
            sqlx::raw_sql("COMMIT").execute(&mut **connection).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl RejectPages for SqliteImportSession {
    async fn reject_page(&mut self, after_record: u64, limit: u32) -> Result<Vec<RejectRow>, StoreError> {
        let (org_id, run_id) = (self.org_id, self.state.run_id);
        reject_page(self.link.connection(), org_id, run_id, after_record, limit).await
    }
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
    rows.iter().map(decode::reject).collect()
}

/// One batch: judge against the database, cut at the budget, write everything.
async fn write_batch(
    connection: &mut SqliteConnection,
    context: &RunContext<'_>,
    batch: &ValidBatch,
    budget: Option<u64>,
) -> Result<BatchOutcome, StoreError> {
    let (plan, inserted) = match &batch.rows {
        Rows::Cards(rows) => cards::write_cards(connection, context, batch, rows, budget).await?,
        Rows::ExternalIds(rows) => {
            let verdicts = external_ids::judge_external_ids(connection, context, rows).await?;
            let plan = plan_batch(
                batch,
                database_rejects(rows.iter().map(|r| r.record), &verdicts),
                budget,
            );
            let accepted = accepted(rows, &verdicts, &plan, |r| r.record);
            (
                plan,
                external_ids::update_external_ids(connection, context, &accepted).await?,
            )
        }
        Rows::Customers(rows) => {
            let verdicts = customers::judge_customers(connection, context, rows).await?;
            let plan = plan_batch(
                batch,
                database_rejects(rows.iter().map(|r| r.record), &verdicts),
                budget,
            );
            let accepted = accepted(rows, &verdicts, &plan, |r| r.record);
            (plan, customers::insert_customers(connection, context, &accepted).await?)
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
        rejected: plan.rejects.len() as u64,
        stopped_at: plan.stopped_at,
    })
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
