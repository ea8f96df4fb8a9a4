//! The `cardbatch` binary: parse the command line, run it, map the result to an exit code.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use cardbatch::cli::{Cli, ColorChoice};
use cardbatch::error::{CommandError, Exit};

fn main() -> ExitCode {
    keep_batch_buffers_out_of_the_heap();
    let color = ColorChoice::from_args(std::env::args_os());
    let parsed = Cli::command()
        .color(color.for_clap())
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(error) => return bad_command_line(error),
    };
    let stderr_color = cli.color.enabled(std::io::stderr().is_terminal());
    // The progress bar draws through `console`, which knows nothing of NO_COLOR.
    console::set_colors_enabled_stderr(stderr_color);
    init_logging(cli.quiet, stderr_color);
    // Named threads, so that a profile tells the stages apart.
    let _ = rayon::ThreadPoolBuilder::new()
        .thread_name(|index| format!("cardbatch-cpu-{index}"))
        .build_global();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .thread_name("cardbatch-async")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cardbatch: cannot start the async runtime: {error}");
            return Exit::Failed.into();
        }
    };
    let json = cli.command.json_output();
    match runtime.block_on(cardbatch::commands::run(cli)) {
        Ok(exit) => exit.into(),
        Err(error) => {
            report(&error, json);
            error.exit().into()
        }
    }
}

/// A command line clap refused (or `--help`, `--version`): with `--json`
/// anywhere on it, a usage error is one JSON object on stdout (exit 2).
fn bad_command_line(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let wants_json = cardbatch::cli::json_requested(std::env::args_os());
    let informational = matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
        || error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand;
    if wants_json && !informational {
        let message = error.render().to_string();
        let first_line = message.lines().next().unwrap_or_default().trim_start_matches("error: ");
        report(&CommandError::Usage(first_line.to_string()), true);
        return Exit::Usage.into();
    }
    let _ = error.print();
    if error.use_stderr() {
        Exit::Usage.into()
    } else {
        Exit::Completed.into()
    }
}

/// Makes glibc serve every allocation of 1 MiB or more (a batch's records
/// and rows) with its own mapping, returned to the kernel when freed. By
/// default glibc raises that threshold once such a block is freed and then
/// carves batch buffers out of the heap between SQLite's long-lived cache
/// pages: a 3M-row import's RSS crept from 94 to 134 MiB. With 1 MiB it
/// peaks at 120 MiB at the same speed (128 KiB: 117 MiB, but validation
/// alone runs at half speed, faulting in every mid-sized buffer).
fn keep_batch_buffers_out_of_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a malloc tuning parameter; it is called
    // before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}

/// With `--json`, every error is one JSON object on stdout in the platform's
/// shape. Otherwise numbered API errors go to stderr in that shape and the
/// rest as one line of text (each message is complete on its own). A closed
/// stdout is not reported at all.
fn report(error: &CommandError, json: bool) {
    match error {
        CommandError::ClosedPipe => {}
        _ if json => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", error.to_json()).and_then(|()| out.flush());
        }
        CommandError::Api(api) => eprintln!("{}", api.to_json()),
        other => eprintln!("cardbatch: error: {other}"),
    }
}

/// Logs go to stderr. Without `RUST_LOG`, only cardbatch's own warnings
/// (errors with `--quiet`) are shown, never a library's log lines.
fn init_logging(quiet: bool, color: bool) {
    let default = if quiet { "cardbatch=error" } else { "cardbatch=warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour codes only where a person reads them (`--color`, NO_COLOR): a
    // log written to a file stays plain text.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .init();
}
