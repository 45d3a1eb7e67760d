//! `IdentityLookup`, `IdentityAuthnLog` and `IdentityAdmin` in SQL.
//!
//! Every read but [`list_users`](IdentityLookup::list_users) and
//! [`search_users`](IdentityLookup::search_users) goes to the main pool
//! (users, tenants and failure records decide logins); the listings may be
//! served by the read pool.

use chrono::{DateTime, Utc};
use countersign_core::store::MAX_PAGE;
use countersign_core::{
    AccountState, AuditDetail, AuditEvent, FactorCredential, FactorKind, FailureRecord,
    HistoryEntry, Identifier, IdentityAdmin, IdentityAuthnLog, IdentityLookup, LockoutPolicy,
    Profile, StoreErrorKind, Tenant, TenantId, TenantPolicy, TenantProvision, TenantSlug, Tier,
    User, UserId, UserQuery,
};
use sqlx::types::Json;

use super::{all, commit, compare_and_save, execute, limit, optional, reject_if};
use crate::codec::{self, tenant_cols, user_cols};
use crate::error::{PgError, Phase, db, db_commit, unique_violation};
use crate::retry::Idempotence::{Idempotent, Once};
use crate::{PostgresStore, Result};

impl IdentityLookup for PostgresStore {
    type Error = PgError;

    async fn get_tenant(&self, tenant: TenantId) -> Result<Option<Tenant>> {
        let stmt = || {
            sqlx::query(concat!(
                "SELECT ",
                tenant_cols!(),
                " FROM cs_tenants WHERE id = $1"
            ))
            .bind(tenant.as_uuid())
        };
        self.lookup("get_tenant", "reading a tenant", stmt, codec::tenant)
            .await
    }

    async fn find_tenant(&self, slug: &TenantSlug) -> Result<Option<Tenant>> {
        let stmt = || {
            sqlx::query(concat!(
                "SELECT ",
                tenant_cols!(),
                " FROM cs_tenants WHERE slug = $1"
            ))
            .bind(slug.as_str())
        };
        self.lookup("find_tenant", "finding a tenant", stmt, codec::tenant)
            .await
    }

    async fn find_user(&self, tenant: TenantId, identifier: &Identifier) -> Result<Option<User>> {
        let stmt = || {
            sqlx::query(concat!(
                "SELECT ",
                user_cols!(),
                " FROM cs_users WHERE tenant_id = $1 AND identifier = $2"
            ))
            .bind(tenant.as_uuid())
            .bind(identifier.as_str())
        };
        self.lookup("find_user", "finding a user", stmt, codec::user)
            .await
    }

    async fn get_user(&self, tenant: TenantId, user: UserId) -> Result<Option<User>> {
        let stmt = || {
            sqlx::query(concat!(
                "SELECT ",
                user_cols!(),
                " FROM cs_users WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
        };
        self.lookup("get_user", "reading a user", stmt, codec::user)
            .await
    }

    async fn get_user_cross_tenant(&self, user: UserId) -> Result<Option<User>> {
        let stmt = || {
            sqlx::query(concat!(
                "SELECT ",
                user_cols!(),
                " FROM cs_users WHERE id = $1"
            ))
            .bind(user.as_uuid())
        };
        self.lookup("get_user_cross_tenant", "reading a user", stmt, codec::user)
            .await
    }

    async fn list_users(
        &self,
        tenant: TenantId,
        after: Option<UserId>,
        n: u32,
    ) -> Result<Vec<User>> {
        let n = limit(n.min(MAX_PAGE));
        let stmt = || match after {
            Some(after) => sqlx::query(concat!(
                "SELECT ",
                user_cols!(),
                " FROM cs_users WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
            ))
            .bind(tenant.as_uuid())
            .bind(after.as_uuid())
            .bind(n),
            None => sqlx::query(concat!(
                "SELECT ",
                user_cols!(),
                " FROM cs_users WHERE tenant_id = $1 ORDER BY id LIMIT $2"
            ))
            .bind(tenant.as_uuid())
            .bind(n),
        };
        self.replica_lookup_all("list_users", "listing users", stmt, codec::user)
            .await
    }

    async fn search_users(&self, tenant: TenantId, query: &UserQuery) -> Result<Vec<User>> {
        let n = limit(query.limit.min(MAX_PAGE));
        // The nil id sorts before every user id (and is never one), so a
        // missing cursor keeps the id range usable by the index.
        let after = query.after.map_or(uuid::Uuid::nil(), |a| *a.as_uuid());
        let text = query.text.as_deref().map(codec::like_pattern);
        let stmt = || {
            sqlx::query(concat!(
                "SELECT ",
                user_cols!(),
                " FROM cs_users WHERE tenant_id = $1 AND id > $2
                   AND ($3::text IS NULL OR identifier ILIKE $3 ESCAPE '\\'
                        OR email ILIKE $3 ESCAPE '\\' OR display_name ILIKE $3 ESCAPE '\\')
                   AND ($4::text IS NULL OR state = $4)
                   AND ($5::text IS NULL OR tier = $5)
                 ORDER BY id LIMIT $6"
            ))
            .bind(tenant.as_uuid())
            .bind(after)
            .bind(text.clone())
            .bind(query.state.map(AccountState::as_str))
            .bind(query.tier.as_ref().map(Tier::as_str))
            .bind(n)
        };
        self.replica_lookup_all("search_users", "searching users", stmt, codec::user)
            .await
    }

    async fn failure_record(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<FailureRecord>> {
        let stmt = || {
            sqlx::query(
                "SELECT count, window_start, locked_until FROM cs_failures
                  WHERE tenant_id = $1 AND user_id = $2",
            )
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
        };
        self.lookup(
            "failure_record",
            "reading a failure record",
            stmt,
            codec::failure,
        )
        .await
    }
}

impl IdentityAuthnLog for PostgresStore {
    /// Idempotent on the event id: recording an event twice stores it once
    /// (which makes retrying a failed append harmless).
    async fn record_event(&self, e: &AuditEvent) -> Result<()> {
        self.retry
            .run("record_event", Idempotent, || async {
                let stmt = event_insert(e, true);
                self.autocommit(stmt, "recording an audit event").await?;
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
        let out_of_range = || PgError::Config("lockout policy durations out of range".into());
        let window_cutoff = now
            .checked_sub_signed(policy.window_delta())
            .ok_or_else(out_of_range)?;
        let lock_until = now
            .checked_add_signed(policy.lock_delta())
            .ok_or_else(out_of_range)?;
        // LockoutPolicy::next_failure in one statement. `restart` is:
        // no record yet (the INSERT branch), or the lock has lifted, or
        // (not locked) the window has closed. A restarted record counts 1
        // from `now`; a continued one counts up (saturating at u32::MAX)
        // and keeps its lock; an unlocked record locks at `max_attempts`.
        let stmt = || {
            sqlx::query(
                "INSERT INTO cs_failures AS f (tenant_id, user_id, count, window_start, locked_until)
                 SELECT u.tenant_id, u.id, 1, $3::timestamptz,
                        CASE WHEN 1 >= $4::bigint THEN $5::timestamptz END
                   FROM cs_users u
                  WHERE u.tenant_id = $1 AND u.id = $2
                 ON CONFLICT (tenant_id, user_id) DO UPDATE SET
                   count = CASE
                       WHEN (f.locked_until IS NOT NULL AND $3::timestamptz >= f.locked_until)
                         OR (f.locked_until IS NULL AND f.window_start <= $6::timestamptz)
                       THEN 1
                       ELSE LEAST(f.count + 1, 4294967295)
                   END,
                   window_start = CASE
                       WHEN (f.locked_until IS NOT NULL AND $3::timestamptz >= f.locked_until)
                         OR (f.locked_until IS NULL AND f.window_start <= $6::timestamptz)
                       THEN $3::timestamptz
                       ELSE f.window_start
                   END,
                   locked_until = CASE
                       WHEN (f.locked_until IS NOT NULL AND $3::timestamptz >= f.locked_until)
                         OR (f.locked_until IS NULL AND f.window_start <= $6::timestamptz)
                       THEN CASE WHEN 1 >= $4::bigint THEN $5::timestamptz END
                       WHEN f.locked_until IS NOT NULL THEN f.locked_until
                       WHEN LEAST(f.count + 1, 4294967295) >= $4::bigint THEN $5::timestamptz
                       ELSE NULL
                   END
                 RETURNING count, window_start, locked_until",
            )
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .bind(now)
            .bind(i64::from(policy.max_attempts))
            .bind(lock_until)
            .bind(window_cutoff)
        };
        self.retry
            .run("record_failed_attempt", Once, || async {
                let mut conn = self.conn().await?;
                let context = db_commit("recording a failed attempt");
                optional(stmt(), &mut *conn, context, codec::failure)
                    .await?
                    .ok_or_else(|| PgError::not_found("user"))
            })
            .await
    }

    async fn reset_failed_attempts(&self, tenant: TenantId, user: UserId) -> Result<()> {
        let stmt = || {
            sqlx::query("DELETE FROM cs_failures WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant.as_uuid())
                .bind(user.as_uuid())
        };
        self.retry
            .run("reset_failed_attempts", Idempotent, || async {
                self.autocommit(stmt(), "resetting failed attempts").await?;
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
        let stmt = || {
            sqlx::query("UPDATE cs_users SET last_login_at = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_uuid())
                .bind(user.as_uuid())
                .bind(at)
        };
        self.retry
            .run("record_last_login", Idempotent, || async {
                match self.autocommit(stmt(), "recording a login").await? {
                    0 => Err(PgError::not_found("user")),
                    _ => Ok(()),
                }
            })
            .await
    }

    /// One statement (one commit, one round trip); idempotent on the
    /// events' ids, like [`record_event`](Self::record_event).
    async fn record_login(
        &self,
        tenant: TenantId,
        user: UserId,
        at: DateTime<Utc>,
        events: &[AuditEvent],
    ) -> Result<()> {
        let column = |f: &dyn Fn(&AuditEvent) -> Option<String>| -> Vec<Option<String>> {
            events.iter().map(f).collect()
        };
        let ids: Vec<uuid::Uuid> = events.iter().map(|e| *e.id.as_uuid()).collect();
        let tenants: Vec<uuid::Uuid> = events.iter().map(|e| *e.tenant_id.as_uuid()).collect();
        let users: Vec<Option<uuid::Uuid>> = events
            .iter()
            .map(|e| e.user_id.map(|u| *u.as_uuid()))
            .collect();
        let kinds = column(&|e| Some(e.kind.as_str().to_owned()));
        let statuses = column(&|e| Some(e.status.as_str().to_owned()));
        let factors = column(&|e| e.factor.map(|f| f.as_str().to_owned()));
        let ips = column(&|e| e.ip.map(|ip| ip.to_string()));
        let agents = column(&|e| e.user_agent.clone());
        let times: Vec<DateTime<Utc>> = events.iter().map(|e| e.at).collect();
        let details = column(&|e| e.detail.as_ref().map(AuditDetail::code));
        // Every branch is guarded by the user's row: an unknown user
        // writes nothing.
        let stmt = || {
            sqlx::query(
                "WITH u AS (
                     UPDATE cs_users SET last_login_at = $3 WHERE tenant_id = $1 AND id = $2
                     RETURNING id
                 ), forgotten AS (
                     DELETE FROM cs_failures
                      WHERE tenant_id = $1 AND user_id = $2 AND EXISTS (SELECT 1 FROM u)
                 ), recorded AS (
                     INSERT INTO cs_audit_events
                         (id, tenant_id, user_id, kind, status, factor, ip, user_agent, at, detail)
                     SELECT * FROM unnest($4::uuid[], $5::uuid[], $6::uuid[], $7::text[],
                                          $8::text[], $9::text[], $10::text[], $11::text[],
                                          $12::timestamptz[], $13::text[])
                      WHERE EXISTS (SELECT 1 FROM u)
                     ON CONFLICT (id) DO NOTHING
                 )
                 SELECT EXISTS (SELECT 1 FROM u) AS found",
            )
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .bind(at)
            .bind(ids.clone())
            .bind(tenants.clone())
            .bind(users.clone())
            .bind(kinds.clone())
            .bind(statuses.clone())
            .bind(factors.clone())
            .bind(ips.clone())
            .bind(agents.clone())
            .bind(times.clone())
            .bind(details.clone())
        };
        self.retry
            .run("record_login", Idempotent, || async {
                let mut conn = self.conn().await?;
                let context = db_commit("recording a login");
                let found = optional(stmt(), &mut *conn, context, |row| {
                    codec::get::<bool>(row, "cs_users", "found")
                })
                .await?;
                match found {
                    Some(true) => Ok(()),
                    _ => Err(PgError::not_found("user")),
                }
            })
            .await
    }
}

impl IdentityAdmin for PostgresStore {
    async fn provision_tenant(&self, p: &TenantProvision) -> Result<()> {
        let t = p.tenant();
        reject_if(t.id.is_system(), "the system tenant is reserved")?;
        let refused =
            |message| unique_violation(Phase::Uncommitted, "provisioning a tenant", message);
        self.retry
            .run("provision_tenant", Once, || async {
                let mut tx = self.begin().await?;
                let tenant = sqlx::query(
                    "INSERT INTO cs_tenants (id, slug, name, policy, created_at)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(t.id.as_uuid())
                .bind(t.slug.as_str())
                .bind(t.name.as_str())
                .bind(Json(&t.policy))
                .bind(t.created_at);
                execute(tenant, &mut *tx, refused("tenant already exists")).await?;
                for f in p.factors() {
                    let factor = sqlx::query(
                        "INSERT INTO cs_tenant_factors (tenant_id, kind, config) VALUES ($1, $2, $3)",
                    )
                    .bind(t.id.as_uuid())
                    .bind(f.kind().as_str())
                    .bind(Json(f));
                    execute(factor, &mut *tx, refused("a factor is given twice")).await?;
                }
                for m in p.methods() {
                    let method = sqlx::query(
                        "INSERT INTO cs_tenant_methods (tenant_id, name, method, enabled)
                         VALUES ($1, $2, $3, true)",
                    )
                    .bind(t.id.as_uuid())
                    .bind(m.name.as_str())
                    .bind(Json(m));
                    execute(method, &mut *tx, refused("a method is given twice")).await?;
                }
                commit(tx, "committing a tenant").await
            })
            .await
    }

    async fn update_tenant_policy(&self, tenant: TenantId, policy: &TenantPolicy) -> Result<()> {
        let stmt = || {
            sqlx::query("UPDATE cs_tenants SET policy = $2 WHERE id = $1")
                .bind(tenant.as_uuid())
                .bind(Json(policy))
        };
        self.retry
            .run("update_tenant_policy", Idempotent, || async {
                match self.autocommit(stmt(), "updating a tenant policy").await? {
                    0 => Err(PgError::not_found("tenant")),
                    _ => Ok(()),
                }
            })
            .await
    }

    async fn create_user(&self, user: &User, credentials: &[FactorCredential]) -> Result<()> {
        reject_if(
            user.tenant_id.is_system() || user.id.is_reserved(),
            "reserved id",
        )?;
        self.retry
            .run("create_user", Once, || async {
                let mut tx = self.begin().await?;
                insert_user(&mut tx, user, credentials).await?;
                commit(tx, "committing a user").await
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
        reject_if(
            user.tenant_id.is_system() || user.id.is_reserved(),
            "reserved id",
        )?;
        self.retry
            .run("register_user", Once, || async {
                // One transaction: the user, its history and its audit
                // event commit together or not at all.
                let mut tx = self.begin().await?;
                insert_user(&mut tx, user, credentials).await?;
                if let Some(h) = history {
                    insert_history(&mut tx, user.tenant_id, user.id, &h.phc, h.at, h.keep).await?;
                }
                let refused = unique_violation(
                    Phase::Uncommitted,
                    "recording the registration",
                    "audit event already exists",
                );
                execute(event_insert(event, false), &mut *tx, refused).await?;
                commit(tx, "committing a registration").await
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
        // Compare-and-set in one statement: under concurrent updates the
        // UPDATE re-checks `state = $3` on the newest row version, so of
        // several transitions from one state exactly one moves.
        let stmt = || {
            sqlx::query(
                "WITH target AS (
                     SELECT 1 FROM cs_users WHERE tenant_id = $1 AND id = $2
                 ), moved AS (
                     UPDATE cs_users SET state = $4, state_reason = $5, updated_at = $6
                      WHERE tenant_id = $1 AND id = $2 AND state = $3
                     RETURNING 1
                 )
                 SELECT EXISTS (SELECT 1 FROM target) AS found,
                        EXISTS (SELECT 1 FROM moved) AS saved",
            )
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .bind(from.as_str())
            .bind(to.as_str())
            .bind(reason)
            .bind(at)
        };
        self.retry
            .run("set_user_state", Once, || async {
                let mut conn = self.conn().await?;
                compare_and_save(stmt(), &mut *conn, "changing a user's state", "user").await
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
        // Compare-and-set in one statement: under concurrent updates the
        // UPDATE re-checks `updated_at = $6` on the newest row version, so
        // of several updates made from one read exactly one writes.
        let stmt = || {
            sqlx::query(
                "WITH target AS (
                     SELECT 1 FROM cs_users WHERE tenant_id = $1 AND id = $2
                 ), saved AS (
                     UPDATE cs_users
                        SET display_name = $3, tier = $4, attributes = $5, updated_at = $7
                      WHERE tenant_id = $1 AND id = $2 AND updated_at = $6
                     RETURNING 1
                 )
                 SELECT EXISTS (SELECT 1 FROM target) AS found,
                        EXISTS (SELECT 1 FROM saved) AS saved",
            )
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .bind(profile.display_name.as_deref())
            .bind(profile.tier.as_ref().map(Tier::as_str))
            .bind(Json(&profile.attributes))
            .bind(expected_updated_at)
            .bind(at)
        };
        self.retry
            .run("update_profile", Once, || async {
                let mut conn = self.conn().await?;
                compare_and_save(stmt(), &mut *conn, "updating a profile", "user").await
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
        self.retry
            .run("push_password_history", Once, || async {
                let mut tx = self.begin().await?;
                insert_history(&mut tx, tenant, user, phc, at, keep).await?;
                commit(tx, "committing the password history").await
            })
            .await
    }

    async fn password_history(
        &self,
        tenant: TenantId,
        user: UserId,
        n: u32,
    ) -> Result<Vec<String>> {
        let stmt = || {
            sqlx::query(
                "SELECT phc FROM cs_password_history WHERE tenant_id = $1 AND user_id = $2
                 ORDER BY id DESC LIMIT $3",
            )
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .bind(limit(n))
        };
        self.retry
            .run("password_history", Idempotent, || {
                all(
                    stmt(),
                    &self.write,
                    db("reading the password history"),
                    |row| codec::get(row, "cs_password_history", "phc"),
                )
            })
            .await
    }

    async fn erase_user(&self, tenant: TenantId, user: UserId, pseudonym: UserId) -> Result<bool> {
        self.retry
            .run("erase_user", Once, || async {
                let mut tx = self.begin().await?;
                // The tenant's RBAC version lock first, as every RBAC change
                // takes it: the user's roles and direct grants go here, with
                // a version bump if there were any.
                super::rbac::lock_version(&mut tx, tenant).await?;
                super::rbac::remove_user(&mut tx, tenant, user).await?;
                // Credentials, user methods, the failure record, the password
                // history, flows, sessions, refresh families (with their
                // tokens), pending verifications and linked identities go
                // with the user (ON DELETE CASCADE).
                let erase = sqlx::query("DELETE FROM cs_users WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.as_uuid())
                    .bind(user.as_uuid());
                if execute(erase, &mut *tx, db("erasing a user")).await? == 0 {
                    return Ok(false);
                }
                let pseudonymise = sqlx::query(
                    "UPDATE cs_audit_events SET user_id = $3, ip = NULL, user_agent = NULL
                      WHERE tenant_id = $1 AND user_id = $2",
                )
                .bind(tenant.as_uuid())
                .bind(user.as_uuid())
                .bind(pseudonym.as_uuid());
                execute(pseudonymise, &mut *tx, db("pseudonymising audit events")).await?;
                commit(tx, "committing an erasure").await?;
                Ok(true)
            })
            .await
    }
}

/// The INSERT of one audit event; `idempotent` makes a second insert of the
/// same event id a no-op (for retried autocommit writes) instead of a
/// unique violation.
pub(super) fn event_insert(e: &AuditEvent, idempotent: bool) -> super::Statement {
    let sql = if idempotent {
        "INSERT INTO cs_audit_events
             (id, tenant_id, user_id, kind, status, factor, ip, user_agent, at, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (id) DO NOTHING"
    } else {
        "INSERT INTO cs_audit_events
             (id, tenant_id, user_id, kind, status, factor, ip, user_agent, at, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    };
    sqlx::query(sql)
        .bind(*e.id.as_uuid())
        .bind(*e.tenant_id.as_uuid())
        .bind(e.user_id.map(|u| *u.as_uuid()))
        .bind(e.kind.as_str())
        .bind(e.status.as_str())
        .bind(e.factor.map(FactorKind::as_str))
        .bind(e.ip.map(|ip| ip.to_string()))
        .bind(e.user_agent.clone())
        .bind(e.at)
        .bind(e.detail.as_ref().map(AuditDetail::code))
}

/// Insert a user and its first credentials inside `tx`, holding the tenant
/// (FOR KEY SHARE, as the foreign key would) so it cannot vanish first.
pub(super) async fn insert_user(
    tx: &mut super::Tx,
    user: &User,
    credentials: &[FactorCredential],
) -> Result<()> {
    let tenant = sqlx::query("SELECT 1 FROM cs_tenants WHERE id = $1 FOR KEY SHARE")
        .bind(*user.tenant_id.as_uuid());
    if optional(tenant, &mut **tx, db("creating a user"), |_| Ok(()))
        .await?
        .is_none()
    {
        return Err(PgError::not_found("tenant"));
    }
    let insert = sqlx::query(
        "INSERT INTO cs_users (id, tenant_id, identifier, display_name, email, state,
                               state_reason, created_at, updated_at, last_login_at,
                               tier, attributes)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(*user.id.as_uuid())
    .bind(*user.tenant_id.as_uuid())
    .bind(user.identifier.as_str().to_owned())
    .bind(user.display_name.clone())
    .bind(user.email.as_ref().map(|e| e.as_str().to_owned()))
    .bind(user.state.as_str())
    .bind(user.state_reason.clone())
    .bind(user.created_at)
    .bind(user.updated_at)
    .bind(user.last_login_at)
    .bind(user.tier.as_ref().map(|t| t.as_str().to_owned()))
    .bind(Json(user.attributes.clone()));
    let refused = unique_violation(Phase::Uncommitted, "creating a user", "user already exists");
    execute(insert, &mut **tx, refused).await?;
    let mut kinds: Vec<&str> = credentials.iter().map(|c| c.kind().as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    if kinds.len() != credentials.len() {
        return Err(PgError::refused(
            StoreErrorKind::Rejected,
            "a credential kind is repeated",
        ));
    }
    for c in credentials {
        let credential = sqlx::query(
            "INSERT INTO cs_user_factors (tenant_id, user_id, kind, config, version)
             VALUES ($1, $2, $3, $4, 1)",
        )
        .bind(*user.tenant_id.as_uuid())
        .bind(*user.id.as_uuid())
        .bind(c.kind().as_str())
        .bind(Json(c.clone()));
        execute(credential, &mut **tx, db("saving a credential")).await?;
    }
    Ok(())
}

/// Add a password hash to a user's history inside `tx`, keeping the newest
/// `keep`; the user row lock serialises pushes so pruning keeps exactly
/// `keep`.
async fn insert_history(
    tx: &mut super::Tx,
    tenant: TenantId,
    user: UserId,
    phc: &str,
    at: DateTime<Utc>,
    keep: u32,
) -> Result<()> {
    let lock =
        sqlx::query("SELECT 1 FROM cs_users WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE")
            .bind(*tenant.as_uuid())
            .bind(*user.as_uuid());
    let context = "adding to the password history";
    if optional(lock, &mut **tx, db(context), |_| Ok(()))
        .await?
        .is_none()
    {
        return Err(PgError::not_found("user"));
    }
    let push = sqlx::query(
        "INSERT INTO cs_password_history (tenant_id, user_id, phc, at)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(*tenant.as_uuid())
    .bind(*user.as_uuid())
    .bind(phc.to_owned())
    .bind(at);
    execute(push, &mut **tx, db(context)).await?;
    let prune = sqlx::query(
        "DELETE FROM cs_password_history
          WHERE tenant_id = $1 AND user_id = $2
            AND id NOT IN (SELECT id FROM cs_password_history
                            WHERE tenant_id = $1 AND user_id = $2
                            ORDER BY id DESC LIMIT $3)",
    )
    .bind(*tenant.as_uuid())
    .bind(*user.as_uuid())
    .bind(limit(keep));
    execute(prune, &mut **tx, db("pruning the password history")).await?;
    Ok(())
}
