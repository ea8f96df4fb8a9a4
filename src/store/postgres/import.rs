//! PostgreSQL's import primitives: its SQL and its locking. One connection
//! per run holds the run's advisory lock; a card import writes on a second
//! one too (a lane, [`ImportBackend::open_lane`]), whose batches take ids
//! reserved in record order. Cards go straight into `cards`
//! with one binary `COPY` per batch, which is all or nothing: a key already
//! stored fails it (SQLSTATE 23505), and the batch is copied again without
//! the rows whose keys are found taken, which the session is told of, as
//! SQLite's insert tells it. Lookups use `= ANY($1)` over bound arrays. Event ids come from
//! the org's row in `event_counters`, taken just before the commit, so they
//! follow commit order. A dry run is one transaction, begun when the backend
//! opens and rolled back when it closes.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::TryStreamExt;
use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgConnection, PgPool, Postgres, Row};

use super::copy::{BinaryRows, postgres_microseconds};
use super::violated_key;
use crate::batch::{CardRow, ExternalIdRow, RejectRow};
use crate::domain::RejectReason;
use crate::numbers::NumberFormat;
use crate::store::backend::{BatchOutcome, ImportStart, RunState, RunStatus};
use crate::store::backend::{
    CardExternalId, CardInsert, CardKeys, CustomerKeys, Holder, ImportBackend, KeySink, NewCustomer, PendingEvent,
    RunContext,
};
use crate::store::{
    COPY_REJECTS, COPY_RUN_LINES, NEW_RUN_COLUMNS, NEW_RUN_RETURNING, ORG_CARD_COUNT, ORG_CARD_KEYS, PrefixRun,
    StoreError, decode, now, shared_queries,
};

/// The first key of the advisory locks that guard runs (the second is the run id).
const RUN_LOCK_SPACE: i32 = 0x6361_7264; // "card"

/// How often commits mid-import settle new cards (see [`super::settle_new_cards`]).
const SETTLE_EVERY: Duration = Duration::from_secs(1);

/// SQLSTATE `lock_not_available`: a lock wait passed `lock_timeout`.
const LOCK_NOT_AVAILABLE: &str = "55P03";

pub(super) struct PgImport {
    connection: ImportConnection,
    /// Where a second lane's connection comes from.
    pool: PgPool,
    /// False for a second lane, whose run lock the first lane holds.
    holds_run_lock: bool,
    org_id: i64,
    run: RunState,
    dry_run: bool,
    /// The sequence behind `cards.id`.
    card_ids: String,
    /// Cards this process wrote for the run, and how many of them were
    /// settled (see [`super::settle_new_cards`]).
    cards_written: u64,
    cards_settled: u64,
    /// Ids reserved for the next batch's cards, in order, until the transaction ends.
    reserved_ids: Vec<i64>,
    /// When settling was last tried after a commit.
    settled_at: Option<Instant>,
}

impl PgImport {
    /// Settles the cards written since the last settling, if their commit
    /// could get the lock within `wait`; the next call tries again if not.
    async fn settle(&mut self, wait: Duration) {
        if self.cards_written > self.cards_settled
            && super::settle_new_cards(&mut self.connection, self.org_id, self.cards_written, wait).await
        {
            self.cards_settled = self.cards_written;
        }
    }
}

/// The connection a backend writes on: the pool's for the first lane, one
/// of its own for the second (opened once, without the pool's retries, so
/// that a server out of connections says so at once).
enum ImportConnection {
    Pooled(PoolConnection<Postgres>),
    Own(PgConnection),
}

impl std::ops::Deref for ImportConnection {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        match self {
            ImportConnection::Pooled(connection) => connection,
            ImportConnection::Own(connection) => connection,
        }
    }
}

impl std::ops::DerefMut for ImportConnection {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match self {
            ImportConnection::Pooled(connection) => connection,
            ImportConnection::Own(connection) => connection,
        }
    }
}

/// Finds or creates the run, takes its advisory lock (a real run) and opens the backend.
pub(super) async fn open(
    pool: &PgPool,
    announce_waits: bool,
    org_id: i64,
    start: &ImportStart,
) -> Result<PgImport, StoreError> {
    let mut connection = pool.acquire().await?;
    // Its transactions are begun and committed by hand, so it never goes back
    // to the pool, where a session dropped mid-transaction would leave one open.
    connection.close_on_drop();
    if start.dry_run {
        sqlx::raw_sql("BEGIN").execute(&mut *connection).await?;
    }
    let created = insert_run(&mut connection, org_id, start, None).await?;
    let mut run = match created {
        Some(run) => run,
        None => find_run(&mut connection, org_id, start).await?,
    };
    if !start.dry_run {
        lock_run(&mut connection, run.run_id, announce_waits).await?;
        // The run may have moved on before its lock was ours.
        run = find_run(&mut connection, org_id, start).await?;
    }
    let card_ids: String = sqlx::query_scalar("SELECT pg_get_serial_sequence('cards', 'id')")
        .fetch_one(&mut *connection)
        .await?;
    Ok(PgImport {
        connection: ImportConnection::Pooled(connection),
        pool: pool.clone(),
        holds_run_lock: !start.dry_run,
        org_id,
        run,
        dry_run: start.dry_run,
        card_ids,
        cards_written: 0,
        cards_settled: 0,
        reserved_ids: Vec::new(),
        settled_at: None,
    })
}

/// Inserts the run, unless the input's run exists (`None`); see [`shared_queries::new_run`].
async fn insert_run(
    connection: &mut PgConnection,
    org_id: i64,
    start: &ImportStart,
    adopted: Option<&PrefixRun>,
) -> Result<Option<RunState>, StoreError> {
    let sql = format!(
        "INSERT INTO runs ({NEW_RUN_COLUMNS}, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::timestamptz, $9, $10, \
         $11, $12, $13, $14, $15, $16, $17, $18, $19, 'running') ON CONFLICT (org_id, kind, input_hash) DO NOTHING \
         {NEW_RUN_RETURNING}"
    );
    let created = shared_queries::new_run(sqlx::AssertSqlSafe(sql), org_id, start, adopted)
        .fetch_optional(&mut *connection)
        .await?;
    created.as_ref().map(decode::run_state).transpose()
}

/// Creates the run of `start` with `from`'s verdicts for its first records
/// (see [`crate::store::Store::adopt_run`]); `false` when the run exists.
pub(super) async fn adopt(
    pool: &PgPool,
    org_id: i64,
    start: &ImportStart,
    from: &PrefixRun,
) -> Result<bool, StoreError> {
    let mut transaction = pool.begin().await?;
    let Some(run) = insert_run(&mut transaction, org_id, start, Some(from)).await? else {
        return Ok(false);
    };
    for sql in [COPY_REJECTS, COPY_RUN_LINES] {
        shared_queries::copy_run_rows(sql, org_id, from.run_id, run.run_id)
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    Ok(true)
}

async fn find_run(connection: &mut PgConnection, org_id: i64, start: &ImportStart) -> Result<RunState, StoreError> {
    let row = sqlx::query(
        "SELECT id, status, records_committed, inserted, unchanged, rejected, reading_plan, reject_report FROM runs \
         WHERE org_id = $1 AND kind = $2 AND input_hash = $3",
    )
    .bind(org_id)
    .bind(start.kind.as_str())
    .bind(&start.input_hash)
    .fetch_one(&mut *connection)
    .await?;
    decode::run_state(&row)
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

/// Sends `rows` with `COPY ... FROM STDIN` (`statement` names the table, the columns and the format).
async fn copy_in(connection: &mut PgConnection, statement: &'static str, rows: Vec<u8>) -> Result<u64, sqlx::Error> {
    let mut copy = connection.copy_in_raw(statement).await?;
    copy.send(rows).await?;
    copy.finish().await
}

/// Refusals of a batch's `COPY` for a key that no stored card holds once
/// looked up (its writer rolled back) before the refusal is an error.
const MAX_REFUSALS_WITHOUT_A_HOLDER: u32 = 3;

const COPY_CARDS: &str = "COPY cards (org_id, run_id, created_at, series_id, card_number, external_id, status_label, \
     status_reason, customer_id, extended_fields, custom_fields, mapped_entity, import_record, external_id_run_id) \
     FROM STDIN (FORMAT binary)";

/// The same with the ids reserved for the batch ([`ImportBackend::reserve_card_ids`]).
const COPY_CARDS_WITH_IDS: &str = "COPY cards (id, org_id, run_id, created_at, series_id, card_number, external_id, \
     status_label, status_reason, customer_id, extended_fields, custom_fields, mapped_entity, import_record, \
     external_id_run_id) FROM STDIN (FORMAT binary)";

impl PgImport {
    /// Copies the rows at `positions` of `rows` with the run's id and the
    /// batch's time (PostgreSQL microseconds), and returns the first and last id they took.
    async fn copy_cards(
        &mut self,
        run: &RunContext,
        created_at: i64,
        rows: &[&CardRow],
        positions: &[usize],
    ) -> Result<(i64, i64), sqlx::Error> {
        // Ids reserved for this batch go in with the rows; otherwise the
        // identity default gives them.
        let reserved = (self.reserved_ids.len() >= positions.len()).then(|| &self.reserved_ids[..positions.len()]);
        let mut copy = BinaryRows::new(if reserved.is_some() { 15 } else { 14 }, positions.len() * 128);
        for (index, row) in positions.iter().map(|&i| rows[i]).enumerate() {
            let extras = row.extras();
            copy.begin_row();
            if let Some(ids) = reserved {
                copy.integer(ids[index]);
            }
            copy.integer(run.org_id);
            copy.integer(run.run_id);
            copy.timestamp(created_at);
            copy.integer(row.series_id);
            copy.text(&row.card_number);
            copy.optional_text(row.external_id.as_deref());
            copy.text(&row.status_label);
            copy.optional_text(extras.status_reason.as_deref());
            copy.optional_integer(row.customer_id);
            copy.optional_text(extras.extended_fields.as_deref());
            copy.optional_text(extras.custom_fields.as_deref());
            copy.optional_text(extras.mapped_entity.as_deref());
            copy.integer(row.record as i64);
            copy.optional_integer(row.external_id.as_ref().map(|_| run.run_id));
        }
        if let Some(ids) = reserved {
            let (first, last) = (ids[0], ids[ids.len() - 1]);
            copy_in(&mut self.connection, COPY_CARDS_WITH_IDS, copy.finish()).await?;
            // Used: a batch written after it in this transaction (or this
            // one again, after losing a race) takes new ids.
            self.reserved_ids.clear();
            self.cards_written += positions.len() as u64;
            return Ok((first, last));
        }
        // The batch's cards take ids above the sequence's value now, and it
        // gives ours in order; other writers' ids in between are not this run's.
        let first: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM {}",
            self.card_ids
        )))
        .fetch_one(&mut *self.connection)
        .await?;
        copy_in(&mut self.connection, COPY_CARDS, copy.finish()).await?;
        let last: i64 = sqlx::query_scalar("SELECT currval($1::regclass)")
            .bind(&self.card_ids)
            .fetch_one(&mut *self.connection)
            .await?;
        self.cards_written += positions.len() as u64;
        Ok((first, last))
    }
}

#[async_trait]
impl ImportBackend for PgImport {
    fn run(&self) -> &RunState {
        &self.run
    }

    fn skipping_costs_a_retry(&self) -> bool {
        true
    }

    fn has_concurrent_writers(&self) -> bool {
        true
    }

    fn lost_a_race(&self, error: &StoreError) -> bool {
        match error {
            StoreError::Database(error @ sqlx::Error::Database(db)) => {
                matches!(db.code().as_deref(), Some("40P01" | "40001")) || violated_key(error).is_some()
            }
            _ => false,
        }
    }

    async fn open_lane(&mut self) -> Result<Option<Box<dyn ImportBackend>>, StoreError> {
        if self.dry_run {
            return Ok(None);
        }
        let connection = PgConnection::connect_with(&self.pool.connect_options()).await?;
        Ok(Some(Box::new(PgImport {
            connection: ImportConnection::Own(connection),
            pool: self.pool.clone(),
            holds_run_lock: false,
            org_id: self.org_id,
            run: self.run.clone(),
            dry_run: false,
            card_ids: self.card_ids.clone(),
            cards_written: 0,
            cards_settled: 0,
            reserved_ids: Vec::new(),
            settled_at: None,
        })))
    }

    async fn hold_run(&mut self, run: &RunContext) -> Result<(), StoreError> {
        sqlx::query("SELECT 1 FROM runs WHERE org_id = $1 AND id = $2 FOR UPDATE")
            .bind(run.org_id)
            .bind(run.run_id)
            .execute(&mut *self.connection)
            .await?;
        Ok(())
    }

    async fn reserve_card_ids(&mut self, count: usize) -> Result<(), StoreError> {
        // One sequence call per id, in order; other writers' calls may fall
        // between them, never a later reservation's. The ids themselves come
        // back only when another writer's did fall between.
        let (first, last, scattered): (Option<i64>, Option<i64>, Option<Vec<i64>>) = sqlx::query_as(
            "SELECT min(n), max(n), CASE WHEN max(n) - min(n) + 1 = count(*) THEN NULL \
             ELSE array_agg(n ORDER BY n) END FROM (SELECT nextval($1::regclass) AS n \
             FROM generate_series(1, $2)) AS ids",
        )
        .bind(&self.card_ids)
        .bind(count as i64)
        .fetch_one(&mut *self.connection)
        .await?;
        self.reserved_ids = match (first, last, scattered) {
            (_, _, Some(ids)) => ids,
            (Some(first), Some(last), None) => (first..=last).collect(),
            _ => Vec::new(),
        };
        Ok(())
    }

    async fn begin(&mut self) -> Result<(), StoreError> {
        if !self.dry_run {
            sqlx::raw_sql("BEGIN").execute(&mut *self.connection).await?;
        }
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), StoreError> {
        self.reserved_ids.clear();
        sqlx::raw_sql("COMMIT").execute(&mut *self.connection).await?;
        // At most once a second: with two connections a batch commits every
        // few milliseconds, and closing settles whatever is left.
        if self.settled_at.is_none_or(|at| at.elapsed() >= SETTLE_EVERY) {
            self.settled_at = Some(Instant::now());
            self.settle(super::SETTLE_WAIT_BETWEEN).await;
        }
        Ok(())
    }

    async fn rollback(&mut self) -> Result<(), StoreError> {
        self.reserved_ids.clear();
        sqlx::raw_sql("ROLLBACK").execute(&mut *self.connection).await?;
        Ok(())
    }

    async fn savepoint(&mut self, name: &'static str) -> Result<(), StoreError> {
        execute_named(&mut self.connection, "SAVEPOINT", name).await
    }

    async fn release(&mut self, name: &'static str) -> Result<(), StoreError> {
        execute_named(&mut self.connection, "RELEASE", name).await
    }

    async fn rollback_to(&mut self, name: &'static str) -> Result<(), StoreError> {
        execute_named(&mut self.connection, "ROLLBACK TO", name).await
    }

    async fn card_key_holders(
        &mut self,
        org_id: i64,
        numbers: &[&str],
        external_ids: &[&str],
    ) -> Result<CardKeys, StoreError> {
        let mut keys = CardKeys::default();
        if numbers.is_empty() && external_ids.is_empty() {
            return Ok(keys);
        }
        // One round trip for both keys; a card found may hold either or both.
        let rows = sqlx::query(
            "SELECT card_number, external_id, run_id, import_record, series_id, status_label, customer_id, \
             status_reason, extended_fields::text AS extended_fields, custom_fields::text AS custom_fields, \
             mapped_entity::text AS mapped_entity FROM cards \
             WHERE org_id = $1 AND (card_number = ANY($2) OR external_id = ANY($3))",
        )
        .bind(org_id)
        .bind(numbers)
        .bind(external_ids)
        .fetch_all(&mut *self.connection)
        .await?;
        let wanted_numbers: HashSet<&str> = numbers.iter().copied().collect();
        let wanted_external_ids: HashSet<&str> = external_ids.iter().copied().collect();
        for row in &rows {
            decode::add_card_key(&mut keys, row, &wanted_numbers, &wanted_external_ids)?;
        }
        Ok(keys)
    }

    async fn insert_cards(&mut self, run: &RunContext, rows: &[&CardRow]) -> Result<CardInsert, StoreError> {
        // A `COPY` is all or nothing: when a row meets a key the database
        // holds, the rows holding taken keys are found and the rest copied
        // again (as often as other writers keep taking keys meanwhile).
        let created_at = postgres_microseconds(&run.created_at)
            .ok_or_else(|| StoreError::Corrupt(format!("batch time {:?}", run.created_at)))?;
        let mut sent: Vec<usize> = (0..rows.len()).collect();
        let mut skipped = Vec::new();
        let mut ids = None;
        let mut refusals_without_a_holder = 0;
        while !sent.is_empty() {
            self.savepoint("cards").await?;
            match self.copy_cards(run, created_at, rows, &sent).await {
                Err(error)
                    if violated_key(&error).is_some() && refusals_without_a_holder < MAX_REFUSALS_WITHOUT_A_HOLDER =>
                {
                    self.rollback_to("cards").await?;
                    self.release("cards").await?;
                    let numbers: Vec<&str> = sent.iter().map(|&i| rows[i].card_number.as_str()).collect();
                    let external_ids: Vec<&str> = sent.iter().filter_map(|&i| rows[i].external_id.as_deref()).collect();
                    let held = self.card_key_holders(run.org_id, &numbers, &external_ids).await?;
                    let (taken, rest): (Vec<usize>, Vec<usize>) = sent.iter().partition(|&&i| {
                        held.holders[0].contains_key(rows[i].card_number.as_str())
                            || rows[i]
                                .external_id
                                .as_ref()
                                .is_some_and(|id| held.holders[1].contains_key(id.as_str()))
                    });
                    // None taken: the key is not held after all (its writer rolled back).
                    refusals_without_a_holder += u32::from(taken.is_empty());
                    skipped.extend(taken);
                    sent = rest;
                }
                copied => {
                    ids = Some(copied?);
                    self.release("cards").await?;
                    break;
                }
            }
        }
        skipped.sort_unstable();
        Ok(CardInsert { ids, skipped })
    }

    async fn delete_cards(&mut self, run: &RunContext, ids: (i64, i64)) -> Result<(), StoreError> {
        shared_queries::delete_run_cards(run, ids)
            .execute(&mut *self.connection)
            .await?;
        Ok(())
    }

    async fn card_count(&mut self, org_id: i64) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(ORG_CARD_COUNT)
            .bind(org_id)
            .fetch_one(&mut *self.connection)
            .await?;
        Ok(count as u64)
    }

    async fn for_each_card_key(&mut self, org_id: i64, key: &mut KeySink<'_>) -> Result<(), StoreError> {
        let mut rows = shared_queries::of_org(ORG_CARD_KEYS, org_id, &[]).fetch(&mut *self.connection);
        while let Some(row) = rows.try_next().await? {
            key(row.try_get::<&str, _>(0)?);
            if let Some(external_id) = row.try_get::<Option<&str>, _>(1)? {
                key(external_id);
            }
        }
        Ok(())
    }

    async fn cards_by_number(
        &mut self,
        org_id: i64,
        numbers: &[&str],
    ) -> Result<HashMap<String, CardExternalId>, StoreError> {
        // Locked until commit, so the verdicts hold; an external ID another
        // writer takes meanwhile fails the update, and the batch is judged again.
        let rows = sqlx::query(
            "SELECT id, card_number, external_id, external_id_run_id, external_id_record FROM cards \
             WHERE org_id = $1 AND card_number = ANY($2) ORDER BY card_number FOR UPDATE",
        )
        .bind(org_id)
        .bind(numbers)
        .fetch_all(&mut *self.connection)
        .await?;
        rows.iter().map(decode::card_external_id).collect()
    }

    async fn external_id_holders(
        &mut self,
        org_id: i64,
        external_ids: &[&str],
    ) -> Result<HashMap<String, (String, Holder)>, StoreError> {
        let rows = sqlx::query(
            "SELECT external_id, card_number, external_id_run_id, external_id_record FROM cards \
             WHERE org_id = $1 AND external_id = ANY($2)",
        )
        .bind(org_id)
        .bind(external_ids)
        .fetch_all(&mut *self.connection)
        .await?;
        rows.iter().map(decode::external_id_holder).collect()
    }

    async fn set_external_ids(&mut self, run: &RunContext, rows: &[&ExternalIdRow]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let numbers: Vec<&str> = rows.iter().map(|r| r.card_number.as_str()).collect();
        let external_ids: Vec<&str> = rows.iter().map(|r| r.external_id.as_str()).collect();
        let records: Vec<i64> = rows.iter().map(|r| r.record as i64).collect();
        // No accepted external ID is held by any card at this point (judged
        // first), so the update cannot trip the unique index midway.
        let updated = sqlx::query(
            "UPDATE cards SET external_id = u.external_id, external_id_run_id = $2, external_id_record = u.record \
             FROM unnest($3::text[], $4::text[], $5::bigint[]) AS u(card_number, external_id, record) \
             WHERE cards.org_id = $1 AND cards.card_number = u.card_number",
        )
        .bind(run.org_id)
        .bind(run.run_id)
        .bind(&numbers)
        .bind(&external_ids)
        .bind(&records)
        .execute(&mut *self.connection)
        .await?
        .rows_affected();
        Ok(updated)
    }

    async fn customer_key_holders(
        &mut self,
        org_id: i64,
        customer_ids: &[i64],
        external_ids: &[&str],
    ) -> Result<CustomerKeys, StoreError> {
        let mut keys = CustomerKeys::default();
        let by_customer_id = sqlx::query(
            "SELECT customer_id::text AS customer_id, external_id, run_id, import_record FROM customers \
             WHERE org_id = $1 AND customer_id = ANY($2)",
        )
        .bind(org_id)
        .bind(customer_ids)
        .fetch_all(&mut *self.connection)
        .await?;
        for row in &by_customer_id {
            decode::add_customer_key(&mut keys, row, true)?;
        }
        if !external_ids.is_empty() {
            let by_external_id = sqlx::query(
                "SELECT external_id, run_id, import_record FROM customers WHERE org_id = $1 AND external_id = ANY($2)",
            )
            .bind(org_id)
            .bind(external_ids)
            .fetch_all(&mut *self.connection)
            .await?;
            for row in &by_external_id {
                decode::add_customer_key(&mut keys, row, false)?;
            }
        }
        Ok(keys)
    }

    async fn reserve_external_ids(
        &mut self,
        org_id: i64,
        format: &NumberFormat,
        offset: u64,
        count: usize,
    ) -> Result<Vec<String>, StoreError> {
        super::reserve_external_ids(&mut self.connection, org_id, format, offset, count).await
    }

    async fn insert_customers(
        &mut self,
        run: &RunContext,
        rows: &[NewCustomer<'_>],
    ) -> Result<Option<(i64, i64)>, StoreError> {
        if rows.is_empty() {
            return Ok(None);
        }
        let customer_ids: Vec<i64> = rows.iter().map(|r| r.customer_id).collect();
        let external_ids: Vec<&str> = rows.iter().map(|r| r.external_id).collect();
        let generated: Vec<bool> = rows.iter().map(|r| r.generated).collect();
        let records: Vec<i64> = rows.iter().map(|r| r.record as i64).collect();
        let (first, last): (Option<i64>, Option<i64>) = sqlx::query_as(
            "WITH inserted AS (INSERT INTO customers (org_id, customer_id, external_id, external_id_generated, \
             import_record, run_id, created_at) SELECT $1, c, e, g, r, $2, $3::timestamptz \
             FROM unnest($4::bigint[], $5::text[], $6::bool[], $7::bigint[]) WITH ORDINALITY AS u(c, e, g, r, n) \
             ORDER BY n RETURNING id) SELECT min(id), max(id) FROM inserted",
        )
        .bind(run.org_id)
        .bind(run.run_id)
        .bind(&run.created_at)
        .bind(&customer_ids)
        .bind(&external_ids)
        .bind(&generated)
        .bind(&records)
        .fetch_one(&mut *self.connection)
        .await?;
        Ok(first.zip(last))
    }

    async fn insert_line_offsets(&mut self, run: &RunContext, offsets: &[(u64, i64)]) -> Result<(), StoreError> {
        let records: Vec<i64> = offsets.iter().map(|(record, _)| *record as i64).collect();
        let line_offsets: Vec<i64> = offsets.iter().map(|(_, offset)| *offset).collect();
        sqlx::query(
            "INSERT INTO run_lines (org_id, run_id, record, line_offset) \
             SELECT $1, $2, * FROM unnest($3::bigint[], $4::bigint[]) \
             ON CONFLICT (org_id, run_id, record) DO UPDATE SET line_offset = excluded.line_offset",
        )
        .bind(run.org_id)
        .bind(run.run_id)
        .bind(&records)
        .bind(&line_offsets)
        .execute(&mut *self.connection)
        .await?;
        Ok(())
    }

    async fn lines_of(&mut self, run: &RunContext, records: &[u64]) -> Result<HashMap<u64, u64>, StoreError> {
        let records: Vec<i64> = records.iter().map(|record| *record as i64).collect();
        let rows: Vec<(i64, Option<i64>)> = sqlx::query_as(
            "SELECT r, r + (SELECT line_offset FROM run_lines WHERE org_id = $1 AND run_id = $2 AND record <= r \
             ORDER BY record DESC LIMIT 1) FROM unnest($3::bigint[]) AS r",
        )
        .bind(run.org_id)
        .bind(run.run_id)
        .bind(&records)
        .fetch_all(&mut *self.connection)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(record, line)| Some((record as u64, line? as u64)))
            .collect())
    }

    /// One statement over bound arrays: a batch's rejects are few, and a
    /// small COPY waits on TCP's delayed acknowledgement (about 40 ms) at
    /// its end, where a statement goes out in one write.
    async fn insert_rejects(&mut self, run: &RunContext, rows: &[RejectRow]) -> Result<(), StoreError> {
        let records: Vec<i64> = rows.iter().map(|r| r.record as i64).collect();
        let lines: Vec<i64> = rows.iter().map(|r| r.line as i64).collect();
        let reasons: Vec<&str> = rows.iter().map(|r| r.reason.as_str()).collect();
        let fields: Vec<&str> = rows.iter().map(|r| r.field.as_str()).collect();
        let messages: Vec<&str> = rows.iter().map(|r| r.message.as_str()).collect();
        let raws: Vec<&str> = rows.iter().map(|r| r.raw.as_str()).collect();
        sqlx::query(
            "INSERT INTO rejects (org_id, run_id, record, line, reason, field, message, raw) \
             SELECT $1, $2, * FROM unnest($3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[])",
        )
        .bind(run.org_id)
        .bind(run.run_id)
        .bind(&records)
        .bind(&lines)
        .bind(&reasons)
        .bind(&fields)
        .bind(&messages)
        .bind(&raws)
        .execute(&mut *self.connection)
        .await?;
        Ok(())
    }

    async fn insert_events(&mut self, org_id: i64, events: &[PendingEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let total: i64 = events.iter().map(|event| event.count() as i64).sum();
        let mut next = super::reserve_event_ids(&mut self.connection, org_id, total).await?;
        let mut ids = Vec::with_capacity(events.len());
        let mut run_ids = Vec::with_capacity(events.len());
        let mut kinds = Vec::with_capacity(events.len());
        let mut counts = Vec::with_capacity(events.len());
        let mut first_rows = Vec::with_capacity(events.len());
        let mut last_rows = Vec::with_capacity(events.len());
        let mut card_ids = Vec::with_capacity(events.len());
        let mut card_numbers = Vec::with_capacity(events.len());
        let mut external_ids = Vec::with_capacity(events.len());
        let mut previous_external_ids = Vec::with_capacity(events.len());
        let mut created = Vec::with_capacity(events.len());
        for event in events {
            ids.push(next);
            next += event.count() as i64;
            counts.push(event.count() as i64);
            match event {
                PendingEvent::CardsCreated {
                    run_id,
                    first_card_id,
                    last_card_id,
                    created_at,
                    ..
                }
                | PendingEvent::CustomersRegistered {
                    run_id,
                    first_row_id: first_card_id,
                    last_row_id: last_card_id,
                    created_at,
                    ..
                } => {
                    run_ids.push(*run_id);
                    kinds.push(if matches!(event, PendingEvent::CardsCreated { .. }) {
                        "card_created"
                    } else {
                        "customer_registered"
                    });
                    first_rows.push(Some(*first_card_id));
                    last_rows.push(Some(*last_card_id));
                    card_ids.push(None);
                    card_numbers.push(None);
                    external_ids.push(None);
                    previous_external_ids.push(None);
                    created.push(created_at.as_str());
                }
                PendingEvent::ExternalIdSet {
                    run_id,
                    card_id,
                    card_number,
                    external_id,
                    previous_external_id,
                    created_at,
                } => {
                    run_ids.push(*run_id);
                    kinds.push("card_external_id_set");
                    first_rows.push(None);
                    last_rows.push(None);
                    card_ids.push(Some(*card_id));
                    card_numbers.push(Some(card_number.as_str()));
                    external_ids.push(Some(external_id.as_str()));
                    previous_external_ids.push(previous_external_id.as_deref());
                    created.push(created_at.as_str());
                }
            }
        }
        sqlx::query(
            "INSERT INTO events (id, org_id, run_id, kind, event_count, first_row, last_row, card_id, card_number, \
             external_id, previous_external_id, created_at) \
             SELECT i, $1, r, k, c, f, l, d, n, e, p, t::timestamptz FROM unnest($2::bigint[], $3::bigint[], \
             $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::text[], $10::text[], \
             $11::text[], $12::text[]) AS u(i, r, k, c, f, l, d, n, e, p, t)",
        )
        .bind(org_id)
        .bind(&ids)
        .bind(&run_ids)
        .bind(&kinds)
        .bind(&counts)
        .bind(&first_rows)
        .bind(&last_rows)
        .bind(&card_ids)
        .bind(&card_numbers)
        .bind(&external_ids)
        .bind(&previous_external_ids)
        .bind(&created)
        .execute(&mut *self.connection)
        .await?;
        Ok(())
    }

    async fn checkpoint(&mut self, run: &RunContext, through: u64, outcome: &BatchOutcome) -> Result<(), StoreError> {
        crate::store::shared_queries::checkpoint(run, through, outcome)
            .execute(&mut *self.connection)
            .await?;
        Ok(())
    }

    async fn record_reject_report(&mut self, org_id: i64, run_id: i64, path: &str) -> Result<(), StoreError> {
        crate::store::shared_queries::record_reject_report(org_id, run_id, path)
            .execute(&mut *self.connection)
            .await?;
        Ok(())
    }

    async fn finish(
        &mut self,
        org_id: i64,
        run_id: i64,
        status: RunStatus,
        already_committed: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE runs SET status = $1, finished_at = $2::timestamptz, already_committed = $3 \
             WHERE org_id = $4 AND id = $5",
        )
        .bind(status.as_str())
        .bind(now())
        .bind(already_committed as i64)
        .bind(org_id)
        .bind(run_id)
        .execute(&mut *self.connection)
        .await?;
        Ok(())
    }

    async fn reason_counts(
        &mut self,
        org_id: i64,
        run_id: i64,
        after_record: u64,
    ) -> Result<Vec<(RejectReason, u64)>, StoreError> {
        let rows = crate::store::shared_queries::reason_counts(org_id, run_id, after_record)
            .fetch_all(&mut *self.connection)
            .await?;
        rows.iter().map(decode::reason_count).collect()
    }

    async fn reject_page(
        &mut self,
        org_id: i64,
        run_id: i64,
        after_record: u64,
        limit: u32,
    ) -> Result<Vec<RejectRow>, StoreError> {
        reject_page(&mut self.connection, org_id, run_id, after_record, limit).await
    }

    async fn close(mut self: Box<Self>) -> Result<(), StoreError> {
        if self.dry_run {
            sqlx::raw_sql("ROLLBACK").execute(&mut *self.connection).await?;
        } else {
            self.settle(super::SETTLE_WAIT_AT_END).await;
            if self.holds_run_lock {
                sqlx::query("SELECT pg_advisory_unlock($1, $2)")
                    .bind(RUN_LOCK_SPACE)
                    .bind(self.run.run_id as i32)
                    .execute(&mut *self.connection)
                    .await?;
            }
        }
        if let ImportConnection::Own(connection) = self.connection {
            connection.close().await?;
        }
        Ok(())
    }
}

/// `SAVEPOINT name`, `RELEASE name` or `ROLLBACK TO name`.
async fn execute_named(connection: &mut PgConnection, verb: &str, name: &'static str) -> Result<(), StoreError> {
    let sql = format!("{verb} {name}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(connection).await?;
    Ok(())
}

/// Up to `limit` rejects of a run above `after_record`, in record order.
pub(super) async fn reject_page(
    connection: &mut PgConnection,
    org_id: i64,
    run_id: i64,
    after_record: u64,
    limit: u32,
) -> Result<Vec<RejectRow>, StoreError> {
    let rows = crate::store::shared_queries::reject_page(org_id, run_id, after_record, limit)
        .fetch_all(&mut *connection)
        .await?;
    rows.iter().map(decode::reject).collect()
}
