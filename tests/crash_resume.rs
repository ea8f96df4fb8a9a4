//! An import killed with SIGKILL mid-way and run again ends exactly as an
//! uninterrupted run: same rows, same events, same reject report.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use cardbatch::numbers::{Method, NumberFormat, NumberGenerator, PermutationKey};
use common::{Backend, Workspace, assert_accounted};
use serde_json::Value;

/// A cards file of `records` rows: mostly valid, every 97th with a broken check digit, every 101st repeated.
fn big_cards_file(records: u64) -> String {
    let generator = NumberGenerator::new(
        NumberFormat::new("6001", "", 16, Method::RandomLuhn).unwrap(),
        PermutationKey([9; 16]),
    );
    let numbers = generator.render_block(1, records as usize);
    let mut text = String::from("card_number,series_code,external_id\n");
    let mut previous = String::new();
    for (i, number) in numbers.iter().enumerate() {
        let number = if i % 101 == 100 {
            previous.clone()
        } else if i % 97 == 0 {
            let mut broken = number.as_bytes().to_vec();
            broken[15] = b'0' + (broken[15] - b'0' + 1) % 10;
            String::from_utf8(broken).unwrap()
        } else {
            number.to_string()
        };
        text.push_str(&format!("{number},LUHN1,CX{i:08}\n"));
        previous = number;
    }
    text
}

/// The events with the fields that differ between two runs (time) removed.
fn comparable_events(ws: &Workspace) -> Vec<Value> {
    ws.events()
        .into_iter()
        .map(|mut event| {
            event.as_object_mut().unwrap().remove("created_at");
            event
        })
        .collect()
}

fn records_committed(ws: &Workspace) -> i64 {
    ws.query_i64("SELECT max(records_committed) FROM runs WHERE kind = 'import_cards'")
        .unwrap_or(0)
}

/// Imports `records` rows once without interruption and once killed mid-way
/// (after a commit) and run again, with `batch_args` on every import; the
/// two must end the same.
fn check_killed_import_resumes(backend: Backend, records: u64, batch_args: &[&str]) {
    let file = big_cards_file(records);
    let reference = backend.workspace();
    reference.import_setup();
    reference.write("cards.csv", &file);
    let with_batch_args = |args: &[&'static str]| [args, batch_args].concat();
    let (code, uninterrupted) = reference.import(&with_batch_args(&["cards", "cards.csv"]));
    assert_eq!(code, 0);
    assert_accounted(&uninterrupted);
    assert!(uninterrupted["rejected"].as_u64().unwrap() > 1000);

    for attempt in 0..5 {
        let ws = backend.workspace();
        ws.import_setup();
        ws.write("cards.csv", &file);
        let mut child = ws.spawn(&with_batch_args(&["import", "cards", "cards.csv", "--quiet"]));
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut killed_at = 0;
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            let committed = records_committed(&ws);
            if committed > 0 && (committed as u64) < records {
                child.kill().unwrap(); // SIGKILL
                killed_at = committed;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        child.wait().unwrap();
        if killed_at == 0 {
            eprintln!("attempt {attempt}: the import finished before it could be killed; trying again");
            continue;
        }
        let (code, resumed) = ws.import(&with_batch_args(&["cards", "cards.csv"]));
        assert_eq!(code, 0, "{resumed}");
        assert_accounted(&resumed);
        let already = resumed["already_committed"].as_u64().unwrap();
        assert!(already > 0 && already < records, "{resumed}");
        assert_eq!(resumed["records_read"], records);
        assert_eq!(resumed["run_totals"], uninterrupted["run_totals"]);
        assert_eq!(
            std::fs::read_to_string(ws.path("cards.csv.rejects.csv")).unwrap(),
            std::fs::read_to_string(reference.path("cards.csv.rejects.csv")).unwrap()
        );
        assert_eq!(comparable_events(&ws), comparable_events(&reference));
        return;
    }
    panic!("could not kill the import mid-way in 5 attempts");
}

fn killed_import_resumes_to_the_same_final_state(backend: Backend) {
    // A commit per batch of 1,000.
    check_killed_import_resumes(backend, 60_000, &["--batch-size", "1000"]);
}

on_both_backends!(killed_import_resumes_to_the_same_final_state,);

/// Without --batch-size, SQLite commits several batches together about once
/// a second: enough rows for a few such commits before the kill.
#[test]
fn killed_import_with_shared_commits_resumes_to_the_same_final_state() {
    check_killed_import_resumes(Backend::Sqlite, 400_000, &[]);
}
