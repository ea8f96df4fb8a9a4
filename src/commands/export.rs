//! `events export [--after ID]`: to stdout, or to a file that appears whole
//! once the export is complete.

use std::io::Write;

use super::{Destination, Settings};
use crate::cli::EventsCommand;
use crate::error::{CommandError, Exit, output_failed};
use crate::report::events::write_event_line;

/// Events read per query.
const PAGE: u32 = 10_000;

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
            write_event_line(&mut out, event).map_err(output_failed)?;
        }
    }
    out.flush().map_err(output_failed)?;
    out.finish().map_err(output_failed)?;
    Ok(Exit::Completed)
}
