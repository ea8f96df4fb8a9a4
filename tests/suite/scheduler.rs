//! What a scheduler relies on: exit codes that tell a clean run from one
//! with rejects, a reject limit that scales with the file, `--json` all the
//! way (errors included), plain-text logs, a quiet end on a closed pipe,
//! runs it can list, and a database that is one file after every command.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::common::{Backend, Workspace, assert_accounted, big_cards_file};
use serde_json::Value;

/// `count` valid LUHN1 rows (unique numbers and external IDs), as CSV lines without a header.
fn good_rows(first: u64, count: usize) -> Vec<String> {
    use cardbatch::numbers::{Method, NumberFormat, NumberGenerator, PermutationKey};
    let generator = NumberGenerator::new(
        NumberFormat::new("6001", "", 16, Method::RandomLuhn).unwrap(),
        PermutationKey([5; 16]),
    );
    generator
        .render_block(first, count)
        .iter()
        .zip(first..)
        .map(|(number, n)| format!("{number},LUHN1,CX{n:08}"))
        .collect()
}

/// A row that is always rejected (an unknown series).
fn bad_row(n: u64) -> String {
    format!("60010000{n:08},NOPE,")
}

fn csv(rows: &[String]) -> String {
    let mut text = String::from("card_number,series_code,external_id\n");
    for row in rows {
        text.push_str(row);
        text.push('\n');
    }
    text
}

fn exit_codes_tell_clean_from_rejected(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    ws.write("clean.csv", csv(&good_rows(1, 50)));
    let (code, summary) = ws.import(&["cards", "clean.csv"]);
    assert_eq!((code, summary["rejected"].as_u64()), (0, Some(0)), "{summary}");
    // Already there: the re-run changes nothing and is still a clean run.
    assert_eq!(ws.import(&["cards", "clean.csv"]).0, 0);

    let mut mixed = good_rows(100, 20);
    mixed.push(bad_row(1));
    ws.write("mixed.csv", csv(&mixed));
    let (code, summary) = ws.import(&["cards", "mixed.csv"]);
    assert_eq!((code, summary["rejected"].as_u64()), (4, Some(1)), "{summary}");

    // Every record rejected: completed, with rejects (not a success, not a failure).
    let all_bad: Vec<String> = (1..=152).map(bad_row).collect();
    ws.write("all_bad.csv", csv(&all_bad));
    let (code, summary) = ws.import(&["cards", "all_bad.csv"]);
    assert_eq!(
        (code, summary["rejected"].as_u64(), summary["inserted"].as_u64()),
        (4, Some(152), Some(0))
    );
    assert_eq!(summary["status"], "completed");
}

/// The record at which a share limit stops a run whose rejected records
/// are `bad` (an independent reading of the rule: from record 1,000 on,
/// the first record where rejects so far exceed the share of records so far).
fn expected_stop(records: u64, bad: &dyn Fn(u64) -> bool, percent: f64) -> Option<u64> {
    let mut rejects = 0u64;
    for record in 1..=records {
        if bad(record) {
            rejects += 1;
        }
        if record >= 1000 && rejects as f64 * 100.0 > percent * record as f64 {
            return Some(record);
        }
    }
    None
}

fn a_share_of_rejects_stops_the_run(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    // 20 bad rows at the top (2% of the first 1,000: at the limit, not past
    // it), clean until record 2,000, then every row bad.
    let records = 3000u64;
    let bad = |record: u64| record <= 20 || record > 2000;
    let good = good_rows(1, records as usize);
    let rows: Vec<String> = (1..=records)
        .map(|record| {
            if bad(record) {
                bad_row(record)
            } else {
                good[record as usize - 1].clone()
            }
        })
        .collect();
    ws.write("drop.csv", csv(&rows));
    let stop = expected_stop(records, &bad, 2.0).unwrap();
    assert!(stop > 2000 && stop < 2100, "{stop}");
    let (code, summary) = ws.import(&["cards", "drop.csv", "--max-rejects", "2%", "--batch-size", "700"]);
    assert_eq!(code, 3, "{summary}");
    assert_eq!(summary["status"], "aborted");
    assert_eq!(summary["records_read"].as_u64(), Some(stop), "{summary}");
    let rejects_through_stop = (1..=stop).filter(|r| bad(*r)).count() as u64;
    assert_eq!(summary["rejected"].as_u64(), Some(rejects_through_stop));
    assert_accounted(&summary);
    // What was committed stays; without the limit the same command finishes the run.
    let (code, rest) = ws.import(&["cards", "drop.csv", "--batch-size", "700"]);
    assert_eq!(code, 4);
    assert_eq!(rest["already_committed"].as_u64(), Some(stop));
    let warnings = rest["warnings"].to_string();
    assert!(
        warnings.contains(&format!("resumed run 1 (aborted) from record {}", stop + 1)),
        "{warnings}"
    );

    // A small file is never judged by its share: 999 records, half of them bad.
    let ws = backend.workspace();
    ws.import_setup();
    let good = good_rows(1, 999);
    let rows: Vec<String> = (1..=999u64)
        .map(|r| {
            if r % 2 == 0 {
                bad_row(r)
            } else {
                good[r as usize - 1].clone()
            }
        })
        .collect();
    ws.write("small.csv", csv(&rows));
    let (code, summary) = ws.import(&["cards", "small.csv", "--max-rejects", "2%"]);
    assert_eq!((code, summary["status"].as_str()), (4, Some("completed")), "{summary}");

    // A share that is not one is a usage error.
    let output = ws.run(&["import", "cards", "small.csv", "--max-rejects", "120%"]);
    assert_eq!(output.status.code(), Some(2));
}

/// Runs `args` and returns (exit code, stdout as JSON, stderr).
fn json_out(ws: &Workspace, args: &[&str]) -> (i32, Value, String) {
    let output = ws.run(args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{args:?}: stdout is not one JSON object ({e}): {stdout}"));
    (
        output.status.code().unwrap(),
        json,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn json_errors_go_to_stdout_in_the_platform_shape(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    // An input that cannot be used (exit 2).
    let (code, json, stderr) = json_out(&ws, &["import", "cards", "missing.csv", "--json"]);
    assert_eq!(code, 2);
    assert_eq!(json["errors"][0]["code"], 400, "{json}");
    assert_eq!(json["errors"][0]["status"], false);
    assert!(json["errors"][0]["message"].as_str().unwrap().contains("missing.csv"));
    assert_eq!(stderr, "");
    // A command line clap refuses, with --json somewhere on it.
    let (code, json, _) = json_out(&ws, &["import", "cards", "x.csv", "--json", "--max-rejects", "lots"]);
    assert_eq!((code, json["errors"][0]["code"].as_i64()), (2, Some(400)), "{json}");
    // A run that does not exist.
    let (code, json, _) = json_out(&ws, &["runs", "show", "99", "--json"]);
    assert_eq!((code, json["errors"][0]["code"].as_i64()), (2, Some(400)), "{json}");
    // A runtime failure a retry may fix (exit 1): the database cannot be opened.
    let output = ws
        .cmd()
        .env("DATABASE_URL", "postgres://nobody:secret@127.0.0.1:1/none")
        .args(["import", "cards", "missing.csv", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(
        output.status.code(),
        Some(if json["errors"][0]["code"] == 500 { 1 } else { 2 })
    );
    assert!(!stdout.contains("secret"), "{stdout}");
}

fn logs_are_plain_text_off_a_terminal(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    ws.write("in.csv", csv(&good_rows(1, 10)));
    let output = ws
        .cmd()
        .env("RUST_LOG", "info")
        .args(["import", "cards", "in.csv"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("INFO"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a log written to a file: {stderr:?}"
    );
}

fn a_closed_pipe_ends_quietly(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    ws.write("big.csv", big_cards_file(3000));
    ws.import(&["cards", "big.csv"]);
    for args in [
        &["events", "export"][..],
        &["rejects", "export", "--run", "1"][..],
        &["runs", "list"][..],
    ] {
        // `... | head -1`: read one line, then close the pipe.
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("cardbatch"))
            .args(args)
            .current_dir(ws.path(""))
            .env("DATABASE_URL", &ws.url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(!first.is_empty());
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&output.stderr), "", "{args:?}");
    }
}

fn runs_are_listed_and_shown(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    ws.fixture("cards_every_reason.csv");
    let output = ws.run(&["import", "cards", "cards_every_reason.csv"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with("run 1: import_cards of cards_every_reason.csv: completed"),
        "{text}"
    );
    ws.ok_json(&["cards", "generate", "--series-code", "LUHN1", "--count", "3"]);

    let (code, list, _) = json_out(&ws, &["runs", "list", "--json"]);
    assert_eq!(code, 0);
    let runs = list["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{list}");
    // Newest first.
    assert_eq!(runs[0]["kind"], "generate");
    let import = &runs[1];
    assert_eq!(import["run_id"], 1);
    assert_eq!(import["input"], "cards_every_reason.csv");
    assert_eq!(import["status"], "completed");
    assert_eq!(
        (
            import["records_read"].as_u64(),
            import["inserted"].as_u64(),
            import["rejected"].as_u64()
        ),
        (Some(26), Some(5), Some(21))
    );
    assert_eq!(import["already_committed"], 0);
    assert!(import["started_at"].as_str().unwrap().ends_with('Z'));
    assert!(import["finished_at"].is_string());

    let text = String::from_utf8(ws.run(&["runs", "list"]).stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("ID") && lines[0].contains("STATUS"), "{text}");
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[2].contains("cards_every_reason.csv") && lines[2].contains("completed"),
        "{text}"
    );
    // Aligned: every column starts at the same place on every line.
    let status_at = lines[0].find("STATUS").unwrap();
    assert_eq!(&lines[2][status_at..status_at + 9], "completed", "{text}");

    let (code, shown, _) = json_out(&ws, &["runs", "show", "1", "--json"]);
    assert_eq!((code, &shown), (0, import));
    let text = String::from_utf8(ws.run(&["runs", "show", "1"]).stdout).unwrap();
    assert!(text.contains("rejected") && text.contains("21"), "{text}");
}

fn the_database_is_one_file_after_every_command() {
    let ws = Workspace::sqlite();
    let db = ws.path("cards.db");
    let companions = || {
        ["cards.db-wal", "cards.db-shm", "cards.db-journal"]
            .into_iter()
            .filter(|name| ws.path(name).exists())
            .collect::<Vec<_>>()
    };
    ws.import_setup();
    assert_eq!(companions(), Vec::<&str>::new());
    ws.write("big.csv", big_cards_file(5000));
    ws.import(&["cards", "big.csv"]);
    assert_eq!(companions(), Vec::<&str>::new(), "after an import");
    ws.ok_json(&["cards", "generate", "--series-code", "LUHN1", "--count", "1000"]);
    assert_eq!(companions(), Vec::<&str>::new(), "after generate");
    ws.run(&["import", "cards", "missing.csv"]);
    assert_eq!(companions(), Vec::<&str>::new(), "after a failed command");
    // The file alone holds everything: a copy of it is a complete backup.
    let copy = ws.path("copy.db");
    std::fs::copy(&db, &copy).unwrap();
    let runs = |path: &std::path::Path| {
        let output = std::process::Command::new(assert_cmd::cargo::cargo_bin!("cardbatch"))
            .args(["runs", "list", "--json"])
            .env("DATABASE_URL", format!("sqlite://{}", path.display()))
            .current_dir(ws.path(""))
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    assert_eq!(runs(&copy), runs(&db));
}

#[test]
fn sqlite_database_is_one_file_after_every_command() {
    the_database_is_one_file_after_every_command();
}

/// The wrong file (or the wrong org): every one of the first 1,000 records
/// rejected stops the run there with exit 3, again when the same command is
/// run again; `--max-rejects none` imports it; a shorter file is judged whole.
fn the_wrong_file_stops_at_its_first_thousand_records(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    let stored = ws.query_i64("SELECT count(*) FROM cards");
    let mut rows: Vec<String> = (1..=1000).map(bad_row).collect();
    rows.extend(good_rows(1, 2000));
    ws.write("wrong.csv", csv(&rows));
    // Small batches: the guard is judged across several, before pairs begin.
    let args = ["import", "cards", "wrong.csv", "--batch-size", "300", "--json"];
    let (code, summary, stderr) = json_out(&ws, &args);
    assert_eq!(code, 3, "{summary} {stderr}");
    assert_eq!(summary["status"], "aborted");
    assert_eq!(
        (
            summary["records_read"].as_u64(),
            summary["rejected"].as_u64(),
            summary["inserted"].as_u64()
        ),
        (Some(1000), Some(1000), Some(0)),
        "{summary}"
    );
    assert_accounted(&summary);
    assert!(
        summary["warnings"].to_string().contains("--max-rejects none")
            && stderr.contains("is this the right file and org?"),
        "{summary} {stderr}"
    );
    assert_eq!(ws.query_i64("SELECT count(*) FROM cards"), stored);
    // A retry by the scheduler stops again, and changes nothing.
    let (code, again, _) = json_out(&ws, &args);
    assert_eq!(
        (code, again["inserted"].as_u64(), again["status"].as_str()),
        (3, Some(0), Some("aborted"))
    );
    assert_eq!(ws.query_i64("SELECT count(*) FROM cards"), stored);
    // A person who knows better goes on.
    let mut anyway = args.to_vec();
    anyway.extend(["--max-rejects", "none"]);
    let (code, rest, _) = json_out(&ws, &anyway);
    assert_eq!(
        (
            code,
            rest["inserted"].as_u64(),
            rest["already_committed"].as_u64(),
            rest["status"].as_str()
        ),
        (4, Some(2000), Some(1000), Some("completed")),
        "{rest}"
    );
    assert_accounted(&rest);

    // One good record among the first thousand: the file is imported.
    let mut almost: Vec<String> = (2001..=2999).map(bad_row).collect();
    almost.push(good_rows(5000, 1)[0].clone());
    almost.extend((3001..=4000).map(bad_row));
    ws.write("almost.csv", csv(&almost));
    let (code, summary) = ws.import(&["cards", "almost.csv", "--batch-size", "300"]);
    assert_eq!(
        (code, summary["inserted"].as_u64(), summary["rejected"].as_u64()),
        (4, Some(1), Some(1999))
    );
    // Fewer than 1,000 records, all rejected: judged whole.
    ws.write("short.csv", csv(&(5001..=5999).map(bad_row).collect::<Vec<_>>()));
    let (code, summary) = ws.import(&["cards", "short.csv"]);
    assert_eq!(
        (code, summary["rejected"].as_u64(), summary["status"].as_str()),
        (4, Some(999), Some("completed"))
    );
}

/// The samples of a Prometheus text-format file, as `name{labels}` → value;
/// every line must be a comment or a sample.
fn prometheus_samples(text: &str) -> std::collections::BTreeMap<String, f64> {
    let mut samples = std::collections::BTreeMap::new();
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line:?}"));
        let name_end = series.find('{').unwrap_or(series.len());
        assert!(
            series[..name_end]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "metric name: {line:?}"
        );
        assert!(series.ends_with('}') || !series.contains('{'), "labels: {line:?}");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value: {line:?}"));
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "duplicate series: {line:?}"
        );
    }
    samples
}

/// `--metrics FILE` on imports and `cards generate`: counts by outcome and
/// reason, duration, exit code and end time, labelled by kind and org,
/// written whole; a failed run still says it failed.
fn metrics_tell_a_scheduler_how_the_night_went(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    let mut rows = good_rows(1, 40);
    rows.extend((1..=3).map(bad_row));
    rows.push(rows[0].replace(",CX", ",DX"));
    ws.write("night.csv", csv(&rows));
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let before = now();
    let (code, summary) = ws.import(&["cards", "night.csv", "--metrics", "night.prom"]);
    assert_eq!(code, 4, "{summary}");
    let samples = prometheus_samples(&std::fs::read_to_string(ws.path("night.prom")).unwrap());
    let at = |series: &str| {
        *samples
            .get(series)
            .unwrap_or_else(|| panic!("no {series} in {samples:#?}"))
    };
    let labels = "kind=\"import_cards\",org=\"1\"";
    for outcome in ["read", "inserted", "unchanged", "rejected", "already_committed"] {
        let key = if outcome == "read" { "records_read" } else { outcome };
        assert_eq!(
            at(&format!("cardbatch_run_records{{{labels},outcome=\"{outcome}\"}}")),
            summary[key].as_f64().unwrap(),
            "{outcome}"
        );
    }
    assert_eq!(
        at(&format!(
            "cardbatch_run_rejects{{{labels},reason=\"SERIES_NOT_FOUND\"}}"
        )),
        3.0
    );
    assert_eq!(
        at(&format!(
            "cardbatch_run_rejects{{{labels},reason=\"DUPLICATE_IN_DATABASE\"}}"
        )),
        0.0
    );
    let by_reason: f64 = samples
        .iter()
        .filter(|(k, _)| k.starts_with("cardbatch_run_rejects{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(by_reason, summary["rejected"].as_f64().unwrap());
    assert_eq!(at(&format!("cardbatch_run_exit_code{{{labels}}}")), 4.0);
    assert_eq!(
        at(&format!("cardbatch_run_id{{{labels}}}")),
        summary["run_id"].as_f64().unwrap()
    );
    let ratio = at(&format!("cardbatch_run_reject_ratio{{{labels}}}"));
    assert!((ratio - 4.0 / 44.0).abs() < 1e-9, "{ratio}");
    let finished = at(&format!("cardbatch_run_finished_timestamp_seconds{{{labels}}}"));
    assert!(finished >= before - 1.0 && finished <= now() + 1.0, "{finished}");
    assert!(at(&format!("cardbatch_run_duration_seconds{{{labels}}}")) >= 0.0);
    // Written whole: nothing but the file is left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(ws.path(""))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let output = ws.run(&[
        "--org",
        "1",
        "cards",
        "generate",
        "--series-code",
        "LUHN1",
        "--count",
        "7",
        "--metrics",
        "gen.prom",
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let samples = prometheus_samples(&std::fs::read_to_string(ws.path("gen.prom")).unwrap());
    assert_eq!(
        samples["cardbatch_run_records{kind=\"generate\",org=\"1\",outcome=\"inserted\"}"],
        7.0
    );
    assert_eq!(samples["cardbatch_run_exit_code{kind=\"generate\",org=\"1\"}"], 0.0);

    // A run that fails (the server is not there) still tells: exit code 1, no counts.
    let failed = ws
        .cmd()
        .env("DATABASE_URL", "postgres://cardbatch:secret@127.0.0.1:1/cards")
        .args(["import", "cards", "night.csv", "--metrics", "failed.prom"])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    let samples = prometheus_samples(&std::fs::read_to_string(ws.path("failed.prom")).unwrap());
    assert_eq!(samples[&format!("cardbatch_run_exit_code{{{labels}}}")], 1.0);
    assert!(
        !samples.keys().any(|k| k.starts_with("cardbatch_run_records")),
        "{samples:?}"
    );
    // The metrics path is checked with the others, before anything is written.
    let refused = ws.run(&["import", "cards", "night.csv", "--metrics", "night.csv"]);
    assert_eq!(refused.status.code(), Some(2));
}

crate::on_every_backend!(
    metrics_tell_a_scheduler_how_the_night_went,
    the_wrong_file_stops_at_its_first_thousand_records,
    exit_codes_tell_clean_from_rejected,
    a_share_of_rejects_stops_the_run,
    json_errors_go_to_stdout_in_the_platform_shape,
    logs_are_plain_text_off_a_terminal,
    a_closed_pipe_ends_quietly,
    runs_are_listed_and_shown,
);
