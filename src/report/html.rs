//! `cardbatch report --run ID --output FILE.html`: one self-contained page
//! (inline CSS and SVG, no scripts, nothing fetched) with the run's summary,
//! a bar chart of its rejects by reason and field, a strip showing where in
//! the input they fall, and the first rejects of each group with their raw
//! records. Every text from the input or the database is HTML-escaped.

use std::fmt::Write;

use super::review::{BINS, Group, Review};
use crate::store::RunInfo;

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
.status-completed { color: #1f7a3a; } .status-aborted, .status-running, .status-interrupted { color: #b3261e; }
svg text { font-family: system-ui, sans-serif; font-size: 12px; fill: #1d2733; }
";

/// The whole page.
pub fn render(run: &RunInfo, review: &Review, database: &str) -> String {
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
    summary(&mut page, run, review, database);
    page.push_str("<h2>Rejects by reason and field</h2>\n");
    if review.groups.is_empty() {
        page.push_str("<p>No rejects: every record was inserted.</p>\n");
    } else {
        bar_chart(&mut page, review);
        page.push_str("<h2>Where in the input the rejects fall</h2>\n");
        strip(&mut page, run, review);
        page.push_str("<h2>First rejects of each group</h2>\n");
        examples(&mut page, review);
    }
    page.push_str("</body></html>\n");
    page
}

fn summary(page: &mut String, run: &RunInfo, review: &Review, database: &str) {
    let status = run.status.as_str();
    let rows: [(&str, String); 9] = [
        ("status", format!("<span class=\"status-{status}\">{status}</span>")),
        ("database", escape(database)),
        ("records read", run.records_committed.to_string()),
        ("inserted", run.inserted.to_string()),
        ("rejected", run.rejected.to_string()),
        (
            "already committed by an earlier invocation",
            run.already_committed.to_string(),
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
        run.records_committed
    );
}

fn examples(page: &mut String, review: &Review) {
    for group in &review.groups {
        let _ = writeln!(
            page,
            "<h3>{} ({} reject{})</h3>\n<table><tr><th>line</th><th>record</th><th>value</th>\
             <th>message</th><th>raw</th></tr>",
            group_label(group),
            group.count,
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }
}
