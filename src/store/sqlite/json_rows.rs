//! Builds the JSON arrays that the SQLite bulk statements read with
//! `json_each(?)`: one bound parameter per batch instead of one per value.

/// A JSON array of rows (each row itself an array), built by appending values.
pub(super) struct JsonRows {
    text: String,
    rows: usize,
    first_in_row: bool,
}

impl JsonRows {
    pub(super) fn with_capacity(bytes: usize) -> Self {
        let mut text = String::with_capacity(bytes + 2);
        text.push('[');
        JsonRows {
            text,
            rows: 0,
            first_in_row: true,
        }
    }

    pub(super) fn begin_row(&mut self) {
        if self.rows > 0 {
            self.text.push(',');
        }
        self.text.push('[');
        self.first_in_row = true;
    }

    pub(super) fn end_row(&mut self) {
        self.text.push(']');
        self.rows += 1;
    }

    fn separate(&mut self) {
        if !self.first_in_row {
            self.text.push(',');
        }
        self.first_in_row = false;
    }

    pub(super) fn string(&mut self, value: &str) {
        self.separate();
        push_json_string(&mut self.text, value);
    }

    pub(super) fn integer(&mut self, value: i64) {
        self.separate();
        self.text.push_str(&value.to_string());
    }

    pub(super) fn finish(mut self) -> String {
        self.text.push(']');
        self.text
    }
}

/// A JSON array of strings.
pub(super) fn json_strings<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let mut text = String::from("[");
    for (i, value) in values.into_iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        push_json_string(&mut text, value);
    }
    text.push(']');
    text
}

/// Appends `value` as a JSON string; plain text (the common case) is copied as is.
fn push_json_string(out: &mut String, value: &str) {
    if value.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(value);
        out.push('"');
    } else {
        // serde_json escapes exactly what JSON requires; a String always serialises.
        out.push_str(&serde_json::Value::from(value).to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_valid_json() {
        let mut rows = JsonRows::with_capacity(64);
        rows.begin_row();
        rows.integer(7);
        rows.string("a\"b\\c\nd");
        rows.end_row();
        rows.begin_row();
        rows.integer(-1);
        rows.end_row();
        let parsed: serde_json::Value = serde_json::from_str(&rows.finish()).unwrap();
        assert_eq!(parsed, serde_json::json!([[7, "a\"b\\c\nd"], [-1]]));
        assert_eq!(json_strings(["x", "y\"z"]), r#"["x","y\"z"]"#);
    }
}
