//! Rows for `COPY ... FROM STDIN (FORMAT binary)`: a header, then each row
//! as its field count and each field as its length and its bytes in the
//! type's binary form (`bigint`: 8 bytes big-endian; `text` and `json`: the
//! UTF-8 text; `timestamptz`: microseconds since 2000-01-01 UTC), then a
//! trailer. The server parses no text, which is most of what a text COPY
//! costs it beyond the insert itself. Text never holds a NUL here: the field
//! rules reject it and a reject's raw text has it replaced.

use std::time::{Duration, SystemTime};

/// PostgreSQL's epoch, 2000-01-01T00:00:00Z, after the Unix epoch.
const POSTGRES_EPOCH: Duration = Duration::from_secs(946_684_800);

/// A buffer of binary COPY rows, built by appending fields.
pub(super) struct BinaryRows {
    bytes: Vec<u8>,
    fields: i16,
}

impl BinaryRows {
    /// An empty buffer for rows of `fields` fields.
    pub(super) fn new(fields: i16, capacity: usize) -> Self {
        let mut bytes = Vec::with_capacity(capacity + 21);
        bytes.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        bytes.extend_from_slice(&0_i32.to_be_bytes()); // flags
        bytes.extend_from_slice(&0_i32.to_be_bytes()); // header extension length
        BinaryRows { bytes, fields }
    }

    pub(super) fn begin_row(&mut self) {
        self.bytes.extend_from_slice(&self.fields.to_be_bytes());
    }

    pub(super) fn integer(&mut self, value: i64) {
        self.bytes.extend_from_slice(&8_i32.to_be_bytes());
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }

    pub(super) fn optional_integer(&mut self, value: Option<i64>) {
        match value {
            Some(value) => self.integer(value),
            None => self.null(),
        }
    }

    /// Text, or JSON (whose binary form is its text).
    pub(super) fn text(&mut self, value: &str) {
        self.bytes.extend_from_slice(&(value.len() as i32).to_be_bytes());
        self.bytes.extend_from_slice(value.as_bytes());
    }

    pub(super) fn optional_text(&mut self, value: Option<&str>) {
        match value {
            Some(value) => self.text(value),
            None => self.null(),
        }
    }

    /// A `timestamptz`.
    pub(super) fn timestamp(&mut self, microseconds: i64) {
        self.integer(microseconds);
    }

    pub(super) fn null(&mut self) {
        self.bytes.extend_from_slice(&(-1_i32).to_be_bytes());
    }

    pub(super) fn finish(mut self) -> Vec<u8> {
        self.bytes.extend_from_slice(&(-1_i16).to_be_bytes());
        self.bytes
    }
}

/// An RFC 3339 time as a `timestamptz` in binary form (microseconds since
/// 2000-01-01 UTC); `None` if the text is not such a time.
pub(super) fn postgres_microseconds(rfc3339: &str) -> Option<i64> {
    let time = humantime::parse_rfc3339(rfc3339).ok()?;
    let since_epoch = time.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    let micros = since_epoch.checked_sub(POSTGRES_EPOCH)?.as_micros();
    i64::try_from(micros).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_framed_as_postgres_reads_them() {
        let mut rows = BinaryRows::new(3, 64);
        rows.begin_row();
        rows.integer(7);
        rows.text("é");
        rows.null();
        let bytes = rows.finish();
        let mut expected = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0".to_vec();
        expected.extend_from_slice(&[0, 3]);
        expected.extend_from_slice(&[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7]);
        expected.extend_from_slice(&[0, 0, 0, 2, 0xc3, 0xa9]);
        expected.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        expected.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn times_count_from_the_postgres_epoch() {
        assert_eq!(postgres_microseconds("2000-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(postgres_microseconds("2000-01-01T00:00:01.500Z"), Some(1_500_000));
        assert_eq!(postgres_microseconds("not a time"), None);
    }
}
