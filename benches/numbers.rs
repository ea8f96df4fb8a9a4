//! Check digits and bulk number generation: 100,000 numbers per iteration,
//! on one thread and on rayon, for every method.
//!
//! Run: `cargo bench --bench numbers`

use std::hint::black_box;

use cardbatch::numbers::{CheckDigit, Method, NumberFormat, NumberGenerator, PermutationKey};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const COUNT: usize = 100_000;
const KEY: PermutationKey = PermutationKey(*b"bench-secret-key");

fn check_digits(c: &mut Criterion) {
    let mut group = c.benchmark_group("check_digit");
    let payload16 = b"799273987134567";
    let payload150 = [b'7'; 149];
    group.throughput(Throughput::Elements(1));
    group.bench_function("luhn_15_digits", |b| {
        b.iter(|| CheckDigit::Luhn.compute(black_box(payload16)))
    });
    group.bench_function("mod7_15_digits", |b| {
        b.iter(|| CheckDigit::Mod7.compute(black_box(payload16)))
    });
    group.bench_function("mod7_149_digits", |b| {
        b.iter(|| CheckDigit::Mod7.compute(black_box(&payload150)))
    });
    group.finish();
}

fn generation(c: &mut Criterion) {
    let mut group = c.benchmark_group("generate_100k");
    group.throughput(Throughput::Elements(COUNT as u64));
    group.sample_size(30);
    for method in Method::ALL {
        // A typical 16-digit card: 4-character prefix, 12-digit body.
        let generator = NumberGenerator::new(NumberFormat::new("6001", "", 16, method).unwrap(), KEY);
        group.bench_with_input(BenchmarkId::new("sequential", method), &generator, |b, g| {
            b.iter(|| g.render_block_sequential(black_box(1_000), COUNT))
        });
        group.bench_with_input(BenchmarkId::new("rayon", method), &generator, |b, g| {
            b.iter(|| g.render_block(black_box(1_000), COUNT))
        });
    }
    group.finish();
}

criterion_group!(benches, check_digits, generation);
criterion_main!(benches);
