//! Each store's write path alone: 100,000 validated card records written
//! by the import session in batches of the default size (shared commits,
//! as a plain `import cards`), into a fresh database per iteration, clean
//! and dirty (1% bad check digits, 1% repeats of rows from earlier batches:
//! keys the database already holds). Reading and validation are done before
//! the clock starts.
//!
//! SQLite always; PostgreSQL when `CARDBATCH_BENCH_POSTGRES_URL` names a
//! server whose user may create databases (one per iteration, dropped after).
//!
//! Run: `cargo bench --bench store_write`
//! (`CARDBATCH_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench store_write`)

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use cardbatch::batch::{ImportKind, ValidBatch};
use cardbatch::store::{self, DatabaseUrl, ImportStart, OpenOptions, RunStatus};
use common::{Drop, SETUP_COMMANDS, valid_batches};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sqlx::Connection;

const RECORDS: usize = 100_000;

/// Creates the org and series in the database at `url` with the binary.
fn set_up(url: &str) {
    for args in SETUP_COMMANDS {
        let status = Command::new(env!("CARGO_BIN_EXE_cardbatch"))
            .args(*args)
            .env("DATABASE_URL", url)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "cardbatch {args:?}");
    }
}

/// Writes the batches as one import run; returns the time the writes took.
async fn write(url: &str, batches: &[ValidBatch]) -> Duration {
    let options = OpenOptions {
        lock_timeout: Duration::from_secs(5),
        announce_waits: false,
        create: true,
        announce_created: false,
        require_citus: false,
    };
    let store = store::open(&DatabaseUrl::parse(url).unwrap(), &options).await.unwrap();
    let start = ImportStart {
        kind: ImportKind::Cards,
        input_name: "bench.csv".into(),
        input_hash: format!("{:x}", rand_hash()),
        input_format: cardbatch::batch::Format::Csv,
        input_header: None,
        reading_plan: String::new(),
        input_details: Default::default(),
        basis: Default::default(),
        adopted_records: 0,
        dry_run: false,
        group_commits: true,
        overwrite_external_ids: false,
        connections: 1,
        external_id_generation: None,
        series_codes: Default::default(),
    };
    let clock = Instant::now();
    let mut session = cardbatch::import::session::begin_import(store.as_ref(), 1, start)
        .await
        .unwrap();
    for batch in batches {
        session.write_batch(batch, None).await.unwrap();
    }
    session.finish(RunStatus::Completed).await.unwrap();
    session.close().await.unwrap();
    clock.elapsed()
}

/// A run key of its own for every iteration.
fn rand_hash() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn store_write(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let postgres = std::env::var("CARDBATCH_BENCH_POSTGRES_URL").ok();
    let mut group = c.benchmark_group("store_write");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.sample_size(10);
    for (drop_name, drop) in [("clean", Drop::Clean), ("dirty", Drop::Dirty)] {
        let batches = valid_batches(RECORDS, drop);
        group.bench_function(format!("sqlite_{drop_name}_100k"), |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let dir = tempfile::tempdir().unwrap();
                    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                    set_up(&url);
                    total += runtime.block_on(write(&url, &batches));
                }
                total
            })
        });
        let Some(server) = &postgres else { continue };
        group.bench_function(format!("postgres_{drop_name}_100k"), |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for n in 0..iterations {
                    let name = format!("cardbatch_bench_{}_{n}", std::process::id());
                    let url = runtime.block_on(async {
                        let mut admin = sqlx::PgConnection::connect(server).await.unwrap();
                        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                            .execute(&mut admin)
                            .await
                            .unwrap();
                        let (base, _) = server.rsplit_once('/').expect("a server URL with a database");
                        format!("{base}/{name}")
                    });
                    set_up(&url);
                    total += runtime.block_on(write(&url, &batches));
                    runtime.block_on(async {
                        let mut admin = sqlx::PgConnection::connect(server).await.unwrap();
                        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
                            .execute(&mut admin)
                            .await
                            .unwrap();
                    });
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, store_write);
criterion_main!(benches);
