//! What cardbatch reports: the reject report, the run summary, and the
//! events export. All of them are written from the database.

pub mod events;
pub mod reject_report;
pub mod summary;

pub use reject_report::{RejectReportWriter, ReportError, write_reject_report};
pub use summary::{RunTotals, Summary};
