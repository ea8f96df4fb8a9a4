//! `runs list` and `runs show ID`: what ran, how it ended, and its totals.

use serde_json::{Value, json};

use super::{Settings, print_json, print_stdout};
use crate::cli::RunsCommand;
use crate::error::{CommandError, Exit, usage};
use crate::store::RunInfo;

pub(super) async fn run(settings: &Settings, command: RunsCommand) -> Result<Exit, CommandError> {
    let context = settings.open().await?;
    match command {
        RunsCommand::List { kind, status, .. } => {
            let mut runs = context.store.list_runs(context.org_id).await?;
            runs.retain(|run| {
                kind.as_ref().is_none_or(|kind| *kind == run.kind)
                    && status.as_ref().is_none_or(|status| status == run.status.as_str())
            });
            if settings.json {
                print_json(&json!({"runs": runs.iter().map(run_json).collect::<Vec<_>>()}))?;
            } else {
                print_stdout(&table(&runs))?;
            }
        }
        RunsCommand::Show { run_id, .. } => {
            let run = context
                .store
                .find_run(context.org_id, run_id)
                .await?
                .ok_or_else(|| usage(format!("run {run_id} does not exist in org {}", context.org_id)))?;
            if settings.json {
                print_json(&run_json(&run))?;
            } else {
                print_stdout(&details(&run))?;
            }
        }
    }
    Ok(Exit::Completed)
}

/// A run as JSON, with the summary's names for its counts.
pub(super) fn run_json(run: &RunInfo) -> Value {
    json!({
        "run_id": run.run_id,
        "kind": run.kind,
        "input": run.input,
        "input_format": run.input_format,
        "input_path": run.input_details.path,
        "input_size": run.input_details.size,
        "input_sha256": run.input_details.sha256,
        "status": run.status.as_str(),
        "records_read": run.records_committed,
        "inserted": run.inserted,
        "unchanged": run.unchanged,
        "rejected": run.rejected,
        "already_committed": run.already_committed,
        "reading": run.reading_plan.as_deref().and_then(|plan| serde_json::from_str::<Value>(plan).ok()),
        "reject_report": run.reject_report,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
    })
}

/// The runs as an aligned table, one line each.
fn table(runs: &[RunInfo]) -> String {
    let header = [
        "ID",
        "KIND",
        "INPUT",
        "STATUS",
        "READ",
        "INSERTED",
        "UNCHANGED",
        "REJECTED",
        "ALREADY",
        "STARTED",
        "FINISHED",
    ];
    let rows: Vec<[String; 11]> = runs
        .iter()
        .map(|run| {
            [
                run.run_id.to_string(),
                run.kind.clone(),
                run.input.clone().unwrap_or_else(|| "-".into()),
                run.status.as_str().to_string(),
                run.records_committed.to_string(),
                run.inserted.to_string(),
                run.unchanged.to_string(),
                run.rejected.to_string(),
                run.already_committed.to_string(),
                run.started_at.clone(),
                run.finished_at.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    aligned(&header, &rows)
}

/// Columns padded to their widest cell; numbers (all but the text columns) right-aligned.
pub(super) fn aligned<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let numeric: Vec<bool> = (0..N)
        .map(|i| !rows.is_empty() && rows.iter().all(|row| row[i].parse::<f64>().is_ok()))
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                if numeric[i] {
                    format!("{cell:>width$}", width = widths[i])
                } else {
                    format!("{cell:<width$}", width = widths[i])
                }
            })
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut text = line(header.to_vec());
    for row in rows {
        text.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    text
}

fn details(run: &RunInfo) -> String {
    let fields = [
        ("run", run.run_id.to_string()),
        ("kind", run.kind.clone()),
        ("input", run.input.clone().unwrap_or_else(|| "-".into())),
        ("format", run.input_format.clone().unwrap_or_else(|| "-".into())),
        (
            "input path",
            run.input_details.path.clone().unwrap_or_else(|| "-".into()),
        ),
        (
            "input size",
            run.input_details
                .size
                .map_or_else(|| "-".into(), |size| format!("{size} bytes")),
        ),
        (
            "input sha256",
            run.input_details.sha256.clone().unwrap_or_else(|| "-".into()),
        ),
        ("status", run.status.as_str().to_string()),
        ("records read", run.records_committed.to_string()),
        ("inserted", run.inserted.to_string()),
        ("unchanged", run.unchanged.to_string()),
        ("rejected", run.rejected.to_string()),
        ("already committed", run.already_committed.to_string()),
        ("started", run.started_at.clone()),
        ("finished", run.finished_at.clone().unwrap_or_else(|| "-".into())),
        ("reading", crate::report::reading_of(run).unwrap_or_else(|| "-".into())),
        ("reject report", run.reject_report.clone().unwrap_or_else(|| "-".into())),
    ];
    fields
        .iter()
        .map(|(name, value)| format!("{name:<18} {value}\n"))
        .collect()
}
