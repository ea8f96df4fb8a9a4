//! What cardbatch reports: the reject report, the run summary, the review
//! of a run's rejects (grouped, as input again, as an HTML page), and the
//! events export. All of them are written from the database.

pub mod events;
pub mod html;
pub mod mask;
pub mod metrics;
pub mod reject_report;
pub mod review;
pub mod summary;

pub use reject_report::{RejectFilter, RejectReportWriter, ReportError, for_each_reject, write_reject_report};
pub use summary::{ReadingSummary, RunTotals, Summary};

/// How a run read its input, in words (`reading CSV, delimiter ';'
/// (detected), encoding windows-1252, ...`); `None` for a run stored before
/// plans were kept, or one that read no input.
pub fn reading_of(run: &crate::store::RunInfo) -> Option<String> {
    use crate::batch::Format;
    let plan = run.reading_plan.as_deref()?;
    let format = run
        .input_format
        .as_deref()
        .and_then(Format::parse)
        .unwrap_or(Format::Csv);
    Some(crate::import::reading::ReadingPlan::from_stored(Some(plan), format).describe())
}
