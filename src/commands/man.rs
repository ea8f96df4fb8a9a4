//! `man`: manual pages generated from the same definitions as `--help`, one
//! per command and subcommand (`cardbatch.1`, `cardbatch-import-cards.1`).
//! The text after a command's options (examples, the exit-code table) is set
//! without filling, so its columns stay aligned under `man`.

use std::io::Write;
use std::path::Path;

use super::print_stdout;
use crate::cli::Cli;
use crate::error::{CommandError, Exit, output_failed, usage};
use crate::output::check_outputs;

/// `cardbatch man`: the top page on stdout; with `--output DIR`, every page
/// written into DIR (each whole, or not at all).
pub(super) fn run(output: Option<&Path>) -> Result<Exit, CommandError> {
    let mut top = <Cli as clap::CommandFactory>::command().disable_help_subcommand(true);
    top.build();
    let Some(directory) = output else {
        let page = render(&top).map_err(output_failed)?;
        print_stdout(&String::from_utf8_lossy(&page))?;
        return Ok(Exit::Completed);
    };
    if !directory.is_dir() {
        return Err(usage(format!(
            "--output {}: not a directory; give one that exists",
            directory.display()
        )));
    }
    let mut pages = Vec::new();
    collect(&top, &mut pages);
    let paths: Vec<_> = pages
        .iter()
        .map(|command| directory.join(clap_mangen::Man::new((*command).clone()).get_filename()))
        .collect();
    let flags: Vec<(&'static str, &Path)> = paths.iter().map(|path| ("--output", path.as_path())).collect();
    let files = check_outputs(&[], &flags)?;
    for (command, file) in pages.iter().zip(&files) {
        let page = render(command).map_err(output_failed)?;
        let mut out = file.create().map_err(output_failed)?;
        out.write_all(&page).map_err(output_failed)?;
        out.commit().map_err(output_failed)?;
    }
    Ok(Exit::Completed)
}

/// `command` and every visible subcommand under it, depth first.
fn collect<'c>(command: &'c clap::Command, pages: &mut Vec<&'c clap::Command>) {
    pages.push(command);
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        collect(sub, pages);
    }
}

/// One page: clap_mangen's sections, then the text after the options as it
/// is laid out in `--help`.
fn render(command: &clap::Command) -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(command.clone());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    if command.get_arguments().any(|arg| !arg.is_hide_set()) {
        man.render_options_section(&mut out)?;
    }
    if command.has_subcommands() {
        man.render_subcommands_section(&mut out)?;
    }
    if let Some(after) = command.get_after_long_help().or(command.get_after_help()) {
        out.extend_from_slice(b".SH EXTRA\n.nf\n");
        out.extend_from_slice(unfilled(&after.to_string()).as_bytes());
        out.extend_from_slice(b".fi\n");
    }
    if command.get_version().is_some() {
        man.render_version_section(&mut out)?;
    }
    Ok(out)
}

/// Text for roff's no-fill mode: backslashes and dashes escaped, and a line
/// that would start with a control character made plain.
fn unfilled(text: &str) -> String {
    let mut roff = String::new();
    for line in text.lines() {
        if line.starts_with(['.', '\'']) {
            roff.push_str("\\&");
        }
        roff.push_str(&line.replace('\\', "\\e").replace('-', "\\-"));
        roff.push('\n');
    }
    roff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfilled_text_escapes_what_roff_would_read() {
        assert_eq!(unfilled(".x a\\b --flag\n'y"), "\\&.x a\\eb \\-\\-flag\n\\&'y\n");
    }
}
