//! The reader alone: 100,000 card records, as CSV and as JSON lines, split
//! into records and fields and gathered into batches of the default size,
//! in bytes per second (as rust-csv's own benches report); and the same CSV
//! records as a European spreadsheet exports them (Windows-1252, `;`, CR
//! LF, its own headers mapped with `--column`), decoded on the way.
//!
//! Run: `cargo bench --bench reader`

mod common;

use cardbatch::import::input::Format;
use common::{Drop, european, european_options, input, read_batches, read_batches_with};
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
    let csv = input(RECORDS, Drop::Dirty, Format::Csv);
    let bytes = european(&csv);
    let options = european_options();
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("csv_100k_windows1252_semicolon_mapped", |b| {
        b.iter_batched(
            || bytes.clone(),
            |bytes| std::hint::black_box(read_batches_with(bytes, Format::Csv, &options)),
            criterion::BatchSize::LargeInput,
        )
    });
    // The same records once more as UTF-8 with cardbatch's headers, for the ratio.
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("csv_100k_records", |b| {
        b.iter_batched(
            || csv.clone(),
            |bytes| std::hint::black_box(read_batches(bytes, Format::Csv)),
            criterion::BatchSize::LargeInput,
        )
    });
    group.bench_function("csv_100k_windows1252_records", |b| {
        b.iter_batched(
            || bytes.clone(),
            |bytes| std::hint::black_box(read_batches_with(bytes, Format::Csv, &options)),
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, reader);
criterion_main!(benches);
