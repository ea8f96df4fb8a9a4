//! Errors that reach the user: the platform's numbered API errors (printed in
//! the seeds' error shape) and the process exit codes.

use std::fmt;
use std::process::ExitCode;

use serde_json::json;

/// The platform's error codes (the numbers API users know), plus the
/// HTTP-style 400 for malformed requests and 500 for internal failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 400: the request body is not valid (bad JSON, wrong type, unknown enum value).
    InvalidRequest,
    /// 500: a database or other internal failure.
    Internal,
    /// 702: the counter no longer fits the available digits.
    MaxCardNumberReached,
    /// 703: generation is disabled for the series or the org.
    GenerationDisabled,
    /// 3000: unknown or invalid card series (generate).
    InvalidSeries,
    /// 3001
    SeriesCodeEmpty,
    /// 3002
    SeriesCodeExists,
    /// 3003
    SeriesTypeEmpty,
    /// 3004: series does not exist (add).
    SeriesNotFound,
    /// 3005
    CardLengthInvalid,
    /// 3006
    CardConfigurationExists,
    /// 3007
    GenerationConfigMissing,
    /// 3008
    SeriesInactive,
    /// 3009
    CardNumberExists,
    /// 3010
    CardNotFound,
    /// 3017
    StatusLabelInvalid,
    /// 3019
    ExpiryDaysNegative,
    /// 3022
    PrefixNotStandard,
    /// 3023
    SuffixNotStandard,
    /// 3024
    LengthTooLong,
    /// 3025
    CountInvalid,
    /// 3026
    CountTooLarge,
    /// 3028
    LengthTooShort,
    /// 3032
    SeriesCodeInvalid,
    /// 3045
    ExternalIdExists,
    /// 3047
    OffsetInvalid,
}

impl ErrorCode {
    /// The number printed in `errors[].code`.
    pub fn number(self) -> u32 {
        match self {
            ErrorCode::InvalidRequest => 400,
            ErrorCode::Internal => 500,
            ErrorCode::MaxCardNumberReached => 702,
            ErrorCode::GenerationDisabled => 703,
            ErrorCode::InvalidSeries => 3000,
            ErrorCode::SeriesCodeEmpty => 3001,
            ErrorCode::SeriesCodeExists => 3002,
            ErrorCode::SeriesTypeEmpty => 3003,
            ErrorCode::SeriesNotFound => 3004,
            ErrorCode::CardLengthInvalid => 3005,
            ErrorCode::CardConfigurationExists => 3006,
            ErrorCode::GenerationConfigMissing => 3007,
            ErrorCode::SeriesInactive => 3008,
            ErrorCode::CardNumberExists => 3009,
            ErrorCode::CardNotFound => 3010,
            ErrorCode::StatusLabelInvalid => 3017,
            ErrorCode::ExpiryDaysNegative => 3019,
            ErrorCode::PrefixNotStandard => 3022,
            ErrorCode::SuffixNotStandard => 3023,
            ErrorCode::LengthTooLong => 3024,
            ErrorCode::CountInvalid => 3025,
            ErrorCode::CountTooLarge => 3026,
            ErrorCode::LengthTooShort => 3028,
            ErrorCode::SeriesCodeInvalid => 3032,
            ErrorCode::ExternalIdExists => 3045,
            ErrorCode::OffsetInvalid => 3047,
        }
    }
}

/// A numbered error of a single-record command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("error {}: {message}", code.number())]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// The seeds' error body: `{"warnings": [], "errors": [{"status": false, "code": N, "message": "..."}]}`.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "warnings": [],
            "errors": [{"status": false, "code": self.code.number(), "message": self.message}],
        })
    }
}

/// How a command ended badly, mapped onto the documented exit codes.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// A numbered API error; nothing was written (exit 2, or 1 for code 500).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Bad usage or configuration, found before anything was written (exit 2).
    #[error("{0}")]
    Usage(String),
    /// `--max-rejects` was exceeded (exit 3); committed batches stay.
    #[error("{0}")]
    TooManyRejects(String),
    /// Anything else: database down, disk full, ... (exit 1).
    #[error(transparent)]
    Fatal(#[from] anyhow::Error),
}

/// The process exit codes of SPEC section 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Completed = 0,
    Fatal = 1,
    Usage = 2,
    TooManyRejects = 3,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

impl CommandError {
    pub fn exit(&self) -> Exit {
        match self {
            CommandError::Api(error) if error.code == ErrorCode::Internal => Exit::Fatal,
            CommandError::Api(_) | CommandError::Usage(_) => Exit::Usage,
            CommandError::TooManyRejects(_) => Exit::TooManyRejects,
            CommandError::Fatal(_) => Exit::Fatal,
        }
    }
}

impl From<sqlx::Error> for CommandError {
    fn from(error: sqlx::Error) -> Self {
        CommandError::Fatal(anyhow::Error::new(error).context("database error"))
    }
}

/// Shorthand for a usage error with a formatted message.
pub fn usage(message: impl fmt::Display) -> CommandError {
    CommandError::Usage(message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_shape_matches_the_seeds() {
        let error = ApiError::new(ErrorCode::SeriesCodeExists, "series code already exists");
        assert_eq!(
            error.to_json(),
            json!({"warnings": [], "errors": [{"status": false, "code": 3002, "message": "series code already exists"}]})
        );
    }

    #[test]
    fn exit_codes() {
        assert_eq!(
            CommandError::from(ApiError::new(ErrorCode::CountTooLarge, "")).exit(),
            Exit::Usage
        );
        assert_eq!(
            CommandError::from(ApiError::new(ErrorCode::Internal, "")).exit(),
            Exit::Fatal
        );
        assert_eq!(CommandError::TooManyRejects(String::new()).exit(), Exit::TooManyRejects);
    }
}
