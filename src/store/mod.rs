//! The store: every read and write of cardbatch's tables, behind one trait
//! with a SQLite implementation (the embedded default) and a PostgreSQL one,
//! chosen from the URL scheme. Each uses its own fastest sound bulk path;
//! behaviour is identical on both.

pub mod backend;
mod decode;
pub mod events;
mod postgres;
mod prefix;
mod sequences;
mod sqlite;
pub mod url;

use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use serde_json::{Value, json};

use crate::batch::{ImportKind, RejectRow};
use crate::domain::{ConfigKey, NewCard, NewSeries, Series};
use crate::numbers::{NumberFormat, NumberGenerator, PermutationKey};
pub use backend::ImportBackend;
pub use backend::{BatchOutcome, ImportStart, InputDetails, RunState, RunStatus, VerdictBasis};
pub use events::{EventPayload, EventRecord};
pub use postgres::PgStore;
pub use prefix::PrefixQuery;
pub use sqlite::SqliteStore;
pub use url::{Backend, DatabaseUrl, UrlError, redact};

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("series code {0:?} already exists in the org")]
    SeriesCodeExists(String),
    #[error("series {0:?} already has the same prefix, suffix and length")]
    SeriesFormatExists(String),
    #[error("card number {0:?} already exists")]
    CardNumberExists(String),
    #[error("card external ID {0:?} already exists")]
    ExternalIdExists(String),
    #[error("card {0:?} does not exist")]
    CardNotFound(String),
    #[error("series {0} does not exist")]
    SeriesNotFound(i64),
    #[error(
        "the counter is at {next} and {requested} more value(s) do not fit (the last value that fits is {max}): lengthen the card number or create a new series"
    )]
    CounterExhausted { next: u64, requested: u64, max: u64 },
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("cannot read the OS random source for a secret key: {0}")]
    Random(String),
    /// The database's own words, once (not sqlx's "error returned from database" wrapper).
    #[error("database error: {}", database_message(.0))]
    Database(sqlx::Error),
    #[error("the database schema cannot be set up: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    #[error(
        "the database {database} is locked by another writer: gave up after waiting {} s (--lock-timeout)",
        .waited.as_secs()
    )]
    Locked { database: String, waited: Duration },
    #[error(
        "run {run_id} of this input is still in progress in another process after waiting --lock-timeout; \
         running the same command once it has ended finds the run done, or resumes it"
    )]
    RunInProgress { run_id: i64 },
    /// A file beside the database (a run's lock file) cannot be used.
    #[error("{0}")]
    Io(String),
    /// SQLite's own error, from a statement run on its handle.
    #[error("database error: {message}")]
    Engine { code: i32, message: String },
    /// The caller could not take what was about to be committed (the file of
    /// `cards generate --output`); nothing was committed.
    #[error("{0}; nothing was stored")]
    Delivery(std::io::Error),
    /// A command that only reads, on a database cardbatch has not made.
    #[error("no cardbatch database at {0}")]
    NoDatabase(String),
    /// A Citus command on a database that is not a Citus coordinator.
    #[error("the database {0} is not a Citus coordinator (no citus extension in it)")]
    NotCitus(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::Database(error)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        match error {
            sqlx::migrate::MigrateError::Execute(error) => StoreError::Database(error),
            other => StoreError::Migrate(other),
        }
    }
}

impl StoreError {
    /// True when a person must change something (a URL, a password, a path)
    /// before the command can work; false when a retry may fix it.
    pub fn needs_a_person(&self) -> bool {
        match self {
            StoreError::Database(error) => database_error_needs_a_person(error),
            StoreError::Engine { code, .. } => sqlite_code_needs_a_person(*code),
            StoreError::Migrate(_)
            | StoreError::Corrupt(_)
            | StoreError::Io(_)
            | StoreError::NotCitus(_)
            | StoreError::NoDatabase(_) => true,
            _ => false,
        }
    }
}

/// A sqlx error in the database's own words.
fn database_message(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Configuration(cause) => format!("invalid database URL: {cause}"),
        other => other.to_string(),
    }
}

/// SQLite's extended result code; the primary code is its low byte:
/// READONLY, CANTOPEN, AUTH, NOTADB need a person.
fn sqlite_code_needs_a_person(code: i32) -> bool {
    matches!(code & 0xff, 8 | 14 | 23 | 26)
}

/// Errors no retry fixes: a URL sqlx cannot use, credentials refused, a
/// database that does not exist, a file that is not a database or cannot be
/// opened or written.
fn database_error_needs_a_person(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Configuration(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            match code.parse::<i32>() {
                Ok(sqlite) => sqlite_code_needs_a_person(sqlite),
                // PostgreSQL's SQLSTATE: authentication, missing database, privileges.
                Err(_) => matches!(&*code, "28000" | "28P01" | "3D000" | "42501"),
            }
        }
        _ => false,
    }
}

/// A series named by id or by code.
#[derive(Debug, Clone, Copy)]
pub enum SeriesRef<'a> {
    Id(i64),
    Code(&'a str),
}

impl std::fmt::Display for SeriesRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SeriesRef::Id(id) => write!(f, "with id {id}"),
            SeriesRef::Code(code) => write!(f, "with code {code:?}"),
        }
    }
}

/// A bulk generation request, already checked against the series.
#[derive(Debug, Clone)]
pub struct GenerateCards {
    pub series_id: i64,
    pub count: usize,
    pub status_label: String,
    pub generator: NumberGenerator,
}

/// What a generation call stored.
#[derive(Debug, Clone)]
pub struct GeneratedCards {
    pub run_id: i64,
    /// The new card numbers, in counter order.
    pub numbers: Vec<String>,
    /// Counter values skipped because a card with that number was already added by hand.
    pub skipped: usize,
}

/// Takes generated numbers before they are committed (see [`Store::generate_cards`]).
pub type DeliverNumbers<'a> = dyn FnMut(&[String]) -> std::io::Result<()> + Send + 'a;

/// Moves run `$6` of org `$5`'s checkpoint to record `$1` and adds `$2`
/// inserted, `$3` unchanged and `$4` rejected records to its totals
/// ([`backend::ImportBackend::checkpoint`]).
const CHECKPOINT: &str = "UPDATE runs SET records_committed = $1, inserted = inserted + $2, \
     unchanged = unchanged + $3, rejected = rejected + $4 WHERE org_id = $5 AND id = $6";

/// Records run `$3` of org `$2`'s reject report path `$1`.
const RECORD_REJECT_REPORT: &str = "UPDATE runs SET reject_report = $1 WHERE org_id = $2 AND id = $3";

/// Run `$2` of org `$1`'s reject counts by reason above record `$3`, with
/// the columns [`decode::reason_count`] reads.
const REASON_COUNTS: &str =
    "SELECT reason, count(*) AS n FROM rejects WHERE org_id = $1 AND run_id = $2 AND record > $3 GROUP BY reason";

/// Up to `$4` of run `$2` of org `$1`'s rejects above record `$3`, in
/// record order, with the columns [`decode::reject`] reads.
const REJECT_PAGE: &str = "SELECT record, line, reason, field, message, raw FROM rejects \
     WHERE org_id = $1 AND run_id = $2 AND record > $3 ORDER BY record LIMIT $4";

/// How the import run of org `$1`, kind `$2` and input hash `$3` read its
/// input (none: no such run, or one stored before plans were kept).
const STORED_READING_PLAN: &str = "SELECT reading_plan FROM runs WHERE org_id = $1 AND kind = $2 AND input_hash = $3";

/// The columns a store's `INSERT INTO runs` sets, in the order
/// [`shared_queries::new_run`] binds them (`$1` to `$19`).
const NEW_RUN_COLUMNS: &str = "org_id, kind, input_name, input_hash, input_format, input_header, reading_plan, \
     started_at, input_path, input_size, input_sha256, content_bytes, started_event_id, context_hash, \
     records_committed, unchanged, rejected, adopted_from, adopted_records";

/// What an `INSERT INTO runs` returns: the columns [`decode::run_state`] reads.
const NEW_RUN_RETURNING: &str =
    "RETURNING id, status, records_committed, inserted, unchanged, rejected, reading_plan, reject_report";

/// Org `$1`'s last event id (no row: it has none). A row stands for the
/// ids `id .. id + event_count - 1`.
const LAST_EVENT_ID: &str = "SELECT id + event_count - 1 FROM events WHERE org_id = $1 ORDER BY id DESC LIMIT 1";

/// Org `$1`'s completed runs of kind `$2` whose content is shorter than
/// `$3` bytes and was read with plan `$4` in context `$5`, longest first:
/// the runs whose whole input a cumulative file may open with.
const PREFIX_CANDIDATES: &str = "SELECT id, input_hash, content_bytes, started_event_id, records_committed, inserted, \
     unchanged, rejected FROM runs WHERE org_id = $1 AND kind = $2 AND status = 'completed' AND content_bytes < $3 \
     AND reading_plan = $4 AND context_hash = $5 AND started_event_id IS NOT NULL \
     ORDER BY content_bytes DESC, id DESC LIMIT 3";

/// Events of org `$1` after id `$2` that run `$3` did not write: something changed since it began.
const FOREIGN_EVENTS_SINCE: &str =
    "SELECT count(*) FROM events WHERE org_id = $1 AND id > $2 AND (run_id IS NULL OR run_id <> $3)";

/// Rejects of org `$1`'s run `$2` of a record that could not be read whole
/// (an open quote, an overlong record): a longer input may frame it otherwise.
const MALFORMED_REJECTS: &str =
    "SELECT count(*) FROM rejects WHERE org_id = $1 AND run_id = $2 AND reason = 'MALFORMED_RECORD'";

/// Run `$3`'s rejects and line offsets of org `$2`, copied to run `$1`.
const COPY_REJECTS: &str = "INSERT INTO rejects (org_id, run_id, record, line, reason, field, message, raw) \
     SELECT org_id, $1, record, line, reason, field, message, raw FROM rejects WHERE org_id = $2 AND run_id = $3";
const COPY_RUN_LINES: &str = "INSERT INTO run_lines (org_id, run_id, record, line_offset) \
     SELECT org_id, $1, record, line_offset FROM run_lines WHERE org_id = $2 AND run_id = $3";

/// Org `$1`'s configuration, by key.
const ORG_CONFIG: &str = "SELECT key, value FROM org_config WHERE org_id = $1 ORDER BY key";
/// Sets org `$1`'s key `$2` to `$3`, or clears it.
const SET_ORG_CONFIG: &str = "INSERT INTO org_config (org_id, key, value) VALUES ($1, $2, $3) \
     ON CONFLICT (org_id, key) DO UPDATE SET value = excluded.value";
const CLEAR_ORG_CONFIG: &str = "DELETE FROM org_config WHERE org_id = $1 AND key = $2";

/// Whether org `$1` has a card numbered `$2`.
const CARD_NUMBER_TAKEN: &str = "SELECT 1 FROM cards WHERE org_id = $1 AND card_number = $2";
/// Gives org `$2`'s card `$3` the external ID `$1`.
const SET_CARD_EXTERNAL_ID: &str = "UPDATE cards SET external_id = $1 WHERE org_id = $2 AND card_number = $3";

/// Org `$1`'s run `$2`'s cards with ids `$3` to `$4` (a batch judged again).
const DELETE_RUN_CARDS: &str = "DELETE FROM cards WHERE org_id = $1 AND run_id = $2 AND id BETWEEN $3 AND $4";
/// How many cards org `$1` has, and every card's keys.
const ORG_CARD_COUNT: &str = "SELECT count(*) FROM cards WHERE org_id = $1";
const ORG_CARD_KEYS: &str = "SELECT card_number, external_id FROM cards WHERE org_id = $1";

/// Org `$1`'s series, by id.
const ORG_SERIES: &str = "SELECT * FROM card_series WHERE org_id = $1 ORDER BY id";
/// Org `$1`'s series `$2`, by id or by code.
const SERIES_BY_ID: &str = "SELECT * FROM card_series WHERE org_id = $1 AND id = $2";
const SERIES_BY_CODE: &str = "SELECT * FROM card_series WHERE org_id = $1 AND code = $2";
/// The code of org `$1`'s series that generates numbers of prefix `$2`,
/// suffix `$3` and length `$4`, if one does.
const SERIES_WITH_FORMAT: &str =
    "SELECT code FROM card_series WHERE org_id = $1 AND gen_prefix = $2 AND gen_suffix = $3 AND gen_length = $4";

/// The queries above with their arguments, for either store: the SQL text
/// and the binds are written once, the store only runs them.
mod shared_queries {
    use sqlx::query::{Query, QueryScalar};
    use sqlx::{Database, Decode, Encode, Type};

    use super::SeriesRef;
    use crate::numbers::NumberFormat;

    use super::PrefixRun;
    use super::backend::{BatchOutcome, ImportStart, RunContext};

    /// [`super::CHECKPOINT`] for `run`: through `through`, adding `outcome`'s counts.
    pub(crate) fn checkpoint<'a, DB: Database>(
        run: &RunContext,
        through: u64,
        outcome: &BatchOutcome,
    ) -> Query<'a, DB, DB::Arguments>
    where
        i64: for<'t> Encode<'t, DB> + Type<DB>,
    {
        sqlx::query(super::CHECKPOINT)
            .bind(through as i64)
            .bind(outcome.inserted as i64)
            .bind(outcome.unchanged as i64)
            .bind(outcome.rejected as i64)
            .bind(run.org_id)
            .bind(run.run_id)
    }

    /// A store's `INSERT INTO runs` (its columns in [`super::NEW_RUN_COLUMNS`]
    /// order, `RETURNING` the columns [`super::decode::run_state`] reads)
    /// with `start`'s values; a run that takes `adopted`'s verdicts starts
    /// with its counts. A dry run's row has no input hash, so it never
    /// collides with the real run of the same input.
    pub(crate) fn new_run<'a, DB: Database>(
        sql: impl sqlx::SqlSafeStr,
        org_id: i64,
        start: &'a ImportStart,
        adopted: Option<&PrefixRun>,
    ) -> Query<'a, DB, DB::Arguments>
    where
        i64: for<'t> Encode<'t, DB> + Type<DB>,
        Option<i64>: for<'t> Encode<'t, DB> + Type<DB>,
        &'a str: Encode<'a, DB> + Type<DB>,
        Option<&'a str>: Encode<'a, DB> + Type<DB>,
        String: for<'t> Encode<'t, DB> + Type<DB>,
    {
        let (records, unchanged, rejected) = adopted.map_or((0, 0, 0), |from| {
            (from.records, from.inserted + from.unchanged, from.rejected)
        });
        sqlx::query(sql)
            .bind(org_id)
            .bind(start.kind.as_str())
            .bind(start.input_name.as_str())
            .bind((!start.dry_run).then_some(start.input_hash.as_str()))
            .bind(start.input_format.as_str())
            .bind(start.input_header.as_deref())
            .bind(start.reading_plan.as_str())
            .bind(super::now())
            .bind(start.input_details.path.as_deref())
            .bind(start.input_details.size.map(|size| size as i64))
            .bind(start.input_details.sha256.as_deref())
            .bind(start.basis.content_bytes.map(|bytes| bytes as i64))
            .bind(start.basis.started_event_id)
            .bind(start.basis.context_hash.as_deref())
            .bind(records as i64)
            .bind(unchanged as i64)
            .bind(rejected as i64)
            .bind(adopted.map(|from| from.run_id))
            .bind(adopted.map(|from| from.records as i64))
    }

    /// A statement whose only arguments are org `$1` and the texts after it:
    /// [`super::ORG_CONFIG`], [`super::ORG_CARD_KEYS`], [`super::CARD_NUMBER_TAKEN`],
    /// [`super::SET_ORG_CONFIG`], [`super::CLEAR_ORG_CONFIG`].
    pub(crate) fn of_org<'a, DB: Database>(
        sql: &'static str,
        org_id: i64,
        texts: &[&'a str],
    ) -> Query<'a, DB, DB::Arguments>
    where
        i64: for<'t> Encode<'t, DB> + Type<DB>,
        &'a str: Encode<'a, DB> + Type<DB>,
    {
        texts
            .iter()
            .fold(sqlx::query(sql).bind(org_id), |query, text| query.bind(*text))
    }

    /// [`super::SET_CARD_EXTERNAL_ID`].
    pub(crate) fn set_card_external_id<'a, DB: Database>(
        org_id: i64,
        card_number: &'a str,
        external_id: &'a str,
    ) -> Query<'a, DB, DB::Arguments>
    where
        i64: for<'t> Encode<'t, DB> + Type<DB>,
        &'a str: Encode<'a, DB> + Type<DB>,
    {
        sqlx::query(super::SET_CARD_EXTERNAL_ID)
            .bind(external_id)
            .bind(org_id)
            .bind(card_number)
    }

    /// [`super::DELETE_RUN_CARDS`].
    pub(crate) fn delete_run_cards<'a, DB: Database>(run: &RunContext, ids: (i64, i64)) -> Query<'a, DB, DB::Arguments>
    where
        i64: for<'t> Encode<'t, DB> + Type<DB>,
    {
        sqlx::query(super::DELETE_RUN_CARDS)
            .bind(run.org_id)
            .bind(run.run_id)
            .bind(ids.0)
            .bind(ids.1)
    }

    /// [`super::LAST_EVENT_ID`].
    pub(crate) fn last_event_id<'a, DB: Database>(org_id: i64) -> QueryScalar<'a, DB, i64, DB::Arguments>
    where
        i64: for<'t> Encode<'t, DB> + Type<DB> + for<'r> Decode<'r, DB>,
        (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
    {
        sqlx::query_scalar(super::LAST_EVENT_ID).bind(org_id)
    }

    /// [`super::PREFIX_CANDIDATES`].
    pub(crate) fn prefix_candidates<'a, DB: Database>(
        org_id: i64,
        kind: &'a str,
        longer_than: u64,
        reading_plan: &'a str,
        context_hash: &'a str,
    ) -> Query<'a, DB, DB::Arguments>
    where
        i64: for<'t> Encode<'t, DB> + Type<DB>,
        &'a str: Encode<'a, DB> + Type<DB>,
    {
        sqlx::query(super::PREFIX_CANDIDATES)
            .bind(org_id)
            .bind(kind)
            .bind(longer_than as i64)
            .bind(reading_plan)
            .bind(context_hash)
    }

    /// A count of `sql` (`$1` org, `$2` and `$3`): [`super::FOREIGN_EVENTS_SINCE`], [`super::MALFORMED_REJECTS`].
    pub(crate) fn count<'a, DB: Database>(
        sql: &'static str,
        org_id: i64,
        binds: &[i64],
    ) -> QueryScalar<'a, DB, i64, DB::Arguments>
    where
        i64: for<'t> Encode<'t, DB> + Type<DB> + for<'r> Decode<'r, DB>,
        (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
    {
        binds
            .iter()
            .fold(sqlx::query_scalar(sql).bind(org_id), |query, value| query.bind(*value))
    }

    /// [`super::COPY_REJECTS`] or [`super::COPY_RUN_LINES`]: run `from`'s rows as run `to`'s.
    pub(crate) fn copy_run_rows<'a, DB: Database>(
        sql: &'static str,
        org_id: i64,
        from: i64,
        to: i64,
    ) -> Query<'a, DB, DB::Arguments>
    where
        i64: for<'t> Encode<'t, DB> + Type<DB>,
    {
        sqlx::query(sql).bind(to).bind(org_id).bind(from)
    }

    /// [`super::STORED_READING_PLAN`].
    pub(crate) fn stored_reading_plan<'a, DB: Database>(
        org_id: i64,
        kind: &'a str,
        input_hash: &'a str,
    ) -> QueryScalar<'a, DB, Option<String>, DB::Arguments>
    where
        i64: for<'t> Encode<'t, DB> + Type<DB>,
        &'a str: Encode<'a, DB> + Type<DB>,
        Option<String>: for<'r> Decode<'r, DB> + Type<DB>,
        (Option<String>,): for<'r> sqlx::FromRow<'r, DB::Row>,
    {
        sqlx::query_scalar(super::STORED_READING_PLAN)
            .bind(org_id)
            .bind(kind)
            .bind(input_hash)
    }

    /// [`super::RECORD_REJECT_REPORT`].
    pub(crate) fn record_reject_report<'a, DB: Database>(
        org_id: i64,
        run_id: i64,
        path: &'a str,
    ) -> Query<'a, DB, DB::Arguments>
    where
        i64: for<'t> Encode<'t, DB> + Type<DB>,
        &'a str: Encode<'a, DB> + Type<DB>,
    {
        sqlx::query(super::RECORD_REJECT_REPORT)
            .bind(path)
            .bind(org_id)
            .bind(run_id)
    }

    /// [`super::REASON_COUNTS`] of a run above `after_record`.
    pub(crate) fn reason_counts<'a, DB: Database>(
        org_id: i64,
        run_id: i64,
        after_record: u64,
    ) -> Query<'a, DB, DB::Arguments>
    where
        i64: for<'t> Encode<'t, DB> + Type<DB>,
    {
        sqlx::query(super::REASON_COUNTS)
            .bind(org_id)
            .bind(run_id)
            .bind(after_record as i64)
    }

    /// [`super::RUN_CARDS`]: the cards run `run_id` created.
    pub(crate) fn run_cards<'a, DB: Database>(org_id: i64, run_id: i64) -> Query<'a, DB, DB::Arguments>
    where
        i64: for<'t> Encode<'t, DB> + Type<DB>,
    {
        sqlx::query(super::RUN_CARDS).bind(org_id).bind(run_id)
    }

    /// A batch's rows for `events export` (`sql`: [`super::events::CREATED_CARDS`]
    /// or [`super::events::REGISTERED_CUSTOMERS`]): ids in `range`, `limit`
    /// of them after the first `skip`.
    pub(crate) fn batch_rows<'a, DB: Database>(
        sql: &'static str,
        org_id: i64,
        run_id: i64,
        range: (i64, i64),
        skip: u64,
        limit: u64,
    ) -> Query<'a, DB, DB::Arguments>
    where
        i64: for<'t> Encode<'t, DB> + Type<DB>,
    {
        sqlx::query(sql)
            .bind(org_id)
            .bind(run_id)
            .bind(range.0)
            .bind(range.1)
            .bind(limit as i64)
            .bind(skip as i64)
    }

    /// [`super::ORG_SERIES`].
    pub(crate) fn org_series<'a, DB: Database>(org_id: i64) -> Query<'a, DB, DB::Arguments>
    where
        i64: for<'t> Encode<'t, DB> + Type<DB>,
    {
        sqlx::query(super::ORG_SERIES).bind(org_id)
    }

    /// [`super::SERIES_BY_ID`] or [`super::SERIES_BY_CODE`], as `series` names it.
    pub(crate) fn series<'a, DB: Database>(org_id: i64, series: SeriesRef<'a>) -> Query<'a, DB, DB::Arguments>
    where
        i64: for<'t> Encode<'t, DB> + Type<DB>,
        &'a str: Encode<'a, DB> + Type<DB>,
    {
        match series {
            SeriesRef::Id(id) => sqlx::query(super::SERIES_BY_ID).bind(org_id).bind(id),
            SeriesRef::Code(code) => sqlx::query(super::SERIES_BY_CODE).bind(org_id).bind(code),
        }
    }

    /// [`super::SERIES_WITH_FORMAT`] for `format`.
    pub(crate) fn series_with_format<'a, DB: Database>(
        org_id: i64,
        format: &'a NumberFormat,
    ) -> QueryScalar<'a, DB, String, DB::Arguments>
    where
        i64: for<'t> Encode<'t, DB> + Type<DB>,
        &'a str: Encode<'a, DB> + Type<DB>,
        String: for<'r> Decode<'r, DB> + Type<DB>,
        (String,): for<'r> sqlx::FromRow<'r, DB::Row>,
    {
        sqlx::query_scalar(super::SERIES_WITH_FORMAT)
            .bind(org_id)
            .bind(format.prefix())
            .bind(format.suffix())
            .bind(format.length() as i64)
    }

    /// [`super::REJECT_PAGE`]: up to `limit` of a run's rejects above `after_record`.
    pub(crate) fn reject_page<'a, DB: Database>(
        org_id: i64,
        run_id: i64,
        after_record: u64,
        limit: u32,
    ) -> Query<'a, DB, DB::Arguments>
    where
        i64: for<'t> Encode<'t, DB> + Type<DB>,
    {
        sqlx::query(super::REJECT_PAGE)
            .bind(org_id)
            .bind(run_id)
            .bind(after_record as i64)
            .bind(i64::from(limit))
    }
}

/// The cards run `$2` of org `$1` created, in id order, with the columns
/// [`decode::run_card`] reads (see [`Store::run_cards`]). `$N`
/// placeholders, which both stores take.
const RUN_CARDS: &str = "SELECT c.id, c.card_number, s.code, c.status_label FROM cards c \
     JOIN card_series s ON s.org_id = c.org_id AND s.id = c.series_id \
     WHERE c.org_id = $1 AND c.run_id = $2 ORDER BY c.id";

/// A card as `cards export` writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCard {
    pub card_id: i64,
    pub card_number: String,
    pub series_code: String,
    pub status_label: String,
}

/// A card as the seeds' `PUT /v2/card` response shows it (plus what is needed to derive the rest).
#[derive(Debug, Clone, PartialEq)]
pub struct CardView {
    pub card_id: i64,
    pub org_id: i64,
    pub series_id: i64,
    pub card_number: String,
    pub external_id: Option<String>,
    pub customer_id: Option<i64>,
    pub status_label: String,
    pub transaction_not_allowed: bool,
    pub series_is_digital: bool,
    pub mapped_entity: Option<Value>,
}

/// Every operation cardbatch performs on its database.
/// Where a table lives on a Citus cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Sharded by `org_id` over the workers, colocated with the others.
    Distributed,
    /// Copied whole to every node.
    Reference,
    /// On the coordinator alone.
    Local,
}

impl Placement {
    pub fn as_str(self) -> &'static str {
        match self {
            Placement::Distributed => "distributed",
            Placement::Reference => "reference",
            Placement::Local => "local",
        }
    }
}

/// One table of cardbatch's on a Citus coordinator.
#[derive(Debug, Clone)]
pub struct TablePlacement {
    pub table: String,
    pub placement: Placement,
    /// What `db distribute` makes it: distributed by `org_id`, or a
    /// reference table when it has no `org_id`.
    pub wanted: Placement,
    /// Placed by this call.
    pub changed: bool,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// The database URL with its password redacted.
    fn describe(&self) -> String;

    /// Where each of cardbatch's tables lives on a Citus coordinator;
    /// [`StoreError::NotCitus`] elsewhere.
    async fn table_placements(&self) -> Result<Vec<TablePlacement>, StoreError> {
        Err(StoreError::NotCitus(self.describe()))
    }

    /// Distributes every table of cardbatch's still local on a Citus
    /// coordinator (see `store/postgres/citus.rs`); [`StoreError::NotCitus`]
    /// elsewhere.
    async fn distribute(&self) -> Result<Vec<TablePlacement>, StoreError> {
        Err(StoreError::NotCitus(self.describe()))
    }

    /// Closes every connection. On SQLite the write-ahead log is
    /// checkpointed into the database file first, so that the file alone
    /// holds everything once the command exits (and copying it is a backup).
    async fn close(&self) -> Result<(), StoreError>;

    /// The org's stored configuration, as `(key, value)` pairs.
    async fn org_config(&self, org_id: i64) -> Result<Vec<(String, String)>, StoreError>;

    /// Sets (`Some`) or clears (`None`) one configuration key.
    async fn set_org_config(&self, org_id: i64, key: ConfigKey, value: Option<&str>) -> Result<(), StoreError>;

    /// Creates a series (3002/3006 are checked here) with a fresh secret; returns its id.
    async fn create_series(&self, org_id: i64, series: &NewSeries) -> Result<i64, StoreError>;

    async fn list_series(&self, org_id: i64) -> Result<Vec<Series>, StoreError>;

    async fn find_series(&self, org_id: i64, series: SeriesRef<'_>) -> Result<Option<Series>, StoreError>;

    /// Reserves a counter range and inserts the generated cards in one
    /// transaction. `deliver` gets the numbers before the commit: when it
    /// fails, nothing is committed ([`StoreError::Delivery`]).
    async fn generate_cards(
        &self,
        org_id: i64,
        request: &GenerateCards,
        deliver: &mut DeliverNumbers<'_>,
    ) -> Result<GeneratedCards, StoreError>;

    /// The cards that run `run_id` created, in id order, as one query read
    /// as it goes: on PostgreSQL cards' ids have a BRIN index only, which
    /// pages by id could not use without scanning the rest of the table
    /// for each page.
    fn run_cards(&self, org_id: i64, run_id: i64) -> BoxStream<'_, Result<RunCard, StoreError>>;

    /// Inserts one card and its `card_created` event; returns the card id.
    async fn add_card(&self, org_id: i64, card: &NewCard) -> Result<i64, StoreError>;

    /// Sets a card's external ID and writes a `card_external_id_set` event.
    async fn set_card_external_id(
        &self,
        org_id: i64,
        card_number: &str,
        external_id: &str,
    ) -> Result<CardView, StoreError>;

    /// Reserves the next org-level external ID of `format`, skipping values
    /// already used by a card or customer; `offset` is the counter's floor.
    async fn next_external_id(&self, org_id: i64, format: &NumberFormat, offset: u64) -> Result<String, StoreError>;

    /// Finds or creates the run for an input, takes its lock, and opens the
    /// store's half of a session to write its batches (`import::session::ImportSession::new`
    /// drives it). A dry run gets a run of its own inside one transaction
    /// that closing the session rolls back.
    async fn import_backend(&self, org_id: i64, start: &ImportStart) -> Result<Box<dyn ImportBackend>, StoreError>;

    /// A run by id.
    async fn find_run(&self, org_id: i64, run_id: i64) -> Result<Option<RunInfo>, StoreError>;

    /// How the import run of `kind` of the input with hash `input_hash` read
    /// its input, if there is such a run and it kept its plan.
    async fn stored_reading_plan(
        &self,
        org_id: i64,
        kind: ImportKind,
        input_hash: &str,
    ) -> Result<Option<String>, StoreError>;

    /// The org's runs, newest first.
    async fn list_runs(&self, org_id: i64) -> Result<Vec<RunInfo>, StoreError>;

    /// The org's last event id (0 when it has none).
    async fn last_event_id(&self, org_id: i64) -> Result<i64, StoreError>;

    /// The completed runs whose verdicts `query`'s input could take for its
    /// opening records, longest first: nothing has changed in the org since
    /// each began but by its own hand, and each read every record whole (a
    /// record cut short at the end of a file may read otherwise once the file
    /// goes on). See `store/prefix.rs`.
    async fn prefix_runs(&self, org_id: i64, query: &PrefixQuery<'_>) -> Result<Vec<PrefixRun>, StoreError>;

    /// Creates the run of `start` holding `from`'s verdicts for its first
    /// `from.records` records (its counts, rejects and line offsets), in one
    /// transaction; `false` when the input's run exists already.
    async fn adopt_run(&self, org_id: i64, start: &ImportStart, from: &PrefixRun) -> Result<bool, StoreError>;

    /// Up to `limit` rejects of a run with record numbers above `after_record`, in record order.
    async fn reject_page(
        &self,
        org_id: i64,
        run_id: i64,
        after_record: u64,
        limit: u32,
    ) -> Result<Vec<RejectRow>, StoreError>;

    /// Up to `limit` events with ids above `after_id`, in id order.
    async fn event_page(&self, org_id: i64, after_id: i64, limit: u32) -> Result<Vec<EventRecord>, StoreError>;
}

/// A completed run whose whole input may open a longer one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixRun {
    pub run_id: i64,
    pub input_hash: String,
    pub content_bytes: u64,
    pub started_event_id: i64,
    pub records: u64,
    pub inserted: u64,
    pub unchanged: u64,
    pub rejected: u64,
}

/// A run as `runs list` and `runs show` print it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    pub run_id: i64,
    /// `import_cards`, `import_external_ids`, `import_customers` or `generate`.
    pub kind: String,
    pub input: Option<String>,
    /// `csv` or `jsonl`, for runs that read an input.
    pub input_format: Option<String>,
    /// The CSV header line the input had.
    pub input_header: Option<String>,
    /// How the input was read ([`crate::import::reading::ReadingPlan`], JSON); `None` for runs stored before.
    pub reading_plan: Option<String>,
    /// The reject report the run last wrote.
    pub reject_report: Option<String>,
    /// Where its input was, its size and SHA-256.
    pub input_details: InputDetails,
    pub status: RunStatus,
    /// Every record up to this number has its verdict committed.
    pub records_committed: u64,
    pub inserted: u64,
    /// Records already stored with the same values.
    pub unchanged: u64,
    pub rejected: u64,
    /// Records earlier invocations had committed when the latest one began.
    pub already_committed: u64,
    pub started_at: String,
    pub finished_at: Option<String>,
}

/// The columns of [`RunInfo`], in SQL both stores run (PostgreSQL's
/// timestamps rendered as the text SQLite stores).
const RUN_INFO_COLUMNS: &str = "id, kind, input_name, input_format, input_header, reading_plan, reject_report, status, \
     records_committed, inserted, unchanged, rejected, already_committed, input_path, input_size, input_sha256";

/// A run's rejects, read a page at a time (the reject report is written from these).
#[async_trait]
pub trait RejectPages: Send {
    /// Up to `limit` of the run's rejects above `after_record`, in record order.
    async fn reject_page(&mut self, after_record: u64, limit: u32) -> Result<Vec<RejectRow>, StoreError>;
}

/// The rejects of a finished run, read from the store.
pub struct RunRejects<'a> {
    pub store: &'a dyn Store,
    pub org_id: i64,
    pub run_id: i64,
}

#[async_trait]
impl RejectPages for RunRejects<'_> {
    async fn reject_page(&mut self, after_record: u64, limit: u32) -> Result<Vec<RejectRow>, StoreError> {
        self.store
            .reject_page(self.org_id, self.run_id, after_record, limit)
            .await
    }
}

/// How a store waits for locks held by other processes.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// How long to wait for another writer's lock before giving up.
    pub lock_timeout: Duration,
    /// Whether to say on stderr that a wait has begun (not with `--quiet`).
    pub announce_waits: bool,
    /// Whether a database that does not exist yet is created; a command
    /// that only reads gets [`StoreError::NoDatabase`].
    pub create: bool,
    /// Whether to say on stderr that a new database was created.
    pub announce_created: bool,
    /// Refuse ([`StoreError::NotCitus`]) anything but a Citus coordinator,
    /// before any table is created (`db distribute`, `db status`).
    pub require_citus: bool,
}

/// Opens (creating and migrating if needed) the store a URL names.
pub async fn open(url: &DatabaseUrl, options: &OpenOptions) -> Result<Box<dyn Store>, OpenError> {
    let opened: Result<Box<dyn Store>, StoreError> = match url.backend() {
        Backend::Sqlite => SqliteStore::open(url, options)
            .await
            .map(|store| Box::new(store) as Box<dyn Store>),
        Backend::Postgres => PgStore::open(url, options)
            .await
            .map(|store| Box::new(store) as Box<dyn Store>),
    };
    opened.map_err(|source| OpenError {
        url: url.redacted(),
        source,
    })
}

/// The database could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open database {url}: {source}")]
pub struct OpenError {
    pub url: String,
    pub source: StoreError,
}

/// The current time as RFC 3339 with milliseconds, UTC.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// True when `error` is a unique-key violation (on either backend).
fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// A fresh secret key for a series or the org's external-ID sequence.
fn new_secret() -> Result<PermutationKey, StoreError> {
    PermutationKey::generate().map_err(|e| StoreError::Random(e.to_string()))
}

/// The `card_created` event payload for a card.
pub fn card_created_payload(card_id: i64, org_id: i64, card: &NewCard) -> Value {
    json!({
        "card_id": card_id,
        "org_id": org_id,
        "series_id": card.series_id,
        "card_number": card.card_number,
        "external_id": card.external_id,
        "status_label": card.status_label,
        "status_reason": card.status_reason,
        "customer_id": card.customer_id,
    })
}
