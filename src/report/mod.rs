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
