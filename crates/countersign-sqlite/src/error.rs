//! The SQLite backend's error and its store error kind.

use countersign_core::{StoreError, StoreErrorKind};
use rusqlite::ErrorCode;

/// SQLITE_CONSTRAINT_FOREIGNKEY: the referenced row is missing.
const CONSTRAINT_FOREIGNKEY: i32 = 787;
/// SQLITE_CONSTRAINT_PRIMARYKEY.
const CONSTRAINT_PRIMARYKEY: i32 = 1555;
/// SQLITE_CONSTRAINT_UNIQUE.
const CONSTRAINT_UNIQUE: i32 = 2067;

/// Errors of the SQLite backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteError {
    /// SQLite reported an error.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The named row does not exist (in this tenant).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule or a store invariant refused the write.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The request names something reserved.
    #[error("rejected: {0}")]
    Rejected(&'static str),
    /// A stored value could not be read back.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database was written by a newer countersign.
    #[error("database schema version {found} is newer than this build knows ({known})")]
    SchemaTooNew {
        /// The database's version.
        found: u32,
        /// The newest version this build knows.
        known: u32,
    },
    /// The worker thread is gone.
    #[error("sqlite worker: {0}")]
    Worker(String),
    /// The call panicked on the worker thread. The worker rolled back any
    /// transaction it left open and goes on serving later calls.
    #[error("sqlite worker: the call panicked")]
    Panicked,
    /// Creating the database file failed.
    #[error("creating the database file: {0}")]
    Io(#[from] std::io::Error),
}

impl SqliteError {
    /// Whether SQLite refused a write because a `UNIQUE` or `PRIMARY KEY`
    /// constraint already holds the value.
    pub(crate) fn unique_violation(&self) -> bool {
        matches!(
            self,
            SqliteError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if e.code == ErrorCode::ConstraintViolation
                    && matches!(e.extended_code, CONSTRAINT_PRIMARYKEY | CONSTRAINT_UNIQUE)
        )
    }
}

impl StoreError for SqliteError {
    fn kind(&self) -> StoreErrorKind {
        match self {
            SqliteError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => match e.code {
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreErrorKind::Transient,
                ErrorCode::ConstraintViolation => match e.extended_code {
                    CONSTRAINT_FOREIGNKEY => StoreErrorKind::NotFound,
                    // Unique violations and every other refused constraint.
                    _ => StoreErrorKind::Conflict,
                },
                _ => StoreErrorKind::Other,
            },
            SqliteError::Sqlite(_) => StoreErrorKind::Other,
            SqliteError::NotFound(_) => StoreErrorKind::NotFound,
            SqliteError::Conflict(_) => StoreErrorKind::Conflict,
            SqliteError::Rejected(_) => StoreErrorKind::Rejected,
            SqliteError::Corrupt(_)
            | SqliteError::SchemaTooNew { .. }
            | SqliteError::Panicked
            | SqliteError::Io(_) => StoreErrorKind::Other,
            SqliteError::Worker(_) => StoreErrorKind::Transient,
        }
    }
}
