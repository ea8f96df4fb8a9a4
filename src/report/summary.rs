//! The run summary: what a scheduler reads to know how an import went.

use serde::Serialize;

use crate::import::reading::ReadingPlan;

/// The run summary (`--json` on stdout, `--summary FILE`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// The run; none for a dry run, which stores nothing and so is no run
    /// (its id would be the next real run's).
    pub run_id: Option<i64>,
    pub kind: String,
    pub input: String,
    pub database: String,
    /// How the input was read: format, encoding, dialect, mapping.
    pub reading: ReadingSummary,
    /// Records read from the input by this invocation, already-committed ones included.
    pub records_read: u64,
    pub inserted: u64,
    /// Records whose key was stored already with the same values: not
    /// written, no event, not a reject (a cumulative or re-sent file).
    pub unchanged: u64,
    pub rejected: u64,
    /// This invocation's rejects by reason.
    pub rejected_by_reason: serde_json::Map<String, serde_json::Value>,
    /// Records whose verdicts an earlier, interrupted invocation of the same run committed.
    pub already_committed: u64,
    pub events_emitted: u64,
    /// Records whose card number lost spaces or dashes (`--strip-separators`).
    pub separators_stripped: u64,
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
    pub unchanged: u64,
    pub rejected: u64,
}

/// The reading plan, with one line for a person first.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReadingSummary {
    pub description: String,
    #[serde(flatten)]
    pub plan: ReadingPlan,
}

impl Summary {
    /// `run 12`, or `the dry run`.
    pub fn run_name(&self) -> String {
        self.run_id
            .map_or_else(|| "the dry run".to_string(), |id| format!("run {id}"))
    }

    /// A few lines for a person at a terminal.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{}: {} of {}: {}\n  {}\n  records read {}, inserted {}, unchanged {}, rejected {}, already committed {}, events {}, {} ms\n",
            self.run_id
                .map_or_else(|| "dry run, nothing stored".to_string(), |id| format!("run {id}")),
            self.kind,
            self.input,
            self.status,
            self.reading.description,
            self.records_read,
            self.inserted,
            self.unchanged,
            self.rejected,
            self.already_committed,
            self.events_emitted,
            self.elapsed_ms
        );
        for (reason, count) in &self.rejected_by_reason {
            text.push_str(&format!("  {reason}: {count}\n"));
        }
        if self.separators_stripped > 0 {
            text.push_str(&format!(
                "  separators stripped from {} card number(s)\n",
                self.separators_stripped
            ));
        }
        text.push_str(&format!("  reject report: {}\n", self.reject_report));
        for warning in &self.warnings {
            text.push_str(&format!("  warning: {warning}\n"));
        }
        text
    }
}
