//! The store trait implementations.

use chrono::{DateTime, Utc};
use countersign_core::store::{MAX_PAGE, resolve_methods};
use countersign_core::{
    AccountState, AuditEvent, AuditFilter, AuditQuery, AuthMethod, EmailAddress, EventId,
    FactorKind, FactorStore, FailureRecord, FlowRecord, FlowStore, Identifier, IdentityAdmin,
    IdentityAuthnLog, IdentityLookup, LockoutPolicy, MethodName, MethodRecord, Scope, Tenant,
    TenantFactor, TenantId, TenantPolicy, TenantProvision, TenantSlug, TokenHash, User, UserFactor,
    UserId, Versioned,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Params, Row, TransactionBehavior, params};

use crate::codec::{code, duration_micros, from_json, id, json, micros, time, uuid};
use crate::{Result, SqliteError, SqliteStore};

const USER_COLS: &str = "id, tenant_id, identifier, display_name, email, state, state_reason, \
                         created_at, updated_at, last_login_at";
const TENANT_COLS: &str = "id, slug, name, policy, created_at";
const EVENT_COLS: &str = "id, tenant_id, user_id, kind, status, factor, ip, user_agent, at, detail";

pub(crate) fn rows<T>(
    c: &Connection,
    sql: &str,
    p: impl Params,
    f: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = c.prepare_cached(sql)?;
    let mut rows = stmt.query(p)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(f(row)?);
    }
    Ok(out)
}

pub(crate) fn first<T>(
    c: &Connection,
    sql: &str,
    p: impl Params,
    f: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Option<T>> {
    let mut stmt = c.prepare_cached(sql)?;
    let mut rows = stmt.query(p)?;
    match rows.next()? {
        Some(row) => Ok(Some(f(row)?)),
        None => Ok(None),
    }
}

fn read_tenant(r: &Row<'_>) -> Result<Tenant> {
    Ok(Tenant {
        id: TenantId::from_uuid(uuid(&r.get::<_, String>(0)?)?),
        slug: TenantSlug::parse(&r.get::<_, String>(1)?)
            .map_err(|e| SqliteError::Corrupt(e.to_string()))?,
        name: r.get(2)?,
        policy: from_json(&r.get::<_, String>(3)?)?,
        created_at: time(r.get(4)?)?,
    })
}

fn read_user(r: &Row<'_>) -> Result<User> {
    let corrupt = |e: countersign_core::InvalidInput| SqliteError::Corrupt(e.to_string());
    Ok(User {
        id: UserId::from_uuid(uuid(&r.get::<_, String>(0)?)?),
        tenant_id: TenantId::from_uuid(uuid(&r.get::<_, String>(1)?)?),
        identifier: Identifier::parse(&r.get::<_, String>(2)?).map_err(corrupt)?,
        display_name: r.get(3)?,
        email: r
            .get::<_, Option<String>>(4)?
            .map(|e| EmailAddress::parse(&e))
            .transpose()
            .map_err(corrupt)?,
        state: code(&r.get::<_, String>(5)?)?,
        state_reason: r.get(6)?,
        created_at: time(r.get(7)?)?,
        updated_at: time(r.get(8)?)?,
        last_login_at: r.get::<_, Option<i64>>(9)?.map(time).transpose()?,
    })
}

fn read_failure(r: &Row<'_>) -> Result<FailureRecord> {
    Ok(FailureRecord {
        count: u32::try_from(r.get::<_, i64>(0)?).unwrap_or(u32::MAX),
        window_start: time(r.get(1)?)?,
        locked_until: r.get::<_, Option<i64>>(2)?.map(time).transpose()?,
    })
}

fn read_event(r: &Row<'_>) -> Result<AuditEvent> {
    Ok(AuditEvent {
        id: EventId::from_uuid(uuid(&r.get::<_, String>(0)?)?),
        tenant_id: TenantId::from_uuid(uuid(&r.get::<_, String>(1)?)?),
        user_id: r
            .get::<_, Option<String>>(2)?
            .map(|s| uuid(&s).map(UserId::from_uuid))
            .transpose()?,
        kind: code(&r.get::<_, String>(3)?)?,
        status: code(&r.get::<_, String>(4)?)?,
        factor: r
            .get::<_, Option<String>>(5)?
            .map(|s| code(&s))
            .transpose()?,
        ip: r
            .get::<_, Option<String>>(6)?
            .map(|s| code(&s))
            .transpose()?,
        user_agent: r.get(7)?,
        at: time(r.get(8)?)?,
        detail: r.get(9)?,
    })
}

fn read_versioned_factor(r: &Row<'_>) -> Result<Versioned<UserFactor>> {
    Ok(Versioned {
        value: from_json(&r.get::<_, String>(0)?)?,
        version: u64::try_from(r.get::<_, i64>(1)?)
            .map_err(|_| SqliteError::Corrupt("negative version".into()))?,
    })
}

fn read_method(r: &Row<'_>) -> Result<MethodRecord> {
    Ok(MethodRecord {
        method: from_json(&r.get::<_, String>(0)?)?,
        enabled: r.get(1)?,
    })
}

fn user_exists(c: &Connection, tenant: &str, user: &str) -> Result<bool> {
    Ok(
        c.prepare_cached("SELECT 1 FROM cs_users WHERE tenant_id = ?1 AND id = ?2")?
            .exists(params![tenant, user])?,
    )
}

pub(crate) fn require_user(c: &Connection, tenant: &str, user: &str) -> Result<()> {
    if user_exists(c, tenant, user)? {
        Ok(())
    } else {
        Err(SqliteError::NotFound("user"))
    }
}

fn tenant_methods(c: &Connection, tenant: &str) -> Result<Vec<MethodRecord>> {
    rows(
        c,
        "SELECT method, enabled FROM cs_tenant_methods WHERE tenant_id = ?1 ORDER BY name",
        [tenant],
        read_method,
    )
}

fn user_methods(c: &Connection, tenant: &str, user: &str) -> Result<Vec<MethodRecord>> {
    rows(
        c,
        "SELECT method, enabled FROM cs_user_methods WHERE tenant_id = ?1 AND user_id = ?2 ORDER BY name",
        [tenant, user],
        read_method,
    )
}

/// Whether changing the tenant method `name` to `enabled` (or removing it,
/// `None`) would leave the tenant without an enabled method.
fn leaves_no_enabled_method(
    c: &Connection,
    tenant: &str,
    name: &str,
    enabled: Option<bool>,
) -> Result<bool> {
    if enabled == Some(true) {
        return Ok(false);
    }
    let others: i64 = c.query_row(
        "SELECT COUNT(*) FROM cs_tenant_methods WHERE tenant_id = ?1 AND enabled AND name <> ?2",
        [tenant, name],
        |r| r.get(0),
    )?;
    let this_enabled = c
        .query_row(
            "SELECT enabled FROM cs_tenant_methods WHERE tenant_id = ?1 AND name = ?2",
            [tenant, name],
            |r| r.get::<_, bool>(0),
        )
        .optional()?
        .unwrap_or(false);
    Ok(this_enabled && others == 0)
}

impl IdentityLookup for SqliteStore {
    type Error = SqliteError;

    async fn get_tenant(&self, tenant: TenantId) -> Result<Option<Tenant>> {
        let t = id(tenant.as_uuid());
        self.call(move |c| {
            first(
                c,
                &format!("SELECT {TENANT_COLS} FROM cs_tenants WHERE id = ?1"),
                [t],
                read_tenant,
            )
        })
        .await
    }

    async fn find_tenant(&self, slug: &TenantSlug) -> Result<Option<Tenant>> {
        let s = slug.as_str().to_owned();
        self.call(move |c| {
            first(
                c,
                &format!("SELECT {TENANT_COLS} FROM cs_tenants WHERE slug = ?1"),
                [s],
                read_tenant,
            )
        })
        .await
    }

    async fn find_user(&self, tenant: TenantId, identifier: &Identifier) -> Result<Option<User>> {
        let (t, i) = (id(tenant.as_uuid()), identifier.as_str().to_owned());
        self.call(move |c| {
            first(
                c,
                &format!(
                    "SELECT {USER_COLS} FROM cs_users WHERE tenant_id = ?1 AND identifier = ?2"
                ),
                [t, i],
                read_user,
            )
        })
        .await
    }

    async fn get_user(&self, tenant: TenantId, user: UserId) -> Result<Option<User>> {
        let (t, u) = (id(tenant.as_uuid()), id(user.as_uuid()));
        self.call(move |c| {
            first(
                c,
                &format!("SELECT {USER_COLS} FROM cs_users WHERE tenant_id = ?1 AND id = ?2"),
                [t, u],
                read_user,
            )
        })
        .await
    }

    async fn get_user_cross_tenant(&self, user: UserId) -> Result<Option<User>> {
        let u = id(user.as_uuid());
        self.call(move |c| {
            first(
                c,
                &format!("SELECT {USER_COLS} FROM cs_users WHERE id = ?1"),
                [u],
                read_user,
            )
        })
        .await
    }

    async fn list_users(
        &self,
        tenant: TenantId,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<User>> {
        let t = id(tenant.as_uuid());
        let after = after.map(|a| id(a.as_uuid()));
        let limit = i64::from(limit.min(MAX_PAGE));
        self.call(move |c| {
            rows(
                c,
                &format!(
                    "SELECT {USER_COLS} FROM cs_users WHERE tenant_id = ?1 AND (?2 IS NULL OR id > ?2) \
                     ORDER BY id LIMIT ?3"
                ),
                params![t, after, limit],
                read_user,
            )
        })
        .await
    }

    async fn failure_record(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<FailureRecord>> {
        let (t, u) = (id(tenant.as_uuid()), id(user.as_uuid()));
        self.call(move |c| {
            first(
                c,
                "SELECT count, window_start, locked_until FROM cs_failures WHERE tenant_id = ?1 AND user_id = ?2",
                [t, u],
                read_failure,
            )
        })
        .await
    }
}

impl IdentityAuthnLog for SqliteStore {
    async fn record_event(&self, event: &AuditEvent) -> Result<()> {
        let e = event.clone();
        self.call(move |c| {
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
                e.user_agent,
                micros(e.at),
                e.detail,
            ])?;
            Ok(())
        })
        .await
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
        let now = micros(now);
        self.call(move |c| {
            // One statement: LockoutPolicy::next_failure in SQL. In the
            // UPDATE branch every column reads the row's old values.
            first(
                c,
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
                params![t, u, now, max, window, lock],
                read_failure,
            )?
            .ok_or(SqliteError::NotFound("user"))
        })
        .await
    }

    async fn reset_failed_attempts(&self, tenant: TenantId, user: UserId) -> Result<()> {
        let (t, u) = (id(tenant.as_uuid()), id(user.as_uuid()));
        self.call(move |c| {
            c.prepare_cached("DELETE FROM cs_failures WHERE tenant_id = ?1 AND user_id = ?2")?
                .execute([t, u])?;
            Ok(())
        })
        .await
    }

    async fn record_last_login(
        &self,
        tenant: TenantId,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let (t, u) = (id(tenant.as_uuid()), id(user.as_uuid()));
        self.call(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE cs_users SET last_login_at = ?3 WHERE tenant_id = ?1 AND id = ?2",
                )?
                .execute(params![t, u, micros(at)])?;
            if n == 0 {
                return Err(SqliteError::NotFound("user"));
            }
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
        let (t, p) = (id(tenant.as_uuid()), json(policy)?);
        self.call(move |c| {
            let n = c
                .prepare_cached("UPDATE cs_tenants SET policy = ?2 WHERE id = ?1")?
                .execute([t, p])?;
            if n == 0 {
                return Err(SqliteError::NotFound("tenant"));
            }
            Ok(())
        })
        .await
    }

    async fn create_user(&self, user: &User, credentials: &[UserFactor]) -> Result<()> {
        if user.tenant_id.is_system() || user.id.is_reserved() {
            return Err(SqliteError::Rejected("reserved id"));
        }
        let u = user.clone();
        let creds = credentials.to_vec();
        self.call(move |c| {
            let (tid, uid) = (id(u.tenant_id.as_uuid()), id(u.id.as_uuid()));
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let tenant_exists = tx
                .prepare_cached("SELECT 1 FROM cs_tenants WHERE id = ?1")?
                .exists([&tid])?;
            if !tenant_exists {
                return Err(SqliteError::NotFound("tenant"));
            }
            tx.execute(
                &format!("INSERT INTO cs_users ({USER_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
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
                ],
            )?;
            for f in &creds {
                tx.execute(
                    "INSERT INTO cs_user_factors (tenant_id, user_id, kind, config, version) VALUES (?1, ?2, ?3, ?4, 1)",
                    params![tid, uid, f.kind().as_str(), json(f)?],
                )?;
            }
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
        let (t, u) = (id(tenant.as_uuid()), id(user.as_uuid()));
        self.call(move |c| {
            rows(
                c,
                "SELECT phc FROM cs_password_history WHERE tenant_id = ?1 AND user_id = ?2 ORDER BY id DESC LIMIT ?3",
                params![t, u, i64::from(limit)],
                |r| Ok(r.get(0)?),
            )
        })
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
            // Credentials, methods, failures and history go by cascade.
            let n = tx.execute(
                "DELETE FROM cs_users WHERE tenant_id = ?1 AND id = ?2",
                [&t, &u],
            )?;
            if n == 0 {
                return Ok(false);
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

impl FactorStore for SqliteStore {
    type Error = SqliteError;

    async fn tenant_factor(
        &self,
        tenant: TenantId,
        kind: FactorKind,
    ) -> Result<Option<TenantFactor>> {
        let t = id(tenant.as_uuid());
        self.call(move |c| {
            first(
                c,
                "SELECT config FROM cs_tenant_factors WHERE tenant_id = ?1 AND kind = ?2",
                [t.as_str(), kind.as_str()],
                |r| from_json(&r.get::<_, String>(0)?),
            )
        })
        .await
    }

    async fn tenant_factors(&self, tenant: TenantId) -> Result<Vec<TenantFactor>> {
        let t = id(tenant.as_uuid());
        self.call(move |c| {
            rows(
                c,
                "SELECT config FROM cs_tenant_factors WHERE tenant_id = ?1 ORDER BY kind",
                [t],
                |r| from_json(&r.get::<_, String>(0)?),
            )
        })
        .await
    }

    async fn save_tenant_factor(&self, tenant: TenantId, factor: &TenantFactor) -> Result<()> {
        let (t, kind, config) = (id(tenant.as_uuid()), factor.kind().as_str(), json(factor)?);
        self.call(move |c| {
            c.prepare_cached(
                "INSERT INTO cs_tenant_factors (tenant_id, kind, config) VALUES (?1, ?2, ?3)
                 ON CONFLICT (tenant_id, kind) DO UPDATE SET config = excluded.config",
            )?
            .execute(params![t, kind, config])?;
            Ok(())
        })
        .await
    }

    async fn remove_tenant_factor(&self, tenant: TenantId, kind: FactorKind) -> Result<bool> {
        let t = id(tenant.as_uuid());
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let adopted = tx
                .prepare_cached(
                    "SELECT 1 FROM cs_tenant_factors WHERE tenant_id = ?1 AND kind = ?2",
                )?
                .exists([t.as_str(), kind.as_str()])?;
            if !adopted {
                return Ok(false);
            }
            let count: i64 = tx.query_row(
                "SELECT COUNT(*) FROM cs_tenant_factors WHERE tenant_id = ?1",
                [&t],
                |r| r.get(0),
            )?;
            if count <= 1 {
                return Err(SqliteError::Conflict("a tenant keeps at least one factor"));
            }
            tx.execute(
                "DELETE FROM cs_tenant_factors WHERE tenant_id = ?1 AND kind = ?2",
                [t.as_str(), kind.as_str()],
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn user_factor(
        &self,
        tenant: TenantId,
        user: UserId,
        kind: FactorKind,
    ) -> Result<Option<Versioned<UserFactor>>> {
        let (t, u) = (id(tenant.as_uuid()), id(user.as_uuid()));
        self.call(move |c| {
            first(
                c,
                "SELECT config, version FROM cs_user_factors WHERE tenant_id = ?1 AND user_id = ?2 AND kind = ?3",
                [t.as_str(), u.as_str(), kind.as_str()],
                read_versioned_factor,
            )
        })
        .await
    }

    async fn user_factors(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Vec<Versioned<UserFactor>>> {
        let (t, u) = (id(tenant.as_uuid()), id(user.as_uuid()));
        self.call(move |c| {
            rows(
                c,
                "SELECT config, version FROM cs_user_factors WHERE tenant_id = ?1 AND user_id = ?2 ORDER BY kind",
                [t, u],
                read_versioned_factor,
            )
        })
        .await
    }

    async fn compare_and_save_user_factor(
        &self,
        tenant: TenantId,
        user: UserId,
        expected: Option<u64>,
        factor: &UserFactor,
    ) -> Result<bool> {
        let (t, u) = (id(tenant.as_uuid()), id(user.as_uuid()));
        let (kind, config) = (factor.kind().as_str(), json(factor)?);
        self.call(move |c| {
            let n = match expected {
                None => c
                    .prepare_cached(
                        "INSERT INTO cs_user_factors (tenant_id, user_id, kind, config, version)
                         SELECT ?1, ?2, ?3, ?4, 1
                         WHERE EXISTS (SELECT 1 FROM cs_users WHERE tenant_id = ?1 AND id = ?2)
                         ON CONFLICT (tenant_id, user_id, kind) DO NOTHING",
                    )?
                    .execute(params![t, u, kind, config])?,
                Some(v) => {
                    let v = i64::try_from(v)
                        .map_err(|_| SqliteError::Conflict("version out of range"))?;
                    c.prepare_cached(
                        "UPDATE cs_user_factors SET config = ?4, version = version + 1
                         WHERE tenant_id = ?1 AND user_id = ?2 AND kind = ?3 AND version = ?5",
                    )?
                    .execute(params![t, u, kind, config, v])?
                }
            };
            if n == 0 {
                require_user(c, &t, &u)?;
            }
            Ok(n == 1)
        })
        .await
    }

    async fn remove_user_factor(
        &self,
        tenant: TenantId,
        user: UserId,
        kind: FactorKind,
    ) -> Result<bool> {
        let (t, u) = (id(tenant.as_uuid()), id(user.as_uuid()));
        self.call(move |c| {
            let n = c
                .prepare_cached("DELETE FROM cs_user_factors WHERE tenant_id = ?1 AND user_id = ?2 AND kind = ?3")?
                .execute([t.as_str(), u.as_str(), kind.as_str()])?;
            Ok(n == 1)
        })
        .await
    }

    async fn save_method(&self, scope: Scope, method: &AuthMethod, enabled: bool) -> Result<()> {
        let (name, body) = (method.name.as_str().to_owned(), json(method)?);
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let t = id(scope.tenant().as_uuid());
            match scope.user() {
                None => {
                    let exists = tx.prepare_cached("SELECT 1 FROM cs_tenants WHERE id = ?1")?.exists([&t])?;
                    if !exists {
                        return Err(SqliteError::NotFound("tenant"));
                    }
                    if leaves_no_enabled_method(&tx, &t, &name, Some(enabled))? {
                        return Err(SqliteError::Conflict("a tenant keeps at least one enabled method"));
                    }
                    tx.execute(
                        "INSERT INTO cs_tenant_methods (tenant_id, name, method, enabled) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (tenant_id, name) DO UPDATE SET method = excluded.method, enabled = excluded.enabled",
                        params![t, name, body, enabled],
                    )?;
                }
                Some(user) => {
                    let u = id(user.as_uuid());
                    require_user(&tx, &t, &u)?;
                    tx.execute(
                        "INSERT INTO cs_user_methods (tenant_id, user_id, name, method, enabled) VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (tenant_id, user_id, name) DO UPDATE SET method = excluded.method, enabled = excluded.enabled",
                        params![t, u, name, body, enabled],
                    )?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn methods(&self, scope: Scope) -> Result<Vec<MethodRecord>> {
        self.call(move |c| {
            let t = id(scope.tenant().as_uuid());
            match scope.user() {
                None => tenant_methods(c, &t),
                Some(u) => user_methods(c, &t, &id(u.as_uuid())),
            }
        })
        .await
    }

    async fn set_method_enabled(
        &self,
        scope: Scope,
        name: &MethodName,
        enabled: bool,
    ) -> Result<bool> {
        let name = name.as_str().to_owned();
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let t = id(scope.tenant().as_uuid());
            let n = match scope.user() {
                None => {
                    if leaves_no_enabled_method(&tx, &t, &name, Some(enabled))? {
                        return Err(SqliteError::Conflict("a tenant keeps at least one enabled method"));
                    }
                    tx.execute(
                        "UPDATE cs_tenant_methods SET enabled = ?3 WHERE tenant_id = ?1 AND name = ?2",
                        params![t, name, enabled],
                    )?
                }
                Some(u) => tx.execute(
                    "UPDATE cs_user_methods SET enabled = ?4 WHERE tenant_id = ?1 AND user_id = ?2 AND name = ?3",
                    params![t, id(u.as_uuid()), name, enabled],
                )?,
            };
            tx.commit()?;
            Ok(n == 1)
        })
        .await
    }

    async fn remove_method(&self, scope: Scope, name: &MethodName) -> Result<bool> {
        let name = name.as_str().to_owned();
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let t = id(scope.tenant().as_uuid());
            let n = match scope.user() {
                None => {
                    if leaves_no_enabled_method(&tx, &t, &name, None)? {
                        return Err(SqliteError::Conflict("a tenant keeps at least one enabled method"));
                    }
                    tx.execute("DELETE FROM cs_tenant_methods WHERE tenant_id = ?1 AND name = ?2", [&t, &name])?
                }
                Some(u) => tx.execute(
                    "DELETE FROM cs_user_methods WHERE tenant_id = ?1 AND user_id = ?2 AND name = ?3",
                    [&t, &id(u.as_uuid()), &name],
                )?,
            };
            tx.commit()?;
            Ok(n == 1)
        })
        .await
    }

    async fn available_methods(&self, tenant: TenantId, user: UserId) -> Result<Vec<AuthMethod>> {
        let (t, u) = (id(tenant.as_uuid()), id(user.as_uuid()));
        self.call(move |c| {
            if !user_exists(c, &t, &u)? {
                return Ok(Vec::new());
            }
            Ok(resolve_methods(
                &tenant_methods(c, &t)?,
                &user_methods(c, &t, &u)?,
            ))
        })
        .await
    }
}

impl AuditQuery for SqliteStore {
    type Error = SqliteError;

    async fn query_events(
        &self,
        tenant: TenantId,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEvent>> {
        let t = id(tenant.as_uuid());
        let f = filter.clone();
        self.call(move |c| {
            let mut sql = format!("SELECT {EVENT_COLS} FROM cs_audit_events WHERE tenant_id = ?1");
            let mut args: Vec<Value> = vec![Value::Text(t)];
            let mut push = |clause: &str, v: Value| {
                args.push(v);
                sql.push_str(&format!(" AND {clause} ?{}", args.len()));
            };
            if let Some(u) = f.user_id {
                push("user_id =", Value::Text(id(u.as_uuid())));
            }
            if let Some(k) = f.kind {
                push("kind =", Value::Text(k.as_str().into()));
            }
            if let Some(s) = f.status {
                push("status =", Value::Text(s.as_str().into()));
            }
            if let Some(from) = f.from {
                push("at >=", Value::Integer(micros(from)));
            }
            if let Some(until) = f.until {
                push("at <", Value::Integer(micros(until)));
            }
            args.push(Value::Integer(i64::from(f.effective_limit())));
            sql.push_str(&format!(" ORDER BY at DESC, id DESC LIMIT ?{}", args.len()));
            rows(c, &sql, rusqlite::params_from_iter(args), read_event)
        })
        .await
    }
}

const FLOW_COLS: &str = "state, version, key, tenant_id, user_id, created_at, expires_at";

fn read_flow(r: &Row<'_>) -> Result<Versioned<FlowRecord>> {
    let key: String = r.get(2)?;
    Ok(Versioned {
        value: FlowRecord {
            key: TokenHash::from_hex(&key)
                .ok_or_else(|| SqliteError::Corrupt("bad flow key".into()))?,
            tenant_id: TenantId::from_uuid(uuid(&r.get::<_, String>(3)?)?),
            user_id: r
                .get::<_, Option<String>>(4)?
                .map(|s| uuid(&s).map(UserId::from_uuid))
                .transpose()?,
            state: from_json(&r.get::<_, String>(0)?)?,
            created_at: time(r.get(5)?)?,
            expires_at: time(r.get(6)?)?,
        },
        version: u64::try_from(r.get::<_, i64>(1)?)
            .map_err(|_| SqliteError::Corrupt("negative version".into()))?,
    })
}

impl FlowStore for SqliteStore {
    type Error = SqliteError;

    async fn create_flow(&self, flow: &FlowRecord) -> Result<()> {
        let f = flow.clone();
        let state = json(&flow.state)?;
        self.call(move |c| {
            let t = id(f.tenant_id.as_uuid());
            let u = f.user_id.map(|u| id(u.as_uuid()));
            let tenant_exists = c
                .prepare_cached("SELECT 1 FROM cs_tenants WHERE id = ?1")?
                .exists([&t])?;
            if !tenant_exists {
                return Err(SqliteError::NotFound("tenant"));
            }
            if let Some(u) = &u {
                require_user(c, &t, u)?;
            }
            c.prepare_cached(&format!(
                "INSERT INTO cs_flows ({FLOW_COLS}) VALUES (?1, 1, ?2, ?3, ?4, ?5, ?6)"
            ))?
            .execute(params![
                state,
                f.key.to_hex(),
                t,
                u,
                micros(f.created_at),
                micros(f.expires_at)
            ])?;
            Ok(())
        })
        .await
    }

    async fn flow(
        &self,
        tenant: TenantId,
        key: &TokenHash,
    ) -> Result<Option<Versioned<FlowRecord>>> {
        let (t, k) = (id(tenant.as_uuid()), key.to_hex());
        self.call(move |c| {
            first(
                c,
                &format!("SELECT {FLOW_COLS} FROM cs_flows WHERE tenant_id = ?1 AND key = ?2"),
                [t, k],
                read_flow,
            )
        })
        .await
    }

    async fn compare_and_save_flow(&self, expected: u64, flow: &FlowRecord) -> Result<bool> {
        let f = flow.clone();
        let state = json(&flow.state)?;
        let expected =
            i64::try_from(expected).map_err(|_| SqliteError::Conflict("version out of range"))?;
        self.call(move |c| {
            let t = id(f.tenant_id.as_uuid());
            let u = f.user_id.map(|u| id(u.as_uuid()));
            if let Some(u) = &u {
                require_user(c, &t, u)?;
            }
            let n = c
                .prepare_cached(
                    "UPDATE cs_flows SET state = ?1, version = version + 1, user_id = ?4, expires_at = ?5
                     WHERE tenant_id = ?2 AND key = ?3 AND version = ?6",
                )?
                .execute(params![state, t, f.key.to_hex(), u, micros(f.expires_at), expected])?;
            Ok(n == 1)
        })
        .await
    }

    async fn delete_flow(&self, tenant: TenantId, key: &TokenHash) -> Result<bool> {
        let (t, k) = (id(tenant.as_uuid()), key.to_hex());
        self.call(move |c| {
            let n = c
                .prepare_cached("DELETE FROM cs_flows WHERE tenant_id = ?1 AND key = ?2")?
                .execute([t, k])?;
            Ok(n == 1)
        })
        .await
    }

    async fn delete_expired_flows(&self, now: DateTime<Utc>) -> Result<u64> {
        self.call(move |c| {
            let n = c
                .prepare_cached("DELETE FROM cs_flows WHERE expires_at <= ?1")?
                .execute([micros(now)])?;
            Ok(n as u64)
        })
        .await
    }
}
