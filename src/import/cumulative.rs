//! Cumulative files: a nightly file that holds yesterday's records and then
//! today's. When a new input's content opens with the whole content of a
//! completed earlier run (same org, kind and reading plan), and nothing
//! that run's verdicts depended on has changed since it began, the new run
//! takes those verdicts for its opening records without reading a card:
//! what the earlier run inserted or found unchanged is `unchanged` now,
//! what it rejected is rejected again with the same reasons (its rejects
//! are copied), and the import goes on from the first new record.
//!
//! "Nothing changed" is checked, not assumed:
//! - every change to cards or customers cardbatch makes writes an event, so
//!   the org may have no event since the earlier run began but its own;
//! - the org's configuration, its series and the release are hashed into
//!   the run's context, which must be the same;
//! - the earlier run read every record whole (no `MALFORMED_RECORD`: a
//!   record cut at an open quote or a size cap may read otherwise once the
//!   file goes on), and its content ends at a line end.
//!
//! A change made to the database behind cardbatch's back (SQL by hand)
//! writes no event and is not seen; a record-by-record check would see it.
//! Card imports only; a dry run always reads every card.

use crate::batch::ImportKind;
use crate::domain::{OrgConfig, Series};
use crate::error::{CommandError, failed};
use crate::import::input::Input;
use crate::store::{ImportStart, PrefixQuery, PrefixRun, Store};

/// The verdicts a run took from an earlier one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adoption {
    pub from_run: i64,
    pub records: u64,
    pub unchanged: u64,
    pub rejected: u64,
}

/// What an import's verdicts depend on besides the database's cards and
/// customers: the org's configuration, its series, and the rules of this
/// release.
pub fn context_hash(org: &OrgConfig, series: &[Series]) -> String {
    // A series' definitions, not its generation counter, which moves with
    // every `cards generate` (an event, seen on its own).
    let definitions: Vec<_> = series.iter().map(|s| (s.id, &s.definition)).collect();
    let text = format!("{}\n{org:?}\n{definitions:?}", env!("CARGO_PKG_VERSION"));
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

/// Creates the run of `start` holding the verdicts of the longest earlier
/// run whose whole content opens `input`, if there is one it may take.
pub async fn adopt_earlier_run(
    store: &dyn Store,
    org_id: i64,
    start: &ImportStart,
    input: &Input,
) -> Result<Option<Adoption>, CommandError> {
    let Some(context) = &start.basis.context_hash else {
        return Ok(None);
    };
    if start.kind != ImportKind::Cards || start.dry_run {
        return Ok(None);
    }
    let query = PrefixQuery {
        kind: start.kind,
        content_bytes: input.content_bytes,
        reading_plan: &start.reading_plan,
        context_hash: context,
    };
    let candidates = store.prefix_runs(org_id, &query).await?;
    for candidate in candidates {
        if !opens_with(input, &candidate)? {
            continue;
        }
        return Ok(store.adopt_run(org_id, start, &candidate).await?.then(|| Adoption {
            from_run: candidate.run_id,
            records: candidate.records,
            unchanged: candidate.inserted + candidate.unchanged,
            rejected: candidate.rejected,
        }));
    }
    Ok(None)
}

/// Whether `input`'s content opens with `run`'s whole content, ending at a line end.
fn opens_with(input: &Input, run: &PrefixRun) -> Result<bool, CommandError> {
    let (hash, last, next) = input
        .prefix(run.content_bytes)
        .map_err(|e| failed(format!("cannot read {}: {e}", input.name)))?;
    let at_line_end = last == Some(b'\n') || matches!(next, Some(b'\n' | b'\r'));
    Ok(hash == run.input_hash && at_line_end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::series::SeriesRequest;
    use crate::numbers::PermutationKey;

    fn series(length: u32, next_counter: u64) -> Series {
        let request: SeriesRequest = serde_json::from_str(&format!(
            r#"{{"code":"S1","type":"PHYSICAL","cardGenerationConfiguration":{{"prefix":"6001","length":{length},"method":"LUHN_ALGO"}}}}"#
        ))
        .unwrap();
        Series {
            id: 7,
            org_id: 1,
            definition: request.validate().unwrap(),
            next_counter,
            secret: PermutationKey([1; 16]),
        }
    }

    #[test]
    fn the_context_follows_the_rules_not_the_generation_counter() {
        let org = OrgConfig::default();
        let base = context_hash(&org, &[series(16, 1)]);
        assert_eq!(
            base,
            context_hash(&org, &[series(16, 1)]),
            "the same context hashes the same"
        );
        assert_eq!(
            base,
            context_hash(&org, &[series(16, 500)]),
            "generating cards moves only the counter"
        );
        assert_ne!(base, context_hash(&org, &[series(17, 1)]), "a series' rules");
        assert_ne!(base, context_hash(&org, &[]), "a series gone");
        let other = OrgConfig {
            length: Some(10),
            ..OrgConfig::default()
        };
        assert_ne!(base, context_hash(&other, &[series(16, 1)]), "the org's configuration");
    }
}
