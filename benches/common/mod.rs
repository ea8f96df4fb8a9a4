//! What the stage benches share: the org and series of
//! `benches/make_cards.py`, and a card drop in CSV or JSON lines.
#![allow(dead_code)] // each bench uses part of it

use std::io::Cursor;

use cardbatch::batch::{ImportKind, ValidBatch};
use cardbatch::domain::{OrgConfig, SeriesRequest};
use cardbatch::import::input::Format;
use cardbatch::import::mapping::MappingOptions;
use cardbatch::import::reader::{DEFAULT_MAX_RECORD_BYTES, RecordBatch, open_source};
use cardbatch::import::reading::ReadingOptions;
use cardbatch::import::validate::{ValidationContext, validate_batch};
use cardbatch::numbers::{Method, NumberFormat, NumberGenerator, PermutationKey};

/// Records per batch, as the pipeline's default.
pub const BATCH: usize = 10_000;

fn series(id: i64, code: &str, prefix: &str, length: usize, method: Method) -> cardbatch::domain::Series {
    let request: SeriesRequest = serde_json::from_value(serde_json::json!({
        "code": code, "type": "DIGITAL",
        "cardGenerationConfiguration": {"prefix": prefix, "length": length, "method": method.as_str()}
    }))
    .unwrap();
    cardbatch::domain::Series {
        id,
        org_id: 1,
        definition: request.validate().unwrap(),
        next_counter: 1,
        secret: PermutationKey([0; 16]),
    }
}

/// The org (external IDs `CX` + 8 digits) and its two series: LUHN1 (id 1)
/// and MOD1 (id 2), in the order `setup_commands` creates them.
pub fn context() -> ValidationContext {
    let org = OrgConfig::from_stored([("CONF_CARD_NUMBER_LENGTH", "10"), ("CONF_CARD_NUMBER_PREFIX", "CX")]).unwrap();
    ValidationContext::new(
        ImportKind::Cards,
        org,
        vec![
            series(1, "LUHN1", "6001", 16, Method::Luhn),
            series(2, "MOD1", "77", 12, Method::Mod7),
        ],
    )
}

/// `cardbatch` arguments that set the same org and series up in a database.
pub const SETUP_COMMANDS: &[&[&str]] = &[
    &["org", "set", "CONF_CARD_NUMBER_LENGTH", "10"],
    &["org", "set", "CONF_CARD_NUMBER_PREFIX", "CX"],
    &[
        "series",
        "create",
        "--code",
        "LUHN1",
        "--type",
        "DIGITAL",
        "--prefix",
        "6001",
        "--length",
        "16",
        "--method",
        "LUHN_ALGO",
    ],
    &[
        "series",
        "create",
        "--code",
        "MOD1",
        "--type",
        "DIGITAL",
        "--prefix",
        "77",
        "--length",
        "12",
        "--method",
        "MOD7_ALGO",
    ],
];

/// How a drop's rows are made.
#[derive(Clone, Copy)]
pub enum Drop {
    /// Every row valid and new.
    Clean,
    /// 1% bad check digits and 1% repeats of a row from an earlier batch,
    /// spread through the file.
    Dirty,
}

/// One card row's fields: number, series code, external ID, customer ID.
fn card(luhn: &NumberGenerator, mod7: &NumberGenerator, i: usize) -> (String, &'static str, String, usize) {
    let (number, code) = if i.is_multiple_of(2) {
        (luhn.render_one(i as u64), "LUHN1")
    } else {
        (mod7.render_one(i as u64), "MOD1")
    };
    (number, code, format!("CX{i:08}"), 1_000_000 + i)
}

/// `records` card rows (alternating series) as CSV or JSON lines.
pub fn input(records: usize, drop: Drop, format: Format) -> Vec<u8> {
    let luhn = NumberGenerator::new(
        NumberFormat::new("6001", "", 16, Method::Luhn).unwrap(),
        PermutationKey([0; 16]),
    );
    let mod7 = NumberGenerator::new(
        NumberFormat::new("77", "", 12, Method::Mod7).unwrap(),
        PermutationKey([0; 16]),
    );
    let mut text = match format {
        Format::Csv => String::from("card_number,series_code,status_label,external_id,customer_id\n"),
        Format::Jsonl => String::new(),
    };
    for i in 0..records {
        let (mut number, code, external_id, customer_id) = match drop {
            // A row of an earlier batch, again.
            Drop::Dirty if i % 100 == 37 && i >= BATCH => card(&luhn, &mod7, i - BATCH - 11),
            _ => card(&luhn, &mod7, i),
        };
        if matches!(drop, Drop::Dirty) && i % 100 == 50 {
            number.pop();
            number.push('X');
        }
        text.push_str(&match format {
            Format::Csv => format!("{number},{code},NOT_ISSUED,{external_id},{customer_id}\n"),
            Format::Jsonl => format!(
                "{{\"card_number\":\"{number}\",\"series_code\":\"{code}\",\"status_label\":\"NOT_ISSUED\",\
                 \"external_id\":\"{external_id}\",\"customer_id\":{customer_id}}}\n"
            ),
        });
    }
    text.into_bytes()
}

/// The same CSV records as a European spreadsheet export writes them:
/// `;`-separated, CR LF, Windows-1252, with its own headers (one of them
/// accented), read with [`european_options`].
pub fn european(csv: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(csv).unwrap();
    let mut out = String::with_capacity(text.len() + text.len() / 20);
    for (i, line) in text.lines().enumerate() {
        if i == 0 {
            out.push_str("CardNo;Serie;Statut;Référence;Client");
        } else {
            out.push_str(&line.replace(',', ";"));
        }
        out.push_str("\r\n");
    }
    encoding_rs::WINDOWS_1252.encode(&out).0.into_owned()
}

/// The reading options of a [`european`] file (the delimiter detected).
pub fn european_options() -> ReadingOptions {
    let pairs = |list: &[(&str, &str)]| list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    ReadingOptions {
        encoding: Some(encoding_rs::WINDOWS_1252),
        mapping: MappingOptions {
            columns: pairs(&[
                ("card_number", "CardNo"),
                ("series_code", "Serie"),
                ("status_label", "Statut"),
                ("external_id", "Référence"),
                ("customer_id", "Client"),
            ]),
            constants: Vec::new(),
        },
        ..ReadingOptions::default()
    }
}

/// The input read into batches of [`BATCH`] records.
pub fn read_batches(input: Vec<u8>, format: Format) -> Vec<RecordBatch> {
    read_batches_with(input, format, &ReadingOptions::default())
}

/// The input read as `options` say into batches of [`BATCH`] records.
pub fn read_batches_with(input: Vec<u8>, format: Format, options: &ReadingOptions) -> Vec<RecordBatch> {
    let mut source = open_source(
        Box::new(Cursor::new(input)),
        ImportKind::Cards,
        format,
        DEFAULT_MAX_RECORD_BYTES,
        options,
    )
    .unwrap()
    .source;
    let mut batches = Vec::new();
    while let Some(batch) = source.next_batch(BATCH, 0).unwrap() {
        batches.push(batch);
    }
    batches
}

/// The input read and validated, as the store receives it.
pub fn valid_batches(records: usize, drop: Drop) -> Vec<ValidBatch> {
    let context = context();
    read_batches(input(records, drop, Format::Csv), Format::Csv)
        .into_iter()
        .map(|batch| validate_batch(batch, &context))
        .collect()
}
