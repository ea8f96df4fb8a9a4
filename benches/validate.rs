//! Validation alone: 100,000 card records (two series, Luhn and mod 7, 1% bad)
//! parsed once into batches of the default size, then validated per iteration
//! on rayon, batch by batch, as the pipeline does; each validated batch is
//! dropped before the next, as the writer drops it, and the drop is timed.
//!
//! Run: `cargo bench --bench validate`

mod common;

use cardbatch::import::input::Format;
use cardbatch::import::validate::validate_batch;
use common::{Drop, context, input, read_batches};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const RECORDS: usize = 100_000;

fn validation(c: &mut Criterion) {
    let batches = read_batches(input(RECORDS, Drop::Dirty, Format::Csv), Format::Csv);
    let context = context();
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
