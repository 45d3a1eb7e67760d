//! The crate's one error type and the mapping of sqlx/Postgres failures to
//! [`StoreErrorKind`]s and retry decisions.

use std::borrow::Cow;
use std::fmt;

use countersign_core::{StoreError, StoreErrorKind};

use crate::retry::Idempotence;

/// Every failure of the PostgreSQL backend.
///
/// [`StoreError::kind`] tells callers what happened without matching on
/// variants: `NotFound`, `Conflict` and `Rejected` for the store's rules,
/// `Transient` for failures a retry may cure (connection loss,
/// serialization failures, deadlocks, server shutdown, pool exhaustion,
/// statement timeouts), `Other` for everything else (corrupt rows, a newer
/// schema, configuration, bugs).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The database's schema is newer than this build knows: nothing was
    /// written. Upgrade the application before using this database.
    #[error("database schema version {found} is newer than this build knows ({known})")]
    SchemaTooNew {
        /// The version recorded in the database.
        found: i64,
        /// The newest version this build knows
        /// ([`SCHEMA_VERSION`](crate::SCHEMA_VERSION)).
        known: u32,
    },
    /// A rule of the store refused the call; nothing was written.
    #[error("{message}")]
    Refused {
        /// `NotFound`, `Conflict` or `Rejected`.
        kind: StoreErrorKind,
        /// What was refused, without any secret.
        message: Cow<'static, str>,
    },
    /// A stored row could not be read back into the domain model.
    #[error("corrupt data in {table}: {message}")]
    Corrupt {
        /// The table the row came from.
        table: &'static str,
        /// What was wrong with it.
        message: String,
    },
    /// The store was configured with invalid options.
    #[error("invalid postgres configuration: {0}")]
    Config(String),
    /// Postgres or the driver failed.
    #[error(transparent)]
    Database(#[from] DbError),
}

impl PgError {
    pub(crate) fn refused(kind: StoreErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        PgError::Refused {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn not_found(what: &'static str) -> Self {
        Self::refused(StoreErrorKind::NotFound, format!("{what} not found"))
    }

    pub(crate) fn corrupt(table: &'static str, message: impl fmt::Display) -> Self {
        PgError::Corrupt {
            table,
            message: message.to_string(),
        }
    }

    /// The SQLSTATE code Postgres reported, if this error came from the server.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            PgError::Database(e) => e.sqlstate(),
            _ => None,
        }
    }

    /// Whether the retry policy may run the failed call again: the error is
    /// transient and either the write certainly did not apply, or the call
    /// is idempotent.
    pub(crate) fn may_retry(&self, idempotence: Idempotence) -> bool {
        match self {
            PgError::Database(e) => match e.retry {
                Retry::Never => false,
                Retry::Always => true,
                Retry::IfIdempotent => idempotence == Idempotence::Idempotent,
            },
            _ => false,
        }
    }
}

impl StoreError for PgError {
    fn kind(&self) -> StoreErrorKind {
        match self {
            PgError::Refused { kind, .. } => *kind,
            PgError::Database(e) => e.kind,
            PgError::SchemaTooNew { .. } | PgError::Corrupt { .. } | PgError::Config(_) => {
                StoreErrorKind::Other
            }
        }
    }
}

/// Whether a failed call may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Not transient, or transient but not worth retrying automatically.
    Never,
    /// Transient, and the call certainly did not apply.
    Always,
    /// Transient, but the write may have applied (the connection broke
    /// after it was sent): retry only idempotent calls.
    IfIdempotent,
}

/// Where in a call a driver error happened: decides whether a broken
/// connection may have let a write apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Before anything could commit: acquiring a connection, reads,
    /// statements inside a transaction before its `COMMIT`.
    Uncommitted,
    /// A statement that commits by itself (autocommit write) or a `COMMIT`:
    /// if the connection breaks without an answer, the outcome is unknown.
    Committing,
}

/// A failure reported by Postgres or the sqlx driver, with the operation
/// it interrupted.
#[derive(Debug)]
pub struct DbError {
    context: &'static str,
    kind: StoreErrorKind,
    retry: Retry,
    sqlstate: Option<String>,
    source: sqlx::Error,
}

impl DbError {
    pub(crate) fn new(context: &'static str, phase: Phase, source: sqlx::Error) -> Self {
        let sqlstate = source
            .as_database_error()
            .and_then(|d| d.code())
            .map(|c| c.into_owned());
        let (kind, retry) = classify(&source, sqlstate.as_deref(), phase);
        Self {
            context,
            kind,
            retry,
            sqlstate,
            source,
        }
    }

    /// The SQLSTATE code Postgres reported, if the server reported one.
    pub fn sqlstate(&self) -> Option<&str> {
        self.sqlstate.as_deref()
    }

    /// What the store was doing when it failed.
    pub fn context(&self) -> &'static str {
        self.context
    }

    /// The kind of failure.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "postgres {} error while {}: {}",
            self.kind, self.context, self.source
        )
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Map a driver error to a store error kind and a retry decision.
///
/// A SQLSTATE from the server means the statement (and, inside a
/// transaction, the transaction) failed as a whole, so a transient one is
/// always safe to retry. A broken connection without an answer is safe to
/// retry only if nothing could have committed yet.
fn classify(e: &sqlx::Error, code: Option<&str>, phase: Phase) -> (StoreErrorKind, Retry) {
    use StoreErrorKind::{Conflict, NotFound, Other, Transient};
    let unanswered = match phase {
        Phase::Uncommitted => Retry::Always,
        Phase::Committing => Retry::IfIdempotent,
    };
    match e {
        sqlx::Error::Database(_) => match code {
            // unique_violation
            Some("23505") => (Conflict, Retry::Never),
            // foreign_key_violation: the referenced tenant or user is gone
            Some("23503") => (NotFound, Retry::Never),
            // serialization_failure, deadlock_detected, admin/crash/cannot
            // connect now shutdowns, too_many_connections, connection
            // exceptions: the server refused or aborted the statement.
            Some("40001" | "40P01" | "57P01" | "57P02" | "57P03" | "53300") => {
                (Transient, Retry::Always)
            }
            Some(c) if c.starts_with("08") => (Transient, Retry::Always),
            // query_canceled (statement_timeout), lock_not_available: a
            // retry may succeed, but retrying automatically would only
            // multiply the load that caused it.
            Some("57014" | "55P03") => (Transient, Retry::Never),
            _ => (Other, Retry::Never),
        },
        sqlx::Error::PoolTimedOut => (Transient, Retry::Always),
        sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => (Transient, unanswered),
        _ => (Other, Retry::Never),
    }
}

/// `map_err` adapter for reads and uncommitted transaction statements.
pub(crate) fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> PgError {
    move |e| PgError::Database(DbError::new(context, Phase::Uncommitted, e))
}

/// `map_err` adapter for autocommit writes and `COMMIT`.
pub(crate) fn db_commit(context: &'static str) -> impl FnOnce(sqlx::Error) -> PgError {
    move |e| PgError::Database(DbError::new(context, Phase::Committing, e))
}

/// `map_err` adapter for a statement whose unique violation is one of the
/// store's rules: it becomes `Conflict` with `message`; any other failure
/// maps as [`db`] (`Uncommitted`) or [`db_commit`] (`Committing`) would.
pub(crate) fn unique_violation(
    phase: Phase,
    context: &'static str,
    message: &'static str,
) -> impl FnOnce(sqlx::Error) -> PgError {
    move |e| {
        let unique = e
            .as_database_error()
            .is_some_and(|d| d.is_unique_violation());
        if unique {
            PgError::refused(StoreErrorKind::Conflict, message)
        } else {
            PgError::Database(DbError::new(context, phase, e))
        }
    }
}

/// Whether `e` is the server's foreign-key violation (a referenced tenant
/// or user is missing).
pub(crate) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_foreign_key_violation())
}
