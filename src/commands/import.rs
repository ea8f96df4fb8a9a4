//! `import cards`, `import external-ids`, `import customers`.

use super::Context;
use crate::cli::ImportCommand;
use crate::error::{CommandError, Exit, usage};
use crate::import::{ImportOptions, run_import};
use crate::store::ImportKind;

pub(super) async fn run(context: &Context<'_>, command: ImportCommand, quiet: bool) -> Result<Exit, CommandError> {
    let (kind, args, overwrite) = match command {
        ImportCommand::Cards(args) => (ImportKind::Cards, args, false),
        ImportCommand::ExternalIds { args, overwrite } => (ImportKind::ExternalIds, args, overwrite),
        ImportCommand::Customers(args) => (ImportKind::Customers, args, false),
    };
    let options = ImportOptions {
        kind,
        input: args.file.clone(),
        format: args.format,
        reject_report: args.reject_report.clone(),
        batch_size: args.batch_size.map(|size| size as usize),
        max_rejects: args.max_rejects,
        dry_run: args.dry_run,
        overwrite_external_ids: overwrite,
        quiet,
    };
    let org = context.org_config().await?;
    let result = run_import(context.store, context.org_id, org, options).await?;
    let summary_json = serde_json::to_value(&result.summary).map_err(|e| CommandError::Fatal(e.into()))?;
    if let Some(path) = &args.summary {
        let text = serde_json::to_string_pretty(&summary_json).map_err(|e| CommandError::Fatal(e.into()))?;
        std::fs::write(path, text + "\n").map_err(|e| usage(format!("cannot write {}: {e}", path.display())))?;
    }
    if args.json {
        println!("{summary_json}");
    } else {
        print!("{}", result.summary.to_text());
    }
    Ok(result.exit)
}
