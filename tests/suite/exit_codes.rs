//! The exit-code table (README and `--help`), row by row, on both stores:
//! 0 completed; 1 a runtime failure a retry may fix (database unreachable,
//! locked, connection lost, disk full); 2 a usage or input error that needs
//! a person; 3 stopped at `--max-rejects`; 130/143 interrupted. Waits for
//! locks say what they wait for, once, and failures are one clean line.
//! (Rows tested elsewhere: 3 in `import_cards`, 130/143 and a lost
//! connection in `crash_resume`, a full disk in `outputs`.)

use std::time::{Duration, Instant};

use crate::common::{Backend, Workspace, big_cards_file, completed_exit};

const SMALL_DROP: &str = "card_number,series_code\n6001000000000018,LUHN1\n6001000000000026,LUHN1\n";

/// Runs `args`, asserts the exit code and a one-line message containing
/// `words`, and returns stderr.
fn assert_exit(ws: &Workspace, args: &[&str], code: i32, words: &str) -> String {
    let output = ws.run(args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(stderr.contains(words), "{args:?}: {stderr}");
    assert!(!stderr.contains("error returned from database"), "{stderr}");
    stderr
}

fn usage_and_input_errors_exit_2(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    ws.write("in.csv", SMALL_DROP);
    ws.write("empty.csv", "");
    std::fs::create_dir(ws.path("folder.csv")).unwrap();
    // Bad flags (clap's own errors are 2 as well).
    assert_exit(
        &ws,
        &["import", "cards", "in.csv", "--batch-size", "0"],
        2,
        "--batch-size",
    );
    assert_exit(
        &ws,
        &["import", "cards", "in.csv", "--no-such-flag"],
        2,
        "--no-such-flag",
    );
    // Unreadable or empty input.
    assert_exit(&ws, &["import", "cards", "missing.csv"], 2, "missing.csv");
    assert_exit(&ws, &["import", "cards", "folder.csv"], 2, "not a file");
    assert_exit(&ws, &["import", "cards", "empty.csv"], 2, "the input is empty");
    // Bad database URLs, with the password never shown.
    for url in ["mysql://app:s3cret@db/cards", "postgres://app:s3cret@db:notaport/cards"] {
        let stderr = assert_exit(&ws, &["--database-url", url, "org", "show"], 2, "database URL");
        assert!(!stderr.contains("s3cret") && stderr.contains("***"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    let stderr = assert_exit(
        &ws,
        &[
            "--database-url",
            "sqlite:///missing-dir/x.db",
            "org",
            "set",
            "CONF_CARD_NUMBER_LENGTH",
            "10",
        ],
        2,
        "unable to open database file",
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(ws.query_i64("SELECT count(*) FROM runs"), Some(0));
}

/// A server that is not there: exit 1 at once, one line, no password.
#[test]
fn an_unreachable_postgres_server_is_a_failure_a_retry_may_fix() {
    let ws = Workspace::sqlite();
    let started = Instant::now();
    let stderr = assert_exit(
        &ws,
        &[
            "--database-url",
            "postgres://app:s3cret@127.0.0.1:1/cards",
            "org",
            "show",
        ],
        1,
        "cannot open database postgres://app:***@127.0.0.1:1/cards",
    );
    assert!(started.elapsed() < Duration::from_secs(20), "reported at once");
    assert!(!stderr.contains("s3cret"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

fn a_locked_database_waits_says_so_once_then_exits_1(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    ws.write("in.csv", SMALL_DROP);
    let lock = ws.hold_write_lock();
    let started = Instant::now();
    let output = ws.run(&["--lock-timeout", "1", "import", "cards", "in.csv"]);
    let waited = started.elapsed();
    lock.release();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(waited >= Duration::from_secs(1), "it waited: {waited:?}");
    let lines: Vec<&str> = stderr.lines().collect();
    match backend {
        Backend::Sqlite => {
            assert_eq!(lines.len(), 2, "{stderr}");
            assert!(lines[0].contains("waiting for the write lock on") && lines[0].contains("--lock-timeout"));
            assert!(lines[1].starts_with("cardbatch: error:") && lines[1].contains("locked by another writer"));
        }
        Backend::Postgres | Backend::Citus => {
            assert_eq!(lines.len(), 1, "{stderr}");
            assert!(lines[0].contains("lock timeout"), "{stderr}");
        }
    }
    assert!(!stderr.contains("error returned from database"), "{stderr}");
    // Nothing of the import was committed; run again once the lock is free, it completes.
    assert_eq!(ws.query_i64("SELECT count(*) FROM cards"), Some(1));
    let (code, summary) = ws.import(&["cards", "in.csv"]);
    assert_eq!((code, summary["inserted"].as_u64()), (0, Some(2)));
}

fn the_same_input_started_twice_waits_for_the_first(backend: Backend) {
    for attempt in 0..3 {
        let ws = backend.workspace();
        ws.import_setup();
        ws.write("cards.csv", big_cards_file(60_000));
        let first = ws.spawn(&["import", "cards", "cards.csv", "--batch-size", "500", "--json"]);
        let deadline = Instant::now() + Duration::from_secs(60);
        while ws.records_committed() == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // Another writer stalls the first import mid-run, so the others
        // surely meet it in progress.
        let mut first = first;
        let lock = ws.hold_write_lock();
        if first.try_wait().unwrap().is_some() {
            eprintln!("attempt {attempt}: the first import ended before it could be stalled; trying again");
            continue;
        }
        // Without a wait: exit 1 at once, naming the run in progress.
        let impatient = ws.run(&["--lock-timeout", "0", "import", "cards", "cards.csv"]);
        let impatient_stderr = String::from_utf8_lossy(&impatient.stderr);
        assert_eq!(impatient.status.code(), Some(1), "{impatient_stderr}");
        assert!(
            impatient_stderr.contains("run 1 of this input is still in progress in another process"),
            "{impatient_stderr}"
        );
        assert!(!impatient_stderr.contains("UNIQUE") && !impatient_stderr.contains("duplicate key"));
        // With a wait: it says so once, waits for the first to end, then finds the run done.
        let second = ws.spawn(&["import", "cards", "cards.csv", "--json"]);
        std::thread::sleep(Duration::from_millis(500));
        lock.release();
        let first = first.wait_with_output().unwrap();
        let first_summary: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
        let done = Some(completed_exit(&first_summary));
        assert_eq!(first.status.code(), done, "{}", String::from_utf8_lossy(&first.stderr));
        let second = second.wait_with_output().unwrap();
        let second_stderr = String::from_utf8_lossy(&second.stderr);
        assert_eq!(second.status.code(), done, "{second_stderr}");
        assert_eq!(
            second_stderr.matches("waiting for run 1 of this input").count(),
            1,
            "{second_stderr}"
        );
        let summary: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
        assert_eq!(summary["inserted"], 0);
        assert!(
            summary["warnings"].to_string().contains("already imported completely"),
            "{summary}"
        );
        assert_eq!(summary["run_totals"], first_summary["run_totals"]);
        return;
    }
    panic!("the first import always ended too soon");
}

fn library_log_lines_need_rust_log(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    ws.write("in.csv", SMALL_DROP);
    let quiet = ws.run(&["import", "cards", "in.csv"]);
    assert!(quiet.status.success());
    assert_eq!(
        String::from_utf8_lossy(&quiet.stderr),
        "",
        "nothing on stderr by default"
    );
    ws.write("again.csv", SMALL_DROP.replace("18,", "34,").replace("26,", "42,"));
    let asked = ws
        .cmd()
        .env("RUST_LOG", "sqlx=debug")
        .args(["import", "cards", "again.csv"])
        .output()
        .unwrap();
    assert!(asked.status.success());
    assert!(
        String::from_utf8_lossy(&asked.stderr).contains("sqlx"),
        "RUST_LOG shows them"
    );
}

crate::on_every_backend!(
    usage_and_input_errors_exit_2,
    a_locked_database_waits_says_so_once_then_exits_1,
    the_same_input_started_twice_waits_for_the_first,
    library_log_lines_need_rust_log,
);

/// The table is in `--help`.
#[test]
fn help_shows_the_exit_codes() {
    let output = Workspace::sqlite().run(&["--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    for row in ["0 ", "1 ", "2 ", "3 ", "130/143"] {
        assert!(help.contains(&format!("\n  {row}")), "{row:?} in {help}");
    }
}
