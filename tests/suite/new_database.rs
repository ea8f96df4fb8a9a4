//! Read-only commands never create a database: on a SQLite path that does
//! not exist, or a PostgreSQL database without cardbatch's tables, they
//! exit 2 and create nothing. A command that creates a database says so
//! once on stderr, with its path.

use crate::common::{Backend, Workspace};

const READ_ONLY: &[&[&str]] = &[
    &["runs", "list"],
    &["runs", "show", "1"],
    &["rejects", "summary", "--run", "1"],
    &["rejects", "export", "--run", "1"],
    &["report", "--run", "1", "--output", "r.html"],
    &["events", "export"],
    &["series", "list"],
    &["org", "show"],
    &["cards", "export", "--run", "1"],
    &["db", "status"],
];

/// cardbatch's tables in the workspace's database (PostgreSQL), or whether
/// its SQLite file exists (0 or 1).
fn what_exists(ws: &Workspace) -> i64 {
    match ws.backend {
        Backend::Sqlite => i64::from(ws.path("cards.db").exists()),
        _ => ws
            .query_i64("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()")
            .unwrap(),
    }
}

fn read_only_commands_create_nothing(backend: Backend) {
    let ws = backend.workspace();
    for args in READ_ONLY {
        let output = ws.run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        // `db status` on SQLite is refused as not a Citus coordinator, before anything is opened.
        if args[0] != "db" {
            assert!(stderr.contains("no cardbatch database at"), "{args:?}: {stderr}");
        }
        assert_eq!(what_exists(&ws), 0, "{args:?} created something");
    }
    assert!(!ws.path("r.html").exists());
    // A command that writes creates the database; an import (or `db init`) says so once.
    let input = ws.write("drop.csv", "card_number,series_code\n6001000000000018,LUHN1\n");
    let output = ws.run(&["import", "cards", input.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let created: Vec<&str> = stderr.lines().filter(|l| l.contains("created")).collect();
    assert_eq!(created.len(), 1, "{stderr}");
    match backend {
        Backend::Sqlite => assert!(
            created[0].contains(&ws.path("cards.db").display().to_string()),
            "{stderr}"
        ),
        _ => assert!(created[0].contains(ws.url.rsplit('/').next().unwrap()), "{stderr}"),
    }
    assert!(what_exists(&ws) > 0);
    // Then the read-only commands read it; nothing says "created" again.
    let output = ws.run(&["runs", "list"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&output.stderr).contains("created"));
    let output = ws.run(&["db", "init"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&output.stderr).contains("created"));
}

/// `db init` makes a new database and says so; the API-shaped commands
/// (whose errors are JSON on stderr) create it silently.
#[test]
fn db_init_creates_a_database_and_says_so() {
    let ws = Workspace::sqlite();
    let output = ws.run(&["db", "init"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("created a new cardbatch database at"), "{stderr}");
    assert!(ws.path("cards.db").exists());
    let other = Workspace::sqlite();
    let output = other.run(&["org", "set", "CONF_CARD_NUMBER_LENGTH", "10"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stderr.is_empty(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// A file that is there but is not cardbatch's is not taken over by a read.
#[test]
fn a_file_that_is_not_a_cardbatch_database_is_refused_by_a_read() {
    let ws = Workspace::sqlite();
    ws.write("cards.db", "");
    let output = ws.run(&["series", "list"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no cardbatch database at"), "{stderr}");
    assert_eq!(std::fs::metadata(ws.path("cards.db")).unwrap().len(), 0);
}

// Citus's workspaces are made by `db distribute`, which creates the tables:
// the rule is the PostgreSQL store's, tested on one server.
mod sqlite {
    #[test]
    fn read_only_commands_create_nothing() {
        super::read_only_commands_create_nothing(crate::common::Backend::Sqlite)
    }
}

mod postgres {
    #[test]
    fn read_only_commands_create_nothing() {
        if crate::common::Backend::Postgres.available() {
            super::read_only_commands_create_nothing(crate::common::Backend::Postgres)
        }
    }
}
