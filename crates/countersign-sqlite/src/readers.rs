//! The pool of read-only connections that serves hot point reads (session
//! validation, and the lookups of a login: tenant, user, failures,
//! factors, methods, flows) without the hop to the worker thread.
//!
//! Guarantees:
//!
//! - **Reads only.** Each connection is opened `SQLITE_OPEN_READONLY`:
//!   SQLite itself refuses any write on it. Every write stays on the
//!   worker's connection, with its atomicity unchanged.
//! - **Fresh snapshot per call.** A reader runs one statement in
//!   autocommit mode (or, for [`Readers::try_snapshot`], a few in one read
//!   transaction), and the statement is reset before the connection goes
//!   back to the pool, so every call starts a new WAL read transaction:
//!   it sees every write committed before it began, by this store or any
//!   other connection. A connection that somehow holds a transaction open
//!   is dropped, not pooled.
//! - **Never waits.** A caller takes an idle connection or none: when every
//!   reader is busy, or a read fails for any reason (a busy lock, an error,
//!   a panic), [`Readers::try_read`] answers `None` and the caller takes
//!   the worker path, which decides as before. Readers have no busy
//!   timeout, so a read never waits for a lock on the caller's thread; its
//!   cost is one indexed lookup (page cache, or the file when cold).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags};

use crate::Result;

/// Idle read-only connections to one database file.
pub(crate) struct Readers {
    idle: Mutex<Vec<Connection>>,
    size: usize,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers").field("size", &self.size).finish()
    }
}

/// A connection checked out of the pool; back in it on drop unless it
/// holds a transaction open (or was taken out after a panic).
struct Lease<'a> {
    pool: &'a Readers,
    conn: Option<Connection>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if !conn.is_autocommit() {
            return;
        }
        if let Ok(mut idle) = self.pool.idle.lock() {
            idle.push(conn);
        }
    }
}

impl Readers {
    /// Open `n` read-only connections to the database file at `path` (whose
    /// writer already put it in WAL mode).
    pub(crate) fn open(path: &Path, n: usize) -> Result<Self> {
        let mut idle = Vec::with_capacity(n);
        for _ in 0..n {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            // Never wait for a lock on the caller's thread: a busy reader
            // answers at once and the caller takes the worker path.
            conn.busy_timeout(std::time::Duration::ZERO)?;
            conn.set_prepared_statement_cache_capacity(crate::STATEMENT_CACHE);
            idle.push(conn);
        }
        Ok(Self {
            idle: Mutex::new(idle),
            size: n,
        })
    }

    /// How many connections the pool was opened with.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Run the read `f` on an idle connection, on the calling thread.
    /// `None` when no connection is idle or the read failed or panicked:
    /// the caller then reads through the worker.
    pub(crate) fn try_read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Option<T> {
        let conn = self.idle.lock().ok()?.pop()?;
        let mut lease = Lease {
            pool: self,
            conn: Some(conn),
        };
        let out = catch_unwind(AssertUnwindSafe(|| lease.conn.as_ref().map(f)));
        match out {
            Ok(read) => read?.ok(),
            Err(_) => {
                // Whatever state the panic left it in, the connection goes.
                lease.conn = None;
                None
            }
        }
    }

    /// As [`try_read`](Self::try_read), for reads of several statements:
    /// `f` runs in one read transaction, so all of them see one snapshot
    /// (the latest commit when the first began). A transaction left open
    /// (a failed commit) drops the connection.
    pub(crate) fn try_snapshot<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Option<T> {
        self.try_read(|c| {
            let tx = c.unchecked_transaction()?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
    }
}
