//! `SessionStore` in SQL.
//!
//! Every operation is one statement (autocommit): validation with its
//! renewal, ending sessions with the revocation of their families, and the
//! whole refresh rotation, decision included. All of them read the main
//! pool: a replica could lag behind a logout or a revocation.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use countersign_core::{
    AuditEvent, AuthRecord, FamilyId, RecordedRotation, RefreshFamily, Rotation, SessionId,
    SessionRecord, SessionStore, StoreErrorKind, TenantId, TokenHash, UserId,
};
use sqlx::types::Json;

use super::{all, execute, optional};
use crate::codec::{self, family_cols, micros, session_cols};
use crate::error::{PgError, Phase, db, db_commit, is_foreign_key_violation, unique_violation};
use crate::retry::Idempotence::{Idempotent, Once};
use crate::{PostgresStore, Result};

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

impl SessionStore for PostgresStore {
    type Error = PgError;

    async fn create_session(
        &self,
        s: &SessionRecord,
        f: Option<&RefreshFamily>,
        event: Option<&AuditEvent>,
    ) -> Result<()> {
        let idle_timeout = micros("idle timeout", s.idle_timeout)?;
        let renew_within = micros("renewal window", s.renew_within)?;
        let generation = f
            .map(|f| i64::try_from(f.generation))
            .transpose()
            .map_err(|_| PgError::refused(StoreErrorKind::Rejected, "generation too large"))?;
        let reuse_grace = f
            .map(|f| micros("reuse grace", f.reuse_grace))
            .transpose()?;
        // One statement: the session, the family and its first token. The
        // user must be in the tenant (the foreign keys check it at the end
        // of the statement); keys, ids and tokens are unique.
        let stmt = || {
            sqlx::query(
                "WITH s AS (
                     INSERT INTO cs_sessions (key, id, tenant_id, user_id, auth, ip, user_agent,
                                              created_at, last_seen_at, expires_at,
                                              absolute_expires_at, idle_timeout_us,
                                              renew_within_us)
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
            .bind(idle_timeout)
            .bind(renew_within)
            .bind(f.map(|f| *f.id.as_uuid()))
            .bind(f.map(|f| *f.tenant_id.as_uuid()))
            .bind(f.map(|f| *f.user_id.as_uuid()))
            .bind(f.map(|f| *f.session_id.as_uuid()))
            .bind(f.map(|f| f.current.to_hex()))
            .bind(f.and_then(|f| f.previous.map(|p| p.to_hex())))
            .bind(generation)
            .bind(f.and_then(|f| f.rotated_at))
            .bind(f.map(|f| f.created_at))
            .bind(f.map(|f| f.expires_at))
            .bind(f.and_then(|f| f.revoked_at))
            .bind(reuse_grace)
        };
        // A unique violation is `Conflict`, a foreign-key violation (no
        // such user in the tenant) `NotFound`.
        let refused = |e: sqlx::Error| {
            if is_foreign_key_violation(&e) {
                return PgError::refused(StoreErrorKind::NotFound, "user not found in the tenant");
            }
            let conflict = "session, family or refresh token already exists";
            unique_violation(Phase::Committing, "creating a session", conflict)(e)
        };
        self.retry
            .run("create_session", Once, || async {
                let Some(event) = event else {
                    stmt().execute(&self.write).await.map_err(refused)?;
                    return Ok(());
                };
                // With its audit event: one transaction, so a crash leaves
                // both or neither.
                let mut tx = self.begin().await?;
                stmt().execute(&mut *tx).await.map_err(refused)?;
                let clash = unique_violation(
                    Phase::Uncommitted,
                    "recording a session start",
                    "audit event already exists",
                );
                super::execute(super::identity::event_insert(event, false), &mut *tx, clash)
                    .await?;
                super::commit(tx, "committing a session").await
            })
            .await
    }

    async fn validate_session(
        &self,
        key: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<SessionRecord>>> {
        // One round trip. The UPDATE renews only a live session with less
        // than `renew_within` idle time left (`SessionRecord::renew`), so
        // a check with time to spare writes nothing. The statement's
        // snapshot predates the update, hence the NOT EXISTS guard: the
        // plain SELECT answers only when nothing was renewed.
        let stmt = || {
            sqlx::query(concat!(
                "WITH renewed AS (
                     UPDATE cs_sessions
                        SET expires_at = LEAST($2::timestamptz
                                                   + idle_timeout_us * interval '1 microsecond',
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
        };
        // Idempotent: a second renewal at the same `now` changes nothing
        // and answers the same session.
        let found = self
            .retry
            .run("validate_session", Idempotent, || {
                let context = db_commit("validating a session");
                optional(stmt(), &self.write, context, codec::session)
            })
            .await?;
        Ok(found.map(Arc::new))
    }

    async fn session(&self, tenant: TenantId, id: SessionId) -> Result<Option<SessionRecord>> {
        let stmt = || {
            sqlx::query(concat!(
                "SELECT ",
                session_cols!(),
                " FROM cs_sessions WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
        };
        self.retry
            .run("session", Idempotent, || {
                optional(stmt(), &self.write, db("reading a session"), codec::session)
            })
            .await
    }

    async fn set_session_auth(
        &self,
        tenant: TenantId,
        id: SessionId,
        expected: &AuthRecord,
        auth: &AuthRecord,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let stmt = || {
            sqlx::query(
                "UPDATE cs_sessions SET auth = $3
                 WHERE tenant_id = $1 AND id = $2 AND expires_at > $4 AND absolute_expires_at > $4
                   AND auth = $5",
            )
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
            .bind(Json(auth))
            .bind(now)
            .bind(Json(expected))
        };
        // Retried as idempotent: if a first attempt committed unseen, the
        // retry finds `auth` in place of `expected` and answers `false`,
        // and the caller reads the record again (it holds its write).
        self.retry
            .run("set_session_auth", Idempotent, || async {
                Ok(execute(stmt(), &self.write, db_commit("stepping up a session")).await? == 1)
            })
            .await
    }

    async fn user_sessions(
        &self,
        tenant: TenantId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionRecord>> {
        let stmt = || {
            sqlx::query(concat!(
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
        };
        self.retry
            .run("user_sessions", Idempotent, || {
                let context = db("listing a user's sessions");
                all(stmt(), &self.write, context, codec::session)
            })
            .await
    }

    async fn delete_session(
        &self,
        tenant: TenantId,
        id: SessionId,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>> {
        let stmt = || {
            sqlx::query(end_sessions!(
                "tenant_id = $1 AND id = $2",
                "$3",
                session_cols!()
            ))
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
            .bind(now)
        };
        self.retry
            .run("delete_session", Once, || {
                let context = db_commit("ending a session");
                optional(stmt(), &self.write, context, codec::session)
            })
            .await
    }

    async fn delete_session_by_key(
        &self,
        key: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>> {
        let stmt = || {
            sqlx::query(end_sessions!("key = $1", "$2", session_cols!()))
                .bind(key.to_hex())
                .bind(now)
        };
        self.retry
            .run("delete_session_by_key", Once, || {
                let context = db_commit("ending a session");
                optional(stmt(), &self.write, context, codec::session)
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
        let stmt = || {
            sqlx::query(end_sessions!(
                "tenant_id = $1 AND user_id = $2 AND ($3::uuid IS NULL OR id <> $3::uuid)",
                "$4",
                "count(*) AS count"
            ))
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .bind(keep.map(|k| *k.as_uuid()))
            .bind(now)
        };
        self.retry
            .run("delete_user_sessions", Once, || async {
                let row = stmt()
                    .fetch_one(&self.write)
                    .await
                    .map_err(db_commit("ending a user's sessions"))?;
                codec::unsigned(
                    "cs_sessions",
                    "count",
                    codec::get(&row, "cs_sessions", "count")?,
                )
            })
            .await
    }

    async fn rotate_refresh(
        &self,
        presented: &TokenHash,
        new: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Rotation> {
        Ok(self.rotate(presented, new, now, None, None).await?.rotation)
    }

    async fn rotate_refresh_recorded(
        &self,
        presented: &TokenHash,
        new: &TokenHash,
        now: DateTime<Utc>,
        scope: Option<TenantId>,
        event: &AuditEvent,
    ) -> Result<RecordedRotation> {
        self.rotate(presented, new, now, scope, Some(event)).await
    }

    async fn refresh_family(
        &self,
        tenant: TenantId,
        id: FamilyId,
    ) -> Result<Option<RefreshFamily>> {
        let stmt = || {
            sqlx::query(concat!(
                "SELECT ",
                family_cols!(),
                " FROM cs_refresh_families WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
        };
        self.retry
            .run("refresh_family", Idempotent, || {
                let context = db("reading a refresh family");
                optional(stmt(), &self.write, context, codec::family)
            })
            .await
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        // One batch: at most CLEANUP_BATCH dead sessions and as many dead
        // families (their tokens cascade). Rows another cleanup holds are
        // skipped, not waited for.
        let stmt = || {
            sqlx::query(
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
                 SELECT (SELECT count(*) FROM s) AS sessions,
                        (SELECT count(*) FROM f) AS families",
            )
            .bind(now)
            .bind(CLEANUP_BATCH)
        };
        let decode = |row: &sqlx::postgres::PgRow| -> Result<(u64, u64)> {
            let (s, f) = ("cs_sessions", "cs_refresh_families");
            Ok((
                codec::unsigned(s, "count", codec::get(row, s, "sessions")?)?,
                codec::unsigned(f, "count", codec::get(row, f, "families")?)?,
            ))
        };
        // Batches until both tables are clean; each batch is idempotent
        // (it deletes what is left) and retried on its own.
        let batch = u64::try_from(CLEANUP_BATCH).unwrap_or(u64::MAX);
        let mut total = 0u64;
        loop {
            let (s, f) = self
                .retry
                .run("delete_expired_sessions", Idempotent, || async {
                    let row = stmt()
                        .fetch_one(&self.write)
                        .await
                        .map_err(db_commit("deleting expired sessions"))?;
                    decode(&row)
                })
                .await?;
            total = total.saturating_add(s).saturating_add(f);
            if s < batch && f < batch {
                return Ok(total);
            }
        }
    }

    async fn count_live_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        const T: &str = "cs_sessions";
        self.retry
            .run("count_live_sessions", Idempotent, || async {
                let row = sqlx::query(
                    "SELECT count(*) AS count FROM cs_sessions
                      WHERE $1::timestamptz < expires_at AND $1::timestamptz < absolute_expires_at",
                )
                .bind(now)
                .fetch_one(&self.write)
                .await
                .map_err(db("counting live sessions"))?;
                codec::unsigned(T, "count", codec::get(&row, T, "count")?)
            })
            .await
    }
}

/// What both rotation statements do after `rotated`: read the family's
/// session (`sess`), record the event for a live one (`recorded`), and
/// the columns of the answer besides the family's (the session's as
/// `s_*`, the tenant's, joined as `tn`, as `t_*`).
macro_rules! rotation_tail {
    () => {
        "sess AS (
             SELECT s.* FROM cs_sessions s
               JOIN rotated r ON s.tenant_id = r.tenant_id AND s.id = r.session_id
         ), recorded AS (
             INSERT INTO cs_audit_events
                 (id, tenant_id, user_id, kind, status, factor, ip, user_agent, at, detail)
             SELECT $5::uuid, s.tenant_id, s.user_id, $6::text, $7::text, $8::text,
                    $9::text, $10::text, $11::timestamptz, $12::text
               FROM sess s
              WHERE $5::uuid IS NOT NULL
                AND $3::timestamptz < s.expires_at
                AND $3::timestamptz < s.absolute_expires_at
         )
         SELECT "
    };
}

/// The answer's session and tenant columns (see [`rotation_tail`]).
macro_rules! rotation_columns {
    () => {
        "s.key AS s_key, s.id AS s_id, s.tenant_id AS s_tenant_id,
         s.user_id AS s_user_id, s.auth AS s_auth, s.ip AS s_ip,
         s.user_agent AS s_user_agent, s.created_at AS s_created_at,
         s.last_seen_at AS s_last_seen_at, s.expires_at AS s_expires_at,
         s.absolute_expires_at AS s_absolute_expires_at,
         s.idle_timeout_us AS s_idle_timeout_us,
         s.renew_within_us AS s_renew_within_us,
         tn.id AS t_id, tn.slug AS t_slug, tn.name AS t_name,
         tn.policy AS t_policy, tn.created_at AS t_created_at"
    };
}

/// The family's columns a rotation returns.
macro_rules! rotation_returning {
    () => {
        "RETURNING f.id, f.tenant_id, f.user_id, f.session_id, f.current_hash,
                   f.previous_hash, f.generation, f.rotated_at, f.created_at,
                   f.expires_at, f.revoked_at, f.reuse_grace_us"
    };
}

/// The common case alone: the presented token is the current one of a
/// live, unrevoked family (in `$4`'s tenant when given), and one UPDATE
/// rotates it. No row: anything else, decided by [`ROTATE_DECIDED`]. Of
/// concurrent presentations of one token, the UPDATE that waited for the
/// winner's row lock re-checks its condition on the row the winner left
/// (READ COMMITTED), finds another current token and rotates nothing.
const ROTATE_CURRENT: &str = concat!(
    "WITH rotated AS (
         UPDATE cs_refresh_families f
            SET previous_hash = f.current_hash, current_hash = $2,
                generation = f.generation + 1, rotated_at = $3::timestamptz
           FROM cs_refresh_tokens t
          WHERE t.hash = $1 AND f.id = t.family_id AND f.current_hash = $1
            AND f.revoked_at IS NULL AND $3::timestamptz < f.expires_at
            AND ($4::uuid IS NULL OR f.tenant_id = $4::uuid) ",
    rotation_returning!(),
    "), issued AS (
         INSERT INTO cs_refresh_tokens (hash, family_id) SELECT $2, id FROM rotated
     ), ",
    rotation_tail!(),
    "'rotate' AS outcome, c.*, ",
    rotation_columns!(),
    " FROM rotated c
      LEFT JOIN sess s ON true
      LEFT JOIN cs_tenants tn ON tn.id = c.tenant_id"
);

/// Every case: `decide_rotation` in SQL. `fam` locks the family the
/// presented token belongs to; a concurrent presentation waits for the
/// lock and then decides on the family as the winner left it (READ
/// COMMITTED re-reads a locked row's newest version), so of concurrent
/// presentations of one token at most one rotates. The two writing
/// branches are mutually exclusive on `outcome`.
const ROTATE_DECIDED: &str = concat!(
    "WITH fam AS MATERIALIZED (
         SELECT f.id, f.tenant_id, f.session_id, f.current_hash, f.previous_hash,
                f.rotated_at, f.expires_at, f.revoked_at, f.reuse_grace_us
           FROM cs_refresh_tokens t
           JOIN cs_refresh_families f ON f.id = t.family_id
          WHERE t.hash = $1 AND ($4::uuid IS NULL OR f.tenant_id = $4::uuid)
            FOR UPDATE OF f
     ), decision AS MATERIALIZED (
         SELECT id, tenant_id, session_id,
                CASE WHEN revoked_at IS NOT NULL THEN 'revoked'
                     WHEN $3::timestamptz >= expires_at THEN 'expired'
                     WHEN current_hash = $1 THEN 'rotate'
                     WHEN previous_hash = $1
                      AND $3::timestamptz
                          < rotated_at + reuse_grace_us * interval '1 microsecond'
                          THEN 'superseded'
                     ELSE 'revoke'
                END AS outcome
           FROM fam
     ), rotated AS (
         UPDATE cs_refresh_families f
            SET previous_hash = f.current_hash, current_hash = $2,
                generation = f.generation + 1, rotated_at = $3::timestamptz
           FROM decision d
          WHERE f.id = d.id AND f.tenant_id = d.tenant_id AND d.outcome = 'rotate' ",
    rotation_returning!(),
    "), issued AS (
         INSERT INTO cs_refresh_tokens (hash, family_id) SELECT $2, id FROM rotated
     ), revoked AS (
         UPDATE cs_refresh_families f SET revoked_at = $3::timestamptz
           FROM decision d
          WHERE f.id = d.id AND f.tenant_id = d.tenant_id AND d.outcome = 'revoke' ",
    rotation_returning!(),
    "), ended AS (
         DELETE FROM cs_sessions s USING revoked r
          WHERE s.tenant_id = r.tenant_id AND s.id = r.session_id
     ), siblings AS (
         UPDATE cs_refresh_families f SET revoked_at = $3::timestamptz
           FROM revoked r
          WHERE f.tenant_id = r.tenant_id AND f.session_id = r.session_id
            AND f.id <> r.id AND f.revoked_at IS NULL
     ), ",
    rotation_tail!(),
    "d.outcome, c.*, ",
    rotation_columns!(),
    " FROM decision d
      LEFT JOIN (SELECT * FROM rotated UNION ALL SELECT * FROM revoked) c
        ON c.id = d.id
      LEFT JOIN sess s ON true
      LEFT JOIN cs_tenants tn ON tn.id = (SELECT tenant_id FROM rotated)"
);

impl PostgresStore {
    /// Both rotations: [`ROTATE_CURRENT`] for the common case, and when it
    /// rotates nothing, [`ROTATE_DECIDED`] for every case. Scoped to
    /// `scope`'s families when given, with the session and tenant read and
    /// `event` recorded for a live session when given.
    async fn rotate(
        &self,
        presented: &TokenHash,
        new: &TokenHash,
        now: DateTime<Utc>,
        scope: Option<TenantId>,
        event: Option<&AuditEvent>,
    ) -> Result<RecordedRotation> {
        let stmt = |sql: &'static str| {
            sqlx::query(sql)
                .bind(presented.to_hex())
                .bind(new.to_hex())
                .bind(now)
                .bind(scope.map(|t| *t.as_uuid()))
                .bind(event.map(|e| *e.id.as_uuid()))
                .bind(event.map(|e| e.kind.as_str()))
                .bind(event.map(|e| e.status.as_str()))
                .bind(event.and_then(|e| e.factor.map(countersign_core::FactorKind::as_str)))
                .bind(event.and_then(|e| e.ip.map(|ip| ip.to_string())))
                .bind(event.and_then(|e| e.user_agent.clone()))
                .bind(event.map(|e| e.at))
                .bind(
                    event.and_then(|e| e.detail.as_ref().map(countersign_core::AuditDetail::code)),
                )
        };
        let decode = |row: &sqlx::postgres::PgRow| {
            const T: &str = "cs_refresh_families";
            let outcome: String = codec::get(row, T, "outcome")?;
            let rotation = match outcome.as_str() {
                "revoked" => Rotation::Revoked,
                "expired" => Rotation::Expired,
                "superseded" => Rotation::Superseded,
                "rotate" => Rotation::Rotated(codec::family(row)?),
                "revoke" => Rotation::Reused(codec::family(row)?),
                other => {
                    let message = format!("unknown rotation outcome {other}");
                    return Err(PgError::corrupt(T, message));
                }
            };
            let key: Option<String> = codec::get(row, "cs_sessions", "s_key")?;
            let session = match key {
                Some(_) => Some(codec::session_named(row, &codec::SessionNames::PREFIXED)?),
                None => None,
            };
            let tenant_id: Option<uuid::Uuid> = codec::get(row, "cs_tenants", "t_id")?;
            let tenant = match tenant_id {
                Some(_) => Some(codec::tenant_named(row, &codec::TenantNames::PREFIXED)?),
                None => None,
            };
            Ok(RecordedRotation {
                rotation,
                session,
                tenant,
            })
        };
        // Not idempotent: after an ambiguous commit, a retry would present
        // a token that may already have rotated (and revoke the family).
        // The second statement runs only after the first committed having
        // rotated nothing.
        self.retry
            .run("rotate_refresh", Once, || async {
                let refused = || {
                    unique_violation(
                        Phase::Committing,
                        "rotating a refresh token",
                        "refresh token already exists",
                    )
                };
                if let Some(rotated) =
                    optional(stmt(ROTATE_CURRENT), &self.write, refused(), decode).await?
                {
                    return Ok(rotated);
                }
                let rotation =
                    optional(stmt(ROTATE_DECIDED), &self.write, refused(), decode).await?;
                Ok(rotation.unwrap_or_else(|| RecordedRotation::refused(Rotation::Unknown)))
            })
            .await
    }
}
