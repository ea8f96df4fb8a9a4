//! Card numbers: check digits, generation methods, the keyed permutation for
//! the `RANDOM*` methods, the number format, and bulk generation.
//!
//! Everything here is pure computation over plain data, safe to run on rayon
//! threads; counters are reserved by the store, never here.

mod bulk;
mod check_digit;
mod format;
mod method;
mod permutation;

pub use bulk::{NumberBlock, NumberGenerator};
pub use check_digit::CheckDigit;
pub use format::{NoDigitsLeft, NumberFault, NumberFormat};
pub use method::{Method, UnknownMethod};
pub use permutation::{DecimalPermutation, MAX_PERMUTED_DIGITS, PermutationKey};
