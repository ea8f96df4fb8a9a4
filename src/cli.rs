//! The command line, as clap definitions only. Raw flags are turned into
//! validated settings by the commands themselves.

use std::path::PathBuf;

use clap::builder::PossibleValuesParser;
use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::import::session::RejectLimit;

/// Bulk import and batch processing of loyalty-card data.
#[derive(Debug, Parser)]
#[command(name = "cardbatch", version, about, after_help = top_level_help(), max_term_width = 100)]
pub struct Cli {
    /// Database URL: sqlite://FILE (created by the first command that writes) or postgres://...
    #[arg(
        long,
        value_name = "URL",
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://cardbatch.db",
        global = true
    )]
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

    /// Colour in logs, the progress bar, help and errors: auto (where that
    /// stream is a terminal and NO_COLOR is not set), always or never.
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,

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
    /// List import and generation runs, or show one.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Review a run's rejects: grouped, filtered, or as a file to fix and import again.
    #[command(subcommand)]
    Rejects(RejectsCommand),
    /// Write a run's report as one self-contained HTML page.
    #[command(after_help = "Examples:\n  cardbatch report --run 7 --output run7.html")]
    Report {
        /// The run, as its summary or `runs list` shows it.
        #[arg(long = "run", value_name = "ID")]
        run_id: i64,
        /// Where to write the page.
        #[arg(long, value_name = "FILE.html")]
        output: PathBuf,
        /// Show card numbers as their first 6 and last 4 characters (PCI DSS's display rule).
        #[arg(long)]
        mask_card_numbers: bool,
    },
    /// Drain the events outbox.
    #[command(subcommand)]
    Events(EventsCommand),
    /// The database itself: distribute it on a Citus cluster, or show how it is placed.
    #[command(subcommand)]
    Db(DbCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Examples:\n  cardbatch completions bash > /etc/bash_completion.d/cardbatch\n  \
                            cardbatch completions zsh > ~/.zfunc/_cardbatch"
    )]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the top manual page (roff), or write one per command, generated from the same definitions as --help.
    #[command(after_help = "Examples:\n  cardbatch man | man -l -\n  \
                            cardbatch man --output /usr/local/share/man/man1 && man cardbatch-import-cards")]
    Man {
        /// Write every page (cardbatch.1, cardbatch-import-cards.1, ...) into DIR instead.
        #[arg(long, value_name = "DIR")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import cards (card_number, series_code or series_id, status_label, external_id, customer_id, status_reason).
    #[command(after_help = "Examples:\n  cardbatch import cards drop.csv\n  \
                            cardbatch import cards drop.jsonl.gz --json --max-rejects 2%\n  \
                            cat drop.csv | cardbatch import cards - --format csv\n  \
                            cardbatch import cards drop.csv --dry-run\n  \
                            cardbatch import cards export.csv --encoding windows-1252 --column card_number=CardNo \
                            --set series_code=GOLD2026\n\n\
                            Exit 0: every record inserted (or already there); 4: completed with rejects; \
                            3: stopped at --max-rejects.")]
    Cards(ImportArgs),
    /// Set external IDs of existing cards (card_number, external_id).
    #[command(after_help = "Examples:\n  cardbatch import external-ids ids.csv\n  \
                            cardbatch import external-ids ids.csv --overwrite")]
    ExternalIds {
        #[command(flatten)]
        args: ImportArgs,
        /// Replace an external ID a card already has (otherwise EXTERNAL_ID_ALREADY_SET).
        #[arg(long)]
        overwrite: bool,
    },
    /// Register customers (customer_id, external_id); missing external IDs are generated.
    #[command(after_help = "Examples:\n  cardbatch import customers customers.csv")]
    Customers(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The input file (.csv, .jsonl, optionally .gz), or - for stdin.
    pub file: String,
    /// The input format (default: from the file name, else from the first byte).
    #[arg(long, value_enum)]
    pub format: Option<crate::import::input::Format>,
    /// Where to write the reject report (default: FILE.rejects.csv beside the
    /// input, or FILE.runN.rejects.csv when another run's report stands there;
    /// FILE.dry-run.rejects.csv for a dry run).
    #[arg(long, value_name = "FILE")]
    pub reject_report: Option<PathBuf>,
    /// Also write the summary as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Write the run's counts, duration and exit code as Prometheus metrics
    /// to FILE (whole, for node_exporter's textfile collector: FILE.prom).
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// Records per transaction (without it: batches of 10,000 sharing a commit for up to a second).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_size: Option<u32>,
    /// Stop with exit 3 past N rejects in the run, or past N% of the records
    /// read so far (judged from record 1,000 on); none: never stop. Without
    /// it, a run whose first 1,000 records are all rejected stops there
    /// (exit 3: the wrong file or org).
    #[arg(long, value_name = "N|N%|none", value_parser = parse_reject_limit)]
    pub max_rejects: Option<MaxRejects>,
    /// Longest record read whole; a longer one is rejected as
    /// MALFORMED_RECORD and its raw text cut (keep the same value when resuming).
    #[arg(long, value_name = "BYTES", default_value_t = crate::import::reader::DEFAULT_MAX_RECORD_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(64..=1 << 30))]
    pub max_record_bytes: u64,
    /// PostgreSQL connections a card import writes on: with 2, two batches
    /// are written at once and committed in order (SQLite always writes on one).
    #[arg(long, value_name = "1|2", default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub connections: u8,
    /// Validate everything, database checks included, write the reject report, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the summary as JSON on stdout (and an error as one JSON object there, same exit code).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub reading: ReadingArgs,
}

/// How to read a file another system or a spreadsheet wrote.
#[derive(Debug, Args)]
#[command(next_help_heading = "Reading files from other systems")]
pub struct ReadingArgs {
    /// The CSV field delimiter: , ; | or tab (default: detected from the
    /// header among , ; tab |).
    #[arg(long, value_name = "CHAR", value_parser = crate::import::reading::parse_delimiter)]
    pub delimiter: Option<u8>,
    /// The CSV quote character (default: ").
    #[arg(long, value_name = "CHAR", value_parser = crate::import::reading::parse_quote)]
    pub quote: Option<u8>,
    /// The CSV file has no header line: columns are named by position (--column FIELD=N).
    #[arg(long)]
    pub no_header: bool,
    /// Lines to skip before the header (title lines of a report).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub skip_lines: u64,
    /// The input's encoding, a WHATWG label: utf-8 (default), windows-1252,
    /// iso-8859-1, iso-8859-15, utf-16le, utf-16be, ... A byte-order mark wins.
    #[arg(long, value_name = "LABEL", value_parser = crate::import::encoding::parse_label)]
    pub encoding: Option<&'static encoding_rs::Encoding>,
    /// The file's column for one of cardbatch's fields: FIELD=HEADER, or
    /// FIELD=N (1-based) with --no-header (repeatable).
    #[arg(long = "column", value_name = "FIELD=COLUMN", value_parser = crate::import::mapping::parse_assignment)]
    pub columns: Vec<(String, String)>,
    /// One value of a field for every record, e.g. series_code=GOLD2026 (repeatable).
    #[arg(long = "set", value_name = "FIELD=VALUE", value_parser = crate::import::mapping::parse_assignment)]
    pub constants: Vec<(String, String)>,
    /// A TOML file of these reading options (delimiter, quote, header,
    /// skip_lines, encoding, strip_separators, [columns], [set]); flags given
    /// here win over it.
    #[arg(long, value_name = "FILE.toml")]
    pub mapping: Option<PathBuf>,
    /// Remove spaces and dashes inside card numbers ("6001 3146-1107"), and
    /// count the records changed in the summary.
    #[arg(long)]
    pub strip_separators: bool,
}

impl ReadingArgs {
    /// The reading options these flags give, over the `--mapping` file's.
    pub fn options(&self) -> Result<crate::import::reading::ReadingOptions, String> {
        use crate::import::mapping::MappingOptions;
        use crate::import::reading::ReadingOptions;
        let given = ReadingOptions {
            delimiter: self.delimiter,
            quote: self.quote,
            no_header: self.no_header,
            skip_lines: self.skip_lines,
            encoding: self.encoding,
            mapping: MappingOptions {
                columns: self.columns.clone(),
                constants: self.constants.clone(),
            },
            strip_separators: self.strip_separators,
        };
        Ok(match &self.mapping {
            Some(path) => given.over(ReadingOptions::from_file(path)?),
            None => given,
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// The org's runs, newest first: id, kind, input, status, records, start and end.
    #[command(after_help = "Examples:\n  cardbatch runs list\n  cardbatch runs list --json")]
    List {
        /// Only runs of this kind: import_cards, import_external_ids, import_customers or generate.
        #[arg(long, value_name = "KIND", value_parser = PossibleValuesParser::new(RUN_KINDS), hide_possible_values = true)]
        kind: Option<String>,
        /// Only runs with this status: running, completed, aborted or interrupted.
        #[arg(long, value_name = "STATUS", value_parser = PossibleValuesParser::new(RUN_STATUSES),
              hide_possible_values = true)]
        status: Option<String>,
        /// Print JSON on stdout (and an error as one JSON object there, same exit code).
        #[arg(long)]
        json: bool,
    },
    /// One run in full.
    #[command(after_help = "Examples:\n  cardbatch runs show 7\n  cardbatch runs show 7 --json")]
    Show {
        /// The run's id.
        #[arg(value_name = "ID")]
        run_id: i64,
        /// Print JSON on stdout (and an error as one JSON object there, same exit code).
        #[arg(long)]
        json: bool,
    },
}

/// Which of a run's rejects a command takes.
#[derive(Debug, Args)]
pub struct RejectSelection {
    /// The run, as its summary or `runs list` shows it.
    #[arg(long = "run", value_name = "ID")]
    pub run_id: i64,
    #[command(flatten)]
    pub filter: RejectFilterArgs,
    /// Show card numbers as their first 6 and last 4 characters (PCI DSS's
    /// display rule), in values, messages and raw records.
    #[arg(long)]
    pub mask_card_numbers: bool,
}

/// The filters `rejects export` and `rejects summary` share; a value that
/// does not exist is refused (exit 2) with the valid ones listed.
#[derive(Debug, Args)]
pub struct RejectFilterArgs {
    /// Only rejects with this reason (e.g. CHECKSUM_INVALID).
    #[arg(long, value_name = "REASON", value_parser = reject_reasons(), hide_possible_values = true)]
    pub reason: Option<crate::domain::RejectReason>,
    /// Only rejects of this field (e.g. external_id).
    #[arg(long, value_name = "FIELD", value_parser = reject_fields(), hide_possible_values = true)]
    pub field: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum RejectsCommand {
    /// Write a run's reject report (to stdout, or --output FILE), or with
    /// --as-input the rejected records as they were in the input.
    #[command(after_help = "Examples:\n  cardbatch rejects export --run 7 --output again.csv\n  \
                            cardbatch rejects export --run 7 --reason LENGTH_MISMATCH --field external_id\n  \
                            cardbatch rejects export --run 7 --as-input --output fix-me.csv   \
                            # fix, then: cardbatch import cards fix-me.csv")]
    Export {
        #[command(flatten)]
        selection: RejectSelection,
        /// Write the rejected records exactly as they were in the input, in its
        /// format (CSV with its header, or JSON lines), ready to fix and import.
        #[arg(long, conflicts_with = "mask_card_numbers")]
        as_input: bool,
        /// Write to FILE (whole, once complete) instead of stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// A run's rejects grouped by reason and field, with a few examples of each.
    #[command(
        after_help = "Examples:\n  cardbatch rejects summary --run 7\n  cardbatch rejects summary --run 7 --json"
    )]
    Summary {
        #[command(flatten)]
        selection: RejectSelection,
        /// Print JSON on stdout (and an error as one JSON object there, same exit code).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Write events as JSON lines in id order (to stdout, or --output FILE).
    #[command(after_help = "Examples:\n  cardbatch events export\n  \
                            cardbatch events export --after 1200 --output events.jsonl")]
    Export {
        /// Only events with a larger id (a consumer's watermark: its last id).
        #[arg(long, value_name = "ID", default_value_t = 0)]
        after: i64,
        /// Write to FILE (whole, once complete) instead of stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create the database (or bring its schema up to date); nothing else is written.
    #[command(
        after_help = "Every command that writes creates the database on first use; the commands that \
                            only read never do.\n\nExamples:\n  cardbatch db init\n  \
                            DATABASE_URL=postgres://cardbatch@db/cards cardbatch db init"
    )]
    Init,
    /// On a Citus coordinator: apply the migrations and distribute every table by org_id, colocated.
    #[command(
        after_help = "Run once on an empty or migrated database of a Citus coordinator; run again, \
                            it changes nothing.\n\nExamples:\n  \
                            DATABASE_URL=postgres://cardbatch@coordinator/cards cardbatch db distribute"
    )]
    Distribute,
    /// On a Citus coordinator: say for each table whether it is distributed, reference or local.
    #[command(
        after_help = "Exit 0 when every table is placed as `db distribute` places it, 1 when one is \
                            not.\n\nExamples:\n  cardbatch db status\n  cardbatch db status --json"
    )]
    Status {
        /// Print the tables as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Print every configuration key with its value (defaults filled in).
    #[command(after_help = "Examples:\n  cardbatch org show")]
    Show,
    /// Set one key; an empty VALUE clears an optional key.
    #[command(after_help = "Examples:\n  cardbatch org set CONF_CARD_NUMBER_LENGTH 12\n  \
                            cardbatch org set CARD_STATUS_LABELS LOST:SUSPENDED\n  \
                            cardbatch org set CONF_CARD_NUMBER_PREFIX \"\"")]
    Set {
        /// The configuration key (see `org show` for the keys).
        key: String,
        /// Its new value.
        value: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SeriesCommand {
    /// Create a series from the API's JSON body (--json FILE, or - for stdin) or from flags.
    #[command(after_help = "Examples:\n  cardbatch series create --json series.json\n  \
                            cardbatch series create --code GOLD --type PHYSICAL --prefix 6001 --length 16 --method LUHN_ALGO\n  \
                            cardbatch series create --code ISO --type PHYSICAL --prefix 8001 --length 16 --method LUHN_ALGO \
                            --values-to-include-for-checksum-digit PREFIX")]
    Create(Box<SeriesCreateArgs>),
    /// List the org's series as JSON.
    #[command(after_help = "Examples:\n  cardbatch series list")]
    List,
}

#[derive(Debug, Args)]
pub struct SeriesCreateArgs {
    /// The request body as JSON (the seeds' POST /v2/card/series/ body); - reads stdin.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["code", "series_type", "name"])]
    pub json: Option<PathBuf>,
    /// The series code, unique in the org (letters and digits, at most 50).
    #[arg(long)]
    pub code: Option<String>,
    /// A display name.
    #[arg(long)]
    pub name: Option<String>,
    /// DIGITAL or PHYSICAL.
    #[arg(long = "type", value_name = "TYPE")]
    pub series_type: Option<String>,
    /// Days a card stays valid (not negative).
    #[arg(long, value_name = "DAYS", allow_negative_numbers = true)]
    pub expiry_days: Option<i64>,
    /// How many active cards of the series one customer may hold.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_active_cards_per_customer: Option<i64>,
    /// Characters every card number starts with (ASCII letters and digits).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Characters every card number ends with (ASCII letters and digits).
    #[arg(long)]
    pub suffix: Option<String>,
    /// The first counter value (default 1).
    #[arg(long, allow_negative_numbers = true)]
    pub offset: Option<i64>,
    /// Total card number length, prefix and suffix included (5 to 150).
    #[arg(long, allow_negative_numbers = true)]
    pub length: Option<i64>,
    /// DEFAULT, AUTO_INC, LUHN_ALGO, LUHNALGO, MOD7_ALGO, RANDOM, RANDOM_LUHN or RANDOM_MOD7.
    #[arg(long)]
    pub method: Option<String>,
    /// NONE (default: the check digit covers the digits after the prefix) or
    /// PREFIX (the prefix's digits too, as ISO/IEC 7812 card numbers need).
    #[arg(long, value_name = "NONE|PREFIX")]
    pub values_to_include_for_checksum_digit: Option<String>,
    /// Whether cards can be generated (defaults to true when a length is given).
    #[arg(long)]
    pub generation_enabled: Option<bool>,
    /// Whether the series takes new cards (default true).
    #[arg(long)]
    pub active: Option<bool>,
    /// SERIES_ID, OU_ID or REGISTRATION.
    #[arg(long)]
    pub trigger: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum CardsCommand {
    /// Generate up to 100000 cards of a series at once.
    #[command(
        after_help = "Examples:\n  cardbatch cards generate --series-code GOLD --count 100000\n  \
                            cardbatch cards generate --series-id 1 --count 500 --status-label IN_STOCK --output batch.csv"
    )]
    Generate(GenerateArgs),
    /// Write the cards a run created (a `cards generate` run: its --output file, again).
    #[command(after_help = "Examples:\n  cardbatch cards export --run 12 --output batch.csv")]
    Export {
        /// The run, as `cards generate` printed it.
        #[arg(long = "run", value_name = "ID")]
        run_id: i64,
        /// Write the CSV to FILE (whole, once complete) instead of stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Add one card from the API's JSON body (--json FILE, or - for stdin).
    #[command(after_help = "Examples:\n  cardbatch cards add --json card.json\n  \
                            echo '{\"seriesCode\":\"GOLD\",\"cardNumber\":\"6001000000000018\"}' | cardbatch cards add --json -")]
    Add {
        /// The request body (the API's POST /v2/card body); - reads stdin.
        #[arg(long, value_name = "FILE")]
        json: PathBuf,
    },
    /// Set the external ID of an existing card.
    #[command(
        after_help = "Examples:\n  cardbatch cards set-external-id --card-number 6001314611071254 --external-id CRM-000123"
    )]
    SetExternalId {
        /// The card's number.
        #[arg(long, value_name = "NUMBER")]
        card_number: String,
        /// The external ID to give it (the org's rules apply).
        #[arg(long, value_name = "ID")]
        external_id: String,
    },
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The series, by id.
    #[arg(
        long,
        value_name = "ID",
        conflicts_with = "series_code",
        required_unless_present = "series_code"
    )]
    pub series_id: Option<i64>,
    /// The series, by code.
    #[arg(long, value_name = "CODE")]
    pub series_code: Option<String>,
    /// How many cards, 1 to 100000 (checked by cardbatch: errors 3025 and 3026).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub count: Option<String>,
    /// Status of the new cards.
    #[arg(long, value_name = "LABEL", default_value = "NOT_ISSUED")]
    pub status_label: String,
    /// Write the numbers as CSV to FILE instead of JSON to stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write the run's count, duration and exit code as Prometheus metrics
    /// to FILE (whole, for node_exporter's textfile collector: FILE.prom).
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ExternalIdCommand {
    /// Generate one org-level external ID.
    #[command(after_help = "Examples:\n  cardbatch external-id generate\n  \
                            cardbatch external-id generate --source-account CRM")]
    Generate {
        /// The source account asking; it must be listed in SOURCE_ACCOUNTS_EXTERNALID_ENABLED.
        #[arg(long, value_name = "ACCOUNT")]
        source_account: Option<String>,
    },
}

impl Command {
    /// Whether the command only reads: it never creates a database, and on
    /// a SQLite path that does not exist (or a PostgreSQL database without
    /// cardbatch's tables) it stops with exit 2.
    pub fn only_reads(&self) -> bool {
        matches!(
            self,
            Command::Runs(_)
                | Command::Rejects(_)
                | Command::Report { .. }
                | Command::Events(_)
                | Command::Series(SeriesCommand::List)
                | Command::Org(OrgCommand::Show)
                | Command::Cards(CardsCommand::Export { .. })
                | Command::Db(DbCommand::Status { .. })
        )
    }

    /// Whether the command says in words on stderr that it created a
    /// database: imports and `db`. The others answer in the platform's JSON
    /// shape, on stderr too when they fail, which a line of words would break.
    pub fn tells_of_a_new_database(&self) -> bool {
        matches!(self, Command::Import(_) | Command::Db(_))
    }

    /// Whether the command's `--json` asks for JSON on stdout (results and errors).
    pub fn json_output(&self) -> bool {
        match self {
            Command::Import(ImportCommand::Cards(args) | ImportCommand::Customers(args))
            | Command::Import(ImportCommand::ExternalIds { args, .. }) => args.json,
            Command::Runs(RunsCommand::List { json, .. } | RunsCommand::Show { json, .. }) => *json,
            Command::Rejects(RejectsCommand::Summary { json, .. }) => *json,
            Command::Db(DbCommand::Status { json }) => *json,
            _ => false,
        }
    }
}

/// Whether a command line that does not parse still asks for JSON output:
/// clap reads it again ignoring its errors, and the deepest command given
/// has its `--json` output flag set (elsewhere `--json FILE` is a request
/// body, which does not count).
pub fn json_requested(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    let Ok(mut matches) = Cli::command().ignore_errors(true).try_get_matches_from(args) else {
        return false;
    };
    while let Some((_, sub)) = matches.remove_subcommand() {
        matches = sub;
    }
    matches.try_get_one::<bool>("json").ok().flatten() == Some(&true)
}

/// The end of `cardbatch --help`: examples, then the exit codes.
fn top_level_help() -> String {
    format!(
        "Examples:\n  cardbatch import cards sample_data/cards.csv\n  cardbatch runs list\n  \
         cardbatch rejects summary --run 1\n  cardbatch report --run 1 --output run1.html\n\n{}",
        crate::error::EXIT_CODES_HELP
    )
}

/// What `--max-rejects` says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxRejects {
    /// `none`: the run never stops for its rejects, not even at the wrong-file guard.
    Off,
    Limit(RejectLimit),
}

impl MaxRejects {
    /// The limit a run applies: the one given, none for `none`, and without
    /// the flag the wrong-file guard.
    pub fn applied(given: Option<MaxRejects>) -> Option<RejectLimit> {
        match given {
            None => Some(RejectLimit::WrongFile),
            Some(MaxRejects::Off) => None,
            Some(MaxRejects::Limit(limit)) => Some(limit),
        }
    }
}

/// `--color`: when output gets colour codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether a stream gets colour: always, never, or for `auto` when it is
    /// a terminal and `NO_COLOR` is unset or empty (<https://no-color.org>).
    pub fn enabled(self, terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => terminal && !no_color(),
        }
    }

    /// The choice a command line makes, read before clap parses it so that
    /// clap's own help and errors follow it (the last `--color` wins, as in
    /// clap; a value clap will refuse counts as `auto`).
    pub fn from_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> ColorChoice {
        let mut choice = ColorChoice::Auto;
        let mut args = args.into_iter().map(|arg| arg.to_string_lossy().into_owned());
        while let Some(arg) = args.next() {
            if arg == "--" {
                break;
            }
            let value = match arg.strip_prefix("--color") {
                Some("") => args.next(),
                Some(rest) => rest.strip_prefix('=').map(str::to_string),
                None => None,
            };
            if let Some(value) = value {
                choice = <ColorChoice as clap::ValueEnum>::from_str(&value, false).unwrap_or(ColorChoice::Auto);
            }
        }
        choice
    }

    /// The same choice in clap's terms, for its help and errors.
    pub fn for_clap(self) -> clap::ColorChoice {
        match self {
            ColorChoice::Always => clap::ColorChoice::Always,
            ColorChoice::Never => clap::ColorChoice::Never,
            ColorChoice::Auto if no_color() => clap::ColorChoice::Never,
            ColorChoice::Auto => clap::ColorChoice::Auto,
        }
    }
}

/// Whether `NO_COLOR` asks for no colour: set, and not empty.
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty())
}

/// The kinds a run can have, as `runs list` shows them.
pub const RUN_KINDS: [&str; 4] = ["import_cards", "import_external_ids", "import_customers", "generate"];

/// The statuses a run can have.
pub const RUN_STATUSES: [&str; 4] = ["running", "completed", "aborted", "interrupted"];

/// `--reason`: one of the stable reject codes (clap lists them when one is unknown).
fn reject_reasons() -> impl clap::builder::TypedValueParser<Value = crate::domain::RejectReason> {
    use clap::builder::TypedValueParser;
    PossibleValuesParser::new(crate::domain::RejectReason::ALL.map(|reason| reason.as_str()))
        .try_map(|code| code.parse::<crate::domain::RejectReason>())
}

/// `--field`: one of the fields a reject can name.
fn reject_fields() -> PossibleValuesParser {
    PossibleValuesParser::new(crate::import::columns::every_field())
}

/// `--max-rejects`: a count (`500`), a share of the records read (`2%`,
/// `0.5%`), or `none`.
fn parse_reject_limit(text: &str) -> Result<MaxRejects, String> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(MaxRejects::Off);
    }
    let limit = match text.strip_suffix('%') {
        Some(percent) => match percent.trim().parse::<f64>() {
            Ok(value) if (0.0..=100.0).contains(&value) => Ok(RejectLimit::Share(value / 100.0)),
            _ => Err(format!("{text:?} is not a share from 0% to 100%")),
        },
        None => text
            .parse::<u64>()
            .map(RejectLimit::Count)
            .map_err(|_| format!("{text:?} is not a count (500), a share (2%) or none")),
    }?;
    Ok(MaxRejects::Limit(limit))
}
