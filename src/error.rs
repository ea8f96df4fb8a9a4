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

/// How a command ended badly, mapped onto the documented exit codes. Each
/// message is complete on its own: it is printed once, as one line.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// A numbered API error; nothing was written (exit 2, or 1 for code 500).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Bad usage, configuration, path or input, found before anything was
    /// written: a person must change something (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A runtime failure that a retry may fix: the database unreachable,
    /// locked or gone away, a disk full (exit 1). What was committed stays.
    #[error("{0}")]
    Failed(String),
    /// Whoever read our stdout stopped reading (`| head`): the command ends
    /// quietly (exit 0).
    #[error("the output's reader went away")]
    ClosedPipe,
}

/// The signals that stop an import at the next batch boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    Interrupt,
    Terminate,
}

impl StopSignal {
    /// The signal's number (SIGINT 2, SIGTERM 15).
    pub fn number(self) -> u8 {
        match self {
            StopSignal::Interrupt => 2,
            StopSignal::Terminate => 15,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
        }
    }
}

/// The process exit codes: one table, which `--help` and the README show
/// ([`EXIT_CODES_HELP`]) and every command follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done, and every record inserted (or already there).
    Completed,
    /// 1: a runtime failure that a retry may fix.
    Failed,
    /// 2: a usage, configuration or input error that needs a person.
    Usage,
    /// 3: stopped at `--max-rejects` or at the wrong-file guard.
    TooManyRejects,
    /// 4: an import completed, and the run has rejects (below `--max-rejects`).
    CompletedWithRejects,
    /// 128 + the signal's number: stopped by a signal at a batch boundary.
    Interrupted(StopSignal),
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Completed => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::TooManyRejects => 3,
            Exit::CompletedWithRejects => 4,
            Exit::Interrupted(signal) => 128 + signal.number(),
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

/// The exit-code table as `--help` prints it.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0        completed; for an import, every record of the input inserted (or
           already there)
  1        a runtime failure that a retry may fix (database unreachable or locked,
           connection lost, disk full); what was committed stays, and running the
           same command again resumes
  2        a usage, configuration or input error that needs a person (bad flag,
           path, URL or input), found before anything is written
  3        an import stopped at --max-rejects, or because every one of its first
           1,000 records was rejected (the wrong file or org; --max-rejects none
           goes on); what was committed stays
  4        an import completed with rejects (every record has its verdict; the
           reject report lists the rejected ones); an input of under 1,000
           records is judged whole, even if every record was rejected
  130/143  an import stopped by SIGINT/SIGTERM at a batch boundary; running the
           same command again resumes";

impl CommandError {
    pub fn exit(&self) -> Exit {
        match self {
            CommandError::Api(error) if error.code == ErrorCode::Internal => Exit::Failed,
            CommandError::Api(_) | CommandError::Usage(_) => Exit::Usage,
            CommandError::Failed(_) => Exit::Failed,
            CommandError::ClosedPipe => Exit::Completed,
        }
    }

    /// The error in the platform's shape, as `--json` prints it on stdout: a
    /// numbered API error as it is, a usage error (exit 2) as code 400 and a
    /// runtime failure (exit 1) as code 500.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            CommandError::Api(error) => error.to_json(),
            CommandError::Usage(message) => ApiError::new(ErrorCode::InvalidRequest, message.clone()).to_json(),
            other => ApiError::new(ErrorCode::Internal, other.to_string()).to_json(),
        }
    }
}

/// A failure writing the command's output: a closed pipe ends the command
/// quietly, anything else is a runtime failure.
pub fn output_failed(error: std::io::Error) -> CommandError {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        CommandError::ClosedPipe
    } else {
        failed(format!("cannot write the output: {error}"))
    }
}

/// Shorthand for a usage error with a formatted message.
pub fn usage(message: impl fmt::Display) -> CommandError {
    CommandError::Usage(message.to_string())
}

/// Shorthand for a runtime failure with a formatted message.
pub fn failed(message: impl fmt::Display) -> CommandError {
    CommandError::Failed(message.to_string())
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
            Exit::Failed
        );
        assert_eq!(failed("database is locked").exit(), Exit::Failed);
        assert_eq!(Exit::Interrupted(StopSignal::Interrupt).code(), 130);
        assert_eq!(Exit::Interrupted(StopSignal::Terminate).code(), 143);
    }
}
