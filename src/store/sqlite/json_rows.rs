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

    pub(super) fn optional_string(&mut self, value: Option<&str>) {
        match value {
            Some(value) => self.string(value),
            None => self.null(),
        }
    }

    pub(super) fn integer(&mut self, value: i64) {
        self.separate();
        self.text.push_str(&value.to_string());
    }

    pub(super) fn optional_integer(&mut self, value: Option<i64>) {
        match value {
            Some(value) => self.integer(value),
            None => self.null(),
        }
    }

    /// A value that is already JSON text (validated on the way in), or null.
    pub(super) fn optional_json(&mut self, value: Option<&str>) {
        match value {
            Some(json) => {
                self.separate();
                self.text.push_str(json);
            }
            None => self.null(),
        }
    }

    pub(super) fn null(&mut self) {
        self.separate();
        self.text.push_str("null");
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rows == 0
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
        rows.optional_string(None);
        rows.optional_json(Some(r#"{"tier":"gold"}"#));
        rows.end_row();
        rows.begin_row();
        rows.optional_integer(Some(-1));
        rows.end_row();
        let parsed: serde_json::Value = serde_json::from_str(&rows.finish()).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!([[7, "a\"b\\c\nd", null, {"tier": "gold"}], [-1]])
        );
        assert_eq!(json_strings(["x", "y\"z"]), r#"["x","y\"z"]"#);
    }
}
