//! Plain types and rules of the loyalty-card domain: org configuration, card
//! series, cards, status labels, field limits and reject reasons. No I/O.

pub mod card;
pub mod fields;
pub mod org_config;
pub mod reject;
pub mod series;
pub mod spreadsheet;
pub mod status;

pub use card::{CardRequest, NewCard};
pub use org_config::{ConfigKey, OrgConfig};
pub use reject::{RejectReason, Rejection, Stage};
pub use series::{NewSeries, Series, SeriesRequest};
pub use status::{StatusLabels, SystemStatus};
