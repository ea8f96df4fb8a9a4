//! `db distribute` and `db status`: cardbatch's tables on a Citus cluster.

use serde_json::json;

use super::{Settings, print_json, print_stdout};
use crate::cli::DbCommand;
use crate::error::{CommandError, Exit};
use crate::store::{Backend, Placement, StoreError, TablePlacement};

pub(super) async fn run(settings: &Settings, command: DbCommand) -> Result<Exit, CommandError> {
    // Refused before opening: opening a SQLite path would create a database there.
    if settings.database.backend() == Backend::Sqlite && !matches!(command, DbCommand::Init) {
        return Err(StoreError::NotCitus(settings.database.redacted()).into());
    }
    let context = settings.open().await?;
    match command {
        DbCommand::Init => {
            // Opening created the database or brought it up to date.
            if !settings.quiet {
                print_stdout(&format!(
                    "{}: cardbatch's schema is up to date\n",
                    context.store.describe()
                ))?;
            }
            Ok(Exit::Completed)
        }
        DbCommand::Distribute => {
            let tables = context.store.distribute().await?;
            let changed = tables.iter().filter(|t| t.changed).count();
            if !settings.quiet {
                let mut text = table(&tables);
                text.push_str(&match changed {
                    0 => "nothing to do: every table was already placed\n".to_string(),
                    n => format!("{n} table(s) placed\n"),
                });
                print_stdout(&text)?;
            }
            Ok(Exit::Completed)
        }
        DbCommand::Status { .. } => {
            let tables = context.store.table_placements().await?;
            if settings.json {
                print_json(&json!({"tables": tables.iter().map(|t| json!({
                    "table": t.table,
                    "placement": t.placement.as_str(),
                    "wanted": t.wanted.as_str(),
                })).collect::<Vec<_>>()}))?;
            } else {
                print_stdout(&table(&tables))?;
            }
            // A table not placed as `db distribute` places it (a new
            // migration's, say) is what a check of the cluster must catch.
            let misplaced = tables.iter().any(|t| t.placement != t.wanted);
            Ok(if misplaced { Exit::Failed } else { Exit::Completed })
        }
    }
}

/// One line per table: its name and placement, and what is wrong with it.
fn table(tables: &[TablePlacement]) -> String {
    let width = tables.iter().map(|t| t.table.len()).max().unwrap_or(0);
    let mut text = String::new();
    for t in tables {
        let placement = match t.placement {
            Placement::Distributed => "distributed by org_id".to_string(),
            other => other.as_str().to_string(),
        };
        let note = match (t.changed, t.placement == t.wanted) {
            (true, _) => " (placed now)".to_string(),
            (false, true) => String::new(),
            (false, false) => format!(" (should be {}: run `cardbatch db distribute`)", t.wanted.as_str()),
        };
        text.push_str(&format!("{:<width$}  {placement}{note}\n", t.table));
    }
    text
}
