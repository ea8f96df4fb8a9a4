//! The commands: each turns parsed flags into validated settings, calls the
//! domain rules and the store, and prints its result.

mod cards;
mod export;
mod external_id;
mod import;
mod org;
mod series;

use std::io::Read;
use std::path::Path;

use serde::de::DeserializeOwned;

use crate::cli::{Cli, Command};
use crate::domain::OrgConfig;
use crate::error::{ApiError, CommandError, ErrorCode, Exit, usage};
use crate::store::{self, Store, StoreError};

/// Runs one command line to completion.
pub async fn run(cli: Cli) -> Result<Exit, CommandError> {
    let store = store::open(&cli.database_url).await.map_err(usage)?;
    tracing::info!(database = %store.describe(), org = cli.org_id, "opened store");
    let context = Context {
        store: store.as_ref(),
        org_id: cli.org_id,
    };
    match cli.command {
        Command::Org(command) => org::run(&context, command).await,
        Command::Series(command) => series::run(&context, command).await,
        Command::Cards(command) => cards::run(&context, command).await,
        Command::ExternalId(command) => external_id::run(&context, command).await,
        Command::Import(command) => import::run(&context, command, cli.quiet).await,
        Command::Rejects(command) => export::rejects(&context, command).await,
        Command::Events(command) => export::events(&context, command).await,
    }
}

/// What every command works with.
struct Context<'a> {
    store: &'a dyn Store,
    org_id: i64,
}

impl Context<'_> {
    async fn org_config(&self) -> Result<OrgConfig, CommandError> {
        let stored = self.store.org_config(self.org_id).await.map_err(store_error)?;
        OrgConfig::from_stored(stored.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|e| usage(format!("stored org configuration is invalid: {e}")))
    }
}

/// Maps a store error onto the platform's numbered errors where one fits.
fn store_error(error: StoreError) -> CommandError {
    let code = match &error {
        StoreError::SeriesCodeExists(_) => ErrorCode::SeriesCodeExists,
        StoreError::SeriesFormatExists(_) => ErrorCode::CardConfigurationExists,
        StoreError::CardNumberExists(_) => ErrorCode::CardNumberExists,
        StoreError::ExternalIdExists(_) => ErrorCode::ExternalIdExists,
        StoreError::CardNotFound(_) => ErrorCode::CardNotFound,
        StoreError::SeriesNotFound(_) => ErrorCode::InvalidSeries,
        StoreError::CounterExhausted { .. } => ErrorCode::MaxCardNumberReached,
        _ => return CommandError::Fatal(anyhow::Error::new(error)),
    };
    ApiError::new(code, error.to_string()).into()
}

/// Reads and parses a JSON request body from a file, or stdin for `-`.
fn read_json_body<T: DeserializeOwned>(path: &Path) -> Result<T, CommandError> {
    let mut text = String::new();
    let read = if path == Path::new("-") {
        std::io::stdin().read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|mut file| file.read_to_string(&mut text))
    };
    read.map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, format!("invalid request body: {e}")).into())
}

/// Prints a JSON value on stdout.
fn print_json(value: &serde_json::Value) {
    println!("{value}");
}

/// A buffered writer to FILE, or to stdout without one.
fn output_writer(path: Option<&Path>) -> Result<Box<dyn std::io::Write>, CommandError> {
    Ok(match path {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| usage(format!("cannot create {}: {e}", path.display())))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    })
}
