//! `cardbatch report --run ID --output FILE.html`: one self-contained page
//! (inline CSS and SVG, no scripts, nothing fetched) for the people who act
//! on a night's import: the outcome and the reject rate at the top, the
//! input (path, size, SHA-256, format), a bar chart of the rejects by reason
//! and field, a strip showing where in the input they fall, the first
//! rejects of each group with the command that writes the rest, and the
//! same job's earlier runs with their reject rates. Every text from the
//! input or the database is HTML-escaped.

use std::fmt::Write;

use super::review::{BINS, Group, Review};
use crate::store::{RunInfo, RunStatus};

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #1d2733; background: #fff; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; } h3 { font-size: 1em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { text-align: left; padding: 0.25em 0.8em; border-bottom: 1px solid #d8dee6; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
pre { margin: 0; white-space: pre-wrap; word-break: break-all; font-size: 0.85em; background: #f3f5f8; padding: 0.2em 0.4em; max-width: 28em; }
code { background: #f3f5f8; padding: 0.1em 0.3em; font-size: 0.9em; }
.outcome { padding: 0.8em 1em; border-left: 0.5em solid; font-size: 1.15em; margin: 1em 0; }
.outcome strong { font-size: 1.2em; margin-right: 0.5em; }
.outcome-completed { border-color: #1f7a3a; background: #e8f5ec; } .outcome-completed strong { color: #1f7a3a; }
.outcome-rejects { border-color: #b45309; background: #fdf3e3; } .outcome-rejects strong { color: #9a4a06; }
.outcome-aborted, .outcome-interrupted, .outcome-running { border-color: #b3261e; background: #fbeaea; }
.outcome-aborted strong, .outcome-interrupted strong, .outcome-running strong { color: #b3261e; }
tr.this-run td { font-weight: 600; background: #f3f5f8; }
td.worse { color: #b3261e; font-weight: 600; }
.more { margin: 0.2em 0 1.2em; }
svg text { font-family: system-ui, sans-serif; font-size: 12px; fill: #1d2733; }
";

/// What the report page shows.
pub struct Page<'a> {
    pub run: &'a RunInfo,
    pub review: &'a Review,
    /// The store, as `describe` gives it (password redacted).
    pub database: &'a str,
    /// The org, named in the commands the page gives when it is not 1.
    pub org_id: i64,
    /// The same job's runs up to this one, oldest first (see [`render`]).
    pub history: &'a [RunInfo],
    /// Card numbers were masked (`--mask-card-numbers`): the commands keep masking.
    pub masked: bool,
}

/// Runs of the job shown in the history, the newest.
const HISTORY_SHOWN: usize = 30;

/// The whole page: the outcome at a glance, the input, the rejects by group
/// (each reachable through a command past its examples), where they fall,
/// and the same job's earlier runs.
pub fn render(page_data: &Page<'_>) -> String {
    let Page { run, review, .. } = *page_data;
    let mut page = String::new();
    let title = format!(
        "cardbatch run {}: {} of {}",
        run.run_id,
        run.kind,
        run.input.as_deref().unwrap_or("-")
    );
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    headline(&mut page, run);
    summary(&mut page, page_data);
    page.push_str("<h2>Rejects by reason and field</h2>\n");
    if review.groups.is_empty() {
        page.push_str("<p>No rejects.</p>\n");
    } else {
        bar_chart(&mut page, review);
        page.push_str("<h2>Where in the input the rejects fall</h2>\n");
        strip(&mut page, run, review);
        page.push_str("<h2>First rejects of each group</h2>\n");
        examples(&mut page, page_data);
    }
    history(&mut page, page_data);
    page.push_str("</body></html>\n");
    page
}

/// How a run ended, in the words and colour of its exit code.
pub struct Outcome {
    pub words: &'static str,
    /// The exit code the run's last invocation gave, as the README names it.
    pub exit: &'static str,
    /// The CSS class (`outcome-...`).
    class: &'static str,
}

pub fn outcome(run: &RunInfo) -> Outcome {
    let (words, exit, class) = match run.status {
        RunStatus::Completed if run.rejected == 0 => ("completed", "exit 0", "completed"),
        RunStatus::Completed => ("completed with rejects", "exit 4", "rejects"),
        RunStatus::Aborted => (
            "aborted",
            "exit 3: stopped at --max-rejects or the wrong-file guard",
            "aborted",
        ),
        RunStatus::Interrupted => (
            "interrupted",
            "exit 130/143: the same command resumes it",
            "interrupted",
        ),
        RunStatus::Running => (
            "running, or stopped without a word",
            "a crash, a kill or a lost connection: the same command resumes it",
            "running",
        ),
    };
    Outcome { words, exit, class }
}

/// `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `part` of `whole` as a share: `2.3%`, `<0.1%` for a share too small to
/// show, `0%` for none.
pub fn percent(part: u64, whole: u64) -> String {
    if part == 0 || whole == 0 {
        return "0%".into();
    }
    let share = 100.0 * part as f64 / whole as f64;
    if share < 0.1 {
        "<0.1%".into()
    } else {
        format!("{share:.1}%")
    }
}

/// The run's reject rate in percent (0 for a run with no records).
fn rate(run: &RunInfo) -> f64 {
    if run.records_committed == 0 {
        0.0
    } else {
        100.0 * run.rejected as f64 / run.records_committed as f64
    }
}

/// The outcome and the reject rate, at the top.
fn headline(page: &mut String, run: &RunInfo) {
    let outcome = outcome(run);
    let _ = writeln!(
        page,
        "<div class=\"outcome outcome-{}\"><strong>{}</strong> ({}) · {} of {} rejected, {}</div>",
        outcome.class,
        capitalised(outcome.words),
        escape(outcome.exit),
        thousands(run.rejected),
        thousands(run.records_committed),
        percent(run.rejected, run.records_committed)
    );
}

fn capitalised(words: &str) -> String {
    let mut chars = words.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `1.2 MiB (1,234,567 bytes)`.
fn size(bytes: u64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{} bytes", thousands(bytes))
    } else {
        format!("{value:.1} {} ({} bytes)", units[unit], thousands(bytes))
    }
}

fn summary(page: &mut String, page_data: &Page<'_>) {
    let Page { run, review, .. } = *page_data;
    let details = &run.input_details;
    let reading = super::reading_of(run)
        .or_else(|| run.input_format.clone())
        .unwrap_or_else(|| "-".into());
    let rows: Vec<(&str, String)> = vec![
        (
            "input",
            escape(details.path.as_deref().or(run.input.as_deref()).unwrap_or("-")),
        ),
        ("size", details.size.map_or_else(|| "-".into(), size)),
        (
            "sha256",
            details
                .sha256
                .as_deref()
                .map_or_else(|| "-".into(), |hash| format!("<code>{}</code>", escape(hash))),
        ),
        ("format", escape(&reading)),
        ("database", escape(page_data.database)),
        ("records read", thousands(run.records_committed)),
        ("inserted", thousands(run.inserted)),
        ("unchanged", thousands(run.unchanged)),
        ("rejected", thousands(run.rejected)),
        (
            "already committed by an earlier invocation",
            thousands(run.already_committed),
        ),
        ("started", escape(&run.started_at)),
        ("finished", escape(run.finished_at.as_deref().unwrap_or("-"))),
        ("reject groups", review.groups.len().to_string()),
    ];
    page.push_str("<table class=\"summary\">\n");
    for (name, value) in rows {
        let _ = writeln!(page, "<tr><th>{name}</th><td>{value}</td></tr>");
    }
    page.push_str("</table>\n");
}

/// A group's name, escaped: its reason and field (`REASON · field`), or the
/// reason alone for rejects of a whole record (`MALFORMED_RECORD`).
fn group_label(group: &Group) -> String {
    if group.field.is_empty() {
        group.reason.to_string()
    } else {
        format!("{} · {}", group.reason, escape(&group.field))
    }
}

/// One horizontal bar per group, longest first.
fn bar_chart(page: &mut String, review: &Review) {
    const LABEL: u32 = 330;
    const WIDTH: u32 = 900;
    const ROW: u32 = 24;
    let max = review.groups.iter().map(|g| g.count).max().unwrap_or(1).max(1);
    let height = ROW * review.groups.len() as u32 + 8;
    let _ = writeln!(
        page,
        "<svg class=\"bars\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" \
         aria-label=\"rejects by reason and field\">"
    );
    for (i, group) in review.groups.iter().enumerate() {
        let y = ROW * i as u32 + 4;
        let length = ((WIDTH - LABEL - 80) as u64 * group.count / max).max(2);
        let _ = writeln!(
            page,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{LABEL}\" y=\"{y}\" width=\"{length}\" height=\"{}\" fill=\"#c2410c\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            LABEL - 8,
            y + 15,
            group_label(group),
            ROW - 6,
            LABEL as u64 + length + 6,
            y + 15,
            group.count
        );
    }
    page.push_str("</svg>\n");
}

/// The input from its first record to its last, in [`BINS`] slices, each
/// shaded by how many rejects fall in it.
fn strip(page: &mut String, run: &RunInfo, review: &Review) {
    const WIDTH: u32 = 900;
    let max = review.bins.iter().copied().max().unwrap_or(1).max(1);
    let slice = WIDTH as f64 / BINS as f64;
    let _ = writeln!(
        page,
        "<svg class=\"strip\" width=\"{WIDTH}\" height=\"64\" viewBox=\"0 0 {WIDTH} 64\" role=\"img\" \
         aria-label=\"where the rejects fall in the input\">\
         <rect x=\"0\" y=\"4\" width=\"{WIDTH}\" height=\"32\" fill=\"#eef1f5\"/>"
    );
    for (i, &count) in review.bins.iter().enumerate() {
        if count == 0 {
            continue;
        }
        // Any reject shows; more rejects, darker.
        let opacity = 0.25 + 0.75 * count as f64 / max as f64;
        let _ = write!(
            page,
            "<rect x=\"{:.1}\" y=\"4\" width=\"{:.1}\" height=\"32\" fill=\"#b3261e\" fill-opacity=\"{opacity:.2}\"/>",
            i as f64 * slice,
            slice.max(1.0)
        );
    }
    let _ = writeln!(
        page,
        "<text x=\"0\" y=\"54\">record 1</text><text x=\"{WIDTH}\" y=\"54\" text-anchor=\"end\">record {}</text></svg>",
        thousands(run.records_committed)
    );
}

fn examples(page: &mut String, page_data: &Page<'_>) {
    for group in &page_data.review.groups {
        let _ = writeln!(
            page,
            "<h3>{} ({} reject{})</h3>\n<table><tr><th>line</th><th>record</th><th>value</th>\
             <th>message</th><th>raw</th></tr>",
            group_label(group),
            thousands(group.count),
            if group.count == 1 { "" } else { "s" }
        );
        for example in &group.examples {
            let _ = writeln!(
                page,
                "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td><pre>{}</pre></td></tr>",
                example.line,
                example.record,
                escape(example.value.as_deref().unwrap_or("")),
                escape(&example.message),
                escape(&example.raw)
            );
        }
        page.push_str("</table>\n");
        let more = group.count - group.examples.len() as u64;
        if more > 0 {
            let _ = writeln!(
                page,
                "<p class=\"more\">and {} more: <code>{}</code></p>",
                thousands(more),
                escape(&export_command(page_data, group))
            );
        }
    }
}

/// The command that writes every reject of `group`.
pub fn export_command(page_data: &Page<'_>, group: &Group) -> String {
    let mut command = format!("cardbatch rejects export --run {}", page_data.run.run_id);
    if page_data.org_id != 1 {
        command.push_str(&format!(" --org {}", page_data.org_id));
    }
    command.push_str(&format!(" --reason {}", group.reason));
    if !group.field.is_empty() {
        command.push_str(&format!(" --field {}", group.field));
    }
    if page_data.masked {
        command.push_str(" --mask-card-numbers");
    }
    command
}

/// The same job's runs (an input of the same name and kind, in the org), up
/// to this one: a table, and the reject rate by run as bars, where a run
/// worse than usual (the median of the runs before it) is red.
fn history(page: &mut String, page_data: &Page<'_>) {
    let runs = &page_data.history[page_data.history.len().saturating_sub(HISTORY_SHOWN)..];
    page.push_str("<h2>This job's runs</h2>\n");
    if runs.len() <= 1 {
        page.push_str("<p>No earlier run of an input of this name, kind and org.</p>\n");
        return;
    }
    let shown_before = page_data.history.len() - runs.len();
    let _ = writeln!(
        page,
        "<p>Runs of an input named <code>{}</code> ({}), oldest first{}.</p>",
        escape(page_data.run.input.as_deref().unwrap_or("-")),
        escape(&page_data.run.kind),
        if shown_before > 0 {
            format!("; {} older not shown", thousands(shown_before as u64))
        } else {
            String::new()
        }
    );
    let usual = usual_rate(runs, page_data.run.run_id);
    chart(page, runs, page_data.run.run_id, usual);
    page.push_str(
        "<table class=\"history\"><tr><th>run</th><th>started</th><th>records</th><th>rejected</th>\
         <th>reject rate</th><th>outcome</th></tr>\n",
    );
    for run in runs.iter().rev() {
        let this = run.run_id == page_data.run.run_id;
        let _ = writeln!(
            page,
            "<tr{}><td class=\"n\">{}{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n{}\">{}</td><td>{}</td></tr>",
            if this { " class=\"this-run\"" } else { "" },
            run.run_id,
            if this { " (this run)" } else { "" },
            escape(&run.started_at),
            thousands(run.records_committed),
            thousands(run.rejected),
            if worse(rate(run), usual) { " worse" } else { "" },
            percent(run.rejected, run.records_committed),
            outcome(run).words
        );
    }
    page.push_str("</table>\n");
}

/// The median reject rate of the runs other than `this_run` (what a night usually has).
fn usual_rate(runs: &[RunInfo], this_run: i64) -> Option<f64> {
    let mut rates: Vec<f64> = runs.iter().filter(|run| run.run_id != this_run).map(rate).collect();
    if rates.is_empty() {
        return None;
    }
    rates.sort_by(f64::total_cmp);
    let middle = rates.len() / 2;
    Some(if rates.len().is_multiple_of(2) {
        (rates[middle - 1] + rates[middle]) / 2.0
    } else {
        rates[middle]
    })
}

/// Whether a reject rate stands out: over twice the usual one and half a
/// percentage point above it.
fn worse(rate: f64, usual: Option<f64>) -> bool {
    usual.is_some_and(|usual| rate > 2.0 * usual && rate > usual + 0.5)
}

/// The reject rate by run, as bars (this run outlined), with the usual rate dashed.
fn chart(page: &mut String, runs: &[RunInfo], this_run: i64, usual: Option<f64>) {
    const WIDTH: f64 = 900.0;
    const PLOT: f64 = 160.0;
    const TOP: f64 = 20.0;
    const LEFT: f64 = 50.0;
    /// Room right of the bars for the usual rate's label.
    const RIGHT: f64 = 100.0;
    let height = TOP + PLOT + 40.0;
    let max = runs.iter().map(rate).fold(usual.unwrap_or(0.0), f64::max).max(1.0);
    let slot = (WIDTH - LEFT - RIGHT) / runs.len() as f64;
    // Nights are told apart by their date, or by their run when two share one.
    let dates: Vec<&str> = runs.iter().map(|run| run.started_at.get(5..10).unwrap_or("")).collect();
    let by_date = dates.iter().collect::<std::collections::HashSet<_>>().len() == dates.len();
    let y = |rate: f64| TOP + PLOT - PLOT * rate / max;
    let _ = writeln!(
        page,
        "<svg class=\"history-chart\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" \
         role=\"img\" aria-label=\"reject rate by run\">\
         <line x1=\"{LEFT}\" y1=\"{0:.1}\" x2=\"{4}\" y2=\"{0:.1}\" stroke=\"#8a96a3\"/>\
         <text x=\"{1}\" y=\"{0:.1}\" text-anchor=\"end\">0%</text>\
         <text x=\"{1}\" y=\"{2:.1}\" text-anchor=\"end\">{3:.1}%</text>",
        y(0.0),
        LEFT - 6.0,
        TOP + 4.0,
        max,
        WIDTH - RIGHT
    );
    for (i, run) in runs.iter().enumerate() {
        let rate = rate(run);
        let x = LEFT + slot * i as f64 + slot * 0.15;
        let width = slot * 0.7;
        let top = y(rate).min(y(0.0) - 1.0);
        let fill = if worse(rate, usual) { "#b3261e" } else { "#5b7a99" };
        let outline = if run.run_id == this_run {
            " stroke=\"#1d2733\" stroke-width=\"2\""
        } else {
            ""
        };
        let label = if by_date {
            dates[i].to_string()
        } else {
            format!("#{}", run.run_id)
        };
        let _ = write!(
            page,
            "<rect class=\"night\" x=\"{x:.1}\" y=\"{top:.1}\" width=\"{width:.1}\" height=\"{:.1}\" fill=\"{fill}\"{outline}>\
             <title>run {}, {}: {} rejected</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            y(0.0) - top,
            run.run_id,
            escape(&run.started_at),
            percent(run.rejected, run.records_committed),
            x + width / 2.0,
            y(0.0) + 16.0,
            escape(&label)
        );
    }
    if let Some(usual) = usual {
        let _ = write!(
            page,
            "<line x1=\"{LEFT}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#1d2733\" stroke-dasharray=\"6 4\"/>\
             <text x=\"{2}\" y=\"{3:.1}\">usual: {4:.1}%</text>",
            y(usual),
            WIDTH - RIGHT,
            WIDTH - RIGHT + 6.0,
            y(usual) + 4.0,
            usual
        );
    }
    page.push_str("</svg>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_shares_read_as_a_person_writes_them() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(percent(2_295, 100_000), "2.3%");
        assert_eq!(percent(1, 100_000), "<0.1%");
        assert_eq!(percent(0, 100_000), "0%");
        assert_eq!(percent(5, 0), "0%");
        assert_eq!(size(512), "512 bytes");
        assert_eq!(size(3 * 1024 * 1024 + 1024 * 512), "3.5 MiB (3,670,016 bytes)");
    }

    #[test]
    fn a_night_is_worse_than_usual_at_twice_the_median_and_half_a_point_more() {
        assert!(worse(2.3, Some(0.4)));
        assert!(!worse(0.7, Some(0.3)), "twice, but not half a point more");
        assert!(!worse(1.5, Some(1.0)), "half a point more, but not twice");
        assert!(!worse(50.0, None));
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }
}
