//! The progress display on stderr: bytes, records per second, rejects and
//! ETA. Shown only on a terminal and without `--quiet`.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar that is a no-op when hidden.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar over `total_bytes` of input, or nothing when it would not be seen.
    pub fn new(total_bytes: u64, quiet: bool) -> Self {
        if quiet || !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr_with_hz(4));
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{bar:30}] {bytes}/{total_bytes} {msg} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(250));
        Progress { bar: Some(bar) }
    }

    /// Updates the position and the records/rejects counters.
    pub fn update(&self, bytes: u64, records: u64, rejects: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(bytes);
            let elapsed = bar.elapsed().as_secs_f64().max(0.001);
            bar.set_message(format!(
                "{records} records ({:.0}/s), {rejects} rejects",
                records as f64 / elapsed
            ));
        }
    }

    /// The run ended normally.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// The run stopped early: leave the bar where it stopped.
    pub fn abandon(&self) {
        if let Some(bar) = &self.bar {
            bar.abandon();
        }
    }
}
