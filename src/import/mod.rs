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
pub mod reader;
pub mod validate;

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::domain::OrgConfig;
use crate::error::{CommandError, Exit, usage};
use crate::parallel::on_rayon;
use crate::progress::Progress;
use crate::report::{ReportError, RunTotals, Summary, write_reject_report};
use crate::store::{ImportKind, ImportSession, ImportStart, RunState, RunStatus, Store, StoreError, ValidBatch};
use input::{Format, Input};
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
    /// A path, or `-` for stdin.
    pub input: String,
    pub format: Option<Format>,
    pub reject_report: Option<PathBuf>,
    /// Records per transaction, when the user chose it; otherwise
    /// [`DEFAULT_BATCH_SIZE`], and the store may commit batches together.
    pub batch_size: Option<usize>,
    pub max_rejects: Option<u64>,
    pub dry_run: bool,
    pub overwrite_external_ids: bool,
    pub quiet: bool,
}

/// How an import ended.
#[derive(Debug, Clone)]
pub struct ImportResult {
    pub summary: Summary,
    pub exit: Exit,
}

/// Runs one import to the end (or to `--max-rejects`).
pub async fn run_import(
    store: &dyn Store,
    org_id: i64,
    org: OrgConfig,
    options: ImportOptions,
) -> Result<ImportResult, CommandError> {
    let started = Instant::now();
    let input = Input::open(&options.input, options.format).map_err(usage)?;
    let source = open_source(
        input
            .reader()
            .map_err(|e| usage(format!("cannot read {}: {e}", input.name)))?,
        options.kind,
        input.format,
    )
    .map_err(|e| usage(format!("{}: {e}", input.name)))?;
    let series = match options.kind {
        ImportKind::Cards => store.list_series(org_id).await.map_err(fatal)?,
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
        dry_run: options.dry_run,
        group_commits: options.batch_size.is_none(),
        overwrite_external_ids: options.overwrite_external_ids,
        external_id_generation,
    };
    let mut session = store.begin_import(org_id, start).await.map_err(fatal)?;
    let before = session.state().clone();
    let report_path = options
        .reject_report
        .clone()
        .unwrap_or_else(|| input.default_report_path());
    let mut warnings = Vec::new();

    let (records_read, status) = if before.status == RunStatus::Completed {
        warnings.extend(source.warnings());
        warnings.push(format!(
            "this input was already imported completely by run {}: nothing was changed",
            before.run_id
        ));
        (before.records_committed, RunStatus::Completed)
    } else {
        let progress = Progress::new(input.size, options.quiet);
        let outcome = run_batches(session.as_mut(), source, context, &options, &before, &input, &progress).await;
        match &outcome {
            Ok((_, RunStatus::Completed, _)) => progress.finish(),
            _ => progress.abandon(),
        }
        let (records_read, status, reader_warnings) = outcome?;
        warnings.extend(reader_warnings);
        session.finish(status).await.map_err(fatal)?;
        (records_read, status)
    };

    write_report_file(session.as_mut(), &report_path).await?;
    let after = session.state().clone();
    let by_reason = session.reason_counts(before.records_committed).await.map_err(fatal)?;
    session.close().await.map_err(fatal)?;

    let inserted = after.inserted - before.inserted;
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
        status: if options.dry_run { "dry_run" } else { status.as_str() }.to_string(),
        reject_report: report_path.display().to_string(),
        warnings,
        run_totals: RunTotals {
            inserted: after.inserted,
            rejected: after.rejected,
        },
    };
    let exit = if status == RunStatus::Aborted {
        Exit::TooManyRejects
    } else {
        Exit::Completed
    };
    Ok(ImportResult { summary, exit })
}

fn fatal(error: StoreError) -> CommandError {
    CommandError::Fatal(anyhow::Error::new(error))
}

/// Streams the input through validation into the session. Returns the number
/// of records read (through the stop, when `--max-rejects` stopped the run),
/// the run's status, and the reader's warnings.
async fn run_batches(
    session: &mut dyn ImportSession,
    source: Box<dyn RecordSource>,
    context: Arc<ValidationContext>,
    options: &ImportOptions,
    before: &RunState,
    input: &Input,
    progress: &Progress,
) -> Result<(u64, RunStatus, Vec<String>), CommandError> {
    let (batch_sender, mut batch_receiver) = mpsc::channel::<io::Result<RecordBatch>>(CHANNEL_BATCHES);
    let (valid_sender, mut valid_receiver) = mpsc::channel::<io::Result<ValidBatch>>(CHANNEL_BATCHES);
    let batch_size = options.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
    let skip_through = before.records_committed;
    let reader = std::thread::spawn(move || read_batches(source, batch_size, skip_through, batch_sender));
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

    let mut stopped_at = None;
    let mut result = Ok(());
    while let Some(valid) = valid_receiver.recv().await {
        let batch = match valid {
            Ok(batch) => batch,
            Err(error) => {
                result = Err(CommandError::Fatal(anyhow::anyhow!(
                    "reading {} failed: {error}",
                    input.name
                )));
                break;
            }
        };
        // The limit counts the whole run's rejects, earlier invocations included.
        let budget = options
            .max_rejects
            .map(|max| max.saturating_sub(session.state().rejected));
        let outcome = match session.write_batch(&batch, budget).await {
            Ok(outcome) => outcome,
            Err(error) => {
                result = Err(fatal(error));
                break;
            }
        };
        let state = session.state();
        progress.update(
            input.bytes_read.load(Ordering::Relaxed),
            state.records_committed,
            state.rejected,
        );
        if outcome.stopped_at.is_some() {
            stopped_at = outcome.stopped_at;
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
    Ok(match stopped_at {
        Some(record) => (record, RunStatus::Aborted, warnings),
        None => (records_seen, RunStatus::Completed, warnings),
    })
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

/// Writes the run's whole reject report from the database.
async fn write_report_file(session: &mut dyn ImportSession, path: &PathBuf) -> Result<(), CommandError> {
    let cannot_write = |e: &dyn std::fmt::Display| {
        CommandError::Fatal(anyhow::anyhow!(
            "cannot write the reject report {}: {e}",
            path.display()
        ))
    };
    let file = File::create(path).map_err(|e| cannot_write(&e))?;
    match write_reject_report(session, BufWriter::new(file)).await {
        Ok(_) => Ok(()),
        Err(ReportError::Store(error)) => Err(fatal(error)),
        Err(ReportError::Write(error)) => Err(cannot_write(&error)),
    }
}
