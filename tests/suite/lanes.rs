//! A card import on two PostgreSQL connections (`--connections 2`, the
//! default) writes exactly what one connection writes: the same cards in
//! the same record order, the same rejects with the same reasons and lines,
//! the same events in the same order. The input has what makes two lanes
//! hard: duplicates between the two batches of a pair, of an earlier pair,
//! and of a card stored before the run, spread through five batches.

use crate::common::{Backend, Workspace, assert_accounted, big_cards_file};

use serde_json::Value;

/// 45,000 records (five batches of 10,000: two pairs and one alone), with
/// duplicates placed across batches (`big_cards_file` adds broken check
/// digits and repeats of the row before throughout).
fn drop_with_duplicates_across_batches() -> String {
    let text = big_cards_file(45_000);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let number_of = |lines: &[String], row: usize| lines[row + 1].split(',').next().unwrap().to_string();
    let stored = "6001000000000992".to_string();
    // (row, the card number it repeats)
    let repeats = [
        // the first pair's second batch repeats a card of its first: written one after the other;
        (12_000, number_of(&lines, 3_000)),
        // the second pair, on two lanes: its first batch repeats the card
        // stored before the run, its second repeats cards of the first pair;
        (25_000, stored),
        (35_000, number_of(&lines, 15_000)),
        (36_000, number_of(&lines, 5_000)),
        // the last batch, written alone, repeats one of the second pair.
        (44_000, number_of(&lines, 33_000)),
    ];
    for (row, number) in repeats {
        let rest = lines[row + 1].split_once(',').unwrap().1.to_string();
        lines[row + 1] = format!("{number},{rest}");
    }
    lines.join("\n") + "\n"
}

struct Imported {
    ws: Workspace,
    summary: Value,
    report: String,
    /// The debug lines of the pairs written on two connections.
    pairs: Vec<String>,
}

fn import_with(backend: Backend, connections: &str) -> Imported {
    let ws = backend.workspace();
    ws.import_setup();
    let input = ws.write("drop.csv", drop_with_duplicates_across_batches());
    // The session says at debug level which pairs it wrote on two connections.
    let output = ws
        .cmd()
        .env("RUST_LOG", "cardbatch=debug")
        .args([
            "import",
            "cards",
            input.to_str().unwrap(),
            "--connections",
            connections,
            // Without the wrong-file guard, which writes the first batch
            // alone, pairs begin at the first batch (the one sharing a card).
            "--max-rejects",
            "none",
            "--json",
        ])
        .output()
        .unwrap();
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(4), "some records are rejected: {summary}");
    assert_accounted(&summary);
    let report = std::fs::read_to_string(ws.path("drop.csv.rejects.csv")).unwrap();
    let pairs = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|line| line.contains("pair of batches written on two connections"))
        .map(str::to_string)
        .collect();
    Imported {
        ws,
        summary,
        report,
        pairs,
    }
}

fn two_connections_write_exactly_what_one_writes(backend: Backend) {
    let one = import_with(backend, "1");
    let two = import_with(backend, "2");
    for key in [
        "records_read",
        "inserted",
        "rejected",
        "rejected_by_reason",
        "events_emitted",
    ] {
        assert_eq!(one.summary[key], two.summary[key], "{key}");
    }
    // The placed duplicates were judged: of earlier batches, and of the stored card.
    let by_reason = |reason: &str| one.summary["rejected_by_reason"][reason].as_u64().unwrap_or(0);
    assert!(
        by_reason("DUPLICATE_IN_FILE") >= 4 && by_reason("DUPLICATE_IN_DATABASE") >= 1,
        "{}",
        one.summary
    );
    // The same verdicts, reasons, lines and messages, in the same order.
    assert_eq!(one.report, two.report);
    assert_eq!(one.ws.cards_by_content(), two.ws.cards_by_content());
    assert_eq!(one.ws.comparable_events(), two.ws.comparable_events());
    // Card ids follow the input's order across the lanes, so `cards export
    // --run` lists the cards in input order.
    let records: Vec<i64> = two
        .ws
        .query_texts("SELECT cast(import_record AS text) FROM cards WHERE run_id IS NOT NULL ORDER BY id")
        .iter()
        .map(|record| record.parse().unwrap())
        .collect();
    assert!(
        records.windows(2).all(|pair| pair[0] < pair[1]),
        "ids out of record order"
    );
    // One connection wrote one batch at a time; two wrote the second pair
    // at once (the first pair shares a card, so it was written in turn).
    assert!(one.pairs.is_empty(), "{:?}", one.pairs);
    assert_eq!(two.pairs.len(), 1, "{:?}", two.pairs);
    assert!(
        two.pairs[0].contains("first=20001") && two.pairs[0].contains("second=30001"),
        "{:?}",
        two.pairs
    );
}

/// The second connection cut off mid-import (by the server, as a network
/// fault would): the batch it was writing is written again on the first,
/// which finishes the import alone, and the result is what one connection
/// writes.
fn a_lost_second_connection_leaves_the_import_to_the_first(backend: Backend) {
    let file = big_cards_file(120_000);
    let expected = backend.workspace();
    expected.import_setup();
    let input = expected.write("drop.csv", &file);
    let (code, _) = expected.import(&[
        "cards",
        input.to_str().unwrap(),
        "--batch-size",
        "500",
        "--connections",
        "1",
    ]);
    assert_eq!(code, 4);

    let ws = backend.workspace();
    ws.import_setup();
    let input = ws.write("drop.csv", &file);
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("cardbatch"))
        .current_dir(ws.path(""))
        .env("DATABASE_URL", &ws.url)
        .env("RUST_LOG", "cardbatch=debug")
        .args([
            "import",
            "cards",
            input.to_str().unwrap(),
            "--batch-size",
            "500",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once batches are committing, end the lane's connection: the one in a
    // transaction that does not hold the run's advisory lock.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while ws.records_committed() < 5_000 {
        assert!(std::time::Instant::now() < deadline, "the import never got going");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    while ws.query_i64(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity AS a \
         WHERE application_name = 'cardbatch' AND datname = current_database() AND state <> 'idle' \
         AND NOT EXISTS (SELECT 1 FROM pg_locks AS l WHERE l.pid = a.pid AND l.locktype = 'advisory')",
    ) != Some(1)
    {
        assert!(std::time::Instant::now() < deadline, "the lane was never seen at work");
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(output.status.code(), Some(4), "{summary} {stderr}");
    assert_accounted(&summary);
    assert!(
        stderr.contains("the second connection failed; going on with one"),
        "the lane was not the connection cut: {stderr}"
    );
    assert!(ws.records_committed() == 120_000 && summary["already_committed"] == 0);
    assert_eq!(ws.cards_by_content(), expected.cards_by_content());
    assert_eq!(ws.comparable_events(), expected.comparable_events());
    assert_eq!(
        std::fs::read_to_string(ws.path("drop.csv.rejects.csv")).unwrap(),
        std::fs::read_to_string(expected.path("drop.csv.rejects.csv")).unwrap()
    );
}

/// A server that refuses the second connection (here a role limited to two,
/// of which cardbatch's pool may hold both): the import goes on with the
/// first. How many the pool holds when the import starts varies, so the
/// import is repeated (each time a new input) until the refusal was met.
fn the_import_goes_on_when_the_server_refuses_a_second_connection(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    let database = ws.query_texts("SELECT current_database()::text").remove(0);
    let role = format!("{database}_two");
    for statement in [
        format!("CREATE ROLE {role} LOGIN CONNECTION LIMIT 2"),
        format!("GRANT ALL ON SCHEMA public TO {role}"),
        format!("GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}"),
        format!("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}"),
    ] {
        ws.query_texts(&statement);
    }
    let url = ws.url.replacen("postgres@", &format!("{role}@"), 1);
    let rows = big_cards_file(40_000);
    let mut refused = 0;
    for attempt in 0..40 {
        // A new input each time (its last rows differ), so a new run.
        let input = ws.write(
            &format!("drop{attempt}.csv"),
            rows.lines().take(20_001 + attempt).collect::<Vec<_>>().join("\n"),
        );
        let output = std::process::Command::new(assert_cmd::cargo::cargo_bin!("cardbatch"))
            .current_dir(ws.path(""))
            .env("DATABASE_URL", &url)
            .env("RUST_LOG", "cardbatch=debug")
            .args(["import", "cards", input.to_str().unwrap(), "--json"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let summary: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
        assert_eq!(output.status.code(), Some(4), "{summary} {stderr}");
        assert_accounted(&summary);
        assert_eq!(summary["records_read"], 20_000 + attempt as u64, "{summary}");
        if stderr.contains("no second connection; writing on one") {
            assert!(
                !stderr.contains("pair of batches written on two connections"),
                "{stderr}"
            );
            refused += 1;
            if refused == 2 {
                return;
            }
        }
    }
    panic!("the second connection was never refused ({refused} times in 40 imports)");
}

crate::on_postgres_backends!(
    two_connections_write_exactly_what_one_writes,
    a_lost_second_connection_leaves_the_import_to_the_first,
    the_import_goes_on_when_the_server_refuses_a_second_connection,
);
