//! How an input is read: the options the command line (and a `--mapping`
//! file) give, and the plan they resolve to once the input's first lines
//! are read: format, encoding, delimiter (given or detected), quote,
//! header, title lines skipped, column mapping, constants, and whether card
//! numbers lose their separators. The plan is stated in the summary before
//! anything else, and stored with the run, so that a resume and `rejects
//! export --as-input` read and write the input as the run first did.

use std::path::Path;

use encoding_rs::Encoding;
use serde::{Deserialize, Serialize};

use super::encoding;
use super::mapping::MappingOptions;
use crate::batch::Format;

/// The delimiters tried, in order, when none is given.
pub const CANDIDATE_DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// What the user said about reading the input (everything optional).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadingOptions {
    pub delimiter: Option<u8>,
    pub quote: Option<u8>,
    pub no_header: bool,
    pub skip_lines: u64,
    pub encoding: Option<&'static Encoding>,
    pub mapping: MappingOptions,
    pub strip_separators: bool,
}

impl ReadingOptions {
    /// True when nothing was said (the input is read as cardbatch's own format).
    pub fn is_default(&self) -> bool {
        *self == ReadingOptions::default()
    }

    /// `self` (the command line) over `file` (a `--mapping` file).
    pub fn over(self, file: ReadingOptions) -> ReadingOptions {
        ReadingOptions {
            delimiter: self.delimiter.or(file.delimiter),
            quote: self.quote.or(file.quote),
            no_header: self.no_header || file.no_header,
            skip_lines: if self.skip_lines > 0 {
                self.skip_lines
            } else {
                file.skip_lines
            },
            encoding: self.encoding.or(file.encoding),
            mapping: file.mapping.overridden_by(self.mapping),
            strip_separators: self.strip_separators || file.strip_separators,
        }
    }

    /// Reads a `--mapping` file (TOML):
    ///
    /// ```toml
    /// delimiter = ";"            # or "tab"
    /// encoding = "windows-1252"
    /// skip_lines = 2
    /// header = true              # false: columns by position
    /// strip_separators = true
    /// [columns]
    /// card_number = "CardNo"     # or a 1-based position without a header
    /// [set]
    /// series_code = "GOLD2026"
    /// ```
    pub fn from_file(path: &Path) -> Result<ReadingOptions, String> {
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| format!("--mapping {shown}: cannot read it: {e}"))?;
        let file: MappingFile = toml::from_str(&text).map_err(|e| format!("--mapping {shown}: {}", e.message()))?;
        let column_text = |value: toml::Value| match value {
            toml::Value::String(text) => Ok(text),
            toml::Value::Integer(n) => Ok(n.to_string()),
            other => Err(format!(
                "--mapping {shown}: a column is a header name or a position, not {}",
                other.type_str()
            )),
        };
        Ok(ReadingOptions {
            delimiter: file
                .delimiter
                .as_deref()
                .map(parse_delimiter)
                .transpose()
                .map_err(|e| format!("--mapping {shown}: delimiter: {e}"))?,
            quote: file
                .quote
                .as_deref()
                .map(parse_quote)
                .transpose()
                .map_err(|e| format!("--mapping {shown}: quote: {e}"))?,
            no_header: file.header == Some(false),
            skip_lines: file.skip_lines.unwrap_or(0),
            encoding: file
                .encoding
                .as_deref()
                .map(encoding::parse_label)
                .transpose()
                .map_err(|e| format!("--mapping {shown}: {e}"))?,
            mapping: MappingOptions {
                columns: file
                    .columns
                    .into_iter()
                    .map(|(field, value)| Ok((field, column_text(value)?)))
                    .collect::<Result<_, String>>()?,
                constants: file.set.into_iter().collect(),
            },
            strip_separators: file.strip_separators.unwrap_or(false),
        })
    }
}

/// The `--mapping` file's shape; anything else in it is refused by name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    delimiter: Option<String>,
    quote: Option<String>,
    header: Option<bool>,
    skip_lines: Option<u64>,
    encoding: Option<String>,
    strip_separators: Option<bool>,
    #[serde(default)]
    columns: toml::Table,
    #[serde(default)]
    set: std::collections::BTreeMap<String, String>,
}

/// `--delimiter`: one ASCII character, or `tab` / `\t`.
pub fn parse_delimiter(text: &str) -> Result<u8, String> {
    match text {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        _ => one_ascii_character(text),
    }
}

/// `--quote`: one ASCII character.
pub fn parse_quote(text: &str) -> Result<u8, String> {
    one_ascii_character(text)
}

fn one_ascii_character(text: &str) -> Result<u8, String> {
    match text.as_bytes() {
        [byte] if byte.is_ascii() && !matches!(byte, b'\n' | b'\r') => Ok(*byte),
        _ => Err(format!("{text:?} is not one ASCII character (tab: \"tab\" or \"\\t\")")),
    }
}

/// How the input was read: stated in the summary, stored with the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadingPlan {
    /// `csv` or `jsonl`.
    pub format: Format,
    /// The encoding's WHATWG name (`UTF-8`, `windows-1252`, `UTF-16LE`, ...).
    pub encoding: String,
    /// The input began with a byte-order mark.
    pub bom: bool,
    /// Its first line ended with CR LF (Windows, Excel).
    pub crlf: bool,
    /// CSV only: the field delimiter, and whether it was detected.
    pub delimiter: char,
    pub delimiter_detected: bool,
    pub quote: char,
    /// CSV: the first line read is a header.
    pub header: bool,
    /// Lines skipped before the header (or the first record).
    pub skip_lines: u64,
    #[serde(flatten)]
    pub mapping: MappingOptions,
    /// Spaces and dashes are removed from card numbers.
    pub strip_separators: bool,
}

impl ReadingPlan {
    /// The plan of an input read with cardbatch's defaults (runs stored
    /// before plans were kept).
    pub fn default_for(format: Format) -> ReadingPlan {
        ReadingPlan {
            format,
            encoding: encoding_rs::UTF_8.name().to_string(),
            bom: false,
            crlf: false,
            delimiter: ',',
            delimiter_detected: false,
            quote: '"',
            header: true,
            skip_lines: 0,
            mapping: MappingOptions::default(),
            strip_separators: false,
        }
    }

    /// The stored plan of a run (JSON), or the defaults for one stored before plans were kept.
    pub fn from_stored(stored: Option<&str>, format: Format) -> ReadingPlan {
        stored
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_else(|| ReadingPlan::default_for(format))
    }

    /// The plan as stored with the run.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The encoding the plan names (UTF-8 if it is unknown to this build).
    pub fn encoding(&self) -> &'static Encoding {
        encoding::by_name(&self.encoding).unwrap_or(encoding_rs::UTF_8)
    }

    pub fn delimiter_byte(&self) -> u8 {
        self.delimiter as u8
    }

    pub fn quote_byte(&self) -> u8 {
        self.quote as u8
    }

    /// The options that read the input exactly as this plan did (for a resume).
    pub fn options(&self) -> ReadingOptions {
        ReadingOptions {
            delimiter: (self.format == Format::Csv).then_some(self.delimiter_byte()),
            quote: (self.format == Format::Csv).then_some(self.quote_byte()),
            no_header: !self.header,
            skip_lines: self.skip_lines,
            // A byte-order mark decides again by itself.
            encoding: (!self.bom).then(|| self.encoding()),
            mapping: self.mapping.clone(),
            strip_separators: self.strip_separators,
        }
    }

    /// True for cardbatch's own format: UTF-8, `,` and `"`, a header, its
    /// own column names, nothing skipped or stripped.
    pub fn is_plain(&self) -> bool {
        let plain = ReadingPlan::default_for(self.format);
        ReadingPlan {
            bom: false,
            crlf: false,
            delimiter_detected: false,
            ..self.clone()
        } == plain
    }

    /// True when both plans read the input the same way (a detected
    /// delimiter is the same as the same delimiter given).
    pub fn reads_like(&self, other: &ReadingPlan) -> bool {
        let normal = |plan: &ReadingPlan| ReadingPlan {
            delimiter_detected: false,
            ..plan.clone()
        };
        normal(self) == normal(other)
    }

    /// One line for a person: `reading CSV, delimiter ';' (detected),
    /// encoding windows-1252, columns CardNo→card_number,
    /// series_code=GOLD2026 for every record`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match self.format {
            Format::Jsonl => parts.push("reading JSON lines".to_string()),
            Format::Csv => {
                parts.push("reading CSV".to_string());
                let detected = if self.delimiter_detected { " (detected)" } else { "" };
                parts.push(format!("delimiter {}{detected}", shown_character(self.delimiter)));
                if self.quote != '"' {
                    parts.push(format!("quote {}", shown_character(self.quote)));
                }
                if !self.header {
                    parts.push("no header".to_string());
                }
            }
        }
        if self.skip_lines > 0 {
            parts.push(format!("{} line(s) skipped before the first", self.skip_lines));
        }
        let bom = if self.bom { " (byte-order mark)" } else { "" };
        parts.push(format!("encoding {}{bom}", self.encoding));
        if !self.mapping.columns.is_empty() {
            let columns: Vec<String> = self
                .mapping
                .columns
                .iter()
                .map(|(field, column)| {
                    if self.header || self.format == Format::Jsonl {
                        format!("{column}→{field}")
                    } else {
                        format!("#{column}→{field}")
                    }
                })
                .collect();
            parts.push(format!("columns {}", columns.join(", ")));
        }
        for (field, value) in &self.mapping.constants {
            parts.push(format!("{field}={value} for every record"));
        }
        if self.strip_separators {
            parts.push("spaces and dashes removed from card numbers".to_string());
        }
        parts.join(", ")
    }
}

/// A delimiter or quote as a message shows it: `';'`, `tab`.
pub fn shown_character(c: char) -> String {
    if c == '\t' { "tab".to_string() } else { format!("'{c}'") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_and_quotes() {
        assert_eq!(parse_delimiter(";"), Ok(b';'));
        assert_eq!(parse_delimiter("tab"), Ok(b'\t'));
        assert_eq!(parse_delimiter("\\t"), Ok(b'\t'));
        assert!(parse_delimiter(";;").is_err());
        assert!(parse_delimiter("é").is_err());
        assert_eq!(parse_quote("'"), Ok(b'\''));
    }

    #[test]
    fn the_plan_reads_as_a_sentence_and_round_trips() {
        let plan = ReadingPlan {
            delimiter: ';',
            delimiter_detected: true,
            encoding: "windows-1252".into(),
            mapping: MappingOptions {
                columns: vec![
                    ("card_number".into(), "CardNo".into()),
                    ("series_code".into(), "Serie".into()),
                ],
                constants: vec![("status_label".into(), "ACTIVE".into())],
            },
            ..ReadingPlan::default_for(Format::Csv)
        };
        assert_eq!(
            plan.describe(),
            "reading CSV, delimiter ';' (detected), encoding windows-1252, columns CardNo→card_number, \
             Serie→series_code, status_label=ACTIVE for every record"
        );
        let stored = plan.to_stored();
        assert_eq!(ReadingPlan::from_stored(Some(&stored), Format::Csv), plan);
        assert!(plan.reads_like(&ReadingPlan {
            delimiter_detected: false,
            ..plan.clone()
        }));
        assert_eq!(
            ReadingPlan::from_stored(None, Format::Jsonl).describe(),
            "reading JSON lines, encoding UTF-8"
        );
    }

    #[test]
    fn a_mapping_file_gives_every_option_and_refuses_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("map.toml");
        std::fs::write(
            &path,
            "delimiter = \"tab\"\nencoding = \"latin1\"\nskip_lines = 2\nheader = false\n\
             [columns]\ncard_number = 2\n[set]\nseries_code = \"GOLD\"\n",
        )
        .unwrap();
        let options = ReadingOptions::from_file(&path).unwrap();
        assert_eq!(options.delimiter, Some(b'\t'));
        assert_eq!(options.encoding.map(|e| e.name()), Some("windows-1252"));
        assert!(options.no_header);
        assert_eq!(options.mapping.columns, [("card_number".to_string(), "2".to_string())]);
        let overridden = ReadingOptions {
            delimiter: Some(b';'),
            ..ReadingOptions::default()
        }
        .over(options);
        assert_eq!((overridden.delimiter, overridden.skip_lines), (Some(b';'), 2));
        std::fs::write(&path, "delimeter = \";\"\n").unwrap();
        assert!(ReadingOptions::from_file(&path).unwrap_err().contains("delimeter"));
    }
}
