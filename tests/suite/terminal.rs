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
        help.contains("--max-rejects <N|N%|none>") && help.contains("cardbatch import cards drop.csv"),
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
    assert!(page.contains(".TH cardbatch"), "{}", &page[..200.min(page.len())]);
}

/// A page as `man` prints it, without its overstrikes (`N\bN` for bold).
fn plain(rendered: &str) -> String {
    let mut text = String::new();
    for c in rendered.chars() {
        if c == '\u{8}' {
            text.pop();
        } else {
            text.push(c);
        }
    }
    text
}

/// Every command and subcommand: its page's name (`cardbatch-import-cards`),
/// its path on the command line (`import cards`), its definition.
fn every_command(command: &clap::Command, path: &[String], out: &mut Vec<(String, Vec<String>, clap::Command)>) {
    let name = std::iter::once("cardbatch".to_string())
        .chain(path.iter().cloned())
        .collect::<Vec<_>>()
        .join("-");
    out.push((name, path.to_vec(), command.clone()));
    for sub in command.get_subcommands().filter(|sub| sub.get_name() != "help") {
        let mut longer = path.to_vec();
        longer.push(sub.get_name().to_string());
        every_command(sub, &longer, out);
    }
}

/// `man --output DIR` writes a page per command; each, rendered by `man -l`,
/// names every flag of its command, and the exit-code table keeps its columns.
#[test]
fn man_pages_render_one_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(assert_cmd::cargo::cargo_bin!("cardbatch"))
        .args(["man", "--output"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let mut commands = Vec::new();
    every_command(&Cli::command(), &[], &mut commands);
    assert!(commands.len() > 30, "{}", commands.len());
    let mut written: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    written.sort();
    let mut expected: Vec<String> = commands.iter().map(|(name, _, _)| format!("{name}.1")).collect();
    expected.sort();
    assert_eq!(written, expected);
    for (name, _, command) in &commands {
        let rendered = Command::new("man")
            .arg("-l")
            .arg(dir.path().join(format!("{name}.1")))
            .env("MANWIDTH", "100")
            .env("PAGER", "cat")
            .output()
            .expect("man (man-db) renders the page");
        assert!(
            rendered.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&rendered.stderr)
        );
        let text = plain(&String::from_utf8_lossy(&rendered.stdout));
        for arg in command.get_arguments().filter(|arg| !arg.is_hide_set()) {
            if let Some(long) = arg.get_long() {
                assert!(text.contains(&format!("--{long}")), "{name}.1 lacks --{long}:\n{text}");
            }
        }
        for sub in command.get_subcommands().filter(|sub| sub.get_name() != "help") {
            assert!(
                text.contains(&format!("{name}-{}(1)", sub.get_name())),
                "{name}.1 lacks its subcommand {}",
                sub.get_name()
            );
        }
    }
    // The exit codes of the top page: one row per code, the meanings in one column.
    let text = plain(&String::from_utf8_lossy(
        &Command::new("man")
            .arg("-l")
            .arg(dir.path().join("cardbatch.1"))
            .env("MANWIDTH", "100")
            .env("PAGER", "cat")
            .output()
            .unwrap()
            .stdout,
    ));
    let rows: Vec<&str> = text
        .lines()
        .filter(|line| {
            let code = line.trim_start().split(' ').next().unwrap_or("");
            ["0", "1", "2", "3", "4", "130/143"].contains(&code) && line.trim_start().len() > 20
        })
        .collect();
    assert_eq!(rows.len(), 6, "{text}");
    let column = |line: &str| {
        let start = line.len() - line.trim_start().len();
        let code_end = start + line.trim_start().find(' ').unwrap();
        code_end + line[code_end..].len() - line[code_end..].trim_start().len()
    };
    let first = column(rows[0]);
    assert!(rows.iter().all(|row| column(row) == first), "{rows:#?}");
}

/// Every command's `--help` fits 100 columns, shows each default, never
/// shows a flag with a default as required, and never shows the value of
/// `DATABASE_URL` (a password may be in it).
#[test]
fn help_fits_100_columns_and_shows_defaults() {
    let mut commands = Vec::new();
    every_command(&Cli::command(), &[], &mut commands);
    for (name, path, command) in &commands {
        let output = Command::new(assert_cmd::cargo::cargo_bin!("cardbatch"))
            .args(path)
            .arg("--help")
            .env("DATABASE_URL", "postgres://cardbatch:s3cret@db.example/cards")
            .env("COLUMNS", "200")
            .output()
            .unwrap();
        assert!(output.status.success(), "{name}");
        let help = String::from_utf8(output.stdout).unwrap();
        for line in help.lines() {
            assert!(
                line.chars().count() <= 100,
                "{name} --help, {} columns: {line}",
                line.chars().count()
            );
        }
        assert!(!help.contains("s3cret"), "{name} --help shows DATABASE_URL's value");
        let usage = help.lines().find(|line| line.starts_with("Usage:")).unwrap();
        assert!(!usage.contains("--database-url"), "{usage}");
        let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for arg in command.get_arguments().filter(|arg| !arg.is_hide_set()) {
            for default in arg.get_default_values() {
                let shown = format!("[default: {}]", default.to_string_lossy());
                assert!(
                    flat.contains(&shown),
                    "{name} --help lacks {shown} of --{:?}",
                    arg.get_long()
                );
            }
        }
    }
}

/// Runs `cardbatch ARGS` under a pseudo-terminal (`script`) with `env`; returns the transcript.
fn on_a_terminal(ws: &crate::common::Workspace, args: &str, env: &[(&str, &str)]) -> String {
    let binary = assert_cmd::cargo::cargo_bin!("cardbatch");
    let mut command = Command::new("script");
    command
        .args(["-qefc", &format!("{} {args}", binary.display()), "/dev/null"])
        .current_dir(ws.path(""))
        .env("DATABASE_URL", &ws.url)
        .env("TERM", "xterm")
        .env_remove("NO_COLOR");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("script (bsdutils) gives a pseudo-terminal");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Whether `text` holds an SGR colour sequence (ESC [ ... m); cursor moves do not count.
fn coloured(text: &str) -> bool {
    text.split('\u{1b}').skip(1).any(|tail| {
        tail.strip_prefix('[').is_some_and(|rest| {
            let end = rest.find(|c: char| !c.is_ascii_digit() && c != ';');
            end.is_some_and(|end| end > 0 && rest[end..].starts_with('m'))
        })
    })
}

/// `--color auto|always|never` on every command; `auto` means a terminal on
/// that stream and NO_COLOR unset; NO_COLOR reaches the logs and the bar.
fn colour_follows_color_and_no_color(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    ws.write("big.csv", big_cards_file(30_000));
    let import = "import cards big.csv --batch-size 5000 --max-rejects none";
    // On a terminal, by default: the progress bar and the log lines are coloured.
    let transcript = on_a_terminal(&ws, import, &[("RUST_LOG", "cardbatch=info")]);
    assert!(
        transcript.contains("records committed") && coloured(&transcript),
        "{transcript:?}"
    );
    for env in [
        &[("RUST_LOG", "cardbatch=info"), ("NO_COLOR", "1")][..],
        &[("RUST_LOG", "cardbatch=info")],
    ] {
        let args = if env.len() == 2 {
            "runs list".to_string()
        } else {
            "runs list --color never".to_string()
        };
        let transcript = on_a_terminal(&ws, &args, env);
        assert!(transcript.contains("opened store"), "{transcript:?}");
        assert!(!coloured(&transcript), "{args} {env:?}: {transcript:?}");
    }
    let transcript = on_a_terminal(&ws, "runs list", &[("RUST_LOG", "cardbatch=info"), ("NO_COLOR", "")]);
    assert!(coloured(&transcript), "an empty NO_COLOR is unset: {transcript:?}");
    ws.write("big2.csv", big_cards_file(30_000).replace("6001", "6002"));
    let transcript = on_a_terminal(
        &ws,
        &format!("{import} --color never").replace("big.csv", "big2.csv"),
        &[],
    );
    assert!(
        transcript.contains("records committed") && !coloured(&transcript),
        "{transcript:?}"
    );
    // Off a terminal: plain by default, coloured when asked, clap's help too.
    let mut command = ws.cmd();
    let plain = command
        .env("RUST_LOG", "cardbatch=info")
        .args(["runs", "list"])
        .output()
        .unwrap();
    assert!(!coloured(&String::from_utf8_lossy(&plain.stderr)));
    let mut command = ws.cmd();
    let forced = command
        .env("RUST_LOG", "cardbatch=info")
        .env("NO_COLOR", "1")
        .args(["runs", "list", "--color", "always"])
        .output()
        .unwrap();
    assert!(
        coloured(&String::from_utf8_lossy(&forced.stderr)),
        "--color always wins over NO_COLOR"
    );
    let help = ws
        .cmd()
        .args(["--color=always", "import", "cards", "--help"])
        .output()
        .unwrap();
    assert!(coloured(&String::from_utf8_lossy(&help.stdout)));
    let refused = ws
        .cmd()
        .args(["runs", "list", "--color", "sometimes"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
}

crate::on_every_backend!(progress_counts_committed_records, colour_follows_color_and_no_color);
