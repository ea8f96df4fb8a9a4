//! The import session: the batch algorithm, written once for both stores,
//! driving a store's [`ImportBackend`] primitives.
//!
//! Each batch is written in a transaction that holds its rows, their events,
//! its rejects and the run's checkpoint. Consecutive
//! batches share a commit for up to [`COMMIT_INTERVAL`] unless the user
//! chose `--batch-size` (then every batch commits); a dry run never commits.
//! Events get their ids when the transaction commits, so ids follow commit
//! order. On a store with concurrent writers each batch has a savepoint,
//! and a batch that loses a race with another writer is rolled back to it
//! and judged again (SQLite has one writer, and a savepoint would cost it a
//! copy of every page the batch touches).
//!
//! A store that writes faster on two connections (PostgreSQL) gives the
//! session a second lane: card batches are then written in pairs, at once,
//! and committed in record order ([`ImportSession::write_pair`]).
//!
//! Cards are judged in record order (see [`judge`]) and inserted once:
//! - keys repeated within the batch are judged in memory;
//! - keys the database may already hold are looked up first: every key when
//!   a `--max-rejects` budget needs the verdicts before the write, or after
//!   rows were skipped on a store where a skip costs a retry and no filter
//!   could be built; otherwise only the rows the session's [`KeyFilter`]
//!   flags (once such a store skipped rows), or none;
//! - every store leaves out the rows whose key it already holds and says
//!   which ([`CardInsert`]): only those are judged again, after a lookup of
//!   their keys, unless another row of the batch shares a key with them
//!   (then the batch's cards are deleted and it is judged with every key
//!   looked up).

pub mod judge;
pub mod key_filter;
pub mod plan;

use std::collections::HashMap;
use std::sync::Mutex;

use rustc_hash::FxHashSet;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::batch::{CARD_KEY_FIELDS, CardRow, CustomerRow, ExternalIdRow, ImportKind, RejectRow, Rows, ValidBatch};
use crate::domain::RejectReason;
use crate::store::backend::{
    BatchOutcome, CardInsert, CardKeys, Holder, ImportBackend, ImportStart, NewCustomer, PendingEvent, RunContext,
    RunState, RunStatus,
};
use crate::store::{RejectPages, Store, StoreError, now};
use judge::{
    KeyOwner, Owners, RowKeys, Verdict, classify_duplicates, compare_card, judge_customer_rows, judge_external_id_rows,
};
use key_filter::KeyFilter;
use plan::{BatchPlan, Budget, accepted, database_rejects, plan_batch, unchanged};
pub use plan::{RejectLimit, SHARE_JUDGED_FROM, WRONG_FILE_RECORDS};

/// How long a transaction keeps taking batches before it commits. Every
/// commit writes each page the transaction changed; card numbers are random,
/// so one batch changes index pages all over and the next batches change
/// most of the same pages again. Sharing a commit writes them once. A crash
/// loses at most this much work, which the re-run redoes.
pub const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// How many times a batch is retried after losing a race with another writer.
const MAX_ATTEMPTS: u32 = 10;

/// Clean batches (no key found taken) after which a session that looks
/// every key up goes back to inserting first.
const CLEAN_BATCHES_TO_RELAX: u32 = 8;

/// A store whose skipped rows cost no retry (SQLite) looks every key up
/// first from the batch after one where more than one row in this many was
/// left out: a re-delivered stretch of a cumulative file then costs one
/// lookup per record instead of an insert skipped row by row and a lookup.
const SKIPPED_ONE_IN: usize = 10;

/// How the session finds out which card keys the database already holds.
#[derive(Debug)]
enum KeyCheck {
    /// Insert first; the store reports or refuses what it cannot take.
    InsertFirst,
    /// Look up the keys a filter may hold before the insert.
    Filter(KeyFilter),
    /// Look every key up before the insert, until enough batches were clean.
    LookUpAll { clean_batches: u32 },
}

/// Writes one import run, batch by batch.
pub struct ImportSession {
    backend: Box<dyn ImportBackend>,
    /// A second connection's backend, when the store writes faster on two
    /// ([`ImportSession::write_pair`]).
    lane: Option<Box<dyn ImportBackend>>,
    shared: Shared,
    state: RunState,
    /// When the open transaction began, if one is open.
    open_since: Option<Instant>,
    /// Events of the batches in the open transaction, written at its commit.
    pending_events: Vec<PendingEvent>,
    /// Records earlier invocations had committed when this one began.
    already_committed: u64,
    /// The run as of the last commit.
    committed: RunState,
    /// `line - record` of the last record written, once known.
    line_offset: Option<i64>,
}

/// What the batch writers of a session share (two of them at once when the
/// session writes on two lanes).
struct Shared {
    org_id: i64,
    start: ImportStart,
    /// Changed by whichever lane learns something; never held across an await.
    key_check: Mutex<KeyCheck>,
    /// Where `line - record` changed among the records this invocation
    /// wrote, in record order (most files: one entry), so that the line of
    /// an earlier record needs no query; capped, after which it is asked.
    known_offsets: Vec<(u64, i64)>,
}

impl Shared {
    fn key_check(&self) -> std::sync::MutexGuard<'_, KeyCheck> {
        // A lane that panicked while holding it is gone with the process.
        self.key_check.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers where `line - record` changes, up to the cap; a batch
    /// written again (a pair's second, after its lane failed) adds nothing.
    fn know_offsets(&mut self, offsets: &[(u64, i64)]) {
        let known_through = self.known_offsets.last().map(|&(record, _)| record);
        if self.known_offsets.len() < MAX_KNOWN_OFFSETS {
            let new = offsets
                .iter()
                .filter(|(record, _)| known_through.is_none_or(|last| *record > last));
            self.known_offsets.extend(new);
        }
    }
}

/// One batch's writer: a backend (a lane) and what the session shares.
struct Writer<'a> {
    backend: &'a mut dyn ImportBackend,
    shared: &'a Shared,
}

/// Most changes of `line - record` kept in memory.
const MAX_KNOWN_OFFSETS: usize = 4096;

impl ImportSession {
    /// A session over an opened backend, and a second lane's if the store gave one.
    pub fn new(
        backend: Box<dyn ImportBackend>,
        lane: Option<Box<dyn ImportBackend>>,
        org_id: i64,
        start: ImportStart,
    ) -> ImportSession {
        let state = backend.run().clone();
        let already_committed = state.records_committed.saturating_sub(start.adopted_records);
        let committed = state.clone();
        ImportSession {
            backend,
            lane,
            shared: Shared {
                org_id,
                start,
                key_check: Mutex::new(KeyCheck::InsertFirst),
                known_offsets: Vec::new(),
            },
            state,
            open_since: None,
            pending_events: Vec::new(),
            already_committed,
            committed,
            line_offset: None,
        }
    }

    /// True when the session writes pairs of batches on two connections at
    /// once ([`ImportSession::write_pair`]).
    pub fn has_lanes(&self) -> bool {
        self.lane.is_some()
    }

    /// The run as it stood when the session opened, or after the last batch
    /// (committed or not).
    pub fn state(&self) -> &RunState {
        &self.state
    }

    /// The run as of the last commit (for a dry run, which never commits,
    /// as of the last batch).
    pub fn committed(&self) -> &RunState {
        if self.shared.start.dry_run {
            &self.state
        } else {
            &self.committed
        }
    }

    /// Judges the batch against the database, applies `--max-rejects` (with
    /// the run's rejects so far), and writes rows, events, rejects and the
    /// checkpoint together.
    pub async fn write_batch(
        &mut self,
        batch: &ValidBatch,
        limit: Option<RejectLimit>,
    ) -> Result<BatchOutcome, StoreError> {
        let budget = limit.map(|limit| Budget {
            limit,
            rejected_before: self.state.rejected,
        });
        if self.open_since.is_none() {
            self.backend.begin().await?;
            self.open_since = Some(Instant::now());
        }
        let run = self.run_context();
        // Where this batch's records start, stored with it and kept in memory after.
        let offsets = batch.line_offsets(self.line_offset);
        let mut writer = Writer {
            backend: &mut *self.backend,
            shared: &self.shared,
        };
        let (outcome, events) = match writer.write(&run, batch, &offsets, budget).await {
            Ok(done) => done,
            Err(error) => {
                // The batches since the last commit are undone with it; a re-run redoes them.
                self.abandon().await;
                return Err(error);
            }
        };
        self.pending_events.extend(events);
        self.shared.know_offsets(&offsets);
        self.line_offset = batch.last_line_offset();
        let interval = if self.shared.start.group_commits {
            COMMIT_INTERVAL
        } else {
            Duration::ZERO
        };
        self.count(batch, &outcome);
        if self.open_since.is_some_and(|since| since.elapsed() >= interval) {
            self.commit().await?;
        }
        Ok(outcome)
    }

    /// Writes two consecutive batches of cards at once, `first` on the
    /// session's connection and `second` on its lane, and commits both, in
    /// that order. The first lane holds the run's row from before the second
    /// begins, so the second lane's checkpoint waits in the database for the
    /// first's commit (a wait PostgreSQL's deadlock detector sees), its
    /// events take the next ids after, and a crash between the commits
    /// leaves the checkpoint at the end of `first`. Batches that share a key
    /// (which the second could only judge after the first commits), batches
    /// other than cards, and a session without a lane are written one after
    /// the other. No `--max-rejects` here: its budget runs through the batches in order.
    pub async fn write_pair(
        &mut self,
        first: &ValidBatch,
        second: &ValidBatch,
    ) -> Result<[BatchOutcome; 2], StoreError> {
        let (Rows::Cards(first_rows), Rows::Cards(second_rows)) = (&first.rows, &second.rows) else {
            return Ok([
                self.write_batch(first, None).await?,
                self.write_batch(second, None).await?,
            ]);
        };
        if self.lane.is_none() || share_a_key(first_rows, second_rows) {
            return Ok([
                self.write_batch(first, None).await?,
                self.write_batch(second, None).await?,
            ]);
        }
        let first_offsets = first.line_offsets(self.line_offset);
        let second_offsets = second.line_offsets(first.last_line_offset().or(self.line_offset));
        self.shared.know_offsets(&first_offsets);
        self.shared.know_offsets(&second_offsets);
        let run = self.run_context();
        if let Err(error) = self.prepare_first(&run, first_rows.len()).await {
            self.abandon().await;
            return Err(error);
        }
        let lane = self.lane.as_deref_mut().expect("checked above");
        let mut writer = Writer {
            backend: &mut *self.backend,
            shared: &self.shared,
        };
        let mut second_writer = Writer {
            backend: lane,
            shared: &self.shared,
        };
        let earlier_events = std::mem::take(&mut self.pending_events);
        let org_id = self.shared.org_id;
        let write_first = async {
            let written = async {
                let (outcome, events) = writer.write(&run, first, &first_offsets, None).await?;
                let mut all = earlier_events;
                all.extend(events);
                commit_with_events(&mut *writer.backend, org_id, &all).await?;
                Ok::<_, StoreError>(outcome)
            }
            .await;
            if written.is_err() {
                // At once: the second lane waits in the database for this
                // transaction to end, and the join below waits for it.
                let _ = writer.backend.rollback().await;
            }
            written
        };
        // Its ids are reserved after the first's, while the first writes.
        let write_second = async {
            second_writer.backend.begin().await?;
            second_writer.backend.reserve_card_ids(second_rows.len()).await?;
            second_writer.write(&run, second, &second_offsets, None).await
        };
        let (first_done, second_done) = tokio::join!(write_first, write_second);
        let first_outcome = match first_done {
            Ok(outcome) => outcome,
            Err(error) => {
                if let Some(lane) = self.lane.as_deref_mut() {
                    let _ = lane.rollback().await;
                }
                self.abandon().await;
                return Err(error);
            }
        };
        self.open_since = None;
        self.count(first, &first_outcome);
        self.committed = self.state.clone();
        self.line_offset = first.last_line_offset();
        let lane = self.lane.as_deref_mut().expect("checked above");
        let second_done = match second_done {
            Ok((outcome, events)) => commit_with_events(&mut *lane, org_id, &events).await.map(|()| outcome),
            Err(error) => Err(error),
        };
        let second_outcome = match second_done {
            Ok(outcome) => outcome,
            Err(error) => {
                // Its batch is written again on the first connection.
                self.drop_lane(&error).await;
                return Ok([first_outcome, self.write_batch(second, None).await?]);
            }
        };
        self.count(second, &second_outcome);
        self.committed = self.state.clone();
        self.line_offset = second.last_line_offset();
        tracing::debug!(
            first = first.first_record,
            second = second.first_record,
            "a pair of batches written on two connections"
        );
        Ok([first_outcome, second_outcome])
    }

    /// Opens the first lane's transaction for a pair: it holds the run's row
    /// and reserves its cards' ids before the second lane begins.
    async fn prepare_first(&mut self, run: &RunContext, cards: usize) -> Result<(), StoreError> {
        if self.open_since.is_none() {
            self.backend.begin().await?;
            self.open_since = Some(Instant::now());
        }
        self.backend.hold_run(run).await?;
        self.backend.reserve_card_ids(cards).await
    }

    /// The second connection failed (it may have waited past
    /// `--lock-timeout` for the first's commit, or lost its connection):
    /// its transaction is undone and the session goes on with one.
    async fn drop_lane(&mut self, error: &StoreError) {
        tracing::debug!(%error, "the second connection failed; going on with one");
        if let Some(mut lane) = self.lane.take() {
            let _ = lane.rollback().await;
            let _ = lane.close().await;
        }
    }

    /// The run and the time of the next batch.
    fn run_context(&self) -> RunContext {
        RunContext {
            org_id: self.shared.org_id,
            run_id: self.state.run_id,
            created_at: now(),
        }
    }

    /// Adds a written batch to the run's totals.
    fn count(&mut self, batch: &ValidBatch, outcome: &BatchOutcome) {
        self.state.records_committed = outcome.stopped_at.unwrap_or_else(|| batch.last_record());
        self.state.inserted += outcome.inserted;
        self.state.unchanged += outcome.unchanged;
        self.state.rejected += outcome.rejected;
    }

    /// Records the run's final status and commits.
    pub async fn finish(&mut self, status: RunStatus) -> Result<(), StoreError> {
        if self.open_since.is_none() {
            self.backend.begin().await?;
            self.open_since = Some(Instant::now());
        }
        self.backend
            .finish(self.shared.org_id, self.state.run_id, status, self.already_committed)
            .await?;
        self.commit().await?;
        self.state.status = status;
        Ok(())
    }

    /// Records the path (absolute) of the reject report written for the run,
    /// so that the next invocation of the same run writes it there again.
    pub async fn record_reject_report(&mut self, path: &str) -> Result<(), StoreError> {
        if self.open_since.is_none() {
            self.backend.begin().await?;
            self.open_since = Some(Instant::now());
        }
        self.backend
            .record_reject_report(self.shared.org_id, self.state.run_id, path)
            .await?;
        self.commit().await?;
        self.state.reject_report = Some(path.to_string());
        Ok(())
    }

    /// The run's reject counts by reason, for records above `after_record`.
    pub async fn reason_counts(&mut self, after_record: u64) -> Result<Vec<(RejectReason, u64)>, StoreError> {
        self.backend
            .reason_counts(self.shared.org_id, self.state.run_id, after_record)
            .await
    }

    /// Ends the session: a dry run's transaction is rolled back here. The
    /// lane closes first: the run's lock is the first connection's.
    pub async fn close(mut self) -> Result<(), StoreError> {
        self.commit().await?;
        if let Some(lane) = self.lane.take() {
            lane.close().await?;
        }
        self.backend.close().await
    }

    /// Commits the open transaction, writing its events first; a dry run
    /// never commits.
    async fn commit(&mut self) -> Result<(), StoreError> {
        if self.shared.start.dry_run || self.open_since.is_none() {
            return Ok(());
        }
        let events = std::mem::take(&mut self.pending_events);
        commit_with_events(&mut *self.backend, self.shared.org_id, &events).await?;
        self.open_since = None;
        self.committed = self.state.clone();
        Ok(())
    }

    /// Rolls the open transaction back after a failure (best effort: the
    /// connection may be gone, and the error that brought us here is the one to report).
    async fn abandon(&mut self) {
        if self.open_since.take().is_some() {
            self.pending_events.clear();
            let _ = self.backend.rollback().await;
        }
    }
}

impl Writer<'_> {
    /// Writes a batch in the open transaction, in a savepoint where another
    /// writer can win a race for a key (the batch is then judged again);
    /// returns what it did and its events.
    async fn write(
        &mut self,
        run: &RunContext,
        batch: &ValidBatch,
        offsets: &[(u64, i64)],
        budget: Option<Budget>,
    ) -> Result<(BatchOutcome, Vec<PendingEvent>), StoreError> {
        // Only a store with concurrent writers can lose a race; a savepoint
        // costs SQLite a copy of every page the batch touches.
        let retries = self.backend.has_concurrent_writers();
        let mut attempt = 1;
        loop {
            if retries {
                self.backend.savepoint("batch").await?;
            }
            match self.write_once(run, batch, offsets, budget).await {
                Ok(done) => {
                    if retries {
                        self.backend.release("batch").await?;
                    }
                    return Ok(done);
                }
                Err(error) if retries && attempt < MAX_ATTEMPTS && self.backend.lost_a_race(&error) => {
                    self.backend.rollback_to("batch").await?;
                    self.backend.release("batch").await?;
                    tracing::debug!(attempt, %error, "batch lost a race with another writer; judging it again");
                    tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt))).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// One attempt at a batch, inside its savepoint; `offsets` are where
    /// its records start (see [`ValidBatch::line_offsets`]).
    async fn write_once(
        &mut self,
        run: &RunContext,
        batch: &ValidBatch,
        offsets: &[(u64, i64)],
        budget: Option<Budget>,
    ) -> Result<(BatchOutcome, Vec<PendingEvent>), StoreError> {
        let Judged {
            plan,
            inserted,
            unchanged,
            events,
        } = match &batch.rows {
            Rows::Cards(rows) => self.write_cards(run, batch, rows, budget).await?,
            Rows::ExternalIds(rows) => self.write_external_ids(run, batch, rows, budget).await?,
            Rows::Customers(rows) => self.write_customers(run, batch, rows, budget).await?,
        };
        let rejects: Vec<RejectRow> = plan
            .rejects
            .iter()
            .map(|(record, rejection)| batch.reject_row(*record, rejection))
            .collect();
        if !rejects.is_empty() {
            self.backend.insert_rejects(run, &rejects).await?;
        }
        if !offsets.is_empty() {
            self.backend.insert_line_offsets(run, offsets).await?;
        }
        let outcome = BatchOutcome {
            inserted,
            unchanged,
            rejected: rejects.len() as u64,
            stopped_at: plan.stopped_at,
        };
        self.backend.checkpoint(run, plan.through, &outcome).await?;
        Ok((outcome, events))
    }

    /// Judges and inserts a batch of cards (see the module's notes).
    async fn write_cards(
        &mut self,
        run: &RunContext,
        batch: &ValidBatch,
        rows: &[CardRow],
        budget: Option<Budget>,
    ) -> Result<Judged, StoreError> {
        let keys = card_keys(rows.iter());
        let mut look_up_all = budget.is_some() || matches!(*self.shared.key_check(), KeyCheck::LookUpAll { .. });
        loop {
            let lookups: Vec<&RowKeys<'_>> = match &*self.shared.key_check() {
                _ if look_up_all => keys.iter().collect(),
                KeyCheck::Filter(filter) => keys
                    .iter()
                    .filter(|row| row.keys.iter().flatten().any(|key| filter.may_contain(key)))
                    .collect(),
                _ => Vec::new(),
            };
            let CardKeys {
                mut holders,
                mut stored,
            } = self.look_up_card_keys(&lookups).await?;
            let mut lines = self
                .earlier_lines(run, batch, holders.iter().flat_map(HashMap::values))
                .await?;
            let line_of = |record: u64| batch.line_of(record).or_else(|| lines.get(&record).copied());
            let series_codes = &self.shared.start.series_codes;
            let compare = |index: usize| {
                Some(compare_card(
                    &rows[index],
                    stored.get(rows[index].card_number.as_str())?,
                    series_codes,
                ))
            };
            let mut verdicts = classify_duplicates(
                &keys,
                &owners(&holders, run.run_id),
                CARD_KEY_FIELDS,
                &line_of,
                &compare,
            );
            let mut plan = plan_batch(batch, database_rejects(records(rows), &verdicts), budget);
            let sent = accepted(rows, &verdicts, &plan, |row| row.record);
            let ids = match self.backend.insert_cards(run, &sent).await? {
                CardInsert { ids, skipped } if skipped.is_empty() => ids,
                CardInsert { ids, skipped } => {
                    if self.backend.skipping_costs_a_retry() {
                        self.look_up_first().await?;
                    }
                    // Rows the store left out met a key it holds: those keys are
                    // looked up and only those rows judged again (each against the
                    // database alone: keys repeated in the batch never reach the
                    // store). If a left-out row shares a key with another row of
                    // the batch, that row's verdict may change too (it was judged
                    // a duplicate of a row that now holds nothing): the batch's
                    // cards are deleted and it is judged with every key looked up
                    // (the next cards take the same ids again).
                    let skipped_rows: Vec<&CardRow> = skipped.iter().map(|&i| sent[i]).collect();
                    let skipped_keys: FxHashSet<&str> = skipped_rows
                        .iter()
                        .flat_map(|row| row.keys().into_iter().flatten())
                        .collect();
                    let skipped_records: FxHashSet<u64> = skipped_rows.iter().map(|row| row.record).collect();
                    let shared = rows.iter().any(|row| {
                        !skipped_records.contains(&row.record)
                            && row.keys().into_iter().flatten().any(|key| skipped_keys.contains(key))
                    });
                    let skipped_row_keys = card_keys(skipped_rows.iter().copied());
                    let found = self
                        .look_up_card_keys(&skipped_row_keys.iter().collect::<Vec<_>>())
                        .await?;
                    let found_owners = owners(&found.holders, run.run_id);
                    lines.extend(
                        self.earlier_lines(run, batch, found.holders.iter().flat_map(HashMap::values))
                            .await?,
                    );
                    let line_of = |record: u64| batch.line_of(record).or_else(|| lines.get(&record).copied());
                    let compare = |index: usize| {
                        let row = skipped_rows[index];
                        Some(compare_card(
                            row,
                            found.stored.get(row.card_number.as_str())?,
                            series_codes,
                        ))
                    };
                    let again =
                        classify_duplicates(&skipped_row_keys, &found_owners, CARD_KEY_FIELDS, &line_of, &compare);
                    if shared || again.iter().any(Verdict::is_accepted) {
                        if let Some(ids) = ids {
                            self.backend.delete_cards(run, ids).await?;
                        }
                        look_up_all = true;
                        continue;
                    }
                    for (row, verdict) in skipped_rows.iter().zip(again) {
                        let position = rows.partition_point(|r| r.record < row.record);
                        verdicts[position] = verdict;
                    }
                    for (all, more) in holders.iter_mut().zip(found.holders) {
                        all.extend(more);
                    }
                    stored.extend(found.stored);
                    plan = plan_batch(batch, database_rejects(records(rows), &verdicts), budget);
                    if skipped.len() * SKIPPED_ONE_IN > sent.len() {
                        let mut check = self.shared.key_check();
                        if matches!(*check, KeyCheck::InsertFirst) {
                            *check = KeyCheck::LookUpAll { clean_batches: 0 };
                        }
                    }
                    ids
                }
            };
            let inserted = accepted(rows, &verdicts, &plan, |row| row.record);
            self.after_card_batch(&keys, &holders, &inserted);
            let events = ids
                .map(|(first_card_id, last_card_id)| PendingEvent::CardsCreated {
                    run_id: run.run_id,
                    first_card_id,
                    last_card_id,
                    count: inserted.len() as u64,
                    created_at: run.created_at.clone(),
                })
                .into_iter()
                .collect();
            return Ok(Judged {
                unchanged: unchanged(rows, &verdicts, &plan, |row| row.record),
                inserted: inserted.len() as u64,
                plan,
                events,
            });
        }
    }

    /// The lines of the records of this run, before `batch`, that hold keys
    /// among `holders` (for the messages of duplicates in the file), in one
    /// query; only a duplicate of an earlier batch needs one.
    async fn earlier_lines(
        &mut self,
        run: &RunContext,
        batch: &ValidBatch,
        holders: impl Iterator<Item = &Holder>,
    ) -> Result<HashMap<u64, u64>, StoreError> {
        let mut records: Vec<u64> = holders
            .filter(|holder| holder.run_id == Some(run.run_id))
            .filter_map(|holder| holder.record)
            .filter(|record| *record < batch.first_record)
            .collect();
        let mut lines = HashMap::new();
        // Records this invocation wrote (and the in-memory offsets cover) need no query.
        let known = &self.shared.known_offsets;
        if let Some(&(first_known, _)) = known.first()
            && known.len() < MAX_KNOWN_OFFSETS
        {
            records.retain(|&record| {
                if record < first_known {
                    return true;
                }
                let at = known.partition_point(|(from, _)| *from <= record);
                let (_, offset) = known[at - 1];
                lines.insert(record, (record as i64 + offset) as u64);
                false
            });
        }
        if records.is_empty() {
            return Ok(lines);
        }
        records.sort_unstable();
        records.dedup();
        lines.extend(self.backend.lines_of(run, &records).await?);
        Ok(lines)
    }

    /// Who holds the keys of `rows`, and the stored values of the cards found by number, in one lookup.
    async fn look_up_card_keys(&mut self, rows: &[&RowKeys<'_>]) -> Result<CardKeys, StoreError> {
        if rows.is_empty() {
            return Ok(CardKeys::default());
        }
        let numbers: Vec<&str> = rows.iter().filter_map(|row| row.keys[0]).collect();
        let external_ids: Vec<&str> = rows.iter().filter_map(|row| row.keys[1]).collect();
        self.backend
            .card_key_holders(self.shared.org_id, &numbers, &external_ids)
            .await
    }

    /// A store whose skipped rows cost a retry skipped some: from now on,
    /// look up first the keys a filter of the org's keys flags, or, for an
    /// org too large for the filter, every key.
    async fn look_up_first(&mut self) -> Result<(), StoreError> {
        if !matches!(*self.shared.key_check(), KeyCheck::InsertFirst) {
            // Another writer stored a key since the filter was read; the
            // batch is judged with every key and the filter goes on (with
            // the keys found added to it).
            return Ok(());
        }
        let org_id = self.shared.org_id;
        let count = self.backend.card_count(org_id).await?;
        let check = if count * 2 > key_filter::MAX_KEYS {
            KeyCheck::LookUpAll { clean_batches: 0 }
        } else {
            let mut filter = KeyFilter::with_capacity(count * 2 + 2_000_000);
            self.backend
                .for_each_card_key(org_id, &mut |key| filter.insert(key))
                .await?;
            KeyCheck::Filter(filter)
        };
        let mut current = self.shared.key_check();
        // The other lane may have built one meanwhile.
        if matches!(*current, KeyCheck::InsertFirst) {
            *current = check;
        }
        Ok(())
    }

    /// Keeps the key check up to date once a batch is in.
    fn after_card_batch(
        &mut self,
        keys: &[RowKeys<'_>],
        holders: &[HashMap<String, Holder>; 2],
        inserted: &[&CardRow],
    ) {
        let mut check = self.shared.key_check();
        match &mut *check {
            KeyCheck::InsertFirst => {}
            KeyCheck::Filter(filter) => {
                // The keys found held may have been stored after the filter was read.
                for key in holders.iter().flat_map(HashMap::keys) {
                    filter.insert(key);
                }
                for row in inserted {
                    for key in row.keys().into_iter().flatten() {
                        filter.insert(key);
                    }
                }
            }
            KeyCheck::LookUpAll { clean_batches } => {
                let clean = holders.iter().all(HashMap::is_empty) && !keys.is_empty();
                *clean_batches = if clean { *clean_batches + 1 } else { 0 };
                // A store whose skipped rows cost no retry (SQLite) says cheaply
                // when to look up again: one clean batch is enough to go back.
                let relax_after = if self.backend.skipping_costs_a_retry() {
                    CLEAN_BATCHES_TO_RELAX
                } else {
                    1
                };
                if *clean_batches >= relax_after {
                    *check = KeyCheck::InsertFirst;
                }
            }
        }
    }

    /// Judges and applies a batch of external-ID assignments: the cards they
    /// name and the cards holding their IDs are looked up first.
    async fn write_external_ids(
        &mut self,
        run: &RunContext,
        batch: &ValidBatch,
        rows: &[ExternalIdRow],
        budget: Option<Budget>,
    ) -> Result<Judged, StoreError> {
        let numbers: Vec<&str> = rows.iter().map(|row| row.card_number.as_str()).collect();
        let external_ids: Vec<&str> = rows.iter().map(|row| row.external_id.as_str()).collect();
        let org_id = self.shared.org_id;
        let cards = self.backend.cards_by_number(org_id, &numbers).await?;
        let held_by = self.backend.external_id_holders(org_id, &external_ids).await?;
        let setters = cards
            .values()
            .map(|card| &card.external_id_set_by)
            .chain(held_by.values().map(|(_, set_by)| set_by));
        let lines = self.earlier_lines(run, batch, setters).await?;
        let line_of = |record: u64| batch.line_of(record).or_else(|| lines.get(&record).copied());
        let verdicts = judge_external_id_rows(
            rows,
            &cards,
            &held_by,
            run.run_id,
            self.shared.start.overwrite_external_ids,
            &line_of,
        );
        let plan = plan_batch(
            batch,
            database_rejects(rows.iter().map(|r| r.record), &verdicts),
            budget,
        );
        let unchanged = unchanged(rows, &verdicts, &plan, |row| row.record);
        let accepted = accepted(rows, &verdicts, &plan, |row| row.record);
        let changed = self.backend.set_external_ids(run, &accepted).await?;
        let events = accepted
            .iter()
            .filter_map(|row| {
                let card = cards.get(row.card_number.as_str())?;
                Some(PendingEvent::ExternalIdSet {
                    run_id: run.run_id,
                    card_id: card.card_id,
                    card_number: row.card_number.to_string(),
                    external_id: row.external_id.to_string(),
                    previous_external_id: card.external_id.clone(),
                    created_at: run.created_at.clone(),
                })
            })
            .collect();
        Ok(Judged {
            plan,
            inserted: changed,
            unchanged,
            events,
        })
    }

    /// Judges and inserts a batch of customer registrations, generating the
    /// external IDs that are missing.
    async fn write_customers(
        &mut self,
        run: &RunContext,
        batch: &ValidBatch,
        rows: &[CustomerRow],
        budget: Option<Budget>,
    ) -> Result<Judged, StoreError> {
        let customer_ids: Vec<i64> = rows.iter().map(|row| row.customer_id).collect();
        let external_ids: Vec<&str> = rows.iter().filter_map(|row| row.external_id.as_deref()).collect();
        let crate::store::backend::CustomerKeys {
            holders,
            external_ids: registered,
        } = self
            .backend
            .customer_key_holders(self.shared.org_id, &customer_ids, &external_ids)
            .await?;
        let keys: Vec<String> = customer_ids.iter().map(i64::to_string).collect();
        let lines = self
            .earlier_lines(run, batch, holders.iter().flat_map(HashMap::values))
            .await?;
        let line_of = |record: u64| batch.line_of(record).or_else(|| lines.get(&record).copied());
        let verdicts = judge_customer_rows(rows, &keys, &owners(&holders, run.run_id), &registered, &line_of);
        let plan = plan_batch(
            batch,
            database_rejects(rows.iter().map(|r| r.record), &verdicts),
            budget,
        );
        let unchanged = unchanged(rows, &verdicts, &plan, |row| row.record);
        let accepted = accepted(rows, &verdicts, &plan, |row| row.record);
        // Customers with an external ID go in first, so generated IDs can skip theirs.
        let (given, missing): (Vec<&CustomerRow>, Vec<&CustomerRow>) =
            accepted.iter().partition(|row| row.external_id.is_some());
        let mut new_rows: Vec<NewCustomer<'_>> = given
            .iter()
            .map(|row| NewCustomer {
                record: row.record,
                customer_id: row.customer_id,
                external_id: row.external_id.as_deref().unwrap_or_default(),
                generated: false,
            })
            .collect();
        let generated = if missing.is_empty() {
            Vec::new()
        } else {
            let Some((format, offset)) = &self.shared.start.external_id_generation else {
                return Err(StoreError::Corrupt(
                    "customers without external ID but no generation format".into(),
                ));
            };
            self.backend
                .reserve_external_ids(self.shared.org_id, format, *offset, missing.len())
                .await?
        };
        new_rows.extend(missing.iter().zip(&generated).map(|(row, external_id)| NewCustomer {
            record: row.record,
            customer_id: row.customer_id,
            external_id,
            generated: true,
        }));
        let ids = self.backend.insert_customers(run, &new_rows).await?;
        let events = ids
            .map(|(first_row_id, last_row_id)| PendingEvent::CustomersRegistered {
                run_id: run.run_id,
                first_row_id,
                last_row_id,
                count: new_rows.len() as u64,
                created_at: run.created_at.clone(),
            })
            .into_iter()
            .collect();
        Ok(Judged {
            plan,
            inserted: new_rows.len() as u64,
            unchanged,
            events,
        })
    }
}

/// Opens an import session on `store`.
pub async fn begin_import(store: &dyn Store, org_id: i64, start: ImportStart) -> Result<ImportSession, StoreError> {
    let mut backend = store.import_backend(org_id, &start).await?;
    // Only card imports have pairs of batches to write at once (the other
    // kinds lock or look up rows batch by batch).
    let lane = if start.connections > 1 && start.kind == ImportKind::Cards && !start.dry_run {
        // A server out of connections still has the first: the import goes on with it.
        backend.open_lane().await.unwrap_or_else(|error| {
            tracing::debug!(%error, "no second connection; writing on one");
            None
        })
    } else {
        None
    };
    Ok(ImportSession::new(backend, lane, org_id, start))
}

#[async_trait]
impl RejectPages for ImportSession {
    async fn reject_page(&mut self, after_record: u64, limit: u32) -> Result<Vec<RejectRow>, StoreError> {
        self.backend
            .reject_page(self.shared.org_id, self.state.run_id, after_record, limit)
            .await
    }
}

/// A batch judged and written: its plan, how many rows went in and how
/// many were stored already with the same values, and its events.
struct Judged {
    plan: BatchPlan,
    inserted: u64,
    unchanged: u64,
    events: Vec<PendingEvent>,
}

/// Writes `events` (giving them their ids) and commits.
async fn commit_with_events(
    backend: &mut dyn ImportBackend,
    org_id: i64,
    events: &[PendingEvent],
) -> Result<(), StoreError> {
    backend.insert_events(org_id, events).await?;
    backend.commit().await
}

/// True when two batches of cards share a card number or an external ID.
fn share_a_key(first: &[CardRow], second: &[CardRow]) -> bool {
    let keys: FxHashSet<&str> = first.iter().flat_map(|row| row.keys().into_iter().flatten()).collect();
    second
        .iter()
        .flat_map(|row| row.keys().into_iter().flatten())
        .any(|key| keys.contains(key))
}

/// The keys of card rows, for the judge.
fn card_keys<'a>(rows: impl Iterator<Item = &'a CardRow>) -> Vec<RowKeys<'a>> {
    rows.map(|row| RowKeys {
        record: row.record,
        keys: row.keys(),
    })
    .collect()
}

/// The record numbers of `rows`, in order.
fn records(rows: &[CardRow]) -> impl Iterator<Item = u64> + '_ {
    rows.iter().map(|row| row.record)
}

/// Who owns each looked-up key, as the judge sees it: a record of this run
/// (an earlier batch) or anything else.
fn owners(holders: &[HashMap<String, Holder>; 2], run_id: i64) -> [Owners; 2] {
    holders.clone().map(|keys| {
        keys.into_iter()
            .map(|(key, holder)| {
                let owner = if holder.run_id == Some(run_id) {
                    KeyOwner::ThisRun { record: holder.record }
                } else {
                    KeyOwner::Other { run_id: holder.run_id }
                };
                (key, owner)
            })
            .collect()
    })
}
