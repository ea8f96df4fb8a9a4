//! The progress display on stderr: committed records against the input's
//! estimated total, rejects, and an ETA from the commit rate. Shown only on
//! a terminal and without `--quiet`.
//!
//! The bar moves when a transaction commits (about once a second), never
//! when records are merely read: reading runs ahead of writing, and a bar of
//! bytes read reached 100% while rows were still being written. The total is
//! estimated from the records read per byte so far, and is exact at the end.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar that is a no-op when hidden.
pub struct Progress {
    bar: Option<ProgressBar>,
    total_bytes: u64,
}

impl Progress {
    /// A bar for an input of `total_bytes`, or nothing when it would not be seen.
    pub fn new(total_bytes: u64, quiet: bool) -> Self {
        if quiet || !std::io::stderr().is_terminal() {
            return Progress { bar: None, total_bytes };
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(4));
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{bar:30}] {pos}/{len} records committed ({percent}%), {msg}, ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message("0 rejects");
        bar.enable_steady_tick(Duration::from_millis(250));
        Progress {
            bar: Some(bar),
            total_bytes,
        }
    }

    /// After a batch: `read_through` records were read from `bytes_read`
    /// bytes of input (the estimate of the total), `committed` records have
    /// their verdicts committed, `rejected` of them rejected.
    pub fn update(&self, read_through: u64, bytes_read: u64, committed: u64, rejected: u64) {
        let Some(bar) = &self.bar else { return };
        let estimate = if bytes_read > 0 && self.total_bytes > 0 {
            (read_through as f64 * self.total_bytes as f64 / bytes_read as f64).round() as u64
        } else {
            read_through
        };
        bar.set_length(estimate.max(committed).max(1));
        bar.set_position(committed);
        bar.set_message(format!("{rejected} rejects"));
    }

    /// The run ended normally with every one of `records` committed: the
    /// bar shows 100% and stays.
    pub fn finish(&self, records: u64, rejected: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(records.max(1));
            bar.set_position(records.max(1));
            bar.set_message(format!("{rejected} rejects"));
            bar.finish();
        }
    }

    /// The run stopped early: leave the bar where it stopped.
    pub fn abandon(&self) {
        if let Some(bar) = &self.bar {
            bar.abandon();
        }
    }
}
