//! `rejects export`, `rejects summary` and `report`: a run's rejects for the
//! people who review and fix them.

use std::io::Write;
use std::path::PathBuf;

use serde_json::json;

use super::runs::{aligned, run_json};
use super::{Context, Destination, Settings, print_json, print_stdout};
use crate::cli::{RejectSelection, RejectsCommand};
use crate::error::{CommandError, Exit, output_failed, usage};
use crate::report::html;
use crate::report::mask::CardMask;
use crate::report::review::{ReviewError, input_shape, review, write_as_input};
use crate::report::{RejectFilter, ReportError, write_reject_report};
use crate::store::{RunInfo, RunRejects};

pub(super) async fn run(settings: &Settings, command: RejectsCommand) -> Result<Exit, CommandError> {
    match command {
        RejectsCommand::Export {
            selection,
            as_input,
            output,
        } => export(settings, selection, as_input, output).await,
        RejectsCommand::Summary { selection, .. } => summary(settings, selection).await,
    }
}

/// `report --run ID --output FILE.html`.
pub(super) async fn report(
    settings: &Settings,
    run_id: i64,
    output: PathBuf,
    mask_card_numbers: bool,
) -> Result<Exit, CommandError> {
    let outputs = settings.check_outputs(None, &[("--output", &output)])?;
    let context = settings.open().await?;
    let run = find_run(&context, run_id).await?;
    let mask = mask_card_numbers.then(|| CardMask::for_run(&run));
    let review = review(
        &mut rejects_of(&context, run_id),
        &run,
        &RejectFilter::default(),
        mask.as_ref(),
    )
    .await
    .map_err(review_failed)?;
    // The same job's nights: runs of an input of the same name and kind, in this org.
    let mut history: Vec<RunInfo> = context
        .store
        .list_runs(context.org_id)
        .await?
        .into_iter()
        .filter(|other| other.kind == run.kind && other.input == run.input && other.run_id <= run.run_id)
        .collect();
    history.sort_by_key(|other| other.run_id);
    let page = html::render(&html::Page {
        run: &run,
        review: &review,
        database: &context.store.describe(),
        org_id: context.org_id,
        history: &history,
        masked: mask_card_numbers,
    });
    let mut out = Destination::new(outputs.first())?;
    out.write_all(page.as_bytes()).map_err(output_failed)?;
    out.finish().map_err(output_failed)?;
    Ok(Exit::Completed)
}

async fn export(
    settings: &Settings,
    selection: RejectSelection,
    as_input: bool,
    output: Option<PathBuf>,
) -> Result<Exit, CommandError> {
    let filter = filter_of(&selection);
    let outputs = match &output {
        Some(path) => settings.check_outputs(None, &[("--output", path)])?,
        None => Vec::new(),
    };
    let context = settings.open().await?;
    let run = find_run(&context, selection.run_id).await?;
    // A run whose records cannot be given back is refused before anything is written.
    let shape = if as_input {
        Some(input_shape(&run).map_err(review_failed)?)
    } else {
        None
    };
    let destination = Destination::new(outputs.first())?;
    let mut pages = rejects_of(&context, selection.run_id);
    if let Some(shape) = shape {
        let (destination, counts) = write_as_input(&mut pages, shape, &filter, destination)
            .await
            .map_err(review_failed)?;
        destination.finish().map_err(output_failed)?;
        if counts.cut > 0 {
            eprintln!(
                "cardbatch: left out {} record(s) over --max-record-bytes: their raw text was cut, so they cannot be \
                 given back as they were",
                counts.cut
            );
        }
        return Ok(Exit::Completed);
    }
    let mask = selection.mask_card_numbers.then(|| CardMask::for_run(&run));
    let destination = write_reject_report(&mut pages, &filter, mask.as_ref(), destination).await?;
    destination.finish().map_err(output_failed)?;
    Ok(Exit::Completed)
}

async fn summary(settings: &Settings, selection: RejectSelection) -> Result<Exit, CommandError> {
    let context = settings.open().await?;
    let run = find_run(&context, selection.run_id).await?;
    let mask = selection.mask_card_numbers.then(|| CardMask::for_run(&run));
    let review = review(
        &mut rejects_of(&context, selection.run_id),
        &run,
        &filter_of(&selection),
        mask.as_ref(),
    )
    .await
    .map_err(review_failed)?;
    if settings.json {
        return print_json(&json!({
            "run": run_json(&run),
            "rejected": review.total,
            "groups": review.groups,
        }))
        .map(|()| Exit::Completed);
    }
    let mut text = format!(
        "run {}: {} of {}: {} rejects in {} group(s)\n\n",
        run.run_id,
        run.kind,
        run.input.as_deref().unwrap_or("-"),
        review.total,
        review.groups.len()
    );
    let rows: Vec<[String; 4]> = review
        .groups
        .iter()
        .map(|group| {
            let examples: Vec<String> = group
                .examples
                .iter()
                .map(|e| match &e.value {
                    Some(value) => format!("line {}: {}", e.line, one_line(value, 40)),
                    None => format!("line {}", e.line),
                })
                .collect();
            [
                group.reason.to_string(),
                group.field.clone(),
                group.count.to_string(),
                examples.join("; "),
            ]
        })
        .collect();
    text.push_str(&aligned(&["REASON", "FIELD", "COUNT", "EXAMPLES"], &rows));
    print_stdout(&text)?;
    Ok(Exit::Completed)
}

fn filter_of(selection: &RejectSelection) -> RejectFilter {
    RejectFilter {
        reason: selection.filter.reason,
        field: selection.filter.field.clone(),
    }
}

/// A value on one line, at most `max` characters.
fn one_line(value: &str, max: usize) -> String {
    let flat: String = value.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if flat.chars().count() > max {
        flat.chars().take(max - 1).collect::<String>() + "…"
    } else {
        flat
    }
}

async fn find_run(context: &Context, run_id: i64) -> Result<RunInfo, CommandError> {
    context
        .store
        .find_run(context.org_id, run_id)
        .await?
        .ok_or_else(|| usage(format!("run {run_id} does not exist in org {}", context.org_id)))
}

fn rejects_of(context: &Context, run_id: i64) -> RunRejects<'_> {
    RunRejects {
        store: context.store.as_ref(),
        org_id: context.org_id,
        run_id,
    }
}

fn review_failed(error: ReviewError) -> CommandError {
    match error {
        ReviewError::Store(error) => error.into(),
        ReviewError::Write(error) => output_failed(error),
        ReviewError::NotPossible(message) => usage(message),
    }
}

impl From<ReportError> for CommandError {
    fn from(error: ReportError) -> Self {
        match error {
            ReportError::Store(error) => error.into(),
            ReportError::Write(error) => output_failed(error),
        }
    }
}
