//! The keyed permutation behind the `RANDOM*` methods.
//!
//! A counter value `x` in `[0, 10^d)` is split into a high part `L` in
//! `[0, 10^⌊d/2⌋)` and a low part `R` in `[0, 10^⌈d/2⌉)`. Each of the rounds
//! adds a keyed pseudo-random function of one part to the other, modulo that
//! part's size (an unbalanced Feistel network over Z_a × Z_b). Every round is
//! invertible, so the whole is a bijection on exactly `10^d` values: unique by
//! construction, with no cycle-walking and no lookups. The round function is
//! SipHash-1-3 keyed with the series' 128-bit secret, so the order cannot be
//! guessed from numbers already seen without the key.
//!
//! Bodies wider than [`MAX_PERMUTED_DIGITS`] digits permute their low
//! `MAX_PERMUTED_DIGITS` digits and keep zeros above them: the counter is a
//! 64-bit integer, so those high digits could never be reached anyway.

use std::hash::Hasher;

use siphasher::sip::SipHasher13;

/// Widest digit space permuted as a whole (two halves of at most 19 digits each fit a `u64`).
pub const MAX_PERMUTED_DIGITS: usize = 38;

const ROUNDS: u8 = 8;

/// A series' secret key for the permutation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PermutationKey(pub [u8; 16]);

impl PermutationKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)?;
        Ok(PermutationKey(bytes))
    }

    /// Lower-case hex, as stored in the database.
    pub fn to_hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses the stored hex form.
    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 32 || !text.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(PermutationKey(bytes))
    }
}

impl std::fmt::Debug for PermutationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PermutationKey(<redacted>)")
    }
}

/// A keyed bijection on the decimal strings of a fixed width.
#[derive(Debug, Clone)]
pub struct DecimalPermutation {
    key0: u64,
    key1: u64,
    /// Digits actually permuted (`min(width, MAX_PERMUTED_DIGITS)`).
    permuted_digits: usize,
    high_digits: usize,
    high_modulus: u64,
    low_modulus: u64,
}

impl DecimalPermutation {
    /// A permutation of `[0, 10^width)` under `key`; `width` must be at least 1.
    pub fn new(key: PermutationKey, width: usize) -> Self {
        let permuted_digits = width.clamp(1, MAX_PERMUTED_DIGITS);
        let high_digits = permuted_digits / 2;
        let low_digits = permuted_digits - high_digits;
        let (k0, k1) = key.0.split_at(8);
        DecimalPermutation {
            key0: u64::from_le_bytes(k0.try_into().unwrap_or_default()),
            key1: u64::from_le_bytes(k1.try_into().unwrap_or_default()),
            permuted_digits,
            high_digits,
            high_modulus: 10u64.pow(high_digits as u32),
            low_modulus: 10u64.pow(low_digits as u32),
        }
    }

    /// Permutes `counter` and writes it as `out.len()` zero-padded ASCII digits.
    ///
    /// `counter` must be below `10^out.len()` (the caller's capacity check).
    pub fn write_permuted(&self, counter: u64, out: &mut [u8]) {
        let (mut high, mut low) = self.split(counter);
        for round in 0..ROUNDS {
            if round % 2 == 0 {
                low = add_mod(low, self.round_value(round, high) % self.low_modulus, self.low_modulus);
            } else {
                high = add_mod(
                    high,
                    self.round_value(round, low) % self.high_modulus,
                    self.high_modulus,
                );
            }
        }
        let zeros = out.len() - self.permuted_digits;
        out[..zeros].fill(b'0');
        let (high_out, low_out) = out[zeros..].split_at_mut(self.high_digits);
        write_padded(high, high_out);
        write_padded(low, low_out);
    }

    /// Inverse of [`write_permuted`](Self::write_permuted) on the permuted value (tests only need it).
    pub fn invert(&self, digits: &[u8]) -> Option<u64> {
        let permuted = &digits[digits.len() - self.permuted_digits..];
        let (high_text, low_text) = permuted.split_at(self.high_digits);
        let mut high = parse_digits(high_text)?;
        let mut low = parse_digits(low_text)?;
        for round in (0..ROUNDS).rev() {
            if round % 2 == 0 {
                let step = self.round_value(round, high) % self.low_modulus;
                low = add_mod(low, self.low_modulus - step, self.low_modulus);
            } else {
                let step = self.round_value(round, low) % self.high_modulus;
                high = add_mod(high, self.high_modulus - step, self.high_modulus);
            }
        }
        u64::try_from(u128::from(high) * u128::from(self.low_modulus) + u128::from(low)).ok()
    }

    fn split(&self, counter: u64) -> (u64, u64) {
        (counter / self.low_modulus, counter % self.low_modulus)
    }

    fn round_value(&self, round: u8, half: u64) -> u64 {
        let mut hasher = SipHasher13::new_with_keys(self.key0, self.key1);
        hasher.write_u64(half ^ (u64::from(round) << 58) ^ ((self.permuted_digits as u64) << 50));
        hasher.finish()
    }
}

/// `(value + step) mod modulus` for operands below `modulus`, without overflow.
fn add_mod(value: u64, step: u64, modulus: u64) -> u64 {
    let step = step % modulus;
    if value >= modulus - step {
        value - (modulus - step)
    } else {
        value + step
    }
}

/// Writes `value` right-aligned and zero-padded into `out`.
pub(crate) fn write_padded(mut value: u64, out: &mut [u8]) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

fn parse_digits(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const KEY: PermutationKey = PermutationKey(*b"0123456789abcdef");

    #[test]
    fn is_a_bijection_on_small_widths() {
        for width in 1..=4 {
            let permutation = DecimalPermutation::new(KEY, width);
            let size = 10u64.pow(width as u32);
            let mut seen = HashSet::new();
            let mut out = vec![0u8; width];
            for counter in 0..size {
                permutation.write_permuted(counter, &mut out);
                assert!(seen.insert(out.clone()), "width {width}: repeat at {counter}");
                assert_eq!(permutation.invert(&out), Some(counter));
            }
            assert_eq!(seen.len() as u64, size);
        }
    }

    #[test]
    fn inverts_on_wide_bodies() {
        for width in [9, 18, 19, 20, 37, 38, 60, 149] {
            let permutation = DecimalPermutation::new(KEY, width);
            let mut out = vec![0u8; width];
            for counter in [0, 1, 2, 999_999, u64::from(u32::MAX), (1 << 62) + 12345] {
                if width < 20 && counter >= 10u64.pow(width as u32) {
                    continue;
                }
                permutation.write_permuted(counter, &mut out);
                assert_eq!(
                    permutation.invert(&out),
                    Some(counter),
                    "width {width} counter {counter}"
                );
            }
        }
    }

    #[test]
    fn different_keys_give_different_orders() {
        let other = PermutationKey(*b"fedcba9876543210");
        let a = DecimalPermutation::new(KEY, 12);
        let b = DecimalPermutation::new(other, 12);
        let (mut x, mut y) = (vec![0u8; 12], vec![0u8; 12]);
        let differing = (0..100)
            .filter(|&c| {
                a.write_permuted(c, &mut x);
                b.write_permuted(c, &mut y);
                x != y
            })
            .count();
        assert!(differing > 95);
    }

    #[test]
    fn consecutive_counters_are_not_consecutive_numbers() {
        let permutation = DecimalPermutation::new(KEY, 12);
        let mut out = vec![0u8; 12];
        let values: Vec<u64> = (1..=50)
            .map(|c| {
                permutation.write_permuted(c, &mut out);
                parse_digits(&out).unwrap()
            })
            .collect();
        let adjacent = values.windows(2).filter(|w| w[0].abs_diff(w[1]) < 1000).count();
        assert!(adjacent < 3, "{values:?}");
    }

    #[test]
    fn key_hex_round_trips() {
        assert_eq!(PermutationKey::from_hex(&KEY.to_hex()), Some(KEY));
        assert_eq!(PermutationKey::from_hex("zz"), None);
        assert!(!format!("{KEY:?}").contains("0123"));
    }
}
