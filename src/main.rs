//! The `cardbatch` binary: parse the command line, run it, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;

use cardbatch::cli::Cli;
use cardbatch::error::{CommandError, Exit};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cardbatch: cannot start the async runtime: {error}");
            return Exit::Fatal.into();
        }
    };
    match runtime.block_on(cardbatch::commands::run(cli)) {
        Ok(exit) => exit.into(),
        Err(error) => {
            report(&error);
            error.exit().into()
        }
    }
}

/// Numbered API errors go to stderr in the seeds' JSON shape; the rest as text.
fn report(error: &CommandError) {
    match error {
        CommandError::Api(api) => eprintln!("{}", api.to_json()),
        CommandError::Fatal(fatal) => eprintln!("cardbatch: error: {fatal:#}"),
        other => eprintln!("cardbatch: error: {other}"),
    }
}

fn init_logging(quiet: bool) {
    let default = if quiet { "error" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
