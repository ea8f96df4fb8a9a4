//! `import cards` on the real binary: fixtures covering every reject reason in
//! CSV and JSON lines, compared with expected reject reports and summaries;
//! dry run, re-runs, --max-rejects, and the awkward inputs (stdin, gzip,
//! empty, header only, BOM, CRLF, quoted newlines, formula cells).

use std::io::Write;

use crate::common::{Backend, IMPORT_DATA, assert_accounted};
use serde_json::json;

fn expected(name: &str) -> String {
    std::fs::read_to_string(format!("{IMPORT_DATA}/{name}")).unwrap()
}

fn every_reason_summary() -> serde_json::Value {
    json!({
        "CHECKSUM_INVALID": 2, "DUPLICATE_IN_DATABASE": 1, "DUPLICATE_IN_FILE": 2, "FIELD_TOO_LONG": 1,
        "INVALID_CHARACTERS": 5, "LENGTH_MISMATCH": 2, "MALFORMED_RECORD": 1, "MISSING_FIELD": 2,
        "PREFIX_SUFFIX_MISMATCH": 2, "SERIES_INACTIVE": 1, "SERIES_NOT_FOUND": 1, "STATUS_LABEL_INVALID": 1
    })
}

fn check_every_reason(backend: Backend, file: &str) {
    let ws = backend.workspace();
    ws.import_setup();
    ws.fixture(file);
    let (code, summary) = ws.import(&["cards", file]);
    assert_eq!(code, 4, "{summary}");
    assert_accounted(&summary);
    assert_eq!(summary["status"], "completed");
    assert_eq!(summary["records_read"], 26);
    assert_eq!(summary["inserted"], 5);
    assert_eq!(summary["rejected"], 21);
    assert_eq!(summary["rejected_by_reason"], every_reason_summary());
    let report = std::fs::read_to_string(ws.path(&format!("{file}.rejects.csv"))).unwrap();
    assert_eq!(report, expected(&format!("{file}.expected-rejects.csv")));
    // One card_created event per inserted card (plus the setup's cards add).
    let created: Vec<_> = ws
        .events()
        .into_iter()
        .filter(|e| e["run_id"] == summary["run_id"])
        .collect();
    assert_eq!(created.len(), 5);
    assert!(created.iter().all(|e| e["kind"] == "card_created" && e["org_id"] == 1));
    assert_eq!(created[0]["payload"]["card_number"].as_str().unwrap().len(), 16);
    // The rejects export writes the same report again.
    let exported = ws.run(&["rejects", "export", "--run", &summary["run_id"].to_string()]);
    assert_eq!(String::from_utf8(exported.stdout).unwrap(), report);
}

fn every_reason_in_csv(backend: Backend) {
    check_every_reason(backend, "cards_every_reason.csv");
}

fn every_reason_in_json_lines(backend: Backend) {
    check_every_reason(backend, "cards_every_reason.jsonl");
}

fn report_cells_never_start_a_formula(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    ws.fixture("cards_every_reason.csv");
    ws.import(&["cards", "cards_every_reason.csv"]);
    let mut reader = csv::Reader::from_path(ws.path("cards_every_reason.csv.rejects.csv")).unwrap();
    let mut rows = 0;
    for record in reader.records() {
        for cell in record.unwrap().iter() {
            assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']), "{cell:?}");
        }
        rows += 1;
    }
    assert_eq!(rows, 21);
    let report = std::fs::read_to_string(ws.path("cards_every_reason.csv.rejects.csv")).unwrap();
    assert!(report.contains("\"'=SUM(A1),LUHN1,,,,\""), "{report}");
}

fn dry_run_reports_everything_and_writes_nothing(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    ws.fixture("cards_every_reason.csv");
    let events_before = ws.events();
    let series_before = ws.ok_json(&["series", "list"]);
    let (code, summary) = ws.import(&["cards", "cards_every_reason.csv", "--dry-run"]);
    assert_eq!(code, 4);
    assert_eq!(summary["status"], "dry_run");
    // A dry run is no run: it has no id to lend the real run that follows.
    assert!(summary["run_id"].is_null(), "{summary}");
    assert_eq!(summary["inserted"], 5);
    assert_eq!(
        summary["rejected_by_reason"],
        every_reason_summary(),
        "database duplicates are checked too"
    );
    // A dry run's report has a name of its own: it never replaces a real run's.
    let report = std::fs::read_to_string(ws.path("cards_every_reason.csv.dry-run.rejects.csv")).unwrap();
    assert_eq!(report, expected("cards_every_reason.csv.expected-rejects.csv"));
    assert_eq!(ws.events(), events_before);
    assert_eq!(ws.ok_json(&["series", "list"]), series_before);
    let listed = ws.ok_json(&["runs", "list", "--json"]);
    let text = String::from_utf8(
        ws.run(&["import", "cards", "cards_every_reason.csv", "--dry-run"])
            .stdout,
    )
    .unwrap();
    assert!(text.starts_with("dry run, nothing stored: import_cards of"), "{text}");
    assert_eq!(
        ws.ok_json(&["runs", "list", "--json"]),
        listed,
        "a dry run is not listed"
    );
    // The real run afterwards starts from scratch, under an id no dry run printed.
    let (_, real) = ws.import(&["cards", "cards_every_reason.csv"]);
    assert_eq!(
        (real["inserted"].as_u64(), real["already_committed"].as_u64()),
        (Some(5), Some(0))
    );
    assert!(real["run_id"].as_i64().is_some(), "{real}");
}

fn rerun_after_success_changes_nothing(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    ws.fixture("cards_every_reason.csv");
    let (_, first) = ws.import(&["cards", "cards_every_reason.csv"]);
    let events = ws.events();
    let report = std::fs::read_to_string(ws.path("cards_every_reason.csv.rejects.csv")).unwrap();
    let (code, again) = ws.import(&["cards", "cards_every_reason.csv"]);
    assert_eq!(code, 4);
    assert_accounted(&again);
    assert_eq!(again["run_id"], first["run_id"]);
    assert_eq!(
        (again["inserted"].as_u64(), again["rejected"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(again["already_committed"], 26);
    assert!(
        again["warnings"].to_string().contains("already imported completely"),
        "{again}"
    );
    assert_eq!(ws.events(), events);
    assert_eq!(
        std::fs::read_to_string(ws.path("cards_every_reason.csv.rejects.csv")).unwrap(),
        report
    );
}

fn max_rejects_stops_at_the_next_reject_and_keeps_what_was_committed(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    ws.fixture("cards_every_reason.csv");
    let (code, summary) = ws.import(&[
        "cards",
        "cards_every_reason.csv",
        "--max-rejects",
        "3",
        "--batch-size",
        "2",
    ]);
    assert_eq!(code, 3);
    assert_eq!(summary["status"], "aborted");
    assert_accounted(&summary);
    // Records 1-3 are valid, 4-7 rejected: the fourth reject (record 7) stops the run.
    assert_eq!(
        (
            summary["records_read"].as_u64(),
            summary["inserted"].as_u64(),
            summary["rejected"].as_u64()
        ),
        (Some(7), Some(3), Some(4))
    );
    let report = std::fs::read_to_string(ws.path("cards_every_reason.csv.rejects.csv")).unwrap();
    assert_eq!(report.lines().count(), 5);
    // Running again without the limit finishes the job where it stopped.
    let (code, rest) = ws.import(&["cards", "cards_every_reason.csv"]);
    assert_eq!(code, 4);
    assert_eq!(
        (
            rest["already_committed"].as_u64(),
            rest["inserted"].as_u64(),
            rest["rejected"].as_u64()
        ),
        (Some(7), Some(2), Some(17))
    );
    let report = std::fs::read_to_string(ws.path("cards_every_reason.csv.rejects.csv")).unwrap();
    assert_eq!(report, expected("cards_every_reason.csv.expected-rejects.csv"));
}

fn batch_size_does_not_change_the_verdicts(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    ws.fixture("cards_every_reason.csv");
    let (_, summary) = ws.import(&["cards", "cards_every_reason.csv", "--batch-size", "1"]);
    assert_eq!(summary["rejected_by_reason"], every_reason_summary());
    let report = std::fs::read_to_string(ws.path("cards_every_reason.csv.rejects.csv")).unwrap();
    assert_eq!(report, expected("cards_every_reason.csv.expected-rejects.csv"));
}

fn stdin_and_gzip_inputs(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    let csv = std::fs::read(format!("{IMPORT_DATA}/cards_every_reason.csv")).unwrap();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&csv).unwrap();
    ws.write("drop.csv.gz", encoder.finish().unwrap());
    let (code, summary) = ws.import(&["cards", "drop.csv.gz", "--dry-run"]);
    assert_eq!(
        (code, summary["rejected_by_reason"].clone()),
        (4, every_reason_summary())
    );
    let report = std::fs::read_to_string(ws.path("drop.csv.gz.dry-run.rejects.csv")).unwrap();
    assert_eq!(report, expected("cards_every_reason.csv.expected-rejects.csv"));

    let output = ws
        .cmd()
        .args(["import", "cards", "-", "--json"])
        .write_stdin(csv)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["input"], "-");
    assert_eq!(summary["rejected_by_reason"], every_reason_summary());
    let report = std::fs::read_to_string(ws.path("stdin.rejects.csv")).unwrap();
    assert_eq!(report, expected("cards_every_reason.csv.expected-rejects.csv"));
}

fn empty_and_header_only_inputs(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    ws.write("empty.csv", "");
    let output = ws.run(&["import", "cards", "empty.csv"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("empty"));
    ws.write("empty.jsonl", "");
    let (code, summary) = ws.import(&["cards", "empty.jsonl"]);
    assert_eq!((code, summary["records_read"].as_u64()), (0, Some(0)));
    ws.write("header.csv", "card_number,series_code\r\n");
    let (code, summary) = ws.import(&["cards", "header.csv"]);
    assert_eq!(
        (code, summary["records_read"].as_u64(), summary["status"].as_str()),
        (0, Some(0), Some("completed"))
    );
    assert_eq!(
        std::fs::read_to_string(ws.path("header.csv.rejects.csv")).unwrap(),
        "line,record,reason,field,message,raw\r\n"
    );
}

fn bom_unknown_columns_and_any_column_order(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    ws.write(
        "bom.csv",
        "\u{feff}colour,series_id,card_number,size\n\"red\",1,6001000000000018,XL\nblue,1,6001000000000026,S\n",
    );
    let (code, summary) = ws.import(&["cards", "bom.csv"]);
    assert_eq!((code, summary["inserted"].as_u64()), (0, Some(2)), "{summary}");
    assert_eq!(summary["warnings"], json!(["ignored unknown column(s): colour, size"]));
}

fn unusable_inputs_exit_2_before_writing(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    let events = ws.events();
    ws.write("no_number.csv", "series_code,status_label\nLUHN1,NOT_ISSUED\n");
    for args in [["import", "cards", "no_number.csv"], ["import", "cards", "missing.csv"]] {
        let output = ws.run(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(!String::from_utf8_lossy(&output.stderr).is_empty());
    }
    let stderr = String::from_utf8(ws.run(&["import", "cards", "no_number.csv"]).stderr).unwrap();
    assert!(stderr.contains("card_number"), "{stderr}");
    assert_eq!(ws.events(), events);
    assert!(!ws.path("no_number.csv.rejects.csv").exists());
}

fn events_export_after_and_to_a_file(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    ws.fixture("cards_every_reason.csv");
    ws.import(&["cards", "cards_every_reason.csv"]);
    let all = ws.events();
    assert_eq!(all.len(), 6);
    let ids: Vec<i64> = all.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    for event in &all {
        let keys: Vec<&String> = event.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "kind", "org_id", "run_id", "payload", "created_at"]);
    }
    let out = ws.path("events.jsonl");
    let status = ws.run(&[
        "events",
        "export",
        "--after",
        &ids[3].to_string(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(status.status.success());
    assert_eq!(std::fs::read_to_string(out).unwrap().lines().count(), 2);
}

fn optimistic_and_prechecked_writes_give_the_same_verdicts(backend: Backend) {
    // Duplicates inside the batch only (nothing in the database yet): the
    // optimistic path judges them in memory. --max-rejects forces the path
    // that checks the database before writing; both must agree exactly.
    let csv = "card_number,series_code,external_id\n\
               6001000000000018,LUHN1,CX00000001\n\
               6001000000000026,LUHN1,CX00000001\n\
               6001000000000018,LUHN1,CX00000003\n\
               6001000000000034,LUHN1,CX00000004\n\
               6001000000000026,LUHN1,CX00000005\n\
               6001000000000042,LUHN1,CX00000004\n";
    let mut reports = Vec::new();
    for extra in [&[][..], &["--max-rejects", "1000"][..]] {
        let ws = backend.workspace();
        ws.import_setup();
        ws.write("dups.csv", csv);
        let mut args = vec!["cards", "dups.csv"];
        args.extend_from_slice(extra);
        let (code, summary) = ws.import(&args);
        assert_eq!(code, 4);
        assert_eq!(
            (summary["inserted"].as_u64(), summary["rejected"].as_u64()),
            (Some(3), Some(3)),
            "{summary}"
        );
        reports.push(std::fs::read_to_string(ws.path("dups.csv.rejects.csv")).unwrap());
    }
    assert_eq!(reports[0], reports[1]);
    // Record 5 repeats a number whose first holder (record 2) was itself rejected, so it goes in.
    assert!(
        reports[0].contains(",2,DUPLICATE_IN_FILE,external_id,"),
        "{}",
        reports[0]
    );
    assert!(!reports[0].contains(",5,DUPLICATE_IN_FILE"), "{}", reports[0]);
}

fn a_record_rejected_for_a_database_key_holds_none_of_its_keys(backend: Backend) {
    // Record 1 of the second file meets an external ID the database holds;
    // record 2 repeats its card number, which record 1 therefore never held:
    // record 2 goes in, on the optimistic path and the prechecked one alike.
    for extra in [&[][..], &["--max-rejects", "1000"][..]] {
        let ws = backend.workspace();
        ws.import_setup();
        ws.write(
            "first.csv",
            "card_number,series_code,external_id\n6001000000000018,LUHN1,CX00000001\n",
        );
        assert_eq!(ws.import(&["cards", "first.csv"]).0, 0);
        ws.write(
            "second.csv",
            "card_number,series_code,external_id\n\
             6001000000000026,LUHN1,CX00000001\n\
             6001000000000026,LUHN1,CX00000002\n",
        );
        let mut args = vec!["cards", "second.csv"];
        args.extend_from_slice(extra);
        let (code, summary) = ws.import(&args);
        assert_eq!(code, 4);
        assert_eq!(
            (summary["inserted"].as_u64(), summary["rejected"].as_u64()),
            (Some(1), Some(1)),
            "{extra:?}: {summary}"
        );
        let report = std::fs::read_to_string(ws.path("second.csv.rejects.csv")).unwrap();
        assert!(report.contains(",1,DUPLICATE_IN_DATABASE,external_id,"), "{report}");
        assert_eq!(
            ws.query_i64("SELECT count(*) FROM cards WHERE external_id = 'CX00000002'"),
            Some(1)
        );
    }
}

crate::on_every_backend!(
    a_record_rejected_for_a_database_key_holds_none_of_its_keys,
    every_reason_in_csv,
    every_reason_in_json_lines,
    report_cells_never_start_a_formula,
    dry_run_reports_everything_and_writes_nothing,
    rerun_after_success_changes_nothing,
    max_rejects_stops_at_the_next_reject_and_keeps_what_was_committed,
    batch_size_does_not_change_the_verdicts,
    stdin_and_gzip_inputs,
    empty_and_header_only_inputs,
    bom_unknown_columns_and_any_column_order,
    unusable_inputs_exit_2_before_writing,
    events_export_after_and_to_a_file,
    optimistic_and_prechecked_writes_give_the_same_verdicts,
);
