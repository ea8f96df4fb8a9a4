//! What operations staff do with a night's rejects: read them grouped,
//! filter them, fix the records and import them again, open the HTML
//! report (rendered here in headless Chromium), and read messages that say
//! what to fix.

use std::path::Path;
use std::process::Command;

use crate::common::{Backend, Workspace};
use serde_json::Value;

fn every_reason(ws: &Workspace, file: &str) {
    ws.import_setup();
    ws.fixture(file);
    let (code, _) = ws.import(&["cards", file]);
    assert_eq!(code, 4);
}

fn summary_groups_rejects_by_reason_and_field(backend: Backend) {
    let ws = backend.workspace();
    every_reason(&ws, "cards_every_reason.csv");
    let output = ws.run(&["rejects", "summary", "--run", "1", "--json"]);
    assert!(output.status.success());
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["rejected"], 21);
    let groups = summary["groups"].as_array().unwrap();
    let total: u64 = groups.iter().map(|g| g["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 21, "the groups add up");
    let group = |reason: &str, field: &str| {
        groups
            .iter()
            .find(|g| g["reason"] == reason && g["field"] == field)
            .unwrap_or_else(|| panic!("no group {reason}/{field}: {summary}"))
    };
    // LENGTH_MISMATCH is two groups: one card number, one external ID.
    assert_eq!(group("LENGTH_MISMATCH", "card_number")["count"], 1);
    assert_eq!(group("LENGTH_MISMATCH", "external_id")["count"], 1);
    let invalid = group("INVALID_CHARACTERS", "card_number");
    assert_eq!(invalid["count"], 3);
    // The largest group comes first.
    assert_eq!(groups[0], *invalid);
    let examples = invalid["examples"].as_array().unwrap();
    assert_eq!(examples.len(), 3);
    assert_eq!(
        examples[0],
        serde_json::json!({"line": 8, "record": 7, "value": "6001-0000-0000-0042"})
    );
    assert_eq!(
        group("LENGTH_MISMATCH", "external_id")["examples"][0]["value"],
        "CX0000009"
    );

    let text = String::from_utf8(ws.run(&["rejects", "summary", "--run", "1"]).stdout).unwrap();
    let header = text.lines().find(|l| l.starts_with("REASON")).unwrap();
    let count_at = header.find("COUNT").unwrap();
    let row = text
        .lines()
        .find(|l| l.starts_with("LENGTH_MISMATCH") && l.contains("external_id"))
        .unwrap();
    assert!(row[count_at..].trim_start().starts_with('1'), "aligned table:\n{text}");
    assert!(row.contains("line 20: CX0000009"), "{text}");
}

fn export_filters_by_reason_and_field(backend: Backend) {
    let ws = backend.workspace();
    every_reason(&ws, "cards_every_reason.csv");
    let output = ws.run(&[
        "rejects",
        "export",
        "--run",
        "1",
        "--reason",
        "LENGTH_MISMATCH",
        "--field",
        "external_id",
    ]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[1].starts_with("20,19,LENGTH_MISMATCH,external_id,"), "{text}");
    let all_length = ws.run(&["rejects", "export", "--run", "1", "--reason", "LENGTH_MISMATCH"]);
    assert_eq!(String::from_utf8(all_length.stdout).unwrap().lines().count(), 3);
    let unknown = ws.run(&["rejects", "export", "--run", "1", "--reason", "TOO_SHINY"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("TOO_SHINY"));
    // A generation run has no input to give back: refused before the output is written.
    ws.ok_json(&["cards", "generate", "--series-code", "LUHN1", "--count", "2"]); // run 2
    let out = ws.path("back.csv");
    let refused = ws.run(&[
        "rejects",
        "export",
        "--run",
        "2",
        "--as-input",
        "--output",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no input format"), "{stderr}");
    assert!(!out.exists());
}

/// A filter value that does not exist is exit 2 listing the valid ones (not
/// an empty report); `rejects summary` takes the same filters as `export`.
fn every_filter_value_is_checked_and_summary_filters_too(backend: Backend) {
    let ws = backend.workspace();
    every_reason(&ws, "cards_every_reason.csv");
    for (args, valid) in [
        (
            &["rejects", "export", "--run", "1", "--field", "card_nmuber"][..],
            "card_number, series_code",
        ),
        (
            &["rejects", "summary", "--run", "1", "--field", "card_nmuber"][..],
            "external_id",
        ),
        (
            &["rejects", "summary", "--run", "1", "--reason", "TOO_SHINY"][..],
            "CHECKSUM_INVALID",
        ),
        (
            &["rejects", "export", "--run", "1", "--reason", "TOO_SHINY"][..],
            "DUPLICATE_IN_DATABASE",
        ),
        (
            &["runs", "list", "--kind", "imports"][..],
            "import_cards, import_external_ids",
        ),
        (
            &["runs", "list", "--status", "done"][..],
            "running, completed, aborted, interrupted",
        ),
    ] {
        let output = ws.run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(valid), "{args:?} lists the valid values: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
    let summary_of = |filters: &[&str]| {
        let mut args = vec!["rejects", "summary", "--run", "1", "--json"];
        args.extend_from_slice(filters);
        ws.ok_json(&args)
    };
    let summary = summary_of(&["--reason", "LENGTH_MISMATCH", "--field", "external_id"]);
    assert_eq!(summary["rejected"], 1, "{summary}");
    assert_eq!(summary["groups"].as_array().unwrap().len(), 1, "{summary}");
    assert_eq!(summary["groups"][0]["examples"][0]["value"], "CX0000009");
    let by_reason = summary_of(&["--reason", "LENGTH_MISMATCH"]);
    assert_eq!(by_reason["rejected"], 2, "{by_reason}");
    let by_field = summary_of(&["--field", "card_number"]);
    let groups = by_field["groups"].as_array().unwrap();
    assert!(
        groups.len() > 1 && groups.iter().all(|g| g["field"] == "card_number"),
        "{by_field}"
    );
    // The runs list filters by kind and status.
    ws.ok_json(&["cards", "generate", "--series-code", "LUHN1", "--count", "2"]);
    let kinds = |args: &[&str]| -> Vec<String> {
        let mut full = vec!["runs", "list", "--json"];
        full.extend_from_slice(args);
        ws.ok_json(&full)["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|run| format!("{} {}", run["kind"].as_str().unwrap(), run["status"].as_str().unwrap()))
            .collect()
    };
    assert_eq!(kinds(&[]).len(), 2);
    assert_eq!(kinds(&["--kind", "generate"]), ["generate completed"]);
    assert_eq!(
        kinds(&["--kind", "import_cards", "--status", "completed"]),
        ["import_cards completed"]
    );
    assert!(kinds(&["--status", "aborted"]).is_empty());
}

fn rejects_come_back_as_input_to_fix_and_import(backend: Backend) {
    for (file, fixed_name) in [
        ("cards_every_reason.csv", "fixed.csv"),
        ("cards_every_reason.jsonl", "fixed.jsonl"),
    ] {
        let ws = backend.workspace();
        every_reason(&ws, file);
        let out = ws.path(fixed_name);
        let output = ws.run(&[
            "rejects",
            "export",
            "--run",
            "1",
            "--reason",
            "STATUS_LABEL_INVALID",
            "--as-input",
            "--output",
            out.to_str().unwrap(),
        ]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let text = std::fs::read_to_string(&out).unwrap();
        let original = std::fs::read_to_string(ws.path(file)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        if file.ends_with(".csv") {
            // The input's own header, and the record exactly as it was (no spreadsheet quote).
            assert_eq!(lines[0], original.lines().next().unwrap());
            assert_eq!(lines[1..], ["6001000000000091,LUHN1,SHINY,,,"]);
        } else {
            assert_eq!(lines.len(), 1);
            assert!(original.lines().any(|line| line == lines[0]), "{text}");
        }
        // A person fixes the label and imports the file as it is.
        ws.write(fixed_name, text.replace("SHINY", "LOST"));
        let (code, summary) = ws.import(&["cards", fixed_name]);
        assert_eq!((code, summary["inserted"].as_u64()), (0, Some(1)), "{summary}");
    }
    // Every reject, as input: a formula-looking record comes back as it was.
    let ws = backend.workspace();
    every_reason(&ws, "cards_every_reason.csv");
    let output = ws.run(&["rejects", "export", "--run", "1", "--as-input"]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.lines().any(|line| line == "=SUM(A1),LUHN1,,,,"), "{text}");
    assert!(
        text.contains("\"first line\nsecond line\""),
        "a quoted line break stays inside its record"
    );
    let records = csv::Reader::from_reader(text.as_bytes()).records().count();
    assert_eq!(records, 21);
}

/// `line` and `record` of each reject of `report` (CSV).
fn report_messages(ws: &Workspace, name: &str) -> Vec<(u64, String, String)> {
    let mut reader = csv::Reader::from_path(ws.path(name)).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].parse().unwrap(), r[2].to_string(), r[4].to_string())
        })
        .collect()
}

fn messages_say_what_to_fix(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    // A record spanning two lines first (rejected: a line break in a
    // reason), so lines and records part ways; batches of 2, so each
    // earlier record is in an earlier, committed batch.
    ws.write(
        "drop.csv",
        "card_number,series_code,external_id,status_reason\n\
         6001000000000091,LUHN1,CX00000091,\"first\nsecond\"\n\
         6001000000000018,LUHN1,CX00000001,\n\
         6001000000000026,LUHN1,CX00000002,\n\
         6001000000000034,LUHN1,CX00000003,\n\
         6001000000000042,LUHN1,CX00000004,\n\
         6001000000000018,LUHN1,CX00000005,\n\
         6001000000000059,LUHN1,CX00000003,\n\
         6001000000000992,LUHN1,CX00000007,\n\
         6001000000000068,LUHN1,CX00000008,\n",
    );
    let (code, _) = ws.import(&["cards", "drop.csv", "--batch-size", "2"]);
    assert_eq!(code, 4);
    let messages = report_messages(&ws, "drop.csv.rejects.csv");
    let find = |reason: &str| {
        messages
            .iter()
            .find(|(_, r, _)| r == reason)
            .map(|(_, _, m)| m.clone())
            .unwrap_or_else(|| panic!("no {reason}: {messages:?}"))
    };
    let in_file: Vec<&String> = messages
        .iter()
        .filter(|m| m.1 == "DUPLICATE_IN_FILE")
        .map(|m| &m.2)
        .collect();
    assert_eq!(
        in_file,
        [
            "card_number \"6001000000000018\" appears earlier in the input, on line 4",
            "external_id \"CX00000003\" appears earlier in the input, on line 6",
        ]
    );
    assert_eq!(
        find("DUPLICATE_IN_DATABASE"),
        "card_number \"6001000000000992\" already exists in the database (added by hand, by a single-record command) \
         with other values: its external_id is empty, this record's \"CX00000007\""
    );
    assert_eq!(
        find("CHECKSUM_INVALID"),
        "card_number has a wrong Luhn check digit 8: expected 7, computed over \"00000000006\" (the digits after the \
         prefix) (series LUHN1)"
    );
    // The earlier record committed by an earlier invocation of the run (stopped
    // at --max-rejects, then resumed): its line comes from the database.
    ws.write(
        "resumed.csv",
        "card_number,series_code\n6001000000000083,LUHN1\n6001000000000091,NOPE\n\
         6001000000000109,NOPE\n6001000000000083,LUHN1\n",
    );
    let (code, _) = ws.import(&["cards", "resumed.csv", "--batch-size", "1", "--max-rejects", "1"]);
    assert_eq!(code, 3);
    let (code, _) = ws.import(&["cards", "resumed.csv", "--batch-size", "1"]);
    assert_eq!(code, 4);
    assert_eq!(
        find_in(&ws, "resumed.csv.rejects.csv", "DUPLICATE_IN_FILE"),
        "card_number \"6001000000000083\" appears earlier in the input, on line 2"
    );
    // A card stored by an import names that run.
    ws.write("again.csv", "card_number,series_code\n6001000000000026,LUHN1\n");
    ws.import(&["cards", "again.csv"]);
    assert_eq!(
        find_in(&ws, "again.csv.rejects.csv", "DUPLICATE_IN_DATABASE"),
        "card_number \"6001000000000026\" already exists in the database (stored by run 1) with other values: \
         its external_id is \"CX00000002\", this record's empty"
    );
    // The status label message lists the labels there are.
    ws.write(
        "label.csv",
        "card_number,series_code,status_label\n6001000000000083,LUHN1,SHINY\n",
    );
    ws.import(&["cards", "label.csv"]);
    assert_eq!(
        find_in(&ws, "label.csv.rejects.csv", "STATUS_LABEL_INVALID"),
        "status label \"SHINY\" is not configured for the org; the labels are NOT_ISSUED, ISSUED, ACTIVE, SUSPENDED, \
         EXPIRED, DELETED, LOST"
    );

    // External IDs and customers name the earlier line too, across batches.
    ws.write(
        "ids.csv",
        "card_number,external_id\n6001000000000034,CX00000031\n6001000000000042,CX00000041\n\
         6001000000000034,CX00000032\n6001000000000026,CX00000041\n",
    );
    ws.import(&["external-ids", "ids.csv", "--batch-size", "1", "--overwrite"]);
    let ids: Vec<String> = report_messages(&ws, "ids.csv.rejects.csv")
        .into_iter()
        .map(|m| m.2)
        .collect();
    assert_eq!(
        ids,
        [
            "card \"6001000000000034\" gets an external ID earlier in the input, on line 2",
            "external_id \"CX00000041\" appears earlier in the input, on line 3",
        ]
    );
    ws.ok_json(&["org", "set", "CONF_CARD_NUMBER_GENERATION_ENABLED", "true"]);
    ws.write(
        "customers.csv",
        "customer_id,external_id\n1,CX00000101\n2,CX00000102\n1,CX00000103\n",
    );
    ws.import(&["customers", "customers.csv", "--batch-size", "1"]);
    assert_eq!(
        find_in(&ws, "customers.csv.rejects.csv", "DUPLICATE_IN_FILE"),
        "customer_id \"1\" appears earlier in the input, on line 2"
    );
}

fn find_in(ws: &Workspace, report: &str, reason: &str) -> String {
    report_messages(ws, report)
        .into_iter()
        .find(|(_, r, _)| r == reason)
        .map(|(_, _, m)| m)
        .unwrap_or_else(|| panic!("no {reason} in {report}"))
}

/// Renders `page` in headless Chromium: a screenshot (PNG) and the DOM as laid out.
fn render_in_chromium(page: &Path, dir: &Path) -> (Vec<u8>, String) {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|name| {
            Command::new(name)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("headless Chromium (Debian's `chromium`; scripts/install-deps.sh installs it)");
    let url = format!("file://{}", page.display());
    let profile = dir.join("chromium-profile");
    let common = [
        "--headless".to_string(),
        "--no-sandbox".to_string(),
        "--disable-gpu".to_string(),
        "--no-first-run".to_string(),
        format!("--user-data-dir={}", profile.display()),
    ];
    let shot = dir.join("page.png");
    let status = Command::new(chromium)
        .args(&common)
        .args([
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,1600".into(),
            url.clone(),
        ])
        .output()
        .unwrap();
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let dom = Command::new(chromium)
        .args(&common)
        .args(["--dump-dom".to_string(), url])
        .output()
        .unwrap();
    (
        std::fs::read(shot).unwrap(),
        String::from_utf8_lossy(&dom.stdout).into_owned(),
    )
}

/// The share of pixels that are not the page's white background.
fn ink(png: &[u8]) -> f64 {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buffer).unwrap();
    let pixels = &buffer[..frame.buffer_size()];
    let channels = frame.color_type.samples();
    let painted = pixels
        .chunks(channels)
        .filter(|pixel| pixel[..3].iter().any(|&c| c < 200))
        .count();
    painted as f64 / (pixels.len() / channels) as f64
}

fn the_html_report_renders_in_a_browser(backend: Backend) {
    let ws = backend.workspace();
    every_reason(&ws, "cards_every_reason.csv");
    let page = ws.path("run1.html");
    let output = ws.run(&["report", "--run", "1", "--output", page.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: nothing to fetch, nothing to run.
    for needle in ["<script", "src=", "href=", "url(", "@import"] {
        assert!(!html.contains(needle), "the page contains {needle}");
    }
    // The raw records are escaped: quotes and markup stay text.
    assert!(
        html.contains("NOT_ISSUED,,,&quot;first line\nsecond line&quot;"),
        "escaped raw record"
    );

    let (png, dom) = render_in_chromium(&page, &ws.path(""));
    let ink = ink(&png);
    assert!(ink > 0.01, "the screenshot is blank ({ink:.4} of its pixels painted)");
    for text in [
        "cardbatch run 1",
        "INVALID_CHARACTERS · card_number",
        "LENGTH_MISMATCH · external_id",
        "Where in the input the rejects fall",
        "6001-0000-0000-0042",
        "record 26",
    ] {
        assert!(dom.contains(text), "the rendered page lacks {text:?}");
    }
    // A whole record's reject has no field: its group is named by the reason alone.
    assert!(dom.contains("<h3>MALFORMED_RECORD (1 reject)</h3>"), "{dom}");
    assert!(!dom.contains(" · <") && !dom.contains(" · ("), "a label with no field");
    // The bar chart has one bar per group, the strip at least one mark.
    assert_eq!(dom.matches("fill=\"#c2410c\"").count(), 18);
    assert!(dom.contains("fill=\"#b3261e\""));
}

/// `count` valid LUHN1 card numbers, from counter `first` on.
fn luhn1_numbers(first: u64, count: usize) -> Vec<String> {
    use cardbatch::numbers::{Method, NumberFormat, NumberGenerator, PermutationKey};
    NumberGenerator::new(
        NumberFormat::new("6001", "", 16, Method::RandomLuhn).unwrap(),
        PermutationKey([9; 16]),
    )
    .render_block(first, count)
    .iter()
    .map(|number| number.to_string())
    .collect()
}

/// A night's drop: 1,000 good cards and `bad` with a wrong check digit, spread through it.
fn night(n: u64, bad: usize) -> (String, Vec<String>) {
    let numbers = luhn1_numbers(n * 10_000, 1_000 + bad);
    let mut text = String::from("card_number,series_code\n");
    let mut broken = Vec::new();
    for (i, number) in numbers.iter().enumerate() {
        let number = if i % 11 == 5 && broken.len() < bad {
            let last = number.as_bytes()[15] - b'0';
            let wrong = format!("{}{}", &number[..15], (last + 1) % 10);
            broken.push(wrong.clone());
            wrong
        } else {
            number.clone()
        };
        text.push_str(&format!("{number},LUHN1\n"));
    }
    (text, broken)
}

/// The page ops open after a night: the outcome in the exit code's words
/// and colour, the reject rate, the input (path, size, SHA-256, format),
/// every group reachable by a command, the job's nights as a table and a
/// chart where a bad night stands out, and card numbers masked on request.
fn the_report_shows_ops_the_outcome_the_rate_and_the_nights(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    let runs_before = ws.ok_json(&["runs", "list", "--json"])["runs"]
        .as_array()
        .unwrap()
        .len();
    let mut broken = Vec::new();
    for (n, bad) in [(1, 5), (2, 5), (3, 5), (4, 100)] {
        let (text, numbers) = night(n, bad);
        ws.write("drop.csv", text);
        let (code, summary) = ws.import(&["cards", "drop.csv"]);
        assert_eq!((code, summary["rejected"].as_u64()), (4, Some(bad as u64)), "{summary}");
        broken = numbers;
    }
    let run = (runs_before + 4).to_string();
    let page = ws.path("night.html");
    let output = ws.run(&["report", "--run", &run, "--output", page.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (png, dom) = render_in_chromium(&page, &ws.path(""));
    assert!(ink(&png) > 0.01);
    let sha256 = String::from_utf8(
        Command::new("sha256sum")
            .arg(ws.path("drop.csv"))
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let sha256 = sha256.split(' ').next().unwrap();
    let size = std::fs::metadata(ws.path("drop.csv")).unwrap().len();
    let absolute = std::fs::canonicalize(ws.path("drop.csv")).unwrap();
    for text in [
        "<strong>Completed with rejects</strong> (exit 4) · 100 of 1,100 rejected, 9.1%".to_string(),
        "outcome-rejects".to_string(),
        absolute.display().to_string(),
        format!("({} bytes)", cardbatch::report::html::thousands(size)),
        sha256.to_string(),
        "reading CSV, delimiter ','".to_string(),
        format!(
            "and 97 more: <code>cardbatch rejects export --run {run} --reason CHECKSUM_INVALID --field card_number</code>"
        ),
        "This job's runs".to_string(),
        "usual: 0.5%".to_string(),
    ] {
        assert!(dom.contains(&text), "the rendered page lacks {text:?}");
    }
    // The nights: four in the table, the bad one marked worse; four bars, the bad one red.
    let table = &dom[dom.find("<table class=\"history\">").expect("history table")..];
    let table = &table[..table.find("</table>").unwrap()];
    assert_eq!(table.matches("<tr").count(), 5, "{table}");
    assert_eq!(table.matches("class=\"n worse\"").count(), 1, "{table}");
    assert!(table.contains(&format!("{run} (this run)")), "{table}");
    let chart = &dom[dom.find("class=\"history-chart\"").expect("history chart")..];
    let chart = &chart[..chart.find("</svg>").unwrap()];
    assert_eq!(chart.matches("class=\"night\"").count(), 4, "{chart}");
    assert_eq!(chart.matches("fill=\"#b3261e\"").count(), 1, "{chart}");
    assert!(dom.contains(&broken[0]), "unmasked, the numbers show");

    // Masked: no rejected number shows, its first 6 and last 4 do; the commands keep masking.
    let masked = ws.path("masked.html");
    let output = ws.run(&[
        "report",
        "--run",
        &run,
        "--output",
        masked.to_str().unwrap(),
        "--mask-card-numbers",
    ]);
    assert!(output.status.success());
    let (_, dom) = render_in_chromium(&masked, &ws.path(""));
    for number in &broken {
        assert!(!dom.contains(number.as_str()), "{number} shows in the masked page");
        assert!(
            !dom.contains(&number[6..12]),
            "the middle of {number} shows in the masked page"
        );
    }
    assert!(
        dom.contains(&format!("{}******{}", &broken[0][..6], &broken[0][12..])),
        "masked form shown"
    );
    assert!(dom.contains("--field card_number --mask-card-numbers</code>"));
    for args in [
        vec!["rejects", "export", "--run", &run, "--mask-card-numbers"],
        vec!["rejects", "summary", "--run", &run, "--mask-card-numbers", "--json"],
    ] {
        let output = ws.run(&args);
        assert!(output.status.success());
        let text = String::from_utf8(output.stdout).unwrap();
        assert!(text.contains(&format!("{}******", &broken[0][..6])), "{args:?}: {text}");
        assert!(
            broken.iter().all(|number| !text.contains(&number[6..12])),
            "{args:?}: {text}"
        );
    }
    let refused = ws.run(&["rejects", "export", "--run", &run, "--as-input", "--mask-card-numbers"]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "--as-input gives the records back as they were"
    );

    // The wrong file: stopped by the guard, the page says aborted in red, exit 3.
    ws.write(
        "wrong.csv",
        format!("card_number,series_code\n{}", "12,LUHN1\n".repeat(1_200)),
    );
    let (code, summary) = ws.import(&["cards", "wrong.csv"]);
    assert_eq!(code, 3);
    let wrong = ws.path("wrong.html");
    let id = summary["run_id"].to_string();
    assert!(
        ws.run(&["report", "--run", &id, "--output", wrong.to_str().unwrap()])
            .status
            .success()
    );
    let (_, dom) = render_in_chromium(&wrong, &ws.path(""));
    assert!(
        dom.contains("outcome-aborted") && dom.contains("<strong>Aborted</strong> (exit 3"),
        "{dom}"
    );
    assert!(dom.contains("1,000 of 1,000 rejected, 100.0%"));
    assert!(dom.contains("No earlier run of an input of this name, kind and org."));
}

crate::on_every_backend!(
    the_report_shows_ops_the_outcome_the_rate_and_the_nights,
    every_filter_value_is_checked_and_summary_filters_too,
    summary_groups_rejects_by_reason_and_field,
    export_filters_by_reason_and_field,
    rejects_come_back_as_input_to_fix_and_import,
    messages_say_what_to_fix,
    the_html_report_renders_in_a_browser,
);
