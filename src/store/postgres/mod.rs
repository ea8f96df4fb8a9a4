//! The PostgreSQL store: the production backend. An import's cards go
//! straight into `cards` with one binary `COPY` per batch (see `import.rs`).
//! Counters are reserved with one atomic `UPDATE ... RETURNING`, whose row
//! lock serialises concurrent writers of the same counter until they
//! commit; event ids likewise, from the org's row in `event_counters`.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::{BoxStream, StreamExt};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres, Row, Transaction};

use super::events::{
    CREATED_CARDS, CardSnapshot, CustomerSnapshot, EventRecord, EventRow, EventTables, REGISTERED_CUSTOMERS, event_page,
};
use super::sequences::FreeIds;
use super::{
    CARD_NUMBER_TAKEN, CLEAR_ORG_CONFIG, CardView, DatabaseUrl, DeliverNumbers, GenerateCards, GeneratedCards,
    ImportBackend, ImportStart, ORG_CONFIG, OpenOptions, PrefixQuery, PrefixRun, RUN_INFO_COLUMNS, RunCard, RunInfo,
    SET_ORG_CONFIG, SeriesRef, Store, StoreError, TablePlacement, card_created_payload, decode, new_secret, now,
    prefix, shared_queries,
};
use crate::batch::{ImportKind, RejectRow};
use crate::domain::{ConfigKey, NewCard, NewSeries, Series};
use crate::numbers::{NumberFormat, PermutationKey};
use crate::parallel::on_rayon;

mod citus;
mod copy;
mod import;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// A timestamptz column as the same RFC 3339 text (UTC, milliseconds) that SQLite stores.
macro_rules! rfc3339 {
    ($column:literal) => {
        concat!(
            "to_char(",
            $column,
            " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
        )
    };
}

pub struct PgStore {
    pool: PgPool,
    url: DatabaseUrl,
    announce_waits: bool,
    /// A Citus coordinator: the few statements Citus runs differently
    /// take their Citus form (chosen once, here).
    citus: bool,
}

impl PgStore {
    /// Connects and runs migrations (under the migrator's advisory lock, so
    /// processes starting together on a new database migrate it once). Every
    /// connection waits at most `--lock-timeout` for a lock (`lock_timeout`),
    /// then fails with SQLSTATE 55P03.
    pub async fn open(url: &DatabaseUrl, open: &OpenOptions) -> Result<Self, StoreError> {
        let lock_timeout = format!("{}ms", open.lock_timeout.as_millis().max(1));
        let options = PgConnectOptions::from_str(url.secret())?
            .application_name("cardbatch")
            .options([("lock_timeout", lock_timeout.as_str())]);
        // One direct connection first, which also runs the migrations: an
        // unreachable server or a wrong password is reported at once, in the
        // server's words, rather than as a pool timeout 30 seconds later.
        let mut first = PgConnection::connect_with(&options).await?;
        let citus = citus::is_coordinator(&mut first).await?;
        if open.require_citus && !citus {
            return Err(StoreError::NotCitus(url.redacted()));
        }
        match migrations_pending(&mut first).await? {
            Pending::None => {}
            Pending::All if !open.create => return Err(StoreError::NoDatabase(url.redacted())),
            pending => {
                MIGRATOR.run(&mut first).await?;
                if pending == Pending::All && open.announce_created {
                    eprintln!("created cardbatch's tables in {}", url.redacted());
                }
            }
        }
        first.close().await?;
        // On a coordinator, a batch's COPY stays on one connection to its
        // worker (by default Citus moves a COPY to another connection after
        // 4 MB, and a transaction on several connections commits in two
        // phases on each: see benches/README.md, "Citus").
        let options = if citus {
            options.options([("citus.copy_switchover_threshold", "1GB")])
        } else {
            options
        };
        // Two pooled connections: an import's session holds one for the
        // whole run while the store answers on the other. No more: sqlx puts
        // a released connection back in the pool from a task of its own, so a
        // statement right after another may not find it there yet and open a
        // new one; on a role or server with few connections left, that one is
        // refused and retried until the pool times out, although an idle one
        // is back. At the limit, the pool waits for the idle one instead. An
        // import's second lane opens a connection of its own, outside the pool.
        let pool = PgPoolOptions::new().max_connections(2).connect_lazy_with(options);
        Ok(PgStore {
            pool,
            url: url.clone(),
            announce_waits: open.announce_waits,
            citus,
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Which of the migrations this build knows are not applied yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    Some,
    /// Every one: no cardbatch tables in the database.
    All,
}

/// Which migrations are pending. A database already up to date is not
/// touched: the migrator's `CREATE TABLE IF NOT EXISTS` of its own table
/// needs the table's owner on Citus, and a role that only reads and writes
/// cardbatch's rows must still open it.
async fn migrations_pending(connection: &mut PgConnection) -> Result<Pending, StoreError> {
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(&mut *connection)
        .await
        .or_else(|error| match &error {
            // No table yet: a new database.
            sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") => Ok(Vec::new()),
            _ => Err(error),
        })?;
    Ok(if applied.is_empty() {
        Pending::All
    } else if MIGRATOR.iter().any(|migration| !applied.contains(&migration.version)) {
        Pending::Some
    } else {
        Pending::None
    })
}

/// The columns of the unique key a statement broke, if that is what
/// failed (`["org_id", "code"]`). Known by the SQLSTATE, 23505, and the
/// key in the error's detail (`Key (org_id, code)=(1, GOLD) already
/// exists.`), never by the constraint's name, to which Citus appends the
/// shard's id. Citus re-raises a worker's refusal of a `COPY` row as
/// SQLSTATE XX000 with the worker's message and detail: the detail is
/// what says it is a unique key.
pub(crate) fn violated_key(error: &sqlx::Error) -> Option<Vec<String>> {
    let sqlx::Error::Database(db) = error else {
        return None;
    };
    let postgres = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
    let columns = postgres
        .detail()
        .and_then(|detail| detail.strip_prefix("Key ("))
        .filter(|detail| detail.ends_with(" already exists."))
        .and_then(|detail| detail.split_once(")="))
        .map(|(columns, _)| columns.split(", ").map(str::to_string).collect::<Vec<_>>());
    match postgres.code() {
        "23505" => Some(columns.unwrap_or_default()),
        "XX000" => columns,
        _ => None,
    }
}

const CARD_VIEW_SELECT: &str = "SELECT c.id, c.org_id, c.series_id, c.card_number, c.external_id, c.customer_id, \
     c.status_label, c.transaction_not_allowed, c.mapped_entity::text AS mapped_entity, s.series_type \
     FROM cards c JOIN card_series s ON s.org_id = c.org_id AND s.id = c.series_id \
     WHERE c.org_id = $1 AND c.card_number = $2";

/// Makes cards just committed findable by id range, for reads by id range
/// (a batch's `card_created` events, a run's cards) to read only the pages
/// of that range:
/// - summarizes the page ranges of `cards` that its BRIN index on id does
///   not cover yet (a range query reads every unsummarized range);
/// - analyzes `cards` when the planner believes the org holds fewer than a
///   tenth of the `written` cards this command just stored (a new org, or
///   a table never analyzed): with no statistics it costs the BRIN index as
///   if ids were in random order, and prefers the primary key's B-tree for
///   `org_id = $1`, reading the org's every card for each range.
///
/// Run in a transaction of its own, which holds a lock that other
/// summarizers and VACUUM take too (writers do not) for at most `wait`:
/// a busy lock (autovacuum, which a wait over a second cancels) is left
/// for a later call. Only a speed matter, so a failure (a role that does
/// not own the table) is logged and left to VACUUM and ANALYZE. Returns
/// whether it was done.
pub(crate) async fn settle_new_cards(connection: &mut PgConnection, org_id: i64, written: u64, wait: Duration) -> bool {
    let settled = async {
        let mut tx = connection.begin().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SET LOCAL lock_timeout = {}",
            wait.as_millis().max(1)
        )))
        .execute(&mut *tx)
        .await?;
        sqlx::query("SELECT brin_summarize_new_values('cards_id'::regclass)")
            .execute(&mut *tx)
            .await?;
        let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "EXPLAIN SELECT 1 FROM cards WHERE org_id = {org_id}"
        )))
        .fetch_all(&mut *tx)
        .await?;
        if estimated_rows(&plan).is_none_or(|rows| rows.saturating_mul(10) < written) {
            sqlx::raw_sql("ANALYZE cards").execute(&mut *tx).await?;
        }
        tx.commit().await
    };
    match settled.await {
        Ok(()) => true,
        Err(error) => {
            tracing::debug!(%error, "new cards not summarized or analyzed now");
            false
        }
    }
}

/// The rows a text `EXPLAIN` expects: the largest estimate of any node.
/// On plain PostgreSQL that is the top node's (a scan's children expect no
/// more); on a Citus coordinator the top node is Citus's, which always
/// says 0, and the estimate is the worker's, on the shard's scan below it.
fn estimated_rows(plan: &[String]) -> Option<u64> {
    plan.iter()
        .filter_map(|line| {
            let rows = &line[line.find(" rows=")? + " rows=".len()..];
            rows.split(' ').next()?.parse().ok()
        })
        .max()
}

/// How long the end of an import or generation waits to settle its cards
/// (long enough for autovacuum to be cancelled); a commit mid-import waits
/// [`SETTLE_WAIT_BETWEEN`] and leaves a busy lock for later.
pub(crate) const SETTLE_WAIT_AT_END: Duration = Duration::from_secs(2);
pub(crate) const SETTLE_WAIT_BETWEEN: Duration = Duration::from_millis(20);

/// Reserves `count` event ids of the org and returns the first. The org's
/// counter row stays locked until the transaction ends, so the ids follow
/// commit order; callers take it just before they commit.
///
/// One `UPDATE` once the org has a counter. Its first reservation creates
/// the row, starting after the org's last event (a database from before
/// the counters), then takes the ids as any other: two statements, as
/// Citus refuses a subquery inside an `INSERT`; `ON CONFLICT DO NOTHING`
/// lets a writer that loses the race to create it take its ids from the
/// winner's row.
async fn reserve_event_ids(connection: &mut PgConnection, org_id: i64, count: i64) -> Result<i64, StoreError> {
    loop {
        let first: Option<i64> = sqlx::query_scalar(
            "UPDATE event_counters SET next_id = next_id + $2 WHERE org_id = $1 RETURNING next_id - $2",
        )
        .bind(org_id)
        .bind(count)
        .fetch_optional(&mut *connection)
        .await?;
        if let Some(first) = first {
            return Ok(first);
        }
        let start: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) + 1 FROM events WHERE org_id = $1")
            .bind(org_id)
            .fetch_one(&mut *connection)
            .await?;
        sqlx::query("INSERT INTO event_counters (org_id, next_id) VALUES ($1, $2) ON CONFLICT (org_id) DO NOTHING")
            .bind(org_id)
            .bind(start)
            .execute(&mut *connection)
            .await?;
    }
}

/// Writes one event with its payload (a single-record command's), as the
/// transaction's last statement before its commit.
async fn insert_event(
    connection: &mut PgConnection,
    org_id: i64,
    run_id: Option<i64>,
    kind: &str,
    payload: &serde_json::Value,
    created_at: &str,
) -> Result<(), StoreError> {
    let id = reserve_event_ids(&mut *connection, org_id, 1).await?;
    sqlx::query(
        "INSERT INTO events (id, org_id, run_id, kind, payload, created_at) \
         VALUES ($1, $2, $3, $4, $5::json, $6::timestamptz)",
    )
    .bind(id)
    .bind(org_id)
    .bind(run_id)
    .bind(kind)
    .bind(payload.to_string())
    .bind(created_at)
    .execute(connection)
    .await?;
    Ok(())
}

/// Atomically moves the series counter forward by `count` and returns the first
/// reserved value, or `CounterExhausted` when the range does not fit under `max`.
/// The row stays locked until the caller's transaction ends.
async fn reserve_counter_range(
    connection: &mut PgConnection,
    org_id: i64,
    series_id: i64,
    count: u64,
    max: u64,
) -> Result<u64, StoreError> {
    // The last reserved value, next + count - 1, must be at most max.
    if let Some(highest_start) = (max + 1).checked_sub(count) {
        let first: Option<i64> = sqlx::query_scalar(
            "UPDATE card_series SET next_counter = next_counter + $1 \
             WHERE org_id = $2 AND id = $3 AND next_counter <= $4 RETURNING next_counter - $1",
        )
        .bind(count as i64)
        .bind(org_id)
        .bind(series_id)
        .bind(highest_start as i64)
        .fetch_optional(&mut *connection)
        .await?;
        if let Some(first) = first {
            return Ok(first as u64);
        }
    }
    let next: Option<i64> = sqlx::query_scalar("SELECT next_counter FROM card_series WHERE org_id = $1 AND id = $2")
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

/// Reserves `count` org-level external IDs of `format` (see
/// [`FreeIds`]); the sequence row stays locked until the caller commits.
pub(super) async fn reserve_external_ids(
    connection: &mut PgConnection,
    org_id: i64,
    format: &NumberFormat,
    offset: u64,
    count: usize,
) -> Result<Vec<String>, StoreError> {
    sqlx::query(
        "INSERT INTO org_sequences (org_id, next_counter, secret_key) VALUES ($1, $2, $3) \
         ON CONFLICT (org_id) DO NOTHING",
    )
    .bind(org_id)
    .bind(offset as i64)
    .bind(new_secret()?.to_hex())
    .execute(&mut *connection)
    .await?;
    let row = sqlx::query("SELECT next_counter, secret_key FROM org_sequences WHERE org_id = $1 FOR UPDATE")
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
            "SELECT external_id FROM cards WHERE org_id = $1 AND external_id = ANY($2) \
             UNION SELECT external_id FROM customers WHERE org_id = $1 AND external_id = ANY($2)",
        )
        .bind(org_id)
        .bind(&candidates)
        .fetch_all(&mut *connection)
        .await?
        .into_iter()
        .collect();
        reservation.keep(candidates, &taken);
    }
    let (ids, counter) = reservation.finish();
    sqlx::query("UPDATE org_sequences SET next_counter = $1 WHERE org_id = $2")
        .bind(counter as i64)
        .bind(org_id)
        .execute(&mut *connection)
        .await?;
    Ok(ids)
}

#[async_trait]
impl Store for PgStore {
    async fn close(&self) -> Result<(), StoreError> {
        self.pool.close().await;
        Ok(())
    }

    fn describe(&self) -> String {
        self.url.redacted()
    }

    async fn table_placements(&self) -> Result<Vec<TablePlacement>, StoreError> {
        if !self.citus {
            return Err(StoreError::NotCitus(self.describe()));
        }
        citus::placements(&mut *self.pool.acquire().await?).await
    }

    async fn distribute(&self) -> Result<Vec<TablePlacement>, StoreError> {
        if !self.citus {
            return Err(StoreError::NotCitus(self.describe()));
        }
        citus::distribute(&mut *self.pool.acquire().await?).await
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
        match value {
            Some(value) => {
                shared_queries::of_org(SET_ORG_CONFIG, org_id, &[key.name(), value])
                    .execute(&self.pool)
                    .await?;
            }
            None => {
                shared_queries::of_org(CLEAR_ORG_CONFIG, org_id, &[key.name()])
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(())
    }

    async fn create_series(&self, org_id: i64, series: &NewSeries) -> Result<i64, StoreError> {
        let secret = new_secret()?;
        let generation = series.generation.as_ref();
        let same_format = match generation {
            None => None,
            Some(config) => {
                shared_queries::series_with_format(org_id, config.format())
                    .fetch_optional(&self.pool)
                    .await?
            }
        };
        let code_taken = shared_queries::series(org_id, SeriesRef::Code(&series.code))
            .fetch_optional(&self.pool)
            .await?
            .is_some();
        if code_taken {
            return Err(StoreError::SeriesCodeExists(series.code.clone()));
        }
        if let Some(code) = same_format {
            return Err(StoreError::SeriesFormatExists(code));
        }
        // Two processes creating the same series at once both get past the
        // checks above; the unique keys decide, and the loser gets the same error.
        let inserted = sqlx::query_scalar(
            "INSERT INTO card_series (org_id, code, name, series_type, expiry_days, max_active_cards_per_customer, \
             gen_prefix, gen_suffix, gen_offset, gen_length, gen_method, generation_enabled, is_active, trigger_kind, \
             next_counter, secret_key, created_at, checksum_values) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17::timestamptz, $18) \
             RETURNING id",
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
        .fetch_one(&self.pool)
        .await;
        match inserted {
            Ok(id) => Ok(id),
            Err(error) => match violated_key(&error) {
                Some(key) if key.iter().any(|column| column == "code") => {
                    Err(StoreError::SeriesCodeExists(series.code.clone()))
                }
                Some(_) => Err(StoreError::SeriesFormatExists(series.code.clone())),
                None => Err(error.into()),
            },
        }
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
        let mut tx: Transaction<'static, Postgres> = self.pool.begin().await?;
        let run_id: i64 = sqlx::query_scalar(
            "INSERT INTO runs (org_id, kind, status, started_at, finished_at) \
             VALUES ($1, 'generate', 'completed', $2::timestamptz, $2::timestamptz) RETURNING id",
        )
        .bind(org_id)
        .bind(&created_at)
        .fetch_one(&mut *tx)
        .await?;
        let mut numbers = Vec::with_capacity(request.count);
        let mut skipped = 0usize;
        while numbers.len() < request.count {
            let wanted = request.count - numbers.len();
            // The counter row stays locked until commit: a concurrent
            // generator on this series waits here, then reserves after us.
            let first = reserve_counter_range(&mut tx, org_id, request.series_id, wanted as u64, max).await?;
            let generator = request.generator.clone();
            let block: Vec<String> = on_rayon(move || {
                let block = generator.render_block(first, wanted);
                block.iter().map(str::to_string).collect()
            })
            .await;
            let inserted: HashSet<String> = sqlx::query_scalar(
                "INSERT INTO cards (org_id, series_id, card_number, status_label, run_id, created_at) \
                 SELECT $1, $2, number, $3, $4, $5::timestamptz FROM unnest($6::text[]) AS number \
                 ON CONFLICT DO NOTHING RETURNING card_number",
            )
            .bind(org_id)
            .bind(request.series_id)
            .bind(&request.status_label)
            .bind(run_id)
            .bind(&created_at)
            .bind(&block)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
            // Numbers already taken by cards added by hand are skipped; more
            // counter values are reserved for them on the next turn.
            skipped += wanted - inserted.len();
            numbers.extend(block.into_iter().filter(|n| inserted.contains(n)));
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
        // The numbers are delivered and stored: what follows is only for speed.
        if let Ok(mut connection) = self.pool.acquire().await {
            settle_new_cards(&mut connection, org_id, numbers.len() as u64, SETTLE_WAIT_AT_END).await;
        }
        Ok(GeneratedCards {
            run_id,
            numbers,
            skipped,
        })
    }

    async fn add_card(&self, org_id: i64, card: &NewCard) -> Result<i64, StoreError> {
        let created_at = now();
        let mut tx = self.pool.begin().await?;
        let result = sqlx::query_scalar(
            "INSERT INTO cards (org_id, series_id, card_number, external_id, status_label, status_reason, customer_id, \
             extended_fields, custom_fields, mapped_entity, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8::json, $9::json, $10::json, $11::timestamptz) RETURNING id",
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
            Err(error) if violated_key(&error).is_some() => {
                // The number is named when both keys are taken, whichever
                // index PostgreSQL happened to check first.
                drop(tx);
                let number_taken = shared_queries::of_org(CARD_NUMBER_TAKEN, org_id, &[&card.card_number])
                    .fetch_optional(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        let updated = shared_queries::set_card_external_id(org_id, card_number, external_id)
            .execute(&mut *tx)
            .await;
        match updated {
            Ok(done) if done.rows_affected() == 0 => return Err(StoreError::CardNotFound(card_number.to_string())),
            Ok(_) => {}
            Err(error) if violated_key(&error).is_some() => {
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
        let mut tx = self.pool.begin().await?;
        let mut ids = reserve_external_ids(&mut tx, org_id, format, offset, 1).await?;
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
        Ok(Box::new(
            import::open(&self.pool, self.announce_waits, org_id, start).await?,
        ))
    }

    async fn find_run(&self, org_id: i64, run_id: i64) -> Result<Option<RunInfo>, StoreError> {
        let sql = format!(
            "SELECT {RUN_INFO_COLUMNS}, {} AS started_at, {} AS finished_at FROM runs WHERE org_id = $1 AND id = $2",
            rfc3339!("started_at"),
            rfc3339!("finished_at")
        );
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
        let sql = format!(
            "SELECT {RUN_INFO_COLUMNS}, {} AS started_at, {} AS finished_at FROM runs WHERE org_id = $1 ORDER BY id DESC",
            rfc3339!("started_at"),
            rfc3339!("finished_at")
        );
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
        import::adopt(&self.pool, org_id, start, from).await
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
        let mut tables = PgEvents(self.pool.acquire().await?);
        event_page(&mut tables, org_id, after_id, limit).await
    }
}

/// The outbox's queries on PostgreSQL.
struct PgEvents(sqlx::pool::PoolConnection<Postgres>);

#[async_trait]
impl EventTables for PgEvents {
    async fn event_rows(&mut self, org_id: i64, after: i64, limit: u32) -> Result<Vec<EventRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT e.id, e.kind, e.org_id, e.run_id, e.event_count, e.first_row, e.last_row, e.card_id, ",
            "e.card_number, e.external_id, e.previous_external_id, e.payload::text AS payload, ",
            rfc3339!("e.created_at"),
            " AS created_at FROM events e ",
            "WHERE e.org_id = $1 AND e.id >= coalesce((SELECT max(id) FROM events WHERE org_id = $1 AND id <= $2 + 1), 0) ",
            "ORDER BY e.id LIMIT $3"
        ))
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

#[cfg(test)]
mod tests {
    use super::estimated_rows;

    #[test]
    fn the_largest_estimate_of_the_plan_is_taken() {
        let plan = [
            "Bitmap Heap Scan on cards  (cost=35.83..1318.92 rows=455 width=0)".to_string(),
            "  ->  Bitmap Index Scan on cards_org_number  (cost=0.00..35.83 rows=9 width=0)".to_string(),
        ];
        assert_eq!(estimated_rows(&plan), Some(455));
        assert_eq!(estimated_rows(&[]), None);
        assert_eq!(estimated_rows(&["Result  (cost=0.00..0.01 width=0)".to_string()]), None);
        // A Citus coordinator's plan: its own node always says 0, the worker's scan has the estimate.
        let citus = [
            "Custom Scan (Citus Adaptive)  (cost=0.00..0.00 rows=0 width=0)",
            "  Task Count: 1",
            "  ->  Task",
            "        Node: host=127.0.0.1 port=56269 dbname=c2",
            "        ->  Seq Scan on cards_102073 cards  (cost=0.00..33468.00 rows=1090000 width=4)",
            "              Filter: (org_id = 1)",
        ]
        .map(str::to_string);
        assert_eq!(estimated_rows(&citus), Some(1_090_000));
    }
}
