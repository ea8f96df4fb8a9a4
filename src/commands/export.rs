//! `rejects export --run ID` and `events export [--after ID]`.

use std::io::Write;

use super::{Context, output_writer, store_error};
use crate::cli::{EventsCommand, RejectsCommand};
use crate::error::{CommandError, Exit, usage};
use crate::report::events::write_event_line;
use crate::report::{ReportError, write_reject_report};
use crate::store::RunRejects;

/// Events read per query.
const PAGE: u32 = 10_000;

fn write_failed(error: impl std::fmt::Display) -> CommandError {
    CommandError::Fatal(anyhow::anyhow!("cannot write the output: {error}"))
}

pub(super) async fn rejects(context: &Context<'_>, command: RejectsCommand) -> Result<Exit, CommandError> {
    let RejectsCommand::Export { run_id, output } = command;
    if context
        .store
        .find_run(context.org_id, run_id)
        .await
        .map_err(store_error)?
        .is_none()
    {
        return Err(usage(format!("run {run_id} does not exist in org {}", context.org_id)));
    }
    let mut rejects = RunRejects {
        store: context.store,
        org_id: context.org_id,
        run_id,
    };
    match write_reject_report(&mut rejects, output_writer(output.as_deref())?).await {
        Ok(_) => {}
        Err(ReportError::Store(error)) => return Err(store_error(error)),
        Err(ReportError::Write(error)) => return Err(write_failed(error)),
    }
    Ok(Exit::Completed)
}

pub(super) async fn events(context: &Context<'_>, command: EventsCommand) -> Result<Exit, CommandError> {
    let EventsCommand::Export { after, output } = command;
    let mut out = output_writer(output.as_deref())?;
    let mut after = after;
    loop {
        let page = context
            .store
            .event_page(context.org_id, after, PAGE)
            .await
            .map_err(store_error)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for event in &page {
            write_event_line(&mut out, event).map_err(write_failed)?;
        }
    }
    out.flush().map_err(write_failed)?;
    Ok(Exit::Completed)
}
