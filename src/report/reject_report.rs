//! The reject report: CSV with `line,record,reason,field,message,raw`, safe to
//! open in a spreadsheet (a cell starting with `=`, `+`, `-`, `@`, tab or
//! carriage return is prefixed with `'` so it is never taken as a formula).

use std::borrow::Cow;
use std::io::Write;

use super::mask::CardMask;
use crate::batch::RejectRow;
use crate::domain::RejectReason;
use crate::store::{RejectPages, StoreError};

/// Rejects read back per query.
const PAGE: u32 = 10_000;

/// Why a reject report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Write(#[from] std::io::Error),
}

impl From<csv::Error> for ReportError {
    fn from(error: csv::Error) -> Self {
        ReportError::Write(error.into())
    }
}

/// Which of a run's rejects to take (`rejects export --reason/--field`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RejectFilter {
    pub reason: Option<RejectReason>,
    pub field: Option<String>,
}

impl RejectFilter {
    pub fn matches(&self, row: &RejectRow) -> bool {
        self.reason.is_none_or(|reason| reason == row.reason)
            && self.field.as_ref().is_none_or(|field| *field == row.field)
    }
}

/// Calls `each` with every reject of the run that `filter` takes, in record
/// order, reading them page by page so that memory stays flat however many
/// rejects the run has.
pub async fn for_each_reject(
    pages: &mut dyn RejectPages,
    filter: &RejectFilter,
    mut each: impl FnMut(&RejectRow) -> std::io::Result<()>,
) -> Result<(), ReportError> {
    let mut after = 0;
    loop {
        let page = pages.reject_page(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.record;
        for row in page.iter().filter(|row| filter.matches(row)) {
            each(row)?;
        }
    }
    Ok(())
}

/// Writes the run's rejects that `filter` takes as the report to `out`
/// (flushed), their card numbers masked with `mask`.
pub async fn write_reject_report<W: Write>(
    pages: &mut dyn RejectPages,
    filter: &RejectFilter,
    mask: Option<&CardMask>,
    out: W,
) -> Result<W, ReportError> {
    let mut writer = RejectReportWriter::new(out)?;
    for_each_reject(pages, filter, |row| match mask {
        Some(mask) => writer.write(&mask.row(row)).map_err(Into::into),
        None => writer.write(row).map_err(Into::into),
    })
    .await?;
    Ok(writer.finish()?)
}

/// The report's header, in SPEC order.
pub const HEADER: [&str; 6] = ["line", "record", "reason", "field", "message", "raw"];

/// Writes reject rows as the spreadsheet-safe CSV report.
pub struct RejectReportWriter<W: Write> {
    writer: csv::Writer<W>,
}

impl<W: Write> RejectReportWriter<W> {
    pub fn new(out: W) -> csv::Result<Self> {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(out);
        writer.write_record(HEADER)?;
        Ok(RejectReportWriter { writer })
    }

    pub fn write(&mut self, row: &RejectRow) -> csv::Result<()> {
        let line = row.line.to_string();
        let record = row.record.to_string();
        self.writer.write_record([
            line.as_str(),
            record.as_str(),
            row.reason.as_str(),
            &neutralise(&row.field),
            &neutralise(&row.message),
            &neutralise(&row.raw),
        ])
    }

    pub fn finish(mut self) -> std::io::Result<W> {
        self.writer.flush()?;
        self.writer.into_inner().map_err(|e| e.into_error())
    }
}

/// Prefixes a cell a spreadsheet would read as a formula with `'`.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised() {
        for cell in ["=SUM(A1)", "+1", "-1", "@cmd", "\tx", "\rx"] {
            assert_eq!(neutralise(cell), format!("'{cell}"));
        }
        assert_eq!(neutralise("6001"), "6001");
        assert_eq!(neutralise(""), "");
    }

    #[test]
    fn report_rows() {
        let mut writer = RejectReportWriter::new(Vec::new()).unwrap();
        writer
            .write(&RejectRow {
                record: 2,
                line: 3,
                reason: RejectReason::ChecksumInvalid,
                field: "card_number".into(),
                message: "bad, very".into(),
                raw: "=HYPERLINK(\"x\"),S1".into(),
            })
            .unwrap();
        let text = String::from_utf8(writer.finish().unwrap()).unwrap();
        assert_eq!(
            text,
            "line,record,reason,field,message,raw\r\n3,2,CHECKSUM_INVALID,card_number,\"bad, very\",\"'=HYPERLINK(\"\"x\"\"),S1\"\r\n"
        );
    }
}
