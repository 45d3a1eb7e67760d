//! `SessionStore` in SQLite: sessions, refresh-token families and their
//! rotation (one `IMMEDIATE` transaction per decision).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use countersign_core::session::{RotationDecision, decide_rotation};
use countersign_core::{
    AuditEvent, AuthRecord, FamilyId, RecordedRotation, RefreshFamily, Rotation, SessionId,
    SessionRecord, SessionStore, TenantId, TokenHash, UserId,
};
use rusqlite::{Connection, TransactionBehavior, params};

use super::{first, require_user, rows};
use crate::codec::{
    FAMILY_COLS, SESSION_COLS, TENANT_COLS, duration_micros, hex, id, json, micros, read_family,
    read_session, read_tenant,
};
use crate::{Result, SqliteError, SqliteStore};

/// End the sessions matching `filter` (a WHERE clause over cs_sessions with
/// parameters `args`) and revoke their families at `now`. Returns them.
fn end_sessions(
    c: &Connection,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
    now: i64,
) -> Result<Vec<SessionRecord>> {
    let ended = rows(
        c,
        &format!("DELETE FROM cs_sessions WHERE {filter} RETURNING {SESSION_COLS}"),
        args,
        read_session,
    )?;
    let mut revoke = c.prepare_cached(
        "UPDATE cs_refresh_families SET revoked_at = ?2 WHERE session_id = ?1 AND revoked_at IS NULL",
    )?;
    for s in &ended {
        revoke.execute(params![id(s.id.as_uuid()), now])?;
    }
    Ok(ended)
}

/// The statement of [`read_live`], built once (it runs on every check).
static READ_LIVE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {SESSION_COLS} FROM cs_sessions
         WHERE key = ?1 AND expires_at > ?2 AND absolute_expires_at > ?2"
    )
});

/// The statement of [`session_by_id`], built once.
static SESSION_BY_ID: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {SESSION_COLS} FROM cs_sessions WHERE tenant_id = ?1 AND id = ?2")
});

/// The session with key `k` (hex) if it is live at `now` (micros).
fn read_live(c: &Connection, k: &str, now: i64) -> Result<Option<SessionRecord>> {
    first(c, &READ_LIVE, params![k, now], read_session)
}

/// The session `s` of tenant `t` (ids as stored), live or not.
fn session_by_id(c: &Connection, t: &str, s: &str) -> Result<Option<SessionRecord>> {
    first(c, &SESSION_BY_ID, params![t, s], read_session)
}

impl SessionStore for SqliteStore {
    type Error = SqliteError;

    async fn create_session(
        &self,
        session: &SessionRecord,
        family: Option<&RefreshFamily>,
        event: Option<&AuditEvent>,
    ) -> Result<()> {
        let s = session.clone();
        let f = family.cloned();
        let e = event.cloned();
        let auth = json(&session.auth)?;
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let (t, u) = (id(s.tenant_id.as_uuid()), id(s.user_id.as_uuid()));
            require_user(&tx, &t, &u)?;
            tx.prepare_cached(
                &format!("INSERT INTO cs_sessions ({SESSION_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"),
            )?
            .execute(
                params![
                    hex(&s.key),
                    id(s.id.as_uuid()),
                    t,
                    u,
                    auth,
                    s.ip.map(|ip| ip.to_string()),
                    s.user_agent,
                    micros(s.created_at),
                    micros(s.last_seen_at),
                    micros(s.expires_at),
                    micros(s.absolute_expires_at),
                    duration_micros(s.idle_timeout),
                    duration_micros(s.renew_within),
                ],
            )?;
            if let Some(f) = f {
                tx.prepare_cached(
                    &format!("INSERT INTO cs_refresh_families ({FAMILY_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
                )?
                .execute(
                    params![
                        id(f.id.as_uuid()),
                        id(f.tenant_id.as_uuid()),
                        id(f.user_id.as_uuid()),
                        id(f.session_id.as_uuid()),
                        hex(&f.current),
                        f.previous.map(|p| hex(&p)),
                        i64::try_from(f.generation).unwrap_or(i64::MAX),
                        f.rotated_at.map(micros),
                        micros(f.created_at),
                        micros(f.expires_at),
                        f.revoked_at.map(micros),
                        duration_micros(f.reuse_grace),
                    ],
                )?;
                tx.prepare_cached("INSERT INTO cs_refresh_tokens (hash, family_id) VALUES (?1, ?2)")?
                    .execute(params![hex(&f.current), id(f.id.as_uuid())])?;
            }
            // The audit event of the start commits with the session.
            if let Some(e) = &e {
                super::identity::insert_event(&tx, e)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn validate_session(
        &self,
        key: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<std::sync::Arc<SessionRecord>>> {
        // With a session cache: a session validated since the store's last
        // call, live and not due for renewal, is answered from memory.
        let cache = self.session_cache();
        if let Some(found) = cache.and_then(|c| c.get(key, now)) {
            return Ok(Some(found));
        }
        let mark = cache.map(|c| c.mark());
        let (k, now_t) = (hex(key), now);
        let now = micros(now_t);
        // The common case, a live session far from its idle deadline, is
        // one indexed read on a read-only connection (a read transaction
        // of its own: it sees every commit made before this call). Anything
        // else (unknown, ended, renewal due) is decided on the worker.
        if let Some(Some(session)) = self.try_read(|c| read_live(c, &k, now))
            && !session.renewal_due(now_t)
        {
            let session = std::sync::Arc::new(session);
            if let (Some(c), Some(mark)) = (cache, mark) {
                c.put(*key, &session, mark, now_t);
            }
            return Ok(Some(session));
        }
        self.call(move |c| {
            // Again on the writer: only a session due for renewal is
            // written, by a statement that re-checks liveness and
            // due-ness, so a concurrent revocation (another process) wins.
            let Some(session) = read_live(c, &k, now)? else {
                return Ok(None);
            };
            if !session.renewal_due(now_t) {
                return Ok(Some(session));
            }
            let renewed = first(
                c,
                &format!(
                    "UPDATE cs_sessions SET last_seen_at = ?2,
                         expires_at = MIN(?2 + idle_timeout, absolute_expires_at)
                     WHERE key = ?1 AND expires_at > ?2 AND absolute_expires_at > ?2
                       AND expires_at < ?2 + renew_within
                     RETURNING {SESSION_COLS}"
                ),
                params![k, now],
                read_session,
            )?;
            match renewed {
                Some(r) => Ok(Some(r)),
                // Renewed or ended by someone else meanwhile: read again.
                None => read_live(c, &k, now),
            }
        })
        .await
        .map(|found| found.map(std::sync::Arc::new))
    }

    async fn session(&self, tenant: TenantId, sid: SessionId) -> Result<Option<SessionRecord>> {
        let (t, s) = (id(tenant.as_uuid()), id(sid.as_uuid()));
        // A pure read: on a reader when one is idle (it sees every commit
        // made before this call), else on the worker.
        if let Some(found) = self.try_read(|c| session_by_id(c, &t, &s)) {
            return Ok(found);
        }
        self.call(move |c| session_by_id(c, &t, &s)).await
    }

    async fn set_session_auth(
        &self,
        tenant: TenantId,
        sid: SessionId,
        expected: &AuthRecord,
        auth: &AuthRecord,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        // The stored record is this crate's JSON of it (`create_session`,
        // this method), so the same record is the same text.
        let (expected, auth) = (json(expected)?, json(auth)?);
        let n = self
            .execute(
                "UPDATE cs_sessions SET auth = ?3
                 WHERE tenant_id = ?1 AND id = ?2 AND expires_at > ?4 AND absolute_expires_at > ?4
                   AND auth = ?5",
                (
                    id(tenant.as_uuid()),
                    id(sid.as_uuid()),
                    auth,
                    micros(now),
                    expected,
                ),
            )
            .await?;
        Ok(n == 1)
    }

    async fn user_sessions(
        &self,
        tenant: TenantId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionRecord>> {
        self.fetch_all(
            format!(
                "SELECT {SESSION_COLS} FROM cs_sessions
                 WHERE tenant_id = ?1 AND user_id = ?2 AND expires_at > ?3 AND absolute_expires_at > ?3
                 ORDER BY created_at DESC, id DESC"
            ),
            (id(tenant.as_uuid()), id(user.as_uuid()), micros(now)),
            read_session,
        )
        .await
    }

    async fn delete_session(
        &self,
        tenant: TenantId,
        sid: SessionId,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>> {
        let (t, s, now) = (id(tenant.as_uuid()), id(sid.as_uuid()), micros(now));
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let ended = end_sessions(&tx, "tenant_id = ?1 AND id = ?2", &[&t, &s], now)?;
            tx.commit()?;
            Ok(ended.into_iter().next())
        })
        .await
    }

    async fn delete_session_by_key(
        &self,
        key: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>> {
        let (k, now) = (hex(key), micros(now));
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let ended = end_sessions(&tx, "key = ?1", &[&k], now)?;
            tx.commit()?;
            Ok(ended.into_iter().next())
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
        let (t, u, now) = (id(tenant.as_uuid()), id(user.as_uuid()), micros(now));
        let keep = keep.map(|k| id(k.as_uuid()));
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let ended = end_sessions(
                &tx,
                "tenant_id = ?1 AND user_id = ?2 AND (?3 IS NULL OR id <> ?3)",
                &[&t, &u, &keep],
                now,
            )?;
            tx.commit()?;
            Ok(ended.len() as u64)
        })
        .await
    }

    async fn rotate_refresh(
        &self,
        presented: &TokenHash,
        new: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Rotation> {
        let (presented, new) = (*presented, *new);
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let outcome = rotate(&tx, &presented, &new, now)?;
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn rotate_refresh_recorded(
        &self,
        presented: &TokenHash,
        new: &TokenHash,
        now: DateTime<Utc>,
        scope: Option<TenantId>,
        event: &AuditEvent,
    ) -> Result<RecordedRotation> {
        let (presented, new, event) = (*presented, *new, event.clone());
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(scope) = scope {
                let tenant: Option<String> = tx
                    .prepare_cached(
                        "SELECT f.tenant_id FROM cs_refresh_tokens t
                           JOIN cs_refresh_families f ON f.id = t.family_id WHERE t.hash = ?1",
                    )?
                    .query_row([hex(&presented)], |r| r.get(0))
                    .map(Some)
                    .or_else(|e| match e {
                        rusqlite::Error::QueryReturnedNoRows => Ok(None),
                        e => Err(e),
                    })?;
                if tenant.as_deref() != Some(id(scope.as_uuid()).as_str()) {
                    return Ok(RecordedRotation::refused(Rotation::Unknown));
                }
            }
            let rotation = rotate(&tx, &presented, &new, now)?;
            let Rotation::Rotated(f) = &rotation else {
                tx.commit()?;
                return Ok(RecordedRotation::refused(rotation));
            };
            let (t, s) = (id(f.tenant_id.as_uuid()), id(f.session_id.as_uuid()));
            let session = session_by_id(&tx, &t, &s)?;
            if session.as_ref().is_some_and(|s| s.is_live(now)) {
                let mut e = event;
                e.tenant_id = f.tenant_id;
                e.user_id = Some(f.user_id);
                super::identity::insert_event(&tx, &e)?;
            }
            let tenant = first(
                &tx,
                &format!("SELECT {TENANT_COLS} FROM cs_tenants WHERE id = ?1"),
                [t],
                read_tenant,
            )?;
            tx.commit()?;
            Ok(RecordedRotation {
                rotation,
                session,
                tenant,
            })
        })
        .await
    }

    async fn refresh_family(
        &self,
        tenant: TenantId,
        fid: FamilyId,
    ) -> Result<Option<RefreshFamily>> {
        self.fetch_optional(
            format!(
                "SELECT {FAMILY_COLS} FROM cs_refresh_families WHERE tenant_id = ?1 AND id = ?2"
            ),
            [id(tenant.as_uuid()), id(fid.as_uuid())],
            read_family,
        )
        .await
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        let now = micros(now);
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let sessions = tx.execute(
                "DELETE FROM cs_sessions WHERE expires_at <= ?1 OR absolute_expires_at <= ?1",
                [now],
            )?;
            let families = tx.execute(
                "DELETE FROM cs_refresh_families WHERE expires_at <= ?1 OR revoked_at < ?1",
                [now],
            )?;
            tx.commit()?;
            Ok((sessions + families) as u64)
        })
        .await
    }

    async fn count_live_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        let now = micros(now);
        self.call(move |c| {
            let n: i64 = c.query_row(
                "SELECT COUNT(*) FROM cs_sessions WHERE expires_at > ?1 AND absolute_expires_at > ?1",
                [now],
                |r| r.get(0),
            )?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }
}

/// [`decide_rotation`] on the family of `presented`, and its writes, in
/// the caller's transaction.
fn rotate(
    tx: &Connection,
    presented: &TokenHash,
    new: &TokenHash,
    now_t: DateTime<Utc>,
) -> Result<Rotation> {
    let (p, n) = (hex(presented), hex(new));
    let family = first(
        tx,
        &format!(
            "SELECT {} FROM cs_refresh_tokens t JOIN cs_refresh_families f ON f.id = t.family_id WHERE t.hash = ?1",
            FAMILY_COLS
                .split(", ")
                .map(|col| format!("f.{col}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        [&p],
        read_family,
    )?;
    let Some(family) = family else {
        return Ok(Rotation::Unknown);
    };
    let now = micros(now_t);
    let fid = id(family.id.as_uuid());
    let outcome = match decide_rotation(&family, presented, now_t) {
        RotationDecision::Revoked => Rotation::Revoked,
        RotationDecision::Expired => Rotation::Expired,
        RotationDecision::Superseded => Rotation::Superseded,
        RotationDecision::Rotate => {
            tx.execute(
                "UPDATE cs_refresh_families SET previous = current, current = ?2,
             generation = generation + 1, rotated_at = ?3 WHERE id = ?1",
                params![fid, n, now],
            )?;
            tx.execute(
                "INSERT INTO cs_refresh_tokens (hash, family_id) VALUES (?1, ?2)",
                params![n, fid],
            )?;
            let after = first(
                tx,
                &format!("SELECT {FAMILY_COLS} FROM cs_refresh_families WHERE id = ?1"),
                [&fid],
                read_family,
            )?
            .ok_or(SqliteError::NotFound("family"))?;
            Rotation::Rotated(after)
        }
        RotationDecision::Revoke => {
            tx.execute(
                "UPDATE cs_refresh_families SET revoked_at = ?2 WHERE id = ?1",
                params![fid, now],
            )?;
            end_sessions(tx, "id = ?1", &[&id(family.session_id.as_uuid())], now)?;
            Rotation::Reused(RefreshFamily {
                revoked_at: Some(now_t),
                ..family
            })
        }
    };
    Ok(outcome)
}
