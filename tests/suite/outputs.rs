//! Output paths are checked before anything is written: an output may not
//! be the database (or its `-wal`/`-shm`), the input, or another output, and
//! its directory must exist. A refused path is exit 2 naming the flag, and
//! nothing is committed. Outputs appear whole: `cards generate --output`
//! either delivers its file or stores nothing.

use std::path::Path;

use crate::common::{Backend, Workspace};

const SMALL_DROP: &str = "card_number,series_code\n6001000000000018,LUHN1\n6001000000000026,LUHN1\n";

/// Exit 2, a message naming `flag` and `words`, and nothing written.
fn assert_refused(ws: &Workspace, args: &[&str], flag: &str, words: &str) {
    let output = ws.run(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(flag) && stderr.contains(words), "{args:?}: {stderr}");
    assert_nothing_committed(ws);
}

fn assert_nothing_committed(ws: &Workspace) {
    assert_eq!(
        ws.query_i64("SELECT count(*) FROM runs"),
        Some(0),
        "no run was recorded"
    );
    // The setup's one card, nothing more.
    assert_eq!(ws.query_i64("SELECT count(*) FROM cards"), Some(1));
}

fn outputs_never_replace_the_database_the_input_or_each_other(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    ws.write("in.csv", SMALL_DROP);
    let database_file = ws.path("cards.db");
    let database = database_file.to_str().unwrap();
    let input_before = std::fs::read(ws.path("in.csv")).unwrap();
    if backend == Backend::Sqlite {
        for (flag, path, words) in [
            ("--reject-report", database.to_string(), "that is the database"),
            ("--summary", database.to_string(), "that is the database"),
            ("--reject-report", format!("{database}-wal"), "write-ahead log"),
            ("--summary", format!("{database}-shm"), "shared-memory"),
            // The same file by another name.
            (
                "--summary",
                ws.path("sub/../cards.db").display().to_string(),
                "that is the database",
            ),
        ] {
            std::fs::create_dir_all(ws.path("sub")).unwrap();
            assert_refused(&ws, &["import", "cards", "in.csv", flag, &path], flag, words);
        }
        // Still a SQLite database (its bytes may move from the WAL into it, so they are not compared).
        assert!(std::fs::read(&database_file).unwrap().starts_with(b"SQLite format 3\0"));
    }
    for flag in ["--reject-report", "--summary"] {
        assert_refused(
            &ws,
            &["import", "cards", "in.csv", flag, "in.csv"],
            flag,
            "that is the input",
        );
        assert_refused(
            &ws,
            &["import", "cards", "in.csv", flag, "./in.csv"],
            flag,
            "that is the input",
        );
    }
    assert_refused(
        &ws,
        &[
            "import",
            "cards",
            "in.csv",
            "--reject-report",
            "out.csv",
            "--summary",
            "out.csv",
        ],
        "--summary",
        "--reject-report writes the same file",
    );
    assert_refused(
        &ws,
        &["import", "cards", "in.csv", "--summary", "."],
        "--summary",
        "directory",
    );
    assert_eq!(std::fs::read(ws.path("in.csv")).unwrap(), input_before);
    // The default report is beside the input: an input named like it is refused too.
    ws.write("x.csv.rejects.csv", SMALL_DROP);
    assert_refused(
        &ws,
        &[
            "import",
            "cards",
            "x.csv.rejects.csv",
            "--reject-report",
            "x.csv.rejects.csv",
        ],
        "--reject-report",
        "that is the input",
    );
}

fn a_missing_directory_is_refused_before_anything_is_committed(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    ws.write("in.csv", SMALL_DROP);
    assert_refused(
        &ws,
        &["import", "cards", "in.csv", "--summary", "/missing-dir/s.json"],
        "--summary",
        "directory /missing-dir does not exist",
    );
    assert_refused(
        &ws,
        &["import", "cards", "in.csv", "--reject-report", "/missing-dir/r.csv"],
        "--reject-report",
        "does not exist",
    );
    // Then the import runs, and its outputs are there, whole.
    let (code, summary) = ws.import(&["cards", "in.csv", "--summary", "s.json"]);
    assert_eq!((code, summary["inserted"].as_u64()), (0, Some(2)));
    let written: serde_json::Value = serde_json::from_slice(&std::fs::read(ws.path("s.json")).unwrap()).unwrap();
    assert_eq!(written, summary);
    let report = std::fs::read_to_string(ws.path("in.csv.rejects.csv")).unwrap();
    assert_eq!(report, "line,record,reason,field,message,raw\r\n");
    assert_no_temporary_files(ws.dir.path());
}

fn assert_no_temporary_files(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains("cardbatch-tmp"), "left behind: {name}");
        assert!(!name.ends_with(".lock"), "left behind: {name}");
    }
}

fn generate_delivers_its_file_or_stores_nothing(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    let counter = || ws.query_i64("SELECT next_counter FROM card_series WHERE code = 'LUHN1'");
    let before = counter();
    // A path refused up front: exit 2, no cards, the counter where it was.
    let refused = ws.run(&[
        "cards",
        "generate",
        "--series-code",
        "LUHN1",
        "--count",
        "5",
        "--output",
        "/missing-dir/g.csv",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--output /missing-dir/g.csv"));
    // A write that fails (a full disk): exit 1, and still nothing stored.
    let full = ws.run(&[
        "cards",
        "generate",
        "--series-code",
        "LUHN1",
        "--count",
        "5",
        "--output",
        "/dev/full",
    ]);
    let stderr = String::from_utf8_lossy(&full.stderr);
    assert_eq!(full.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot write /dev/full") && stderr.contains("nothing was stored"),
        "{stderr}"
    );
    assert_eq!(counter(), before);
    assert_nothing_committed(&ws);
    // Delivered: the file is there, and cards export --run writes it again, byte for byte.
    let done = ws.ok_json(&[
        "cards",
        "generate",
        "--series-code",
        "LUHN1",
        "--count",
        "5",
        "--output",
        "g.csv",
    ]);
    let file = std::fs::read_to_string(ws.path("g.csv")).unwrap();
    let lines: Vec<&str> = file.lines().collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[0], "card_number,series_code,status_label");
    assert!(lines[1].ends_with(",LUHN1,NOT_ISSUED"), "{file}");
    let run = done["run_id"].to_string();
    let again = ws.run(&["cards", "export", "--run", &run, "--output", "again.csv"]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(std::fs::read_to_string(ws.path("again.csv")).unwrap(), file);
    let to_stdout = ws.run(&["cards", "export", "--run", &run]);
    assert_eq!(String::from_utf8(to_stdout.stdout).unwrap(), file);
    assert_eq!(ws.run(&["cards", "export", "--run", "999"]).status.code(), Some(2));
    assert_no_temporary_files(ws.dir.path());
}

fn exports_check_their_output_paths_too(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    for command in [&["events", "export"][..], &["rejects", "export", "--run", "1"][..]] {
        let args = [command, &["--output", "/missing-dir/out"][..]].concat();
        let output = ws.run(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("--output /missing-dir/out"));
    }
    if backend == Backend::Sqlite {
        let output = ws.run(&["events", "export", "--output", "cards.db"]);
        assert_eq!(output.status.code(), Some(2));
        assert!(
            ws.query_i64("SELECT count(*) FROM cards").is_some(),
            "the database is intact"
        );
    }
}

crate::on_every_backend!(
    outputs_never_replace_the_database_the_input_or_each_other,
    a_missing_directory_is_refused_before_anything_is_committed,
    generate_delivers_its_file_or_stores_nothing,
    exports_check_their_output_paths_too,
);
