//! A batch's plan once its rows are judged: every reject in record order,
//! and the `--max-rejects` cut, shared by both stores.

use crate::batch::ValidBatch;
use crate::domain::Rejection;

/// The rejections among `verdicts`, paired with their rows' record numbers.
pub fn database_rejects(records: impl Iterator<Item = u64>, verdicts: &[Option<Rejection>]) -> Vec<(u64, Rejection)> {
    records
        .zip(verdicts)
        .filter_map(|(record, verdict)| verdict.clone().map(|r| (record, r)))
        .collect()
}

/// The rows that passed the database checks and lie before the budget cut.
pub fn accepted<'r, T>(
    rows: &'r [T],
    verdicts: &[Option<Rejection>],
    plan: &BatchPlan,
    record: impl Fn(&T) -> u64,
) -> Vec<&'r T> {
    rows.iter()
        .zip(verdicts)
        .filter(|(row, verdict)| verdict.is_none() && record(row) < plan.accept_below)
        .map(|(row, _)| row)
        .collect()
}

/// The verdicts of a batch after the database checks, cut at `--max-rejects`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchPlan {
    /// Every reject to store, in record order.
    pub rejects: Vec<(u64, Rejection)>,
    /// Rows are accepted only below this record (exclusive); the checkpoint is `through`.
    pub accept_below: u64,
    pub through: u64,
    pub stopped_at: Option<u64>,
}

/// Merges validation and database rejects in record order and applies the
/// reject budget: when the run's `budget` (rejects still allowed) is exceeded,
/// the batch stops at the reject that exceeded it.
pub fn plan_batch(batch: &ValidBatch, database_rejects: Vec<(u64, Rejection)>, budget: Option<u64>) -> BatchPlan {
    let mut rejects: Vec<(u64, Rejection)> = batch.rejects.iter().cloned().chain(database_rejects).collect();
    rejects.sort_by_key(|(record, _)| *record);
    let last = batch.last_record();
    match budget {
        Some(budget) if rejects.len() as u64 > budget => {
            let stop = rejects[budget as usize].0;
            rejects.truncate(budget as usize + 1);
            BatchPlan {
                rejects,
                accept_below: stop,
                through: stop,
                stopped_at: Some(stop),
            }
        }
        _ => BatchPlan {
            rejects,
            accept_below: last + 1,
            through: last,
            stopped_at: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{Rows, SourceInfo};
    use crate::domain::RejectReason;

    fn batch(first: u64, count: usize, rejects: Vec<(u64, Rejection)>) -> ValidBatch {
        ValidBatch {
            first_record: first,
            sources: (0..count)
                .map(|i| SourceInfo {
                    line: first + i as u64 + 1,
                    raw: 0..0,
                })
                .collect(),
            raw_text: String::new(),
            rows: Rows::Cards(Vec::new()),
            rejects,
        }
    }

    fn missing(record: u64) -> (u64, Rejection) {
        (
            record,
            Rejection::new(RejectReason::MissingField, "card_number", "missing"),
        )
    }

    #[test]
    fn budget_cuts_at_the_reject_that_exceeds_it() {
        let b = batch(11, 10, vec![missing(12), missing(15), missing(19)]);
        let unlimited = plan_batch(&b, vec![missing(13)], None);
        assert_eq!(
            unlimited.rejects.iter().map(|r| r.0).collect::<Vec<_>>(),
            [12, 13, 15, 19]
        );
        assert_eq!(
            (unlimited.accept_below, unlimited.through, unlimited.stopped_at),
            (21, 20, None)
        );
        let cut = plan_batch(&b, vec![missing(13)], Some(2));
        assert_eq!(cut.rejects.iter().map(|r| r.0).collect::<Vec<_>>(), [12, 13, 15]);
        assert_eq!((cut.accept_below, cut.through, cut.stopped_at), (15, 15, Some(15)));
        let exact = plan_batch(&b, vec![], Some(3));
        assert_eq!(exact.stopped_at, None);
    }
}
