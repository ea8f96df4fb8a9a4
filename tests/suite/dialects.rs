//! Files from other systems, through the real binary: other delimiters,
//! encodings and column names, constants, spreadsheet damage, re-delivered
//! rows, gzip run identity and report names. Fixtures in `tests/data/dialects/`.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::common::{Backend, Workspace, assert_accounted};

const DIALECTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/dialects");

/// Copies a fixture from tests/data/dialects into the workspace as `as_name`.
fn dialect(ws: &Workspace, name: &str, as_name: &str) -> Vec<u8> {
    let bytes = std::fs::read(Path::new(DIALECTS).join(name)).expect("fixture");
    ws.write(as_name, &bytes);
    bytes
}

/// (line, reason, field, message) of each row of a reject report.
fn report(path: PathBuf) -> Vec<(u64, String, String, String)> {
    let mut reader = csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (
                r[0].parse().unwrap(),
                r[2].to_string(),
                r[3].to_string(),
                r[4].to_string(),
            )
        })
        .collect()
}

/// Runs `cardbatch ARGS`; asserts exit 2 and returns stderr.
fn usage_error(ws: &Workspace, args: &[&str]) -> String {
    let output = ws.run(args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    stderr
}

fn runs(ws: &Workspace) -> usize {
    ws.ok_json(&["runs", "list", "--json"])["runs"]
        .as_array()
        .map_or(0, Vec::len)
}

fn enable_customer_ids(ws: &Workspace) {
    for (key, value) in [
        ("CONF_CARD_NUMBER_GENERATION_ENABLED", "true"),
        ("CONF_CARD_NUMBER_LENGTH", "10"),
        ("CONF_CARD_NUMBER_PREFIX", "CU"),
        ("CONF_CARD_CHECKSUM_DIGIT_ALGO", "RANDOM_MOD7"),
    ] {
        ws.ok_json(&["org", "set", key, value]);
    }
}

fn one_field_records_are_read(backend: Backend) {
    let ws = backend.workspace();
    enable_customer_ids(&ws);
    ws.write("c.csv", "customer_id\n123\n124\n");
    let (code, summary) = ws.import(&["customers", "c.csv"]);
    assert_eq!((code, summary["inserted"].as_u64()), (0, Some(2)), "{summary}");
    assert_accounted(&summary);
}

fn messages_say_what_is_wrong_with_the_file(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    // A record with too few fields says how many it has and the header has.
    ws.write("short.csv", "card_number,series_code\n6001000000000018\n");
    let (code, _) = ws.import(&["cards", "short.csv"]);
    assert_eq!(code, 4);
    let rejects = report(ws.path("short.csv.rejects.csv"));
    assert_eq!(rejects[0].1, "MALFORMED_RECORD");
    assert_eq!(rejects[0].3, "the record has 1 field(s), the header has 2");
    // A `;` header read with the wrong delimiter names the one it needs.
    ws.write("semi.csv", "card_number;series_code\n6001000000000018;LUHN1\n");
    let stderr = usage_error(&ws, &["import", "cards", "semi.csv", "--delimiter", ","]);
    assert!(stderr.contains("--delimiter ';'"), "{stderr}");
    // A header without the required columns is printed as read, and the flag named.
    ws.write("other.csv", "CardNo,Series,Status\n6001000000000018,LUHN1,ACTIVE\n");
    let stderr = usage_error(&ws, &["import", "cards", "other.csv"]);
    assert!(stderr.contains("CardNo,Series,Status"), "{stderr}");
    assert!(stderr.contains("--column"), "{stderr}");
    // Unknown fields and headers in a mapping are refused by name, before anything is written.
    let stderr = usage_error(&ws, &["import", "cards", "other.csv", "--column", "card_nmuber=CardNo"]);
    assert!(stderr.contains("card_nmuber"), "{stderr}");
    let stderr = usage_error(
        &ws,
        &[
            "import",
            "cards",
            "other.csv",
            "--column",
            "card_number=CardNumber",
            "--column",
            "series_code=Series",
        ],
    );
    assert!(stderr.contains("CardNumber"), "{stderr}");
    // A field given by --set and by a column of the file.
    let stderr = usage_error(&ws, &["import", "cards", "semi.csv", "--set", "series_code=LUHN1"]);
    assert!(stderr.contains("--set"), "{stderr}");
    assert_eq!(runs(&ws), 1, "only short.csv made a run");
    // Mapped, the same file goes in.
    let (code, summary) = ws.import(&[
        "cards",
        "other.csv",
        "--column",
        "card_number=CardNo",
        "--column",
        "series_code=Series",
        "--column",
        "status_label=Status",
    ]);
    assert_eq!((code, summary["inserted"].as_u64()), (0, Some(1)), "{summary}");
    assert_eq!(
        ws.query_texts("SELECT status_label FROM cards WHERE card_number = '6001000000000018'"),
        ["ACTIVE"]
    );
}

const EUROPEAN_FLAGS: [&str; 10] = [
    "--encoding",
    "windows-1252",
    "--column",
    "card_number=Numéro",
    "--column",
    "series_code=Série",
    "--column",
    "status_label=Statut",
    "--column",
    "status_reason=Motif",
];

fn a_european_excel_export_is_read_and_given_back_byte_for_byte(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    let original = dialect(&ws, "european_excel.csv", "eu.csv");
    let mut args = vec!["cards", "eu.csv"];
    args.extend(EUROPEAN_FLAGS);
    // A dry run states the plan first.
    let mut dry = args.clone();
    dry.push("--dry-run");
    let (code, summary) = ws.import(&dry);
    assert_eq!(code, 4, "{summary}");
    let description = summary["reading"]["description"].as_str().unwrap();
    assert!(
        description.starts_with(
            "reading CSV, delimiter ';' (detected), encoding windows-1252, columns Numéro→card_number, \
             Série→series_code, Statut→status_label, Motif→status_reason"
        ),
        "{description}"
    );
    assert!(summary["reading"]["crlf"].as_bool().unwrap());
    let warnings = summary["warnings"].to_string();
    assert!(warnings.contains("detected the delimiter ';'"), "{warnings}");

    let (code, summary) = ws.import(&args);
    assert_eq!(code, 4, "{summary}");
    assert_accounted(&summary);
    assert_eq!(
        (summary["inserted"].as_u64(), summary["rejected"].as_u64()),
        (Some(3), Some(1))
    );
    // Stored as UTF-8.
    assert_eq!(
        ws.query_texts("SELECT status_reason FROM cards WHERE card_number = '6001000000000018'"),
        ["Carte émise à Zürich – 5€"]
    );
    let rejects = report(ws.path("eu.csv.rejects.csv"));
    assert_eq!((rejects[0].0, rejects[0].1.as_str()), (3, "CHECKSUM_INVALID"));
    // Given back as the input had it: Windows-1252, `;`, CR LF, the header first.
    let run = summary["run_id"].to_string();
    let output = ws.run(&["rejects", "export", "--run", &run, "--as-input", "--output", "back.csv"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<&[u8]> = original.split_inclusive(|&b| b == b'\n').collect();
    assert_eq!(
        std::fs::read(ws.path("back.csv")).unwrap(),
        [lines[0], lines[2]].concat()
    );
    // The report ops open shows the record's raw text decoded.
    let output = ws.run(&["rejects", "export", "--run", &run]);
    assert!(String::from_utf8_lossy(&output.stdout).contains("Chèque refusé"));

    // Run again without the flags, the run reads the file as it began to.
    let (code, summary) = ws.import(&["cards", "eu.csv"]);
    assert_eq!(code, 4, "{summary}");
    let warnings = summary["warnings"].to_string();
    assert!(warnings.contains("already imported completely"), "{warnings}");
    assert!(warnings.contains("began to read it"), "{warnings}");
    // With other reading options, it is refused.
    let stderr = usage_error(&ws, &["import", "cards", "eu.csv", "--delimiter", ";"]);
    assert!(stderr.contains("the same reading options"), "{stderr}");
    let stderr = usage_error(
        &ws,
        &[
            "import",
            "cards",
            "eu.csv",
            "--encoding",
            "windows-1252",
            "--column",
            "card_number=Numéro",
            "--column",
            "series_code=Série",
        ],
    );
    assert!(stderr.contains("these options read it as"), "{stderr}");

    // The same mapping from a file reads the same.
    dialect(&ws, "european_excel.toml", "map.toml");
    dialect(&ws, "european_excel.csv", "eu2.csv");
    let (code, summary) = ws.import(&["cards", "eu2.csv", "--mapping", "map.toml", "--dry-run"]);
    assert_eq!(code, 4, "{summary}");
    assert_eq!(summary["reading"]["delimiter"], ";");
    assert_eq!(summary["reading"]["delimiter_detected"], false);
    assert_eq!(summary["reading"]["columns"].as_array().map(Vec::len), Some(4));
    // The database already holds what eu.csv put in: those are unchanged now.
    assert_eq!(summary["unchanged"].as_u64(), Some(3), "{summary}");
}

fn tabs_pipes_and_utf16_are_read(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    dialect(&ws, "cards.tsv", "cards.tsv");
    let (code, summary) = ws.import(&["cards", "cards.tsv"]);
    assert_eq!(code, 4, "{summary}");
    assert_eq!(summary["inserted"].as_u64(), Some(2));
    assert_eq!(summary["reading"]["delimiter"], "\t");
    assert_eq!(report(ws.path("cards.tsv.rejects.csv"))[0].0, 4);

    let ws = backend.workspace();
    ws.import_setup();
    dialect(&ws, "pipe_no_header.csv", "pipe.csv");
    let (code, summary) = ws.import(&[
        "cards",
        "pipe.csv",
        "--no-header",
        "--delimiter",
        "|",
        "--column",
        "card_number=1",
        "--column",
        "series_code=2",
        "--column",
        "external_id=3",
    ]);
    assert_eq!((code, summary["inserted"].as_u64()), (0, Some(2)), "{summary}");
    assert_eq!(
        ws.query_texts("SELECT external_id FROM cards WHERE card_number = '770000000011'"),
        ["CX00000011"]
    );

    let ws = backend.workspace();
    ws.import_setup();
    dialect(&ws, "utf16le_bom.csv", "utf16.csv");
    let (code, summary) = ws.import(&["cards", "utf16.csv"]);
    assert_eq!((code, summary["inserted"].as_u64()), (0, Some(2)), "{summary}");
    assert_eq!(summary["reading"]["encoding"], "UTF-16LE");
    assert_eq!(
        ws.query_texts("SELECT status_reason FROM cards WHERE card_number = '6001000000000018'"),
        ["Zürich"]
    );
}

fn a_partner_file_for_one_series_gets_it_by_set(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    dialect(&ws, "partner_one_series.csv", "partner.csv");
    let (code, summary) = ws.import(&[
        "cards",
        "partner.csv",
        "--column",
        "card_number=CardNo",
        "--column",
        "status_label=Status",
        "--set",
        "series_code=LUHN1",
    ]);
    assert_eq!((code, summary["inserted"].as_u64()), (0, Some(2)), "{summary}");
    let description = summary["reading"]["description"].as_str().unwrap();
    assert!(
        description.contains("series_code=LUHN1 for every record"),
        "{description}"
    );
    let series = ws.query_texts(
        "SELECT DISTINCT s.code FROM cards c JOIN card_series s ON s.org_id = c.org_id AND s.id = c.series_id WHERE c.card_number LIKE '6001%'",
    );
    assert_eq!(series, ["LUHN1"]);
}

fn spreadsheet_damage_is_named_and_separators_stripped_on_request(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    ws.series(&[
        "--code",
        "ZERO",
        "--type",
        "DIGITAL",
        "--prefix",
        "000",
        "--length",
        "16",
        "--method",
        "LUHN_ALGO",
    ]);
    dialect(&ws, "spreadsheet_damage.csv", "damaged.csv");
    let (code, summary) = ws.import(&["cards", "damaged.csv", "--dry-run"]);
    assert_eq!(code, 4);
    assert_eq!(summary["inserted"].as_u64(), Some(1));
    let rejects = report(ws.path("damaged.csv.dry-run.rejects.csv"));
    let message = |line: u64| rejects.iter().find(|r| r.0 == line).unwrap().3.clone();
    assert!(message(2).contains("--strip-separators"), "{}", message(2));
    assert!(message(3).contains("--strip-separators"), "{}", message(3));
    assert!(
        message(4).contains("a spreadsheet turned it into a float and its digits are lost"),
        "{}",
        message(4)
    );
    let zeros = rejects.iter().find(|r| r.0 == 5).unwrap();
    assert_eq!(zeros.1, "LENGTH_MISMATCH");
    assert!(zeros.3.contains("leading zeros may have been dropped"), "{}", zeros.3);
    assert!(zeros.3.contains("\"0001314611071253\" would be valid"), "{}", zeros.3);

    let (code, summary) = ws.import(&["cards", "damaged.csv", "--strip-separators"]);
    assert_eq!(code, 4);
    assert_accounted(&summary);
    assert_eq!(summary["separators_stripped"].as_u64(), Some(2));
    assert_eq!(summary["inserted"].as_u64(), Some(3));
    let stored =
        ws.query_texts("SELECT card_number FROM cards WHERE card_number IN ('6001000000000042', '6001000000000059')");
    assert_eq!(stored.len(), 2, "stored without separators");
    // Nothing is padded: the short number is still rejected.
    let reasons: Vec<String> = report(ws.path("damaged.csv.rejects.csv"))
        .into_iter()
        .map(|r| r.1)
        .collect();
    assert_eq!(reasons, ["INVALID_CHARACTERS", "LENGTH_MISMATCH"]);
}

fn re_delivered_records_are_unchanged_not_rejected(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    let header = "card_number,series_code,status_label,external_id,extended_fields\n";
    let night1 = "6001000000000018,LUHN1,ACTIVE,CX00000018,\"{\"\"tier\"\": 1, \"\"since\"\": \"\"2020\"\"}\"\n\
                  770000000011,MOD1,NOT_ISSUED,,\n";
    ws.write("cumulative.csv", format!("{header}{night1}"));
    let (code, summary) = ws.import(&["cards", "cumulative.csv"]);
    assert_eq!((code, summary["inserted"].as_u64()), (0, Some(2)), "{summary}");
    let events = ws.events().len();
    // The next night's file holds yesterday's records again (the JSON with
    // its keys in another order), then today's.
    let night2 = "6001000000000018,LUHN1,ACTIVE,CX00000018,\"{\"\"since\"\":\"\"2020\"\",\"\"tier\"\":1}\"\n\
                  770000000011,MOD1,NOT_ISSUED,,\n\
                  6001000000000026,LUHN1,NOT_ISSUED,,\n";
    ws.write("cumulative.csv", format!("{header}{night2}"));
    let (code, summary) = ws.import(&["cards", "cumulative.csv"]);
    assert_eq!(code, 0, "{summary}");
    assert_accounted(&summary);
    assert_eq!(
        (
            summary["inserted"].as_u64(),
            summary["unchanged"].as_u64(),
            summary["rejected"].as_u64()
        ),
        (Some(1), Some(2), Some(0))
    );
    assert_eq!(summary["run_totals"]["unchanged"].as_u64(), Some(2));
    assert_eq!(ws.events().len(), events + 1, "one event, for the new card");
    // A stored key with other values is a duplicate naming the first field that differs.
    ws.write(
        "changed.csv",
        format!("{header}6001000000000018,LUHN1,SUSPENDED,CX00000018,\n"),
    );
    let (code, _) = ws.import(&["cards", "changed.csv"]);
    assert_eq!(code, 4);
    let rejects = report(ws.path("changed.csv.rejects.csv"));
    assert_eq!(rejects[0].1, "DUPLICATE_IN_DATABASE");
    assert!(
        rejects[0]
            .3
            .contains("with other values: its status_label is \"ACTIVE\", this record's \"SUSPENDED\""),
        "{}",
        rejects[0].3
    );
    let runs_list = ws.ok_json(&["runs", "list", "--json"]);
    let second = runs_list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["run_id"] == 2)
        .unwrap();
    assert_eq!(second["unchanged"].as_u64(), Some(2), "{second}");

    // External IDs: the same ID already on the card is unchanged.
    ws.write(
        "ids.csv",
        "card_number,external_id\n6001000000000018,CX00000018\n6001000000000026,CX00000026\n",
    );
    let (code, summary) = ws.import(&["external-ids", "ids.csv"]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(
        (summary["inserted"].as_u64(), summary["unchanged"].as_u64()),
        (Some(1), Some(1))
    );

    // Customers: registered with the same external ID, or the record gives none.
    let ws = backend.workspace();
    enable_customer_ids(&ws);
    let valid = ws.ok_json(&["external-id", "generate"])["entity"]
        .as_str()
        .unwrap()
        .to_string();
    ws.write("customers.csv", format!("customer_id,external_id\n201,{valid}\n202,\n"));
    let (code, _) = ws.import(&["customers", "customers.csv"]);
    assert_eq!(code, 0);
    ws.write(
        "customers.csv",
        format!("customer_id,external_id\n201,{valid}\n202,\n203,\n"),
    );
    let (code, summary) = ws.import(&["customers", "customers.csv"]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(
        (summary["inserted"].as_u64(), summary["unchanged"].as_u64()),
        (Some(1), Some(2))
    );
}

fn gzip_inputs_are_identified_by_their_records(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    let csv = "card_number,series_code\n6001000000000018,LUHN1\n";
    for (name, mtime) in [("a.csv.gz", 1), ("b.csv.gz", 2)] {
        let mut encoder = flate2::GzBuilder::new()
            .mtime(mtime)
            .write(Vec::new(), flate2::Compression::default());
        encoder.write_all(csv.as_bytes()).unwrap();
        ws.write(name, encoder.finish().unwrap());
    }
    assert_ne!(
        std::fs::read(ws.path("a.csv.gz")).unwrap(),
        std::fs::read(ws.path("b.csv.gz")).unwrap()
    );
    let (code, first) = ws.import(&["cards", "a.csv.gz"]);
    assert_eq!((code, first["inserted"].as_u64()), (0, Some(1)));
    let (code, second) = ws.import(&["cards", "b.csv.gz"]);
    assert_eq!(code, 0);
    assert_eq!(second["run_id"], first["run_id"], "one run: the same records");
    assert!(second["warnings"].to_string().contains("already imported completely"));
}

fn no_run_replaces_another_runs_report(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    let header = "card_number,series_code\n";
    ws.write("nightly.csv", format!("{header}6001000000000019,LUHN1\n"));
    let (_, first) = ws.import(&["cards", "nightly.csv"]);
    assert_eq!(first["reject_report"], "nightly.csv.rejects.csv");
    let night1 = std::fs::read(ws.path("nightly.csv.rejects.csv")).unwrap();
    // The same run again writes its own report in its place.
    let (_, again) = ws.import(&["cards", "nightly.csv"]);
    assert_eq!(again["reject_report"], "nightly.csv.rejects.csv");
    // The next night's file under the same name is another run: its report has the run's id.
    ws.write("nightly.csv", format!("{header}6001000000000027,LUHN1\n"));
    let (_, second) = ws.import(&["cards", "nightly.csv"]);
    let expected = format!("nightly.csv.run{}.rejects.csv", second["run_id"]);
    assert_eq!(second["reject_report"], expected.as_str());
    assert_eq!(std::fs::read(ws.path("nightly.csv.rejects.csv")).unwrap(), night1);
    assert!(
        std::fs::read_to_string(ws.path(&expected))
            .unwrap()
            .contains("6001000000000027")
    );
    // Resumed or re-run, that run keeps writing its own.
    let (_, again) = ws.import(&["cards", "nightly.csv"]);
    assert_eq!(again["reject_report"], expected.as_str());
    // A dry run's report has a name of its own.
    let (_, dry) = ws.import(&["cards", "nightly.csv", "--dry-run"]);
    assert_eq!(dry["reject_report"], "nightly.csv.dry-run.rejects.csv");
}

/// The rows of the report at `path` (relative to the workspace) as CSV lines, header left out.
fn report_rows(ws: &Workspace, path: &str) -> Vec<String> {
    std::fs::read_to_string(ws.path(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect()
}

/// A nightly file that grows: when it opens with the whole of the night
/// before's file and nothing has changed since, the night before's
/// verdicts stand for those records (no card read); the new records are
/// judged as they would be anyway. When something changed, every record is
/// judged against the cards again.
fn a_cumulative_file_takes_the_night_befores_verdicts_when_nothing_changed(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    // Dirty: every 97th check digit broken, every 101st row repeats a number.
    let whole = crate::common::big_cards_file(6_000);
    let lines: Vec<&str> = whole.lines().collect();
    let night = |records: usize| lines[..=records].join("\n") + "\n";
    ws.write("drop.csv", night(3_000));
    let (_, first) = ws.import(&["cards", "drop.csv"]);
    let first_report = report_rows(&ws, first["reject_report"].as_str().unwrap());
    ws.write("drop.csv", &whole);
    // A dry run reads every card: what the new records' verdicts must be.
    let (_, dry) = ws.import(&["cards", "drop.csv", "--dry-run"]);
    let events = ws.events().len();
    let (code, second) = ws.import(&["cards", "drop.csv"]);
    assert_eq!(code, 4, "{second}");
    assert_accounted(&second);
    let warnings = second["warnings"].to_string();
    assert!(
        warnings.contains(&format!("records 1 to 3000 are run {}'s whole input", first["run_id"])),
        "{second}"
    );
    let n = |summary: &serde_json::Value, key: &str| summary[key].as_u64().unwrap();
    assert_eq!(n(&second, "unchanged"), n(&first, "inserted") + n(&first, "unchanged"));
    assert_eq!(n(&second, "inserted"), n(&dry, "inserted"));
    assert_eq!(n(&second, "already_committed"), 0);
    assert_eq!(
        ws.events().len() - events,
        n(&second, "inserted") as usize,
        "events for the new cards only"
    );
    // The night before's rejects stand as they were; the new records' are the dry run's.
    let second_report = report_rows(&ws, second["reject_report"].as_str().unwrap());
    let dry_report = report_rows(&ws, "drop.csv.dry-run.rejects.csv");
    let record = |row: &String| row.split(',').nth(1).unwrap().parse::<u64>().unwrap();
    let (old, new): (Vec<String>, Vec<String>) = second_report.into_iter().partition(|row| record(row) <= 3_000);
    assert_eq!(old, first_report);
    assert_eq!(
        new,
        dry_report
            .into_iter()
            .filter(|row| record(row) > 3_000)
            .collect::<Vec<_>>()
    );
    assert!(!new.is_empty());
    assert_eq!(n(&second, "rejected"), n(&first, "rejected") + new.len() as u64);

    // Something changed since (an external ID set by hand): every card is read again.
    let number = lines[2].split(',').next().unwrap();
    ws.ok_json(&[
        "cards",
        "set-external-id",
        "--card-number",
        number,
        "--external-id",
        "CX90000007",
    ]);
    let third_file = whole.clone() + &lines[6_001 - 100..].join("\n").replace("LUHN1,CX", "LUHN1,DX") + "\n";
    ws.write("drop.csv", &third_file);
    let (_, third) = ws.import(&["cards", "drop.csv"]);
    assert!(!third["warnings"].to_string().contains("whole input"), "{third}");
    let third_report = report_rows(&ws, third["reject_report"].as_str().unwrap());
    assert!(
        third_report
            .iter()
            .any(|row| row.starts_with("3,2,DUPLICATE_IN_DATABASE,")),
        "the card changed by hand is judged again: {third_report:?}"
    );

    // Nothing changed since, but the file is not the night before's plus more
    // (one early record differs): every card is read.
    let edited = third_file.replacen(lines[10], &lines[10].replace(",CX", ",EX"), 1) + lines[5] + "\n";
    ws.write("drop.csv", &edited);
    let (_, fourth) = ws.import(&["cards", "drop.csv"]);
    assert!(!fourth["warnings"].to_string().contains("whole input"), "{fourth}");
    assert_accounted(&fourth);
}

crate::on_every_backend!(
    a_cumulative_file_takes_the_night_befores_verdicts_when_nothing_changed,
    one_field_records_are_read,
    messages_say_what_is_wrong_with_the_file,
    a_european_excel_export_is_read_and_given_back_byte_for_byte,
    tabs_pipes_and_utf16_are_read,
    a_partner_file_for_one_series_gets_it_by_set,
    spreadsheet_damage_is_named_and_separators_stripped_on_request,
    re_delivered_records_are_unchanged_not_rejected,
    gzip_inputs_are_identified_by_their_records,
    no_run_replaces_another_runs_report,
);
