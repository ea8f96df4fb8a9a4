//! Cards: the seeds' `POST /v2/card` body and the rules a card must meet to be
//! added to a series.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::fields::{check_card_number, check_free_text};
use super::reject::{RejectReason, Rejection};
use super::series::Series;
use crate::numbers::NumberFault;

/// The default status of a new card when none is given.
pub const DEFAULT_STATUS_LABEL: &str = "NOT_ISSUED";

/// The seeds' `POST /v2/card` body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CardRequest {
    pub series_id: Option<i64>,
    pub series_code: Option<String>,
    pub card_number: Option<String>,
    pub card_external_id: Option<String>,
    pub status_label: Option<String>,
    pub status_info: Option<StatusInfo>,
    pub customer_id: Option<i64>,
    pub extended_fields: Option<Map<String, Value>>,
    pub custom_fields: Option<Map<String, Value>>,
    pub mapped_entity: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatusInfo {
    pub reason: Option<String>,
}

/// A card ready to be stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewCard {
    pub series_id: i64,
    pub card_number: String,
    pub external_id: Option<String>,
    pub status_label: String,
    pub status_reason: Option<String>,
    pub customer_id: Option<i64>,
    pub extended_fields: Option<Value>,
    pub custom_fields: Option<Value>,
    pub mapped_entity: Option<Value>,
}

/// Checks that `number` fits `series`: charset and limit, then length,
/// prefix/suffix, digits between them, and the check digit of the series' method.
/// A series without a generation configuration accepts any well-formed number.
pub fn check_number_fits_series(field: &'static str, number: &str, series: &Series) -> Result<(), Rejection> {
    check_card_number(field, number)?;
    check_number_format(field, number, series)
}

/// The series part of [`check_number_fits_series`], for a number whose
/// characters were already checked: length, prefix/suffix, digits, check digit.
pub fn check_number_format(field: &'static str, number: &str, series: &Series) -> Result<(), Rejection> {
    let Some(config) = &series.definition.generation else {
        return Ok(());
    };
    config.format().check(number.as_bytes()).map_err(|fault| {
        let reason = match fault {
            NumberFault::LengthMismatch { .. } => RejectReason::LengthMismatch,
            NumberFault::PrefixSuffixMismatch { .. } => RejectReason::PrefixSuffixMismatch,
            NumberFault::NonDigitBody => RejectReason::InvalidCharacters,
            NumberFault::ChecksumInvalid { .. } => RejectReason::ChecksumInvalid,
        };
        let rejection = Rejection::new(
            reason,
            field,
            format!("{field} {fault} (series {})", series.definition.code),
        );
        if fault == NumberFault::NonDigitBody {
            rejection.in_generated_part()
        } else {
            rejection
        }
    })
}

/// Checks the optional status reason: free text (no control characters, at most 255 characters).
pub fn check_status_reason(field: &'static str, reason: Option<&str>) -> Result<(), Rejection> {
    reason.map_or(Ok(()), |reason| check_free_text(field, reason))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::series::SeriesRequest;
    use crate::numbers::PermutationKey;

    fn series(method: &str) -> Series {
        let request: SeriesRequest = serde_json::from_str(&format!(
            r#"{{"code":"S1","type":"PHYSICAL","cardGenerationConfiguration":{{"prefix":"ghost","length":21,"method":"{method}"}}}}"#
        ))
        .unwrap();
        Series {
            id: 224,
            org_id: 1,
            definition: request.validate().unwrap(),
            next_counter: 1,
            secret: PermutationKey([1; 16]),
        }
    }

    #[test]
    fn seeds_card_number_fits_a_default_series() {
        assert!(check_number_fits_series("card_number", "ghost0000800001180930", &series("DEFAULT")).is_ok());
    }

    #[test]
    fn misfits_have_their_reasons() {
        let luhn = series("LUHN_ALGO");
        let reason = |n: &str| check_number_fits_series("card_number", n, &luhn).unwrap_err().reason;
        assert_eq!(reason(""), RejectReason::MissingField);
        assert_eq!(reason("ghost-000800001180930"), RejectReason::InvalidCharacters);
        assert_eq!(reason("ghost00008000011809300"), RejectReason::LengthMismatch);
        assert_eq!(reason("phost0000800001180930"), RejectReason::PrefixSuffixMismatch);
        assert_eq!(reason("ghost000080000118093X"), RejectReason::InvalidCharacters);
        let good = luhn.generator().unwrap().render_one(80_000_118);
        assert!(check_number_fits_series("card_number", &good, &luhn).is_ok());
        let mut bad = good.into_bytes();
        bad[20] = b'0' + (bad[20] - b'0' + 5) % 10;
        assert_eq!(
            reason(std::str::from_utf8(&bad).unwrap()),
            RejectReason::ChecksumInvalid
        );
    }

    #[test]
    fn seeds_add_body_parses() {
        let body: CardRequest = serde_json::from_str(
            r#"{"seriesId":224,"cardNumber":"ghost0000800001180930","cardExternalId":"CardExternal6993",
                "statusLabel":"NOT_ISSUED","statusInfo":{"reason":"Card is generated but not issued"}}"#,
        )
        .unwrap();
        assert_eq!(body.series_id, Some(224));
        assert_eq!(
            body.status_info.unwrap().reason.as_deref(),
            Some("Card is generated but not issued")
        );
    }
}
