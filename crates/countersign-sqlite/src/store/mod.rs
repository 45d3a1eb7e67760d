//! The store trait implementations, one file per trait of countersign-core,
//! and the query helpers they share.

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

use rusqlite::{Connection, Params, Row, params};

use crate::{Result, SqliteError, SqliteStore};

/// A row decoder (see `codec`).
type Decode<T> = fn(&Row<'_>) -> Result<T>;

/// Every row of a query, decoded.
fn rows<T>(c: &Connection, sql: &str, p: impl Params, f: Decode<T>) -> Result<Vec<T>> {
    let mut stmt = c.prepare_cached(sql)?;
    let mut rows = stmt.query(p)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(f(row)?);
    }
    Ok(out)
}

/// The first row of a query, decoded.
fn first<T>(c: &Connection, sql: &str, p: impl Params, f: Decode<T>) -> Result<Option<T>> {
    let mut stmt = c.prepare_cached(sql)?;
    let mut rows = stmt.query(p)?;
    match rows.next()? {
        Some(row) => Ok(Some(f(row)?)),
        None => Ok(None),
    }
}

fn user_exists(c: &Connection, tenant: &str, user: &str) -> Result<bool> {
    Ok(
        c.prepare_cached("SELECT 1 FROM cs_users WHERE tenant_id = ?1 AND id = ?2")?
            .exists(params![tenant, user])?,
    )
}

/// `NotFound("user")` unless the user exists in the tenant.
fn require_user(c: &Connection, tenant: &str, user: &str) -> Result<()> {
    if user_exists(c, tenant, user)? {
        Ok(())
    } else {
        Err(SqliteError::NotFound("user"))
    }
}

/// `NotFound("tenant")` unless the tenant exists.
fn require_tenant(c: &Connection, tenant: &str) -> Result<()> {
    if c.prepare_cached("SELECT 1 FROM cs_tenants WHERE id = ?1")?
        .exists([tenant])?
    {
        Ok(())
    } else {
        Err(SqliteError::NotFound("tenant"))
    }
}

impl SqliteStore {
    /// Every row of one query, decoded, on the worker.
    async fn fetch_all<T, P>(
        &self,
        sql: impl AsRef<str> + Send + 'static,
        p: P,
        decode: Decode<T>,
    ) -> Result<Vec<T>>
    where
        T: Send + 'static,
        P: Params + Send + 'static,
    {
        self.call(move |c| rows(c, sql.as_ref(), p, decode)).await
    }

    /// The first row of one query, decoded, on the worker.
    async fn fetch_optional<T, P>(
        &self,
        sql: impl AsRef<str> + Send + 'static,
        p: P,
        decode: Decode<T>,
    ) -> Result<Option<T>>
    where
        T: Send + 'static,
        P: Params + Send + 'static,
    {
        self.call(move |c| first(c, sql.as_ref(), p, decode)).await
    }

    /// The first row of one read-only query, decoded: on an idle reader, on
    /// the calling thread, when the store has one (no hop to the worker),
    /// else on the worker. A reader refuses any write, so a statement
    /// that writes ends up on the worker either way.
    async fn read_optional<T, P>(
        &self,
        sql: impl AsRef<str> + Send + 'static,
        p: P,
        decode: Decode<T>,
    ) -> Result<Option<T>>
    where
        T: Send + 'static,
        P: Params + Clone + Send + 'static,
    {
        if let Some(found) = self.try_read(|c| first(c, sql.as_ref(), p.clone(), decode)) {
            return Ok(found);
        }
        self.fetch_optional(sql, p, decode).await
    }

    /// The reads of `f`, on one snapshot of an idle reader when the store
    /// has one, else on the worker (as [`read_optional`](Self::read_optional)).
    async fn read_snapshot<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> Result<T> + Send + 'static,
    {
        if let Some(out) = self.try_snapshot(&f) {
            return Ok(out);
        }
        self.call(move |c| f(c)).await
    }

    /// Run one statement on the worker; returns the number of rows changed.
    async fn execute<P>(&self, sql: &'static str, p: P) -> Result<usize>
    where
        P: Params + Send + 'static,
    {
        self.call(move |c| Ok(c.prepare_cached(sql)?.execute(p)?))
            .await
    }
}
