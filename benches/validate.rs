//! Validation alone: 100,000 card records (two series, Luhn and mod 7, 1% bad)
//! parsed once into batches of the default size, then validated per iteration
//! on rayon, batch by batch, as the pipeline does; each validated batch is
//! dropped before the next, as the writer drops it, and the drop is timed.
//!
//! Run: `cargo bench --bench validate`

use std::io::Cursor;

use cardbatch::batch::ImportKind;
use cardbatch::domain::{OrgConfig, SeriesRequest};
use cardbatch::import::input::Format;
use cardbatch::import::reader::{DEFAULT_MAX_RECORD_BYTES, RecordBatch, open_source};
use cardbatch::import::validate::{ValidationContext, validate_batch};
use cardbatch::numbers::{Method, NumberFormat, NumberGenerator, PermutationKey};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const RECORDS: usize = 100_000;
const BATCH: usize = 10_000;

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

fn input() -> String {
    let luhn = NumberGenerator::new(
        NumberFormat::new("6001", "", 16, Method::Luhn).unwrap(),
        PermutationKey([0; 16]),
    );
    let mod7 = NumberGenerator::new(
        NumberFormat::new("77", "", 12, Method::Mod7).unwrap(),
        PermutationKey([0; 16]),
    );
    let mut text = String::from("card_number,series_code,status_label,external_id,customer_id\n");
    for i in 0..RECORDS {
        let (number, code) = if i % 2 == 0 {
            (luhn.render_one(i as u64), "LUHN1")
        } else {
            (mod7.render_one(i as u64), "MOD1")
        };
        let number = if i % 100 == 50 {
            format!("{}X", &number[..number.len() - 1])
        } else {
            number
        };
        text.push_str(&format!("{number},{code},NOT_ISSUED,CX{i:08},{}\n", 1_000_000 + i));
    }
    text
}

fn validation(c: &mut Criterion) {
    let text = input();
    let mut source = open_source(
        Box::new(Cursor::new(text.into_bytes())),
        ImportKind::Cards,
        Format::Csv,
        DEFAULT_MAX_RECORD_BYTES,
    )
    .unwrap();
    let mut batches: Vec<RecordBatch> = Vec::new();
    while let Some(batch) = source.next_batch(BATCH, 0).unwrap() {
        batches.push(batch);
    }
    let org = OrgConfig::from_stored([("CONF_CARD_NUMBER_LENGTH", "10"), ("CONF_CARD_NUMBER_PREFIX", "CX")]).unwrap();
    let context = ValidationContext::new(
        ImportKind::Cards,
        org,
        vec![
            series(1, "LUHN1", "6001", 16, Method::Luhn),
            series(2, "MOD1", "77", 12, Method::Mod7),
        ],
    );
    let mut group = c.benchmark_group("validate");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.sample_size(20);
    group.bench_function("cards_100k_in_10k_batches_rayon", |b| {
        b.iter_batched(
            || batches.clone(),
            |batches| {
                for batch in batches {
                    std::hint::black_box(validate_batch(batch, &context));
                }
            },
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, validation);
criterion_main!(benches);
