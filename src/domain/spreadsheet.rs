//! What spreadsheets do to card numbers, and how a reject says so: digits
//! grouped with spaces or dashes, a long number turned into a float
//! (`6.00131E+15`), leading zeros dropped. Nothing is changed here without
//! `--strip-separators`; the other two only explain a reject.

use std::borrow::Cow;

use super::card::check_number_format;
use super::{RejectReason, Rejection, Series};

/// The characters `--strip-separators` removes from card numbers: space,
/// dash, no-break space and narrow no-break space (what spreadsheets and
/// printed cards group digits with).
pub const SEPARATORS: [char; 4] = [' ', '-', '\u{a0}', '\u{202f}'];

/// At most this many leading zeros are looked for when a number is short.
const MAX_DROPPED_ZEROS: usize = 3;

/// True when `number` holds a separator.
pub fn has_separators(number: &str) -> bool {
    number.contains(SEPARATORS)
}

/// `number` without its separators (borrowed when it has none).
pub fn strip_separators(number: &str) -> Cow<'_, str> {
    if has_separators(number) {
        Cow::Owned(number.chars().filter(|c| !SEPARATORS.contains(c)).collect())
    } else {
        Cow::Borrowed(number)
    }
}

/// True for a number written the way a spreadsheet shows a float:
/// `6.00131E+15`, `6,00131E+15`, `1E+16`.
pub fn is_scientific_notation(number: &str) -> bool {
    let Some((mantissa, exponent)) = number.split_once(['E', 'e']) else {
        return false;
    };
    let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    let (whole, fraction) = mantissa.split_once(['.', ',']).unwrap_or((mantissa, "0"));
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && digits(fraction) && digits(exponent)
}

/// Adds to an `INVALID_CHARACTERS` reject of a card number what a
/// spreadsheet probably did to it; other rejects pass unchanged.
pub fn explain_characters(number: &str, mut rejection: Rejection) -> Rejection {
    if rejection.reason != RejectReason::InvalidCharacters {
        return rejection;
    }
    if is_scientific_notation(number) {
        rejection.message = format!(
            "{} {number:?} is in scientific notation: a spreadsheet turned it into a float and its digits are \
             lost; export the column as text from the system it came from",
            rejection.field
        );
    } else if has_separators(number) && strip_separators(number).chars().all(|c| c.is_ascii_alphanumeric()) {
        rejection.message.push_str(
            "; the number is grouped with spaces or dashes, as spreadsheets and printed cards show it: \
             --strip-separators removes them",
        );
    }
    rejection
}

/// Adds to a `LENGTH_MISMATCH` reject of a card number of `series` a hint
/// when the number, one to three characters short, would pass with zeros in
/// front: a spreadsheet that read it as a number dropped them. The number
/// itself is never padded.
pub fn explain_length(number: &str, series: &Series, mut rejection: Rejection) -> Rejection {
    if rejection.reason != RejectReason::LengthMismatch || !number.bytes().all(|b| b.is_ascii_digit()) {
        return rejection;
    }
    let Some(config) = &series.definition.generation else {
        return rejection;
    };
    let short_by = config.format().length().saturating_sub(number.len());
    if !(1..=MAX_DROPPED_ZEROS).contains(&short_by) {
        return rejection;
    }
    let padded = format!("{}{number}", "0".repeat(short_by));
    if check_number_format(rejection.field, &padded, series).is_ok() {
        rejection.message.push_str(&format!(
            "; leading zeros may have been dropped (a spreadsheet that read the column as a number does that): \
             {padded:?} would be valid; export the column as text, cardbatch never pads a number"
        ));
    }
    rejection
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_are_stripped_only_where_there_are_some() {
        assert_eq!(strip_separators("6001 3146-1107\u{a0}1254"), "6001314611071254");
        assert!(matches!(strip_separators("6001314611071254"), Cow::Borrowed(_)));
    }

    #[test]
    fn scientific_notation_is_recognised() {
        for float in ["6.00131E+15", "6,00131E+15", "1E+16", "6.1e15"] {
            assert!(is_scientific_notation(float), "{float}");
        }
        for other in ["6001314611071254", "E15", "6.1E", "6.1E+", "ABCE12", "1.2.3E4"] {
            assert!(!is_scientific_notation(other), "{other}");
        }
    }
}
