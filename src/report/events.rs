//! Events export: the outbox as JSON lines, one event per line in id order.

use std::io::Write;

use serde_json::json;

use crate::store::EventRow;

/// Writes one event as a JSON line:
/// `{"id", "kind", "org_id", "run_id", "payload", "created_at"}`.
pub fn write_event_line(out: &mut impl Write, event: &EventRow) -> std::io::Result<()> {
    // The payload is stored as JSON text; a row that is not JSON is passed on as a string.
    let payload = serde_json::from_str::<serde_json::Value>(&event.payload)
        .unwrap_or_else(|_| serde_json::Value::String(event.payload.clone()));
    let line = json!({
        "id": event.id,
        "kind": event.kind,
        "org_id": event.org_id,
        "run_id": event.run_id,
        "payload": payload,
        "created_at": event.created_at,
    });
    writeln!(out, "{line}")
}
