//! Bulk inserts (and key lookups) through one prepared statement stepped once per row, on the
//! connection's own SQLite handle: what `sqlite3 .import` does, without
//! building a JSON document per batch for `json_each` to take apart again
//! (16% of an import's time in a profile) and with the outcome of every row
//! (inserted, or left out by `ON CONFLICT DO NOTHING`) known as it happens.
//!
//! The handle is borrowed from sqlx with `lock_handle`, which keeps sqlx's
//! worker thread off it for as long as the guard lives. Every statement is
//! prepared, stepped and finalized within one call that holds the guard, so
//! none outlives it (sqlx closes the handle with `sqlite3_close`, which
//! refuses while a statement is open). Text is bound without a copy
//! (`SQLITE_STATIC`): the statement is finalized before the borrowed rows
//! can go away, which the lifetime on [`Prepared`] enforces.

use std::ffi::{CStr, c_int};
use std::marker::PhantomData;
use std::ptr::NonNull;

use libsqlite3_sys as ffi;

use crate::store::StoreError;

/// A prepared statement whose text parameters borrow data living for `'data`.
pub(super) struct Prepared<'data> {
    handle: NonNull<ffi::sqlite3>,
    statement: NonNull<ffi::sqlite3_stmt>,
    _data: PhantomData<&'data str>,
}

impl<'data> Prepared<'data> {
    /// Prepares `sql` on `handle`.
    ///
    /// # Safety
    /// `handle` must be an open connection that no other thread uses until
    /// this statement is dropped (the caller holds sqlx's `LockedSqliteHandle`).
    pub(super) unsafe fn new(handle: NonNull<ffi::sqlite3>, sql: &str) -> Result<Self, StoreError> {
        let mut statement = std::ptr::null_mut();
        let length = c_int::try_from(sql.len()).map_err(|_| StoreError::Corrupt("statement too long".into()))?;
        // SAFETY: the handle is open and ours (caller's contract); sql points to `length` valid bytes.
        let code = unsafe {
            ffi::sqlite3_prepare_v3(
                handle.as_ptr(),
                sql.as_ptr().cast(),
                length,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut statement,
                std::ptr::null_mut(),
            )
        };
        match NonNull::new(statement) {
            Some(statement) if code == ffi::SQLITE_OK => Ok(Prepared {
                handle,
                statement,
                _data: PhantomData,
            }),
            _ => Err(error(handle, code)),
        }
    }

    pub(super) fn bind_integer(&mut self, index: c_int, value: i64) -> Result<(), StoreError> {
        // SAFETY: the statement is live; a bad index is reported as an error code.
        let code = unsafe { ffi::sqlite3_bind_int64(self.statement.as_ptr(), index, value) };
        self.check(code)
    }

    /// Binds `value` without copying it: it lives as long as the statement may read it.
    pub(super) fn bind_text(&mut self, index: c_int, value: &'data str) -> Result<(), StoreError> {
        let length = c_int::try_from(value.len()).map_err(|_| StoreError::Corrupt("value too long".into()))?;
        // SAFETY: `value` outlives the statement ('data), so SQLITE_STATIC is sound.
        let code = unsafe {
            ffi::sqlite3_bind_text(
                self.statement.as_ptr(),
                index,
                value.as_ptr().cast(),
                length,
                ffi::SQLITE_STATIC(),
            )
        };
        self.check(code)
    }

    pub(super) fn bind_null(&mut self, index: c_int) -> Result<(), StoreError> {
        // SAFETY: the statement is live.
        let code = unsafe { ffi::sqlite3_bind_null(self.statement.as_ptr(), index) };
        self.check(code)
    }

    pub(super) fn bind_optional_text(&mut self, index: c_int, value: Option<&'data str>) -> Result<(), StoreError> {
        match value {
            Some(value) => self.bind_text(index, value),
            None => self.bind_null(index),
        }
    }

    pub(super) fn bind_optional_integer(&mut self, index: c_int, value: Option<i64>) -> Result<(), StoreError> {
        match value {
            Some(value) => self.bind_integer(index, value),
            None => self.bind_null(index),
        }
    }

    /// Runs the statement once (it must not return rows) and readies it for
    /// the next row; returns the rowid of the row inserted, or `None` when
    /// the statement changed nothing (a conflict it was told to skip).
    pub(super) fn insert(&mut self) -> Result<Option<i64>, StoreError> {
        // SAFETY: the statement is live and the handle ours.
        let code = unsafe { ffi::sqlite3_step(self.statement.as_ptr()) };
        // SAFETY: as above; reset keeps the bindings.
        let reset = unsafe { ffi::sqlite3_reset(self.statement.as_ptr()) };
        if code != ffi::SQLITE_DONE {
            return Err(error(self.handle, if reset != ffi::SQLITE_OK { reset } else { code }));
        }
        // SAFETY: the handle is ours; both calls only read the connection's state.
        let (changes, rowid) = unsafe {
            (
                ffi::sqlite3_changes(self.handle.as_ptr()),
                ffi::sqlite3_last_insert_rowid(self.handle.as_ptr()),
            )
        };
        Ok((changes > 0).then_some(rowid))
    }

    /// Steps a query: `true` while it yields a row (read with the column
    /// getters), `false` at its end, when it is reset for the next bindings.
    pub(super) fn next_row(&mut self) -> Result<bool, StoreError> {
        // SAFETY: the statement is live and the handle ours.
        let code = unsafe { ffi::sqlite3_step(self.statement.as_ptr()) };
        match code {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => {
                // SAFETY: as above; reset keeps the bindings.
                unsafe { ffi::sqlite3_reset(self.statement.as_ptr()) };
                Ok(false)
            }
            _ => {
                // SAFETY: as above.
                let reset = unsafe { ffi::sqlite3_reset(self.statement.as_ptr()) };
                Err(error(self.handle, if reset != ffi::SQLITE_OK { reset } else { code }))
            }
        }
    }

    /// How many columns the statement's rows have.
    pub(super) fn column_count(&self) -> c_int {
        // SAFETY: the statement is live.
        unsafe { ffi::sqlite3_column_count(self.statement.as_ptr()) }
    }

    /// Column `index` of the current row as an integer; `None` for NULL.
    pub(super) fn column_integer(&self, index: c_int) -> Option<i64> {
        // SAFETY: the statement is live and on a row (after `next_row` returned true).
        unsafe {
            (ffi::sqlite3_column_type(self.statement.as_ptr(), index) != ffi::SQLITE_NULL)
                .then(|| ffi::sqlite3_column_int64(self.statement.as_ptr(), index))
        }
    }

    /// Column `index` of the current row as text (copied out); `None` for NULL.
    pub(super) fn column_text(&self, index: c_int) -> Option<String> {
        // SAFETY: the statement is live and on a row; the text pointer is
        // valid for `bytes` bytes until the next step, and copied out at once.
        unsafe {
            let text = ffi::sqlite3_column_text(self.statement.as_ptr(), index);
            if text.is_null() {
                return None;
            }
            let bytes = ffi::sqlite3_column_bytes(self.statement.as_ptr(), index) as usize;
            let slice = std::slice::from_raw_parts(text, bytes);
            Some(String::from_utf8_lossy(slice).into_owned())
        }
    }

    fn check(&self, code: c_int) -> Result<(), StoreError> {
        if code == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(error(self.handle, code))
        }
    }
}

impl Drop for Prepared<'_> {
    fn drop(&mut self) {
        // SAFETY: finalized exactly once, while the caller still holds the handle.
        unsafe {
            ffi::sqlite3_finalize(self.statement.as_ptr());
        }
    }
}

/// The connection's last error, in SQLite's words.
fn error(handle: NonNull<ffi::sqlite3>, code: c_int) -> StoreError {
    // SAFETY: the handle is open; sqlite3_errmsg returns a NUL-terminated
    // string owned by the connection, copied out at once.
    let message = unsafe {
        let message = ffi::sqlite3_errmsg(handle.as_ptr());
        if message.is_null() {
            String::from("unknown error")
        } else {
            CStr::from_ptr(message).to_string_lossy().into_owned()
        }
    };
    // SAFETY: as above.
    let extended = unsafe { ffi::sqlite3_extended_errcode(handle.as_ptr()) };
    StoreError::Engine {
        code: if extended != 0 { extended } else { code },
        message,
    }
}

/// Runs `work` where blocking is fine: off the async scheduler on a
/// multi-threaded runtime (`block_in_place`), else in place.
pub(super) fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}
