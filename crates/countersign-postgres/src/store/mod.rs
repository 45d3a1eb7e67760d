//! The store traits in SQL, one file per trait of countersign-core.
//!
//! Every trait method reads the same way: build the statement, then run it
//! under the store's [`RetryPolicy`](crate::RetryPolicy), saying whether a
//! second run would be the same as one
//! ([`Idempotence`](crate::retry::Idempotence)). The helpers here
//! are what the files share: running a statement and decoding its rows,
//! transactions, the tenant lock and the compare-and-save answer.

mod audit;
mod factors;
mod federated;
mod flows;
mod identity;
mod keys;
mod policies;
mod ratelimit;
mod rbac;
mod sessions;
mod verification;

use countersign_core::{StoreErrorKind, TenantId};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgExecutor, PgRow};
use sqlx::query::Query;
use sqlx::{Postgres, Row, Transaction};

use crate::error::{PgError, db, db_commit};
use crate::retry::Idempotence::Idempotent;
use crate::{PostgresStore, Result};

/// A statement with its parameters bound, ready to run once.
pub(crate) type Statement = Query<'static, Postgres, PgArguments>;

/// A transaction on the main pool.
pub(crate) type Tx = Transaction<'static, Postgres>;

/// At most one row of `stmt` on `on`, decoded by `decode`; `err` maps a
/// driver error ([`db`] for reads, [`db_commit`] for autocommit writes).
async fn optional<'c, T>(
    stmt: Statement,
    on: impl PgExecutor<'c>,
    err: impl FnOnce(sqlx::Error) -> PgError,
    decode: impl FnOnce(&PgRow) -> Result<T>,
) -> Result<Option<T>> {
    let row = stmt.fetch_optional(on).await.map_err(err)?;
    row.as_ref().map(decode).transpose()
}

/// Every row of `stmt` on `on`, each decoded by `decode`.
async fn all<'c, T>(
    stmt: Statement,
    on: impl PgExecutor<'c>,
    err: impl FnOnce(sqlx::Error) -> PgError,
    decode: impl FnMut(&PgRow) -> Result<T>,
) -> Result<Vec<T>> {
    let rows = stmt.fetch_all(on).await.map_err(err)?;
    rows.iter().map(decode).collect()
}

/// Run `stmt` on `on`; the number of rows it wrote.
async fn execute<'c>(
    stmt: Statement,
    on: impl PgExecutor<'c>,
    err: impl FnOnce(sqlx::Error) -> PgError,
) -> Result<u64> {
    let done = stmt.execute(on).await.map_err(err)?;
    Ok(done.rows_affected())
}

/// The answer of a compare-and-save statement, which selects two booleans:
/// `found` (the row it guards exists) and `saved` (the write happened).
/// Whether it saved; an error naming `missing` if the row was not found.
async fn compare_and_save<'c>(
    stmt: Statement,
    on: impl PgExecutor<'c>,
    context: &'static str,
    missing: &'static str,
) -> Result<bool> {
    let row = stmt.fetch_one(on).await.map_err(db_commit(context))?;
    let found: bool = row.try_get("found").map_err(db(context))?;
    let saved: bool = row.try_get("saved").map_err(db(context))?;
    if !found {
        return Err(PgError::not_found(missing));
    }
    Ok(saved)
}

/// Commit `tx`; a failure there may have committed (see [`db_commit`]).
pub(crate) async fn commit(tx: Tx, context: &'static str) -> Result<()> {
    tx.commit().await.map_err(db_commit(context))
}

/// Lock the tenant row for the rest of the transaction (serialising the
/// invariant checks and key rotations of one tenant); whether the tenant
/// exists.
async fn lock_tenant(tx: &mut Tx, tenant: TenantId) -> Result<bool> {
    let row = sqlx::query("SELECT 1 FROM cs_tenants WHERE id = $1 FOR NO KEY UPDATE")
        .bind(tenant.as_uuid())
        .fetch_optional(&mut **tx)
        .await
        .map_err(db("locking the tenant"))?;
    Ok(row.is_some())
}

/// A refusal of kind `Conflict`: a rule of the store would break.
fn conflict(what: &'static str) -> PgError {
    PgError::refused(StoreErrorKind::Conflict, what)
}

/// A refusal of kind `Rejected` if `cond` holds.
fn reject_if(cond: bool, what: &'static str) -> Result<()> {
    if cond {
        Err(PgError::refused(StoreErrorKind::Rejected, what))
    } else {
        Ok(())
    }
}

/// A `u32` limit as a SQL `LIMIT`.
fn limit(n: u32) -> i64 {
    i64::from(n)
}

impl PostgresStore {
    /// Begin a transaction on the main pool.
    async fn begin(&self) -> Result<Tx> {
        self.write
            .begin()
            .await
            .map_err(db("beginning a transaction"))
    }

    /// A connection of the main pool for one autocommit write: a failure to
    /// get one certainly wrote nothing, so any call may retry it.
    async fn conn(&self) -> Result<PoolConnection<Postgres>> {
        self.write
            .acquire()
            .await
            .map_err(db("acquiring a connection"))
    }

    /// At most one row of `stmt`, a read that may guard a security decision,
    /// on the main pool, decoded by `decode`. Every read but the
    /// [`replica_lookup_all`](Self::replica_lookup_all) ones goes here: a
    /// lagging replica must not show a suspended user as active, a locked
    /// one as unlocked or a replaced credential as current.
    ///
    /// Reads write nothing, so each runs under the retry policy as
    /// idempotent, named `op`; `stmt` builds the statement for each try.
    async fn lookup<T>(
        &self,
        op: &'static str,
        context: &'static str,
        stmt: impl Fn() -> Statement,
        decode: impl Fn(&PgRow) -> Result<T>,
    ) -> Result<Option<T>> {
        self.retry
            .run(op, Idempotent, || {
                optional(stmt(), &self.write, db(context), &decode)
            })
            .await
    }

    /// Every row of `stmt`, a read that may guard a security decision, on
    /// the main pool, each decoded by `decode` (see [`lookup`](Self::lookup)).
    async fn lookup_all<T>(
        &self,
        op: &'static str,
        context: &'static str,
        stmt: impl Fn() -> Statement,
        decode: impl Fn(&PgRow) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.retry
            .run(op, Idempotent, || {
                all(stmt(), &self.write, db(context), &decode)
            })
            .await
    }

    /// Every row of `stmt`, a listing that may be stale (no login,
    /// session or credential decision reads it), on the read pool (see
    /// [`read_pool`](PostgresStore::read_pool)), each decoded by `decode`.
    async fn replica_lookup_all<T>(
        &self,
        op: &'static str,
        context: &'static str,
        stmt: impl Fn() -> Statement,
        decode: impl Fn(&PgRow) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.retry
            .run(op, Idempotent, || {
                all(stmt(), self.read_pool(), db(context), &decode)
            })
            .await
    }

    /// Run the autocommit write `stmt` on a connection of its own (see
    /// [`conn`](Self::conn)); the number of rows it wrote.
    async fn autocommit(&self, stmt: Statement, context: &'static str) -> Result<u64> {
        let mut conn = self.conn().await?;
        execute(stmt, &mut *conn, db_commit(context)).await
    }
}
