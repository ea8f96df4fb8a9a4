//! Reading the outbox, on either store. An `events` row stands for one event
//! or, for an import's batch, for one event per card (or customer) in a
//! range of the run's row ids; the events of a row have the ids
//! `id .. id + event_count - 1`, in row id order. This module expands rows
//! into events; each store supplies the three queries ([`EventTables`]).
//!
//! Payloads that an import's rows carry are rendered from the rows they
//! name, as those rows are at export time (see the README for what that
//! means for a card changed after its event); what nothing else keeps (the
//! external ID a `card_external_id_set` event replaced) is stored with it.

use async_trait::async_trait;

use super::StoreError;

/// An event as `events export` writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub id: i64,
    pub kind: String,
    pub org_id: i64,
    pub run_id: Option<i64>,
    pub created_at: String,
    pub payload: EventPayload,
}

/// An event's payload.
#[derive(Debug, Clone, PartialEq)]
pub enum EventPayload {
    /// JSON written with the event (single-record commands, and every event
    /// stored before the light outbox).
    Stored(String),
    CardCreated(CardSnapshot),
    ExternalIdSet {
        card_id: i64,
        /// Kept with the event; `None` only for an event stored before it
        /// was, whose card was gone by then.
        card_number: Option<String>,
        external_id: String,
        previous_external_id: Option<String>,
    },
    CustomerRegistered(CustomerSnapshot),
}

/// A card as a `card_created` payload shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSnapshot {
    pub card_id: i64,
    pub series_id: i64,
    pub card_number: String,
    pub external_id: Option<String>,
    pub status_label: String,
    pub status_reason: Option<String>,
    pub customer_id: Option<i64>,
}

/// A customer as a `customer_registered` payload shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerSnapshot {
    pub customer_row_id: i64,
    pub customer_id: i64,
    pub external_id: String,
    pub external_id_generated: bool,
}

/// A stored `events` row, with the card number of `card_id` joined in.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub id: i64,
    pub kind: String,
    pub org_id: i64,
    pub run_id: Option<i64>,
    pub event_count: i64,
    pub first_row: Option<i64>,
    pub last_row: Option<i64>,
    pub card_id: Option<i64>,
    pub card_number: Option<String>,
    pub external_id: Option<String>,
    pub previous_external_id: Option<String>,
    pub payload: Option<String>,
    pub created_at: String,
}

/// The queries the outbox is read with.
#[async_trait]
pub trait EventTables: Send {
    /// Up to `limit` rows in id order, starting with the one holding event
    /// `after + 1` (rows are never empty, so that is the last row with
    /// `id <= after + 1`), or the first row after `after`.
    async fn event_rows(&mut self, org_id: i64, after: i64, limit: u32) -> Result<Vec<EventRow>, StoreError>;

    /// Cards of `run_id` with ids in `first..=last`, in id order, from the
    /// `skip`-th on, at most `limit`.
    async fn created_cards(
        &mut self,
        org_id: i64,
        run_id: i64,
        range: (i64, i64),
        skip: u64,
        limit: u64,
    ) -> Result<Vec<CardSnapshot>, StoreError>;

    /// Customers of `run_id` with row ids in `first..=last`, likewise.
    async fn registered_customers(
        &mut self,
        org_id: i64,
        run_id: i64,
        range: (i64, i64),
        skip: u64,
        limit: u64,
    ) -> Result<Vec<CustomerSnapshot>, StoreError>;
}

/// The rows an import's batch row stands for: run `$2`'s rows of org `$1`
/// with ids `$3..=$4`, in id order, at most `$5` from the `$6`-th on (see
/// [`EventTables::created_cards`]). `$N` placeholders, which both stores take.
macro_rules! batch_rows {
    ($select:literal) => {
        concat!(
            $select,
            " WHERE org_id = $1 AND run_id = $2 AND id BETWEEN $3 AND $4 ORDER BY id LIMIT $5 OFFSET $6"
        )
    };
}

/// A batch's cards, with the columns [`super::decode::card_snapshot`] reads.
pub const CREATED_CARDS: &str =
    batch_rows!("SELECT id, series_id, card_number, external_id, status_label, status_reason, customer_id FROM cards");

/// A batch's customers, with the columns [`super::decode::customer_snapshot`] reads.
pub const REGISTERED_CUSTOMERS: &str =
    batch_rows!("SELECT id, customer_id, external_id, external_id_generated FROM customers");

/// Rows read per query.
const ROWS_PER_QUERY: u32 = 256;

/// Up to `limit` events with ids above `after`, in id order.
pub async fn event_page(
    tables: &mut dyn EventTables,
    org_id: i64,
    after: i64,
    limit: u32,
) -> Result<Vec<EventRecord>, StoreError> {
    let limit = u64::from(limit);
    let mut events = Vec::new();
    let mut after = after;
    loop {
        let rows = tables.event_rows(org_id, after, ROWS_PER_QUERY).await?;
        let read_through = after;
        for row in rows {
            let last_id = row.id + row.event_count.max(1) - 1;
            if last_id <= after {
                continue;
            }
            let skip = (after + 1 - row.id).max(0) as u64;
            let room = limit - events.len() as u64;
            let record = |id: i64, payload: EventPayload| EventRecord {
                id,
                kind: row.kind.clone(),
                org_id: row.org_id,
                run_id: row.run_id,
                created_at: row.created_at.clone(),
                payload,
            };
            match (
                &row.payload,
                row.kind.as_str(),
                row.run_id,
                row.first_row.zip(row.last_row),
            ) {
                (Some(payload), ..) => events.push(record(row.id, EventPayload::Stored(payload.clone()))),
                (None, "card_created", Some(run_id), Some(range)) => {
                    let cards = tables.created_cards(org_id, run_id, range, skip, room).await?;
                    for (offset, card) in cards.into_iter().enumerate() {
                        events.push(record(
                            row.id + (skip + offset as u64) as i64,
                            EventPayload::CardCreated(card),
                        ));
                    }
                }
                (None, "customer_registered", Some(run_id), Some(range)) => {
                    let customers = tables.registered_customers(org_id, run_id, range, skip, room).await?;
                    for (offset, customer) in customers.into_iter().enumerate() {
                        events.push(record(
                            row.id + (skip + offset as u64) as i64,
                            EventPayload::CustomerRegistered(customer),
                        ));
                    }
                }
                (None, "card_external_id_set", _, _) => events.push(record(
                    row.id,
                    EventPayload::ExternalIdSet {
                        card_id: row.card_id.unwrap_or_default(),
                        card_number: row.card_number.clone(),
                        external_id: row.external_id.clone().unwrap_or_default(),
                        previous_external_id: row.previous_external_id.clone(),
                    },
                )),
                _ => {
                    return Err(StoreError::Corrupt(format!(
                        "event row {} ({}) has neither a payload nor the rows it stands for",
                        row.id, row.kind
                    )));
                }
            }
            after = events.last().map_or(last_id, |event| event.id);
            if events.len() as u64 >= limit {
                return Ok(events);
            }
            // A batch row whose rows ran out early (none are ever deleted) ends here.
            after = after.max(last_id);
        }
        if after == read_through {
            return Ok(events);
        }
    }
}
