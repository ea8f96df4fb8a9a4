//! Which of the file's columns (or JSON keys) feed which of cardbatch's
//! fields. By default a column feeds the field of its name (or one of the
//! field's aliases, see [`columns`](super::columns)); `--column
//! FIELD=HEADER` names another column for a field (`FIELD=N`, a 1-based
//! position, for a file without a header), and `--set FIELD=VALUE` gives a
//! field one value for every record. Every field and header named is
//! checked before anything is read or written.

use serde::{Deserialize, Serialize};

use super::columns::{MAX_COLUMNS, columns, find_column, missing_required};
use crate::batch::ImportKind;

/// `--column` and `--set`, as given (fields by name, columns by header or position).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingOptions {
    /// `--column FIELD=HEADER` or `FIELD=N`, in the order given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<(String, String)>,
    /// `--set FIELD=VALUE`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constants: Vec<(String, String)>,
}

impl MappingOptions {
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty() && self.constants.is_empty()
    }

    /// `other`'s columns and constants over these (the command line over a
    /// `--mapping` file), field by field.
    pub fn overridden_by(mut self, other: MappingOptions) -> MappingOptions {
        for (field, column) in other.columns {
            self.columns.retain(|(f, _)| *f != field);
            self.constants.retain(|(f, _)| *f != field);
            self.columns.push((field, column));
        }
        for (field, value) in other.constants {
            self.columns.retain(|(f, _)| *f != field);
            self.constants.retain(|(f, _)| *f != field);
            self.constants.push((field, value));
        }
        self
    }
}

/// `FIELD=VALUE` of `--column` and `--set`.
pub fn parse_assignment(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((field, value)) if !field.trim().is_empty() => Ok((field.trim().to_string(), value.to_string())),
        _ => Err(format!("{text:?} is not FIELD=VALUE")),
    }
}

/// The fields of `kind`, as a message lists them.
fn field_names(kind: ImportKind) -> String {
    columns(kind).iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
}

/// The column of `kind` a `--column` or `--set` names.
fn field(kind: ImportKind, flag: &str, name: &str) -> Result<usize, String> {
    find_column(kind, name.trim()).ok_or_else(|| {
        format!(
            "{flag} {name}: {kind} has no field {name:?}; its fields are {}",
            field_names(kind)
        )
    })
}

/// The mapping of one input, resolved against its header (or its record width).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// For each of the file's columns, the field it feeds.
    pub by_file_column: Vec<Option<usize>>,
    /// Fields with one value for every record, with that value.
    pub constants: Vec<(usize, String)>,
    /// Columns the file has that feed no field (header names), for a warning.
    pub ignored: Vec<String>,
}

/// Fields (by column index) paired with a file column or a constant value.
type FieldValues = Vec<(usize, String)>;

/// The fields `options` maps and sets, checked: known fields, each at most once.
fn checked(kind: ImportKind, options: &MappingOptions) -> Result<(FieldValues, FieldValues), String> {
    let mut seen = [false; MAX_COLUMNS];
    let mut take = |flag: &str, name: &str| -> Result<usize, String> {
        let column = field(kind, flag, name)?;
        if std::mem::replace(&mut seen[column], true) {
            return Err(format!(
                "{flag} {name}: the field {} is given twice (by --column and --set, or twice)",
                columns(kind)[column].name
            ));
        }
        Ok(column)
    };
    let mapped = options
        .columns
        .iter()
        .map(|(name, column)| Ok((take("--column", name)?, column.trim().to_string())))
        .collect::<Result<Vec<_>, String>>()?;
    let constants = options
        .constants
        .iter()
        .map(|(name, value)| Ok((take("--set", name)?, value.clone())))
        .collect::<Result<Vec<_>, String>>()?;
    Ok((mapped, constants))
}

/// Resolves `options` against a CSV header's `names`: mapped columns by
/// header (exact, else ignoring case), the rest by cardbatch's names; the
/// required fields must be there.
pub fn resolve_header(kind: ImportKind, names: &[String], options: &MappingOptions) -> Result<Mapping, String> {
    let (mapped, constants) = checked(kind, options)?;
    let mut by_file_column: Vec<Option<usize>> = vec![None; names.len()];
    let mut present = [false; MAX_COLUMNS];
    for (column, header) in &mapped {
        let exact = names.iter().position(|name| name == header);
        let found = exact.or_else(|| names.iter().position(|name| name.eq_ignore_ascii_case(header)));
        let Some(position) = found else {
            let hint = if header.parse::<usize>().is_ok() {
                " (a position needs --no-header)"
            } else {
                ""
            };
            return Err(format!(
                "--column {}={header}: the header has no column {header:?}{hint}; its columns are {}",
                columns(kind)[*column].name,
                quoted_list(names)
            ));
        };
        if by_file_column[position].is_some() {
            return Err(format!(
                "--column {}={header}: column {header:?} already feeds another field",
                columns(kind)[*column].name
            ));
        }
        by_file_column[position] = Some(*column);
        present[*column] = true;
    }
    for (column, _) in &constants {
        present[*column] = true;
    }
    let mut ignored = Vec::new();
    for (position, name) in names.iter().enumerate() {
        if by_file_column[position].is_some() {
            continue;
        }
        match find_column(kind, name) {
            Some(column) if constants.iter().any(|(c, _)| *c == column) => {
                return Err(format!(
                    "--set {}: the file has a column {name:?} (column {}) for the same field; drop --set or \
                     the column",
                    columns(kind)[column].name,
                    position + 1
                ));
            }
            Some(column) if !present[column] => {
                present[column] = true;
                by_file_column[position] = Some(column);
            }
            Some(column) if mapped.iter().any(|(c, _)| *c == column) => {
                ignored.push(format!(
                    "{name} (--column maps {} to another column)",
                    columns(kind)[column].name
                ));
            }
            Some(_) => ignored.push(format!("{name} (repeated)")),
            None => ignored.push(name.clone()),
        }
    }
    let missing = missing_required(kind, &present);
    if !missing.is_empty() {
        return Err(format!(
            "the header has no {} column; its columns are {} (name one with --column FIELD=HEADER)",
            missing.join(", no "),
            quoted_list(names)
        ));
    }
    Ok(Mapping {
        by_file_column,
        constants,
        ignored,
    })
}

/// Resolves `options` for a CSV file without a header whose records have
/// `width` fields: every field read comes from a `--column FIELD=N`.
pub fn resolve_positions(kind: ImportKind, width: usize, options: &MappingOptions) -> Result<Mapping, String> {
    let (mapped, constants) = checked(kind, options)?;
    let mut by_file_column: Vec<Option<usize>> = vec![None; width];
    let mut present = [false; MAX_COLUMNS];
    for (column, position) in &mapped {
        let name = columns(kind)[*column].name;
        let n = match position.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => {
                return Err(format!(
                    "--column {name}={position}: without a header a column is named by its 1-based position"
                ));
            }
        };
        if n > width {
            return Err(format!("--column {name}={n}: the first record has {width} field(s)"));
        }
        if by_file_column[n - 1].is_some() {
            return Err(format!("--column {name}={n}: position {n} already feeds another field"));
        }
        by_file_column[n - 1] = Some(*column);
        present[*column] = true;
    }
    for (column, _) in &constants {
        present[*column] = true;
    }
    let missing = missing_required(kind, &present);
    if !missing.is_empty() {
        return Err(format!(
            "nothing gives {}: without a header, name each field's position with --column FIELD=N",
            missing.join(", nor ")
        ));
    }
    Ok(Mapping {
        by_file_column,
        constants,
        ignored: Vec::new(),
    })
}

/// JSON lines: the key each field is read from (`None`: its own names), and the constants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMapping {
    pub keys: [Option<String>; MAX_COLUMNS],
    pub constants: Vec<(usize, String)>,
}

/// Resolves `options` for JSON lines: `--column FIELD=KEY` names a key
/// (`a.b` a nested one).
pub fn resolve_keys(kind: ImportKind, options: &MappingOptions) -> Result<KeyMapping, String> {
    let (mapped, constants) = checked(kind, options)?;
    let mut keys: [Option<String>; MAX_COLUMNS] = Default::default();
    for (column, key) in mapped {
        keys[column] = Some(key);
    }
    Ok(KeyMapping { keys, constants })
}

fn quoted_list(names: &[String]) -> String {
    names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::columns::card;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn options(columns: &[(&str, &str)], constants: &[(&str, &str)]) -> MappingOptions {
        let pairs = |list: &[(&str, &str)]| list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        MappingOptions {
            columns: pairs(columns),
            constants: pairs(constants),
        }
    }

    #[test]
    fn mapped_headers_and_constants_feed_their_fields() {
        let header = names(&["CardNo", "Status", "card_number", "colour"]);
        let mapping = resolve_header(
            ImportKind::Cards,
            &header,
            &options(
                &[("card_number", "cardno"), ("status_label", "Status")],
                &[("series_code", "GOLD")],
            ),
        )
        .unwrap();
        assert_eq!(
            mapping.by_file_column,
            [Some(card::CARD_NUMBER), Some(card::STATUS_LABEL), None, None]
        );
        assert_eq!(mapping.constants, [(card::SERIES_CODE, "GOLD".to_string())]);
        assert_eq!(mapping.ignored.len(), 2);
        assert!(mapping.ignored[0].starts_with("card_number (--column maps"));
    }

    #[test]
    fn unknown_fields_headers_and_conflicts_are_refused_by_name() {
        let header = names(&["CardNo", "series_code"]);
        let refuse = |columns: &[(&str, &str)], constants: &[(&str, &str)]| {
            resolve_header(ImportKind::Cards, &header, &options(columns, constants)).unwrap_err()
        };
        assert!(
            refuse(&[("card_nmuber", "CardNo")], &[]).contains("no field \"card_nmuber\"; its fields are card_number")
        );
        assert!(refuse(&[("card_number", "Kard")], &[]).contains("no column \"Kard\"; its columns are \"CardNo\""));
        assert!(refuse(&[("card_number", "CardNo")], &[("series_code", "X")]).contains("drop --set or the column"));
        assert!(refuse(&[("card_number", "CardNo")], &[("card_number", "X")]).contains("given twice"));
        assert!(refuse(&[], &[]).contains("no card_number column; its columns are \"CardNo\", \"series_code\""));
    }

    #[test]
    fn positions_without_a_header() {
        let mapping = resolve_positions(
            ImportKind::Cards,
            3,
            &options(&[("card_number", "3")], &[("series_code", "GOLD")]),
        )
        .unwrap();
        assert_eq!(mapping.by_file_column, [None, None, Some(card::CARD_NUMBER)]);
        let too_far = resolve_positions(
            ImportKind::Cards,
            2,
            &options(&[("card_number", "3")], &[("series_code", "G")]),
        );
        assert!(too_far.unwrap_err().contains("has 2 field(s)"));
        let missing = resolve_positions(ImportKind::Cards, 2, &options(&[("card_number", "1")], &[]));
        assert!(missing.unwrap_err().contains("--column FIELD=N"));
    }

    #[test]
    fn the_command_line_overrides_a_mapping_file_field_by_field() {
        let file = options(&[("card_number", "CardNo"), ("series_code", "Serie")], &[]);
        let merged = file.overridden_by(options(&[("card_number", "Nr")], &[("series_code", "GOLD")]));
        assert_eq!(merged, options(&[("card_number", "Nr")], &[("series_code", "GOLD")]));
    }
}
