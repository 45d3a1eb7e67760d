//! SQLite backend for countersign (rusqlite with bundled SQLite): the
//! embedded default. Applications should depend on the `countersign`
//! facade (feature `sqlite`).
//!
//! [`SqliteStore`] implements every store trait of countersign-core on a
//! single database file (or an in-memory database). Guarantees:
//!
//! - **No blocking on async threads.** Every write, and every read but
//!   the pooled point reads below, runs on the store's own worker thread,
//!   which owns the writing connection; async callers wait on a channel.
//!   The queue to the worker is bounded
//!   ([`QUEUE_CAPACITY`] calls): beyond it a caller waits asynchronously
//!   for a slot (in order; never blocking its thread), and a caller
//!   cancelled while waiting queues nothing. A call that panics on the
//!   worker answers [`SqliteError::Panicked`]; the worker rolls back any
//!   transaction it left open and keeps serving later calls. A pooled
//!   read runs on the caller's thread, but never waits for a lock: its
//!   cost is one indexed lookup (from SQLite's page cache, or the file).
//! - **Pooled reads.** A store opened on a file in WAL mode also holds
//!   [`SqliteOptions::readers`] read-only connections. Session validation
//!   ([`SessionStore::validate_session`](countersign_core::SessionStore::validate_session))
//!   and the session lookup by id
//!   ([`SessionStore::session`](countersign_core::SessionStore::session))
//!   read on one of them, without the hop to the worker: one indexed
//!   SELECT in a read transaction of its own (none outlives its call), so
//!   it sees every write committed before the call began, by this store
//!   or another process (read-your-writes: a session ended through the
//!   store is refused by the next validation). A validation answers from
//!   a reader only a live session whose renewal is not due; anything else
//!   (unknown, ended, due for renewal) is decided on the worker exactly
//!   as without readers, so the renewal stays one atomic write. The
//!   lookups of a login (tenant, user, failure record, factor settings
//!   and credentials, methods, flow) read on a reader too, each one
//!   statement, or a few in one read transaction (one snapshot). Every
//!   other call, read or write, goes to the worker. A reader never waits:
//!   with every reader busy, or on any error (a lock held, a panic), the
//!   call takes the worker path. An in-memory database, the empty path,
//!   `:memory:` and `file:` URIs have no readers (their connections
//!   cannot share the database), and neither has a file SQLite could not
//!   put in WAL mode.
//! - **Session cache** (off by default;
//!   [`SqliteOptions::session_cache`]). A live session a reader found,
//!   not due for renewal, is kept in memory and answered again without
//!   SQL, until any call of this store (any clone) finishes on the worker
//!   (every write does), the time to live passes, the session reaches a
//!   deadline or its renewal falls due, whichever comes first; at most
//!   [`SESSION_CACHE_CAPACITY`] sessions are kept. So a change made
//!   through this store (a logout, a revocation, a step-up, an erasure)
//!   is seen by every validation that starts after it returned, exactly as
//!   without the cache; a change made by another process on the same file
//!   is seen within the time to live. Turn it on where this store is the
//!   only writer of its sessions (the `countersign` server does).
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
//!   single-use consumption (`DELETE ... RETURNING`), and a rate-limit
//!   hit (one `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` that opens
//!   or counts in the key's window). A linked identity is
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
//! thread), `readers` (the pool of read-only connections) and `cache`
//! (the session cache).

mod cache;
mod codec;
mod error;
mod migrate;
mod readers;
mod store;
mod worker;

use std::path::Path;
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags};

use cache::SessionCache;
use readers::Readers;

pub use cache::SESSION_CACHE_CAPACITY;
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

/// How [`SqliteStore::open_with`] opens a database file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// How many read-only connections serve pooled reads (see the crate
    /// docs). Default: one per available core (as the standard library
    /// counts them), at most [`MAX_DEFAULT_READERS`]; 2 if it cannot tell.
    /// `0` sends every call to the worker thread, as before the pool.
    pub readers: usize,
    /// Apply pending migrations on opening. Default `true`. Off, the store
    /// still refuses a schema newer than this build (as
    /// [`SqliteStore::open_unmigrated`]).
    pub migrate: bool,
    /// Keep validated sessions in memory, each for at most this long
    /// (default `None`: no cache). See "Session cache" in the crate docs:
    /// a change made through this store is seen at once, one made by
    /// another process on the same file only after this time.
    pub session_cache: Option<std::time::Duration>,
}

/// The most read-only connections [`SqliteOptions::default`] opens, however
/// many cores the machine has (each holds its own page cache).
pub const MAX_DEFAULT_READERS: usize = 8;

/// Prepared statements each connection keeps (rusqlite keeps 16 by
/// default): room for every statement the store prepares through the
/// cache (about 70), so the statements of a hot path (a login's reads and
/// writes, a session check) are not pushed out by other calls and parsed
/// again.
pub(crate) const STATEMENT_CACHE: usize = 128;

impl Default for SqliteOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Self {
            readers: cores.clamp(1, MAX_DEFAULT_READERS),
            migrate: true,
            session_cache: None,
        }
    }
}

impl SqliteOptions {
    /// The defaults (see each field).
    pub fn new() -> Self {
        Self::default()
    }

    /// With `n` read-only connections (`0`: none, every call on the
    /// worker).
    #[must_use]
    pub fn readers(mut self, n: usize) -> Self {
        self.readers = n;
        self
    }

    /// With migrations applied on opening, or not.
    #[must_use]
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// With validated sessions kept in memory for at most `ttl` (see
    /// [`session_cache`](Self::session_cache)).
    #[must_use]
    pub fn session_cache(mut self, ttl: std::time::Duration) -> Self {
        self.session_cache = Some(ttl);
        self
    }
}

/// Whether `path` names a database file other connections can open: not
/// the empty path (a private temporary database), not `:memory:`, not a
/// `file:` URI (which may name either, or carry a mode a read-only
/// connection cannot take).
fn shareable_file(path: &Path) -> bool {
    let name = path.as_os_str().as_encoded_bytes();
    !(name.is_empty() || name == b":memory:" || name.starts_with(b"file:"))
}

/// The SQLite store. Clones share the connection, its worker thread and
/// the pool of read-only connections.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    worker: Arc<Worker>,
    readers: Option<Arc<Readers>>,
    sessions: Option<Arc<SessionCache>>,
}

impl SqliteStore {
    /// Open (creating if needed) the database file at `path`, in WAL mode,
    /// and apply pending migrations, with the default [`SqliteOptions`]
    /// (a pool of read-only connections). Refuses a newer schema. A file it
    /// creates is readable by its owner only (mode `0600` on Unix; see the
    /// crate docs).
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// [`open`](Self::open) with `options`: how many read-only connections
    /// serve pooled reads, and whether to migrate. The readers are opened
    /// after the migrations (if any), so they see the current schema; they
    /// are opened only for a plain file path in WAL mode (see the crate
    /// docs).
    pub async fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        let path = path.as_ref().to_owned();
        let writer_path = path.clone();
        let mut store = Self::start(move || {
            create_private(&writer_path)?;
            let conn = Connection::open_with_flags(
                &writer_path,
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
        if options.migrate {
            store.migrate().await?;
        } else {
            store.schema_version().await?;
        }
        if options.readers > 0 && shareable_file(&path) {
            let n = options.readers;
            // Opened on the worker thread: opening files is blocking I/O.
            let readers = store
                .call(move |c| {
                    let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
                    if !mode.eq_ignore_ascii_case("wal") {
                        return Ok(None);
                    }
                    Readers::open(&path, n).map(Some)
                })
                .await?;
            store.readers = readers.map(Arc::new);
        }
        if let Some(ttl) = options.session_cache {
            let cache = SessionCache::new(ttl, store.worker.finished());
            store.sessions = Some(Arc::new(cache));
        }
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
    /// migrate explicitly, or to serve a database migrated by someone
    /// else). Still refuses a schema newer than this build. Creates a
    /// missing file as [`open`](Self::open) does (owner only). The same as
    /// [`open_with`](Self::open_with) with
    /// `SqliteOptions::default().migrate(false)`: the read-only connections
    /// are opened too (reads of tables not yet created fail on them and
    /// fall back to the worker, which answers SQLite's error).
    pub async fn open_unmigrated(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default().migrate(false)).await
    }

    /// How many read-only connections this store was opened with (`0` for
    /// an in-memory database, one opened without them, or one SQLite could
    /// not put in WAL mode). A connection a panic interrupted is dropped
    /// rather than reused, so fewer may be in service.
    pub fn readers(&self) -> usize {
        self.readers.as_ref().map_or(0, |r| r.size())
    }

    async fn start(open: impl FnOnce() -> Result<Connection> + Send + 'static) -> Result<Self> {
        let worker = Worker::spawn(move || {
            let conn = open()?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            conn.pragma_update(None, "foreign_keys", "ON")?;
            Ok(conn)
        })
        .await?;
        Ok(Self {
            worker: Arc::new(worker),
            readers: None,
            sessions: None,
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

    /// Run the pure read `f` on an idle read-only connection, on the
    /// calling thread; `None` when the store has no readers, none is idle,
    /// or the read failed: the caller then reads through the worker. Only
    /// for single-statement reads (each sees the latest commit).
    pub(crate) fn try_read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Option<T> {
        self.readers.as_ref()?.try_read(f)
    }

    /// As [`try_read`](Self::try_read), for reads of several statements,
    /// all on one snapshot.
    pub(crate) fn try_snapshot<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Option<T> {
        self.readers.as_ref()?.try_snapshot(f)
    }

    /// The session cache, if the store keeps one.
    pub(crate) fn session_cache(&self) -> Option<&SessionCache> {
        self.sessions.as_deref()
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
