//! The progress display on stderr: committed records against the input's
//! estimated total, rejects, and an ETA from the commit rate. Shown only on
//! a terminal and without `--quiet`.
//!
//! The bar moves when a transaction commits (about once a second), never
//! when records are merely read: reading runs ahead of writing, and a bar of
//! bytes read reached 100% while rows were still being written. The total is
//! estimated from the input's size and the bytes per record seen so far
//! (for gzip, from the compressed bytes read), and is exact at the end.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar that is a no-op when hidden.
pub struct Progress {
    bar: Option<ProgressBar>,
    total_bytes: u64,
    /// The input is gzip: its size says nothing about records directly.
    compressed: bool,
    /// Records seen in batches so far, and their bytes (a line end each included).
    records_seen: u64,
    record_bytes: u64,
}

/// The bar once the first batch gives an estimate of the total.
const BAR: &str = "{spinner:.green} [{elapsed_precise}] [{bar:30.cyan/blue}] {pos}/{len} records committed ({percent}%), {msg}, ETA {eta}";

impl Progress {
    /// A display for an input of `total_bytes` (as stored: compressed for
    /// gzip), or nothing when it would not be seen.
    pub fn new(total_bytes: u64, compressed: bool, quiet: bool) -> Self {
        let mut progress = Progress {
            bar: None,
            total_bytes,
            compressed,
            records_seen: 0,
            record_bytes: 0,
        };
        if quiet || !std::io::stderr().is_terminal() {
            return progress;
        }
        // Until the first batch is written there is nothing to count.
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
        let style = ProgressStyle::with_template("{spinner:.green} [{elapsed_precise}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_message("reading and judging the first records");
        bar.enable_steady_tick(Duration::from_millis(250));
        progress.bar = Some(bar);
        progress
    }

    /// After a batch of `records` records taking `raw_bytes` of input was
    /// written: `read_through` is its last record and `bytes_read` how much
    /// of the stored input was read by then; `committed` records have their
    /// verdicts committed, `rejected` of them rejected.
    pub fn update(&mut self, batch: BatchSize, bytes_read: u64, committed: u64, rejected: u64) {
        self.records_seen += batch.records;
        self.record_bytes += batch.raw_bytes + batch.records;
        let Some(bar) = &self.bar else { return };
        let estimate = if self.compressed && bytes_read > 0 {
            // Reading runs ahead of writing, so this errs low; it is exact at the end.
            (batch.read_through as f64 * self.total_bytes as f64 / bytes_read as f64).round() as u64
        } else if self.record_bytes > 0 {
            let per_record = self.record_bytes as f64 / self.records_seen as f64;
            (self.total_bytes as f64 / per_record).round() as u64
        } else {
            batch.read_through
        };
        if committed == 0 {
            // Nothing committed yet: no rate to give an ETA from.
            bar.set_message(format!(
                "{} records judged, about {estimate} in the input; waiting for the first commit",
                batch.read_through
            ));
            return;
        }
        show_counts(bar);
        bar.set_length(estimate.max(committed).max(batch.read_through).max(1));
        bar.set_position(committed);
        bar.set_message(format!("{rejected} rejects"));
    }

    /// The run ended normally with every one of `records` committed: the
    /// bar shows 100% and stays.
    pub fn finish(&self, records: u64, rejected: u64) {
        if let Some(bar) = &self.bar {
            show_counts(bar);
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

/// Switches the bar from the waiting message to the counts, once.
fn show_counts(bar: &ProgressBar) {
    if bar.length().is_none() {
        let style = ProgressStyle::with_template(BAR)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
    }
}

/// What a written batch tells the estimate.
#[derive(Debug, Clone, Copy)]
pub struct BatchSize {
    pub records: u64,
    /// The batch's records' raw bytes, line ends not counted.
    pub raw_bytes: u64,
    pub read_through: u64,
}
