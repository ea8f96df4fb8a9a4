//! Check digits: the ISO/IEC 7812-1 Luhn mod-10 digit and the IATA-style mod-7 digit.
//!
//! Both work on ASCII digit bytes of any length (card bodies can be up to 150
//! digits), so nothing here goes through a fixed-width integer.

/// A check-digit algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckDigit {
    /// Luhn mod 10 (ISO/IEC 7812-1).
    Luhn,
    /// Remainder of the payload, read as a decimal integer, divided by 7.
    Mod7,
}

impl CheckDigit {
    /// The check digit (0..=9) for `payload`, which must be ASCII digits only.
    pub fn compute(self, payload: &[u8]) -> u8 {
        match self {
            CheckDigit::Luhn => luhn_digit(payload),
            CheckDigit::Mod7 => mod7_digit(payload),
        }
    }

    /// The check digit over `head` followed by `payload`, without joining them.
    pub fn compute_over(self, head: &[u8], payload: &[u8]) -> u8 {
        match self {
            // Luhn weights depend on the distance from the right end, so the
            // payload is summed first, then the head continues its parity.
            CheckDigit::Luhn => {
                let payload_sum = luhn_sum(payload, true);
                let double_first = payload.len().is_multiple_of(2);
                let head_sum = luhn_sum(head, double_first);
                (10 - (payload_sum + head_sum) % 10) as u8 % 10
            }
            CheckDigit::Mod7 => mod7_continue(mod7_continue(0, head), payload),
        }
    }
}

/// Sum of the Luhn-weighted digits, walking from the right; `double_first`
/// says whether the rightmost digit is doubled.
fn luhn_sum(digits: &[u8], double_first: bool) -> u32 {
    let mut double = double_first;
    let mut sum = 0u32;
    for &byte in digits.iter().rev() {
        let digit = u32::from(byte - b'0');
        sum += if double {
            let twice = digit * 2;
            if twice > 9 { twice - 9 } else { twice }
        } else {
            digit
        };
        double = !double;
    }
    sum
}

fn luhn_digit(payload: &[u8]) -> u8 {
    // The check digit will sit to the right, so the payload's rightmost digit is doubled.
    let sum = luhn_sum(payload, true);
    ((10 - sum % 10) % 10) as u8
}

fn mod7_digit(payload: &[u8]) -> u8 {
    mod7_continue(0, payload)
}

/// The remainder mod 7 of the number whose leading digits left `remainder`
/// and whose following digits are `digits`. Digits are folded in groups of up
/// to 18 (remainder * 10^18 + group stays below 2^64), so a 150-digit body
/// costs nine divisions instead of 150.
fn mod7_continue(remainder: u8, digits: &[u8]) -> u8 {
    const POWERS_OF_TEN: [u64; 19] = {
        let mut powers = [1u64; 19];
        let mut i = 1;
        while i < 19 {
            powers[i] = powers[i - 1] * 10;
            i += 1;
        }
        powers
    };
    digits.chunks(18).fold(remainder, |remainder, group| {
        let value = group.iter().fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
        ((u64::from(remainder) * POWERS_OF_TEN[group.len()] + value) % 7) as u8
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_published_vector() {
        assert_eq!(CheckDigit::Luhn.compute(b"7992739871"), 3);
    }

    #[test]
    fn luhn_known_card_numbers() {
        // 4111 1111 1111 1111 and 4012 8888 8888 1881 are the well-known test PANs.
        assert_eq!(CheckDigit::Luhn.compute(b"411111111111111"), 1);
        assert_eq!(CheckDigit::Luhn.compute(b"401288888888188"), 1);
        assert_eq!(CheckDigit::Luhn.compute(b"0"), 0);
    }

    #[test]
    fn mod7_published_vector() {
        assert_eq!(CheckDigit::Mod7.compute(b"1234567"), 5);
    }

    #[test]
    fn mod7_long_payload_is_digit_by_digit() {
        // 10^149 mod 7: 10 mod 7 = 3, and 3 has order 6 mod 7, so 10^149 = 3^(149 mod 6 = 5) = 5 mod 7.
        let mut payload = vec![b'0'; 150];
        payload[0] = b'1';
        assert_eq!(CheckDigit::Mod7.compute(&payload), 5);
    }

    #[test]
    fn mod7_matches_digit_by_digit_long_division() {
        let digits: Vec<u8> = (0..150u32).map(|i| b'0' + ((i * 7 + 3) % 10) as u8).collect();
        for len in 0..=150 {
            let expected = digits[..len]
                .iter()
                .fold(0u32, |r, &d| (r * 10 + u32::from(d - b'0')) % 7);
            assert_eq!(
                u32::from(CheckDigit::Mod7.compute(&digits[..len])),
                expected,
                "length {len}"
            );
        }
    }

    #[test]
    fn compute_over_equals_compute_of_concatenation() {
        for algo in [CheckDigit::Luhn, CheckDigit::Mod7] {
            for (head, payload) in [("12", "3456"), ("987", "65"), ("", "1"), ("4", "0000000")] {
                let joined = format!("{head}{payload}");
                assert_eq!(
                    algo.compute_over(head.as_bytes(), payload.as_bytes()),
                    algo.compute(joined.as_bytes()),
                    "{algo:?} {head} {payload}"
                );
            }
        }
    }
}
