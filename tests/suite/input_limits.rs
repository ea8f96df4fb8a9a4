//! Bad input never swallows its neighbours and never fills memory: a quote
//! left open ends its own record only, a record over the cap is rejected
//! and cut, and the character rules are the same in every field and on both
//! stores.

use crate::common::{Backend, Workspace, assert_accounted};

/// The reject report's rows as (line, record, reason, field, message, raw).
fn report_rows(ws: &Workspace, name: &str) -> Vec<[String; 6]> {
    let mut reader = csv::Reader::from_path(ws.path(name)).unwrap();
    reader
        .records()
        .map(|row| {
            let row = row.unwrap();
            std::array::from_fn(|i| row[i].to_string())
        })
        .collect()
}

fn an_open_quote_ends_its_own_record_only(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    ws.write(
        "open.csv",
        "card_number,series_code,status_reason\n\
         6001000000000018,LUHN1,fine\n\
         6001000000000026,LUHN1,\"never closed\n\
         6001000000000034,LUHN1,fine\n\
         6001000000000042,LUHN1,fine\n",
    );
    let (code, summary) = ws.import(&["cards", "open.csv"]);
    assert_eq!(code, 4, "{summary}");
    assert_accounted(&summary);
    assert_eq!(summary["records_read"], 4);
    assert_eq!(summary["inserted"], 3);
    assert_eq!(
        summary["rejected_by_reason"],
        serde_json::json!({"MALFORMED_RECORD": 1})
    );
    let rows = report_rows(&ws, "open.csv.rejects.csv");
    assert_eq!(rows.len(), 1);
    let [line, record, _, _, message, raw] = &rows[0];
    assert_eq!((line.as_str(), record.as_str()), ("3", "2"));
    assert!(message.contains("opened on line 3 is never closed"), "{message}");
    assert_eq!(raw, "6001000000000026,LUHN1,\"never closed");
    // The record after it is a card of its own, with its own status reason.
    assert!(
        ws.cards_by_content()
            .iter()
            .any(|card| card.starts_with("6001000000000034|") && card.contains("|fine|")),
        "{:?}",
        ws.cards_by_content()
    );
}

/// The child's exit code and its peak RSS in KiB, from the kernel's
/// high-water mark (`VmHWM` in /proc), read until it exits. (`wait4`'s
/// `ru_maxrss` would count the test process's own pages, copied at fork.)
#[cfg(target_os = "linux")]
fn wait_for_peak_rss(mut child: std::process::Child) -> (i32, u64) {
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_file) {
            let high_water = status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok());
            peak_kib = peak_kib.max(high_water.unwrap_or(0));
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code().unwrap_or(-1), peak_kib);
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Peak memory is read from /proc, which Linux has.
#[cfg(not(target_os = "linux"))]
fn a_100_mb_line_is_rejected_in_bounded_memory(_backend: Backend) {
    eprintln!("skipped: peak RSS is read from /proc on Linux");
}

#[cfg(target_os = "linux")]
fn a_100_mb_line_is_rejected_in_bounded_memory(backend: Backend) {
    use std::io::Write;
    let ws = backend.workspace();
    ws.import_setup();
    let mut file = std::io::BufWriter::new(std::fs::File::create(ws.path("huge.csv")).unwrap());
    file.write_all(b"card_number,series_code\n6001000000000018,LUHN1\n")
        .unwrap();
    let chunk = vec![b'7'; 1 << 20];
    for _ in 0..100 {
        file.write_all(&chunk).unwrap();
    }
    file.write_all(b",LUHN1\n6001000000000026,LUHN1\n").unwrap();
    drop(file);
    // The summary it prints is small enough for the pipe left unread.
    let child = ws.spawn(&["import", "cards", "huge.csv", "--quiet"]);
    let (code, peak_kib) = wait_for_peak_rss(child);
    assert_eq!(code, 4);
    assert!(peak_kib > 0, "the peak was read");
    assert!(peak_kib < 128 * 1024, "peak RSS {peak_kib} KiB on a 100 MiB line");
    let rows = report_rows(&ws, "huge.csv.rejects.csv");
    assert_eq!(rows.len(), 1);
    let [line, record, reason, _, message, raw] = &rows[0];
    assert_eq!(
        (line.as_str(), record.as_str(), reason.as_str()),
        ("3", "2", "MALFORMED_RECORD")
    );
    assert!(
        message.contains("104857606 bytes, over the 1048576-byte cap"),
        "{message}"
    );
    assert!(
        raw.len() < 2048 && raw.contains("[cut: the record is 104857606 bytes"),
        "{}",
        &raw[..200]
    );
    // The records on either side are cards.
    assert_eq!(
        ws.query_i64("SELECT count(*) FROM cards WHERE card_number IN ('6001000000000018', '6001000000000026')"),
        Some(2)
    );
}

fn every_text_field_refuses_control_characters_on_both_stores(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    let jsonl = [
        r#"{"cardNumber": "6001000000000018", "seriesCode": "LUHN1", "statusInfo": {"reason": "lost\u0000card"}}"#,
        r#"{"cardNumber": "6001000000000026", "seriesCode": "LUHN1", "statusInfo": {"reason": "tab\tis fine"}}"#,
        r#"{"cardNumber": "6001000000000034", "seriesCode": "LUHN1\u0007"}"#,
        r#"{"cardNumber": "6001000000000042", "seriesCode": "LUHN1", "statusLabel": "NOT\u001bISSUED"}"#,
        r#"{"cardNumber": "6001000000000059", "seriesCode": "LUHN1", "extendedFields": {"note": "a\u0000b"}}"#,
    ]
    .join("\n");
    ws.write("controls.jsonl", jsonl + "\n");
    let (code, summary) = ws.import(&["cards", "controls.jsonl"]);
    assert_eq!(code, 4);
    assert_eq!(summary["inserted"], 1);
    assert_eq!(
        summary["rejected_by_reason"],
        serde_json::json!({"INVALID_CHARACTERS": 4})
    );
    let fields: Vec<String> = report_rows(&ws, "controls.jsonl.rejects.csv")
        .into_iter()
        .map(|row| row[3].clone())
        .collect();
    assert_eq!(
        fields,
        ["status_reason", "series_code", "status_label", "extended_fields"]
    );
    // No stored text holds a control character but tab, on either store.
    assert_eq!(ws.cards_by_content().len(), 2);
    assert!(
        ws.cards_by_content()
            .iter()
            .all(|c| !c.chars().any(|ch| ch.is_control() && ch != '\t'))
    );

    // A NUL byte in a CSV cell: rejected, and the report shows it as U+FFFD on both stores.
    ws.write(
        "nul.csv",
        b"card_number,series_code,status_reason\n6001000000000067,LUHN1,lost\0card\n",
    );
    let (_, summary) = ws.import(&["cards", "nul.csv"]);
    assert_eq!(
        summary["rejected_by_reason"],
        serde_json::json!({"INVALID_CHARACTERS": 1})
    );
    let report = std::fs::read_to_string(ws.path("nul.csv.rejects.csv")).unwrap();
    assert!(
        report.contains("lost\u{FFFD}card") && !report.contains('\0'),
        "{report:?}"
    );
}

fn characters_are_judged_before_length_in_characters(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    let thirty = "é".repeat(30);
    let sixty_ascii = "A".repeat(60);
    ws.write(
        "ids.csv",
        format!(
            "card_number,series_code,external_id\n\
             6001000000000018,LUHN1,{thirty}\n\
             6001000000000026,LUHN1,{sixty_ascii}\n"
        ),
    );
    let (_, summary) = ws.import(&["cards", "ids.csv"]);
    assert_eq!(
        summary["rejected_by_reason"],
        serde_json::json!({"FIELD_TOO_LONG": 1, "INVALID_CHARACTERS": 1})
    );
    let rows = report_rows(&ws, "ids.csv.rejects.csv");
    assert_eq!(rows[0][2], "INVALID_CHARACTERS");
    assert!(rows[0][4].contains("'é' at character 1"), "{}", rows[0][4]);
    assert_eq!(rows[1][2], "FIELD_TOO_LONG");
    assert!(rows[1][4].contains("has 60 characters, at most 50"), "{}", rows[1][4]);
}

crate::on_every_backend!(
    an_open_quote_ends_its_own_record_only,
    a_100_mb_line_is_rejected_in_bounded_memory,
    every_text_field_refuses_control_characters_on_both_stores,
    characters_are_judged_before_length_in_characters,
);
