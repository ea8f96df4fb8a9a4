//! The PostgreSQL import session. Each batch is one transaction (a dry run:
//! a savepoint per batch inside one transaction, rolled back at the end)
//! holding the rows, their events, the batch's rejects and the checkpoint.
//! A batch that loses a race with a concurrent writer (a deadlock, or a key
//! another transaction committed between our check and our write) is rolled
//! back and judged again from scratch; its verdicts then see the winner's rows.

mod cards;
mod customers;
mod external_ids;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::{Connection, PgConnection, PgPool, Postgres, Row};

use super::copy::CopyRows;
use crate::domain::{RejectReason, Rejection};
use crate::store::batch::{
    BatchOutcome, ImportStart, KeyOwner, RejectRow, Rows, RunState, RunStatus, ValidBatch, accepted, database_rejects,
    plan_batch,
};
use crate::store::link::Link;
use crate::store::{ImportSession, RejectPages, StoreError, decode, now};

/// How many times a batch is retried after losing a race with another writer.
const MAX_ATTEMPTS: u32 = 10;

pub(super) struct PgImportSession {
    link: Link<Postgres>,
    org_id: i64,
    start: ImportStart,
    state: RunState,
}

/// Finds or creates the run and opens its session on a connection of its own.
pub(super) async fn begin(
    pool: &PgPool,
    announce_waits: bool,
    org_id: i64,
    start: ImportStart,
) -> Result<PgImportSession, StoreError> {
    let mut link = if start.dry_run {
        Link::DryRun(pool.begin().await?)
    } else {
        Link::Connection(pool.acquire().await?)
    };
    let connection = link.connection();
    // A dry run's row has no input hash, so it never collides with the real run of the same input.
    let input_hash = (!start.dry_run).then_some(&start.input_hash);
    let created = sqlx::query(
        "INSERT INTO runs (org_id, kind, input_name, input_hash, status, started_at) \
         VALUES ($1, $2, $3, $4, 'running', $5::timestamptz) ON CONFLICT (org_id, kind, input_hash) DO NOTHING \
         RETURNING id, status, records_committed, inserted, rejected",
    )
    .bind(org_id)
    .bind(start.kind.as_str())
    .bind(&start.input_name)
    .bind(input_hash)
    .bind(now())
    .fetch_optional(&mut *connection)
    .await?;
    let row = match created {
        Some(row) => row,
        None => {
            sqlx::query(
                "SELECT id, status, records_committed, inserted, rejected FROM runs \
                 WHERE org_id = $1 AND kind = $2 AND input_hash = $3",
            )
            .bind(org_id)
            .bind(start.kind.as_str())
            .bind(input_hash)
            .fetch_one(&mut *connection)
            .await?
        }
    };
    let state = decode::run_state(&row)?;
    if !start.dry_run {
        lock_run(connection, state.run_id, announce_waits).await?;
    }
    cards::create_staging(connection).await?;
    let mut session = PgImportSession {
        link,
        org_id,
        start,
        state,
    };
    if !session.start.dry_run {
        // The run may have moved on before its lock was ours.
        session.state = session.reload_state().await?;
    }
    Ok(session)
}

/// Takes the run's advisory lock. The same input imported by two processes
/// at once would have both write the same records: the second one waits
/// (saying so once) for as long as the connection's `lock_timeout`
/// (`--lock-timeout`) allows, then finds the run done or resumes it.
async fn lock_run(connection: &mut PgConnection, run_id: i64, announce: bool) -> Result<(), StoreError> {
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
        .bind(RUN_LOCK_SPACE)
        .bind(run_id as i32)
        .fetch_one(&mut *connection)
        .await?;
    if locked {
        return Ok(());
    }
    if announce {
        eprintln!("cardbatch: waiting for run {run_id} of this input, in progress in another process (--lock-timeout)");
    }
    match sqlx::query("SELECT pg_advisory_lock($1, $2)")
        .bind(RUN_LOCK_SPACE)
        .bind(run_id as i32)
        .execute(&mut *connection)
        .await
    {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some(LOCK_NOT_AVAILABLE) => {
            Err(StoreError::RunInProgress { run_id })
        }
        Err(error) => Err(error.into()),
    }
}

/// SQLSTATE `lock_not_available`: a lock wait passed `lock_timeout`.
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// The first key of the advisory locks that guard runs (the second is the run id).
const RUN_LOCK_SPACE: i32 = 0x6361_7264; // "card"

impl PgImportSession {
    async fn reload_state(&mut self) -> Result<RunState, StoreError> {
        let row = sqlx::query(
            "SELECT id, status, records_committed, inserted, rejected FROM runs WHERE org_id = $1 AND id = $2",
        )
        .bind(self.org_id)
        .bind(self.state.run_id)
        .fetch_one(self.link.connection())
        .await?;
        decode::run_state(&row)
    }
}

/// What every batch writer needs to know about its run.
struct RunContext<'a> {
    org_id: i64,
    run_id: i64,
    start: &'a ImportStart,
    created_at: String,
}

/// True for the errors a concurrent writer can cause and a retry resolves:
/// deadlock, serialization failure, and a unique key taken since it was checked.
fn lost_a_race(error: &StoreError) -> bool {
    match error {
        StoreError::Database(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40P01" | "40001" | "23505"))
        }
        _ => false,
    }
}

#[async_trait]
impl ImportSession for PgImportSession {
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
        let mut attempt = 1;
        let outcome = loop {
            // BEGIN on a real run's connection; a SAVEPOINT inside a dry run's transaction.
            let mut tx = Connection::begin(self.link.connection()).await?;
            match write_batch(&mut tx, &context, batch, reject_budget).await {
                Ok(outcome) => {
                    tx.commit().await?;
                    break outcome;
                }
                Err(error) if attempt < MAX_ATTEMPTS && lost_a_race(&error) => {
                    tx.rollback().await?;
                    tracing::debug!(attempt, %error, "batch lost a race with another writer; judging it again");
                    tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt))).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        };
        self.state.records_committed = outcome.stopped_at.unwrap_or_else(|| batch.last_record());
        self.state.inserted += outcome.inserted;
        self.state.rejected += outcome.rejected;
        Ok(outcome)
    }

    async fn finish(&mut self, status: RunStatus) -> Result<(), StoreError> {
        let query =
            sqlx::query("UPDATE runs SET status = $1, finished_at = $2::timestamptz WHERE org_id = $3 AND id = $4")
                .bind(status.as_str())
                .bind(now())
                .bind(self.org_id)
                .bind(self.state.run_id);
        query.execute(self.link.connection()).await?;
        self.state.status = status;
        Ok(())
    }

    async fn reason_counts(&mut self, after_record: u64) -> Result<Vec<(RejectReason, u64)>, StoreError> {
        let query = sqlx::query(
            "SELECT reason, count(*) AS n FROM rejects WHERE org_id = $1 AND run_id = $2 AND record > $3 GROUP BY reason",
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
        if !self.start.dry_run {
            sqlx::query("SELECT pg_advisory_unlock($1, $2)")
                .bind(RUN_LOCK_SPACE)
                .bind(self.state.run_id as i32)
                .execute(self.link.connection())
                .await?;
        }
        Ok(self.link.close().await?)
    }
}

#[async_trait]
impl RejectPages for PgImportSession {
    async fn reject_page(&mut self, after_record: u64, limit: u32) -> Result<Vec<RejectRow>, StoreError> {
        let (org_id, run_id) = (self.org_id, self.state.run_id);
        reject_page(self.link.connection(), org_id, run_id, after_record, limit).await
    }
}

/// Up to `limit` rejects of a run above `after_record`, in record order.
pub(super) async fn reject_page(
    connection: &mut PgConnection,
    org_id: i64,
    run_id: i64,
    after_record: u64,
    limit: u32,
) -> Result<Vec<RejectRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT record, line, reason, field, message, raw FROM rejects \
         WHERE org_id = $1 AND run_id = $2 AND record > $3 ORDER BY record LIMIT $4",
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
    connection: &mut PgConnection,
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
        "UPDATE runs SET records_committed = $1, inserted = inserted + $2, rejected = rejected + $3 \
         WHERE org_id = $4 AND id = $5",
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

/// Which of `keys` the query (`$1` org, `$2` keys; selecting key and run id) finds, and whether this run wrote them.
async fn owners(
    connection: &mut PgConnection,
    context: &RunContext<'_>,
    sql: &'static str,
    keys: &[&str],
) -> Result<HashMap<String, KeyOwner>, StoreError> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
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

/// Sends `rows` with `COPY ... FROM STDIN` (`statement` names the table and columns).
async fn copy_in(connection: &mut PgConnection, statement: &'static str, rows: CopyRows) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut copy = connection.copy_in_raw(statement).await?;
    copy.send(rows.into_bytes()).await?;
    Ok(copy.finish().await?)
}

async fn insert_rejects(
    connection: &mut PgConnection,
    context: &RunContext<'_>,
    batch: &ValidBatch,
    rejects: &[(u64, Rejection)],
) -> Result<(), StoreError> {
    let mut copy = CopyRows::with_capacity(rejects.len() * 160);
    for (record, rejection) in rejects {
        let row = batch.reject_row(*record, rejection);
        copy.integer(context.org_id);
        copy.integer(context.run_id);
        copy.integer(row.record as i64);
        copy.integer(row.line as i64);
        copy.text(row.reason.as_str());
        copy.text(&row.field);
        copy.text(&row.message);
        copy.text(&row.raw);
        copy.end_row();
    }
    copy_in(
        connection,
        "COPY rejects (org_id, run_id, record, line, reason, field, message, raw) FROM STDIN",
        copy,
    )
    .await?;
    Ok(())
}
