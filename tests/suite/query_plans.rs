//! The per-batch lookups of an import must be keyed index searches: a range
//! scan (e.g. from an extra `IS NOT NULL`) makes every batch cost as much as
//! the whole table, and a large import quadratic. This happened once; these
//! plans guard against it. On PostgreSQL, reading cards by id range must
//! find the ranges summarized in the BRIN index.

use cardbatch::store::{DatabaseUrl, OpenOptions, SqliteStore};

use crate::common::{Backend, Workspace, big_cards_file};

fn plan(sql: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::parse(&format!("sqlite://{}", dir.path().join("plans.db").display())).unwrap();
        let options = OpenOptions {
            lock_timeout: std::time::Duration::from_secs(5),
            announce_waits: false,
            create: true,
            announce_created: false,
            require_citus: false,
        };
        let store = SqliteStore::open(&url, &options).await.unwrap();
        let rows: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                .fetch_all(store.pool())
                .await
                .unwrap();
        rows.into_iter().map(|row| row.3).collect::<Vec<_>>().join("\n")
    })
}

#[test]
fn batch_lookups_search_their_unique_indexes() {
    for (sql, index) in [
        (
            "SELECT card_number, run_id FROM cards WHERE org_id = 1 AND card_number IN (SELECT value FROM json_each('[]'))",
            "cards_org_number (org_id=? AND card_number=?)",
        ),
        (
            "SELECT external_id, run_id FROM cards WHERE org_id = 1 AND external_id IN (SELECT value FROM json_each('[]'))",
            "cards_org_external_id (org_id=? AND external_id=?)",
        ),
        (
            "SELECT external_id, run_id FROM customers WHERE org_id = 1 AND external_id IN (SELECT value FROM json_each('[]'))",
            "(org_id=? AND external_id=?)",
        ),
    ] {
        let plan = plan(sql);
        assert!(plan.contains(index), "{sql}\n{plan}");
        assert!(
            !plan.contains("SCAN cards") && !plan.contains("SCAN customers"),
            "{sql}\n{plan}"
        );
    }
}

#[test]
fn new_rows_are_found_by_rowid_range() {
    let plan = plan("SELECT org_id FROM cards WHERE id > 5 ORDER BY id");
    assert!(plan.contains("USING INTEGER PRIMARY KEY (rowid>?)"), "{plan}");
}

/// Heap pages a bitmap scan of `cards` read (lossy: every page of each
/// block range the BRIN index let through), from an `EXPLAIN ANALYZE`.
fn lossy_pages(ws: &Workspace, sql: &str) -> u64 {
    let plan = ws.query_texts(&format!("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {sql}"));
    assert!(
        plan.iter().any(|line| line.contains("Bitmap Index Scan on cards_id")),
        "{plan:#?}"
    );
    plan.iter()
        .find_map(|line| line.trim().strip_prefix("Heap Blocks: lossy="))
        .and_then(|blocks| blocks.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no lossy heap blocks in {plan:#?}"))
}

/// Reads 100 cards of `run` by id range, from its 15,000th card on, as
/// `events export` reads a batch's cards; returns the heap pages it read.
fn pages_read_for_a_range(ws: &Workspace, org: i64, run: i64) -> u64 {
    let first: i64 = ws.query_texts(&format!(
        "SELECT (min(id) + 15000)::text FROM cards WHERE run_id = {run}"
    ))[0]
        .parse()
        .unwrap();
    lossy_pages(
        ws,
        &format!(
            "SELECT id, card_number FROM cards WHERE org_id = {org} AND run_id = {run} \
             AND id BETWEEN {first} AND {} ORDER BY id LIMIT 256",
            first + 99
        ),
    )
}

/// The most heap pages a range read of an import's cards may read: the
/// pages of the two batches written at once on two connections (their
/// pages interleave, so each BRIN range spans both batches' ids), and one
/// range of 32 pages at each end.
fn pair_pages(ws: &Workspace) -> u64 {
    let cards_per_page: f64 = ws
        .query_texts("SELECT (count(*) / (pg_relation_size('cards') / 8192.0))::text FROM cards")[0]
        .parse()
        .unwrap();
    (20_000.0 / cards_per_page) as u64 + 64
}

/// On PostgreSQL cards' ids have a BRIN index, not a B-tree: reading a
/// batch's cards by id range (as `events export` does) reads the pages of
/// that range (with two connections, of the pair of batches written at
/// once) only once cardbatch has summarized the ranges it wrote, and only
/// if the planner has statistics for the org (with none it reads the org's
/// every card through the primary key). Without either, exporting a large
/// import's events would be quadratic.
#[test]
fn cards_are_read_by_id_range_after_an_import_and_a_generation() {
    if !Backend::Postgres.available() {
        return;
    }
    let ws = Backend::Postgres.workspace();
    ws.import_setup();
    let file = ws.write("cards.csv", big_cards_file(60_000));
    let (code, summary) = ws.import(&["cards", file.to_str().unwrap()]);
    assert_eq!(code, 4, "{summary}");
    // Every range written was summarized by the import itself.
    let unsummarized = || ws.query_texts("SELECT brin_summarize_new_values('cards_id')::text");
    assert_eq!(unsummarized(), ["0"]);
    let pages: u64 = ws.query_texts("SELECT pg_relation_size('cards')::text")[0]
        .parse::<u64>()
        .unwrap()
        / 8192;
    // 100 cards lie among a pair's pages; the table has hundreds more.
    let read = pages_read_for_a_range(&ws, 1, summary["run_id"].as_i64().unwrap());
    let bound = pair_pages(&ws);
    assert!(read <= bound && pages > bound + 200, "read {read} of {pages} pages");

    let numbers = ws.path("generated.csv");
    let generated = ws.ok_json(&[
        "cards",
        "generate",
        "--series-code",
        "LUHN1",
        "--count",
        "30000",
        "--output",
        numbers.to_str().unwrap(),
    ]);
    assert_eq!(unsummarized(), ["0"]);
    let read = pages_read_for_a_range(&ws, 1, generated["run_id"].as_i64().unwrap());
    assert!(read <= 64, "read {read} pages");

    // A new org in a table whose statistics know only the first.
    ws.import_setup_in("2");
    let (code, summary) = ws.import(&["cards", file.to_str().unwrap(), "--org", "2"]);
    assert_eq!(code, 4, "{summary}");
    assert_eq!(unsummarized(), ["0"]);
    let read = pages_read_for_a_range(&ws, 2, summary["run_id"].as_i64().unwrap());
    let bound = pair_pages(&ws);
    assert!(read <= bound, "read {read} pages (at most {bound})");
}
