//! Bulk generation: many consecutive counter values rendered at once, in
//! parallel on rayon, into one flat buffer (every number of a format has the
//! same width, so no per-number allocation is needed).

use rayon::prelude::*;

use super::format::NumberFormat;
use super::permutation::{DecimalPermutation, PermutationKey};

/// Numbers below this count are rendered on the calling thread: splitting
/// costs more than it saves.
const PARALLEL_THRESHOLD: usize = 4096;
/// Numbers per rayon task.
const CHUNK_NUMBERS: usize = 2048;

/// Renders numbers of one format; cheap to clone and safe to share across threads.
#[derive(Debug, Clone)]
pub struct NumberGenerator {
    format: NumberFormat,
    permutation: Option<DecimalPermutation>,
}

impl NumberGenerator {
    /// A generator for `format`; `key` is needed (and used) only for the `RANDOM*` methods.
    pub fn new(format: NumberFormat, key: PermutationKey) -> Self {
        let permutation = format.permutation(key);
        NumberGenerator { format, permutation }
    }

    pub fn format(&self) -> &NumberFormat {
        &self.format
    }

    /// The number for one counter value.
    pub fn render_one(&self, counter: u64) -> String {
        self.render_block(counter, 1)
            .iter()
            .next()
            .unwrap_or_default()
            .to_string()
    }

    /// The numbers for counters `first .. first + count`, in counter order, on rayon.
    pub fn render_block(&self, first: u64, count: usize) -> NumberBlock {
        let width = self.format.length();
        let mut bytes = vec![0u8; width * count];
        if count < PARALLEL_THRESHOLD {
            self.render_into(first, &mut bytes);
        } else {
            bytes
                .par_chunks_mut(width * CHUNK_NUMBERS)
                .enumerate()
                .for_each(|(chunk, out)| self.render_into(first + (chunk * CHUNK_NUMBERS) as u64, out));
        }
        NumberBlock { width, bytes }
    }

    /// The same as [`render_block`](Self::render_block) on the calling thread only (for benchmarks).
    pub fn render_block_sequential(&self, first: u64, count: usize) -> NumberBlock {
        let width = self.format.length();
        let mut bytes = vec![0u8; width * count];
        self.render_into(first, &mut bytes);
        NumberBlock { width, bytes }
    }

    fn render_into(&self, first: u64, out: &mut [u8]) {
        let width = self.format.length();
        for (offset, slot) in out.chunks_exact_mut(width).enumerate() {
            self.format
                .render(first + offset as u64, self.permutation.as_ref(), slot);
        }
    }
}

/// Equal-width ASCII numbers stored back to back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberBlock {
    width: usize,
    bytes: Vec<u8>,
}

impl NumberBlock {
    pub fn len(&self) -> usize {
        self.bytes.len().checked_div(self.width).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The numbers, in counter order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        // Prefix and suffix are validated ASCII alphanumerics and the body is
        // digits, so every chunk is ASCII; the fallback is never taken.
        self.bytes
            .chunks_exact(self.width.max(1))
            .map(|chunk| std::str::from_utf8(chunk).unwrap_or_default())
    }

    /// The numbers as a JSON array of strings (all characters are ASCII
    /// letters and digits, so no escaping is needed).
    pub fn to_json_array(&self) -> String {
        json_array(self.iter())
    }

    /// The same array in ascending order: inserted in key order, a B-tree
    /// index grows at its right edge instead of splitting pages at random.
    pub fn to_sorted_json_array(&self) -> String {
        let mut sorted: Vec<&str> = self.iter().collect();
        sorted.par_sort_unstable();
        json_array(sorted.into_iter())
    }
}

/// A JSON array of strings that need no escaping (ASCII letters and digits).
fn json_array<'a>(numbers: impl ExactSizeIterator<Item = &'a str>) -> String {
    let mut json = String::with_capacity(numbers.len() * 24 + 2);
    json.push('[');
    for (i, number) in numbers.enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push('"');
        json.push_str(number);
        json.push('"');
    }
    json.push(']');
    json
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numbers::Method;

    const KEY: PermutationKey = PermutationKey([7; 16]);

    #[test]
    fn parallel_and_sequential_agree() {
        for method in Method::ALL {
            let format = NumberFormat::new("M2", "C0", 16, method).unwrap();
            let generator = NumberGenerator::new(format, KEY);
            assert_eq!(
                generator.render_block(17, 10_000),
                generator.render_block_sequential(17, 10_000),
                "{method}"
            );
        }
    }

    #[test]
    fn json_array_lists_every_number() {
        let format = NumberFormat::new("A", "", 5, Method::AutoIncrement).unwrap();
        let block = NumberGenerator::new(format, KEY).render_block(1, 3);
        assert_eq!(block.to_json_array(), r#"["A0001","A0002","A0003"]"#);
        let parsed: Vec<String> = serde_json::from_str(&block.to_json_array()).unwrap();
        assert_eq!(parsed.len(), 3);
    }
}
