//! Field limits and character sets shared by every record kind.
//!
//! Card numbers: ASCII letters and digits, at most 150 characters.
//! External IDs: ASCII letters, digits, `-` and `_`, at most 50 characters.

use super::reject::{RejectReason, Rejection};

/// Longest card number any series can produce.
pub const CARD_NUMBER_MAX_LENGTH: usize = 150;
/// Longest external ID.
pub const EXTERNAL_ID_MAX_LENGTH: usize = 50;
/// Longest status reason or label kept.
pub const TEXT_MAX_LENGTH: usize = 255;

/// Checks a required card number's presence, length and characters.
pub fn check_card_number(field: &'static str, value: &str) -> Result<(), Rejection> {
    check_text(
        field,
        value,
        CARD_NUMBER_MAX_LENGTH,
        |b| b.is_ascii_alphanumeric(),
        "ASCII letters and digits",
    )
}

/// Checks a present external ID's length and characters (org rules come after).
pub fn check_external_id_charset(field: &'static str, value: &str) -> Result<(), Rejection> {
    check_text(
        field,
        value,
        EXTERNAL_ID_MAX_LENGTH,
        |b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_',
        "ASCII letters, digits, '-' and '_'",
    )
}

fn check_text(
    field: &'static str,
    value: &str,
    max_length: usize,
    allowed: impl Fn(u8) -> bool,
    allowed_text: &str,
) -> Result<(), Rejection> {
    if value.is_empty() {
        return Err(Rejection::new(
            RejectReason::MissingField,
            field,
            format!("{field} is required"),
        ));
    }
    if value.len() > max_length {
        return Err(Rejection::new(
            RejectReason::FieldTooLong,
            field,
            format!(
                "{field} has {} characters, at most {max_length} are allowed",
                value.chars().count()
            ),
        ));
    }
    if let Some(bad) = value.bytes().position(|b| !allowed(b)) {
        let shown = value[bad..].chars().next().unwrap_or('?');
        return Err(Rejection::new(
            RejectReason::InvalidCharacters,
            field,
            format!(
                "{field} contains {shown:?} at position {}: only {allowed_text} are allowed",
                bad + 1
            ),
        ));
    }
    Ok(())
}

/// Checks an optional free-text field's length.
pub fn check_text_length(field: &'static str, value: &str) -> Result<(), Rejection> {
    if value.len() > TEXT_MAX_LENGTH {
        return Err(Rejection::new(
            RejectReason::FieldTooLong,
            field,
            format!("{field} is longer than {TEXT_MAX_LENGTH} bytes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_number_rules() {
        assert!(check_card_number("card_number", "Test09000000000037end").is_ok());
        assert_eq!(
            check_card_number("card_number", "").unwrap_err().reason,
            RejectReason::MissingField
        );
        assert_eq!(
            check_card_number("card_number", &"1".repeat(151)).unwrap_err().reason,
            RejectReason::FieldTooLong
        );
        assert_eq!(
            check_card_number("card_number", "12-34").unwrap_err().reason,
            RejectReason::InvalidCharacters
        );
        assert_eq!(
            check_card_number("card_number", "12é4").unwrap_err().reason,
            RejectReason::InvalidCharacters
        );
    }

    #[test]
    fn external_id_charset() {
        assert!(check_external_id_charset("external_id", "CardExternal_69-93").is_ok());
        assert_eq!(
            check_external_id_charset("external_id", &"a".repeat(51))
                .unwrap_err()
                .reason,
            RejectReason::FieldTooLong
        );
        assert_eq!(
            check_external_id_charset("external_id", "a b").unwrap_err().reason,
            RejectReason::InvalidCharacters
        );
    }
}
