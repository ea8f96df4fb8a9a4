//! The org-level external-ID sequence, shared by both backends: values come
//! from the org's counter through its permutation, skipping any a card or
//! customer already uses. The backend holds the sequence row locked, reads
//! the counter, asks the database which candidates are taken, and stores the
//! counter's new value.

use std::collections::HashSet;

use super::StoreError;
use crate::numbers::{NumberFormat, NumberGenerator, PermutationKey};

/// A reservation of `count` free external IDs in progress.
pub(crate) struct FreeIds {
    generator: NumberGenerator,
    counter: u64,
    count: usize,
    ids: Vec<String>,
}

impl FreeIds {
    /// Starts at the stored `counter`, never below `offset`.
    pub(crate) fn new(format: &NumberFormat, key: PermutationKey, counter: u64, offset: u64, count: usize) -> Self {
        FreeIds {
            generator: NumberGenerator::new(format.clone(), key),
            counter: counter.max(offset),
            count,
            ids: Vec::with_capacity(count),
        }
    }

    /// The next candidates to check against the database, or `None` once
    /// enough free IDs are found; `CounterExhausted` when they do not fit.
    pub(crate) fn candidates(&mut self) -> Result<Option<Vec<String>>, StoreError> {
        let wanted = self.count - self.ids.len();
        if wanted == 0 {
            return Ok(None);
        }
        let max = self.generator.format().max_counter();
        if self
            .counter
            .checked_add(wanted as u64 - 1)
            .is_none_or(|last| last > max)
        {
            return Err(StoreError::CounterExhausted {
                next: self.counter,
                requested: wanted as u64,
                max,
            });
        }
        let block = self.generator.render_block(self.counter, wanted);
        self.counter += wanted as u64;
        Ok(Some(block.iter().map(str::to_string).collect()))
    }

    /// Keeps the candidates that are not `taken`.
    pub(crate) fn keep(&mut self, candidates: Vec<String>, taken: &HashSet<String>) {
        self.ids.extend(candidates.into_iter().filter(|id| !taken.contains(id)));
    }

    /// The IDs found and the counter's next value.
    pub(crate) fn finish(self) -> (Vec<String>, u64) {
        (self.ids, self.counter)
    }
}
