//! `IdentityLookup`, `IdentityAuthnLog` and `IdentityAdmin` in SQLite.

use chrono::{DateTime, Utc};
use countersign_core::store::MAX_PAGE;
use countersign_core::{
    AccountState, AuditDetail, AuditEvent, EmailAddress, FactorCredential, FactorKind,
    FailureRecord, HistoryEntry, Identifier, IdentityAdmin, IdentityAuthnLog, IdentityLookup,
    LockoutPolicy, Profile, Tenant, TenantId, TenantPolicy, TenantProvision, TenantSlug, Tier,
    User, UserId, UserQuery,
};
use rusqlite::{TransactionBehavior, params};

use super::{require_tenant, require_user};
use crate::codec::{
    EVENT_COLS, FAILURE_COLS, TENANT_COLS, USER_COLS, duration_micros, id, json, like_pattern,
    micros, read_failure, read_tenant, read_user,
};
use crate::{Result, SqliteError, SqliteStore};

impl IdentityLookup for SqliteStore {
    type Error = SqliteError;

    async fn get_tenant(&self, tenant: TenantId) -> Result<Option<Tenant>> {
        self.read_optional(
            format!("SELECT {TENANT_COLS} FROM cs_tenants WHERE id = ?1"),
            [id(tenant.as_uuid())],
            read_tenant,
        )
        .await
    }

    async fn find_tenant(&self, slug: &TenantSlug) -> Result<Option<Tenant>> {
        self.read_optional(
            format!("SELECT {TENANT_COLS} FROM cs_tenants WHERE slug = ?1"),
            [slug.as_str().to_owned()],
            read_tenant,
        )
        .await
    }

    async fn find_user(&self, tenant: TenantId, identifier: &Identifier) -> Result<Option<User>> {
        self.read_optional(
            format!("SELECT {USER_COLS} FROM cs_users WHERE tenant_id = ?1 AND identifier = ?2"),
            [id(tenant.as_uuid()), identifier.as_str().to_owned()],
            read_user,
        )
        .await
    }

    async fn get_user(&self, tenant: TenantId, user: UserId) -> Result<Option<User>> {
        self.read_optional(
            format!("SELECT {USER_COLS} FROM cs_users WHERE tenant_id = ?1 AND id = ?2"),
            [id(tenant.as_uuid()), id(user.as_uuid())],
            read_user,
        )
        .await
    }

    async fn get_user_cross_tenant(&self, user: UserId) -> Result<Option<User>> {
        self.read_optional(
            format!("SELECT {USER_COLS} FROM cs_users WHERE id = ?1"),
            [id(user.as_uuid())],
            read_user,
        )
        .await
    }

    async fn list_users(
        &self,
        tenant: TenantId,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<User>> {
        let after = after.map(|a| id(a.as_uuid()));
        let limit = i64::from(limit.min(MAX_PAGE));
        self.fetch_all(
            format!(
                "SELECT {USER_COLS} FROM cs_users WHERE tenant_id = ?1 AND (?2 IS NULL OR id > ?2) \
                 ORDER BY id LIMIT ?3"
            ),
            (id(tenant.as_uuid()), after, limit),
            read_user,
        )
        .await
    }

    async fn search_users(&self, tenant: TenantId, query: &UserQuery) -> Result<Vec<User>> {
        let after = query.after.map(|a| id(a.as_uuid()));
        let text = query.text.as_deref().map(like_pattern);
        let state = query.state.map(|s| s.as_str().to_owned());
        let tier = query.tier.as_ref().map(|t| t.as_str().to_owned());
        let limit = i64::from(query.limit.min(MAX_PAGE));
        self.fetch_all(
            format!(
                "SELECT {USER_COLS} FROM cs_users WHERE tenant_id = ?1 AND (?2 IS NULL OR id > ?2) \
                 AND (?3 IS NULL OR lower(identifier) LIKE ?3 ESCAPE '\\' \
                      OR lower(email) LIKE ?3 ESCAPE '\\' \
                      OR lower(display_name) LIKE ?3 ESCAPE '\\') \
                 AND (?4 IS NULL OR state = ?4) AND (?5 IS NULL OR tier = ?5) \
                 ORDER BY id LIMIT ?6"
            ),
            (id(tenant.as_uuid()), after, text, state, tier, limit),
            read_user,
        )
        .await
    }

    async fn failure_record(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<FailureRecord>> {
        self.read_optional(
            format!("SELECT {FAILURE_COLS} FROM cs_failures WHERE tenant_id = ?1 AND user_id = ?2"),
            [id(tenant.as_uuid()), id(user.as_uuid())],
            read_failure,
        )
        .await
    }
}

impl IdentityAuthnLog for SqliteStore {
    async fn record_event(&self, event: &AuditEvent) -> Result<()> {
        let e = event.clone();
        self.call(move |c| insert_event(c, &e)).await
    }

    async fn record_failed_attempt(
        &self,
        tenant: TenantId,
        user: UserId,
        policy: &LockoutPolicy,
        now: DateTime<Utc>,
    ) -> Result<FailureRecord> {
        let (t, u) = (id(tenant.as_uuid()), id(user.as_uuid()));
        let (max, window, lock) = (
            i64::from(policy.max_attempts),
            duration_micros(policy.window),
            duration_micros(policy.lock_duration),
        );
        // One statement: LockoutPolicy::next_failure in SQL. In the UPDATE
        // branch every column reads the row's old values.
        self.fetch_optional(
            "INSERT INTO cs_failures (tenant_id, user_id, count, window_start, locked_until)
             SELECT ?1, ?2, 1, ?3, CASE WHEN 1 >= ?4 THEN ?3 + ?6 END
             WHERE EXISTS (SELECT 1 FROM cs_users WHERE tenant_id = ?1 AND id = ?2)
             ON CONFLICT (tenant_id, user_id) DO UPDATE SET
               count = CASE
                 WHEN (locked_until IS NOT NULL AND ?3 >= locked_until)
                   OR (locked_until IS NULL AND ?3 >= window_start + ?5) THEN 1
                 ELSE count + 1 END,
               window_start = CASE
                 WHEN (locked_until IS NOT NULL AND ?3 >= locked_until)
                   OR (locked_until IS NULL AND ?3 >= window_start + ?5) THEN ?3
                 ELSE window_start END,
               locked_until = CASE
                 WHEN (locked_until IS NOT NULL AND ?3 >= locked_until)
                   OR (locked_until IS NULL AND ?3 >= window_start + ?5)
                   THEN CASE WHEN 1 >= ?4 THEN ?3 + ?6 END
                 WHEN locked_until IS NULL AND count + 1 >= ?4 THEN ?3 + ?6
                 ELSE locked_until END
             RETURNING count, window_start, locked_until",
            (t, u, micros(now), max, window, lock),
            read_failure,
        )
        .await?
        .ok_or(SqliteError::NotFound("user"))
    }

    async fn reset_failed_attempts(&self, tenant: TenantId, user: UserId) -> Result<()> {
        let (t, u) = (id(tenant.as_uuid()), id(user.as_uuid()));
        self.call(move |c| forget_failures(c, &t, &u)).await
    }

    async fn record_last_login(
        &self,
        tenant: TenantId,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let (t, u) = (id(tenant.as_uuid()), id(user.as_uuid()));
        self.call(move |c| set_last_login(c, &t, &u, at)).await
    }

    async fn record_login(
        &self,
        tenant: TenantId,
        user: UserId,
        at: DateTime<Utc>,
        events: &[AuditEvent],
    ) -> Result<()> {
        let (t, u) = (id(tenant.as_uuid()), id(user.as_uuid()));
        let events = events.to_vec();
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            set_last_login(&tx, &t, &u, at)?;
            forget_failures(&tx, &t, &u)?;
            for e in &events {
                insert_event(&tx, e)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

impl IdentityAdmin for SqliteStore {
    async fn provision_tenant(&self, provision: &TenantProvision) -> Result<()> {
        let p = provision.clone();
        self.call(move |c| {
            let t = p.tenant();
            if t.id.is_system() {
                return Err(SqliteError::Rejected("the system tenant is reserved"));
            }
            let tid = id(t.id.as_uuid());
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                &format!("INSERT INTO cs_tenants ({TENANT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
                params![tid, t.slug.as_str(), t.name, json(&t.policy)?, micros(t.created_at)],
            )?;
            for f in p.factors() {
                tx.execute(
                    "INSERT INTO cs_tenant_factors (tenant_id, kind, config) VALUES (?1, ?2, ?3)",
                    params![tid, f.kind().as_str(), json(f)?],
                )?;
            }
            for m in p.methods() {
                tx.execute(
                    "INSERT INTO cs_tenant_methods (tenant_id, name, method, enabled) VALUES (?1, ?2, ?3, 1)",
                    params![tid, m.name.as_str(), json(m)?],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn update_tenant_policy(&self, tenant: TenantId, policy: &TenantPolicy) -> Result<()> {
        let n = self
            .execute(
                "UPDATE cs_tenants SET policy = ?2 WHERE id = ?1",
                [id(tenant.as_uuid()), json(policy)?],
            )
            .await?;
        if n == 0 {
            return Err(SqliteError::NotFound("tenant"));
        }
        Ok(())
    }

    async fn create_user(&self, user: &User, credentials: &[FactorCredential]) -> Result<()> {
        if user.tenant_id.is_system() || user.id.is_reserved() {
            return Err(SqliteError::Rejected("reserved id"));
        }
        let u = user.clone();
        let creds = credentials.to_vec();
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            insert_user(&tx, &u, &creds)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn register_user(
        &self,
        user: &User,
        credentials: &[FactorCredential],
        history: Option<&HistoryEntry>,
        event: &AuditEvent,
    ) -> Result<()> {
        if user.tenant_id.is_system() || user.id.is_reserved() {
            return Err(SqliteError::Rejected("reserved id"));
        }
        let (u, creds, h, e) = (
            user.clone(),
            credentials.to_vec(),
            history.cloned(),
            event.clone(),
        );
        self.call(move |c| {
            // One transaction: the user, its history and its audit event
            // commit together or not at all.
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            insert_user(&tx, &u, &creds)?;
            if let Some(h) = &h {
                let (t, uid) = (id(u.tenant_id.as_uuid()), id(u.id.as_uuid()));
                insert_history(&tx, &t, &uid, &h.phc, h.at, h.keep)?;
            }
            insert_event(&tx, &e)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn set_user_state(
        &self,
        tenant: TenantId,
        user: UserId,
        from: AccountState,
        to: AccountState,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let (t, u) = (id(tenant.as_uuid()), id(user.as_uuid()));
        let reason = reason.map(str::to_owned);
        self.call(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE cs_users SET state = ?4, state_reason = ?5, updated_at = ?6
                     WHERE tenant_id = ?1 AND id = ?2 AND state = ?3",
                )?
                .execute(params![
                    t,
                    u,
                    from.as_str(),
                    to.as_str(),
                    reason,
                    micros(at)
                ])?;
            if n == 0 {
                require_user(c, &t, &u)?;
            }
            Ok(n == 1)
        })
        .await
    }

    async fn update_profile(
        &self,
        tenant: TenantId,
        user: UserId,
        profile: &Profile,
        expected_updated_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let (t, u) = (id(tenant.as_uuid()), id(user.as_uuid()));
        let name = profile.display_name.clone();
        let tier = profile.tier.as_ref().map(Tier::as_str).map(str::to_owned);
        let attributes = json(&profile.attributes)?;
        self.call(move |c| {
            // One statement: the compare and the set cannot be split.
            let n = c
                .prepare_cached(
                    "UPDATE cs_users SET display_name = ?3, tier = ?4, attributes = ?5,
                            updated_at = ?7
                     WHERE tenant_id = ?1 AND id = ?2 AND updated_at = ?6",
                )?
                .execute(params![
                    t,
                    u,
                    name,
                    tier,
                    attributes,
                    micros(expected_updated_at),
                    micros(at)
                ])?;
            if n == 0 {
                require_user(c, &t, &u)?;
            }
            Ok(n == 1)
        })
        .await
    }

    async fn push_password_history(
        &self,
        tenant: TenantId,
        user: UserId,
        phc: &str,
        at: DateTime<Utc>,
        keep: u32,
    ) -> Result<()> {
        let (t, u, phc) = (id(tenant.as_uuid()), id(user.as_uuid()), phc.to_owned());
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            require_user(&tx, &t, &u)?;
            insert_history(&tx, &t, &u, &phc, at, keep)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn password_history(
        &self,
        tenant: TenantId,
        user: UserId,
        limit: u32,
    ) -> Result<Vec<String>> {
        self.fetch_all(
            "SELECT phc FROM cs_password_history WHERE tenant_id = ?1 AND user_id = ?2 ORDER BY id DESC LIMIT ?3",
            (id(tenant.as_uuid()), id(user.as_uuid()), i64::from(limit)),
            |r| Ok(r.get(0)?),
        )
        .await
    }

    async fn erase_user(&self, tenant: TenantId, user: UserId, pseudonym: UserId) -> Result<bool> {
        let (t, u, p) = (
            id(tenant.as_uuid()),
            id(user.as_uuid()),
            id(pseudonym.as_uuid()),
        );
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // The user's roles and direct grants go first, counted: if any
            // went, the tenant's RBAC version moves on with them.
            let rbac = tx.execute(
                "DELETE FROM cs_rbac_assignments WHERE tenant_id = ?1 AND user_id = ?2",
                [&t, &u],
            )? + tx.execute(
                "DELETE FROM cs_rbac_direct_grants WHERE tenant_id = ?1 AND user_id = ?2",
                [&t, &u],
            )?;
            // Credentials, methods, failures, history, flows, sessions,
            // pending verifications and linked identities go by cascade.
            let n = tx.execute(
                "DELETE FROM cs_users WHERE tenant_id = ?1 AND id = ?2",
                [&t, &u],
            )?;
            if n == 0 {
                return Ok(false);
            }
            if rbac > 0 {
                super::rbac::bump_version(&tx, &t)?;
            }
            tx.execute(
                "UPDATE cs_audit_events SET user_id = ?3, ip = NULL, user_agent = NULL
                 WHERE tenant_id = ?1 AND user_id = ?2",
                [&t, &u, &p],
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }
}

/// Record a login of the user at `at`; `NotFound` if the tenant lacks it.
fn set_last_login(c: &rusqlite::Connection, t: &str, u: &str, at: DateTime<Utc>) -> Result<()> {
    let n = c
        .prepare_cached("UPDATE cs_users SET last_login_at = ?3 WHERE tenant_id = ?1 AND id = ?2")?
        .execute((t, u, micros(at)))?;
    if n == 0 {
        return Err(SqliteError::NotFound("user"));
    }
    Ok(())
}

/// Forget the user's failed attempts.
fn forget_failures(c: &rusqlite::Connection, t: &str, u: &str) -> Result<()> {
    c.prepare_cached("DELETE FROM cs_failures WHERE tenant_id = ?1 AND user_id = ?2")?
        .execute((t, u))?;
    Ok(())
}

/// Insert one audit event.
pub(super) fn insert_event(c: &rusqlite::Connection, e: &AuditEvent) -> Result<()> {
    c.prepare_cached(&format!(
        "INSERT INTO cs_audit_events ({EVENT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))?
    .execute(params![
        id(e.id.as_uuid()),
        id(e.tenant_id.as_uuid()),
        e.user_id.map(|u| id(u.as_uuid())),
        e.kind.as_str(),
        e.status.as_str(),
        e.factor.map(FactorKind::as_str),
        e.ip.map(|ip| ip.to_string()),
        e.user_agent.as_deref(),
        micros(e.at),
        e.detail.as_ref().map(AuditDetail::code),
    ])?;
    Ok(())
}

/// Insert a user and its first credentials (inside the caller's
/// transaction).
pub(super) fn insert_user(
    tx: &rusqlite::Transaction<'_>,
    u: &User,
    creds: &[FactorCredential],
) -> Result<()> {
    let (tid, uid) = (id(u.tenant_id.as_uuid()), id(u.id.as_uuid()));
    require_tenant(tx, &tid)?;
    tx.execute(
        &format!(
            "INSERT INTO cs_users ({USER_COLS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        ),
        params![
            uid,
            tid,
            u.identifier.as_str(),
            u.display_name,
            u.email.as_ref().map(EmailAddress::as_str),
            u.state.as_str(),
            u.state_reason,
            micros(u.created_at),
            micros(u.updated_at),
            u.last_login_at.map(micros),
            u.tier.as_ref().map(Tier::as_str),
            json(&u.attributes)?,
        ],
    )?;
    for f in creds {
        tx.execute(
            "INSERT INTO cs_user_factors (tenant_id, user_id, kind, config, version) VALUES (?1, ?2, ?3, ?4, 1)",
            params![tid, uid, f.kind().as_str(), json(f)?],
        )?;
    }
    Ok(())
}

/// Add a password hash to a user's history, keeping the newest `keep`
/// (inside the caller's transaction).
fn insert_history(
    tx: &rusqlite::Transaction<'_>,
    t: &str,
    u: &str,
    phc: &str,
    at: DateTime<Utc>,
    keep: u32,
) -> Result<()> {
    tx.execute(
        "INSERT INTO cs_password_history (tenant_id, user_id, phc, at) VALUES (?1, ?2, ?3, ?4)",
        params![t, u, phc, micros(at)],
    )?;
    tx.execute(
        "DELETE FROM cs_password_history WHERE tenant_id = ?1 AND user_id = ?2 AND id NOT IN (
           SELECT id FROM cs_password_history WHERE tenant_id = ?1 AND user_id = ?2
           ORDER BY id DESC LIMIT ?3)",
        params![t, u, i64::from(keep)],
    )?;
    Ok(())
}
