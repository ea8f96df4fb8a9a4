//! Org configuration: the keys of SPEC section 2, each value validated, and
//! the org-level external-ID rules built from them.

use std::fmt;
use std::str::FromStr;

use serde_json::{Value, json};

use super::fields::{EXTERNAL_ID_MAX_LENGTH, check_external_id_charset};
use super::reject::{RejectReason, Rejection};
use super::status::StatusLabels;
use crate::numbers::{Method, NoDigitsLeft, NumberFormat};

/// A configuration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigKey {
    GenerationEnabled,
    ClientV2ApiEnabled,
    SourceAccountsExternalIdEnabled,
    ChecksumDigitAlgorithm,
    NumberLength,
    NumberPrefix,
    NumberSuffix,
    NumberOffset,
    ValuesIncludedInChecksum,
    StatusLabels,
}

impl ConfigKey {
    pub const ALL: [ConfigKey; 10] = [
        ConfigKey::GenerationEnabled,
        ConfigKey::ClientV2ApiEnabled,
        ConfigKey::SourceAccountsExternalIdEnabled,
        ConfigKey::ChecksumDigitAlgorithm,
        ConfigKey::NumberLength,
        ConfigKey::NumberPrefix,
        ConfigKey::NumberSuffix,
        ConfigKey::NumberOffset,
        ConfigKey::ValuesIncludedInChecksum,
        ConfigKey::StatusLabels,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ConfigKey::GenerationEnabled => "CONF_CARD_NUMBER_GENERATION_ENABLED",
            ConfigKey::ClientV2ApiEnabled => "CONF_CLIENT_V2_API_ENABLED",
            ConfigKey::SourceAccountsExternalIdEnabled => "SOURCE_ACCOUNTS_EXTERNALID_ENABLED",
            ConfigKey::ChecksumDigitAlgorithm => "CONF_CARD_CHECKSUM_DIGIT_ALGO",
            ConfigKey::NumberLength => "CONF_CARD_NUMBER_LENGTH",
            ConfigKey::NumberPrefix => "CONF_CARD_NUMBER_PREFIX",
            ConfigKey::NumberSuffix => "CONF_CARD_NUMBER_SUFFIX",
            ConfigKey::NumberOffset => "CONF_CARD_NUMBER_OFFSET",
            ConfigKey::ValuesIncludedInChecksum => "CONF_VALUES_TO_INCLUDE_FOR_CHECKSUM_DIGIT",
            ConfigKey::StatusLabels => "CARD_STATUS_LABELS",
        }
    }

    /// Validates `value` for this key and returns its canonical stored form.
    /// An empty value clears an optional key (`None`).
    pub fn normalize(self, value: &str) -> Result<Option<String>, String> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        let canonical = match self {
            ConfigKey::GenerationEnabled | ConfigKey::ClientV2ApiEnabled => parse_bool(value)?.to_string(),
            ConfigKey::SourceAccountsExternalIdEnabled => parse_list(value).join(","),
            ConfigKey::ChecksumDigitAlgorithm => {
                let method = value.parse::<Method>().map_err(|e| e.to_string())?;
                org_algorithm_name(method).to_string()
            }
            ConfigKey::NumberLength => match value.parse::<u32>() {
                Ok(length @ 1..=50) => length.to_string(),
                _ => return Err(format!("{value:?} is not an integer from 1 to 50")),
            },
            ConfigKey::NumberPrefix | ConfigKey::NumberSuffix => {
                if value.len() > EXTERNAL_ID_MAX_LENGTH || !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(format!("{value:?} must be 1 to 50 ASCII letters and digits"));
                }
                value.to_string()
            }
            ConfigKey::NumberOffset => value
                .parse::<i64>()
                .ok()
                .filter(|offset| *offset >= 0)
                .ok_or_else(|| format!("{value:?} is not a non-negative integer"))?
                .to_string(),
            ConfigKey::ValuesIncludedInChecksum => match value.to_ascii_uppercase().as_str() {
                "NONE" => "NONE".to_string(),
                "PREFIX" => "PREFIX".to_string(),
                _ => return Err(format!("{value:?} is not NONE or PREFIX")),
            },
            ConfigKey::StatusLabels => StatusLabels::parse(value)?.to_setting(),
        };
        Ok(Some(canonical))
    }
}

impl fmt::Display for ConfigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ConfigKey {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        ConfigKey::ALL
            .into_iter()
            .find(|key| key.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = ConfigKey::ALL.iter().map(|k| k.name()).collect();
                format!("unknown configuration key {name:?}; known keys: {}", known.join(", "))
            })
    }
}

/// The org-level spelling of a method (`AUTO_INC` rather than `DEFAULT`).
fn org_algorithm_name(method: Method) -> &'static str {
    match method {
        Method::AutoIncrement => "AUTO_INC",
        other => other.as_str(),
    }
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("{value:?} is not a boolean (true, false, 1 or 0)")),
    }
}

fn parse_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// An org's configuration, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgConfig {
    pub generation_enabled: bool,
    pub client_v2_api_enabled: bool,
    pub source_accounts: Vec<String>,
    pub algorithm: Method,
    pub length: Option<usize>,
    pub prefix: String,
    pub suffix: String,
    pub offset: u64,
    pub prefix_in_checksum: bool,
    pub status_labels: StatusLabels,
}

impl Default for OrgConfig {
    fn default() -> Self {
        OrgConfig {
            generation_enabled: false,
            client_v2_api_enabled: false,
            source_accounts: Vec::new(),
            algorithm: Method::AutoIncrement,
            length: None,
            prefix: String::new(),
            suffix: String::new(),
            offset: 1,
            prefix_in_checksum: false,
            status_labels: StatusLabels::default(),
        }
    }
}

impl OrgConfig {
    /// Builds the configuration from stored `(key, canonical value)` pairs.
    /// Unknown keys are ignored; stored values were validated on the way in.
    pub fn from_stored<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, String> {
        let mut config = OrgConfig::default();
        for (name, value) in pairs {
            let Ok(key) = name.parse::<ConfigKey>() else { continue };
            let Some(value) = key.normalize(value)? else { continue };
            match key {
                ConfigKey::GenerationEnabled => config.generation_enabled = parse_bool(&value)?,
                ConfigKey::ClientV2ApiEnabled => config.client_v2_api_enabled = parse_bool(&value)?,
                ConfigKey::SourceAccountsExternalIdEnabled => config.source_accounts = parse_list(&value),
                ConfigKey::ChecksumDigitAlgorithm => {
                    config.algorithm = value
                        .parse()
                        .map_err(|e: crate::numbers::UnknownMethod| e.to_string())?
                }
                ConfigKey::NumberLength => config.length = value.parse().ok(),
                ConfigKey::NumberPrefix => config.prefix = value,
                ConfigKey::NumberSuffix => config.suffix = value,
                ConfigKey::NumberOffset => config.offset = value.parse().unwrap_or(1),
                ConfigKey::ValuesIncludedInChecksum => config.prefix_in_checksum = value == "PREFIX",
                ConfigKey::StatusLabels => config.status_labels = StatusLabels::parse(&value)?,
            }
        }
        Ok(config)
    }

    /// The configuration as printed by `org show`: every key in SPEC order, typed, with defaults filled in.
    pub fn to_json(&self) -> Value {
        let mut shown = serde_json::Map::new();
        for key in ConfigKey::ALL {
            let value = match key {
                ConfigKey::GenerationEnabled => json!(self.generation_enabled),
                ConfigKey::ClientV2ApiEnabled => json!(self.client_v2_api_enabled),
                ConfigKey::SourceAccountsExternalIdEnabled => json!(self.source_accounts),
                ConfigKey::ChecksumDigitAlgorithm => json!(org_algorithm_name(self.algorithm)),
                ConfigKey::NumberLength => json!(self.length),
                ConfigKey::NumberPrefix => json!(self.prefix),
                ConfigKey::NumberSuffix => json!(self.suffix),
                ConfigKey::NumberOffset => json!(self.offset),
                ConfigKey::ValuesIncludedInChecksum => json!(if self.prefix_in_checksum { "PREFIX" } else { "NONE" }),
                ConfigKey::StatusLabels => json!(self.status_labels.to_setting()),
            };
            shown.insert(key.name().to_string(), value);
        }
        Value::Object(shown)
    }

    /// The format of generated org-level external IDs; `None` when no length is configured.
    /// The suffix applies to `AUTO_INC` only.
    pub fn external_id_format(&self) -> Option<Result<NumberFormat, NoDigitsLeft>> {
        let length = self.length?;
        let suffix = if self.algorithm == Method::AutoIncrement {
            self.suffix.as_str()
        } else {
            ""
        };
        Some(
            NumberFormat::new(&self.prefix, suffix, length, self.algorithm).map(|format| {
                if self.prefix_in_checksum {
                    format.with_prefix_in_checksum()
                } else {
                    format
                }
            }),
        )
    }

    /// Checks an imported or supplied external ID against the org's rules:
    /// limit and characters always; when `CONF_CARD_NUMBER_LENGTH` is set, also
    /// the exact length, the prefix, and the check digit of the org's algorithm
    /// (whose part after the prefix must then be digits).
    pub fn check_external_id(&self, field: &'static str, value: &str) -> Result<(), Rejection> {
        check_external_id_charset(field, value)?;
        self.check_external_id_format(field, value)
    }

    /// The org part of [`check_external_id`](Self::check_external_id), for a
    /// value whose characters were already checked.
    pub fn check_external_id_format(&self, field: &'static str, value: &str) -> Result<(), Rejection> {
        let Some(length) = self.length else { return Ok(()) };
        if value.len() != length {
            return Err(Rejection::new(
                RejectReason::LengthMismatch,
                field,
                format!(
                    "{field} has {} characters, CONF_CARD_NUMBER_LENGTH is {length}",
                    value.len()
                ),
            ));
        }
        let Some(rest) = value.strip_prefix(self.prefix.as_str()) else {
            return Err(Rejection::new(
                RejectReason::PrefixSuffixMismatch,
                field,
                format!("{field} does not start with CONF_CARD_NUMBER_PREFIX {:?}", self.prefix),
            ));
        };
        let Some(algorithm) = self.algorithm.check_digit() else {
            return Ok(());
        };
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Rejection::new(
                RejectReason::InvalidCharacters,
                field,
                format!(
                    "{field}: the part after the prefix must be digits for the {} check digit",
                    self.algorithm
                ),
            )
            .in_generated_part());
        }
        let head: Vec<u8> = if self.prefix_in_checksum {
            self.prefix.bytes().filter(u8::is_ascii_digit).collect()
        } else {
            Vec::new()
        };
        let (payload, check) = rest.as_bytes().split_at(rest.len() - 1);
        if algorithm.compute_over(&head, payload) != check[0] - b'0' {
            return Err(Rejection::new(
                RejectReason::ChecksumInvalid,
                field,
                format!("{field}: the {} check digit is wrong", self.algorithm),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> OrgConfig {
        OrgConfig::from_stored(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn keys_validate_their_values() {
        assert_eq!(ConfigKey::GenerationEnabled.normalize("1"), Ok(Some("true".into())));
        assert_eq!(
            ConfigKey::GenerationEnabled.normalize("FALSE"),
            Ok(Some("false".into()))
        );
        assert!(ConfigKey::GenerationEnabled.normalize("yes").is_err());
        assert_eq!(ConfigKey::NumberLength.normalize("50"), Ok(Some("50".into())));
        assert!(ConfigKey::NumberLength.normalize("51").is_err());
        assert!(ConfigKey::NumberLength.normalize("0").is_err());
        assert_eq!(
            ConfigKey::ChecksumDigitAlgorithm.normalize("luhnalgo"),
            Ok(Some("LUHN_ALGO".into()))
        );
        assert_eq!(
            ConfigKey::ChecksumDigitAlgorithm.normalize("DEFAULT"),
            Ok(Some("AUTO_INC".into()))
        );
        assert!(ConfigKey::ChecksumDigitAlgorithm.normalize("CRC").is_err());
        assert!(ConfigKey::NumberPrefix.normalize("AB-").is_err());
        assert!(ConfigKey::NumberOffset.normalize("-1").is_err());
        assert_eq!(
            ConfigKey::SourceAccountsExternalIdEnabled.normalize(" 12, 34 ,"),
            Ok(Some("12,34".into()))
        );
        assert!(ConfigKey::ValuesIncludedInChecksum.normalize("SUFFIX").is_err());
        assert!("CONF_NOPE".parse::<ConfigKey>().is_err());
        assert_eq!(ConfigKey::NumberPrefix.normalize(""), Ok(None));
    }

    #[test]
    fn external_ids_without_length_are_checked_for_limit_and_charset_only() {
        let org = config(&[]);
        assert!(org.check_external_id("external_id", "CardExternal6993").is_ok());
        assert_eq!(
            org.check_external_id("external_id", "a*b").unwrap_err().reason,
            RejectReason::InvalidCharacters
        );
    }

    #[test]
    fn external_ids_follow_length_prefix_and_check_digit() {
        let org = config(&[
            ("CONF_CARD_NUMBER_LENGTH", "10"),
            ("CONF_CARD_NUMBER_PREFIX", "EX"),
            ("CONF_CARD_CHECKSUM_DIGIT_ALGO", "LUHN_ALGO"),
        ]);
        let format = org.external_id_format().unwrap().unwrap();
        let mut good = vec![0u8; 10];
        format.render(42, None, &mut good);
        let good = String::from_utf8(good).unwrap();
        assert!(org.check_external_id("external_id", &good).is_ok(), "{good}");
        let reason = |v: &str| org.check_external_id("external_id", v).unwrap_err().reason;
        assert_eq!(reason("EX123"), RejectReason::LengthMismatch);
        assert_eq!(reason("XY00000420"), RejectReason::PrefixSuffixMismatch);
        assert_eq!(reason("EX0000A420"), RejectReason::InvalidCharacters);
        let mut bad = good.into_bytes();
        bad[9] = b'0' + (bad[9] - b'0' + 1) % 10;
        assert_eq!(
            reason(std::str::from_utf8(&bad).unwrap()),
            RejectReason::ChecksumInvalid
        );
    }

    #[test]
    fn suffix_applies_to_auto_inc_only() {
        let mut org = config(&[("CONF_CARD_NUMBER_LENGTH", "8"), ("CONF_CARD_NUMBER_SUFFIX", "Z")]);
        assert_eq!(org.external_id_format().unwrap().unwrap().suffix(), "Z");
        org.algorithm = Method::Mod7;
        assert_eq!(org.external_id_format().unwrap().unwrap().suffix(), "");
    }

    #[test]
    fn show_lists_every_key_with_defaults() {
        let shown = config(&[("CONF_CARD_NUMBER_LENGTH", "12")]).to_json();
        assert_eq!(shown["CONF_CARD_NUMBER_LENGTH"], json!(12));
        assert_eq!(shown["CONF_CARD_NUMBER_OFFSET"], json!(1));
        assert_eq!(shown["CONF_CARD_CHECKSUM_DIGIT_ALGO"], json!("AUTO_INC"));
        assert_eq!(shown.as_object().unwrap().len(), ConfigKey::ALL.len());
    }
}
