//! `rejects export --run ID` and `events export [--after ID]`: to stdout, or
//! to a file that appears whole once the export is complete.

use std::io::Write;

use super::{Destination, Settings};
use crate::cli::{EventsCommand, RejectsCommand};
use crate::error::{CommandError, Exit, failed, usage};
use crate::report::events::write_event_line;
use crate::report::{ReportError, write_reject_report};
use crate::store::RunRejects;

/// Events read per query.
const PAGE: u32 = 10_000;

fn write_failed(error: impl std::fmt::Display) -> CommandError {
    failed(format!("cannot write the output: {error}"))
}

pub(super) async fn rejects(settings: &Settings, command: RejectsCommand) -> Result<Exit, CommandError> {
    let RejectsCommand::Export { run_id, output } = command;
    let outputs = match &output {
        Some(path) => settings.check_outputs(None, &[("--output", path)])?,
        None => Vec::new(),
    };
    let context = settings.open().await?;
    if context.store.find_run(context.org_id, run_id).await?.is_none() {
        return Err(usage(format!("run {run_id} does not exist in org {}", context.org_id)));
    }
    let mut rejects = RunRejects {
        store: context.store.as_ref(),
        org_id: context.org_id,
        run_id,
    };
    let destination = Destination::new(outputs.first())?;
    match write_reject_report(&mut rejects, destination).await {
        Ok(destination) => destination.finish().map_err(write_failed)?,
        Err(ReportError::Store(error)) => return Err(error.into()),
        Err(ReportError::Write(error)) => return Err(write_failed(error)),
    }
    Ok(Exit::Completed)
}

pub(super) async fn events(settings: &Settings, command: EventsCommand) -> Result<Exit, CommandError> {
    let EventsCommand::Export { after, output } = command;
    let outputs = match &output {
        Some(path) => settings.check_outputs(None, &[("--output", path)])?,
        None => Vec::new(),
    };
    let context = settings.open().await?;
    let mut out = Destination::new(outputs.first())?;
    let mut after = after;
    loop {
        let page = context.store.event_page(context.org_id, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for event in &page {
            write_event_line(&mut out, event).map_err(write_failed)?;
        }
    }
    out.flush().map_err(write_failed)?;
    out.finish().map_err(write_failed)?;
    Ok(Exit::Completed)
}
