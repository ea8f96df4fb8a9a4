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
pub mod cumulative;
pub mod encoding;
pub mod input;
pub mod interrupt;
pub mod mapping;
pub mod reader;
pub mod reading;
pub mod records;
pub mod session;
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
use crate::report::{ReadingSummary, RejectFilter, ReportError, RunTotals, Summary, write_reject_report};
use crate::store::{BatchOutcome, ImportStart, InputDetails, RunState, RunStatus, Store, VerdictBasis};
use input::{Format, Input};
use interrupt::Interrupts;
use reader::{OpenedSource, RecordBatch, RecordSource, open_source};
use reading::{ReadingOptions, ReadingPlan};
use session::{ImportSession, RejectLimit, WRONG_FILE_RECORDS, begin_import};
use validate::{ValidationContext, validate_batch};

/// Batches in flight between stages: enough to overlap reading, validating and writing.
const CHANNEL_BATCHES: usize = 1;

/// What the wrong-file guard says when it stops a run.
pub const WRONG_FILE_MESSAGE: &str = "every one of the first 1,000 records was rejected: is this the right file and \
                                      org? `--max-rejects none` imports it anyway";

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
    /// How to read the input (dialect, encoding, mapping), as the user said.
    pub reading: ReadingOptions,
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

/// Chooses the reject report's path once the run is known (its id, the
/// report an earlier invocation of it wrote), checked as every output is.
pub type ChooseReport<'a> = dyn Fn(&RunState) -> Result<OutputFile, CommandError> + Sync + 'a;

/// Runs one import to the end (or to `--max-rejects`, or to a signal), and
/// writes the run's whole reject report from the database to the path
/// `choose_report` gives.
pub async fn run_import(
    store: &dyn Store,
    org_id: i64,
    org: OrgConfig,
    options: ImportOptions,
    input: Input,
    choose_report: &ChooseReport<'_>,
    interrupts: &Interrupts,
) -> Result<ImportResult, CommandError> {
    let started = Instant::now();
    let mut warnings = Vec::new();
    // A run goes on reading its input as it began to: without reading
    // options the stored plan is used; other options than it had are refused
    // (a dry run, which never resumes, may try any).
    let stored_plan = store
        .stored_reading_plan(org_id, options.kind, &input.hash)
        .await?
        .map(|text| ReadingPlan::from_stored(Some(&text), input.format));
    let reading = match &stored_plan {
        Some(stored) if options.reading.is_default() => {
            if !stored.is_plain() {
                warnings.push(format!(
                    "read as this input's run began to read it: {}",
                    stored.describe()
                ));
            }
            stored.options()
        }
        _ => options.reading.clone(),
    };
    let refused = stored_plan
        .as_ref()
        .filter(|_| !options.dry_run && !options.reading.is_default());
    let opened = match (open_input(&input, &options, &reading), refused) {
        (Err(CommandError::Usage(message)), Some(stored)) => {
            return Err(CommandError::Usage(format!(
                "{message}. Its run read this input as: {}; give the same reading options, or none to go on as \
                 the run began",
                stored.describe()
            )));
        }
        (opened, _) => opened?,
    };
    if let Some(stored) = &stored_plan
        && !options.dry_run
        && !stored.reads_like(&opened.plan)
    {
        return Err(CommandError::Usage(format!(
            "{}: its run read this input as: {}; these options read it as: {}. Give the same reading options, \
             or none to go on as the run began",
            input.name,
            stored.describe(),
            opened.plan.describe()
        )));
    }
    let series = match options.kind {
        ImportKind::Cards => store.list_series(org_id).await?,
        _ => Vec::new(),
    };
    let series_codes = series.iter().map(|s| (s.id, s.definition.code.clone())).collect();
    // What a later, longer input needs to take this run's verdicts (a new run only).
    let basis = VerdictBasis {
        content_bytes: Some(input.content_bytes),
        started_event_id: match stored_plan {
            None if !options.dry_run => Some(store.last_event_id(org_id).await?),
            _ => None,
        },
        context_hash: Some(cumulative::context_hash(&org, &series)),
    };
    let mut context = ValidationContext::new(options.kind, org.clone(), series);
    let external_id_generation = if context.can_generate_external_ids {
        org.external_id_format()
            .and_then(Result::ok)
            .map(|format| (format, org.offset))
    } else {
        None
    };
    let mut start = ImportStart {
        kind: options.kind,
        input_name: input.name.clone(),
        input_hash: input.hash.clone(),
        input_format: input.format,
        input_header: opened.source.header().map(str::to_string),
        reading_plan: opened.plan.to_stored(),
        input_details: InputDetails {
            path: input.shown_path.clone(),
            size: Some(input.size),
            sha256: Some(input.sha256.clone()),
        },
        basis,
        adopted_records: 0,
        dry_run: options.dry_run,
        group_commits: options.batch_size.is_none(),
        overwrite_external_ids: options.overwrite_external_ids,
        // A reject budget runs through the batches in order: one connection
        // (the wrong-file guard judges only the first batches, written alone).
        connections: if options.max_rejects.is_some_and(|limit| limit != RejectLimit::WrongFile) {
            1
        } else {
            options.connections
        },
        external_id_generation,
        series_codes,
    };
    // A cumulative file: the verdicts of the earlier run its content opens with.
    let adopted = match stored_plan {
        None => cumulative::adopt_earlier_run(store, org_id, &start, &input).await?,
        Some(_) => None,
    };
    start.adopted_records = adopted.as_ref().map_or(0, |adoption| adoption.records);
    let mut session = begin_import(store, org_id, start).await?;
    let before = session.state().clone();
    // The adopted verdicts are this invocation's: the summary counts them as
    // unchanged and rejected, not as committed by an earlier invocation.
    let counted_from = match &adopted {
        Some(adoption) => RunState {
            records_committed: before.records_committed - adoption.records,
            unchanged: before.unchanged - adoption.unchanged,
            rejected: before.rejected - adoption.rejected,
            ..before.clone()
        },
        None => before.clone(),
    };
    if let Some(adoption) = &adopted {
        warnings.push(format!(
            "records 1 to {} are run {}'s whole input, byte for byte, and nothing it judged by has changed since: \
             its verdicts stand ({} unchanged, {} rejected again), no card was read for them",
            adoption.records, adoption.from_run, adoption.unchanged, adoption.rejected
        ));
    }
    let plan = opened.plan.clone();
    context.strip_separators = plan.strip_separators;
    let context = Arc::new(context);
    if plan.format == Format::Csv && plan.delimiter_detected && plan.delimiter != ',' {
        warnings.push(format!(
            "detected the delimiter {} from the header (give --delimiter to choose it)",
            reading::shown_character(plan.delimiter)
        ));
    }

    let (records_read, ending, separators_stripped) = if before.status == RunStatus::Completed {
        warnings.extend(opened.source.warnings());
        warnings.push(format!(
            "this input was already imported completely by run {}: nothing was changed",
            before.run_id
        ));
        (before.records_committed, Ending::Completed, 0)
    } else if options.max_rejects == Some(RejectLimit::WrongFile)
        && before.records_committed >= WRONG_FILE_RECORDS
        && before.rejected == before.records_committed
    {
        // The guard stopped this run (or would have): running the same
        // command again stops it again; `--max-rejects none` goes on.
        warnings.push(WRONG_FILE_MESSAGE.to_string());
        session.finish(RunStatus::Aborted).await?;
        (before.records_committed, Ending::Aborted, 0)
    } else {
        if counted_from.records_committed > 0 {
            warnings.push(format!(
                "resumed run {} ({}) from record {}: records 1 to {} were committed by an earlier invocation",
                before.run_id,
                before.status.as_str(),
                before.records_committed + 1,
                before.records_committed
            ));
        }
        let mut progress = Progress::new(input.size, input.gzip, options.quiet);
        let batch_records = options.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
        let outcome = run_batches(
            &mut session,
            opened.source,
            context,
            batch_records,
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
        let read = outcome?;
        warnings.extend(read.warnings);
        if read.ending == Ending::Aborted && options.max_rejects == Some(RejectLimit::WrongFile) {
            warnings.push(WRONG_FILE_MESSAGE.to_string());
        }
        let status = match read.ending {
            Ending::Completed => RunStatus::Completed,
            Ending::Aborted => RunStatus::Aborted,
            Ending::Interrupted(_) => RunStatus::Interrupted,
        };
        session.finish(status).await?;
        let committed = session.committed();
        if read.ending == Ending::Completed {
            progress.finish(committed.records_committed, committed.rejected);
        } else {
            progress.abandon();
        }
        (read.records_read, read.ending, read.separators_stripped)
    };

    let report = choose_report(session.state())?;
    write_report_file(&mut session, &report).await?;
    if !options.dry_run {
        let path = std::path::absolute(&report.path).unwrap_or_else(|_| report.path.clone());
        session.record_reject_report(&path.display().to_string()).await?;
    }
    let after = session.state().clone();
    let by_reason = session.reason_counts(counted_from.records_committed).await?;
    session.close().await?;

    let before = counted_from;
    let inserted = after.inserted - before.inserted;
    let status = match (options.dry_run, ending) {
        (true, _) => "dry_run",
        (false, Ending::Completed) => "completed",
        (false, Ending::Aborted) => "aborted",
        (false, Ending::Interrupted(_)) => "interrupted",
    };
    let summary = Summary {
        run_id: (!options.dry_run).then_some(after.run_id),
        kind: options.kind.to_string(),
        input: input.name.clone(),
        database: store.describe(),
        reading: ReadingSummary {
            description: plan.describe(),
            plan,
        },
        records_read,
        inserted,
        unchanged: after.unchanged - before.unchanged,
        rejected: after.rejected - before.rejected,
        rejected_by_reason: by_reason
            .into_iter()
            .map(|(reason, n)| (reason.to_string(), n.into()))
            .collect(),
        already_committed: before.records_committed,
        events_emitted: inserted,
        separators_stripped,
        elapsed_ms: started.elapsed().as_millis() as u64,
        status: status.to_string(),
        reject_report: report.path.display().to_string(),
        warnings,
        run_totals: RunTotals {
            inserted: after.inserted,
            unchanged: after.unchanged,
            rejected: after.rejected,
        },
    };
    Ok(ImportResult { summary, ending })
}

/// Opens the input's record source as `reading` says; what its first lines
/// make impossible is a usage error (exit 2) naming the input.
fn open_input(input: &Input, options: &ImportOptions, reading: &ReadingOptions) -> Result<OpenedSource, CommandError> {
    let reader = input
        .reader()
        .map_err(|e| failed(format!("cannot read {}: {e}", input.name)))?;
    open_source(reader, options.kind, input.format, options.max_record_bytes, reading)
        .map_err(|e| CommandError::Usage(format!("{}: {e}", input.name)))
}

/// What reading the batches came to.
struct ReadOutcome {
    /// Records read (through the last committed verdict when the run stopped early).
    records_read: u64,
    ending: Ending,
    warnings: Vec<String>,
    /// Records written whose card number lost its separators.
    separators_stripped: u64,
}

/// Streams the input through validation into the session.
#[allow(clippy::too_many_arguments)]
async fn run_batches(
    session: &mut ImportSession,
    source: Box<dyn RecordSource>,
    context: Arc<ValidationContext>,
    batch_size: usize,
    options: &ImportOptions,
    before: &RunState,
    input: &Input,
    progress: &mut Progress,
    interrupts: &Interrupts,
) -> Result<ReadOutcome, CommandError> {
    let (batch_sender, mut batch_receiver) = mpsc::channel::<io::Result<RecordBatch>>(CHANNEL_BATCHES);
    let (valid_sender, mut valid_receiver) = mpsc::channel::<io::Result<ValidBatch>>(CHANNEL_BATCHES);
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
    let mut separators_stripped = 0;
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
                    match session
                        .write_batch(
                            &first,
                            options.max_rejects.filter(|limit| limit.judges(first.first_record)),
                        )
                        .await
                    {
                        Ok(outcome) => {
                            separators_stripped += first.separators_stripped;
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
        // The limit counts the whole run's rejects, earlier invocations included.
        let limit = options.max_rejects.filter(|limit| limit.judges(batch.first_record));
        if pairs && held.is_none() && limit.is_none() {
            held = Some(batch);
            continue;
        }
        let written = match held.take() {
            Some(first) => session
                .write_pair(&first, &batch)
                .await
                .map(|[one, two]| vec![(first, one), (batch, two)]),
            None => session
                .write_batch(&batch, limit)
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
        separators_stripped += written.iter().map(|(batch, _)| batch.separators_stripped).sum::<u64>();
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
    Ok(ReadOutcome {
        records_read,
        ending,
        warnings,
        separators_stripped,
    })
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
    match write_reject_report(session, &RejectFilter::default(), None, file).await {
        Ok(mut file) => {
            file.flush().map_err(|e| cannot_write(&e))?;
            file.commit().map_err(|e| cannot_write(&e))
        }
        Err(ReportError::Store(error)) => Err(error.into()),
        Err(ReportError::Write(error)) => Err(cannot_write(&error)),
    }
}
