//! Shared by the integration tests: a scratch directory with its own database,
//! and helpers that run the real `cardbatch` binary against it.
//!
//! Test bodies take a [`Backend`] and [`on_every_backend!`] runs each on
//! every one: SQLite always; PostgreSQL on the server
//! `CARDBATCH_TEST_POSTGRES_URL` names (the README's test command starts a
//! throwaway one), each workspace in a fresh database of its own; Citus on
//! the cluster `CARDBATCH_TEST_CITUS_URLS` names (the coordinator's URL,
//! then each worker's, space-separated; `scripts/test.sh` starts one where
//! the extension is installed), each workspace a fresh database on every
//! node, made by `cardbatch db distribute`. Without those variables the
//! variants say they are skipped, unless `CARDBATCH_REQUIRE_POSTGRES=1` or
//! `CARDBATCH_REQUIRE_CITUS=1` makes that a failure.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

pub const SEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/seeds");

/// Runs the named test bodies (each `fn name(backend: Backend)`) as
/// `sqlite::name`, `postgres::name` and `citus::name`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name($crate::common::Backend::Sqlite) } )*
        }
        $crate::on_postgres_backends!($($name),*);
    };
}

/// Runs the named test bodies as `postgres::name` and `citus::name`: the
/// PostgreSQL store's own behaviour (two connections, say), on one server
/// and on Citus.
#[macro_export]
macro_rules! on_postgres_backends {
    ($($name:ident),* $(,)?) => {
        $crate::on_server_backend!(postgres, Postgres, $($name),*);
        $crate::on_server_backend!(citus, Citus, $($name),*);
    };
}

/// One module of tests on a server backend, each skipped (or failed, when
/// required) where that server is not configured.
#[macro_export]
macro_rules! on_server_backend {
    ($module:ident, $variant:ident, $($name:ident),*) => {
        mod $module {
            $(
                #[test]
                fn $name() {
                    if $crate::common::Backend::$variant.available() {
                        super::$name($crate::common::Backend::$variant)
                    }
                }
            )*
        }
    };
}

/// The database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    /// The PostgreSQL store on a Citus coordinator with two workers.
    Citus,
}

const POSTGRES_URL_VARIABLE: &str = "CARDBATCH_TEST_POSTGRES_URL";

const CITUS_URLS_VARIABLE: &str = "CARDBATCH_TEST_CITUS_URLS";

impl Backend {
    /// True when this backend's server is configured for tests (SQLite
    /// always is); panics when one is required (`CARDBATCH_REQUIRE_POSTGRES=1`,
    /// `CARDBATCH_REQUIRE_CITUS=1`) but missing.
    pub fn available(self) -> bool {
        let (variable, required, starts) = match self {
            Backend::Sqlite => return true,
            Backend::Postgres => (POSTGRES_URL_VARIABLE, "CARDBATCH_REQUIRE_POSTGRES", "starts a server"),
            Backend::Citus => (
                CITUS_URLS_VARIABLE,
                "CARDBATCH_REQUIRE_CITUS",
                "starts a cluster where the citus extension is installed",
            ),
        };
        if std::env::var_os(variable).is_some() {
            return true;
        }
        if std::env::var(required).as_deref() == Ok("1") {
            panic!("{variable} is not set: run the tests with scripts/test.sh, which {starts}");
        }
        eprintln!("skipped: {variable} is not set (scripts/test.sh {starts} and sets it)");
        false
    }

    /// True for the PostgreSQL store, on one server or on Citus.
    pub fn is_postgres(self) -> bool {
        matches!(self, Backend::Postgres | Backend::Citus)
    }

    /// A fresh workspace on this backend.
    pub fn workspace(self) -> Workspace {
        Workspace::new(self)
    }
}

/// Makes the databases `urls` (the coordinator's, then each worker's) one
/// Citus cluster: Citus does not propagate `CREATE DATABASE`, so each node's
/// database gets the extension, and the coordinator's learns the nodes.
async fn citus_cluster(urls: &[String]) {
    use sqlx::Connection;
    let port = |url: &str| -> i32 {
        let authority = url.split('/').nth(2).expect("URL authority");
        authority
            .rsplit_once(':')
            .expect("URL port")
            .1
            .parse()
            .expect("port number")
    };
    for url in urls {
        let mut node = sqlx::PgConnection::connect(url).await.expect("connect to a Citus node");
        sqlx::raw_sql("CREATE EXTENSION citus")
            .execute(&mut node)
            .await
            .expect("create the citus extension");
    }
    let mut coordinator = sqlx::PgConnection::connect(&urls[0])
        .await
        .expect("connect to the coordinator");
    sqlx::query("SELECT citus_set_coordinator_host('127.0.0.1', $1)")
        .bind(port(&urls[0]))
        .execute(&mut coordinator)
        .await
        .expect("set the coordinator host");
    for worker in &urls[1..] {
        // Tests adding nodes to their databases at once can meet Citus's
        // metadata locks (a deadlock is broken by cancelling one): retried.
        let mut attempts = 0;
        while let Err(error) = sqlx::query("SELECT citus_add_node('127.0.0.1', $1)")
            .bind(port(worker))
            .execute(&mut coordinator)
            .await
        {
            attempts += 1;
            assert!(attempts < 10, "add a worker: {error}");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

/// A scratch workspace: a temporary directory and a database of its own.
pub struct Workspace {
    pub dir: TempDir,
    pub url: String,
    pub backend: Backend,
    /// Each PostgreSQL server's URL (a Citus cluster's nodes) and the
    /// database created on it for this workspace.
    postgres: Vec<(String, String)>,
}

/// Runs a future to completion on a small runtime of its own.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(future)
}

impl Workspace {
    pub fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("cards.db").display());
                Workspace {
                    dir,
                    url,
                    backend,
                    postgres: Vec::new(),
                }
            }
            Backend::Postgres | Backend::Citus => {
                static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let servers: Vec<String> = match backend {
                    Backend::Citus => std::env::var(CITUS_URLS_VARIABLE)
                        .expect("Citus test cluster URLs")
                        .split_whitespace()
                        .map(str::to_string)
                        .collect(),
                    _ => vec![std::env::var(POSTGRES_URL_VARIABLE).expect("PostgreSQL test server URL")],
                };
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let name = format!("cardbatch_test_{}_{n}", std::process::id());
                let url = |server: &str| {
                    let (base, _) = server.rsplit_once('/').expect("server URL ends in a database name");
                    format!("{base}/{name}")
                };
                block_on(async {
                    use sqlx::Connection;
                    for server in &servers {
                        let mut admin = sqlx::PgConnection::connect(server)
                            .await
                            .expect("connect to the test server");
                        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                            .execute(&mut admin)
                            .await
                            .expect("create a test database");
                    }
                    if backend == Backend::Citus {
                        citus_cluster(&servers.iter().map(|server| url(server)).collect::<Vec<_>>()).await;
                    }
                });
                let workspace = Workspace {
                    url: url(&servers[0]),
                    dir,
                    backend,
                    postgres: servers.into_iter().map(|server| (server, name.clone())).collect(),
                };
                if backend == Backend::Citus {
                    let output = workspace.run(&["db", "distribute"]);
                    assert!(
                        output.status.success(),
                        "db distribute: {}",
                        String::from_utf8_lossy(&output.stderr)
                    );
                }
                workspace
            }
        }
    }

    /// A fresh SQLite workspace, for tests that are about SQLite only.
    pub fn sqlite() -> Self {
        Workspace::new(Backend::Sqlite)
    }

    /// Runs a query returning one text column on this workspace's database
    /// (the same SQL must work on both backends).
    pub fn query_texts(&self, sql: &str) -> Vec<String> {
        let sql = sql.to_string();
        block_on(async {
            match self.backend {
                Backend::Sqlite => {
                    let pool = sqlx::SqlitePool::connect(&self.url)
                        .await
                        .expect("open the test database");
                    let values = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
                        .fetch_all(&pool)
                        .await
                        .expect("query");
                    pool.close().await;
                    values
                }
                Backend::Postgres | Backend::Citus => {
                    let pool = sqlx::PgPool::connect(&self.url).await.expect("open the test database");
                    let values = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
                        .fetch_all(&pool)
                        .await
                        .expect("query");
                    pool.close().await;
                    values
                }
            }
        })
    }

    /// Every card by its content (no ids, no times), in card-number order.
    pub fn cards_by_content(&self) -> Vec<String> {
        self.query_texts(
            "SELECT card_number || '|' || series_id || '|' || coalesce(external_id, '') || '|' || status_label \
             || '|' || coalesce(status_reason, '') || '|' || coalesce(cast(customer_id AS text), '') \
             || '|' || coalesce(cast(import_record AS text), '') FROM cards ORDER BY card_number",
        )
    }

    /// The events outbox in id order, without what differs between two runs
    /// of the same work: event ids, card ids and times.
    pub fn comparable_events(&self) -> Vec<Value> {
        self.events()
            .into_iter()
            .map(|mut event| {
                let event_object = event.as_object_mut().unwrap();
                event_object.remove("id");
                event_object.remove("created_at");
                if let Some(payload) = event_object.get_mut("payload").and_then(Value::as_object_mut) {
                    payload.remove("card_id");
                }
                event
            })
            .collect()
    }

    /// The checkpoint of the workspace's card import run (0 before it has one).
    pub fn records_committed(&self) -> i64 {
        self.query_i64("SELECT max(records_committed) FROM runs WHERE kind = 'import_cards'")
            .unwrap_or(0)
    }

    /// Runs a query returning one optional integer on this workspace's database.
    pub fn query_i64(&self, sql: &'static str) -> Option<i64> {
        block_on(async {
            match self.backend {
                Backend::Sqlite => {
                    let pool = sqlx::SqlitePool::connect(&self.url).await.ok()?;
                    let value = sqlx::query_scalar(sql).fetch_one(&pool).await.ok().flatten();
                    pool.close().await;
                    value
                }
                Backend::Postgres | Backend::Citus => {
                    let pool = sqlx::PgPool::connect(&self.url).await.ok()?;
                    let value = sqlx::query_scalar(sql).fetch_one(&pool).await.ok().flatten();
                    pool.close().await;
                    value
                }
            }
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file into the workspace and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write fixture");
        path
    }

    /// A `cardbatch` command bound to this workspace's database, run from its directory.
    pub fn cmd(&self) -> Command {
        // CARDBATCH_TEST_BINARY runs another build, to pin behaviour against
        // it (tests/data/events/README.md).
        let mut cmd = match std::env::var_os("CARDBATCH_TEST_BINARY") {
            Some(binary) => Command::new(binary),
            None => Command::cargo_bin("cardbatch").expect("cardbatch binary"),
        };
        cmd.current_dir(self.dir.path())
            .env("DATABASE_URL", &self.url)
            .env_remove("RUST_LOG");
        cmd
    }

    /// A plain `std::process::Command` for the binary, for tests that spawn processes side by side.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        std::process::Command::new(assert_cmd::cargo::cargo_bin!("cardbatch"))
            .args(args)
            .current_dir(self.dir.path())
            .env("DATABASE_URL", &self.url)
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn cardbatch")
    }

    /// Runs `cardbatch ARGS` and returns its output, whatever the exit code.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run cardbatch")
    }

    /// Runs `cardbatch ARGS`, asserts exit 0, and parses stdout as JSON.
    pub fn ok_json(&self, args: &[&str]) -> Value {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "cardbatch {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout of {args:?} is not JSON ({e}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }

    /// Runs `cardbatch ARGS`, asserts exit 2 and the seeds' error shape on stderr, and returns the code.
    pub fn api_error(&self, args: &[&str]) -> i64 {
        let output = self.run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "cardbatch {args:?}: {stderr}");
        let body: Value =
            serde_json::from_str(stderr.trim()).unwrap_or_else(|e| panic!("stderr is not JSON ({e}): {stderr}"));
        assert_eq!(body["warnings"], serde_json::json!([]));
        assert_eq!(body["errors"][0]["status"], Value::Bool(false));
        assert!(body["errors"][0]["message"].as_str().is_some_and(|m| !m.is_empty()));
        body["errors"][0]["code"].as_i64().expect("numeric code")
    }

    /// Creates a series from flags and returns its id.
    pub fn series(&self, args: &[&str]) -> i64 {
        let mut full = vec!["series", "create"];
        full.extend_from_slice(args);
        self.ok_json(&full)["entity"].as_i64().expect("series id")
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        for (server, name) in &self.postgres {
            block_on(async {
                use sqlx::Connection;
                if let Ok(mut admin) = sqlx::PgConnection::connect(server).await {
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&mut admin).await;
                }
            });
        }
    }
}

pub fn seed(name: &str) -> String {
    Path::new(SEEDS).join(name).display().to_string()
}

/// The `data` array of a `cards generate` response.
pub fn numbers(response: &Value) -> Vec<String> {
    response["data"]
        .as_array()
        .expect("data array")
        .iter()
        .map(|n| n.as_str().expect("number string").to_string())
        .collect()
}

pub const IMPORT_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/import");

impl Workspace {
    /// The org, series and existing card that the import fixtures expect
    /// (see tests/data/import/README.md).
    pub fn import_setup(&self) {
        self.import_setup_in("1");
    }

    /// The same setup in org `org`.
    pub fn import_setup_in(&self, org: &str) {
        let in_org = |command: &str| -> Vec<String> {
            let mut args = vec!["--org".to_string(), org.to_string()];
            args.extend(command.split(' ').map(str::to_string));
            args
        };
        let run = |args: Vec<String>| self.ok_json(&args.iter().map(String::as_str).collect::<Vec<_>>());
        for command in [
            "org set CONF_CARD_NUMBER_LENGTH 10",
            "org set CONF_CARD_NUMBER_PREFIX CX",
            "org set CARD_STATUS_LABELS LOST:SUSPENDED",
            "series create --code LUHN1 --type PHYSICAL --prefix 6001 --length 16 --method LUHN_ALGO",
            "series create --code MOD1 --type DIGITAL --prefix 77 --length 12 --method MOD7_ALGO",
            "series create --code SLEEPY --type DIGITAL --prefix 88 --length 12 --active false",
        ] {
            run(in_org(command));
        }
        let card = self.write(
            "existing.json",
            r#"{"seriesCode":"LUHN1","cardNumber":"6001000000000992"}"#,
        );
        let mut add = in_org("cards add --json");
        add.push(card.to_str().unwrap().to_string());
        run(add);
    }

    /// Copies a fixture from tests/data/import into the workspace.
    pub fn fixture(&self, name: &str) -> PathBuf {
        let contents = std::fs::read(Path::new(IMPORT_DATA).join(name)).expect("fixture");
        self.write(name, contents)
    }

    /// Runs an import with `--json`; returns the exit code and the summary.
    pub fn import(&self, args: &[&str]) -> (i32, Value) {
        let mut full = vec!["import"];
        full.extend_from_slice(args);
        full.push("--json");
        let output = self.run(&full);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let summary = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("no JSON summary from {full:?} ({e}); stderr: {stderr}"));
        (output.status.code().expect("exit code"), summary)
    }

    /// The events outbox as JSON values.
    pub fn events(&self) -> Vec<Value> {
        let output = self.run(&["events", "export"]);
        assert!(output.status.success());
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).expect("event line is JSON"))
            .collect()
    }
}

/// Asserts the summary's invariant: every record read is inserted, unchanged, rejected or already committed.
pub fn assert_accounted(summary: &Value) {
    let n = |key: &str| summary[key].as_u64().unwrap_or_else(|| panic!("{key} in {summary}"));
    assert_eq!(
        n("records_read"),
        n("inserted") + n("unchanged") + n("rejected") + n("already_committed"),
        "{summary}"
    );
    let by_reason: u64 = summary["rejected_by_reason"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(by_reason, n("rejected"), "{summary}");
    assert_eq!(n("events_emitted"), n("inserted"));
}

/// A cards file of `records` rows: mostly valid, every 97th with a broken
/// check digit, every 101st repeating the row before it.
pub fn big_cards_file(records: u64) -> String {
    use cardbatch::numbers::{Method, NumberFormat, NumberGenerator, PermutationKey};
    let generator = NumberGenerator::new(
        NumberFormat::new("6001", "", 16, Method::RandomLuhn).unwrap(),
        PermutationKey([9; 16]),
    );
    let numbers = generator.render_block(1, records as usize);
    let mut text = String::from("card_number,series_code,external_id\n");
    let mut previous = String::new();
    for (i, number) in numbers.iter().enumerate() {
        let number = if i % 101 == 100 {
            previous.clone()
        } else if i % 97 == 0 {
            let mut broken = number.as_bytes().to_vec();
            broken[15] = b'0' + (broken[15] - b'0' + 1) % 10;
            String::from_utf8(broken).unwrap()
        } else {
            number.to_string()
        };
        text.push_str(&format!("{number},LUHN1,CX{i:08}\n"));
        previous = number;
    }
    text
}

/// Sends `signal` (`INT`, `TERM`, `KILL`) to a child process.
pub fn send_signal(child: &std::process::Child, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} failed");
}

/// Another writer holding the database's write lock (SQLite: an open
/// `BEGIN IMMEDIATE`; PostgreSQL: `LOCK TABLE cards IN EXCLUSIVE MODE`)
/// until released or dropped.
pub struct HeldLock {
    runtime: tokio::runtime::Runtime,
    connection: Option<HeldConnection>,
}

enum HeldConnection {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Workspace {
    /// Takes the write lock as another writer would, and holds it.
    pub fn hold_write_lock(&self) -> HeldLock {
        use sqlx::Connection;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let connection = runtime.block_on(async {
            match self.backend {
                Backend::Sqlite => {
                    let mut connection = sqlx::SqliteConnection::connect(&self.url).await.expect("connect");
                    sqlx::raw_sql("BEGIN IMMEDIATE")
                        .execute(&mut connection)
                        .await
                        .expect("lock");
                    HeldConnection::Sqlite(connection)
                }
                Backend::Postgres | Backend::Citus => {
                    let mut connection = sqlx::PgConnection::connect(&self.url).await.expect("connect");
                    sqlx::raw_sql("BEGIN; LOCK TABLE cards IN EXCLUSIVE MODE")
                        .execute(&mut connection)
                        .await
                        .expect("lock");
                    HeldConnection::Postgres(connection)
                }
            }
        });
        HeldLock {
            runtime,
            connection: Some(connection),
        }
    }

    /// Ends every connection cardbatch has open to this workspace's
    /// PostgreSQL database, as a server restart or a network cut would.
    pub fn terminate_cardbatch_connections(&self) -> i64 {
        assert!(self.backend.is_postgres());
        self.query_i64(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = 'cardbatch' AND datname = current_database()",
        )
        .unwrap_or(0)
    }
}

impl HeldLock {
    /// Rolls back and disconnects.
    pub fn release(mut self) {
        self.close();
    }

    fn close(&mut self) {
        use sqlx::Connection;
        if let Some(connection) = self.connection.take() {
            self.runtime.block_on(async {
                match connection {
                    HeldConnection::Sqlite(mut c) => {
                        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut c).await;
                        let _ = c.close().await;
                    }
                    HeldConnection::Postgres(mut c) => {
                        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut c).await;
                        let _ = c.close().await;
                    }
                }
            });
        }
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        self.close();
    }
}

/// The exit code of an import that completed: 4 when its run has rejects
/// (in this invocation or an earlier one), 0 when every record went in.
pub fn completed_exit(summary: &Value) -> i32 {
    if summary["run_totals"]["rejected"].as_u64().expect("run totals") > 0 {
        4
    } else {
        0
    }
}
