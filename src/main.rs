//! The `cardbatch` binary: parse the command line, run it, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;

use cardbatch::cli::Cli;
use cardbatch::error::{CommandError, Exit};

fn main() -> ExitCode {
    keep_batch_buffers_out_of_the_heap();
    let cli = Cli::parse();
    init_logging(cli.quiet);
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
    match runtime.block_on(cardbatch::commands::run(cli)) {
        Ok(exit) => exit.into(),
        Err(error) => {
            report(&error);
            error.exit().into()
        }
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

/// Numbered API errors go to stderr in the seeds' JSON shape; the rest as
/// one line of text (each message is complete on its own).
fn report(error: &CommandError) {
    match error {
        CommandError::Api(api) => eprintln!("{}", api.to_json()),
        other => eprintln!("cardbatch: error: {other}"),
    }
}

/// Logs go to stderr. Without `RUST_LOG`, only cardbatch's own warnings
/// (errors with `--quiet`) are shown, never a library's log lines.
fn init_logging(quiet: bool) {
    let default = if quiet { "cardbatch=error" } else { "cardbatch=warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
