//! `--mask-card-numbers`: card numbers shown as PCI DSS allows for display,
//! the first six and the last four characters, the rest `*`.
//!
//! A reject's own card number is masked wherever it appears (the value, the
//! message, the raw record), and so is any other run of 12 or more digits
//! (a number in a record that could not be read field by field). What is
//! masked is only what is shown: the stored rejects stay as they were, and
//! `rejects export --as-input` refuses the flag, since it must give the
//! records back as they were.

use crate::batch::RejectRow;
use crate::report::review::FieldReader;
use crate::store::RunInfo;

/// Digits in a row from which a run of digits is taken for a card number.
const LONG_DIGIT_RUN: usize = 12;

/// A card number masked for display: the first 6 and last 4 characters kept
/// when at least 11 are there; a shorter one keeps only its last 4 (and
/// one of 4 or fewer is masked whole), so that no more than half shows.
pub fn mask_number(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    let (head, tail) = match chars.len() {
        n if n > 10 => (6, 4),
        n if n > 8 => (0, 4),
        n => (0, n / 2),
    };
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < head || i >= chars.len() - tail { *c } else { '*' })
        .collect()
}

/// Digits of a card number shown in a message on their own (the payload a
/// check digit was computed over): a run of at least this many that is
/// part of the reject's card number is masked whole.
const NUMBER_PART: usize = 6;

/// `text` with its card numbers masked: `number` (the reject's own) where it
/// is not all digits, then every maximal run of digits that is the number,
/// or [`LONG_DIGIT_RUN`] digits or more (6 and 4 kept), or a part of the
/// number of [`NUMBER_PART`] digits or more (masked whole).
fn mask_text(text: &str, number: Option<&str>) -> String {
    let number = number.filter(|number| !number.is_empty());
    let text = match number {
        Some(number) if !number.bytes().all(|b| b.is_ascii_digit()) => text.replace(number, &mask_number(number)),
        _ => text.to_string(),
    };
    let mut out = String::with_capacity(text.len());
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        let part_of_number =
            digits.len() >= NUMBER_PART && number.is_some_and(|number| number.contains(digits.as_str()));
        if number == Some(digits.as_str()) || digits.len() >= LONG_DIGIT_RUN {
            out.push_str(&mask_number(digits));
        } else if part_of_number {
            out.extend(std::iter::repeat_n('*', digits.len()));
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out
}

/// Masks the card numbers of one run's rejects.
pub struct CardMask {
    reader: FieldReader,
}

impl CardMask {
    pub fn for_run(run: &RunInfo) -> CardMask {
        CardMask {
            reader: FieldReader::for_run(run),
        }
    }

    /// The row as it may be shown.
    pub fn row(&self, row: &RejectRow) -> RejectRow {
        let number = self.reader.value(&row.raw, "card_number");
        RejectRow {
            message: mask_text(&row.message, number.as_deref()),
            raw: mask_text(&row.raw, number.as_deref()),
            field: row.field.clone(),
            ..*row
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_six_and_four() {
        assert_eq!(mask_number("6001314611071254"), "600131******1254");
        assert_eq!(mask_number("60013146110"), "600131*6110");
        assert_eq!(mask_number("6001314611"), "******4611");
        assert_eq!(mask_number("60013146"), "****3146");
        assert_eq!(mask_number("6001"), "**01");
        assert_eq!(mask_number(""), "");
    }

    #[test]
    fn the_number_its_parts_and_long_digit_runs_are_masked_and_short_ones_kept() {
        let number = Some("6001005000000265");
        assert_eq!(
            mask_text("6001005000000265,GOLD,CX000123,12345678901", number),
            "600100******0265,GOLD,CX000123,12345678901"
        );
        // The payload a check digit was computed over gives the middle away: masked whole.
        assert_eq!(
            mask_text(
                "wrong check digit 5: expected 4, computed over \"00500000026\" (series GOLD)",
                number
            ),
            "wrong check digit 5: expected 4, computed over \"***********\" (series GOLD)"
        );
        // Another long number (a record that could not be read field by field).
        assert_eq!(
            mask_text("123456789012 and 16 characters", None),
            "123456**9012 and 16 characters"
        );
        // A number with separators is masked as it was written.
        assert_eq!(
            mask_text("6001-3146-1107-1254,GOLD", Some("6001-3146-1107-1254")),
            "6001-3*********1254,GOLD"
        );
    }
}
