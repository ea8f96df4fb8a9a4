//! A Bloom filter of the card keys a store may already hold.
//!
//! PostgreSQL's COPY is all or nothing: one card number already stored
//! fails the whole batch, which is then copied again without the rows
//! holding taken keys, and looking every key up first costs half as much
//! again as the insert itself. A drop with duplicates spread through it
//! meets such a key in nearly every batch. Once rows have been skipped on
//! such a store, the session reads the org's keys once into this filter and
//! adds every key it inserts; from then on only the rows whose keys the
//! filter may hold (the real duplicates and about 0.1% false positives) are
//! looked up before the write. A key stored by another writer after the
//! filter was read is not in it; such a row is skipped and judged again,
//! which costs time but never a wrong verdict.

use std::hash::Hasher;

use rustc_hash::FxHasher;

/// Bits per expected key: about 0.1% false positives with [`HASHES`]
/// hashes in 512-bit blocks (every false positive is a key looked up for nothing).
const BITS_PER_KEY: u64 = 16;
const HASHES: u64 = 11;

/// The most memory a filter may take (16 MiB: about 8 million keys at 0.1%).
pub const MAX_BYTES: u64 = 16 << 20;

/// The most keys a filter is built for; an org with more is looked up batch
/// by batch instead.
pub const MAX_KEYS: u64 = MAX_BYTES * 8 / BITS_PER_KEY;

/// One 64-byte block of the filter: a key's bits all fall in one block, so
/// a lookup touches one cache line (a plain Bloom filter touches one per
/// hash, and a batch asks about 20,000 keys).
type Block = [u64; 8];

/// A blocked Bloom filter of strings.
#[derive(Debug, Clone)]
pub struct KeyFilter {
    blocks: Vec<Block>,
}

impl KeyFilter {
    /// A filter sized for `keys` keys (at least 1 million, at most [`MAX_BYTES`]).
    pub fn with_capacity(keys: u64) -> KeyFilter {
        let bits = (keys.max(1 << 20) * BITS_PER_KEY).min(MAX_BYTES * 8);
        KeyFilter {
            blocks: vec![[0; 8]; bits.div_ceil(512) as usize],
        }
    }

    pub fn insert(&mut self, key: &str) {
        let (block, bits) = self.locate(key);
        let block = &mut self.blocks[block];
        for bit in bits {
            block[bit / 64] |= 1 << (bit % 64);
        }
    }

    /// False when `key` is surely not in the filter.
    pub fn may_contain(&self, key: &str) -> bool {
        let (block, mut bits) = self.locate(key);
        let block = &self.blocks[block];
        bits.all(|bit| block[bit / 64] & (1 << (bit % 64)) != 0)
    }

    /// The block of `key` and its bits in the block: one FxHash (fast: the
    /// writer asks about every key of every batch), mixed into two
    /// independent-looking halves, the first choosing the block, the second
    /// spread by double hashing over the block's 512 bits. The keys are not
    /// chosen by an adversary, and a collision only costs a lookup.
    fn locate(&self, key: &str) -> (usize, impl Iterator<Item = usize> + use<>) {
        let mut hasher = FxHasher::default();
        hasher.write(key.as_bytes());
        let hash = hasher.finish();
        let (h1, h2) = (mix(hash), mix(hash ^ 0x9e37_79b9_7f4a_7c15));
        let block = (h1 % self.blocks.len() as u64) as usize;
        let (first, second) = (h2 as u32, (h2 >> 32) as u32 | 1);
        let bits = (0..HASHES as u32).map(move |i| (first.wrapping_add(i.wrapping_mul(second)) % 512) as usize);
        (block, bits)
    }
}

/// SplitMix64's finalizer: every input bit reaches every output bit.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
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
        // Sized for a million keys and holding a tenth of that: far below 0.1%.
        assert!(false_positives < 20, "{false_positives}");
    }

    #[test]
    fn the_filter_never_passes_its_memory_cap() {
        assert_eq!(
            KeyFilter::with_capacity(u64::MAX / 64).blocks.len() as u64 * 64,
            MAX_BYTES
        );
    }
}
