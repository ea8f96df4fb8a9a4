//! The queries behind cumulative files (see `import::cumulative`), written
//! once for both stores: which completed runs a longer input may take its
//! opening verdicts from, and the org's last event id a new run starts from.

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::decode::{self, StoredRow};
use super::{FOREIGN_EVENTS_SINCE, MALFORMED_REJECTS, PrefixRun, StoreError, shared_queries};
use crate::batch::ImportKind;

/// What a new input offers an earlier run's verdicts: its kind, how long its
/// content is, how it is read, and the context its verdicts would be judged in.
#[derive(Debug, Clone, Copy)]
pub struct PrefixQuery<'a> {
    pub kind: ImportKind,
    pub content_bytes: u64,
    pub reading_plan: &'a str,
    pub context_hash: &'a str,
}

/// The org's last event id (0 when it has none).
pub(crate) async fn last_event_id<DB>(pool: &Pool<DB>, org_id: i64) -> Result<i64, StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB> + for<'r> Decode<'r, DB>,
    (i64,): for<'r> FromRow<'r, DB::Row>,
{
    Ok(shared_queries::last_event_id(org_id)
        .fetch_optional(pool)
        .await?
        .unwrap_or(0))
}

/// The org's completed runs whose verdicts `query`'s input could take for
/// its opening records, longest first (see [`super::Store::prefix_runs`]).
pub(crate) async fn prefix_runs<DB>(
    pool: &Pool<DB>,
    org_id: i64,
    query: &PrefixQuery<'_>,
) -> Result<Vec<PrefixRun>, StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB> + for<'r> Decode<'r, DB>,
    for<'a> &'a str: Encode<'a, DB> + Type<DB> + ColumnIndex<DB::Row>,
    (i64,): for<'r> FromRow<'r, DB::Row>,
    DB::Row: StoredRow,
{
    let rows = shared_queries::prefix_candidates(
        org_id,
        query.kind.as_str(),
        query.content_bytes,
        query.reading_plan,
        query.context_hash,
    )
    .fetch_all(pool)
    .await?;
    let mut eligible = Vec::new();
    for row in &rows {
        let run = decode::prefix_run(row)?;
        let changed: i64 = shared_queries::count(FOREIGN_EVENTS_SINCE, org_id, &[run.started_event_id, run.run_id])
            .fetch_one(pool)
            .await?;
        let malformed: i64 = shared_queries::count(MALFORMED_REJECTS, org_id, &[run.run_id])
            .fetch_one(pool)
            .await?;
        if changed == 0 && malformed == 0 {
            eligible.push(run);
        }
    }
    Ok(eligible)
}
