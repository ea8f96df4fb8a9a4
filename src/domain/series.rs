//! Card series: the seeds' request body, its rules (codes 3001–3047), and the
//! stored series with its counter and secret.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{ApiError, ErrorCode};
use crate::numbers::{Method, NoDigitsLeft, NumberFormat, NumberGenerator, PermutationKey};

/// Longest and shortest total card length a series may have.
pub const MAX_CARD_LENGTH: i64 = 150;
pub const MIN_CARD_LENGTH: i64 = 5;
const MAX_CODE_LENGTH: usize = 50;
const MAX_AFFIX_LENGTH: usize = 50;

/// The seeds' `POST /v2/card/series/` body, as sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesRequest {
    pub code: Option<String>,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub series_type: Option<String>,
    pub expiry_days: Option<i64>,
    pub max_active_cards_per_customer: Option<i64>,
    pub card_generation_configuration: Option<GenerationConfigRequest>,
    pub card_generation_enabled: Option<bool>,
    pub is_active: Option<bool>,
    pub trigger: Option<String>,
}

/// The `cardGenerationConfiguration` object.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GenerationConfigRequest {
    pub prefix: Option<String>,
    pub suffix: Option<String>,
    pub offset: Option<i64>,
    pub length: Option<i64>,
    pub method: Option<String>,
    /// `NONE` (default: the check digit covers the digits after the prefix)
    /// or `PREFIX` (the prefix's digits too).
    #[serde(rename = "valuesToIncludeForChecksumDigit")]
    pub values_to_include_for_checksum_digit: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SeriesType {
    Digital,
    Physical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Trigger {
    SeriesId,
    OuId,
    Registration,
}

/// A validated generation configuration: the number format and the counter's first value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationConfig {
    format: NumberFormat,
    pub offset: u64,
}

impl GenerationConfig {
    /// A configuration whose format leaves at least one digit for the counter.
    pub fn new(
        prefix: &str,
        suffix: &str,
        offset: u64,
        length: usize,
        method: Method,
        prefix_in_checksum: bool,
    ) -> Result<Self, NoDigitsLeft> {
        let format = NumberFormat::new(prefix, suffix, length, method)?;
        Ok(GenerationConfig {
            format: if prefix_in_checksum {
                format.with_prefix_in_checksum()
            } else {
                format
            },
            offset,
        })
    }

    /// `valuesToIncludeForChecksumDigit`: `PREFIX` or `NONE`.
    pub fn checksum_values(&self) -> &'static str {
        if self.format.prefix_in_checksum() {
            "PREFIX"
        } else {
            "NONE"
        }
    }

    /// The number format, built once (validation checks every record against it).
    pub fn format(&self) -> &NumberFormat {
        &self.format
    }

    pub fn prefix(&self) -> &str {
        self.format.prefix()
    }

    pub fn suffix(&self) -> &str {
        self.format.suffix()
    }

    pub fn length(&self) -> usize {
        self.format.length()
    }

    pub fn method(&self) -> Method {
        self.format.method()
    }
}

/// A series that passed every rule that needs no database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSeries {
    pub code: String,
    pub name: Option<String>,
    pub series_type: SeriesType,
    pub expiry_days: Option<i64>,
    pub max_active_cards_per_customer: Option<i64>,
    pub generation: Option<GenerationConfig>,
    pub generation_enabled: bool,
    pub is_active: bool,
    pub trigger: Trigger,
}

/// A stored series.
#[derive(Debug, Clone)]
pub struct Series {
    pub id: i64,
    pub org_id: i64,
    pub definition: NewSeries,
    /// The next counter value to hand out.
    pub next_counter: u64,
    pub secret: PermutationKey,
}

impl Series {
    /// The generator for this series' numbers, when it has a generation configuration.
    pub fn generator(&self) -> Option<NumberGenerator> {
        let config = self.definition.generation.as_ref()?;
        Some(NumberGenerator::new(config.format().clone(), self.secret))
    }

    /// The series as printed by `series list` (camelCase, like the request body).
    pub fn to_json(&self) -> Value {
        let series = &self.definition;
        json!({
            "id": self.id,
            "orgId": self.org_id,
            "code": series.code,
            "name": series.name,
            "type": series.series_type,
            "expiryDays": series.expiry_days,
            "maxActiveCardsPerCustomer": series.max_active_cards_per_customer,
            "cardGenerationConfiguration": series.generation.as_ref().map(|g| json!({
                "prefix": g.prefix(),
                "suffix": g.suffix(),
                "offset": g.offset,
                "length": g.length(),
                "method": g.method().as_str(),
                "valuesToIncludeForChecksumDigit": g.checksum_values(),
            })),
            "cardGenerationEnabled": series.generation_enabled,
            "isActive": series.is_active,
            "trigger": series.trigger,
            "nextCounter": self.next_counter,
        })
    }
}

fn invalid(code: ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError::new(code, message)
}

fn is_standard_string(text: &str, max: usize) -> bool {
    text.len() <= max && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl SeriesRequest {
    /// Applies every rule that needs no database, in code order where codes overlap.
    /// (3002 and 3006 need the database and are checked by the store.)
    pub fn validate(self) -> Result<NewSeries, ApiError> {
        let code = self.code.unwrap_or_default().trim().to_string();
        if code.is_empty() {
            return Err(invalid(ErrorCode::SeriesCodeEmpty, "series code is empty"));
        }
        if !is_standard_string(&code, MAX_CODE_LENGTH) {
            return Err(invalid(
                ErrorCode::SeriesCodeInvalid,
                format!("series code {code:?} must be at most {MAX_CODE_LENGTH} ASCII letters and digits"),
            ));
        }
        let series_type = match self.series_type.as_deref().map(str::trim) {
            None | Some("") => return Err(invalid(ErrorCode::SeriesTypeEmpty, "series type is empty")),
            Some("DIGITAL") => SeriesType::Digital,
            Some("PHYSICAL") => SeriesType::Physical,
            Some(other) => {
                return Err(invalid(
                    ErrorCode::InvalidRequest,
                    format!("series type {other:?} is not DIGITAL or PHYSICAL"),
                ));
            }
        };
        if self.expiry_days.is_some_and(|days| days < 0) {
            return Err(invalid(
                ErrorCode::ExpiryDaysNegative,
                "expiryDays must not be negative",
            ));
        }
        if self.max_active_cards_per_customer.is_some_and(|max| max < 0) {
            return Err(invalid(
                ErrorCode::InvalidRequest,
                "maxActiveCardsPerCustomer must not be negative",
            ));
        }
        let trigger = match self.trigger.as_deref().map(str::trim) {
            None | Some("") | Some("SERIES_ID") => Trigger::SeriesId,
            Some("OU_ID") => Trigger::OuId,
            Some("REGISTRATION") => Trigger::Registration,
            Some(other) => {
                return Err(invalid(
                    ErrorCode::InvalidRequest,
                    format!("trigger {other:?} is not SERIES_ID, OU_ID or REGISTRATION"),
                ));
            }
        };
        // Generation is on by default when a configuration is given.
        let generation_enabled = self
            .card_generation_enabled
            .unwrap_or(self.card_generation_configuration.is_some());
        let generation = match self.card_generation_configuration {
            Some(config) => Some(config.validate()?),
            None if generation_enabled => {
                return Err(invalid(
                    ErrorCode::GenerationConfigMissing,
                    "cardGenerationEnabled is true but no cardGenerationConfiguration was given",
                ));
            }
            None => None,
        };
        Ok(NewSeries {
            code,
            name: self.name.filter(|n| !n.trim().is_empty()),
            series_type,
            expiry_days: self.expiry_days,
            max_active_cards_per_customer: self.max_active_cards_per_customer,
            generation,
            generation_enabled,
            is_active: self.is_active.unwrap_or(true),
            trigger,
        })
    }
}

impl GenerationConfigRequest {
    fn validate(self) -> Result<GenerationConfig, ApiError> {
        let prefix = self.prefix.unwrap_or_default();
        let suffix = self.suffix.unwrap_or_default();
        if !is_standard_string(&prefix, MAX_AFFIX_LENGTH) {
            return Err(invalid(
                ErrorCode::PrefixNotStandard,
                format!("prefix {prefix:?} must be at most {MAX_AFFIX_LENGTH} ASCII letters and digits"),
            ));
        }
        if !is_standard_string(&suffix, MAX_AFFIX_LENGTH) {
            return Err(invalid(
                ErrorCode::SuffixNotStandard,
                format!("suffix {suffix:?} must be at most {MAX_AFFIX_LENGTH} ASCII letters and digits"),
            ));
        }
        let Some(length) = self.length else {
            return Err(invalid(
                ErrorCode::CardLengthInvalid,
                "cardGenerationConfiguration.length is required",
            ));
        };
        if length > MAX_CARD_LENGTH {
            return Err(invalid(
                ErrorCode::LengthTooLong,
                format!("card number total length {length} is more than {MAX_CARD_LENGTH}"),
            ));
        }
        if length < MIN_CARD_LENGTH {
            return Err(invalid(
                ErrorCode::LengthTooShort,
                format!("card number total length {length} is less than {MIN_CARD_LENGTH}"),
            ));
        }
        let method = match self.method.as_deref().map(str::trim) {
            None | Some("") => Method::AutoIncrement,
            Some(text) => text
                .parse::<Method>()
                .map_err(|e| invalid(ErrorCode::InvalidRequest, e.to_string()))?,
        };
        let format = NumberFormat::new(&prefix, &suffix, length as usize, method)
            .map_err(|e| invalid(ErrorCode::CardLengthInvalid, e.to_string()))?;
        let format = match self
            .values_to_include_for_checksum_digit
            .as_deref()
            .map(|v| v.trim().to_ascii_uppercase())
            .as_deref()
        {
            None | Some("" | "NONE") => format,
            Some("PREFIX") => format.with_prefix_in_checksum(),
            Some(other) => {
                return Err(invalid(
                    ErrorCode::InvalidRequest,
                    format!("valuesToIncludeForChecksumDigit {other:?} must be NONE or PREFIX"),
                ));
            }
        };
        let offset = self.offset.unwrap_or(1);
        if offset < 0 || offset as u64 > format.max_counter() {
            return Err(invalid(
                ErrorCode::OffsetInvalid,
                format!(
                    "offset {offset} is invalid: it must be from 0 to {} for {} counter digits",
                    format.max_counter(),
                    format.counter_digits()
                ),
            ));
        }
        Ok(GenerationConfig {
            format,
            offset: offset as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeds_body() -> SeriesRequest {
        serde_json::from_str(
            r#"{"code":"TestCardSeries123","name":"TestCardSeries123","type":"DIGITAL","expiryDays":1000,
                "maxActiveCardsPerCustomer":1,
                "cardGenerationConfiguration":{"prefix":"M2","suffix":"C0","offset":1,"length":10,"method":"RANDOM_MOD7"},
                "cardGenerationEnabled":true,"isActive":true,"trigger":"SERIES_ID"}"#,
        )
        .unwrap()
    }

    fn code_of(request: SeriesRequest) -> u32 {
        request.validate().unwrap_err().code.number()
    }

    fn with_config(edit: impl FnOnce(&mut GenerationConfigRequest)) -> SeriesRequest {
        let mut request = seeds_body();
        edit(request.card_generation_configuration.as_mut().unwrap());
        request
    }

    #[test]
    fn seeds_body_is_valid() {
        let series = seeds_body().validate().unwrap();
        let config = series.generation.unwrap();
        assert_eq!((config.prefix(), config.suffix(), config.length()), ("M2", "C0", 10));
        assert_eq!(config.method(), Method::RandomMod7);
        assert_eq!(series.series_type, SeriesType::Digital);
    }

    #[test]
    fn every_rule_has_its_code() {
        assert_eq!(
            code_of(SeriesRequest {
                code: Some(" ".into()),
                ..seeds_body()
            }),
            3001
        );
        assert_eq!(
            code_of(SeriesRequest {
                code: Some("a-b".into()),
                ..seeds_body()
            }),
            3032
        );
        assert_eq!(
            code_of(SeriesRequest {
                code: Some("a".repeat(51)),
                ..seeds_body()
            }),
            3032
        );
        assert_eq!(
            code_of(SeriesRequest {
                series_type: None,
                ..seeds_body()
            }),
            3003
        );
        assert_eq!(
            code_of(SeriesRequest {
                series_type: Some("PLASTIC".into()),
                ..seeds_body()
            }),
            400
        );
        assert_eq!(
            code_of(SeriesRequest {
                expiry_days: Some(-1),
                ..seeds_body()
            }),
            3019
        );
        assert_eq!(
            code_of(SeriesRequest {
                card_generation_configuration: None,
                ..seeds_body()
            }),
            3007
        );
        assert_eq!(code_of(with_config(|c| c.prefix = Some("M-2".into()))), 3022);
        assert_eq!(code_of(with_config(|c| c.prefix = Some("M".repeat(51)))), 3022);
        assert_eq!(code_of(with_config(|c| c.suffix = Some("C 0".into()))), 3023);
        assert_eq!(code_of(with_config(|c| c.length = Some(151))), 3024);
        assert_eq!(code_of(with_config(|c| c.length = Some(4))), 3028);
        assert_eq!(code_of(with_config(|c| c.length = Some(5))), 3005); // M2 + C0 + check digit = 5, no digit left
        assert_eq!(code_of(with_config(|c| c.offset = Some(-1))), 3047);
        assert_eq!(code_of(with_config(|c| c.offset = Some(100_000))), 3047); // 10 - 4 - 1 = 5 digits
        assert!(with_config(|c| c.offset = Some(99_999)).validate().is_ok());
        assert_eq!(code_of(with_config(|c| c.method = Some("CRC32".into()))), 400);
        assert_eq!(
            code_of(SeriesRequest {
                trigger: Some("NEVER".into()),
                ..seeds_body()
            }),
            400
        );
    }

    #[test]
    fn generation_without_configuration_is_allowed_when_disabled() {
        let series = SeriesRequest {
            card_generation_configuration: None,
            card_generation_enabled: Some(false),
            ..seeds_body()
        }
        .validate()
        .unwrap();
        assert!(series.generation.is_none());
        assert!(!series.generation_enabled);
    }

    #[test]
    fn method_defaults_to_incremental() {
        let series = with_config(|c| c.method = None).validate().unwrap();
        assert_eq!(series.generation.unwrap().method(), Method::AutoIncrement);
    }
}
