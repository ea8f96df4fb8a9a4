//! Rows for `COPY ... FROM STDIN` in PostgreSQL's text format: fields
//! separated by tabs, rows by newlines, `\N` for NULL, and backslash escapes
//! for the characters that would otherwise end a field or a row. PostgreSQL
//! text cannot hold a NUL character at all, so one (possible only in a
//! rejected record's raw text) is stored as U+FFFD.

/// A buffer of COPY text rows, built by appending fields.
pub(super) struct CopyRows {
    text: Vec<u8>,
    first_in_row: bool,
}

impl CopyRows {
    pub(super) fn with_capacity(bytes: usize) -> Self {
        CopyRows {
            text: Vec::with_capacity(bytes),
            first_in_row: true,
        }
    }

    fn separate(&mut self) {
        if !self.first_in_row {
            self.text.push(b'\t');
        }
        self.first_in_row = false;
    }

    pub(super) fn text(&mut self, value: &str) {
        self.separate();
        for &byte in value.as_bytes() {
            match byte {
                b'\\' => self.text.extend_from_slice(b"\\\\"),
                b'\t' => self.text.extend_from_slice(b"\\t"),
                b'\n' => self.text.extend_from_slice(b"\\n"),
                b'\r' => self.text.extend_from_slice(b"\\r"),
                0 => self.text.extend_from_slice("\u{FFFD}".as_bytes()),
                _ => self.text.push(byte),
            }
        }
    }

    pub(super) fn optional_text(&mut self, value: Option<&str>) {
        match value {
            Some(value) => self.text(value),
            None => self.null(),
        }
    }

    pub(super) fn integer(&mut self, value: i64) {
        self.separate();
        self.text.extend_from_slice(value.to_string().as_bytes());
    }

    pub(super) fn optional_integer(&mut self, value: Option<i64>) {
        match value {
            Some(value) => self.integer(value),
            None => self.null(),
        }
    }

    pub(super) fn null(&mut self) {
        self.separate();
        self.text.extend_from_slice(b"\\N");
    }

    pub(super) fn end_row(&mut self) {
        self.text.push(b'\n');
        self.first_in_row = true;
    }

    pub(super) fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub(super) fn into_bytes(self) -> Vec<u8> {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_characters_are_escaped() {
        let mut rows = CopyRows::with_capacity(64);
        rows.integer(7);
        rows.text("a\tb\\c\nd\re\0");
        rows.optional_text(None);
        rows.end_row();
        rows.optional_integer(Some(-1));
        rows.end_row();
        assert_eq!(rows.into_bytes(), "7\ta\\tb\\\\c\\nd\\re\u{FFFD}\t\\N\n-1\n".as_bytes());
    }
}
