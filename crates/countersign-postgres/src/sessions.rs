//! `SessionStore` in SQL.
//!
//! Every operation is one statement (autocommit): validation with its
//! renewal, ending sessions with the revocation of their families, and the
//! whole refresh rotation, decision included. All of them read the main
//! pool: a replica could lag behind a logout or a revocation.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use countersign_core::{
    FamilyId, RefreshFamily, Rotation, SessionId, SessionRecord, SessionStore, StoreErrorKind,
    TenantId, TokenHash, UserId,
};
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;

use crate::error::{PgError, db, db_commit};
use crate::{PostgresStore, Result};

/// The columns [`read_session`] reads.
macro_rules! session_cols {
    () => {
        "key, id, tenant_id, user_id, auth, ip, user_agent, created_at, last_seen_at, \
         expires_at, absolute_expires_at, idle_timeout_us, renew_within_us"
    };
}

/// The columns [`read_family`] reads.
macro_rules! family_cols {
    () => {
        "id, tenant_id, user_id, session_id, current_hash, previous_hash, generation, \
         rotated_at, created_at, expires_at, revoked_at, reuse_grace_us"
    };
}

/// One statement that deletes the sessions matching `$where` (a condition
/// on `cs_sessions`) and revokes at `$now` (a parameter) every family of
/// theirs not yet revoked, then selects `$select` from the deleted rows
/// (`ended`).
macro_rules! end_sessions {
    ($where:literal, $now:literal, $select:expr) => {
        concat!(
            "WITH ended AS (
                 DELETE FROM cs_sessions WHERE ",
            $where,
            " RETURNING ",
            session_cols!(),
            "
             ), revoked AS (
                 UPDATE cs_refresh_families f SET revoked_at = ",
            $now,
            "::timestamptz
                   FROM ended e
                  WHERE f.tenant_id = e.tenant_id AND f.session_id = e.id
                    AND f.revoked_at IS NULL
             )
             SELECT ",
            $select,
            " FROM ended"
        )
    };
}

/// The rows a cleanup statement deletes at most: a large backlog goes in
/// several short statements rather than one long one.
const CLEANUP_BATCH: i64 = 10_000;

/// A duration as the microseconds stored in a `bigint`.
fn micros(what: &'static str, d: Duration) -> Result<i64> {
    i64::try_from(d.as_micros())
        .map_err(|_| PgError::refused(StoreErrorKind::Rejected, format!("{what} is out of range")))
}

fn duration(table: &'static str, col: &'static str, us: i64) -> Result<Duration> {
    u64::try_from(us)
        .map(Duration::from_micros)
        .map_err(|_| PgError::corrupt(table, format!("column {col}: negative duration {us}")))
}

fn get<'r, T>(row: &'r PgRow, table: &'static str, col: &'static str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(col)
        .map_err(|e| PgError::corrupt(table, format!("column {col}: {e}")))
}

fn hash(table: &'static str, col: &'static str, hex: &str) -> Result<TokenHash> {
    TokenHash::from_hex(hex)
        .ok_or_else(|| PgError::corrupt(table, format!("column {col}: not a token hash")))
}

fn read_session(row: &PgRow) -> Result<SessionRecord> {
    const T: &str = "cs_sessions";
    let key: String = get(row, T, "key")?;
    let ip: Option<String> = get(row, T, "ip")?;
    Ok(SessionRecord {
        id: SessionId::from_uuid(get(row, T, "id")?),
        key: hash(T, "key", &key)?,
        tenant_id: TenantId::from_uuid(get(row, T, "tenant_id")?),
        user_id: UserId::from_uuid(get(row, T, "user_id")?),
        auth: get::<Json<_>>(row, T, "auth")?.0,
        ip: ip
            .map(|i| {
                i.parse::<IpAddr>()
                    .map_err(|e| PgError::corrupt(T, format!("column ip: {e}")))
            })
            .transpose()?,
        user_agent: get(row, T, "user_agent")?,
        created_at: get(row, T, "created_at")?,
        last_seen_at: get(row, T, "last_seen_at")?,
        expires_at: get(row, T, "expires_at")?,
        absolute_expires_at: get(row, T, "absolute_expires_at")?,
        idle_timeout: duration(T, "idle_timeout_us", get(row, T, "idle_timeout_us")?)?,
        renew_within: duration(T, "renew_within_us", get(row, T, "renew_within_us")?)?,
    })
}

fn read_family(row: &PgRow) -> Result<RefreshFamily> {
    const T: &str = "cs_refresh_families";
    let current: String = get(row, T, "current_hash")?;
    let previous: Option<String> = get(row, T, "previous_hash")?;
    Ok(RefreshFamily {
        id: FamilyId::from_uuid(get(row, T, "id")?),
        tenant_id: TenantId::from_uuid(get(row, T, "tenant_id")?),
        user_id: UserId::from_uuid(get(row, T, "user_id")?),
        session_id: SessionId::from_uuid(get(row, T, "session_id")?),
        current: hash(T, "current_hash", &current)?,
        previous: previous.map(|p| hash(T, "previous_hash", &p)).transpose()?,
        generation: crate::codec::unsigned(T, "generation", get::<i64>(row, T, "generation")?)?,
        rotated_at: get(row, T, "rotated_at")?,
        created_at: get(row, T, "created_at")?,
        expires_at: get(row, T, "expires_at")?,
        revoked_at: get(row, T, "revoked_at")?,
        reuse_grace: duration(T, "reuse_grace_us", get(row, T, "reuse_grace_us")?)?,
    })
}

/// `map_err` adapter for an autocommit insert: a unique violation is
/// `Conflict`, a foreign-key violation `NotFound`, each with its message.
fn refused(
    context: &'static str,
    conflict: &'static str,
    not_found: &'static str,
) -> impl FnOnce(sqlx::Error) -> PgError {
    move |e| match e.as_database_error().and_then(|d| d.code()).as_deref() {
        Some("23505") => PgError::refused(StoreErrorKind::Conflict, conflict),
        Some("23503") => PgError::refused(StoreErrorKind::NotFound, not_found),
        _ => db_commit(context)(e),
    }
}

impl PostgresStore {
    async fn create_session_once(
        &self,
        s: &SessionRecord,
        f: Option<&RefreshFamily>,
    ) -> Result<()> {
        // One statement: the session, the family and its first token. The
        // user must be in the tenant (the foreign keys check it at the end
        // of the statement); keys, ids and tokens are unique.
        sqlx::query(
            "WITH s AS (
                 INSERT INTO cs_sessions (key, id, tenant_id, user_id, auth, ip, user_agent,
                                          created_at, last_seen_at, expires_at,
                                          absolute_expires_at, idle_timeout_us, renew_within_us)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ), f AS (
                 INSERT INTO cs_refresh_families (id, tenant_id, user_id, session_id,
                                                  current_hash, previous_hash, generation,
                                                  rotated_at, created_at, expires_at,
                                                  revoked_at, reuse_grace_us)
                 SELECT $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25
                  WHERE $14::uuid IS NOT NULL
                 RETURNING id, current_hash
             )
             INSERT INTO cs_refresh_tokens (hash, family_id) SELECT current_hash, id FROM f",
        )
        .bind(s.key.to_hex())
        .bind(s.id.as_uuid())
        .bind(s.tenant_id.as_uuid())
        .bind(s.user_id.as_uuid())
        .bind(Json(&s.auth))
        .bind(s.ip.map(|i| i.to_string()))
        .bind(s.user_agent.as_deref())
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.expires_at)
        .bind(s.absolute_expires_at)
        .bind(micros("idle timeout", s.idle_timeout)?)
        .bind(micros("renewal window", s.renew_within)?)
        .bind(f.map(|f| *f.id.as_uuid()))
        .bind(f.map(|f| *f.tenant_id.as_uuid()))
        .bind(f.map(|f| *f.user_id.as_uuid()))
        .bind(f.map(|f| *f.session_id.as_uuid()))
        .bind(f.map(|f| f.current.to_hex()))
        .bind(f.and_then(|f| f.previous.map(|p| p.to_hex())))
        .bind(
            f.map(|f| i64::try_from(f.generation))
                .transpose()
                .map_err(|_| PgError::refused(StoreErrorKind::Rejected, "generation too large"))?,
        )
        .bind(f.and_then(|f| f.rotated_at))
        .bind(f.map(|f| f.created_at))
        .bind(f.map(|f| f.expires_at))
        .bind(f.and_then(|f| f.revoked_at))
        .bind(
            f.map(|f| micros("reuse grace", f.reuse_grace))
                .transpose()?,
        )
        .execute(&self.write)
        .await
        .map_err(refused(
            "creating a session",
            "session, family or refresh token already exists",
            "user not found in the tenant",
        ))?;
        Ok(())
    }

    async fn validate_session_once(
        &self,
        key: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>> {
        // One round trip. The UPDATE renews only a live session with less
        // than `renew_within` idle time left (`SessionRecord::renew`), so
        // a check with time to spare writes nothing. The statement's
        // snapshot predates the update, hence the NOT EXISTS guard: the
        // plain SELECT answers only when nothing was renewed.
        let row = sqlx::query(concat!(
            "WITH renewed AS (
                 UPDATE cs_sessions
                    SET expires_at = LEAST($2::timestamptz + idle_timeout_us * interval '1 microsecond',
                                           absolute_expires_at),
                        last_seen_at = $2::timestamptz
                  WHERE key = $1 AND $2::timestamptz < expires_at
                    AND $2::timestamptz < absolute_expires_at
                    AND expires_at < $2::timestamptz + renew_within_us * interval '1 microsecond'
                 RETURNING ",
            session_cols!(),
            "
             )
             SELECT ",
            session_cols!(),
            " FROM renewed
             UNION ALL
             SELECT ",
            session_cols!(),
            " FROM cs_sessions
              WHERE key = $1 AND $2::timestamptz < expires_at
                AND $2::timestamptz < absolute_expires_at
                AND NOT EXISTS (SELECT 1 FROM renewed)"
        ))
        .bind(key.to_hex())
        .bind(now)
        .fetch_optional(&self.write)
        .await
        .map_err(db_commit("validating a session"))?;
        row.as_ref().map(read_session).transpose()
    }

    async fn session_once(&self, tenant: TenantId, id: SessionId) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            session_cols!(),
            " FROM cs_sessions WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&self.write)
        .await
        .map_err(db("reading a session"))?;
        row.as_ref().map(read_session).transpose()
    }

    async fn user_sessions_once(
        &self,
        tenant: TenantId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            session_cols!(),
            " FROM cs_sessions
              WHERE tenant_id = $1 AND user_id = $2
                AND $3::timestamptz < expires_at AND $3::timestamptz < absolute_expires_at
              ORDER BY created_at DESC, id DESC"
        ))
        .bind(tenant.as_uuid())
        .bind(user.as_uuid())
        .bind(now)
        .fetch_all(&self.write)
        .await
        .map_err(db("listing a user's sessions"))?;
        rows.iter().map(read_session).collect()
    }

    async fn delete_session_once(
        &self,
        tenant: TenantId,
        id: SessionId,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(end_sessions!(
            "tenant_id = $1 AND id = $2",
            "$3",
            session_cols!()
        ))
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(now)
        .fetch_optional(&self.write)
        .await
        .map_err(db_commit("ending a session"))?;
        row.as_ref().map(read_session).transpose()
    }

    async fn delete_session_by_key_once(
        &self,
        key: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(end_sessions!("key = $1", "$2", session_cols!()))
            .bind(key.to_hex())
            .bind(now)
            .fetch_optional(&self.write)
            .await
            .map_err(db_commit("ending a session"))?;
        row.as_ref().map(read_session).transpose()
    }

    async fn delete_user_sessions_once(
        &self,
        tenant: TenantId,
        user: UserId,
        keep: Option<SessionId>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(end_sessions!(
            "tenant_id = $1 AND user_id = $2 AND ($3::uuid IS NULL OR id <> $3::uuid)",
            "$4",
            "count(*)"
        ))
        .bind(tenant.as_uuid())
        .bind(user.as_uuid())
        .bind(keep.map(|k| *k.as_uuid()))
        .bind(now)
        .fetch_one(&self.write)
        .await
        .map_err(db_commit("ending a user's sessions"))?;
        crate::codec::unsigned("cs_sessions", "count", n)
    }

    async fn rotate_refresh_once(
        &self,
        presented: &TokenHash,
        new: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Rotation> {
        // One statement, `decide_rotation` in SQL. `fam` locks the family
        // the presented token belongs to; a concurrent presentation waits
        // for the lock and then decides on the family as the winner left
        // it (READ COMMITTED re-reads a locked row's newest version), so
        // of concurrent presentations of one token at most one rotates.
        // The two writing branches are mutually exclusive on `outcome`.
        let row = sqlx::query(
            "WITH fam AS MATERIALIZED (
                 SELECT f.id, f.tenant_id, f.session_id, f.current_hash, f.previous_hash,
                        f.rotated_at, f.expires_at, f.revoked_at, f.reuse_grace_us
                   FROM cs_refresh_tokens t
                   JOIN cs_refresh_families f ON f.id = t.family_id
                  WHERE t.hash = $1
                    FOR UPDATE OF f
             ), decision AS MATERIALIZED (
                 SELECT id, tenant_id, session_id,
                        CASE WHEN revoked_at IS NOT NULL THEN 'revoked'
                             WHEN $3::timestamptz >= expires_at THEN 'expired'
                             WHEN current_hash = $1 THEN 'rotate'
                             WHEN previous_hash = $1
                              AND $3::timestamptz < rotated_at + reuse_grace_us * interval '1 microsecond'
                                  THEN 'superseded'
                             ELSE 'revoke'
                        END AS outcome
                   FROM fam
             ), rotated AS (
                 UPDATE cs_refresh_families f
                    SET previous_hash = f.current_hash, current_hash = $2,
                        generation = f.generation + 1, rotated_at = $3::timestamptz
                   FROM decision d
                  WHERE f.id = d.id AND f.tenant_id = d.tenant_id AND d.outcome = 'rotate'
                 RETURNING f.id, f.tenant_id, f.user_id, f.session_id, f.current_hash,
                           f.previous_hash, f.generation, f.rotated_at, f.created_at,
                           f.expires_at, f.revoked_at, f.reuse_grace_us
             ), issued AS (
                 INSERT INTO cs_refresh_tokens (hash, family_id) SELECT $2, id FROM rotated
             ), revoked AS (
                 UPDATE cs_refresh_families f SET revoked_at = $3::timestamptz
                   FROM decision d
                  WHERE f.id = d.id AND f.tenant_id = d.tenant_id AND d.outcome = 'revoke'
                 RETURNING f.id, f.tenant_id, f.user_id, f.session_id, f.current_hash,
                           f.previous_hash, f.generation, f.rotated_at, f.created_at,
                           f.expires_at, f.revoked_at, f.reuse_grace_us
             ), ended AS (
                 DELETE FROM cs_sessions s USING revoked r
                  WHERE s.tenant_id = r.tenant_id AND s.id = r.session_id
             ), siblings AS (
                 UPDATE cs_refresh_families f SET revoked_at = $3::timestamptz
                   FROM revoked r
                  WHERE f.tenant_id = r.tenant_id AND f.session_id = r.session_id
                    AND f.id <> r.id AND f.revoked_at IS NULL
             )
             SELECT d.outcome, c.*
               FROM decision d
               LEFT JOIN (SELECT * FROM rotated UNION ALL SELECT * FROM revoked) c ON c.id = d.id",
        )
        .bind(presented.to_hex())
        .bind(new.to_hex())
        .bind(now)
        .fetch_optional(&self.write)
        .await
        .map_err(|e| {
            let unique = e
                .as_database_error()
                .and_then(|d| d.code())
                .is_some_and(|c| c == "23505");
            if unique {
                PgError::refused(StoreErrorKind::Conflict, "refresh token already exists")
            } else {
                db_commit("rotating a refresh token")(e)
            }
        })?;
        let Some(row) = row else {
            return Ok(Rotation::Unknown);
        };
        let outcome: String = get(&row, "cs_refresh_families", "outcome")?;
        Ok(match outcome.as_str() {
            "revoked" => Rotation::Revoked,
            "expired" => Rotation::Expired,
            "superseded" => Rotation::Superseded,
            "rotate" => Rotation::Rotated(read_family(&row)?),
            "revoke" => Rotation::Reused(read_family(&row)?),
            other => {
                return Err(PgError::corrupt(
                    "cs_refresh_families",
                    format!("unknown rotation outcome {other}"),
                ));
            }
        })
    }

    async fn refresh_family_once(
        &self,
        tenant: TenantId,
        id: FamilyId,
    ) -> Result<Option<RefreshFamily>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            family_cols!(),
            " FROM cs_refresh_families WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&self.write)
        .await
        .map_err(db("reading a refresh family"))?;
        row.as_ref().map(read_family).transpose()
    }

    /// One batch of the cleanup: at most [`CLEANUP_BATCH`] dead sessions
    /// and as many dead families (their tokens cascade). Rows another
    /// cleanup holds are skipped, not waited for.
    async fn delete_expired_sessions_once(&self, now: DateTime<Utc>) -> Result<(u64, u64)> {
        let row = sqlx::query(
            "WITH s AS (
                 DELETE FROM cs_sessions WHERE key IN (
                     SELECT key FROM cs_sessions
                      WHERE LEAST(expires_at, absolute_expires_at) <= $1
                      LIMIT $2 FOR UPDATE SKIP LOCKED)
                 RETURNING 1
             ), f AS (
                 DELETE FROM cs_refresh_families WHERE id IN (
                     SELECT id FROM cs_refresh_families
                      WHERE expires_at <= $1 OR revoked_at < $1
                      LIMIT $2 FOR UPDATE SKIP LOCKED)
                 RETURNING 1
             )
             SELECT (SELECT count(*) FROM s) AS sessions, (SELECT count(*) FROM f) AS families",
        )
        .bind(now)
        .bind(CLEANUP_BATCH)
        .fetch_one(&self.write)
        .await
        .map_err(db_commit("deleting expired sessions"))?;
        let s: i64 = get(&row, "cs_sessions", "sessions")?;
        let f: i64 = get(&row, "cs_refresh_families", "families")?;
        Ok((
            crate::codec::unsigned("cs_sessions", "count", s)?,
            crate::codec::unsigned("cs_refresh_families", "count", f)?,
        ))
    }
}

impl SessionStore for PostgresStore {
    type Error = PgError;

    async fn create_session(
        &self,
        session: &SessionRecord,
        family: Option<&RefreshFamily>,
    ) -> Result<()> {
        self.retry
            .run("create_session", false, || {
                self.create_session_once(session, family)
            })
            .await
    }

    async fn validate_session(
        &self,
        key: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<std::sync::Arc<SessionRecord>>> {
        // Idempotent: a second renewal at the same `now` changes nothing
        // and answers the same session.
        let found = self
            .retry
            .run("validate_session", true, || {
                self.validate_session_once(key, now)
            })
            .await?;
        Ok(found.map(std::sync::Arc::new))
    }

    async fn session(&self, tenant: TenantId, id: SessionId) -> Result<Option<SessionRecord>> {
        self.retry
            .run("session", true, || self.session_once(tenant, id))
            .await
    }

    async fn user_sessions(
        &self,
        tenant: TenantId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionRecord>> {
        self.retry
            .run("user_sessions", true, || {
                self.user_sessions_once(tenant, user, now)
            })
            .await
    }

    async fn delete_session(
        &self,
        tenant: TenantId,
        id: SessionId,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>> {
        self.retry
            .run("delete_session", false, || {
                self.delete_session_once(tenant, id, now)
            })
            .await
    }

    async fn delete_session_by_key(
        &self,
        key: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>> {
        self.retry
            .run("delete_session_by_key", false, || {
                self.delete_session_by_key_once(key, now)
            })
            .await
    }

    async fn delete_user_sessions(
        &self,
        tenant: TenantId,
        user: UserId,
        keep: Option<SessionId>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        self.retry
            .run("delete_user_sessions", false, || {
                self.delete_user_sessions_once(tenant, user, keep, now)
            })
            .await
    }

    async fn rotate_refresh(
        &self,
        presented: &TokenHash,
        new: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Rotation> {
        // Not idempotent: after an ambiguous commit, a retry would present
        // a token that may already have rotated (and revoke the family).
        self.retry
            .run("rotate_refresh", false, || {
                self.rotate_refresh_once(presented, new, now)
            })
            .await
    }

    async fn refresh_family(
        &self,
        tenant: TenantId,
        id: FamilyId,
    ) -> Result<Option<RefreshFamily>> {
        self.retry
            .run("refresh_family", true, || {
                self.refresh_family_once(tenant, id)
            })
            .await
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        // Batches until both tables are clean; each batch is idempotent
        // (it deletes what is left) and retried on its own.
        let batch = u64::try_from(CLEANUP_BATCH).unwrap_or(u64::MAX);
        let mut total = 0u64;
        loop {
            let (s, f) = self
                .retry
                .run("delete_expired_sessions", true, || {
                    self.delete_expired_sessions_once(now)
                })
                .await?;
            total = total.saturating_add(s).saturating_add(f);
            if s < batch && f < batch {
                return Ok(total);
            }
        }
    }
}
