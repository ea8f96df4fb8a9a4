//! The reader alone: 100,000 card records, as CSV and as JSON lines, split
//! into records and fields and gathered into batches of the default size,
//! in bytes per second (as rust-csv's own benches report).
//!
//! Run: `cargo bench --bench reader`

mod common;

use cardbatch::import::input::Format;
use common::{Drop, input, read_batches};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const RECORDS: usize = 100_000;

fn reader(c: &mut Criterion) {
    let mut group = c.benchmark_group("reader");
    group.sample_size(20);
    for (name, format) in [("csv_100k", Format::Csv), ("jsonl_100k", Format::Jsonl)] {
        let bytes = input(RECORDS, Drop::Dirty, format);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| {
            b.iter_batched(
                || bytes.clone(),
                |bytes| std::hint::black_box(read_batches(bytes, format)),
                criterion::BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, reader);
criterion_main!(benches);
