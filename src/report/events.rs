//! Events export: the outbox as JSON lines, one event per line in id order,
//! each payload with the fields and in the order its kind has always had.

use std::io::Write;

use serde_json::{Value, json};

use crate::store::{EventPayload, EventRecord};

/// Writes one event as a JSON line:
/// `{"id", "kind", "org_id", "run_id", "payload", "created_at"}`.
pub fn write_event_line(out: &mut impl Write, event: &EventRecord) -> std::io::Result<()> {
    let line = json!({
        "id": event.id,
        "kind": event.kind,
        "org_id": event.org_id,
        "run_id": event.run_id,
        "payload": payload(&event.payload),
        "created_at": event.created_at,
    });
    writeln!(out, "{line}")
}

/// An event's payload as JSON.
pub fn payload(payload: &EventPayload) -> Value {
    match payload {
        // Stored as JSON text; text that is not JSON is passed on as a string.
        EventPayload::Stored(text) => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone())),
        EventPayload::CardCreated(card) => json!({
            "card_id": card.card_id,
            "series_id": card.series_id,
            "card_number": card.card_number,
            "external_id": card.external_id,
            "status_label": card.status_label,
            "status_reason": card.status_reason,
            "customer_id": card.customer_id,
        }),
        EventPayload::ExternalIdSet {
            card_id,
            card_number,
            external_id,
            previous_external_id,
        } => json!({
            "card_id": card_id,
            "card_number": card_number,
            "external_id": external_id,
            "previous_external_id": previous_external_id,
        }),
        EventPayload::CustomerRegistered(customer) => json!({
            "customer_row_id": customer.customer_row_id,
            "customer_id": customer.customer_id,
            "external_id": customer.external_id,
            "external_id_generated": customer.external_id_generated,
        }),
    }
}
