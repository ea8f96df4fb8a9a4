//! The shape of a number: `prefix + body + suffix`, where the body is the
//! zero-padded (or permuted) counter followed by the check digit, if any.
//!
//! [`NumberFormat`] both renders numbers from counter values and checks
//! numbers that come from elsewhere (imports, `cards add`).

use super::check_digit::CheckDigit;
use super::method::Method;
use super::permutation::{DecimalPermutation, PermutationKey, write_padded};

/// Why a number does not fit its format, in the order the checks run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberFault {
    #[error("has {actual} characters, expected {expected}")]
    LengthMismatch { expected: usize, actual: usize },
    #[error("does not start with {prefix:?} and end with {suffix:?}")]
    PrefixSuffixMismatch { prefix: String, suffix: String },
    #[error("has a non-digit between prefix and suffix")]
    NonDigitBody,
    #[error(
        "has a wrong {algorithm} check digit {found}: expected {expected}, computed over {covered:?} ({})",
        if *.prefix_included { "the prefix's digits and the digits after it" } else { "the digits after the prefix" }
    )]
    ChecksumInvalid {
        algorithm: &'static str,
        found: u8,
        expected: u8,
        /// The digits the check digit covers, in order.
        covered: String,
        prefix_included: bool,
    },
}

/// The format has no digit left for the generated part (error 3005).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "length {length} leaves no digit for the generated part after prefix ({prefix_len}), suffix ({suffix_len}){check}",
    check = if *.has_check_digit { " and check digit" } else { "" }
)]
pub struct NoDigitsLeft {
    pub length: usize,
    pub prefix_len: usize,
    pub suffix_len: usize,
    pub has_check_digit: bool,
}

/// A validated number format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberFormat {
    prefix: String,
    suffix: String,
    length: usize,
    method: Method,
    /// Digits placed before the body when computing the check digit (the
    /// org-level `CONF_VALUES_TO_INCLUDE_FOR_CHECKSUM_DIGIT=PREFIX`).
    checksum_head: Vec<u8>,
    /// `valuesToIncludeForChecksumDigit` is `PREFIX`.
    prefix_in_checksum: bool,
}

impl NumberFormat {
    /// A format whose check digit covers the body only (card series).
    pub fn new(prefix: &str, suffix: &str, length: usize, method: Method) -> Result<Self, NoDigitsLeft> {
        let check = usize::from(method.check_digit().is_some());
        if length < prefix.len() + suffix.len() + check + 1 {
            return Err(NoDigitsLeft {
                length,
                prefix_len: prefix.len(),
                suffix_len: suffix.len(),
                has_check_digit: check == 1,
            });
        }
        Ok(NumberFormat {
            prefix: prefix.to_string(),
            suffix: suffix.to_string(),
            length,
            method,
            checksum_head: Vec::new(),
            prefix_in_checksum: false,
        })
    }

    /// Includes the prefix's digits (its ASCII digits, in order) in the check digit.
    pub fn with_prefix_in_checksum(mut self) -> Self {
        self.checksum_head = self.prefix.bytes().filter(u8::is_ascii_digit).collect();
        self.prefix_in_checksum = true;
        self
    }

    /// Whether the check digit covers the prefix's digits too
    /// (`valuesToIncludeForChecksumDigit` `PREFIX`).
    pub fn prefix_in_checksum(&self) -> bool {
        self.prefix_in_checksum
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn suffix(&self) -> &str {
        &self.suffix
    }

    /// Total length, prefix and suffix included.
    pub fn length(&self) -> usize {
        self.length
    }

    pub fn method(&self) -> Method {
        self.method
    }

    /// Characters between prefix and suffix.
    pub fn body_digits(&self) -> usize {
        self.length - self.prefix.len() - self.suffix.len()
    }

    /// Digits that carry the counter (the body less the check digit).
    pub fn counter_digits(&self) -> usize {
        self.body_digits() - usize::from(self.method.check_digit().is_some())
    }

    /// The largest counter value that fits, capped at `i64::MAX - 1` (counters
    /// are stored as signed 64-bit integers, and the next value must fit too).
    pub fn max_counter(&self) -> u64 {
        let cap = i64::MAX as u64 - 1;
        match 10u64.checked_pow(self.counter_digits() as u32) {
            Some(space) => (space - 1).min(cap),
            None => cap,
        }
    }

    /// Writes the number for `counter` into `out` (exactly `length()` bytes).
    ///
    /// `counter` must be at most [`max_counter`](Self::max_counter); `permutation`
    /// is used for the `RANDOM*` methods.
    pub fn render(&self, counter: u64, permutation: Option<&DecimalPermutation>, out: &mut [u8]) {
        let (prefix_out, rest) = out.split_at_mut(self.prefix.len());
        let (body_out, suffix_out) = rest.split_at_mut(self.body_digits());
        prefix_out.copy_from_slice(self.prefix.as_bytes());
        suffix_out.copy_from_slice(self.suffix.as_bytes());
        let counter_len = self.counter_digits();
        let (counter_out, check_out) = body_out.split_at_mut(counter_len);
        match permutation {
            Some(permutation) => permutation.write_permuted(counter, counter_out),
            None => write_padded_wide(counter, counter_out),
        }
        if let Some(algorithm) = self.method.check_digit() {
            check_out[0] = b'0' + algorithm.compute_over(&self.checksum_head, counter_out);
        }
    }

    /// Checks a number made elsewhere: length, prefix/suffix, digits-only body, check digit.
    pub fn check(&self, number: &[u8]) -> Result<(), NumberFault> {
        if number.len() != self.length {
            return Err(NumberFault::LengthMismatch {
                expected: self.length,
                actual: number.len(),
            });
        }
        if !number.starts_with(self.prefix.as_bytes()) || !number.ends_with(self.suffix.as_bytes()) {
            return Err(NumberFault::PrefixSuffixMismatch {
                prefix: self.prefix.clone(),
                suffix: self.suffix.clone(),
            });
        }
        let body = &number[self.prefix.len()..self.length - self.suffix.len()];
        if !body.iter().all(u8::is_ascii_digit) {
            return Err(NumberFault::NonDigitBody);
        }
        if let Some(algorithm) = self.method.check_digit() {
            let (payload, check) = body.split_at(body.len() - 1);
            let expected = algorithm.compute_over(&self.checksum_head, payload);
            if expected != check[0] - b'0' {
                let mut covered = self.checksum_head.clone();
                covered.extend_from_slice(payload);
                return Err(NumberFault::ChecksumInvalid {
                    algorithm: match algorithm {
                        CheckDigit::Luhn => "Luhn",
                        CheckDigit::Mod7 => "mod-7",
                    },
                    found: check[0] - b'0',
                    expected,
                    covered: String::from_utf8_lossy(&covered).into_owned(),
                    prefix_included: self.prefix_in_checksum,
                });
            }
        }
        Ok(())
    }

    /// The permutation for this format under `key`, when the method is random.
    pub fn permutation(&self, key: PermutationKey) -> Option<DecimalPermutation> {
        self.method
            .is_random()
            .then(|| DecimalPermutation::new(key, self.counter_digits()))
    }
}

/// Zero-padded decimal of any width (widths over 20 get leading zeros).
fn write_padded_wide(counter: u64, out: &mut [u8]) {
    let digits = out.len().min(20);
    let zeros = out.len() - digits;
    out[..zeros].fill(b'0');
    write_padded(counter, &mut out[zeros..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(format: &NumberFormat, counter: u64) -> String {
        let mut out = vec![0u8; format.length()];
        format.render(counter, None, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn seeds_example_shape() {
        // The seeds' generate response: "Test09000000000037end", a DEFAULT series.
        let format = NumberFormat::new("Test09", "end", 21, Method::AutoIncrement).unwrap();
        assert_eq!(render(&format, 37), "Test09000000000037end");
        assert_eq!(format.check(b"Test09000000000037end"), Ok(()));
    }

    #[test]
    fn luhn_and_mod7_bodies() {
        let luhn = NumberFormat::new("", "", 11, Method::Luhn).unwrap();
        assert_eq!(render(&luhn, 7_992_739_871), "79927398713");
        let mod7 = NumberFormat::new("M", "", 9, Method::Mod7).unwrap();
        assert_eq!(render(&mod7, 1_234_567), "M12345675");
        assert_eq!(mod7.check(b"M12345675"), Ok(()));
        assert!(matches!(
            mod7.check(b"M12345674"),
            Err(NumberFault::ChecksumInvalid { .. })
        ));
    }

    #[test]
    fn check_reports_faults_in_order() {
        let format = NumberFormat::new("AB", "Z", 8, Method::Luhn).unwrap();
        assert!(matches!(
            format.check(b"AB1234Z"),
            Err(NumberFault::LengthMismatch { expected: 8, actual: 7 })
        ));
        assert!(matches!(
            format.check(b"XB12345Z"),
            Err(NumberFault::PrefixSuffixMismatch { .. })
        ));
        assert!(matches!(
            format.check(b"AB12345Y"),
            Err(NumberFault::PrefixSuffixMismatch { .. })
        ));
        assert_eq!(format.check(b"AB12a45Z"), Err(NumberFault::NonDigitBody));
        assert!(matches!(
            format.check(b"AB12345Z"),
            Err(NumberFault::ChecksumInvalid { .. })
        ));
        let good = render(&format, 1234);
        assert_eq!(format.check(good.as_bytes()), Ok(()));
    }

    #[test]
    fn capacity_follows_available_digits() {
        // Seeds: length 16, prefix 6, check digit 1 -> 9 digits for the counter.
        let format = NumberFormat::new("123456", "", 16, Method::Luhn).unwrap();
        assert_eq!(format.counter_digits(), 9);
        assert_eq!(format.max_counter(), 999_999_999);
        let wide = NumberFormat::new("", "", 150, Method::RandomMod7).unwrap();
        assert_eq!(wide.max_counter(), i64::MAX as u64 - 1);
    }

    #[test]
    fn no_digit_left_is_refused() {
        assert!(NumberFormat::new("AB", "CD", 5, Method::AutoIncrement).is_ok());
        assert!(NumberFormat::new("AB", "CD", 5, Method::Luhn).is_err());
        assert!(NumberFormat::new("AB", "CD", 4, Method::AutoIncrement).is_err());
    }

    #[test]
    fn prefix_digits_can_enter_the_checksum() {
        let plain = NumberFormat::new("12", "", 6, Method::Luhn).unwrap();
        let with_prefix = plain.clone().with_prefix_in_checksum();
        let number = render(&with_prefix, 345);
        assert_eq!(
            CheckDigit::Luhn.compute(&number.as_bytes()[..5]),
            number.as_bytes()[5] - b'0'
        );
        assert_eq!(with_prefix.check(number.as_bytes()), Ok(()));
    }

    #[test]
    fn wide_bodies_are_zero_padded() {
        let format = NumberFormat::new("P", "", 40, Method::Mod7).unwrap();
        let number = render(&format, 42);
        assert_eq!(number.len(), 40);
        assert!(number.starts_with("P0000000000"));
        assert_eq!(format.check(number.as_bytes()), Ok(()));
    }
}
