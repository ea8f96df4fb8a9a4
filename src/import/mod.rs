//! The import pipeline:
//!
//! ```text
//! input (file | stdin, csv | jsonl, gzip)
//!   -> reader thread: records with line numbers, in batches   (bounded channel)
//!   -> validation on rayon, order kept                         (bounded channel)
//!   -> store session: duplicates, rows, events, rejects, checkpoint; one transaction per batch
//!   -> reject report and summary, read back from the database
//! ```
//!
//! A run is identified by the org, the import kind and the BLAKE3 hash of the
//! input, so running the same command again resumes after the last
//! committed batch, and running it after success changes nothing.

pub mod columns;
pub mod input;
pub mod interrupt;
pub mod reader;
pub mod records;
pub mod validate;

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::batch::{ImportKind, ValidBatch};
use crate::domain::OrgConfig;
use crate::error::{CommandError, StopSignal, failed};
use crate::output::OutputFile;
use crate::parallel::on_rayon;
use crate::progress::{BatchSize, Progress};
use crate::report::{RejectFilter, ReportError, RunTotals, Summary, write_reject_report};
use crate::store::session::RejectLimit;
use crate::store::{BatchOutcome, ImportSession, ImportStart, RunState, RunStatus, Store, begin_import};
use input::{Format, Input};
use interrupt::Interrupts;
use reader::{RecordBatch, RecordSource, open_source};
use validate::{ValidationContext, validate_batch};

/// Batches in flight between stages: enough to overlap reading, validating and writing.
const CHANNEL_BATCHES: usize = 1;

/// Records per batch when `--batch-size` is not given.
pub const DEFAULT_BATCH_SIZE: usize = 10_000;

/// Settings of one import, validated from the command line.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub kind: ImportKind,
    pub format: Option<Format>,
    /// Records per transaction, when the user chose it; otherwise
    /// [`DEFAULT_BATCH_SIZE`], and the store may commit batches together.
    pub batch_size: Option<usize>,
    pub max_rejects: Option<RejectLimit>,
    /// The cap on one record's size.
    pub max_record_bytes: usize,
    pub dry_run: bool,
    pub overwrite_external_ids: bool,
    /// Connections a card import may write on (`--connections`).
    pub connections: usize,
    pub quiet: bool,
}

/// How an import ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every record has its verdict.
    Completed,
    /// Stopped at `--max-rejects`.
    Aborted,
    /// Stopped by a signal at a batch boundary.
    Interrupted(StopSignal),
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct ImportResult {
    pub summary: Summary,
    pub ending: Ending,
}

/// Runs one import to the end (or to `--max-rejects`, or to a signal), and
/// writes the run's whole reject report to `report` from the database.
pub async fn run_import(
    store: &dyn Store,
    org_id: i64,
    org: OrgConfig,
    options: ImportOptions,
    input: Input,
    report: &OutputFile,
    interrupts: &Interrupts,
) -> Result<ImportResult, CommandError> {
    let started = Instant::now();
    let unreadable = |e: io::Error| failed(format!("cannot read {}: {e}", input.name));
    let source = open_source(
        input.reader().map_err(unreadable)?,
        options.kind,
        input.format,
        options.max_record_bytes,
    )
    .map_err(|e| CommandError::Usage(format!("{}: {e}", input.name)))?;
    let series = match options.kind {
        ImportKind::Cards => store.list_series(org_id).await?,
        _ => Vec::new(),
    };
    let context = Arc::new(ValidationContext::new(options.kind, org.clone(), series));
    let external_id_generation = if context.can_generate_external_ids {
        org.external_id_format()
            .and_then(Result::ok)
            .map(|format| (format, org.offset))
    } else {
        None
    };
    let start = ImportStart {
        kind: options.kind,
        input_name: input.name.clone(),
        input_hash: input.hash.clone(),
        input_format: input.format,
        input_header: source.header().map(str::to_string),
        dry_run: options.dry_run,
        group_commits: options.batch_size.is_none(),
        overwrite_external_ids: options.overwrite_external_ids,
        // A reject budget runs through the batches in order: one connection.
        connections: if options.max_rejects.is_some() {
            1
        } else {
            options.connections
        },
        external_id_generation,
    };
    let mut session = begin_import(store, org_id, start).await?;
    let before = session.state().clone();
    let mut warnings = Vec::new();

    let (records_read, ending) = if before.status == RunStatus::Completed {
        warnings.extend(source.warnings());
        warnings.push(format!(
            "this input was already imported completely by run {}: nothing was changed",
            before.run_id
        ));
        (before.records_committed, Ending::Completed)
    } else {
        if before.records_committed > 0 {
            warnings.push(format!(
                "resumed run {} ({}) from record {}: records 1 to {} were committed by an earlier invocation",
                before.run_id,
                before.status.as_str(),
                before.records_committed + 1,
                before.records_committed
            ));
        }
        let mut progress = Progress::new(input.size, input.gzip, options.quiet);
        let outcome = run_batches(
            &mut session,
            source,
            context,
            &options,
            &before,
            &input,
            &mut progress,
            interrupts,
        )
        .await;
        if outcome.is_err() {
            progress.abandon();
        }
        let (records_read, ending, reader_warnings) = outcome?;
        warnings.extend(reader_warnings);
        let status = match ending {
            Ending::Completed => RunStatus::Completed,
            Ending::Aborted => RunStatus::Aborted,
            Ending::Interrupted(_) => RunStatus::Interrupted,
        };
        session.finish(status).await?;
        let committed = session.committed();
        if ending == Ending::Completed {
            progress.finish(committed.records_committed, committed.rejected);
        } else {
            progress.abandon();
        }
        (records_read, ending)
    };

    write_report_file(&mut session, report).await?;
    let after = session.state().clone();
    let by_reason = session.reason_counts(before.records_committed).await?;
    session.close().await?;

    let inserted = after.inserted - before.inserted;
    let status = match (options.dry_run, ending) {
        (true, _) => "dry_run",
        (false, Ending::Completed) => "completed",
        (false, Ending::Aborted) => "aborted",
        (false, Ending::Interrupted(_)) => "interrupted",
    };
    let summary = Summary {
        run_id: after.run_id,
        kind: options.kind.to_string(),
        input: input.name.clone(),
        database: store.describe(),
        records_read,
        inserted,
        rejected: after.rejected - before.rejected,
        rejected_by_reason: by_reason
            .into_iter()
            .map(|(reason, n)| (reason.to_string(), n.into()))
            .collect(),
        already_committed: before.records_committed,
        events_emitted: inserted,
        elapsed_ms: started.elapsed().as_millis() as u64,
        status: status.to_string(),
        reject_report: report.path.display().to_string(),
        warnings,
        run_totals: RunTotals {
            inserted: after.inserted,
            rejected: after.rejected,
        },
    };
    Ok(ImportResult { summary, ending })
}

/// Streams the input through validation into the session. Returns the number
/// of records read (through the last committed verdict when the run stopped
/// early), how the run ended, and the reader's warnings.
#[allow(clippy::too_many_arguments)]
async fn run_batches(
    session: &mut ImportSession,
    source: Box<dyn RecordSource>,
    context: Arc<ValidationContext>,
    options: &ImportOptions,
    before: &RunState,
    input: &Input,
    progress: &mut Progress,
    interrupts: &Interrupts,
) -> Result<(u64, Ending, Vec<String>), CommandError> {
    let (batch_sender, mut batch_receiver) = mpsc::channel::<io::Result<RecordBatch>>(CHANNEL_BATCHES);
    let (valid_sender, mut valid_receiver) = mpsc::channel::<io::Result<ValidBatch>>(CHANNEL_BATCHES);
    let batch_size = options.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
    let skip_through = before.records_committed;
    let reader = std::thread::Builder::new()
        .name("cardbatch-reader".into())
        .spawn(move || read_batches(source, batch_size, skip_through, batch_sender))
        .map_err(|e| failed(format!("cannot start the reader thread: {e}")))?;
    let validator = tokio::spawn(async move {
        while let Some(batch) = batch_receiver.recv().await {
            let valid = match batch {
                Ok(batch) => {
                    let context = Arc::clone(&context);
                    Ok(on_rayon(move || validate_batch(batch, &context)).await)
                }
                Err(error) => Err(error),
            };
            if valid_sender.send(valid).await.is_err() {
                break;
            }
        }
    });

    let mut ending = Ending::Completed;
    let mut result = Ok(());
    // With two lanes batches are written in pairs: one waits here for the next.
    let pairs = session.has_lanes();
    let mut held: Option<ValidBatch> = None;
    loop {
        let valid = valid_receiver.recv().await;
        if let Some(signal) = interrupts.requested() {
            ending = Ending::Interrupted(signal);
            break;
        }
        let batch = match valid {
            Some(Ok(batch)) => batch,
            end_or_error => {
                // The input ended or could not be read: what was read before is written first.
                if let Some(first) = held.take() {
                    match session.write_batch(&first, options.max_rejects).await {
                        Ok(outcome) => {
                            if let Some(stop) = after_batch(session, &first, &outcome, input, progress, interrupts) {
                                ending = stop;
                            }
                        }
                        Err(error) => {
                            result = Err(error.into());
                            break;
                        }
                    }
                }
                if let Some(Err(error)) = end_or_error {
                    result = Err(failed(format!("reading {} failed: {error}", input.name)));
                }
                break;
            }
        };
        if pairs && held.is_none() {
            held = Some(batch);
            continue;
        }
        // The limit counts the whole run's rejects, earlier invocations included.
        let written = match held.take() {
            Some(first) => session
                .write_pair(&first, &batch)
                .await
                .map(|[one, two]| vec![(first, one), (batch, two)]),
            None => session
                .write_batch(&batch, options.max_rejects)
                .await
                .map(|outcome| vec![(batch, outcome)]),
        };
        let written = match written {
            Ok(written) => written,
            Err(error) => {
                result = Err(error.into());
                break;
            }
        };
        let stop = written
            .iter()
            .filter_map(|(batch, outcome)| after_batch(session, batch, outcome, input, progress, interrupts))
            .last();
        if let Some(stop) = stop {
            ending = stop;
            break;
        }
    }
    // Stop the stages behind us: closing the channel ends the validator, which ends the reader.
    drop(valid_receiver);
    let _ = validator.await;
    let (records_seen, warnings) = tokio::task::spawn_blocking(move || reader.join())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    result?;
    let records_read = match ending {
        Ending::Completed => records_seen,
        Ending::Aborted | Ending::Interrupted(_) => session.state().records_committed,
    };
    Ok((records_read, ending, warnings))
}

/// Shows a written batch in the progress bar; says how the run ends if it
/// must stop here (`--max-rejects` passed, or a signal).
fn after_batch(
    session: &ImportSession,
    batch: &ValidBatch,
    outcome: &BatchOutcome,
    input: &Input,
    progress: &mut Progress,
    interrupts: &Interrupts,
) -> Option<Ending> {
    let committed = session.committed();
    let size = BatchSize {
        records: batch.sources.len() as u64,
        raw_bytes: batch.sources.iter().map(|source| source.raw.len() as u64).sum(),
        read_through: batch.last_record(),
    };
    progress.update(
        size,
        input.bytes_read.load(Ordering::Relaxed),
        committed.records_committed,
        committed.rejected,
    );
    if outcome.stopped_at.is_some() {
        return Some(Ending::Aborted);
    }
    interrupts.requested().map(Ending::Interrupted)
}

/// The reader thread: batches into the channel until the input ends or nobody listens.
fn read_batches(
    mut source: Box<dyn RecordSource>,
    batch_size: usize,
    skip_through: u64,
    sender: mpsc::Sender<io::Result<RecordBatch>>,
) -> (u64, Vec<String>) {
    loop {
        match source.next_batch(batch_size, skip_through) {
            Ok(Some(batch)) => {
                if sender.blocking_send(Ok(batch)).is_err() {
                    break;
                }
            }
            Ok(None) => break,
            Err(error) => {
                let _ = sender.blocking_send(Err(error));
                break;
            }
        }
    }
    (source.records_seen(), source.warnings())
}

/// Writes the run's whole reject report from the database into `report`,
/// which appears whole at its path once written.
async fn write_report_file(session: &mut ImportSession, report: &OutputFile) -> Result<(), CommandError> {
    let cannot_write =
        |e: &dyn std::fmt::Display| failed(format!("cannot write the reject report {}: {e}", report.path.display()));
    let file = report.create().map_err(|e| cannot_write(&e))?;
    match write_reject_report(session, &RejectFilter::default(), file).await {
        Ok(mut file) => {
            file.flush().map_err(|e| cannot_write(&e))?;
            file.commit().map_err(|e| cannot_write(&e))
        }
        Err(ReportError::Store(error)) => Err(error.into()),
        Err(ReportError::Write(error)) => Err(cannot_write(&error)),
    }
}
