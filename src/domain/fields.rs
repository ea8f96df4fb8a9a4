//! Field limits and character sets shared by every record kind and both
//! stores. The same rules hold in every text field:
//!
//! - characters are checked before length, so a character outside the
//!   field's set is `INVALID_CHARACTERS` whatever the length;
//! - lengths are counted in characters, never bytes;
//! - no text field holds a control character other than tab (NUL included),
//!   so SQLite and PostgreSQL store exactly the same text.
//!
//! Card numbers: ASCII letters and digits, at most 150 characters.
//! External IDs: ASCII letters, digits, `-` and `_`, at most 50 characters.
//! Free text (series codes, status labels, status reasons): any character but
//! controls, at most 255 characters.

use super::reject::{RejectReason, Rejection};

/// Longest card number any series can produce.
pub const CARD_NUMBER_MAX_LENGTH: usize = 150;
/// Longest external ID.
pub const EXTERNAL_ID_MAX_LENGTH: usize = 50;
/// Longest free-text value (status reason, label, series code) kept.
pub const TEXT_MAX_LENGTH: usize = 255;

/// A field's character set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Charset {
    /// ASCII letters and digits.
    Alphanumeric,
    /// ASCII letters, digits, `-` and `_`.
    ExternalId,
    /// Anything but a control character; tab is allowed.
    Text,
}

impl Charset {
    fn allows(self, c: char) -> bool {
        match self {
            Charset::Alphanumeric => c.is_ascii_alphanumeric(),
            Charset::ExternalId => c.is_ascii_alphanumeric() || c == '-' || c == '_',
            Charset::Text => c == '\t' || !c.is_control(),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Charset::Alphanumeric => "only ASCII letters and digits are allowed",
            Charset::ExternalId => "only ASCII letters, digits, '-' and '_' are allowed",
            Charset::Text => "control characters other than tab are not allowed",
        }
    }
}

/// Checks a required card number's presence, characters and length.
pub fn check_card_number(field: &'static str, value: &str) -> Result<(), Rejection> {
    check_required(field, value)?;
    check_text(field, value, Charset::Alphanumeric, CARD_NUMBER_MAX_LENGTH)
}

/// Checks a present external ID's characters and length (org rules come after).
pub fn check_external_id_charset(field: &'static str, value: &str) -> Result<(), Rejection> {
    check_required(field, value)?;
    check_text(field, value, Charset::ExternalId, EXTERNAL_ID_MAX_LENGTH)
}

/// Checks a free-text value (status reason, status label, series code):
/// no control character but tab, at most [`TEXT_MAX_LENGTH`] characters.
pub fn check_free_text(field: &'static str, value: &str) -> Result<(), Rejection> {
    check_text(field, value, Charset::Text, TEXT_MAX_LENGTH)
}

fn check_required(field: &'static str, value: &str) -> Result<(), Rejection> {
    if value.is_empty() {
        return Err(Rejection::new(
            RejectReason::MissingField,
            field,
            format!("{field} is required"),
        ));
    }
    Ok(())
}

/// Characters first, then length in characters.
fn check_text(field: &'static str, value: &str, charset: Charset, max_length: usize) -> Result<(), Rejection> {
    let mut length = 0;
    for c in value.chars() {
        length += 1;
        if !charset.allows(c) {
            return Err(Rejection::new(
                RejectReason::InvalidCharacters,
                field,
                format!(
                    "{field} contains {} at character {length}: {}",
                    shown(c),
                    charset.describe()
                ),
            ));
        }
    }
    if length > max_length {
        return Err(Rejection::new(
            RejectReason::FieldTooLong,
            field,
            format!("{field} has {length} characters, at most {max_length} are allowed"),
        ));
    }
    Ok(())
}

/// A character as a message shows it: quoted, with controls as escapes (`'\0'`, `'\u{7}'`).
fn shown(c: char) -> String {
    format!("{c:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(result: Result<(), Rejection>) -> Option<RejectReason> {
        result.err().map(|r| r.reason)
    }

    #[test]
    fn card_number_rules() {
        assert!(check_card_number("card_number", "Test09000000000037end").is_ok());
        assert_eq!(
            reason(check_card_number("card_number", "")),
            Some(RejectReason::MissingField)
        );
        assert_eq!(
            reason(check_card_number("card_number", &"1".repeat(151))),
            Some(RejectReason::FieldTooLong)
        );
        assert_eq!(
            reason(check_card_number("card_number", "12-34")),
            Some(RejectReason::InvalidCharacters)
        );
        assert_eq!(
            reason(check_card_number("card_number", "12é4")),
            Some(RejectReason::InvalidCharacters)
        );
    }

    #[test]
    fn external_id_charset() {
        assert!(check_external_id_charset("external_id", "CardExternal_69-93").is_ok());
        assert_eq!(
            reason(check_external_id_charset("external_id", &"a".repeat(51))),
            Some(RejectReason::FieldTooLong)
        );
        assert_eq!(
            reason(check_external_id_charset("external_id", "a b")),
            Some(RejectReason::InvalidCharacters)
        );
    }

    #[test]
    fn characters_are_judged_before_length_and_lengths_count_characters() {
        // 30 'é' are 60 bytes but 30 characters: under the limit, and not ASCII.
        let rejection = check_external_id_charset("external_id", &"é".repeat(30)).unwrap_err();
        assert_eq!(rejection.reason, RejectReason::InvalidCharacters);
        assert!(rejection.message.contains("at character 1"), "{}", rejection.message);
        // Too long and with a bad character: the character wins.
        assert_eq!(
            reason(check_external_id_charset(
                "external_id",
                &format!("{}é", "a".repeat(60))
            )),
            Some(RejectReason::InvalidCharacters)
        );
        // 255 characters of two bytes each fit a free-text field.
        assert!(check_free_text("status_reason", &"é".repeat(255)).is_ok());
        let too_long = check_free_text("status_reason", &"é".repeat(256)).unwrap_err();
        assert_eq!(too_long.reason, RejectReason::FieldTooLong);
        assert!(too_long.message.contains("has 256 characters"), "{}", too_long.message);
    }

    #[test]
    fn free_text_allows_tab_but_no_other_control_character() {
        assert!(check_free_text("status_reason", "lost\tat the gym, ça va").is_ok());
        for control in ['\0', '\n', '\r', '\u{7}', '\u{1b}', '\u{7f}', '\u{85}'] {
            let rejection = check_free_text("status_reason", &format!("lost{control}card")).unwrap_err();
            assert_eq!(rejection.reason, RejectReason::InvalidCharacters, "{control:?}");
            assert!(!rejection.message.contains(control), "the message escapes it");
        }
    }
}
