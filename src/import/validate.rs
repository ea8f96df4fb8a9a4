//! Validation: pure functions from a record's fields to a valid row or a
//! rejection, run on rayon over a whole batch with the order kept. A record's
//! verdict is the rule of the earliest stage it breaks (see
//! [`Stage`](crate::domain::Stage)), ties
//! going to the column that comes first. Duplicates are judged later, by the
//! store, against the database.

use std::borrow::Cow;

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::columns::{card, customer, external_id};
use super::reader::RecordBatch;
use crate::batch::{CardExtras, CardRow, CustomerRow, ExternalIdRow, ImportKind, Rows, SourceInfo, ValidBatch};
use crate::domain::card::{DEFAULT_STATUS_LABEL, check_number_format};
use crate::domain::fields::{check_card_number, check_external_id_charset, check_free_text};
use crate::domain::spreadsheet::{explain_characters, explain_length, has_separators, strip_separators};
use crate::domain::{OrgConfig, RejectReason, Rejection, Series};

/// Everything validation needs to know, loaded once per run.
#[derive(Debug, Clone)]
pub struct ValidationContext {
    pub kind: ImportKind,
    pub org: OrgConfig,
    pub series_by_id: FxHashMap<i64, Series>,
    pub series_by_code: FxHashMap<String, i64>,
    /// Whether customers without an external ID can get a generated one.
    pub can_generate_external_ids: bool,
    /// `--strip-separators`: spaces and dashes are removed from card numbers.
    pub strip_separators: bool,
}

impl ValidationContext {
    pub fn new(kind: ImportKind, org: OrgConfig, series: Vec<Series>) -> Self {
        let can_generate_external_ids =
            org.generation_enabled && org.external_id_format().is_some_and(|format| format.is_ok());
        let series_by_code = series.iter().map(|s| (s.definition.code.clone(), s.id)).collect();
        let series_by_id = series.into_iter().map(|s| (s.id, s)).collect();
        ValidationContext {
            kind,
            org,
            series_by_id,
            series_by_code,
            can_generate_external_ids,
            strip_separators: false,
        }
    }
}

/// Validates a batch on rayon, keeping record order.
pub fn validate_batch(batch: RecordBatch, context: &ValidationContext) -> ValidBatch {
    let (rows, rejects) = match context.kind {
        ImportKind::Cards => {
            let (rows, rejects) = judge(&batch, |record, field| validate_card(record, field, context));
            (Rows::Cards(rows), rejects)
        }
        ImportKind::ExternalIds => {
            let (rows, rejects) = judge(&batch, |record, field| validate_external_id(record, field, context));
            (Rows::ExternalIds(rows), rejects)
        }
        ImportKind::Customers => {
            let (rows, rejects) = judge(&batch, |record, field| validate_customer(record, field, context));
            (Rows::Customers(rows), rejects)
        }
    };
    // Both card and external-ID records hold a card number in their first column.
    let separators_stripped = match context.kind {
        ImportKind::Cards | ImportKind::ExternalIds if context.strip_separators => batch
            .records
            .iter()
            .filter_map(|record| record.fields.as_ref().ok())
            .filter(|fields| batch.field(fields, card::CARD_NUMBER).is_some_and(has_separators))
            .count() as u64,
        _ => 0,
    };
    let sources = batch
        .records
        .iter()
        .map(|r| SourceInfo {
            line: r.line,
            raw: r.raw.clone(),
        })
        .collect();
    ValidBatch {
        first_record: batch.first_record,
        sources,
        raw_text: batch.text,
        rows,
        rejects,
        separators_stripped,
    }
}

/// Runs `validate` over every record in parallel and splits the verdicts
/// into valid rows and rejects, both in record order.
fn judge<'b, T: Send>(
    batch: &'b RecordBatch,
    validate: impl Fn(u64, &dyn Fn(usize) -> Option<&'b str>) -> Result<T, Rejection> + Sync,
) -> (Vec<T>, Vec<(u64, Rejection)>) {
    // An indexed collect writes each verdict straight into its slot (no
    // per-thread chunks to join), then one pass splits them.
    let verdicts: Vec<Result<T, Rejection>> = batch
        .records
        .par_iter()
        .enumerate()
        .map(|(index, record)| match &record.fields {
            Err(rejection) => Err(rejection.clone()),
            Ok(fields) => validate(batch.first_record + index as u64, &|column| batch.field(fields, column)),
        })
        .collect();
    let mut rows = Vec::with_capacity(verdicts.len());
    let mut rejects = Vec::new();
    for (index, verdict) in verdicts.into_iter().enumerate() {
        match verdict {
            Ok(row) => rows.push(row),
            Err(rejection) => rejects.push((batch.first_record + index as u64, rejection)),
        }
    }
    (rows, rejects)
}

fn missing(field: &'static str, message: impl Into<String>) -> Rejection {
    Rejection::new(RejectReason::MissingField, field, message)
}

/// The earliest-stage failure among `checks`, evaluated in column order.
fn earliest(checks: impl IntoIterator<Item = Result<(), Rejection>>) -> Result<(), Rejection> {
    match checks
        .into_iter()
        .filter_map(Result::err)
        .reduce(|a, b| if b.stage < a.stage { b } else { a })
    {
        Some(rejection) => Err(rejection),
        None => Ok(()),
    }
}

fn parse_integer(field: &'static str, value: Option<&str>) -> Result<Option<i64>, Rejection> {
    value
        .map(|text| {
            text.parse::<i64>().map_err(|_| {
                Rejection::new(
                    RejectReason::InvalidCharacters,
                    field,
                    format!("{field} {text:?} is not an integer"),
                )
            })
        })
        .transpose()
}

/// An object field must hold a JSON object, and no string in it may hold a
/// NUL character (which PostgreSQL cannot store as text).
fn check_json_object(field: &'static str, value: Option<&str>) -> Result<(), Rejection> {
    let Some(text) = value else { return Ok(()) };
    let invalid = |message: String| Err(Rejection::new(RejectReason::InvalidCharacters, field, message));
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(object @ serde_json::Value::Object(_)) if holds_nul(&object) => {
            invalid(format!("{field} contains a NUL character (\\u0000)"))
        }
        Ok(serde_json::Value::Object(_)) => Ok(()),
        _ => invalid(format!("{field} must be a JSON object")),
    }
}

fn holds_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => text.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(holds_nul),
        serde_json::Value::Object(map) => map.iter().any(|(key, item)| key.contains('\0') || holds_nul(item)),
        _ => false,
    }
}

fn validate_card<'a>(
    record: u64,
    field: &dyn Fn(usize) -> Option<&'a str>,
    context: &ValidationContext,
) -> Result<CardRow, Rejection> {
    // Required fields.
    let card_number = card_number(field(card::CARD_NUMBER), context)?;
    let card_number = card_number.as_ref();
    let series_code = field(card::SERIES_CODE);
    let series_id_text = field(card::SERIES_ID);
    if series_code.is_none() && series_id_text.is_none() {
        return Err(missing("series_code", "series_code or series_id is required"));
    }
    // Field limits and character sets.
    let external_id = field(card::EXTERNAL_ID);
    let status_reason = field(card::STATUS_REASON);
    let series_id = parse_integer("series_id", series_id_text);
    let customer_id = parse_integer("customer_id", field(card::CUSTOMER_ID));
    let status_label = field(card::STATUS_LABEL);
    earliest([
        check_card_number("card_number", card_number).map_err(|r| explain_characters(card_number, r)),
        series_code.map_or(Ok(()), |code| check_free_text("series_code", code)),
        series_id.as_ref().map(drop).map_err(Clone::clone),
        status_label.map_or(Ok(()), |label| check_free_text("status_label", label)),
        external_id.map_or(Ok(()), |id| check_external_id_charset("external_id", id)),
        customer_id.as_ref().map(drop).map_err(Clone::clone),
        status_reason.map_or(Ok(()), |reason| check_free_text("status_reason", reason)),
        check_json_object("extended_fields", field(card::EXTENDED_FIELDS)),
        check_json_object("custom_fields", field(card::CUSTOM_FIELDS)),
        check_json_object("mapped_entity", field(card::MAPPED_ENTITY)),
    ])?;
    // Series lookup.
    let series_id = series_id?;
    let by_code = series_code.map(|code| context.series_by_code.get(code).copied());
    let series = match (series_id, by_code) {
        (Some(id), Some(Some(code_id))) if id != code_id => Err(Rejection::new(
            RejectReason::SeriesNotFound,
            "series_id",
            format!(
                "series_id {id} and series_code {:?} name different series",
                series_code.unwrap_or_default()
            ),
        )),
        (Some(id), _) => context.series_by_id.get(&id).ok_or_else(|| {
            Rejection::new(
                RejectReason::SeriesNotFound,
                "series_id",
                format!("series {id} does not exist"),
            )
        }),
        (None, Some(found)) => found.and_then(|id| context.series_by_id.get(&id)).ok_or_else(|| {
            Rejection::new(
                RejectReason::SeriesNotFound,
                "series_code",
                format!("series {:?} does not exist", series_code.unwrap_or_default()),
            )
        }),
        (None, None) => unreachable!("one of series_code and series_id is present"),
    }?;
    if !series.definition.is_active {
        return Err(Rejection::new(
            RejectReason::SeriesInactive,
            "series_code",
            format!("series {} is inactive", series.definition.code),
        ));
    }
    // Length, prefix/suffix, generated part and check digit, for both numbers.
    earliest([
        check_number_format("card_number", card_number, series).map_err(|r| explain_length(card_number, series, r)),
        external_id.map_or(Ok(()), |id| context.org.check_external_id_format("external_id", id)),
    ])?;
    let status_label = status_label.unwrap_or(DEFAULT_STATUS_LABEL);
    if context.org.status_labels.resolve(status_label).is_none() {
        return Err(Rejection::new(
            RejectReason::StatusLabelInvalid,
            "status_label",
            context.org.status_labels.unknown_message(status_label),
        ));
    }
    Ok(CardRow {
        record,
        series_id: series.id,
        card_number: card_number.into(),
        external_id: external_id.map(Into::into),
        status_label: status_label.into(),
        customer_id: customer_id?,
        extras: card_extras([
            status_reason,
            field(card::EXTENDED_FIELDS),
            field(card::CUSTOM_FIELDS),
            field(card::MAPPED_ENTITY),
        ]),
    })
}

/// The required card number of a record, without separators under
/// `--strip-separators`.
fn card_number<'a>(value: Option<&'a str>, context: &ValidationContext) -> Result<Cow<'a, str>, Rejection> {
    let number = value.ok_or_else(|| missing("card_number", "card_number is required"))?;
    Ok(if context.strip_separators {
        strip_separators(number)
    } else {
        Cow::Borrowed(number)
    })
}

/// Status reason, extended fields, custom fields and mapped entity, boxed
/// only when one of them is given.
fn card_extras(fields: [Option<&str>; 4]) -> Option<Box<CardExtras>> {
    let [status_reason, extended_fields, custom_fields, mapped_entity] = fields.map(|f| f.map(str::to_string));
    let extras = CardExtras {
        status_reason,
        extended_fields,
        custom_fields,
        mapped_entity,
    };
    (extras != CardExtras::default()).then(|| Box::new(extras))
}

fn validate_external_id<'a>(
    record: u64,
    field: &dyn Fn(usize) -> Option<&'a str>,
    context: &ValidationContext,
) -> Result<ExternalIdRow, Rejection> {
    let card_number = card_number(field(external_id::CARD_NUMBER), context)?;
    let card_number = card_number.as_ref();
    let value = field(external_id::EXTERNAL_ID).ok_or_else(|| missing("external_id", "external_id is required"))?;
    earliest([
        check_card_number("card_number", card_number).map_err(|r| explain_characters(card_number, r)),
        check_external_id_charset("external_id", value),
    ])?;
    context.org.check_external_id("external_id", value)?;
    Ok(ExternalIdRow {
        record,
        card_number: card_number.into(),
        external_id: value.into(),
    })
}

fn validate_customer<'a>(
    record: u64,
    field: &dyn Fn(usize) -> Option<&'a str>,
    context: &ValidationContext,
) -> Result<CustomerRow, Rejection> {
    let customer_id = field(customer::CUSTOMER_ID).ok_or_else(|| missing("customer_id", "customer_id is required"))?;
    let value = field(customer::EXTERNAL_ID);
    if value.is_none() && !context.can_generate_external_ids {
        return Err(missing(
            "external_id",
            "external_id is required: external-ID generation is off or CONF_CARD_NUMBER_LENGTH is not set",
        ));
    }
    let customer_id = parse_integer("customer_id", Some(customer_id))?.unwrap_or_default();
    earliest([
        (customer_id > 0).then_some(()).ok_or_else(|| {
            Rejection::new(
                RejectReason::InvalidCharacters,
                "customer_id",
                "customer_id must be a positive integer",
            )
        }),
        value.map_or(Ok(()), |id| check_external_id_charset("external_id", id)),
    ])?;
    if let Some(id) = value {
        context.org.check_external_id_format("external_id", id)?;
    }
    Ok(CustomerRow {
        record,
        customer_id,
        external_id: value.map(Into::into),
    })
}
