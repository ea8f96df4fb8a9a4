//! Reject reasons: the stable codes written to the reject report and summary.

use std::fmt;
use std::str::FromStr;

/// Why a record was rejected. Codes may be added, never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    MalformedRecord,
    MissingField,
    FieldTooLong,
    InvalidCharacters,
    LengthMismatch,
    ChecksumInvalid,
    PrefixSuffixMismatch,
    SeriesNotFound,
    SeriesInactive,
    StatusLabelInvalid,
    DuplicateInFile,
    DuplicateInDatabase,
    CardNotFound,
    ExternalIdAlreadySet,
    MaxActiveCardsExceeded,
}

impl RejectReason {
    pub const ALL: [RejectReason; 15] = [
        RejectReason::MalformedRecord,
        RejectReason::MissingField,
        RejectReason::FieldTooLong,
        RejectReason::InvalidCharacters,
        RejectReason::LengthMismatch,
        RejectReason::ChecksumInvalid,
        RejectReason::PrefixSuffixMismatch,
        RejectReason::SeriesNotFound,
        RejectReason::SeriesInactive,
        RejectReason::StatusLabelInvalid,
        RejectReason::DuplicateInFile,
        RejectReason::DuplicateInDatabase,
        RejectReason::CardNotFound,
        RejectReason::ExternalIdAlreadySet,
        RejectReason::MaxActiveCardsExceeded,
    ];

    /// The stable code.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::MalformedRecord => "MALFORMED_RECORD",
            RejectReason::MissingField => "MISSING_FIELD",
            RejectReason::FieldTooLong => "FIELD_TOO_LONG",
            RejectReason::InvalidCharacters => "INVALID_CHARACTERS",
            RejectReason::LengthMismatch => "LENGTH_MISMATCH",
            RejectReason::ChecksumInvalid => "CHECKSUM_INVALID",
            RejectReason::PrefixSuffixMismatch => "PREFIX_SUFFIX_MISMATCH",
            RejectReason::SeriesNotFound => "SERIES_NOT_FOUND",
            RejectReason::SeriesInactive => "SERIES_INACTIVE",
            RejectReason::StatusLabelInvalid => "STATUS_LABEL_INVALID",
            RejectReason::DuplicateInFile => "DUPLICATE_IN_FILE",
            RejectReason::DuplicateInDatabase => "DUPLICATE_IN_DATABASE",
            RejectReason::CardNotFound => "CARD_NOT_FOUND",
            RejectReason::ExternalIdAlreadySet => "EXTERNAL_ID_ALREADY_SET",
            RejectReason::MaxActiveCardsExceeded => "MAX_ACTIVE_CARDS_EXCEEDED",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Serialized as its code.
impl serde::Serialize for RejectReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl FromStr for RejectReason {
    type Err = String;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        RejectReason::ALL
            .into_iter()
            .find(|reason| reason.as_str() == code)
            .ok_or_else(|| format!("unknown reject reason {code:?}"))
    }
}

/// The order in which rules are applied: a record's verdict is the broken
/// rule of the earliest stage (ties go to the field that comes first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    Shape,
    RequiredFields,
    LimitsAndCharset,
    Lookup,
    Length,
    PrefixSuffix,
    /// A non-digit between prefix and suffix: after the prefix/suffix match, before the check digit.
    GeneratedPart,
    CheckDigit,
    StatusLabel,
    DuplicateInFile,
    DuplicateInDatabase,
}

impl Stage {
    /// The stage a reason belongs to (`INVALID_CHARACTERS` in the generated
    /// part is marked with [`Rejection::in_generated_part`]).
    pub fn of(reason: RejectReason) -> Stage {
        match reason {
            RejectReason::MalformedRecord => Stage::Shape,
            RejectReason::MissingField => Stage::RequiredFields,
            RejectReason::FieldTooLong | RejectReason::InvalidCharacters => Stage::LimitsAndCharset,
            RejectReason::SeriesNotFound | RejectReason::SeriesInactive | RejectReason::CardNotFound => Stage::Lookup,
            RejectReason::LengthMismatch => Stage::Length,
            RejectReason::PrefixSuffixMismatch => Stage::PrefixSuffix,
            RejectReason::ChecksumInvalid => Stage::CheckDigit,
            RejectReason::StatusLabelInvalid => Stage::StatusLabel,
            RejectReason::DuplicateInFile => Stage::DuplicateInFile,
            RejectReason::DuplicateInDatabase
            | RejectReason::ExternalIdAlreadySet
            | RejectReason::MaxActiveCardsExceeded => Stage::DuplicateInDatabase,
        }
    }
}

/// A rule broken by one field of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: RejectReason,
    /// The field (column name) at fault; empty for whole-record problems.
    pub field: &'static str,
    pub message: String,
    pub stage: Stage,
}

impl Rejection {
    pub fn new(reason: RejectReason, field: &'static str, message: impl Into<String>) -> Self {
        Rejection {
            reason,
            field,
            message: message.into(),
            stage: Stage::of(reason),
        }
    }

    /// Marks an `INVALID_CHARACTERS` found between prefix and suffix.
    pub fn in_generated_part(mut self) -> Self {
        self.stage = Stage::GeneratedPart;
        self
    }

    /// Keeps whichever of two results breaks the earlier stage (`first` on ties).
    pub fn earliest(first: Option<Rejection>, second: Option<Rejection>) -> Option<Rejection> {
        match (first, second) {
            (Some(a), Some(b)) => Some(if b.stage < a.stage { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut codes: Vec<&str> = RejectReason::ALL.iter().map(|r| r.as_str()).collect();
        for reason in RejectReason::ALL {
            assert_eq!(reason.as_str().parse::<RejectReason>(), Ok(reason));
        }
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), RejectReason::ALL.len());
    }
}
