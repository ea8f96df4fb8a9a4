//! `import cards`, `import external-ids`, `import customers`: the input and
//! every output path are checked before the database is opened; the run's
//! ending is mapped onto the exit code here.

use std::io::Write;
use std::path::Path;

use super::{Settings, print_json, print_stdout};
use crate::batch::ImportKind;
use crate::cli::{ImportArgs, ImportCommand, MaxRejects};
use crate::error::{CommandError, Exit, failed};
use crate::import::input::{Input, InputError, default_report_path};
use crate::import::interrupt::Interrupts;
use crate::import::reading::ReadingOptions;
use crate::import::session::RejectLimit;
use crate::import::{Ending, ImportOptions, ImportResult, WRONG_FILE_MESSAGE, run_import};
use crate::output::OutputFile;
use crate::report::Summary;
use crate::report::metrics::RunMetrics;
use crate::store::{RunState, redact};

pub(super) async fn run(settings: &Settings, command: ImportCommand) -> Result<Exit, CommandError> {
    let (kind, args, overwrite) = match command {
        ImportCommand::Cards(args) => (ImportKind::Cards, args, false),
        ImportCommand::ExternalIds { args, overwrite } => (ImportKind::ExternalIds, args, overwrite),
        ImportCommand::Customers(args) => (ImportKind::Customers, args, false),
    };
    let reading = args.reading.options().map_err(CommandError::Usage)?;
    let input = Input::open(&args.file, args.format)?;
    let input_file = input.file().map(Path::to_path_buf);
    let input_name = input.name.clone();
    // Every output is checked before the database is opened; the default
    // report's name depends on the run (see `default_report_path`), and
    // each name it may take lies in the same directory.
    let outputs = |report: &Path| {
        let mut paths: Vec<(&'static str, &Path)> = vec![("--reject-report", report)];
        if let Some(summary) = &args.summary {
            paths.push(("--summary", summary));
        }
        if let Some(metrics) = &args.metrics {
            paths.push(("--metrics", metrics));
        }
        settings.check_outputs(input_file.as_deref(), &paths)
    };
    let first_choice = args
        .reject_report
        .clone()
        .unwrap_or_else(|| default_report_path(&input_name, None, args.dry_run));
    let mut checked = outputs(&first_choice)?;
    let metrics_file = checked
        .iter()
        .position(|file| file.flag == "--metrics")
        .map(|at| checked.remove(at));
    let summary_file = checked.into_iter().find(|file| file.flag == "--summary");
    let started = std::time::Instant::now();
    let result = import(settings, kind, &args, overwrite, reading, input, &outputs, summary_file).await;
    if let Some(file) = &metrics_file {
        let (run_id, records, rejects_by_reason, reject_ratio) = match &result {
            Ok((summary, _)) => (
                summary.run_id,
                vec![
                    ("read", summary.records_read),
                    ("inserted", summary.inserted),
                    ("unchanged", summary.unchanged),
                    ("rejected", summary.rejected),
                    ("already_committed", summary.already_committed),
                ],
                RunMetrics::every_reason(|reason| {
                    summary
                        .rejected_by_reason
                        .get(reason.as_str())
                        .and_then(|n| n.as_u64())
                        .unwrap_or(0)
                }),
                (summary.records_read > 0).then(|| summary.run_totals.rejected as f64 / summary.records_read as f64),
            ),
            Err(_) => (None, Vec::new(), Vec::new(), None),
        };
        let exit = match &result {
            Ok((_, exit)) => *exit,
            Err(error) => error.exit(),
        };
        let metrics = RunMetrics {
            kind: kind.as_str().to_string(),
            org_id: settings.org_id,
            run_id,
            records,
            rejects_by_reason,
            reject_ratio,
            duration: started.elapsed(),
            exit_code: exit.code(),
            finished: std::time::SystemTime::now(),
        };
        metrics
            .write(file)
            .map_err(|e| failed(format!("cannot write the metrics {}: {e}", file.path.display())))?;
    }
    result.map(|(_, exit)| exit)
}

/// The import itself, once every output path is checked: the summary and the exit code.
#[allow(clippy::too_many_arguments)]
async fn import(
    settings: &Settings,
    kind: ImportKind,
    args: &ImportArgs,
    overwrite: bool,
    reading: ReadingOptions,
    input: Input,
    outputs: &(dyn Fn(&Path) -> Result<Vec<OutputFile>, CommandError> + Sync),
    summary_file: Option<OutputFile>,
) -> Result<(Summary, Exit), CommandError> {
    let input_name = input.name.clone();
    let choose_report = |run: &RunState| {
        let path = args
            .reject_report
            .clone()
            .unwrap_or_else(|| default_report_path(&input_name, Some(run), args.dry_run));
        outputs(&path)?
            .into_iter()
            .next()
            .ok_or_else(|| failed("the reject report's path was lost"))
    };

    let context = settings.open().await?;
    let org = context.org_config().await?;
    let options = ImportOptions {
        kind,
        format: args.format,
        batch_size: args.batch_size.map(|size| size as usize),
        max_rejects: MaxRejects::applied(args.max_rejects),
        max_record_bytes: args.max_record_bytes as usize,
        dry_run: args.dry_run,
        overwrite_external_ids: overwrite,
        connections: usize::from(args.connections),
        quiet: settings.quiet,
        reading,
    };
    let resume = resume_command();
    let interrupts = Interrupts::listen(format!(
        "stopping at once; the batch in flight is not committed; resume with: {resume}"
    ))
    .map_err(|e| failed(format!("cannot listen for signals: {e}")))?;
    let guarded = options.max_rejects == Some(RejectLimit::WrongFile);
    let ImportResult { summary, ending } = run_import(
        context.store.as_ref(),
        context.org_id,
        org,
        options,
        input,
        &choose_report,
        &interrupts,
    )
    .await?;

    let summary_json = serde_json::to_value(&summary).map_err(|e| failed(e.to_string()))?;
    if let Some(file) = &summary_file {
        let text = serde_json::to_string_pretty(&summary_json).map_err(|e| failed(e.to_string()))?;
        let cannot_write = |e: std::io::Error| failed(format!("cannot write the summary {}: {e}", file.path.display()));
        let mut out = file.create().map_err(cannot_write)?;
        writeln!(out, "{text}").map_err(cannot_write)?;
        out.commit().map_err(cannot_write)?;
    }
    if settings.json {
        print_json(&summary_json)?;
    } else {
        print_stdout(&summary.to_text())?;
    }
    let exit = match ending {
        Ending::Completed if summary.run_totals.rejected > 0 => Exit::CompletedWithRejects,
        Ending::Completed => Exit::Completed,
        Ending::Aborted => {
            if guarded {
                eprintln!("cardbatch: {} stopped: {WRONG_FILE_MESSAGE}", summary.run_name());
            } else {
                eprintln!(
                    "cardbatch: {} stopped at --max-rejects after record {}",
                    summary.run_name(),
                    summary.records_read
                );
            }
            Exit::TooManyRejects
        }
        Ending::Interrupted(signal) => {
            eprintln!(
                "cardbatch: interrupted by {}: {} stopped after record {}, every verdict through it committed; resume with: {resume}",
                signal.name(),
                summary.run_name(),
                summary.records_read,
            );
            Exit::Interrupted(signal)
        }
    };
    Ok((summary, exit))
}

impl From<InputError> for CommandError {
    fn from(error: InputError) -> Self {
        CommandError::Usage(error.to_string())
    }
}

/// This process's own command line, as a shell would take it again, with
/// any password in it redacted.
fn resume_command() -> String {
    std::env::args()
        .enumerate()
        .map(|(i, arg)| {
            let arg = if i == 0 { "cardbatch".to_string() } else { redact(&arg) };
            let plain = !arg.is_empty()
                && arg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b));
            if plain {
                arg
            } else {
                format!("'{}'", arg.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
