//! `--metrics FILE`: a run's counts, duration, exit code and end time in
//! Prometheus's text format, for node_exporter's textfile collector (which
//! reads `*.prom` files whole: the file is written beside its path and
//! renamed, so the collector never sees half of one). Every series is
//! labelled by kind and org, so that a dashboard can alert on a night with
//! a high reject rate, a failed run, or no run at all (a finish time that
//! stops moving).

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, SystemTime};

use crate::domain::RejectReason;
use crate::output::OutputFile;

/// What one invocation of an import or a generation reports.
#[derive(Debug, Clone)]
pub struct RunMetrics {
    /// `import_cards`, ..., `generate`.
    pub kind: String,
    pub org_id: i64,
    /// The run; none for a dry run, or when the command failed before it had one.
    pub run_id: Option<i64>,
    /// Records by outcome (`read`, `inserted`, `unchanged`, `rejected`, ...);
    /// empty when the command failed before it counted any.
    pub records: Vec<(&'static str, u64)>,
    /// The invocation's rejects by reason; every reason is listed for an
    /// import (0 where none), so that an alert's series never vanishes.
    pub rejects_by_reason: Vec<(RejectReason, u64)>,
    /// Rejected records of the whole run over its records read, when it read any.
    pub reject_ratio: Option<f64>,
    pub duration: Duration,
    pub exit_code: u8,
    pub finished: SystemTime,
}

/// A label value as the text format quotes it.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl RunMetrics {
    /// Every reason with the invocation's count (0 where none): an import's `rejects_by_reason`.
    pub fn every_reason(counts: impl Fn(RejectReason) -> u64) -> Vec<(RejectReason, u64)> {
        RejectReason::ALL
            .into_iter()
            .map(|reason| (reason, counts(reason)))
            .collect()
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let labels = format!("kind=\"{}\",org=\"{}\"", label(&self.kind), self.org_id);
        let mut text = String::new();
        let mut family = |name: &str, help: &str, samples: Vec<(String, String)>| {
            if samples.is_empty() {
                return;
            }
            let _ = writeln!(text, "# HELP cardbatch_{name} {help}\n# TYPE cardbatch_{name} gauge");
            for (extra, value) in samples {
                let _ = writeln!(text, "cardbatch_{name}{{{labels}{extra}}} {value}");
            }
        };
        family(
            "run_records",
            "Records of the last invocation by outcome (read counts records an earlier invocation committed).",
            self.records
                .iter()
                .map(|(outcome, n)| (format!(",outcome=\"{outcome}\""), n.to_string()))
                .collect(),
        );
        family(
            "run_rejects",
            "Records the last invocation rejected, by reason.",
            self.rejects_by_reason
                .iter()
                .map(|(reason, n)| (format!(",reason=\"{reason}\""), n.to_string()))
                .collect(),
        );
        family(
            "run_reject_ratio",
            "Rejected records of the whole run over the records it read (0 to 1).",
            self.reject_ratio
                .map(|ratio| (String::new(), format!("{ratio}")))
                .into_iter()
                .collect(),
        );
        family(
            "run_id",
            "The run the last invocation wrote.",
            self.run_id
                .map(|id| (String::new(), id.to_string()))
                .into_iter()
                .collect(),
        );
        family(
            "run_duration_seconds",
            "How long the last invocation took.",
            vec![(String::new(), format!("{:.3}", self.duration.as_secs_f64()))],
        );
        family(
            "run_exit_code",
            "The exit code of the last invocation (0 completed, 4 with rejects, 3 stopped, 1 failed, 2 usage).",
            vec![(String::new(), self.exit_code.to_string())],
        );
        let finished = self
            .finished
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        family(
            "run_finished_timestamp_seconds",
            "When the last invocation ended, in seconds since the Unix epoch.",
            vec![(String::new(), format!("{finished:.3}"))],
        );
        text
    }

    /// Writes the file whole (a temporary file beside it, renamed).
    pub fn write(&self, file: &OutputFile) -> std::io::Result<()> {
        let mut out = file.create()?;
        out.write_all(self.render().as_bytes())?;
        out.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_labels_every_series_by_kind_and_org() {
        let metrics = RunMetrics {
            kind: "import_cards".into(),
            org_id: 7,
            run_id: Some(12),
            records: vec![("read", 100), ("rejected", 3)],
            rejects_by_reason: vec![(RejectReason::ChecksumInvalid, 3)],
            reject_ratio: Some(0.03),
            duration: Duration::from_millis(1500),
            exit_code: 4,
            finished: SystemTime::UNIX_EPOCH + Duration::from_secs(1_765_000_000),
        };
        let text = metrics.render();
        assert!(text.contains("# TYPE cardbatch_run_records gauge\n"), "{text}");
        assert!(text.contains("cardbatch_run_records{kind=\"import_cards\",org=\"7\",outcome=\"read\"} 100\n"));
        assert!(
            text.contains("cardbatch_run_rejects{kind=\"import_cards\",org=\"7\",reason=\"CHECKSUM_INVALID\"} 3\n")
        );
        assert!(text.contains("cardbatch_run_reject_ratio{kind=\"import_cards\",org=\"7\"} 0.03\n"));
        assert!(text.contains("cardbatch_run_duration_seconds{kind=\"import_cards\",org=\"7\"} 1.500\n"));
        assert!(text.contains("cardbatch_run_exit_code{kind=\"import_cards\",org=\"7\"} 4\n"));
        assert!(
            text.contains("cardbatch_run_finished_timestamp_seconds{kind=\"import_cards\",org=\"7\"} 1765000000.000\n")
        );
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
