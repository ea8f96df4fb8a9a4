//! The columns of each import kind: their CSV names, their JSON-lines names
//! (snake_case or the API's camelCase, `statusInfo.reason` included), their
//! types, and which must be present.

use crate::batch::ImportKind;

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    /// A JSON number or a decimal string.
    Integer,
    /// A JSON object (in CSV: a cell holding a JSON object).
    Object,
}

/// One column of an import kind.
#[derive(Debug)]
pub struct Column {
    pub name: &'static str,
    /// Other names accepted in a CSV header or a JSON line; `a.b` is a nested key.
    pub aliases: &'static [&'static str],
    pub column_type: ColumnType,
}

const fn column(name: &'static str, aliases: &'static [&'static str], column_type: ColumnType) -> Column {
    Column {
        name,
        aliases,
        column_type,
    }
}

/// Most columns any kind has.
pub const MAX_COLUMNS: usize = 10;

/// Column positions of `import cards`.
pub mod card {
    pub const CARD_NUMBER: usize = 0;
    pub const SERIES_CODE: usize = 1;
    pub const SERIES_ID: usize = 2;
    pub const STATUS_LABEL: usize = 3;
    pub const EXTERNAL_ID: usize = 4;
    pub const CUSTOMER_ID: usize = 5;
    pub const STATUS_REASON: usize = 6;
    pub const EXTENDED_FIELDS: usize = 7;
    pub const CUSTOM_FIELDS: usize = 8;
    pub const MAPPED_ENTITY: usize = 9;
}

/// Column positions of `import external-ids`.
pub mod external_id {
    pub const CARD_NUMBER: usize = 0;
    pub const EXTERNAL_ID: usize = 1;
}

/// Column positions of `import customers`.
pub mod customer {
    pub const CUSTOMER_ID: usize = 0;
    pub const EXTERNAL_ID: usize = 1;
}

const CARD_COLUMNS: [Column; 10] = [
    column("card_number", &["cardNumber"], ColumnType::Text),
    column("series_code", &["seriesCode"], ColumnType::Text),
    column("series_id", &["seriesId"], ColumnType::Integer),
    column("status_label", &["statusLabel"], ColumnType::Text),
    column("external_id", &["cardExternalId", "externalId"], ColumnType::Text),
    column("customer_id", &["customerId"], ColumnType::Integer),
    column("status_reason", &["statusInfo.reason"], ColumnType::Text),
    column("extended_fields", &["extendedFields"], ColumnType::Object),
    column("custom_fields", &["customFields"], ColumnType::Object),
    column("mapped_entity", &["mappedEntity"], ColumnType::Object),
];

const EXTERNAL_ID_COLUMNS: [Column; 2] = [
    column("card_number", &["cardNumber"], ColumnType::Text),
    column("external_id", &["cardExternalId", "externalId"], ColumnType::Text),
];

const CUSTOMER_COLUMNS: [Column; 2] = [
    column("customer_id", &["customerId"], ColumnType::Integer),
    column("external_id", &["externalId", "customerExternalId"], ColumnType::Text),
];

/// The columns of `kind`, in the order their rules are checked.
pub fn columns(kind: ImportKind) -> &'static [Column] {
    match kind {
        ImportKind::Cards => &CARD_COLUMNS,
        ImportKind::ExternalIds => &EXTERNAL_ID_COLUMNS,
        ImportKind::Customers => &CUSTOMER_COLUMNS,
    }
}

/// Every field any import kind has, once each, as a reject names it.
pub fn every_field() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for kind in [ImportKind::Cards, ImportKind::ExternalIds, ImportKind::Customers] {
        for column in columns(kind) {
            if !names.contains(&column.name) {
                names.push(column.name);
            }
        }
    }
    names
}

/// The column a CSV header name or JSON key stands for.
pub fn find_column(kind: ImportKind, name: &str) -> Option<usize> {
    columns(kind)
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(name) || c.aliases.contains(&name))
}

/// The required columns of `kind` that `present` lacks, as a message names
/// them (`card_number`, `series_code or series_id`); empty when none.
pub fn missing_required(kind: ImportKind, present: &[bool]) -> Vec<&'static str> {
    match kind {
        ImportKind::Cards => {
            let mut missing = Vec::new();
            if !present[card::CARD_NUMBER] {
                missing.push("card_number");
            }
            if !present[card::SERIES_CODE] && !present[card::SERIES_ID] {
                missing.push("series_code or series_id");
            }
            missing
        }
        ImportKind::ExternalIds => ["card_number", "external_id"]
            .into_iter()
            .zip([external_id::CARD_NUMBER, external_id::EXTERNAL_ID])
            .filter(|(_, i)| !present[*i])
            .map(|(name, _)| name)
            .collect(),
        ImportKind::Customers => {
            if present[customer::CUSTOMER_ID] {
                Vec::new()
            } else {
                vec!["customer_id"]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases() {
        assert_eq!(find_column(ImportKind::Cards, "card_number"), Some(card::CARD_NUMBER));
        assert_eq!(find_column(ImportKind::Cards, "Card_Number"), Some(card::CARD_NUMBER));
        assert_eq!(
            find_column(ImportKind::Cards, "cardExternalId"),
            Some(card::EXTERNAL_ID)
        );
        assert_eq!(
            find_column(ImportKind::Cards, "statusInfo.reason"),
            Some(card::STATUS_REASON)
        );
        assert_eq!(find_column(ImportKind::Cards, "colour"), None);
        assert!(columns(ImportKind::Cards).len() <= MAX_COLUMNS);
    }

    #[test]
    fn required_columns() {
        let mut present = [false; MAX_COLUMNS];
        present[card::CARD_NUMBER] = true;
        assert_eq!(
            missing_required(ImportKind::Cards, &present),
            ["series_code or series_id"]
        );
        present[card::SERIES_ID] = true;
        assert!(missing_required(ImportKind::Cards, &present).is_empty());
        assert_eq!(
            missing_required(ImportKind::Customers, &[false; MAX_COLUMNS]),
            ["customer_id"]
        );
    }
}
