//! A Bloom filter of the card keys a store may already hold.
//!
//! PostgreSQL's COPY is all or nothing: one card number already stored
//! refuses the whole batch, and looking every key up first costs half as
//! much again as the insert itself. A drop with duplicates spread through it
//! meets such a key in nearly every batch. Once a batch has been refused,
//! the session reads the org's keys once into this filter and adds every
//! key it inserts; from then on only the rows whose keys the filter may
//! hold (the real duplicates and about 1% false positives) are looked up
//! before the write. A key stored by another writer after the filter was
//! read is not in it; such a batch is refused and judged again, which costs
//! time but never a wrong verdict.

use siphasher::sip128::{Hasher128, SipHasher13};

/// Bits per expected key: about 1% false positives with [`HASHES`] hashes.
const BITS_PER_KEY: u64 = 10;
const HASHES: u64 = 7;

/// The most memory a filter may take (16 MiB: about 13 million keys at 1%).
pub const MAX_BYTES: u64 = 16 << 20;

/// The most keys a filter is built for; an org with more is looked up batch
/// by batch instead.
pub const MAX_KEYS: u64 = MAX_BYTES * 8 / BITS_PER_KEY;

/// A Bloom filter of strings.
#[derive(Debug, Clone)]
pub struct KeyFilter {
    bits: Vec<u64>,
}

impl KeyFilter {
    /// A filter sized for `keys` keys (at least 1 million, at most [`MAX_BYTES`]).
    pub fn with_capacity(keys: u64) -> KeyFilter {
        let bits = (keys.max(1 << 20) * BITS_PER_KEY).min(MAX_BYTES * 8);
        KeyFilter {
            bits: vec![0; bits.div_ceil(64) as usize],
        }
    }

    pub fn insert(&mut self, key: &str) {
        let length = self.bit_length();
        for bit in positions(key, length) {
            self.bits[(bit / 64) as usize] |= 1 << (bit % 64);
        }
    }

    /// False when `key` is surely not in the filter.
    pub fn may_contain(&self, key: &str) -> bool {
        let length = self.bit_length();
        positions(key, length).all(|bit| self.bits[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }

    fn bit_length(&self) -> u64 {
        self.bits.len() as u64 * 64
    }
}

/// The filter's bit positions for `key`: double hashing of one 128-bit SipHash.
fn positions(key: &str, length: u64) -> impl Iterator<Item = u64> {
    let mut hasher = SipHasher13::new_with_keys(0x6361_7264_6261_7463, 0x6b65_7966_696c_7465);
    std::hash::Hasher::write(&mut hasher, key.as_bytes());
    let hash = hasher.finish128();
    let (first, second) = (hash.h1, hash.h2 | 1);
    (0..HASHES).map(move |i| first.wrapping_add(i.wrapping_mul(second)) % length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let mut filter = KeyFilter::with_capacity(100_000);
        for i in 0..100_000 {
            filter.insert(&format!("6001{i:012}"));
        }
        assert!((0..100_000).all(|i| filter.may_contain(&format!("6001{i:012}"))));
        let false_positives = (0..100_000)
            .filter(|i| filter.may_contain(&format!("7701{i:012}")))
            .count();
        // Sized for a million keys and holding a tenth of that: far below 1%.
        assert!(false_positives < 200, "{false_positives}");
    }

    #[test]
    fn the_filter_never_passes_its_memory_cap() {
        assert_eq!(KeyFilter::with_capacity(u64::MAX / 64).bits.len() as u64 * 8, MAX_BYTES);
    }
}
