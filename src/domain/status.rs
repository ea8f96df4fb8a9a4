//! Card status labels: the system statuses and the org's own labels mapped onto them.

use std::fmt;
use std::str::FromStr;

/// The platform's system statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SystemStatus {
    NotIssued,
    Issued,
    Active,
    Suspended,
    Expired,
    Deleted,
}

impl SystemStatus {
    pub const ALL: [SystemStatus; 6] = [
        SystemStatus::NotIssued,
        SystemStatus::Issued,
        SystemStatus::Active,
        SystemStatus::Suspended,
        SystemStatus::Expired,
        SystemStatus::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SystemStatus::NotIssued => "NOT_ISSUED",
            SystemStatus::Issued => "ISSUED",
            SystemStatus::Active => "ACTIVE",
            SystemStatus::Suspended => "SUSPENDED",
            SystemStatus::Expired => "EXPIRED",
            SystemStatus::Deleted => "DELETED",
        }
    }
}

impl fmt::Display for SystemStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SystemStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        SystemStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| {
                format!("{text:?} is not a system status (NOT_ISSUED, ISSUED, ACTIVE, SUSPENDED, EXPIRED, DELETED)")
            })
    }
}

/// The labels an org accepts: the system statuses plus its own, each mapped onto one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusLabels {
    custom: Vec<(String, SystemStatus)>,
}

impl StatusLabels {
    /// Parses `LABEL:SYSTEM_STATUS,...` (the `CARD_STATUS_LABELS` setting).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut custom = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (label, status) = entry
                .split_once(':')
                .ok_or_else(|| format!("{entry:?} is not LABEL:SYSTEM_STATUS"))?;
            let label = label.trim();
            if label.is_empty() || label.len() > 50 || !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!("label {label:?} must be 1 to 50 ASCII letters, digits or '_'"));
            }
            custom.push((label.to_string(), status.trim().parse()?));
        }
        Ok(StatusLabels { custom })
    }

    /// The system status a label stands for, or `None` when the org does not know the label.
    pub fn resolve(&self, label: &str) -> Option<SystemStatus> {
        label.parse::<SystemStatus>().ok().or_else(|| {
            self.custom
                .iter()
                .find(|(known, _)| known == label)
                .map(|(_, status)| *status)
        })
    }

    /// Every label the org accepts: the system statuses, then its own.
    pub fn known(&self) -> Vec<&str> {
        SystemStatus::ALL
            .iter()
            .map(|status| status.as_str())
            .chain(self.custom.iter().map(|(label, _)| label.as_str()))
            .collect()
    }

    /// The message of an unknown label, listing the known ones.
    pub fn unknown_message(&self, label: &str) -> String {
        format!(
            "status label {label:?} is not configured for the org; the labels are {}",
            self.known().join(", ")
        )
    }

    /// The canonical `LABEL:STATUS,...` text.
    pub fn to_setting(&self) -> String {
        self.custom
            .iter()
            .map(|(label, status)| format!("{label}:{status}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_and_custom_labels_resolve() {
        let labels = StatusLabels::parse("GOLD_ACTIVE:ACTIVE, LOST:SUSPENDED").unwrap();
        assert_eq!(labels.resolve("NOT_ISSUED"), Some(SystemStatus::NotIssued));
        assert_eq!(labels.resolve("GOLD_ACTIVE"), Some(SystemStatus::Active));
        assert_eq!(labels.resolve("LOST"), Some(SystemStatus::Suspended));
        assert_eq!(labels.resolve("lost"), None);
        assert_eq!(labels.resolve("BOGUS"), None);
        assert_eq!(labels.to_setting(), "GOLD_ACTIVE:ACTIVE,LOST:SUSPENDED");
    }

    #[test]
    fn bad_mappings_are_refused() {
        assert!(StatusLabels::parse("GOLD").is_err());
        assert!(StatusLabels::parse("GOLD:SHINY").is_err());
        assert!(StatusLabels::parse("GO LD:ACTIVE").is_err());
    }
}
