//! `db distribute` and `db status` on a real Citus cluster (a coordinator
//! and two workers on loopback, started by `scripts/test.sh`), and their
//! refusal elsewhere. Every other store-touching test body also runs on
//! the cluster (`citus::` in each module), on a database `db distribute` made.

use serde_json::Value;

use crate::common::{Backend, Workspace};

/// Every table of cardbatch's with its placement, as `db status --json` says.
fn placements(ws: &Workspace) -> (i32, Vec<(String, String)>) {
    let output = ws.run(&["db", "status", "--json"]);
    let status: Value = serde_json::from_slice(&output.stdout).expect("db status --json");
    let tables = status["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_string(),
                t["placement"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (output.status.code().unwrap(), tables)
}

/// The tables the migrations create, from the database itself.
fn tables_of(ws: &Workspace) -> Vec<String> {
    let mut tables = ws.query_texts(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() AND tablename <> '_sqlx_migrations'",
    );
    tables.sort();
    tables
}

#[test]
fn db_distribute_places_every_table_by_org_and_a_second_run_changes_nothing() {
    if !Backend::Citus.available() {
        return;
    }
    // The workspace's database was made by `db distribute`.
    let ws = Backend::Citus.workspace();
    let (code, tables) = placements(&ws);
    assert_eq!(code, 0);
    let mut names: Vec<String> = tables.iter().map(|(t, _)| t.clone()).collect();
    names.sort();
    assert_eq!(names, tables_of(&ws), "db status lists every table but the migrator's");
    for table in [
        "cards",
        "events",
        "event_counters",
        "run_lines",
        "runs",
        "rejects",
        "org_config",
    ] {
        assert!(names.iter().any(|n| n == table), "{table} in {names:?}");
    }
    assert!(tables.iter().all(|(_, p)| p == "distributed"), "{tables:?}");
    // Colocated, by org_id, and the migrator's table stays on the coordinator.
    let groups = ws.query_texts(
        "SELECT DISTINCT colocationid::text || ':' || column_to_column_name(logicalrelid, partkey) \
         FROM pg_dist_partition WHERE logicalrelid::text <> '_sqlx_migrations'",
    );
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert!(groups[0].ends_with(":org_id"), "{groups:?}");
    assert!(
        ws.query_texts(
            "SELECT logicalrelid::text FROM pg_dist_partition WHERE logicalrelid::text = '_sqlx_migrations'"
        )
        .is_empty()
    );

    let output = ws.run(&["db", "distribute"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("nothing to do"), "{stdout}");
    assert!(!stdout.contains("placed now"), "{stdout}");
}

/// A table a later migration creates is local until `db distribute` runs
/// again; `db status` says so and fails until then.
#[test]
fn a_table_left_local_is_named_by_db_status_and_distributed_by_db_distribute() {
    if !Backend::Citus.available() {
        return;
    }
    let ws = Backend::Citus.workspace();
    ws.query_texts("CREATE TABLE card_notes (org_id bigint NOT NULL, note text)");
    let output = ws.run(&["db", "status"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("card_notes"))
        .expect("card_notes listed");
    assert!(line.contains("local") && line.contains("db distribute"), "{line}");

    let output = ws.run(&["db", "distribute"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("1 table(s) placed"), "{stdout}");
    let (code, tables) = placements(&ws);
    assert_eq!(code, 0);
    assert!(
        tables.contains(&("card_notes".to_string(), "distributed".to_string())),
        "{tables:?}"
    );
}

#[test]
fn db_commands_are_refused_where_there_is_no_citus_coordinator() {
    let sqlite = Workspace::sqlite();
    let mut workspaces = vec![sqlite];
    if Backend::Postgres.available() {
        workspaces.push(Backend::Postgres.workspace());
    }
    for ws in &workspaces {
        for args in [&["db", "distribute"][..], &["db", "status"]] {
            let output = ws.run(args);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{args:?} on {:?}: {stderr}", ws.backend);
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(stderr.contains("is not a Citus coordinator"), "{stderr}");
            assert!(output.stdout.is_empty());
        }
    }
    // Refused before the SQLite path was opened: nothing was created there.
    assert!(!workspaces[0].path("cards.db").exists());
}
