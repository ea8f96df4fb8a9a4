//! How an import session reaches its database, on either backend. Either way
//! it is one connection for the whole run: its caches (and, on PostgreSQL,
//! its staging table) stay warm from batch to batch.

use sqlx::pool::PoolConnection;
use sqlx::{Database, Transaction};

pub(crate) enum Link<DB: Database> {
    /// A real run: its write transactions, one or more whole batches each, on this connection.
    Connection(PoolConnection<DB>),
    /// A dry run: one transaction for everything, rolled back when the session closes.
    DryRun(Transaction<'static, DB>),
}

impl<DB: Database> Link<DB> {
    pub(crate) fn connection(&mut self) -> &mut DB::Connection {
        match self {
            Link::Connection(connection) => connection,
            Link::DryRun(transaction) => transaction,
        }
    }

    /// Rolls a dry run back; a real run has nothing left to undo.
    pub(crate) async fn close(self) -> Result<(), sqlx::Error> {
        match self {
            Link::DryRun(transaction) => transaction.rollback().await,
            Link::Connection(_) => Ok(()),
        }
    }
}
