//! An import stopped mid-way and run again ends as an uninterrupted run
//! does: the same cards by content, the same verdicts and reject report,
//! the same events in the same order with the same payloads. Ids may differ
//! on PostgreSQL (a rolled-back transaction leaves gaps in its sequences),
//! so they are left out of the comparison (the README says so).
//!
//! Stopped how: killed (SIGKILL), interrupted (SIGINT or SIGTERM: exit
//! 130/143 at a batch boundary, with one line that says how to resume), two
//! signals (the second ends the process at once), and on PostgreSQL the
//! connection cut off under it (exit 1).

use std::process::Output;
use std::time::{Duration, Instant};

use crate::common::{Backend, Workspace, assert_accounted, big_cards_file, send_signal};
use serde_json::Value;

/// How the first run is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Kill,
    Signal(&'static str),
    /// Two SIGINTs while the import waits for a lock, so the first cannot
    /// be served at a batch boundary: the second must end it.
    SignalTwice,
    /// PostgreSQL: the server ends the import's connection.
    CutConnection,
}

/// What an uninterrupted import left.
struct FinalState {
    run_totals: Value,
    report: String,
    cards: Vec<String>,
    events: Vec<Value>,
}

impl FinalState {
    fn of(ws: &Workspace, summary: &Value) -> FinalState {
        FinalState {
            run_totals: summary["run_totals"].clone(),
            report: std::fs::read_to_string(ws.path("cards.csv.rejects.csv")).unwrap(),
            cards: ws.cards_by_content(),
            events: ws.comparable_events(),
        }
    }
}

/// Imports `records` rows once without interruption and once stopped
/// mid-way (after a commit) and run again, with `batch_args` on every
/// import; the two must end the same.
fn check_stopped_import_resumes(backend: Backend, records: u64, batch_args: &[&str], stop: Stop) {
    let file = big_cards_file(records);
    let reference = backend.workspace();
    reference.import_setup();
    reference.write("cards.csv", &file);
    let with_batch_args = |args: &[&'static str]| [args, batch_args].concat();
    let (code, uninterrupted) = reference.import(&with_batch_args(&["cards", "cards.csv"]));
    assert_eq!(code, 4);
    assert_accounted(&uninterrupted);
    assert!(uninterrupted["rejected"].as_u64().unwrap() > 100);
    let expected = FinalState::of(&reference, &uninterrupted);

    for attempt in 0..5 {
        let ws = backend.workspace();
        ws.import_setup();
        ws.write("cards.csv", &file);
        let args = with_batch_args(&["import", "cards", "cards.csv", "--json"]);
        let Some(stopped_at) = stop_mid_way(&ws, &args, records, stop) else {
            eprintln!("attempt {attempt}: the import finished before it could be stopped; trying again");
            continue;
        };
        let (code, resumed) = ws.import(&with_batch_args(&["cards", "cards.csv"]));
        assert_eq!(code, 4, "{resumed}");
        assert_accounted(&resumed);
        assert_eq!(resumed["already_committed"].as_u64(), Some(stopped_at), "{resumed}");
        assert_eq!(resumed["records_read"], records);
        let resumed_state = FinalState::of(&ws, &resumed);
        assert_eq!(resumed_state.run_totals, expected.run_totals);
        assert_eq!(resumed_state.report, expected.report);
        assert_eq!(resumed_state.cards, expected.cards);
        assert_eq!(resumed_state.events, expected.events);
        return;
    }
    panic!("could not stop the import mid-way in 5 attempts");
}

/// Starts the import and stops it as `stop` says once a batch is
/// committed; returns the checkpoint the resumed run must start from, or
/// `None` when the import ended first.
fn stop_mid_way(ws: &Workspace, args: &[&str], records: u64, stop: Stop) -> Option<u64> {
    let child = ws.spawn(args);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut child = child;
    loop {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            child.wait().unwrap();
            return None;
        }
        let committed = ws.records_committed();
        if committed > 0 && (committed as u64) < records {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    match stop {
        Stop::Kill => {
            send_signal(&child, "KILL");
            child.wait().unwrap();
        }
        Stop::Signal(signal) => {
            let sent = Instant::now();
            send_signal(&child, signal);
            let output = child.wait_with_output().unwrap();
            assert!(sent.elapsed() < Duration::from_secs(10), "stopped at a batch boundary");
            check_interrupted(ws, &output, signal);
        }
        Stop::SignalTwice => {
            let lock = ws.hold_write_lock();
            if child.try_wait().unwrap().is_some() {
                return None;
            }
            if ws.backend.is_postgres() {
                // Between two batches (settling the last commit's cards
                // included) the import holds nothing; the signals must
                // find it inside a batch, waiting for the lock.
                let waiting = Instant::now() + Duration::from_secs(10);
                while ws
                    .query_i64(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'cardbatch' \
                         AND wait_event_type = 'Lock' AND query LIKE 'COPY%'",
                    )
                    .unwrap_or(0)
                    == 0
                {
                    if child.try_wait().unwrap().is_some() {
                        return None;
                    }
                    assert!(Instant::now() < waiting, "the import never waited for the lock");
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            send_signal(&child, "INT");
            std::thread::sleep(Duration::from_millis(300));
            if child.try_wait().unwrap().is_some() {
                let output = child.wait_with_output().unwrap();
                panic!(
                    "the first signal must wait for the batch boundary: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            send_signal(&child, "INT");
            let output = child.wait_with_output().unwrap();
            lock.release();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(130), "{stderr}");
            assert!(stderr.contains("stopping at once"), "{stderr}");
            assert!(
                stderr.contains("resume with: cardbatch import cards cards.csv"),
                "{stderr}"
            );
            assert_eq!(
                ws.query_texts("SELECT status FROM runs WHERE kind = 'import_cards'"),
                ["running"],
                "the second signal leaves no time to mark the run"
            );
        }
        Stop::CutConnection => {
            assert!(ws.terminate_cardbatch_connections() > 0);
            let output = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(1),
                "a lost connection is a failure a retry may fix: {stderr}"
            );
            // With --json the failure is one JSON object on stdout (500: a retry may fix it).
            let error: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON error");
            assert_eq!(error["errors"][0]["code"], 500, "{error}");
            let message = error["errors"][0]["message"].as_str().unwrap();
            assert!(!message.contains("error returned from database"), "{message}");
            assert_eq!(stderr, "", "nothing on stderr with --json");
        }
    }
    Some(ws.records_committed() as u64)
}

/// Exit 128 + the signal, one line naming the run, the last committed
/// record and the command that resumes, and the run marked interrupted.
fn check_interrupted(ws: &Workspace, output: &Output, signal: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let (code, name) = match signal {
        "INT" => (130, "SIGINT"),
        _ => (143, "SIGTERM"),
    };
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    let run_id = ws
        .query_i64("SELECT max(id) FROM runs WHERE kind = 'import_cards'")
        .unwrap();
    let committed = ws.records_committed();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let expected = format!("interrupted by {name}: run {run_id} stopped after record {committed},");
    assert!(lines[0].contains(&expected), "{stderr}\nexpected: {expected}");
    assert!(
        lines[0].contains("resume with: cardbatch import cards cards.csv"),
        "{stderr}"
    );
    assert_eq!(
        ws.query_texts("SELECT status FROM runs WHERE kind = 'import_cards'"),
        ["interrupted"]
    );
    // The summary says so too, and its counts add up to the checkpoint.
    let summary: Value = serde_json::from_slice(&output.stdout).expect("a JSON summary");
    assert_eq!(summary["status"], "interrupted");
    assert_eq!(summary["records_read"].as_i64(), Some(committed));
    assert_accounted(&summary);
}

fn killed_import_resumes_to_the_same_final_state(backend: Backend) {
    // A commit per batch of 1,000.
    check_stopped_import_resumes(backend, 60_000, &["--batch-size", "1000"], Stop::Kill);
}

fn interrupted_import_stops_at_a_batch_boundary_and_resumes(backend: Backend) {
    check_stopped_import_resumes(backend, 60_000, &["--batch-size", "1000"], Stop::Signal("INT"));
}

fn terminated_import_stops_at_a_batch_boundary_and_resumes(backend: Backend) {
    check_stopped_import_resumes(backend, 60_000, &["--batch-size", "1000"], Stop::Signal("TERM"));
}

fn a_second_signal_stops_at_once_and_the_resume_is_exact(backend: Backend) {
    // Enough batches that the lock is surely taken while the import still runs.
    check_stopped_import_resumes(backend, 150_000, &["--batch-size", "1000"], Stop::SignalTwice);
}

crate::on_every_backend!(
    killed_import_resumes_to_the_same_final_state,
    interrupted_import_stops_at_a_batch_boundary_and_resumes,
    terminated_import_stops_at_a_batch_boundary_and_resumes,
    a_second_signal_stops_at_once_and_the_resume_is_exact,
);

/// Without --batch-size, SQLite commits several batches together about once
/// a second: enough rows for a few such commits before the kill.
#[test]
fn killed_import_with_shared_commits_resumes_to_the_same_final_state() {
    check_stopped_import_resumes(Backend::Sqlite, 400_000, &[], Stop::Kill);
}

/// The server ends the import's connection (as a restart or a network cut
/// would): exit 1, and the same command finishes the job.
fn import_cut_off_from_postgres_resumes_to_the_same_final_state(backend: Backend) {
    check_stopped_import_resumes(backend, 60_000, &["--batch-size", "1000"], Stop::CutConnection);
}

mod cut_off {
    use super::*;
    crate::on_postgres_backends!(import_cut_off_from_postgres_resumes_to_the_same_final_state);
}
