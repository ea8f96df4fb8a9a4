//! What a person at a terminal sees: the progress bar (run under a real
//! pseudo-terminal with `script`), `--help` with a description for every
//! flag and examples for every command, shell completions and the man page.

use std::process::Command;

use crate::common::{Backend, big_cards_file};
use cardbatch::cli::Cli;
use clap::CommandFactory;

/// The progress frames of `text`: (committed, estimated total, percent).
fn frames(text: &str) -> Vec<(u64, u64, u64)> {
    text.split(['\r', '\n'])
        .filter_map(|frame| {
            let at = frame.find(" records committed (")?;
            let counts = frame[..at].rsplit(' ').next()?;
            let (done, total) = counts.split_once('/')?;
            let percent = frame[at + " records committed (".len()..].split('%').next()?;
            Some((done.parse().ok()?, total.parse().ok()?, percent.parse().ok()?))
        })
        .collect()
}

fn progress_counts_committed_records(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    let records = 120_000u64;
    ws.write("big.csv", big_cards_file(records));
    // `script` gives the import a terminal; what it draws lands in the transcript.
    let binary = assert_cmd::cargo::cargo_bin!("cardbatch");
    let output = Command::new("script")
        .args([
            "-qefc",
            &format!("{} import cards big.csv --batch-size 5000", binary.display()),
            "/dev/null",
        ])
        .current_dir(ws.path(""))
        .env("DATABASE_URL", &ws.url)
        .env("TERM", "xterm")
        .output()
        .expect("script (bsdutils) runs the import under a pseudo-terminal");
    let transcript = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.code() == Some(4), "{transcript}");
    let frames = frames(&transcript);
    assert!(frames.len() >= 2, "progress frames: {frames:?}\n{transcript}");
    // It only moves forward, counts committed records, and is at 100% only when all are in.
    assert!(frames.windows(2).all(|w| w[0].0 <= w[1].0), "{frames:?}");
    for &(done, total, percent) in &frames {
        assert!(done <= total, "{frames:?}");
        if percent == 100 {
            assert_eq!(done, records, "100% before the last commit: {frames:?}");
        }
    }
    assert_eq!(
        frames.last().map(|f| (f.0, f.1, f.2)),
        Some((records, records, 100)),
        "{frames:?}"
    );
    assert!(
        transcript.contains("rejects") && transcript.contains("ETA"),
        "{transcript}"
    );
    // The summary follows, and says the run.
    assert!(
        transcript.contains("run 1: import_cards of big.csv: completed"),
        "{transcript}"
    );
}

/// Every subcommand, depth first, with its path.
fn all_commands(command: &clap::Command, path: String, out: &mut Vec<(String, clap::Command)>) {
    for sub in command.get_subcommands() {
        let name = format!("{path} {}", sub.get_name());
        out.push((name.clone(), sub.clone()));
        all_commands(sub, name, out);
    }
}

#[test]
fn every_flag_has_a_description_and_every_command_examples() {
    let mut cli = Cli::command();
    cli.build();
    let mut commands = vec![("cardbatch".to_string(), cli.clone())];
    all_commands(&cli, "cardbatch".into(), &mut commands);
    let mut missing = Vec::new();
    for (path, command) in &commands {
        if path.split(' ').any(|word| word == "help") {
            continue;
        }
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if id != "help" && id != "version" && arg.get_help().is_none() {
                missing.push(format!("{path}: --{id} has no description"));
            }
        }
        let leaf = command.get_subcommands().all(|sub| sub.get_name() == "help");
        let examples = command
            .get_after_help()
            .is_some_and(|text| text.to_string().contains("Examples:"));
        if leaf && !examples {
            missing.push(format!("{path}: no examples at the end of --help"));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn help_ends_with_examples_and_the_exit_codes() {
    let output = Command::new(assert_cmd::cargo::cargo_bin!("cardbatch"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    let examples = help.find("Examples:").expect("examples");
    let codes = help.find("Exit codes:").expect("exit codes");
    assert!(examples < codes);
    assert!(
        help.contains("  4 ") && help.contains("completed with rejects"),
        "{help}"
    );
    let output = Command::new(assert_cmd::cargo::cargo_bin!("cardbatch"))
        .args(["import", "cards", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(
        help.contains("--max-rejects <N|N%>") && help.contains("cardbatch import cards drop.csv"),
        "{help}"
    );
}

#[test]
fn completions_and_man_page_come_from_the_same_definition() {
    for shell in ["bash", "zsh", "fish"] {
        let output = Command::new(assert_cmd::cargo::cargo_bin!("cardbatch"))
            .args(["completions", shell])
            .env("DATABASE_URL", "postgres://u:p@127.0.0.1:1/never-opened")
            .output()
            .unwrap();
        assert!(output.status.success(), "{shell}");
        let script = String::from_utf8(output.stdout).unwrap();
        for word in ["cardbatch", "import", "rejects", "max-rejects", "as-input"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let bash = Command::new("bash")
        .args(["-n", "-c"])
        .arg(
            String::from_utf8(
                Command::new(assert_cmd::cargo::cargo_bin!("cardbatch"))
                    .args(["completions", "bash"])
                    .output()
                    .unwrap()
                    .stdout,
            )
            .unwrap(),
        )
        .status()
        .unwrap();
    assert!(bash.success(), "the bash completion script parses");
    let output = Command::new(assert_cmd::cargo::cargo_bin!("cardbatch"))
        .arg("man")
        .output()
        .unwrap();
    let page = String::from_utf8(output.stdout).unwrap();
    assert!(
        page.starts_with(".ie") || page.contains(".TH cardbatch"),
        "{}",
        &page[..200.min(page.len())]
    );
    assert!(
        page.contains("import") && page.contains("Exit codes"),
        "the man page has the commands and exit codes"
    );
}

crate::on_every_backend!(progress_counts_committed_records);
