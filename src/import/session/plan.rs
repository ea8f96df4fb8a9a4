//! A batch's plan once its rows are judged: every reject in record order,
//! and the `--max-rejects` cut, shared by both stores.

use super::judge::Verdict;
use crate::batch::ValidBatch;
use crate::domain::Rejection;

/// The rejections among `verdicts`, paired with their rows' record numbers.
pub fn database_rejects(records: impl Iterator<Item = u64>, verdicts: &[Verdict]) -> Vec<(u64, Rejection)> {
    records
        .zip(verdicts)
        .filter_map(|(record, verdict)| verdict.rejection().map(|r| (record, r.clone())))
        .collect()
}

/// The rows that passed the database checks and lie before the budget cut.
pub fn accepted<'r, T>(
    rows: &'r [T],
    verdicts: &[Verdict],
    plan: &BatchPlan,
    record: impl Fn(&T) -> u64,
) -> Vec<&'r T> {
    rows.iter()
        .zip(verdicts)
        .filter(|(row, verdict)| verdict.is_accepted() && record(row) < plan.accept_below)
        .map(|(row, _)| row)
        .collect()
}

/// How many rows are unchanged (stored already with the same values) before the budget cut.
pub fn unchanged<T>(rows: &[T], verdicts: &[Verdict], plan: &BatchPlan, record: impl Fn(&T) -> u64) -> u64 {
    rows.iter()
        .zip(verdicts)
        .filter(|(row, verdict)| **verdict == Verdict::Unchanged && record(row) < plan.accept_below)
        .count() as u64
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

/// `--max-rejects`: how many rejects a run may have before it stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RejectLimit {
    /// At most this many rejects in the whole run.
    Count(u64),
    /// Rejects at most this share (0 to 1) of the records read so far,
    /// judged from record [`SHARE_JUDGED_FROM`] on.
    Share(f64),
    /// The default wrong-file guard: the run stops at record
    /// [`WRONG_FILE_RECORDS`] when every record through it was rejected (the
    /// wrong file, or the wrong org); a shorter input is judged whole.
    WrongFile,
}

/// The records the wrong-file guard judges: the run's first thousand.
pub const WRONG_FILE_RECORDS: u64 = 1_000;

impl RejectLimit {
    /// Whether the limit can still stop a batch that starts at `first_record`:
    /// the guard judges only the run's first [`WRONG_FILE_RECORDS`] records.
    pub fn judges(&self, first_record: u64) -> bool {
        !matches!(self, RejectLimit::WrongFile) || first_record <= WRONG_FILE_RECORDS
    }
}

/// A share limit is first judged at this record: a handful of bad rows at
/// the top of a file must not stop it.
pub const SHARE_JUDGED_FROM: u64 = 1_000;

/// A reject limit and the run's rejects before this batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub limit: RejectLimit,
    pub rejected_before: u64,
}

impl Budget {
    /// The record at which the run stops, given this batch's rejects in
    /// record order (`first..=last` are the batch's records): for a count,
    /// the reject that exceeds it; for a share, the first record from
    /// [`SHARE_JUDGED_FROM`] on at which the run's rejects so far pass the
    /// share of the records so far.
    fn stop(&self, rejects: &[(u64, Rejection)], first: u64, last: u64) -> Option<u64> {
        match self.limit {
            RejectLimit::Count(max) => {
                let allowed = max.saturating_sub(self.rejected_before);
                rejects.get(allowed as usize).map(|(record, _)| *record)
            }
            RejectLimit::Share(share) => {
                let over =
                    |record: u64, count: u64| record >= SHARE_JUDGED_FROM && count as f64 > share * record as f64;
                // Between rejects the share only falls, so it is judged at each
                // reject and at the first judged record.
                let threshold = SHARE_JUDGED_FROM.max(first);
                let mut threshold_pending = threshold <= last;
                let mut count = self.rejected_before;
                for (record, _) in rejects {
                    if threshold_pending && threshold < *record {
                        if over(threshold, count) {
                            return Some(threshold);
                        }
                        threshold_pending = false;
                    }
                    count += 1;
                    if over(*record, count) {
                        return Some(*record);
                    }
                }
                (threshold_pending && over(threshold, count)).then_some(threshold)
            }
            RejectLimit::WrongFile => {
                if !(first..=last).contains(&WRONG_FILE_RECORDS) {
                    return None;
                }
                let judged = rejects
                    .iter()
                    .filter(|(record, _)| *record <= WRONG_FILE_RECORDS)
                    .count() as u64;
                (self.rejected_before + judged == WRONG_FILE_RECORDS).then_some(WRONG_FILE_RECORDS)
            }
        }
    }
}

/// Merges validation and database rejects in record order and applies the
/// reject budget: when it is exceeded, the batch stops at the record where
/// it was (that record's verdict stands; records after it are not judged).
pub fn plan_batch(batch: &ValidBatch, database_rejects: Vec<(u64, Rejection)>, budget: Option<Budget>) -> BatchPlan {
    let mut rejects: Vec<(u64, Rejection)> = batch.rejects.iter().cloned().chain(database_rejects).collect();
    rejects.sort_by_key(|(record, _)| *record);
    let last = batch.last_record();
    match budget.and_then(|budget| budget.stop(&rejects, batch.first_record, last)) {
        Some(stop) => {
            rejects.retain(|(record, _)| *record <= stop);
            BatchPlan {
                rejects,
                accept_below: stop + 1,
                through: stop,
                stopped_at: Some(stop),
            }
        }
        None => BatchPlan {
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
            separators_stripped: 0,
        }
    }

    fn missing(record: u64) -> (u64, Rejection) {
        (
            record,
            Rejection::new(RejectReason::MissingField, "card_number", "missing"),
        )
    }

    fn count(max: u64, rejected_before: u64) -> Option<Budget> {
        Some(Budget {
            limit: RejectLimit::Count(max),
            rejected_before,
        })
    }

    fn share(share: f64, rejected_before: u64) -> Option<Budget> {
        Some(Budget {
            limit: RejectLimit::Share(share),
            rejected_before,
        })
    }

    fn records(plan: &BatchPlan) -> Vec<u64> {
        plan.rejects.iter().map(|r| r.0).collect()
    }

    #[test]
    fn budget_cuts_at_the_reject_that_exceeds_it() {
        let b = batch(11, 10, vec![missing(12), missing(15), missing(19)]);
        let unlimited = plan_batch(&b, vec![missing(13)], None);
        assert_eq!(records(&unlimited), [12, 13, 15, 19]);
        assert_eq!(
            (unlimited.accept_below, unlimited.through, unlimited.stopped_at),
            (21, 20, None)
        );
        let cut = plan_batch(&b, vec![missing(13)], count(2, 0));
        assert_eq!(records(&cut), [12, 13, 15]);
        assert_eq!((cut.accept_below, cut.through, cut.stopped_at), (16, 15, Some(15)));
        assert_eq!(plan_batch(&b, vec![], count(3, 0)).stopped_at, None);
        // Rejects of earlier batches count.
        assert_eq!(plan_batch(&b, vec![], count(3, 1)).stopped_at, Some(19));
    }

    #[test]
    fn a_share_is_judged_from_record_1000_on() {
        // 30 rejects in the first 990 records: 3%, but not judged yet.
        let early = batch(991, 20, vec![missing(995)]);
        // At record 1000: 31 of 1000 passes 2%: the run stops there.
        let plan = plan_batch(&early, vec![], share(0.02, 30));
        assert_eq!(
            (plan.stopped_at, plan.accept_below, records(&plan)),
            (Some(1000), 1001, vec![995])
        );
        // 3%: not passed at record 1000 (29 of 1000) nor at 1005 (30 of 1005), passed at 1008 (31 of 1008).
        let later = batch(991, 20, vec![missing(995), missing(1005), missing(1008)]);
        assert_eq!(plan_batch(&later, vec![], share(0.03, 28)).stopped_at, Some(1008));
        // Exactly at the share is not past it.
        let exact = batch(1001, 100, vec![missing(1100)]);
        assert_eq!(plan_batch(&exact, vec![], share(0.01, 10)).stopped_at, None);
        // Past record 1000 the share is judged at every reject, with the run's earlier rejects.
        let past = batch(5001, 100, vec![missing(5050)]);
        assert_eq!(plan_batch(&past, vec![], share(0.01, 50)).stopped_at, Some(5050));
        assert_eq!(plan_batch(&past, vec![], share(0.01, 49)).stopped_at, None);
    }

    #[test]
    fn the_guard_stops_only_when_every_one_of_the_first_thousand_is_rejected() {
        let guard = |rejected_before| {
            Some(Budget {
                limit: RejectLimit::WrongFile,
                rejected_before,
            })
        };
        let all = |first: u64, count: u64| (first..first + count).map(missing).collect::<Vec<_>>();
        // All of records 1 to 1000 rejected, in one batch of 2000: stopped at 1000.
        let whole = plan_batch(&batch(1, 2000, all(1, 2000)), vec![], guard(0));
        assert_eq!(
            (whole.stopped_at, whole.accept_below, whole.rejects.len()),
            (Some(1000), 1001, 1000)
        );
        // One record of the thousand passes (a database reject counts as a reject): no stop.
        let mut one_good = all(1, 2000);
        one_good.remove(499);
        assert_eq!(
            plan_batch(&batch(1, 2000, one_good.clone()), vec![], guard(0)).stopped_at,
            None
        );
        assert_eq!(
            plan_batch(&batch(1, 2000, one_good), vec![missing(500)], guard(0)).stopped_at,
            Some(1000)
        );
        // Earlier batches' rejects count; a batch past the thousand is never stopped.
        assert_eq!(
            plan_batch(&batch(901, 200, all(901, 200)), vec![], guard(900)).stopped_at,
            Some(1000)
        );
        assert_eq!(
            plan_batch(&batch(901, 200, all(901, 200)), vec![], guard(899)).stopped_at,
            None
        );
        assert_eq!(
            plan_batch(&batch(1001, 100, all(1001, 100)), vec![], guard(1000)).stopped_at,
            None
        );
        assert!(!RejectLimit::WrongFile.judges(1001) && RejectLimit::WrongFile.judges(1000));
        // A shorter input is judged whole.
        assert_eq!(
            plan_batch(&batch(1, 999, all(1, 999)), vec![], guard(0)).stopped_at,
            None
        );
    }
}
