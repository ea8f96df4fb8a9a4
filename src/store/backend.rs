//! The store's half of an import: how a run is started and where it
//! stands, and the primitives the import session (`import::session`)
//! drives: transactions, key lookups, the bulk inserts of each kind,
//! rejects, events and the run's checkpoint. Each store implements them
//! with its own SQL and locking (`store/sqlite/import.rs`,
//! `store/postgres/import.rs`); the algorithm that uses them is written
//! once, in the session.

use std::collections::HashMap;

use async_trait::async_trait;

use crate::batch::{CardRow, ExternalIdRow, Format, ImportKind, RejectRow};
use crate::domain::RejectReason;
use crate::numbers::NumberFormat;
use crate::store::StoreError;

/// How an import is started.
#[derive(Debug, Clone)]
pub struct ImportStart {
    pub kind: ImportKind,
    pub input_name: String,
    pub input_hash: String,
    pub input_format: Format,
    /// The CSV header line as read, for `rejects export --as-input`.
    pub input_header: Option<String>,
    /// How the input is read ([`crate::import::reading::ReadingPlan`], JSON), stored with a new run.
    pub reading_plan: String,
    /// Where the input is, its size and SHA-256, stored with a new run.
    pub input_details: InputDetails,
    /// What a later, longer input needs to take this run's verdicts, stored with a new run.
    pub basis: VerdictBasis,
    /// Records at the start of the run whose verdicts this invocation took
    /// from an earlier run ([`crate::store::Store::adopt_run`]): they count
    /// as this invocation's, not as committed by an earlier one.
    pub adopted_records: u64,
    pub dry_run: bool,
    /// Consecutive batches may share a transaction (`--batch-size` not
    /// given); otherwise each batch is committed on its own.
    pub group_commits: bool,
    /// `import external-ids --overwrite`.
    pub overwrite_external_ids: bool,
    /// How many connections a card import may write on (`--connections`):
    /// with 2, on a store that gives a second lane, pairs of batches are
    /// written at once (`ImportSession::write_pair`).
    pub connections: usize,
    /// The org's external-ID format and counter floor, for customers without one.
    pub external_id_generation: Option<(NumberFormat, u64)>,
    /// The org's series codes by id, for the messages of cards stored with other values.
    pub series_codes: HashMap<i64, String>,
}

/// An input as the report shows it: its absolute path (none for stdin),
/// its size in bytes as stored, and the SHA-256 of those bytes (none of
/// them known for a run stored before cardbatch kept them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputDetails {
    pub path: Option<String>,
    pub size: Option<u64>,
    pub sha256: Option<String>,
}

/// What a later input that opens with this run's whole input needs to take
/// its verdicts without reading a card (see `import::cumulative`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerdictBasis {
    /// The length of the content the run key hashes.
    pub content_bytes: Option<u64>,
    /// The org's last event id before the run began.
    pub started_event_id: Option<i64>,
    /// What the verdicts depend on besides the cards: the org's
    /// configuration, its series and the release, hashed.
    pub context_hash: Option<String>,
}

/// The status of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Being written, or stopped without a word (a crash, `kill -9`, a lost connection).
    Running,
    Completed,
    /// Stopped at `--max-rejects`.
    Aborted,
    /// Stopped by SIGINT or SIGTERM at a batch boundary.
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Aborted => "aborted",
            RunStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(text: &str) -> Option<RunStatus> {
        match text {
            "running" => Some(RunStatus::Running),
            "completed" => Some(RunStatus::Completed),
            "aborted" => Some(RunStatus::Aborted),
            "interrupted" => Some(RunStatus::Interrupted),
            _ => None,
        }
    }
}

/// A run as stored: its identity, status and committed totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunState {
    pub run_id: i64,
    pub status: RunStatus,
    /// Every record up to this number has its verdict committed.
    pub records_committed: u64,
    pub inserted: u64,
    /// Records whose key was stored with the same values (not written again).
    pub unchanged: u64,
    pub rejected: u64,
    /// How the run read its input ([`crate::import::reading::ReadingPlan`],
    /// JSON); `None` for a run stored before plans were kept.
    pub reading_plan: Option<String>,
    /// The reject report a finished invocation wrote (an absolute path).
    pub reject_report: Option<String>,
}

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub inserted: u64,
    /// Records stored already with the same values: not written again.
    pub unchanged: u64,
    pub rejected: u64,
    /// Set when `--max-rejects` was exceeded: the record of the reject that
    /// exceeded it; records after it were not judged.
    pub stopped_at: Option<u64>,
}

/// Who holds a key in the database: the run that wrote it (if any) and the
/// input record it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    pub run_id: Option<i64>,
    pub record: Option<u64>,
}

/// A stored card's values, as a re-delivered record is compared with them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredCard {
    pub series_id: i64,
    pub external_id: Option<String>,
    pub status_label: String,
    pub customer_id: Option<i64>,
    pub status_reason: Option<String>,
    /// JSON object texts, as stored.
    pub extended_fields: Option<String>,
    pub custom_fields: Option<String>,
    pub mapped_entity: Option<String>,
}

/// What a lookup of card keys found: who holds each card number
/// (`holders[0]`) and external ID (`holders[1]`), and the stored values of
/// the cards found by number.
#[derive(Debug, Clone, Default)]
pub struct CardKeys {
    pub holders: [HashMap<String, Holder>; 2],
    pub stored: HashMap<String, StoredCard>,
}

/// What a lookup of customer keys found: who holds each customer id (as
/// text, `holders[0]`) and external ID (`holders[1]`), and the external ID
/// each customer found is registered with.
#[derive(Debug, Clone, Default)]
pub struct CustomerKeys {
    pub holders: [HashMap<String, Holder>; 2],
    pub external_ids: HashMap<String, String>,
}

/// What the session knows of the run it writes.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub org_id: i64,
    pub run_id: i64,
    /// The batch's time, RFC 3339 (UTC, milliseconds).
    pub created_at: String,
}

/// How a bulk card insert ended, on every store: every row went in but
/// those at `skipped` (positions in the rows given, in order), which met a
/// key the database already holds and were left out. The cards that went
/// in have ids `first..=last` among the run's cards (`None` when none did).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardInsert {
    pub ids: Option<(i64, i64)>,
    pub skipped: Vec<usize>,
}

/// A card an external-ID import names, as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardExternalId {
    pub card_id: i64,
    pub external_id: Option<String>,
    /// The run and input record that last set the external ID.
    pub external_id_set_by: Holder,
}

/// A customer registration ready to be inserted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCustomer<'a> {
    pub record: u64,
    pub customer_id: i64,
    pub external_id: &'a str,
    pub generated: bool,
}

/// An event written with its batch's rows; its id is given when the
/// transaction commits, so that event ids follow commit order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingEvent {
    /// One `card_created` event for each of the run's cards with ids
    /// `first_card_id..=last_card_id`, in id order.
    CardsCreated {
        run_id: i64,
        first_card_id: i64,
        last_card_id: i64,
        count: u64,
        created_at: String,
    },
    /// One `customer_registered` event for each of the run's customers with
    /// row ids `first_row_id..=last_row_id`, in id order.
    CustomersRegistered {
        run_id: i64,
        first_row_id: i64,
        last_row_id: i64,
        count: u64,
        created_at: String,
    },
    /// A `card_external_id_set` event: the value set and the one it replaced
    /// (which nothing else keeps).
    ExternalIdSet {
        run_id: i64,
        card_id: i64,
        card_number: String,
        external_id: String,
        previous_external_id: Option<String>,
        created_at: String,
    },
}

impl PendingEvent {
    /// How many events (and event ids) this stands for.
    pub fn count(&self) -> u64 {
        match self {
            PendingEvent::CardsCreated { count, .. } | PendingEvent::CustomersRegistered { count, .. } => *count,
            PendingEvent::ExternalIdSet { .. } => 1,
        }
    }
}

/// Takes keys one at a time (see [`ImportBackend::for_each_card_key`]).
pub type KeySink<'a> = dyn FnMut(&str) + Send + 'a;

/// The store's half of an import session: one connection, its transactions,
/// and the statements the session needs.
#[async_trait]
pub trait ImportBackend: Send {
    /// The run as it stood when the backend was opened (found or created,
    /// and locked for this process).
    fn run(&self) -> &RunState;

    /// True for a store that finds a taken key only by failing the batch's
    /// insert and trying the rest again (PostgreSQL's `COPY`), where a
    /// skipped row costs far more than a lookup: such a store gains from
    /// knowing beforehand which keys may be taken (the session's key
    /// filter), and looks keys up for longer before it stops.
    fn skipping_costs_a_retry(&self) -> bool;

    /// True for a store where other writers work at the same time as this
    /// one (so a batch can lose a race with them and must be retried).
    fn has_concurrent_writers(&self) -> bool;

    /// True for the errors a concurrent writer can cause and a retry of the
    /// batch resolves (deadlock, serialization failure, a key taken since it
    /// was judged).
    fn lost_a_race(&self, error: &StoreError) -> bool;

    /// A second backend for the same run on a connection of its own, for a
    /// store that writes faster on two connections than on one (the session's
    /// lanes); `None` for a store with one writer. The run's lock stays with
    /// this backend, which is closed last.
    async fn open_lane(&mut self) -> Result<Option<Box<dyn ImportBackend>>, StoreError> {
        Ok(None)
    }

    /// Holds the run's row until the transaction ends, so that another
    /// lane's transaction, which moves the checkpoint too, waits at its
    /// checkpoint for this one's commit: lanes commit in record order, and
    /// every wait between them is one the database sees (and can break if it
    /// closes a deadlock with another writer). A store with one writer has
    /// nothing to hold.
    async fn hold_run(&mut self, run: &RunContext) -> Result<(), StoreError>;

    /// The next batch's cards take their ids from `count` ids reserved now,
    /// in order (every id reserved later, on any connection, is higher), so
    /// that two lanes' batches keep record order whichever inserts first. The
    /// reservation holds until the transaction ends; a store whose ids follow
    /// its inserts anyway ignores it.
    async fn reserve_card_ids(&mut self, count: usize) -> Result<(), StoreError>;

    // Transactions. `begin` waits for the store's write lock as configured.

    async fn begin(&mut self) -> Result<(), StoreError>;
    async fn commit(&mut self) -> Result<(), StoreError>;
    async fn rollback(&mut self) -> Result<(), StoreError>;
    async fn savepoint(&mut self, name: &'static str) -> Result<(), StoreError>;
    async fn release(&mut self, name: &'static str) -> Result<(), StoreError>;
    async fn rollback_to(&mut self, name: &'static str) -> Result<(), StoreError>;

    // Cards.

    /// Who holds each of `numbers` (card numbers) and `external_ids`, and
    /// the stored values of the cards found by number.
    async fn card_key_holders(
        &mut self,
        org_id: i64,
        numbers: &[&str],
        external_ids: &[&str],
    ) -> Result<CardKeys, StoreError>;

    /// Inserts `rows` in their order, with the run's id and the batch's time.
    async fn insert_cards(&mut self, run: &RunContext, rows: &[&CardRow]) -> Result<CardInsert, StoreError>;

    /// Deletes this batch's cards again (ids `first..=last` of the run), so
    /// that the batch can be judged anew; the next cards take the same ids.
    async fn delete_cards(&mut self, run: &RunContext, ids: (i64, i64)) -> Result<(), StoreError>;

    /// How many cards the org has (an estimate is enough).
    async fn card_count(&mut self, org_id: i64) -> Result<u64, StoreError>;

    /// Calls `key` with every card number and external ID the org holds.
    async fn for_each_card_key(&mut self, org_id: i64, key: &mut KeySink<'_>) -> Result<(), StoreError>;

    // External IDs.

    /// The cards among `numbers`, locked until the transaction ends where the
    /// store can lock rows, by card number.
    async fn cards_by_number(
        &mut self,
        org_id: i64,
        numbers: &[&str],
    ) -> Result<HashMap<String, CardExternalId>, StoreError>;

    /// The cards holding any of `external_ids`: external ID to (card number,
    /// the run and record that set it).
    async fn external_id_holders(
        &mut self,
        org_id: i64,
        external_ids: &[&str],
    ) -> Result<HashMap<String, (String, Holder)>, StoreError>;

    /// Sets each row's external ID on its card; returns how many changed.
    async fn set_external_ids(&mut self, run: &RunContext, rows: &[&ExternalIdRow]) -> Result<u64, StoreError>;

    // Customers.

    /// Who holds each customer id (as text) and each external ID, and the
    /// external IDs of the customers found.
    async fn customer_key_holders(
        &mut self,
        org_id: i64,
        customer_ids: &[i64],
        external_ids: &[&str],
    ) -> Result<CustomerKeys, StoreError>;

    /// Reserves `count` org-level external IDs of `format` (the counter never below `offset`).
    async fn reserve_external_ids(
        &mut self,
        org_id: i64,
        format: &NumberFormat,
        offset: u64,
        count: usize,
    ) -> Result<Vec<String>, StoreError>;

    /// Inserts `rows` in their order; returns the row ids of the first and
    /// the last (ids grow in insertion order within a run).
    async fn insert_customers(
        &mut self,
        run: &RunContext,
        rows: &[NewCustomer<'_>],
    ) -> Result<Option<(i64, i64)>, StoreError>;

    // Rejects, events and the run.

    async fn insert_rejects(&mut self, run: &RunContext, rows: &[RejectRow]) -> Result<(), StoreError>;

    /// Writes `events` in order, giving them the next event ids of the org.
    async fn insert_events(&mut self, org_id: i64, events: &[PendingEvent]) -> Result<(), StoreError>;

    /// Moves the run's checkpoint to `through` and adds the batch's counts to its totals.
    async fn checkpoint(&mut self, run: &RunContext, through: u64, outcome: &BatchOutcome) -> Result<(), StoreError>;

    /// Records the run's final status, and how many records earlier
    /// invocations had committed when this one began.
    async fn finish(
        &mut self,
        org_id: i64,
        run_id: i64,
        status: RunStatus,
        already_committed: u64,
    ) -> Result<(), StoreError>;

    /// Records the path of the reject report written for the run.
    async fn record_reject_report(&mut self, org_id: i64, run_id: i64, path: &str) -> Result<(), StoreError>;

    /// Records where records start from `record` on: `line = record + offset`
    /// until the next change (see the `run_lines` table).
    async fn insert_line_offsets(&mut self, run: &RunContext, offsets: &[(u64, i64)]) -> Result<(), StoreError>;

    /// The input lines where earlier records of the run start, in one query
    /// (records without a known line are left out).
    async fn lines_of(&mut self, run: &RunContext, records: &[u64]) -> Result<HashMap<u64, u64>, StoreError>;

    /// The run's reject counts by reason, for records above `after_record`.
    async fn reason_counts(
        &mut self,
        org_id: i64,
        run_id: i64,
        after_record: u64,
    ) -> Result<Vec<(RejectReason, u64)>, StoreError>;

    /// Up to `limit` of the run's rejects above `after_record`, in record order.
    async fn reject_page(
        &mut self,
        org_id: i64,
        run_id: i64,
        after_record: u64,
        limit: u32,
    ) -> Result<Vec<RejectRow>, StoreError>;

    /// Ends the backend: releases the run's lock and the connection.
    async fn close(self: Box<Self>) -> Result<(), StoreError>;
}
