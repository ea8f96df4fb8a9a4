//! The run summary: what a scheduler reads to know how an import went.

use serde::Serialize;

/// The run summary (`--json` on stdout, `--summary FILE`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub run_id: i64,
    pub kind: String,
    pub input: String,
    pub database: String,
    /// Records read from the input by this invocation, already-committed ones included.
    pub records_read: u64,
    pub inserted: u64,
    pub rejected: u64,
    /// This invocation's rejects by reason.
    pub rejected_by_reason: serde_json::Map<String, serde_json::Value>,
    /// Records whose verdicts an earlier, interrupted invocation of the same run committed.
    pub already_committed: u64,
    pub events_emitted: u64,
    pub elapsed_ms: u64,
    /// `completed`, `aborted` or `dry_run`.
    pub status: String,
    pub reject_report: String,
    pub warnings: Vec<String>,
    /// The whole run's totals, across every invocation.
    pub run_totals: RunTotals,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RunTotals {
    pub inserted: u64,
    pub rejected: u64,
}

impl Summary {
    /// A few lines for a person at a terminal.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "run {}: {} of {}: {}\n  records read {}, inserted {}, rejected {}, already committed {}, events {}, {} ms\n",
            self.run_id,
            self.kind,
            self.input,
            self.status,
            self.records_read,
            self.inserted,
            self.rejected,
            self.already_committed,
            self.events_emitted,
            self.elapsed_ms
        );
        for (reason, count) in &self.rejected_by_reason {
            text.push_str(&format!("  {reason}: {count}\n"));
        }
        text.push_str(&format!("  reject report: {}\n", self.reject_report));
        for warning in &self.warnings {
            text.push_str(&format!("  warning: {warning}\n"));
        }
        text
    }
}
