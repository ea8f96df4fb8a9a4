//! Writers at the same time: two imports of overlapping files account for
//! every record exactly once, whichever commits first.

use std::collections::HashMap;

use crate::common::{Backend, assert_accounted, completed_exit};
use cardbatch::numbers::{Method, NumberFormat, NumberGenerator, PermutationKey};

const PER_FILE: usize = 12_000;

/// Valid LUHN1 card numbers (prefix 6001, 16 digits), each with an external ID of its own.
fn card_lines(first: u64, count: usize) -> Vec<String> {
    let generator = NumberGenerator::new(
        NumberFormat::new("6001", "", 16, Method::RandomLuhn).unwrap(),
        PermutationKey([3; 16]),
    );
    let block = generator.render_block(first, count);
    block
        .iter()
        .zip(first..)
        .map(|(number, counter)| format!("{number},LUHN1,CX{counter:08}"))
        .collect()
}

fn csv(lines: &[String]) -> String {
    let mut text = String::from("card_number,series_code,external_id\n");
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// Reads a reject report into (card number, reason) pairs.
fn rejected_numbers(path: &std::path::Path) -> Vec<(String, String)> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let number = r[5].split(',').next().unwrap().to_string();
            (number, r[2].to_string())
        })
        .collect()
}

fn overlapping_imports_account_for_every_record_once(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    // Both files start with the same half of card numbers, the second one
    // backwards, so the two writers race for the shared keys from the first
    // batch on, meeting them in opposite orders; each file's other half is
    // its own. Of the shared half, the first half of the records are the
    // same in both files (unchanged for whichever writer comes second), the
    // rest give other external IDs (a duplicate for whichever comes second).
    let half = PER_FILE / 2;
    let shared = card_lines(1, half);
    let mut first = shared.clone();
    first.extend(card_lines(1 + half as u64, half));
    let resent: Vec<String> = shared
        .iter()
        .zip(1u64..)
        .map(|(line, counter)| {
            if counter as usize > half / 2 {
                line.replace(&format!("CX{counter:08}"), &format!("CX{:08}", counter + 90_000_000))
            } else {
                line.clone()
            }
        })
        .collect();
    let mut second: Vec<String> = resent.iter().rev().cloned().collect();
    second.extend(card_lines(1 + PER_FILE as u64, half));
    ws.write("a.csv", csv(&first));
    ws.write("b.csv", csv(&second));

    let mut children: Vec<_> = ["a.csv", "b.csv"]
        .iter()
        // b.csv may open with a thousand rejects (a.csv's cards with other
        // external IDs): not the wrong file, so the guard is off.
        .map(|file| {
            ws.spawn(&[
                "import",
                "cards",
                file,
                "--batch-size",
                "250",
                "--json",
                "--quiet",
                "--max-rejects",
                "none",
            ])
        })
        .collect();
    // A consumer polls the outbox with its watermark while both write.
    let mut consumed: Vec<i64> = Vec::new();
    let poll = |consumed: &mut Vec<i64>| {
        let after = consumed.last().copied().unwrap_or(0).to_string();
        let output = ws.run(&["events", "export", "--after", &after]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        for line in String::from_utf8(output.stdout).unwrap().lines() {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            consumed.push(event["id"].as_i64().unwrap());
        }
    };
    let mut partial_polls = 0;
    while children.iter_mut().any(|child| child.try_wait().unwrap().is_none()) {
        let before = consumed.len();
        poll(&mut consumed);
        if consumed.len() > before {
            partial_polls += 1;
        }
    }
    let summaries: Vec<serde_json::Value> = children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
            assert_eq!(
                output.status.code(),
                Some(completed_exit(&summary)),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            summary
        })
        .collect();

    let n = |summary: &serde_json::Value, key: &str| summary[key].as_u64().unwrap();
    for summary in &summaries {
        assert_accounted(summary);
        assert_eq!(n(summary, "records_read"), PER_FILE as u64);
    }
    let shared = PER_FILE as u64 / 2;
    let inserted: u64 = summaries.iter().map(|s| n(s, "inserted")).sum();
    let unchanged: u64 = summaries.iter().map(|s| n(s, "unchanged")).sum();
    let rejected: u64 = summaries.iter().map(|s| n(s, "rejected")).sum();
    assert_eq!(inserted, 2 * PER_FILE as u64 - shared, "each card number inserted once");
    assert_eq!(unchanged, shared / 2, "each record sent twice alike is unchanged once");
    assert_eq!(
        rejected,
        shared / 2,
        "each record sent twice with other values rejected once"
    );
    for summary in &summaries {
        let by_reason = summary["rejected_by_reason"].as_object().unwrap();
        assert!(
            by_reason.keys().all(|reason| reason == "DUPLICATE_IN_DATABASE"),
            "{summary}"
        );
    }

    // Every shared number sent with other values is rejected in exactly one
    // report, and every card number is in the database once.
    let mut rejections: HashMap<String, usize> = HashMap::new();
    for report in ["a.csv.rejects.csv", "b.csv.rejects.csv"] {
        for (number, reason) in rejected_numbers(&ws.path(report)) {
            assert_eq!(reason, "DUPLICATE_IN_DATABASE");
            *rejections.entry(number).or_default() += 1;
        }
    }
    assert_eq!(rejections.len() as u64, shared / 2);
    assert!(rejections.values().all(|&count| count == 1));
    let cards = ws.query_i64("SELECT count(*) FROM cards").unwrap();
    let distinct = ws.query_i64("SELECT count(DISTINCT card_number) FROM cards").unwrap();
    assert_eq!((cards, distinct), (inserted as i64 + 1, inserted as i64 + 1)); // + the card import_setup adds
    let all = ws.events();
    let events = all.iter().filter(|e| e["kind"] == "card_created").count();
    assert_eq!(events as u64, inserted + 1);
    // Event ids are taken at commit, so the watermark skipped nothing and
    // repeated nothing however the two writers' commits interleaved.
    poll(&mut consumed);
    let ids: Vec<i64> = all.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(consumed, ids, "after {partial_polls} polls during the imports");
}

/// Another writer commits a customer while an import is judging and writing
/// the same customer: the import waits for it, and the record becomes a
/// `DUPLICATE_IN_DATABASE` reject instead of an error or a second row.
fn a_key_committed_by_another_writer_meanwhile_becomes_a_duplicate(backend: Backend) {
    let ws = backend.workspace();
    ws.ok_json(&["org", "set", "CONF_CARD_NUMBER_LENGTH", "10"]);
    ws.ok_json(&["org", "set", "CONF_CARD_NUMBER_PREFIX", "CU"]);
    ws.write(
        "customers.csv",
        "customer_id,external_id\n1,CU00000001\n2,CU00000002\n3,CU00000003\n",
    );
    let insert = "INSERT INTO customers (org_id, customer_id, external_id, created_at) \
                  VALUES (1, 2, 'CU00000099', '2026-01-01T00:00:00.000Z')";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let output = runtime.block_on(async {
        use sqlx::Connection;
        // The other writer's transaction is open (and, on SQLite, holds the
        // write lock) while the import starts.
        let start_import = || ws.spawn(&["import", "customers", "customers.csv", "--json", "--quiet"]);
        let hold = std::time::Duration::from_millis(1500);
        match backend {
            Backend::Sqlite => {
                let mut other = sqlx::SqliteConnection::connect(&ws.url).await.unwrap();
                sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut other).await.unwrap();
                sqlx::raw_sql(insert).execute(&mut other).await.unwrap();
                let child = start_import();
                tokio::time::sleep(hold).await;
                sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
                child.wait_with_output().unwrap()
            }
            Backend::Postgres | Backend::Citus => {
                let mut other = sqlx::PgConnection::connect(&ws.url).await.unwrap();
                let mut tx = other.begin().await.unwrap();
                sqlx::raw_sql(insert).execute(&mut *tx).await.unwrap();
                let child = start_import();
                tokio::time::sleep(hold).await;
                tx.commit().await.unwrap();
                child.wait_with_output().unwrap()
            }
        }
    });
    // The record became a reject: the import completed with one (exit 4).
    assert_eq!(
        output.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_accounted(&summary);
    assert_eq!(summary["inserted"], 2, "{summary}");
    assert_eq!(
        summary["rejected_by_reason"],
        serde_json::json!({"DUPLICATE_IN_DATABASE": 1})
    );
    assert_eq!(ws.query_i64("SELECT count(*) FROM customers"), Some(3));
    assert_eq!(
        ws.query_i64("SELECT count(*) FROM customers WHERE customer_id = 2 AND external_id = 'CU00000099'"),
        Some(1),
        "the other writer's customer is kept"
    );
}

crate::on_every_backend!(
    overlapping_imports_account_for_every_record_once,
    a_key_committed_by_another_writer_meanwhile_becomes_a_duplicate,
);
