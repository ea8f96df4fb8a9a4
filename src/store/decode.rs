//! Decoding stored rows into domain values, shared by both backends: each
//! decoder is generic over the row type, and the SQL of each backend selects
//! columns under the same names and as text, integers or booleans.

use std::str::FromStr;

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::backend::{CardExternalId, CardKeys, CustomerKeys, Holder, StoredCard};
use super::events::{CardSnapshot, CustomerSnapshot, EventRow};
use super::{CardView, InputDetails, PrefixRun, RunCard, RunInfo, RunState, RunStatus, StoreError};
use crate::batch::RejectRow;
use crate::domain::series::{GenerationConfig, SeriesType, Trigger};
use crate::domain::{NewSeries, RejectReason, Series};
use crate::numbers::{Method, PermutationKey};

/// A row type whose columns decode as the plain types cardbatch stores.
pub trait StoredRow: Row
where
    for<'a> &'a str: ColumnIndex<Self>,
{
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn optional_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn integer(&self, column: &str) -> Result<i64, StoreError>;
    fn optional_integer(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn boolean(&self, column: &str) -> Result<bool, StoreError>;
}

impl<R> StoredRow for R
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, column: &str) -> Result<String, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn optional_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn integer(&self, column: &str) -> Result<i64, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn optional_integer(&self, column: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn boolean(&self, column: &str) -> Result<bool, StoreError> {
        Ok(self.try_get(column)?)
    }
}

pub fn trigger_name(trigger: Trigger) -> &'static str {
    match trigger {
        Trigger::SeriesId => "SERIES_ID",
        Trigger::OuId => "OU_ID",
        Trigger::Registration => "REGISTRATION",
    }
}

pub fn series_type_name(series_type: SeriesType) -> &'static str {
    match series_type {
        SeriesType::Digital => "DIGITAL",
        SeriesType::Physical => "PHYSICAL",
    }
}

/// A `card_series` row (every column, `secret_key` as hex text).
pub fn series<R>(row: &R) -> Result<Series, StoreError>
where
    R: StoredRow,
    for<'a> &'a str: ColumnIndex<R>,
{
    let corrupt = |what: &str| StoreError::Corrupt(format!("card_series row: {what}"));
    let series_type = match row.text("series_type")?.as_str() {
        "DIGITAL" => SeriesType::Digital,
        "PHYSICAL" => SeriesType::Physical,
        _ => return Err(corrupt("series_type")),
    };
    let trigger = match row.text("trigger_kind")?.as_str() {
        "SERIES_ID" => Trigger::SeriesId,
        "OU_ID" => Trigger::OuId,
        "REGISTRATION" => Trigger::Registration,
        _ => return Err(corrupt("trigger_kind")),
    };
    let generation = match row.optional_integer("gen_length")? {
        None => None,
        Some(length) => Some(
            GenerationConfig::new(
                &row.optional_text("gen_prefix")?.unwrap_or_default(),
                &row.optional_text("gen_suffix")?.unwrap_or_default(),
                row.optional_integer("gen_offset")?.unwrap_or(1) as u64,
                length as usize,
                Method::from_str(&row.text("gen_method")?).map_err(|_| corrupt("gen_method"))?,
                row.text("checksum_values")? == "PREFIX",
            )
            .map_err(|e| corrupt(&e.to_string()))?,
        ),
    };
    let secret = PermutationKey::from_hex(&row.text("secret_key")?).ok_or_else(|| corrupt("secret_key"))?;
    Ok(Series {
        id: row.integer("id")?,
        org_id: row.integer("org_id")?,
        definition: NewSeries {
            code: row.text("code")?,
            name: row.optional_text("name")?,
            series_type,
            expiry_days: row.optional_integer("expiry_days")?,
            max_active_cards_per_customer: row.optional_integer("max_active_cards_per_customer")?,
            generation,
            generation_enabled: row.boolean("generation_enabled")?,
            is_active: row.boolean("is_active")?,
            trigger,
        },
        next_counter: row.integer("next_counter")? as u64,
        secret,
    })
}

/// A card joined with its series' type (`mapped_entity` as JSON text).
pub fn card_view<R>(row: &R) -> Result<CardView, StoreError>
where
    R: StoredRow,
    for<'a> &'a str: ColumnIndex<R>,
{
    Ok(CardView {
        card_id: row.integer("id")?,
        org_id: row.integer("org_id")?,
        series_id: row.integer("series_id")?,
        card_number: row.text("card_number")?,
        external_id: row.optional_text("external_id")?,
        customer_id: row.optional_integer("customer_id")?,
        status_label: row.text("status_label")?,
        transaction_not_allowed: row.boolean("transaction_not_allowed")?,
        series_is_digital: row.text("series_type")? == "DIGITAL",
        mapped_entity: row
            .optional_text("mapped_entity")?
            .and_then(|text| serde_json::from_str(&text).ok()),
    })
}

/// A `runs` row: `id, status, records_committed, inserted, unchanged,
/// rejected, reading_plan, reject_report`.
pub fn run_state<R>(row: &R) -> Result<RunState, StoreError>
where
    R: StoredRow,
    for<'a> &'a str: ColumnIndex<R>,
{
    let status = row.text("status")?;
    Ok(RunState {
        run_id: row.integer("id")?,
        status: RunStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("run status {status:?}")))?,
        records_committed: row.integer("records_committed")? as u64,
        inserted: row.integer("inserted")? as u64,
        unchanged: row.integer("unchanged")? as u64,
        rejected: row.integer("rejected")? as u64,
        reading_plan: row.optional_text("reading_plan")?,
        reject_report: row.optional_text("reject_report")?,
    })
}

/// A `runs` row as [`RunInfo`] (the store's `RUN_INFO_COLUMNS`, with
/// `started_at` and `finished_at` as text).
pub fn run_info<R>(row: &R) -> Result<RunInfo, StoreError>
where
    R: StoredRow,
    for<'a> &'a str: ColumnIndex<R>,
{
    let state = run_state(row)?;
    Ok(RunInfo {
        run_id: state.run_id,
        kind: row.text("kind")?,
        input: row.optional_text("input_name")?,
        input_format: row.optional_text("input_format")?,
        input_header: row.optional_text("input_header")?,
        reading_plan: state.reading_plan,
        reject_report: state.reject_report,
        input_details: InputDetails {
            path: row.optional_text("input_path")?,
            size: row.optional_integer("input_size")?.map(|size| size as u64),
            sha256: row.optional_text("input_sha256")?,
        },
        status: state.status,
        records_committed: state.records_committed,
        inserted: state.inserted,
        unchanged: state.unchanged,
        rejected: state.rejected,
        already_committed: row.integer("already_committed")? as u64,
        started_at: row.text("started_at")?,
        finished_at: row.optional_text("finished_at")?,
    })
}

/// A row of [`super::PREFIX_CANDIDATES`].
pub fn prefix_run<R>(row: &R) -> Result<PrefixRun, StoreError>
where
    R: StoredRow,
    for<'a> &'a str: ColumnIndex<R>,
{
    Ok(PrefixRun {
        run_id: row.integer("id")?,
        input_hash: row.text("input_hash")?,
        content_bytes: row.integer("content_bytes")? as u64,
        started_event_id: row.integer("started_event_id")?,
        records: row.integer("records_committed")? as u64,
        inserted: row.integer("inserted")? as u64,
        unchanged: row.integer("unchanged")? as u64,
        rejected: row.integer("rejected")? as u64,
    })
}

/// A `reason, count(*) AS n` row of a run's rejects.
pub fn reason_count<R>(row: &R) -> Result<(RejectReason, u64), StoreError>
where
    R: StoredRow,
    for<'a> &'a str: ColumnIndex<R>,
{
    Ok((reason(&row.text("reason")?)?, row.integer("n")? as u64))
}

pub fn reason(text: &str) -> Result<RejectReason, StoreError> {
    text.parse().map_err(StoreError::Corrupt)
}

/// A `rejects` row: `record, line, reason, field, message, raw`.
pub fn reject<R>(row: &R) -> Result<RejectRow, StoreError>
where
    R: StoredRow,
    for<'a> &'a str: ColumnIndex<R>,
{
    Ok(RejectRow {
        record: row.integer("record")? as u64,
        line: row.integer("line")? as u64,
        reason: reason(&row.text("reason")?)?,
        field: row.text("field")?,
        message: row.text("message")?,
        raw: row.text("raw")?,
    })
}

/// An `events` row (`payload` and `created_at` as text), with `card_number` joined in.
pub fn event_row<R>(row: &R) -> Result<EventRow, StoreError>
where
    R: StoredRow,
    for<'a> &'a str: ColumnIndex<R>,
{
    Ok(EventRow {
        id: row.integer("id")?,
        kind: row.text("kind")?,
        org_id: row.integer("org_id")?,
        run_id: row.optional_integer("run_id")?,
        event_count: row.integer("event_count")?,
        first_row: row.optional_integer("first_row")?,
        last_row: row.optional_integer("last_row")?,
        card_id: row.optional_integer("card_id")?,
        card_number: row.optional_text("card_number")?,
        external_id: row.optional_text("external_id")?,
        previous_external_id: row.optional_text("previous_external_id")?,
        payload: row.optional_text("payload")?,
        created_at: row.text("created_at")?,
    })
}

/// A card as `cards export` writes it: `id, card_number, code` (its
/// series), `status_label`.
pub fn run_card<R>(row: &R) -> Result<RunCard, StoreError>
where
    R: StoredRow,
    for<'a> &'a str: ColumnIndex<R>,
{
    Ok(RunCard {
        card_id: row.integer("id")?,
        card_number: row.text("card_number")?,
        series_code: row.text("code")?,
        status_label: row.text("status_label")?,
    })
}

/// A card for a `card_created` payload: `id, series_id, card_number,
/// external_id, status_label, status_reason, customer_id`.
pub fn card_snapshot<R>(row: &R) -> Result<CardSnapshot, StoreError>
where
    R: StoredRow,
    for<'a> &'a str: ColumnIndex<R>,
{
    Ok(CardSnapshot {
        card_id: row.integer("id")?,
        series_id: row.integer("series_id")?,
        card_number: row.text("card_number")?,
        external_id: row.optional_text("external_id")?,
        status_label: row.text("status_label")?,
        status_reason: row.optional_text("status_reason")?,
        customer_id: row.optional_integer("customer_id")?,
    })
}

/// A customer for a `customer_registered` payload: `id, customer_id,
/// external_id, external_id_generated`.
pub fn customer_snapshot<R>(row: &R) -> Result<CustomerSnapshot, StoreError>
where
    R: StoredRow,
    for<'a> &'a str: ColumnIndex<R>,
{
    Ok(CustomerSnapshot {
        customer_row_id: row.integer("id")?,
        customer_id: row.integer("customer_id")?,
        external_id: row.text("external_id")?,
        external_id_generated: row.boolean("external_id_generated")?,
    })
}

/// A card as the external-ID import sees it: `id, card_number, external_id, external_id_run_id`.
pub fn card_external_id<R>(row: &R) -> Result<(String, CardExternalId), StoreError>
where
    R: StoredRow,
    for<'a> &'a str: ColumnIndex<R>,
{
    Ok((
        row.text("card_number")?,
        CardExternalId {
            card_id: row.integer("id")?,
            external_id: row.optional_text("external_id")?,
            external_id_set_by: external_id_setter(row)?,
        },
    ))
}

/// The card holding an external ID: `external_id` to `card_number` and who set it.
pub fn external_id_holder<R>(row: &R) -> Result<(String, (String, Holder)), StoreError>
where
    R: StoredRow,
    for<'a> &'a str: ColumnIndex<R>,
{
    Ok((
        row.text("external_id")?,
        (row.text("card_number")?, external_id_setter(row)?),
    ))
}

/// The run and record that last set a card's external ID.
fn external_id_setter<R>(row: &R) -> Result<Holder, StoreError>
where
    R: StoredRow,
    for<'a> &'a str: ColumnIndex<R>,
{
    Ok(Holder {
        run_id: row.optional_integer("external_id_run_id")?,
        record: row.optional_integer("external_id_record")?.map(|record| record as u64),
    })
}

/// Adds a card found by a key lookup to `keys`: under its number if
/// `numbers` asked for it (with its stored values), under its external ID
/// if `external_ids` did. Columns: `card_number, external_id, run_id,
/// import_record, series_id, status_label, customer_id, status_reason`, and
/// the JSON fields as text.
pub fn add_card_key<R>(
    keys: &mut CardKeys,
    row: &R,
    numbers: &std::collections::HashSet<&str>,
    external_ids: &std::collections::HashSet<&str>,
) -> Result<(), StoreError>
where
    R: StoredRow,
    for<'a> &'a str: ColumnIndex<R>,
{
    let holder = Holder {
        run_id: row.optional_integer("run_id")?,
        record: row.optional_integer("import_record")?.map(|record| record as u64),
    };
    let number = row.text("card_number")?;
    let external_id = row.optional_text("external_id")?;
    if let Some(external_id) = &external_id
        && external_ids.contains(external_id.as_str())
    {
        keys.holders[1].insert(external_id.clone(), holder);
    }
    if numbers.contains(number.as_str()) {
        let stored = StoredCard {
            series_id: row.integer("series_id")?,
            external_id,
            status_label: row.text("status_label")?,
            customer_id: row.optional_integer("customer_id")?,
            status_reason: row.optional_text("status_reason")?,
            extended_fields: row.optional_text("extended_fields")?,
            custom_fields: row.optional_text("custom_fields")?,
            mapped_entity: row.optional_text("mapped_entity")?,
        };
        keys.holders[0].insert(number.clone(), holder);
        keys.stored.insert(number, stored);
    }
    Ok(())
}

/// Adds a customer found by a key lookup to `keys`, under its customer id
/// (as text) or its external ID, whichever `by` says the query asked for.
/// Columns: `customer_id` (as text), `external_id, run_id, import_record`.
pub fn add_customer_key<R>(keys: &mut CustomerKeys, row: &R, by_customer_id: bool) -> Result<(), StoreError>
where
    R: StoredRow,
    for<'a> &'a str: ColumnIndex<R>,
{
    let holder = Holder {
        run_id: row.optional_integer("run_id")?,
        record: row.optional_integer("import_record")?.map(|record| record as u64),
    };
    let external_id = row.text("external_id")?;
    if by_customer_id {
        let customer_id = row.text("customer_id")?;
        keys.holders[0].insert(customer_id.clone(), holder);
        keys.external_ids.insert(customer_id, external_id);
    } else {
        keys.holders[1].insert(external_id, holder);
    }
    Ok(())
}
