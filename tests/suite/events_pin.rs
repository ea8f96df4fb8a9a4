//! The outbox as a consumer reads it, pinned: the same steps give the same
//! events, kinds and payloads, as the full-copy outbox did before the light
//! one (`tests/data/events/expected.jsonl`, written by the build of commit
//! ca653d7; see `tests/data/events/README.md`). Event ids, times and the
//! database's row ids differ between runs and are left out of the
//! comparison; the row ids are checked against the rows they name instead.
//!
//! The consumer polls after every step with `events export --after` its
//! watermark, so each event is compared as it was first exported: a
//! `card_created` payload is rendered from the card as it is now, and shows
//! a later external-ID change (see the README, "Events").

use std::path::Path;

use crate::common::{Backend, Workspace};
use serde_json::Value;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/events");

/// The steps, as `cardbatch` arguments; files are in `tests/data/events`.
const STEPS: &[&[&str]] = &[
    &["import", "cards", "cards.csv"],
    &["import", "cards", "cards.jsonl"],
    &["cards", "add", "--json", "card.json"],
    &["import", "external-ids", "external_ids.csv"],
    &[
        "cards",
        "set-external-id",
        "--card-number",
        "6001000000002089",
        "--external-id",
        "CX00000285",
    ],
    &["import", "external-ids", "overwrite.csv", "--overwrite"],
    &["import", "customers", "customers.csv"],
    // A re-run changes nothing and adds no event.
    &["import", "cards", "cards.csv"],
];

fn setup(ws: &Workspace) {
    ws.import_setup();
    ws.ok_json(&["org", "set", "CONF_CARD_NUMBER_GENERATION_ENABLED", "true"]);
    for entry in std::fs::read_dir(DATA).unwrap() {
        let path = entry.unwrap().path();
        ws.write(
            path.file_name().unwrap().to_str().unwrap(),
            std::fs::read(&path).unwrap(),
        );
    }
}

/// Runs the steps, polling the outbox after each with the consumer's
/// watermark; returns every event as first exported, in order.
fn consume(ws: &Workspace) -> Vec<Value> {
    let mut watermark: Option<i64> = None;
    let mut seen = Vec::new();
    for step in STEPS {
        let output = ws.run(step);
        assert!(
            output.status.code().is_some_and(|code| code == 0 || code == 4),
            "{step:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let after = watermark.map(|id| id.to_string());
        let mut args = vec!["events", "export"];
        if let Some(after) = &after {
            args.extend(["--after", after]);
        }
        let output = ws.run(&args);
        assert!(output.status.success());
        for line in String::from_utf8(output.stdout).unwrap().lines() {
            let event: Value = serde_json::from_str(line).unwrap();
            let id = event["id"].as_i64().unwrap();
            assert!(
                watermark.is_none_or(|w| id > w),
                "event {id} repeated after watermark {watermark:?}"
            );
            watermark = Some(id);
            seen.push(event);
        }
    }
    seen
}

/// An event without what differs between two runs of the same steps.
fn comparable(event: &Value) -> Value {
    let mut event = event.clone();
    let object = event.as_object_mut().unwrap();
    object.retain(|key, _| key != "id" && key != "created_at");
    let payload = object["payload"].as_object_mut().unwrap();
    payload.retain(|key, _| key != "card_id" && key != "customer_row_id");
    event
}

fn outbox_matches_the_full_copy_outbox(backend: Backend) {
    let ws = backend.workspace();
    setup(&ws);
    let events = consume(&ws);
    let got: Vec<Value> = events.iter().map(comparable).collect();
    let expected_path = Path::new(DATA).join("expected.jsonl");
    if std::env::var_os("CARDBATCH_PIN_WRITE").is_some() {
        let lines: Vec<String> = got.iter().map(Value::to_string).collect();
        std::fs::write(&expected_path, lines.join("\n") + "\n").unwrap();
    }
    let expected: Vec<Value> = std::fs::read_to_string(&expected_path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(got.len(), expected.len(), "event count");
    for (n, (got, expected)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(got, expected, "event {n}");
    }

    // The ids left out above name the rows the payloads describe.
    for event in &events {
        let payload = &event["payload"];
        if let Some(card_id) = payload["card_id"].as_i64() {
            let number = ws.query_texts(&format!("SELECT card_number FROM cards WHERE id = {card_id}"));
            assert_eq!(number, [payload["card_number"].as_str().unwrap()], "{event}");
        }
        if let Some(row_id) = payload["customer_row_id"].as_i64() {
            let customer = ws.query_texts(&format!(
                "SELECT cast(customer_id AS text) FROM customers WHERE id = {row_id}"
            ));
            assert_eq!(customer, [payload["customer_id"].to_string()], "{event}");
        }
    }
}

fn card_created_shows_the_card_as_it_is_now(backend: Backend) {
    // Documented: a later external-ID change shows in a card_created payload
    // exported after it; the change itself is its own event with the
    // previous value.
    let ws = backend.workspace();
    setup(&ws);
    consume(&ws);
    let all = ws.events();
    let created = all
        .iter()
        .find(|e| e["kind"] == "card_created" && e["payload"]["card_number"] == "6001000000002006")
        .unwrap();
    assert_eq!(created["payload"]["external_id"], "CX00000298");
    let set = all
        .iter()
        .rfind(|e| e["kind"] == "card_external_id_set" && e["payload"]["card_number"] == "6001000000002006")
        .unwrap();
    assert_eq!(set["payload"]["external_id"], "CX00000298");
    assert_eq!(set["payload"]["previous_external_id"], "CX00000201");
}

fn after_any_event_id_gives_exactly_the_later_events(backend: Backend) {
    // Small batches, so the outbox holds several batch rows, each expanded
    // to one event per card at export: every cut point, inside a batch's
    // range or at its edge, gives the events after it, none skipped or repeated.
    let ws = backend.workspace();
    setup(&ws);
    for step in &STEPS[..STEPS.len() - 1] {
        let mut args = step.to_vec();
        if step[0] == "import" {
            args.extend(["--batch-size", "2"]);
        }
        ws.run(&args);
    }
    let all = ws.events();
    let ids: Vec<i64> = all.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(all.len() >= 20, "{}", all.len());
    for cut in std::iter::once(0).chain(ids.iter().copied()) {
        let output = ws.run(&["events", "export", "--after", &cut.to_string()]);
        let later: Vec<Value> = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let expected: Vec<&Value> = all.iter().filter(|e| e["id"].as_i64().unwrap() > cut).collect();
        assert_eq!(later.iter().collect::<Vec<_>>(), expected, "--after {cut}");
    }
}

crate::on_every_backend!(
    outbox_matches_the_full_copy_outbox,
    card_created_shows_the_card_as_it_is_now,
    after_any_event_id_gives_exactly_the_later_events,
);
