//! Waiting for SQLite's write lock, and the lock that keeps one run to one
//! process.
//!
//! SQLite lets one writer in at a time. Every write transaction of cardbatch
//! starts with `BEGIN IMMEDIATE` (or the migrations), and when another
//! process holds the lock that statement waits in short slices of SQLite's
//! own busy handler ([`BUSY_SLICE`]). Between slices cardbatch says once on
//! stderr what it is waiting for, and gives up with [`StoreError::Locked`]
//! when `--lock-timeout` has passed.
//!
//! A run is imported by one process at a time: the session holds an
//! exclusive `flock` on a lock file beside the database for as long as it
//! writes the run. The kernel drops the lock when the process ends, however
//! it ends, so a crashed run is never left locked. A second process of the
//! same run waits for it (saying so once) up to `--lock-timeout`, then finds
//! the run done or resumes it; past the timeout it fails with
//! [`StoreError::RunInProgress`].

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::SqliteConnection;

use crate::store::StoreError;

/// How long SQLite's busy handler waits before cardbatch looks again.
pub(super) const BUSY_SLICE: Duration = Duration::from_millis(250);

/// How a store waits for another process's write lock.
#[derive(Debug, Clone)]
pub(crate) struct LockWait {
    /// The database as messages name it.
    database: String,
    timeout: Duration,
    /// Whether to say on stderr that it is waiting (not with `--quiet`).
    announce: bool,
    announced: Arc<AtomicBool>,
}

/// How often a process waiting for a run's lock tries again.
const RUN_LOCK_POLL: Duration = Duration::from_millis(100);

impl LockWait {
    pub(crate) fn new(database: String, timeout: Duration, announce: bool) -> Self {
        LockWait {
            database,
            timeout,
            announce,
            announced: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Runs `attempt` until it does not fail for a busy database, or until
    /// the timeout has passed.
    pub(crate) async fn retry<T, E, F, Fut>(&self, mut attempt: F) -> Result<T, StoreError>
    where
        E: Into<StoreError>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let started = Instant::now();
        loop {
            match attempt().await.map_err(Into::into) {
                Err(error) => self.wait_again(error, started)?,
                done => return done,
            }
        }
    }

    /// `BEGIN IMMEDIATE` on `connection`, once the write lock is ours.
    pub(crate) async fn begin_immediate(&self, connection: &mut SqliteConnection) -> Result<(), StoreError> {
        let started = Instant::now();
        loop {
            match sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut *connection).await {
                Ok(_) => return Ok(()),
                Err(error) => self.wait_again(error.into(), started)?,
            }
        }
    }

    /// Passes `error` on unless it is a busy database and the wait that
    /// began at `started` may go on (saying so on stderr the first time).
    fn wait_again(&self, error: StoreError, started: Instant) -> Result<(), StoreError> {
        if !matches!(&error, StoreError::Database(error) if is_busy(error)) {
            return Err(error);
        }
        if started.elapsed() >= self.timeout {
            return Err(StoreError::Locked {
                database: self.database.clone(),
                waited: started.elapsed(),
            });
        }
        if self.announce && !self.announced.swap(true, Ordering::Relaxed) {
            eprintln!(
                "cardbatch: waiting for the write lock on {}, held by another writer (up to {} s, --lock-timeout)",
                self.database,
                self.timeout.as_secs()
            );
        }
        Ok(())
    }
}

/// True for SQLite's BUSY and LOCKED result codes.
pub(crate) fn is_busy(error: &sqlx::Error) -> bool {
    let code = match error {
        sqlx::Error::Database(db) => db.code().and_then(|code| code.parse::<i32>().ok()),
        _ => None,
    };
    matches!(code.map(|code| code & 0xff), Some(5 | 6))
}

/// The lock that keeps a run to one process; released when dropped.
#[derive(Debug)]
pub(super) struct RunLock {
    path: PathBuf,
    file: File,
}

impl RunLock {
    /// Takes the lock of run `run_id` of the database at `database`, waiting
    /// for another process that holds it up to the timeout of `wait`.
    pub(super) async fn acquire(database: &Path, run_id: i64, wait: &LockWait) -> Result<RunLock, StoreError> {
        let started = Instant::now();
        loop {
            match RunLock::try_acquire(database, run_id) {
                Err(StoreError::RunInProgress { .. }) if started.elapsed() < wait.timeout => {
                    if started.elapsed() < RUN_LOCK_POLL && wait.announce {
                        eprintln!(
                            "cardbatch: waiting for run {run_id} of this input, in progress in another process (up to {} s, --lock-timeout)",
                            wait.timeout.as_secs()
                        );
                    }
                    tokio::time::sleep(RUN_LOCK_POLL).await;
                }
                done => return done,
            }
        }
    }

    /// Takes the lock, or fails at once with [`StoreError::RunInProgress`].
    fn try_acquire(database: &Path, run_id: i64) -> Result<RunLock, StoreError> {
        let mut name = database.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".run-{run_id}.lock"));
        let path = database.with_file_name(name);
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| lock_file_error(&path, e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => return Err(StoreError::RunInProgress { run_id }),
                Err(std::fs::TryLockError::Error(e)) => return Err(lock_file_error(&path, e)),
            }
            // The holder before us removes the file before it unlocks; if it
            // did so after we opened it, we hold a lock on a file nobody else
            // can find, so open the path again.
            if same_file(&file, &path) {
                return Ok(RunLock { path, file });
            }
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Removed while still locked, so nobody can take a lock on a file that is going away.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

fn lock_file_error(path: &Path, error: std::io::Error) -> StoreError {
    StoreError::Io(format!("cannot use the run lock file {}: {error}", path.display()))
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_lock_is_held_by_one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("cards.db");
        let first = RunLock::try_acquire(&database, 7).unwrap();
        assert!(matches!(
            RunLock::try_acquire(&database, 7),
            Err(StoreError::RunInProgress { run_id: 7 })
        ));
        // Another run of the same database is free.
        let other = RunLock::try_acquire(&database, 8).unwrap();
        drop(first);
        let again = RunLock::try_acquire(&database, 7).unwrap();
        drop((other, again));
        // Nothing is left beside the database once the locks are released.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
