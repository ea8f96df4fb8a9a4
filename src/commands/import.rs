//! `import cards`, `import external-ids`, `import customers`: the input and
//! every output path are checked before the database is opened; the run's
//! ending is mapped onto the exit code here.

use std::io::Write;
use std::path::Path;

use super::{Settings, print_json, print_stdout};
use crate::batch::ImportKind;
use crate::cli::{ImportCommand, MaxRejects};
use crate::error::{CommandError, Exit, failed};
use crate::import::input::{Input, InputError, default_report_path};
use crate::import::interrupt::Interrupts;
use crate::import::{Ending, ImportOptions, ImportResult, WRONG_FILE_MESSAGE, run_import};
use crate::store::session::RejectLimit;
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
        settings.check_outputs(input_file.as_deref(), &paths)
    };
    let first_choice = args
        .reject_report
        .clone()
        .unwrap_or_else(|| default_report_path(&input_name, None, args.dry_run));
    let summary_file = outputs(&first_choice)?.into_iter().nth(1);
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
    Ok(match ending {
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
    })
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
