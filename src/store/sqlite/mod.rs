//! The SQLite store: the embedded default. WAL mode, one writer at a time
//! (`BEGIN IMMEDIATE`, so a transaction never has to upgrade its lock). Bulk
//! inserts run SQLite's own loop: a prepared statement stepped per row on
//! the connection's handle for an import's cards and rejects, one statement
//! over `json_each(?)` for the rest.

use std::str::FromStr;

use async_trait::async_trait;
use futures_util::stream::{BoxStream, StreamExt};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Row, Sqlite, SqliteConnection, Transaction};

use super::events::{
    CREATED_CARDS, CardSnapshot, CustomerSnapshot, EventRecord, EventRow, EventTables, REGISTERED_CUSTOMERS, event_page,
};
use super::{
    CARD_NUMBER_TAKEN, CLEAR_ORG_CONFIG, CardView, DatabaseUrl, DeliverNumbers, GenerateCards, GeneratedCards,
    ImportBackend, ImportStart, ORG_CONFIG, OpenOptions, PrefixQuery, PrefixRun, RUN_INFO_COLUMNS, RunCard, RunInfo,
    SET_ORG_CONFIG, SeriesRef, Store, StoreError, card_created_payload, decode, is_unique_violation, new_secret, now,
    prefix, shared_queries,
};
use crate::batch::{ImportKind, RejectRow};
use crate::domain::{ConfigKey, NewCard, NewSeries, Series};
use crate::numbers::NumberFormat;
use crate::parallel::on_rayon;

mod import;
mod json_rows;
mod lock;
mod prepared;
mod sequences;

use lock::{BUSY_SLICE, LockWait};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
    url: DatabaseUrl,
    lock_wait: LockWait,
}

impl SqliteStore {
    /// Opens the database, creating the file and running migrations on first use.
    pub async fn open(url: &DatabaseUrl, open: &OpenOptions) -> Result<Self, StoreError> {
        let name = url
            .file()
            .map_or_else(|| url.redacted(), |file| file.display().to_string());
        let lock_wait = LockWait::new(name.clone(), open.lock_timeout, open.announce_waits);
        let options = SqliteConnectOptions::from_str(url.secret())?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            // SQLite's own busy handler waits in slices; LockWait counts them.
            .busy_timeout(BUSY_SLICE)
            // 32 MiB of page cache per connection: most of an import's peak
            // memory, kept so that 3M-row imports stay under 128 MiB RSS.
            .pragma("cache_size", "-65536")
            // Checkpoint every 64 MiB of WAL rather than 4 MiB: an index page
            // changed by many batches is then written back once, not each time.
            .pragma("wal_autocheckpoint", "16384")
            .pragma("temp_store", "memory");
        let exists = url.file().is_none_or(|file| file.exists());
        if !exists && !open.create {
            return Err(StoreError::NoDatabase(name));
        }
        if !open.create {
            // A file that is there but not cardbatch's (empty, or another
            // program's), looked at read-only: nothing is written to it.
            let mut look =
                SqliteConnection::connect_with(&SqliteConnectOptions::from_str(url.secret())?.read_only(true)).await?;
            let ours: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
            )
            .fetch_one(&mut look)
            .await?;
            look.close().await?;
            if !ours {
                return Err(StoreError::NoDatabase(name));
            }
        }
        let pool = SqlitePoolOptions::new().max_connections(2).connect_lazy_with(options);
        lock_wait.retry(|| MIGRATOR.run(&pool)).await?;
        if !exists && open.announce_created {
            eprintln!("created a new cardbatch database at {name}");
        }
        Ok(SqliteStore {
            pool,
            url: url.clone(),
            lock_wait,
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A write transaction, begun once the write lock is ours (see [`LockWait`]).
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.lock_wait.retry(|| self.pool.begin_with("BEGIN IMMEDIATE")).await
    }
}

const CARD_VIEW_SELECT: &str = "SELECT c.id, c.org_id, c.series_id, c.card_number, c.external_id, c.customer_id, \
     c.status_label, c.transaction_not_allowed, c.mapped_entity, s.series_type \
     FROM cards c JOIN card_series s ON s.org_id = c.org_id AND s.id = c.series_id \
     WHERE c.org_id = ? AND c.card_number = ?";

/// The next event id: after the last row's events (under the write lock).
async fn next_event_id(connection: &mut SqliteConnection) -> Result<i64, StoreError> {
    let next: Option<i64> = sqlx::query_scalar("SELECT id + event_count FROM events ORDER BY id DESC LIMIT 1")
        .fetch_optional(connection)
        .await?;
    Ok(next.unwrap_or(1))
}

/// Writes one event with its payload (a single-record command's).
async fn insert_event(
    tx: &mut Transaction<'static, Sqlite>,
    org_id: i64,
    run_id: Option<i64>,
    kind: &str,
    payload: &serde_json::Value,
    created_at: &str,
) -> Result<(), StoreError> {
    let id = next_event_id(tx).await?;
    sqlx::query("INSERT INTO events (id, org_id, run_id, kind, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(id)
        .bind(org_id)
        .bind(run_id)
        .bind(kind)
        .bind(payload.to_string())
        .bind(created_at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn close(&self) -> Result<(), StoreError> {
        // TRUNCATE empties the log; the last connection to close then removes it and the shared-memory file.
        let checkpoint = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.pool).await;
        self.pool.close().await;
        checkpoint?;
        Ok(())
    }

    fn describe(&self) -> String {
        self.url.redacted()
    }

    async fn org_config(&self, org_id: i64) -> Result<Vec<(String, String)>, StoreError> {
        let rows = shared_queries::of_org(ORG_CONFIG, org_id, &[])
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("key")?, row.try_get("value")?)))
            .collect()
    }

    async fn set_org_config(&self, org_id: i64, key: ConfigKey, value: Option<&str>) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        match value {
            Some(value) => {
                shared_queries::of_org(SET_ORG_CONFIG, org_id, &[key.name(), value])
                    .execute(&mut *tx)
                    .await?;
            }
            None => {
                shared_queries::of_org(CLEAR_ORG_CONFIG, org_id, &[key.name()])
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn create_series(&self, org_id: i64, series: &NewSeries) -> Result<i64, StoreError> {
        let secret = new_secret()?;
        let mut tx = self.begin_write().await?;
        let code_taken = shared_queries::series(org_id, SeriesRef::Code(&series.code))
            .fetch_optional(&mut *tx)
            .await?;
        if code_taken.is_some() {
            return Err(StoreError::SeriesCodeExists(series.code.clone()));
        }
        let generation = series.generation.as_ref();
        if let Some(config) = generation {
            let same_format = shared_queries::series_with_format(org_id, config.format())
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(code) = same_format {
                return Err(StoreError::SeriesFormatExists(code));
            }
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO card_series (org_id, code, name, series_type, expiry_days, max_active_cards_per_customer, \
             gen_prefix, gen_suffix, gen_offset, gen_length, gen_method, generation_enabled, is_active, trigger_kind, \
             next_counter, secret_key, created_at, checksum_values) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(org_id)
        .bind(&series.code)
        .bind(&series.name)
        .bind(decode::series_type_name(series.series_type))
        .bind(series.expiry_days)
        .bind(series.max_active_cards_per_customer)
        .bind(generation.map(|g| g.prefix()))
        .bind(generation.map(|g| g.suffix()))
        .bind(generation.map(|g| g.offset as i64))
        .bind(generation.map(|g| g.length() as i64))
        .bind(generation.map(|g| g.method().as_str()))
        .bind(series.generation_enabled)
        .bind(series.is_active)
        .bind(decode::trigger_name(series.trigger))
        .bind(generation.map_or(1, |g| g.offset as i64))
        .bind(secret.to_hex())
        .bind(now())
        .bind(generation.map_or("NONE", |g| g.checksum_values()))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn list_series(&self, org_id: i64) -> Result<Vec<Series>, StoreError> {
        let rows = shared_queries::org_series(org_id).fetch_all(&self.pool).await?;
        rows.iter().map(decode::series).collect()
    }

    async fn find_series(&self, org_id: i64, series: SeriesRef<'_>) -> Result<Option<Series>, StoreError> {
        let row = shared_queries::series(org_id, series)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode::series).transpose()
    }

    async fn generate_cards(
        &self,
        org_id: i64,
        request: &GenerateCards,
        deliver: &mut DeliverNumbers<'_>,
    ) -> Result<GeneratedCards, StoreError> {
        let created_at = now();
        let max = request.generator.format().max_counter();
        let mut tx = self.begin_write().await?;
        // BEGIN IMMEDIATE holds the write lock from the start, so no other
        // process can reserve from this counter until the cards are committed.
        let run_id: i64 = sqlx::query_scalar(
            "INSERT INTO runs (org_id, kind, status, started_at, finished_at) VALUES (?, 'generate', 'completed', ?, ?) RETURNING id",
        )
        .bind(org_id)
        .bind(&created_at)
        .bind(&created_at)
        .fetch_one(&mut *tx)
        .await?;
        let mut numbers = Vec::with_capacity(request.count);
        let mut skipped = 0usize;
        while numbers.len() < request.count {
            let wanted = request.count - numbers.len();
            let first =
                sequences::reserve_counter_range(&mut tx, org_id, request.series_id, wanted as u64, max).await?;
            let generator = request.generator.clone();
            let block = on_rayon(move || generator.render_block(first, wanted)).await;
            let inserted = sqlx::query(
                "INSERT INTO cards (org_id, series_id, card_number, status_label, run_id, created_at) \
                 SELECT ?, ?, value, ?, ?, ? FROM json_each(?) WHERE true \
                 ON CONFLICT DO NOTHING",
            )
            .bind(org_id)
            .bind(request.series_id)
            .bind(&request.status_label)
            .bind(run_id)
            .bind(&created_at)
            .bind(block.to_sorted_json_array())
            .execute(&mut *tx)
            .await?
            .rows_affected() as usize;
            if inserted == wanted {
                numbers.extend(block.iter().map(str::to_string));
                continue;
            }
            // Some numbers were already taken by cards added by hand: keep the
            // ones this run inserted and reserve more counter values for the rest.
            let ours: std::collections::HashSet<String> = sqlx::query_scalar(
                "SELECT card_number FROM cards WHERE org_id = ? AND run_id = ? AND card_number IN (SELECT value FROM json_each(?))",
            )
            .bind(org_id)
            .bind(run_id)
            .bind(block.to_json_array())
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
            skipped += wanted - inserted;
            numbers.extend(block.iter().filter(|n| ours.contains(*n)).map(str::to_string));
        }
        let payload = serde_json::json!({
            "series_id": request.series_id,
            "count": numbers.len(),
            "status_label": request.status_label,
            "first_card_number": numbers.first(),
            "last_card_number": numbers.last(),
            "run_id": run_id,
        });
        insert_event(&mut tx, org_id, Some(run_id), "cards_generated", &payload, &created_at).await?;
        // The caller takes the numbers before they are committed: if it cannot, none are.
        deliver(&numbers).map_err(StoreError::Delivery)?;
        tx.commit().await?;
        Ok(GeneratedCards {
            run_id,
            numbers,
            skipped,
        })
    }

    async fn add_card(&self, org_id: i64, card: &NewCard) -> Result<i64, StoreError> {
        let created_at = now();
        let mut tx = self.begin_write().await?;
        let result = sqlx::query_scalar(
            "INSERT INTO cards (org_id, series_id, card_number, external_id, status_label, status_reason, customer_id, \
             extended_fields, custom_fields, mapped_entity, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(org_id)
        .bind(card.series_id)
        .bind(&card.card_number)
        .bind(&card.external_id)
        .bind(&card.status_label)
        .bind(&card.status_reason)
        .bind(card.customer_id)
        .bind(card.extended_fields.as_ref().map(|v| v.to_string()))
        .bind(card.custom_fields.as_ref().map(|v| v.to_string()))
        .bind(card.mapped_entity.as_ref().map(|v| v.to_string()))
        .bind(&created_at)
        .fetch_one(&mut *tx)
        .await;
        let card_id: i64 = match result {
            Ok(id) => id,
            Err(error) if is_unique_violation(&error) => {
                let number_taken = shared_queries::of_org(CARD_NUMBER_TAKEN, org_id, &[&card.card_number])
                    .fetch_optional(&mut *tx)
                    .await?;
                return Err(match number_taken {
                    Some(_) => StoreError::CardNumberExists(card.card_number.clone()),
                    None => StoreError::ExternalIdExists(card.external_id.clone().unwrap_or_default()),
                });
            }
            Err(error) => return Err(error.into()),
        };
        insert_event(
            &mut tx,
            org_id,
            None,
            "card_created",
            &card_created_payload(card_id, org_id, card),
            &created_at,
        )
        .await?;
        tx.commit().await?;
        Ok(card_id)
    }

    async fn set_card_external_id(
        &self,
        org_id: i64,
        card_number: &str,
        external_id: &str,
    ) -> Result<CardView, StoreError> {
        let mut tx = self.begin_write().await?;
        let updated = shared_queries::set_card_external_id(org_id, card_number, external_id)
            .execute(&mut *tx)
            .await;
        match updated {
            Ok(done) if done.rows_affected() == 0 => return Err(StoreError::CardNotFound(card_number.to_string())),
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {
                return Err(StoreError::ExternalIdExists(external_id.to_string()));
            }
            Err(error) => return Err(error.into()),
        }
        let row = sqlx::query(CARD_VIEW_SELECT)
            .bind(org_id)
            .bind(card_number)
            .fetch_one(&mut *tx)
            .await?;
        let card = decode::card_view(&row)?;
        let payload = serde_json::json!({
            "card_id": card.card_id,
            "org_id": org_id,
            "card_number": card.card_number,
            "external_id": external_id,
        });
        insert_event(&mut tx, org_id, None, "card_external_id_set", &payload, &now()).await?;
        tx.commit().await?;
        Ok(card)
    }

    async fn next_external_id(&self, org_id: i64, format: &NumberFormat, offset: u64) -> Result<String, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut ids = sequences::reserve_external_ids(&mut tx, org_id, format, offset, 1).await?;
        tx.commit().await?;
        ids.pop()
            .ok_or_else(|| StoreError::Corrupt("no external ID reserved".into()))
    }

    fn run_cards(&self, org_id: i64, run_id: i64) -> BoxStream<'_, Result<RunCard, StoreError>> {
        shared_queries::run_cards(org_id, run_id)
            .fetch(&self.pool)
            .map(|row| decode::run_card(&row?))
            .boxed()
    }

    async fn import_backend(&self, org_id: i64, start: &ImportStart) -> Result<Box<dyn ImportBackend>, StoreError> {
        let database = self.url.file();
        Ok(Box::new(
            import::open(&self.pool, &self.lock_wait, database, org_id, start).await?,
        ))
    }

    async fn find_run(&self, org_id: i64, run_id: i64) -> Result<Option<RunInfo>, StoreError> {
        let sql = format!("SELECT {RUN_INFO_COLUMNS}, started_at, finished_at FROM runs WHERE org_id = ? AND id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(org_id)
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode::run_info).transpose()
    }

    async fn stored_reading_plan(
        &self,
        org_id: i64,
        kind: ImportKind,
        input_hash: &str,
    ) -> Result<Option<String>, StoreError> {
        let plan = super::shared_queries::stored_reading_plan(org_id, kind.as_str(), input_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(plan.flatten())
    }

    async fn list_runs(&self, org_id: i64) -> Result<Vec<RunInfo>, StoreError> {
        let sql =
            format!("SELECT {RUN_INFO_COLUMNS}, started_at, finished_at FROM runs WHERE org_id = ? ORDER BY id DESC");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(org_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode::run_info).collect()
    }

    async fn last_event_id(&self, org_id: i64) -> Result<i64, StoreError> {
        prefix::last_event_id(&self.pool, org_id).await
    }

    async fn prefix_runs(&self, org_id: i64, query: &PrefixQuery<'_>) -> Result<Vec<PrefixRun>, StoreError> {
        prefix::prefix_runs(&self.pool, org_id, query).await
    }

    async fn adopt_run(&self, org_id: i64, start: &ImportStart, from: &PrefixRun) -> Result<bool, StoreError> {
        import::adopt(&self.pool, &self.lock_wait, org_id, start, from).await
    }

    async fn reject_page(
        &self,
        org_id: i64,
        run_id: i64,
        after_record: u64,
        limit: u32,
    ) -> Result<Vec<RejectRow>, StoreError> {
        import::reject_page(&mut *self.pool.acquire().await?, org_id, run_id, after_record, limit).await
    }

    async fn event_page(&self, org_id: i64, after_id: i64, limit: u32) -> Result<Vec<EventRecord>, StoreError> {
        let mut tables = SqliteEvents(self.pool.acquire().await?);
        event_page(&mut tables, org_id, after_id, limit).await
    }
}

/// The outbox's queries on SQLite.
struct SqliteEvents(sqlx::pool::PoolConnection<Sqlite>);

#[async_trait]
impl EventTables for SqliteEvents {
    async fn event_rows(&mut self, org_id: i64, after: i64, limit: u32) -> Result<Vec<EventRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.id, e.kind, e.org_id, e.run_id, e.event_count, e.first_row, e.last_row, e.card_id, \
             e.card_number, e.external_id, e.previous_external_id, e.payload, e.created_at \
             FROM events e WHERE e.org_id = ?1 AND e.id >= coalesce((SELECT max(id) FROM events WHERE org_id = ?1 AND id <= ?2 + 1), 0) \
             ORDER BY e.id LIMIT ?3",
        )
        .bind(org_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&mut *self.0)
        .await?;
        rows.iter().map(decode::event_row).collect()
    }

    async fn created_cards(
        &mut self,
        org_id: i64,
        run_id: i64,
        range: (i64, i64),
        skip: u64,
        limit: u64,
    ) -> Result<Vec<CardSnapshot>, StoreError> {
        let rows = shared_queries::batch_rows(CREATED_CARDS, org_id, run_id, range, skip, limit)
            .fetch_all(&mut *self.0)
            .await?;
        rows.iter().map(decode::card_snapshot).collect()
    }

    async fn registered_customers(
        &mut self,
        org_id: i64,
        run_id: i64,
        range: (i64, i64),
        skip: u64,
        limit: u64,
    ) -> Result<Vec<CustomerSnapshot>, StoreError> {
        let rows = shared_queries::batch_rows(REGISTERED_CUSTOMERS, org_id, run_id, range, skip, limit)
            .fetch_all(&mut *self.0)
            .await?;
        rows.iter().map(decode::customer_snapshot).collect()
    }
}
