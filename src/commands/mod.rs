//! The commands: each turns parsed flags into validated settings, calls the
//! domain rules and the store, and prints its result.

mod cards;
mod db;
mod export;
mod external_id;
mod import;
mod man;
mod org;
mod rejects;
mod runs;
mod series;

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::cli::{Cli, Command, DbCommand};
use crate::domain::OrgConfig;
use crate::error::{ApiError, CommandError, ErrorCode, Exit, output_failed, usage};
use crate::output::{OutputError, OutputFile, Protected, check_outputs};
use crate::store::{self, DatabaseUrl, OpenError, OpenOptions, Store, StoreError, UrlError};

/// Runs one command line to completion. Every path and argument is checked
/// before the first write: the database URL here, output paths in the
/// commands that write files, before they open the database.
pub async fn run(cli: Cli) -> Result<Exit, CommandError> {
    // Generated from the command line's own definition; no database involved.
    match &cli.command {
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(
                *shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "cardbatch",
                &mut out,
            );
            print_stdout(&String::from_utf8_lossy(&out))?;
            return Ok(Exit::Completed);
        }
        Command::Man { output } => return man::run(output.as_deref()),
        _ => {}
    }
    let settings = Settings {
        opened: std::sync::Mutex::new(Vec::new()),
        database: DatabaseUrl::parse(&cli.database_url)?,
        org_id: cli.org_id,
        quiet: cli.quiet,
        json: cli.command.json_output(),
        open: OpenOptions {
            lock_timeout: Duration::from_secs(cli.lock_timeout),
            announce_waits: !cli.quiet,
            create: !cli.command.only_reads(),
            announce_created: !cli.quiet && cli.command.tells_of_a_new_database(),
            require_citus: matches!(
                cli.command,
                Command::Db(DbCommand::Distribute | DbCommand::Status { .. })
            ),
        },
    };
    let result = dispatch(&settings, cli.command).await;
    settings.close().await;
    result
}

async fn dispatch(settings: &Settings, command: Command) -> Result<Exit, CommandError> {
    match command {
        Command::Org(command) => org::run(&settings.open().await?, command).await,
        Command::Series(command) => series::run(&settings.open().await?, command).await,
        Command::Cards(command) => cards::run(settings, command).await,
        Command::ExternalId(command) => external_id::run(&settings.open().await?, command).await,
        Command::Import(command) => import::run(settings, command).await,
        Command::Runs(command) => runs::run(settings, command).await,
        Command::Rejects(command) => rejects::run(settings, command).await,
        Command::Report {
            run_id,
            output,
            mask_card_numbers,
        } => rejects::report(settings, run_id, output, mask_card_numbers).await,
        Command::Events(command) => export::events(settings, command).await,
        Command::Db(command) => db::run(settings, command).await,
        Command::Completions { .. } | Command::Man { .. } => Ok(Exit::Completed),
    }
}

/// The global settings every command starts from.
struct Settings {
    /// The stores this command opened, closed when it ends.
    opened: std::sync::Mutex<Vec<Arc<dyn Store>>>,
    database: DatabaseUrl,
    org_id: i64,
    quiet: bool,
    /// `--json`: results (and errors) as JSON on stdout.
    json: bool,
    open: OpenOptions,
}

impl Settings {
    /// Opens the database (creating and migrating it on first use).
    async fn open(&self) -> Result<Context, CommandError> {
        let store: Arc<dyn Store> = Arc::from(store::open(&self.database, &self.open).await?);
        if let Ok(mut opened) = self.opened.lock() {
            opened.push(Arc::clone(&store));
        }
        tracing::info!(database = %store.describe(), org = self.org_id, "opened store");
        Ok(Context {
            store,
            org_id: self.org_id,
        })
    }

    /// Closes the stores the command opened (best effort: the command's own
    /// result is what the user needs to hear about).
    async fn close(&self) {
        let opened: Vec<Arc<dyn Store>> = self
            .opened
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        for store in opened {
            if let Err(error) = store.close().await {
                tracing::warn!(%error, "closing the database");
            }
        }
    }

    /// Checks a command's output paths against the database's files, the
    /// input (if it reads a file) and each other.
    fn check_outputs(
        &self,
        input: Option<&Path>,
        outputs: &[(&'static str, &Path)],
    ) -> Result<Vec<OutputFile>, CommandError> {
        let names = [
            "the database",
            "the database's write-ahead log",
            "the database's shared-memory file",
            "the database's rollback journal",
        ];
        let mut protected: Vec<Protected> = names
            .into_iter()
            .zip(self.database.files())
            .map(|(what, path)| Protected { what, path })
            .collect();
        if let Some(input) = input {
            protected.push(Protected {
                what: "the input",
                path: input.to_path_buf(),
            });
        }
        Ok(check_outputs(&protected, outputs)?)
    }
}

/// What a command works with once the database is open.
struct Context {
    store: Arc<dyn Store>,
    org_id: i64,
}

impl Context {
    async fn org_config(&self) -> Result<OrgConfig, CommandError> {
        let stored = self.store.org_config(self.org_id).await?;
        OrgConfig::from_stored(stored.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|e| usage(format!("stored org configuration is invalid: {e}")))
    }
}

/// Store errors reach the user as the platform's numbered errors where one
/// fits, otherwise as a failure a retry may fix (exit 1) or one that needs a
/// person (exit 2).
impl From<StoreError> for CommandError {
    fn from(error: StoreError) -> Self {
        let code = match &error {
            StoreError::SeriesCodeExists(_) => ErrorCode::SeriesCodeExists,
            StoreError::SeriesFormatExists(_) => ErrorCode::CardConfigurationExists,
            StoreError::CardNumberExists(_) => ErrorCode::CardNumberExists,
            StoreError::ExternalIdExists(_) => ErrorCode::ExternalIdExists,
            StoreError::CardNotFound(_) => ErrorCode::CardNotFound,
            StoreError::SeriesNotFound(_) => ErrorCode::InvalidSeries,
            StoreError::CounterExhausted { .. } => ErrorCode::MaxCardNumberReached,
            _ if error.needs_a_person() => return CommandError::Usage(error.to_string()),
            _ => return CommandError::Failed(error.to_string()),
        };
        ApiError::new(code, error.to_string()).into()
    }
}

impl From<OpenError> for CommandError {
    fn from(error: OpenError) -> Self {
        if error.source.needs_a_person() {
            CommandError::Usage(error.to_string())
        } else {
            CommandError::Failed(error.to_string())
        }
    }
}

impl From<UrlError> for CommandError {
    fn from(error: UrlError) -> Self {
        CommandError::Usage(error.to_string())
    }
}

impl From<OutputError> for CommandError {
    fn from(error: OutputError) -> Self {
        CommandError::Usage(error.to_string())
    }
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
fn print_json(value: &serde_json::Value) -> Result<(), CommandError> {
    print_stdout(&format!("{value}\n"))
}

/// Prints text on stdout (a reader gone away ends the command quietly).
fn print_stdout(text: &str) -> Result<(), CommandError> {
    let mut out = std::io::stdout().lock();
    std::io::Write::write_all(&mut out, text.as_bytes())
        .and_then(|()| std::io::Write::flush(&mut out))
        .map_err(output_failed)
}

/// Where a command's output goes: a checked file, written whole on
/// success, or stdout.
enum Destination {
    File(crate::output::PendingOutput),
    Stdout(std::io::BufWriter<std::io::StdoutLock<'static>>),
}

impl Destination {
    fn new(output: Option<&OutputFile>) -> Result<Destination, CommandError> {
        Ok(match output {
            Some(file) => Destination::File(
                file.create()
                    .map_err(|e| crate::error::failed(format!("cannot write {}: {e}", file.path.display())))?,
            ),
            None => Destination::Stdout(std::io::BufWriter::new(std::io::stdout().lock())),
        })
    }

    /// Flushes stdout, or puts the file in place.
    fn finish(self) -> std::io::Result<()> {
        match self {
            Destination::File(file) => file.commit(),
            Destination::Stdout(mut out) => std::io::Write::flush(&mut out),
        }
    }
}

impl std::io::Write for Destination {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Destination::File(file) => file.write(buf),
            Destination::Stdout(out) => out.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Destination::File(file) => file.flush(),
            Destination::Stdout(out) => out.flush(),
        }
    }
}
