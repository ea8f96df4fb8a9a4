//! The command line, as clap definitions only. Raw flags are turned into
//! validated settings by the commands themselves.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Bulk import and batch processing of loyalty-card data.
#[derive(Debug, Parser)]
#[command(name = "cardbatch", version, about, after_help = crate::error::EXIT_CODES_HELP)]
pub struct Cli {
    /// Database URL: sqlite://FILE (default, created on first use) or postgres://...
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://cardbatch.db", global = true)]
    pub database_url: String,

    /// The org to work on.
    #[arg(long = "org", default_value_t = 1, global = true)]
    pub org_id: i64,

    /// No progress bar and no informational logging.
    #[arg(long, short, global = true)]
    pub quiet: bool,

    /// How long to wait for a lock another process holds (SQLite's write
    /// lock, a PostgreSQL row) before giving up with exit 1.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, global = true)]
    pub lock_timeout: u64,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read or change the org configuration.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Create and list card series.
    #[command(subcommand)]
    Series(SeriesCommand),
    /// Generate, add and update cards.
    #[command(subcommand)]
    Cards(CardsCommand),
    /// Org-level external IDs.
    #[command(subcommand, name = "external-id")]
    ExternalId(ExternalIdCommand),
    /// Import cards, card external IDs or customers from CSV or JSON lines.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Write a run's reject report again.
    #[command(subcommand)]
    Rejects(RejectsCommand),
    /// Drain the events outbox.
    #[command(subcommand)]
    Events(EventsCommand),
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import cards (card_number, series_code or series_id, status_label, external_id, customer_id, status_reason).
    Cards(ImportArgs),
    /// Set external IDs of existing cards (card_number, external_id).
    ExternalIds {
        #[command(flatten)]
        args: ImportArgs,
        /// Replace an external ID a card already has (otherwise EXTERNAL_ID_ALREADY_SET).
        #[arg(long)]
        overwrite: bool,
    },
    /// Register customers (customer_id, external_id); missing external IDs are generated.
    Customers(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The input file (.csv, .jsonl, optionally .gz), or - for stdin.
    pub file: String,
    /// The input format (default: from the file name, else from the first byte).
    #[arg(long, value_enum)]
    pub format: Option<crate::import::input::Format>,
    /// Where to write the reject report (default: FILE.rejects.csv beside the input).
    #[arg(long)]
    pub reject_report: Option<PathBuf>,
    /// Also write the summary as JSON to FILE.
    #[arg(long)]
    pub summary: Option<PathBuf>,
    /// Print the summary as JSON on stdout (otherwise as text).
    #[arg(long)]
    pub json: bool,
    /// Records per transaction. Without it, records go in batches of 10,000,
    /// and on SQLite consecutive batches share a commit for up to a second.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_size: Option<u32>,
    /// Stop with exit 3 at the reject after the first N.
    #[arg(long)]
    pub max_rejects: Option<u64>,
    /// Longest record read whole; a longer one is rejected as
    /// MALFORMED_RECORD and its raw text cut (keep the same value when resuming).
    #[arg(long, value_name = "BYTES", default_value_t = crate::import::reader::DEFAULT_MAX_RECORD_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(64..=1 << 30))]
    pub max_record_bytes: u64,
    /// Validate everything, database checks included, write the reject report, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum RejectsCommand {
    /// Write a run's reject report (to stdout, or --output FILE).
    Export {
        #[arg(long = "run")]
        run_id: i64,
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Write events as JSON lines in id order (to stdout, or --output FILE).
    Export {
        /// Only events with a larger id.
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Print every configuration key with its value (defaults filled in).
    Show,
    /// Set one key; an empty VALUE clears an optional key.
    Set { key: String, value: String },
}

#[derive(Debug, Subcommand)]
pub enum SeriesCommand {
    /// Create a series from the API's JSON body (--json FILE, or - for stdin) or from flags.
    Create(Box<SeriesCreateArgs>),
    /// List the org's series as JSON.
    List,
}

#[derive(Debug, Args)]
pub struct SeriesCreateArgs {
    /// The request body as JSON (the seeds' POST /v2/card/series/ body); - reads stdin.
    #[arg(long, conflicts_with_all = ["code", "series_type", "name"])]
    pub json: Option<PathBuf>,
    #[arg(long)]
    pub code: Option<String>,
    #[arg(long)]
    pub name: Option<String>,
    /// DIGITAL or PHYSICAL.
    #[arg(long = "type")]
    pub series_type: Option<String>,
    #[arg(long, allow_negative_numbers = true)]
    pub expiry_days: Option<i64>,
    #[arg(long, allow_negative_numbers = true)]
    pub max_active_cards_per_customer: Option<i64>,
    #[arg(long)]
    pub prefix: Option<String>,
    #[arg(long)]
    pub suffix: Option<String>,
    #[arg(long, allow_negative_numbers = true)]
    pub offset: Option<i64>,
    #[arg(long, allow_negative_numbers = true)]
    pub length: Option<i64>,
    /// DEFAULT, AUTO_INC, LUHN_ALGO, LUHNALGO, MOD7_ALGO, RANDOM, RANDOM_LUHN or RANDOM_MOD7.
    #[arg(long)]
    pub method: Option<String>,
    /// Defaults to true when a length is given.
    #[arg(long)]
    pub generation_enabled: Option<bool>,
    #[arg(long)]
    pub active: Option<bool>,
    /// SERIES_ID, OU_ID or REGISTRATION.
    #[arg(long)]
    pub trigger: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum CardsCommand {
    /// Generate up to 100000 cards of a series at once.
    Generate(GenerateArgs),
    /// Write the cards a run created (a `cards generate` run: its --output file, again).
    Export {
        /// The run, as `cards generate` printed it.
        #[arg(long = "run")]
        run_id: i64,
        /// Write the CSV to FILE (whole, once complete) instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Add one card from the API's JSON body (--json FILE, or - for stdin).
    Add {
        #[arg(long)]
        json: PathBuf,
    },
    /// Set the external ID of an existing card.
    SetExternalId {
        #[arg(long)]
        card_number: String,
        #[arg(long)]
        external_id: String,
    },
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[arg(long, conflicts_with = "series_code", required_unless_present = "series_code")]
    pub series_id: Option<i64>,
    #[arg(long)]
    pub series_code: Option<String>,
    /// How many cards, 1 to 100000 (checked by cardbatch: errors 3025 and 3026).
    #[arg(long, allow_negative_numbers = true)]
    pub count: Option<String>,
    /// Status of the new cards.
    #[arg(long, default_value = "NOT_ISSUED")]
    pub status_label: String,
    /// Write the numbers as CSV to FILE instead of JSON to stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ExternalIdCommand {
    /// Generate one org-level external ID.
    Generate {
        /// The source account asking; it must be listed in SOURCE_ACCOUNTS_EXTERNALID_ENABLED.
        #[arg(long)]
        source_account: Option<String>,
    },
}
