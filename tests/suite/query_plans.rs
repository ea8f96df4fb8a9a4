//! The per-batch lookups of an import must be keyed index searches: a range
//! scan (e.g. from an extra `IS NOT NULL`) makes every batch cost as much as
//! the whole table, and a large import quadratic. This happened once; these
//! plans guard against it.

use cardbatch::store::{DatabaseUrl, OpenOptions, SqliteStore};

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
