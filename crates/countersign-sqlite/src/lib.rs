//! SQLite backend for countersign (rusqlite with bundled SQLite): the
//! embedded default. Applications should depend on the `countersign`
//! facade (feature `sqlite`).
//!
//! [`SqliteStore`] implements every store trait of countersign-core on a
//! single database file (or an in-memory database). Guarantees:
//!
//! - **No blocking on async threads.** Every SQLite call runs on the
//!   store's own worker thread, which owns the connection; async callers
//!   wait on a channel. The queue to the worker is bounded
//!   ([`QUEUE_CAPACITY`] calls): beyond it a caller waits asynchronously
//!   for a slot (in order; never blocking its thread), and a caller
//!   cancelled while waiting queues nothing. A call that panics on the
//!   worker answers [`SqliteError::Panicked`]; the worker rolls back any
//!   transaction it left open and keeps serving later calls.
//! - **Private files.** [`SqliteStore::open`] and
//!   [`SqliteStore::open_unmigrated`] create a new database file readable
//!   and writable by its owner only (mode `0600`, on Unix); SQLite gives
//!   the `-wal` and `-shm` files it creates the database file's mode. An
//!   existing file keeps the mode it has, and a `file:` URI is created by
//!   SQLite with its default mode (`0644` less the umask): pass a plain
//!   path for the `0600` guarantee.
//! - **Atomicity.** Multi-statement operations run in one `IMMEDIATE`
//!   transaction; compare-and-save, failed-attempt counting and state
//!   changes are single statements, and so are a verification's
//!   compare-and-save on its send count, its failure count and its
//!   single-use consumption (`DELETE ... RETURNING`). A linked identity is
//!   unique by its primary key (tenant, issuer, subject); a link, the user
//!   it may create and its audit event commit in one transaction. Erasing
//!   a user removes its verifications and links by foreign-key cascade.
//!   Several processes may share one file:
//!   SQLite's locks serialise them (WAL mode, 5 s busy timeout).
//! - **RBAC.** Each RBAC change, its audit event and the bump of the
//!   tenant's RBAC version commit in one transaction; deleting a service,
//!   role, permission or user removes the grants and assignments naming it
//!   by foreign-key cascade in that transaction. A snapshot is read in one
//!   read transaction (one version, even while other connections write),
//!   and both versions an authorization cache checks come from one
//!   statement.
//! - **Schema.** Versioned migrations ship inside the crate and are applied
//!   by [`SqliteStore::migrate`], idempotently, in one transaction. A
//!   database whose schema is newer than this build is refused with
//!   [`SqliteError::SchemaTooNew`] before anything is written.
//! - Foreign keys are on; tenant id is part of every key and every lookup.
//!
//! The modules follow the shape every backend shares: `error` (the error
//! and its kind), `codec` (column lists and row decoders), `migrate`,
//! `store/` (one file per store trait), plus `worker` (the connection's
//! thread).

mod codec;
mod error;
mod migrate;
mod store;
mod worker;

use std::path::Path;
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags};

pub use error::SqliteError;
pub use migrate::SCHEMA_VERSION;
pub use worker::QUEUE_CAPACITY;
use worker::Worker;

/// `Result` with [`SqliteError`].
pub type Result<T, E = SqliteError> = std::result::Result<T, E>;

/// Create the database file at `path` with mode `0600` if it does not
/// exist, so SQLite opens a file (and creates `-wal` and `-shm` files) that
/// only its owner can read. An existing file is left as it is; `:memory:`,
/// the empty path (a temporary database) and `file:` URIs are SQLite's.
#[cfg(unix)]
fn create_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = path.as_os_str().as_encoded_bytes();
    if name.is_empty() || name == b":memory:" || name.starts_with(b"file:") {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(SqliteError::Io(e)),
    }
}

/// Elsewhere SQLite creates the file with the platform's defaults.
#[cfg(not(unix))]
fn create_private(_path: &Path) -> Result<()> {
    Ok(())
}

/// The SQLite store. Clones share the connection and its worker thread.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    worker: Arc<Worker>,
}

impl SqliteStore {
    /// Open (creating if needed) the database file at `path`, in WAL mode,
    /// and apply pending migrations. Refuses a newer schema. A file it
    /// creates is readable by its owner only (mode `0600` on Unix; see the
    /// crate docs).
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        let store = Self::start(move || {
            create_private(&path)?;
            let conn = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            Ok(conn)
        })
        .await?;
        store.migrate().await?;
        Ok(store)
    }

    /// A private in-memory database (gone when the last clone drops), with
    /// migrations applied.
    pub async fn open_in_memory() -> Result<Self> {
        let store = Self::start(|| Ok(Connection::open_in_memory()?)).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Open the file at `path` without applying migrations (to inspect or
    /// migrate explicitly). Still refuses a schema newer than this build.
    /// Creates a missing file as [`open`](Self::open) does (owner only).
    pub async fn open_unmigrated(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        let store = Self::start(move || {
            create_private(&path)?;
            let conn = Connection::open(&path)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            Ok(conn)
        })
        .await?;
        store.schema_version().await?;
        Ok(store)
    }

    async fn start(open: impl FnOnce() -> Result<Connection> + Send + 'static) -> Result<Self> {
        let worker = Worker::spawn(move || {
            let conn = open()?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            Ok(conn)
        })
        .await?;
        Ok(Self {
            worker: Arc::new(worker),
        })
    }

    /// Run `f` on the store's own connection, on its worker thread, in
    /// turn with every other store call. An escape hatch for inspection,
    /// maintenance and benchmarks: writes made here bypass the store's
    /// invariants.
    pub async fn with_connection<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.worker
            .call(move |c| f(c).map_err(SqliteError::from))
            .await
    }

    /// Run `f` on the worker thread with the connection.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        self.worker.call(f).await
    }

    /// The schema version of the database (0 for an empty one). Errors with
    /// [`SqliteError::SchemaTooNew`] if it is newer than this build.
    pub async fn schema_version(&self) -> Result<u32> {
        self.call(|c| migrate::current_version(c)).await
    }

    /// Apply pending migrations in one transaction; idempotent. Returns the
    /// schema version. Refuses, writing nothing, a database whose schema is
    /// newer than this build knows.
    pub async fn migrate(&self) -> Result<u32> {
        self.call(migrate::migrate).await
    }
}
