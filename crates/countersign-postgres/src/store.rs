//! The store traits in SQL.
//!
//! Each trait method runs its `*_once` attempt under the store's
//! [`RetryPolicy`](crate::RetryPolicy), declaring whether it is idempotent
//! (running it twice has the effect and the result of running it once).

use chrono::{DateTime, Utc};
use countersign_core::store::{MAX_PAGE, resolve_methods};
use countersign_core::{
    AccountState, AuditEvent, AuditFilter, AuditQuery, AuthMethod, FactorKind, FactorStore,
    FailureRecord, Identifier, IdentityAdmin, IdentityAuthnLog, IdentityLookup, LockoutPolicy,
    MethodName, MethodRecord, Scope, StoreErrorKind, Tenant, TenantFactor, TenantId, TenantPolicy,
    TenantProvision, TenantSlug, User, UserFactor, UserId, Versioned,
};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder, Row, Transaction};

use crate::codec::{self, event_cols, tenant_cols, user_cols};
use crate::error::{PgError, db, db_commit};
use crate::{PostgresStore, Result};

/// `map_err` adapter: a unique violation becomes `Conflict` with `message`,
/// anything else maps as usual.
fn conflict(context: &'static str, message: &'static str) -> impl FnOnce(sqlx::Error) -> PgError {
    move |e| {
        let unique = e
            .as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|c| c == "23505");
        if unique {
            PgError::refused(StoreErrorKind::Conflict, message)
        } else {
            db(context)(e)
        }
    }
}

fn conflict_floor(what: &'static str) -> PgError {
    PgError::refused(StoreErrorKind::Conflict, what)
}

const LAST_FACTOR: &str = "a tenant keeps at least one factor";
const LAST_METHOD: &str = "a tenant keeps at least one enabled method";

/// A `u32` limit as a SQL `LIMIT`.
fn limit(n: u32) -> i64 {
    i64::from(n)
}

impl PostgresStore {
    fn reader(&self) -> &PgPool {
        self.read_pool()
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        self.write
            .begin()
            .await
            .map_err(db("beginning a transaction"))
    }

    async fn conn(&self) -> Result<PoolConnection<Postgres>> {
        self.write
            .acquire()
            .await
            .map_err(db("acquiring a connection"))
    }

    /// Lock the tenant row for the rest of the transaction (serialising the
    /// invariant checks of one tenant); whether the tenant exists.
    async fn lock_tenant(
        tx: &mut Transaction<'static, Postgres>,
        tenant: TenantId,
    ) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM cs_tenants WHERE id = $1 FOR NO KEY UPDATE")
            .bind(tenant.as_uuid())
            .fetch_optional(&mut **tx)
            .await
            .map_err(db("locking the tenant"))?;
        Ok(row.is_some())
    }

    /// Whether the tenant method `name` is enabled (`None`: no such
    /// method), and how many of the tenant's methods are enabled.
    async fn tenant_method_state(
        tx: &mut Transaction<'static, Postgres>,
        tenant: TenantId,
        name: &MethodName,
    ) -> Result<(Option<bool>, i64)> {
        let row = sqlx::query(
            "SELECT (SELECT enabled FROM cs_tenant_methods WHERE tenant_id = $1 AND name = $2) AS was,
                    (SELECT count(*) FROM cs_tenant_methods WHERE tenant_id = $1 AND enabled) AS n",
        )
        .bind(tenant.as_uuid())
        .bind(name.as_str())
        .fetch_one(&mut **tx)
        .await
        .map_err(db("reading the tenant's methods"))?;
        let was: Option<bool> = row
            .try_get("was")
            .map_err(db("reading the tenant's methods"))?;
        let n: i64 = row
            .try_get("n")
            .map_err(db("reading the tenant's methods"))?;
        Ok((was, n))
    }

    // ── IdentityLookup ───────────────────────────────────────────────────

    async fn get_tenant_once(&self, tenant: TenantId) -> Result<Option<Tenant>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            tenant_cols!(),
            " FROM cs_tenants WHERE id = $1"
        ))
        .bind(tenant.as_uuid())
        .fetch_optional(self.reader())
        .await
        .map_err(db("reading a tenant"))?;
        row.as_ref().map(codec::tenant).transpose()
    }

    async fn find_tenant_once(&self, slug: &TenantSlug) -> Result<Option<Tenant>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            tenant_cols!(),
            " FROM cs_tenants WHERE slug = $1"
        ))
        .bind(slug.as_str())
        .fetch_optional(self.reader())
        .await
        .map_err(db("finding a tenant"))?;
        row.as_ref().map(codec::tenant).transpose()
    }

    async fn find_user_once(
        &self,
        tenant: TenantId,
        identifier: &Identifier,
    ) -> Result<Option<User>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_cols!(),
            " FROM cs_users WHERE tenant_id = $1 AND identifier = $2"
        ))
        .bind(tenant.as_uuid())
        .bind(identifier.as_str())
        .fetch_optional(self.reader())
        .await
        .map_err(db("finding a user"))?;
        row.as_ref().map(codec::user).transpose()
    }

    async fn get_user_once(&self, tenant: Option<TenantId>, user: UserId) -> Result<Option<User>> {
        let row = match tenant {
            Some(tenant) => {
                sqlx::query(concat!(
                    "SELECT ",
                    user_cols!(),
                    " FROM cs_users WHERE tenant_id = $1 AND id = $2"
                ))
                .bind(tenant.as_uuid())
                .bind(user.as_uuid())
                .fetch_optional(self.reader())
                .await
            }
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    user_cols!(),
                    " FROM cs_users WHERE id = $1"
                ))
                .bind(user.as_uuid())
                .fetch_optional(self.reader())
                .await
            }
        }
        .map_err(db("reading a user"))?;
        row.as_ref().map(codec::user).transpose()
    }

    async fn list_users_once(
        &self,
        tenant: TenantId,
        after: Option<UserId>,
        n: u32,
    ) -> Result<Vec<User>> {
        let n = limit(n.min(MAX_PAGE));
        let rows = match after {
            Some(after) => {
                sqlx::query(concat!(
                    "SELECT ",
                    user_cols!(),
                    " FROM cs_users WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
                ))
                .bind(tenant.as_uuid())
                .bind(after.as_uuid())
                .bind(n)
                .fetch_all(self.reader())
                .await
            }
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    user_cols!(),
                    " FROM cs_users WHERE tenant_id = $1 ORDER BY id LIMIT $2"
                ))
                .bind(tenant.as_uuid())
                .bind(n)
                .fetch_all(self.reader())
                .await
            }
        }
        .map_err(db("listing users"))?;
        rows.iter().map(codec::user).collect()
    }

    async fn failure_record_once(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<FailureRecord>> {
        let row = sqlx::query(
            "SELECT count, window_start, locked_until FROM cs_failures
             WHERE tenant_id = $1 AND user_id = $2",
        )
        .bind(tenant.as_uuid())
        .bind(user.as_uuid())
        .fetch_optional(self.reader())
        .await
        .map_err(db("reading a failure record"))?;
        row.as_ref().map(codec::failure).transpose()
    }

    // ── IdentityAuthnLog ─────────────────────────────────────────────────

    async fn record_event_once(&self, e: &AuditEvent) -> Result<()> {
        let mut conn = self.conn().await?;
        sqlx::query(
            "INSERT INTO cs_audit_events
                 (id, tenant_id, user_id, kind, status, factor, ip, user_agent, at, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(e.id.as_uuid())
        .bind(e.tenant_id.as_uuid())
        .bind(e.user_id.map(|u| *u.as_uuid()))
        .bind(e.kind.as_str())
        .bind(e.status.as_str())
        .bind(e.factor.map(FactorKind::as_str))
        .bind(e.ip.map(|ip| ip.to_string()))
        .bind(e.user_agent.as_deref())
        .bind(e.at)
        .bind(e.detail.as_deref())
        .execute(&mut *conn)
        .await
        .map_err(db_commit("recording an audit event"))?;
        Ok(())
    }

    async fn record_failed_attempt_once(
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
        let mut conn = self.conn().await?;
        let row = sqlx::query(
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
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_commit("recording a failed attempt"))?;
        match row {
            Some(row) => codec::failure(&row),
            None => Err(PgError::not_found("user")),
        }
    }

    async fn reset_failed_attempts_once(&self, tenant: TenantId, user: UserId) -> Result<()> {
        let mut conn = self.conn().await?;
        sqlx::query("DELETE FROM cs_failures WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .execute(&mut *conn)
            .await
            .map_err(db_commit("resetting failed attempts"))?;
        Ok(())
    }

    async fn record_last_login_once(
        &self,
        tenant: TenantId,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let mut conn = self.conn().await?;
        let done =
            sqlx::query("UPDATE cs_users SET last_login_at = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_uuid())
                .bind(user.as_uuid())
                .bind(at)
                .execute(&mut *conn)
                .await
                .map_err(db_commit("recording a login"))?;
        if done.rows_affected() == 0 {
            return Err(PgError::not_found("user"));
        }
        Ok(())
    }

    // ── IdentityAdmin ────────────────────────────────────────────────────

    async fn provision_once(&self, p: &TenantProvision) -> Result<()> {
        let t = p.tenant();
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO cs_tenants (id, slug, name, policy, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(t.id.as_uuid())
        .bind(t.slug.as_str())
        .bind(t.name.as_str())
        .bind(Json(&t.policy))
        .bind(t.created_at)
        .execute(&mut *tx)
        .await
        .map_err(conflict("provisioning a tenant", "tenant already exists"))?;
        for f in p.factors() {
            sqlx::query(
                "INSERT INTO cs_tenant_factors (tenant_id, kind, config) VALUES ($1, $2, $3)",
            )
            .bind(t.id.as_uuid())
            .bind(f.kind().as_str())
            .bind(Json(f))
            .execute(&mut *tx)
            .await
            .map_err(conflict("provisioning a tenant", "a factor is given twice"))?;
        }
        for m in p.methods() {
            sqlx::query(
                "INSERT INTO cs_tenant_methods (tenant_id, name, method, enabled)
                 VALUES ($1, $2, $3, true)",
            )
            .bind(t.id.as_uuid())
            .bind(m.name.as_str())
            .bind(Json(m))
            .execute(&mut *tx)
            .await
            .map_err(conflict("provisioning a tenant", "a method is given twice"))?;
        }
        tx.commit().await.map_err(db_commit("committing a tenant"))
    }

    async fn update_tenant_policy_once(
        &self,
        tenant: TenantId,
        policy: &TenantPolicy,
    ) -> Result<()> {
        let mut conn = self.conn().await?;
        let done = sqlx::query("UPDATE cs_tenants SET policy = $2 WHERE id = $1")
            .bind(tenant.as_uuid())
            .bind(Json(policy))
            .execute(&mut *conn)
            .await
            .map_err(db_commit("updating a tenant policy"))?;
        if done.rows_affected() == 0 {
            return Err(PgError::not_found("tenant"));
        }
        Ok(())
    }

    async fn create_user_once(&self, user: &User, credentials: &[UserFactor]) -> Result<()> {
        let mut tx = self.begin().await?;
        // Holds the tenant (FOR KEY SHARE, as the foreign key would) so it
        // cannot vanish before the user row lands.
        let tenant = sqlx::query("SELECT 1 FROM cs_tenants WHERE id = $1 FOR KEY SHARE")
            .bind(user.tenant_id.as_uuid())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("creating a user"))?;
        if tenant.is_none() {
            return Err(PgError::not_found("tenant"));
        }
        sqlx::query(
            "INSERT INTO cs_users (id, tenant_id, identifier, display_name, email, state,
                                   state_reason, created_at, updated_at, last_login_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(user.id.as_uuid())
        .bind(user.tenant_id.as_uuid())
        .bind(user.identifier.as_str())
        .bind(user.display_name.as_deref())
        .bind(user.email.as_ref().map(|e| e.as_str()))
        .bind(user.state.as_str())
        .bind(user.state_reason.as_deref())
        .bind(user.created_at)
        .bind(user.updated_at)
        .bind(user.last_login_at)
        .execute(&mut *tx)
        .await
        .map_err(conflict("creating a user", "user already exists"))?;
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
            sqlx::query(
                "INSERT INTO cs_user_factors (tenant_id, user_id, kind, config, version)
                 VALUES ($1, $2, $3, $4, 1)",
            )
            .bind(user.tenant_id.as_uuid())
            .bind(user.id.as_uuid())
            .bind(c.kind().as_str())
            .bind(Json(c))
            .execute(&mut *tx)
            .await
            .map_err(db("saving a credential"))?;
        }
        tx.commit().await.map_err(db_commit("committing a user"))
    }

    #[allow(clippy::too_many_arguments, reason = "mirrors the trait method")]
    async fn set_user_state_once(
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
        let mut conn = self.conn().await?;
        let row = sqlx::query(
            "WITH target AS (
                 SELECT 1 FROM cs_users WHERE tenant_id = $1 AND id = $2
             ), moved AS (
                 UPDATE cs_users SET state = $4, state_reason = $5, updated_at = $6
                  WHERE tenant_id = $1 AND id = $2 AND state = $3
                 RETURNING 1
             )
             SELECT EXISTS (SELECT 1 FROM target) AS found, EXISTS (SELECT 1 FROM moved) AS moved",
        )
        .bind(tenant.as_uuid())
        .bind(user.as_uuid())
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(reason)
        .bind(at)
        .fetch_one(&mut *conn)
        .await
        .map_err(db_commit("changing a user's state"))?;
        let found: bool = row
            .try_get("found")
            .map_err(db("changing a user's state"))?;
        let moved: bool = row
            .try_get("moved")
            .map_err(db("changing a user's state"))?;
        if !found {
            return Err(PgError::not_found("user"));
        }
        Ok(moved)
    }

    async fn push_password_history_once(
        &self,
        tenant: TenantId,
        user: UserId,
        phc: &str,
        at: DateTime<Utc>,
        keep: u32,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        // Serialises pushes per user so pruning keeps exactly `keep`.
        let found = sqlx::query(
            "SELECT 1 FROM cs_users WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE",
        )
        .bind(tenant.as_uuid())
        .bind(user.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("adding to the password history"))?;
        if found.is_none() {
            return Err(PgError::not_found("user"));
        }
        sqlx::query(
            "INSERT INTO cs_password_history (tenant_id, user_id, phc, at) VALUES ($1, $2, $3, $4)",
        )
        .bind(tenant.as_uuid())
        .bind(user.as_uuid())
        .bind(phc)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(db("adding to the password history"))?;
        sqlx::query(
            "DELETE FROM cs_password_history
              WHERE tenant_id = $1 AND user_id = $2
                AND id NOT IN (SELECT id FROM cs_password_history
                                WHERE tenant_id = $1 AND user_id = $2
                                ORDER BY id DESC LIMIT $3)",
        )
        .bind(tenant.as_uuid())
        .bind(user.as_uuid())
        .bind(limit(keep))
        .execute(&mut *tx)
        .await
        .map_err(db("pruning the password history"))?;
        tx.commit()
            .await
            .map_err(db_commit("committing the password history"))
    }

    async fn password_history_once(
        &self,
        tenant: TenantId,
        user: UserId,
        n: u32,
    ) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT phc FROM cs_password_history WHERE tenant_id = $1 AND user_id = $2
             ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant.as_uuid())
        .bind(user.as_uuid())
        .bind(limit(n))
        .fetch_all(&self.write)
        .await
        .map_err(db("reading the password history"))
    }

    async fn erase_user_once(
        &self,
        tenant: TenantId,
        user: UserId,
        pseudonym: UserId,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        // Credentials, user methods, the failure record, the password
        // history, flows, sessions and refresh families (with their tokens)
        // go with the user (ON DELETE CASCADE).
        let gone = sqlx::query("DELETE FROM cs_users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db("erasing a user"))?;
        if gone.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE cs_audit_events SET user_id = $3, ip = NULL, user_agent = NULL
              WHERE tenant_id = $1 AND user_id = $2",
        )
        .bind(tenant.as_uuid())
        .bind(user.as_uuid())
        .bind(pseudonym.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(db("pseudonymising audit events"))?;
        tx.commit()
            .await
            .map_err(db_commit("committing an erasure"))?;
        Ok(true)
    }

    // ── FactorStore ──────────────────────────────────────────────────────

    async fn tenant_factor_once(
        &self,
        tenant: TenantId,
        kind: FactorKind,
    ) -> Result<Option<TenantFactor>> {
        let row =
            sqlx::query("SELECT config FROM cs_tenant_factors WHERE tenant_id = $1 AND kind = $2")
                .bind(tenant.as_uuid())
                .bind(kind.as_str())
                .fetch_optional(self.reader())
                .await
                .map_err(db("reading a tenant factor"))?;
        row.as_ref().map(codec::tenant_factor).transpose()
    }

    async fn tenant_factors_once(&self, tenant: TenantId) -> Result<Vec<TenantFactor>> {
        let rows = sqlx::query(
            r#"SELECT config FROM cs_tenant_factors WHERE tenant_id = $1 ORDER BY kind COLLATE "C""#,
        )
        .bind(tenant.as_uuid())
        .fetch_all(self.reader())
        .await
        .map_err(db("reading tenant factors"))?;
        rows.iter().map(codec::tenant_factor).collect()
    }

    async fn save_tenant_factor_once(&self, tenant: TenantId, factor: &TenantFactor) -> Result<()> {
        let mut conn = self.conn().await?;
        let done = sqlx::query(
            "INSERT INTO cs_tenant_factors (tenant_id, kind, config)
             SELECT id, $2, $3 FROM cs_tenants WHERE id = $1
             ON CONFLICT (tenant_id, kind) DO UPDATE SET config = EXCLUDED.config",
        )
        .bind(tenant.as_uuid())
        .bind(factor.kind().as_str())
        .bind(Json(factor))
        .execute(&mut *conn)
        .await
        .map_err(db_commit("saving a tenant factor"))?;
        if done.rows_affected() == 0 {
            return Err(PgError::not_found("tenant"));
        }
        Ok(())
    }

    async fn remove_tenant_factor_once(&self, tenant: TenantId, kind: FactorKind) -> Result<bool> {
        let mut tx = self.begin().await?;
        if !Self::lock_tenant(&mut tx, tenant).await? {
            return Ok(false);
        }
        let row = sqlx::query(
            "SELECT count(*) FILTER (WHERE kind = $2) AS present, count(*) AS total
               FROM cs_tenant_factors WHERE tenant_id = $1",
        )
        .bind(tenant.as_uuid())
        .bind(kind.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(db("reading tenant factors"))?;
        let present: i64 = row
            .try_get("present")
            .map_err(db("reading tenant factors"))?;
        let total: i64 = row.try_get("total").map_err(db("reading tenant factors"))?;
        if present == 0 {
            return Ok(false);
        }
        if total <= 1 {
            return Err(conflict_floor(LAST_FACTOR));
        }
        sqlx::query("DELETE FROM cs_tenant_factors WHERE tenant_id = $1 AND kind = $2")
            .bind(tenant.as_uuid())
            .bind(kind.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db("removing a tenant factor"))?;
        tx.commit()
            .await
            .map_err(db_commit("committing a factor removal"))?;
        Ok(true)
    }

    async fn user_factor_once(
        &self,
        tenant: TenantId,
        user: UserId,
        kind: FactorKind,
    ) -> Result<Option<Versioned<UserFactor>>> {
        let row = sqlx::query(
            "SELECT config, version FROM cs_user_factors
              WHERE tenant_id = $1 AND user_id = $2 AND kind = $3",
        )
        .bind(tenant.as_uuid())
        .bind(user.as_uuid())
        .bind(kind.as_str())
        .fetch_optional(self.reader())
        .await
        .map_err(db("reading a credential"))?;
        row.as_ref().map(codec::user_factor).transpose()
    }

    async fn user_factors_once(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Vec<Versioned<UserFactor>>> {
        let rows = sqlx::query(
            r#"SELECT config, version FROM cs_user_factors
                WHERE tenant_id = $1 AND user_id = $2 ORDER BY kind COLLATE "C""#,
        )
        .bind(tenant.as_uuid())
        .bind(user.as_uuid())
        .fetch_all(self.reader())
        .await
        .map_err(db("reading credentials"))?;
        rows.iter().map(codec::user_factor).collect()
    }

    async fn compare_and_save_once(
        &self,
        tenant: TenantId,
        user: UserId,
        expected: Option<u64>,
        factor: &UserFactor,
    ) -> Result<bool> {
        // One statement each way: the insert relies on ON CONFLICT DO
        // NOTHING (of concurrent inserts one lands), the update on its
        // `version = $5` re-check against the newest row version.
        let mut conn = self.conn().await?;
        let query = match expected {
            None => sqlx::query(
                "WITH u AS (
                     SELECT tenant_id, id FROM cs_users WHERE tenant_id = $1 AND id = $2
                 ), saved AS (
                     INSERT INTO cs_user_factors (tenant_id, user_id, kind, config, version)
                     SELECT tenant_id, id, $3, $4, 1 FROM u
                     ON CONFLICT (tenant_id, user_id, kind) DO NOTHING
                     RETURNING 1
                 )
                 SELECT EXISTS (SELECT 1 FROM u) AS found, EXISTS (SELECT 1 FROM saved) AS saved",
            )
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .bind(factor.kind().as_str())
            .bind(Json(factor)),
            Some(v) => sqlx::query(
                "WITH u AS (
                     SELECT 1 FROM cs_users WHERE tenant_id = $1 AND id = $2
                 ), saved AS (
                     UPDATE cs_user_factors SET config = $4, version = version + 1
                      WHERE tenant_id = $1 AND user_id = $2 AND kind = $3 AND version = $5
                     RETURNING 1
                 )
                 SELECT EXISTS (SELECT 1 FROM u) AS found, EXISTS (SELECT 1 FROM saved) AS saved",
            )
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .bind(factor.kind().as_str())
            .bind(Json(factor))
            // A version beyond i64 cannot be stored, so it matches nothing.
            .bind(i64::try_from(v).unwrap_or(-1)),
        };
        let row = query
            .fetch_one(&mut *conn)
            .await
            .map_err(db_commit("saving a credential"))?;
        let found: bool = row.try_get("found").map_err(db("saving a credential"))?;
        let saved: bool = row.try_get("saved").map_err(db("saving a credential"))?;
        if !found {
            return Err(PgError::not_found("user"));
        }
        Ok(saved)
    }

    async fn remove_user_factor_once(
        &self,
        tenant: TenantId,
        user: UserId,
        kind: FactorKind,
    ) -> Result<bool> {
        let mut conn = self.conn().await?;
        let done = sqlx::query(
            "DELETE FROM cs_user_factors WHERE tenant_id = $1 AND user_id = $2 AND kind = $3",
        )
        .bind(tenant.as_uuid())
        .bind(user.as_uuid())
        .bind(kind.as_str())
        .execute(&mut *conn)
        .await
        .map_err(db_commit("removing a credential"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn save_method_once(
        &self,
        scope: Scope,
        method: &AuthMethod,
        enabled: bool,
    ) -> Result<()> {
        match scope {
            Scope::Tenant(tenant) => {
                let mut tx = self.begin().await?;
                if !Self::lock_tenant(&mut tx, tenant).await? {
                    return Err(PgError::not_found("tenant"));
                }
                if !enabled {
                    let (was, n) = Self::tenant_method_state(&mut tx, tenant, &method.name).await?;
                    if was == Some(true) && n <= 1 {
                        return Err(conflict_floor(LAST_METHOD));
                    }
                }
                sqlx::query(
                    "INSERT INTO cs_tenant_methods (tenant_id, name, method, enabled)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (tenant_id, name)
                     DO UPDATE SET method = EXCLUDED.method, enabled = EXCLUDED.enabled",
                )
                .bind(tenant.as_uuid())
                .bind(method.name.as_str())
                .bind(Json(method))
                .bind(enabled)
                .execute(&mut *tx)
                .await
                .map_err(db("saving a method"))?;
                tx.commit().await.map_err(db_commit("committing a method"))
            }
            Scope::User(tenant, user) => {
                let mut conn = self.conn().await?;
                let done = sqlx::query(
                    "INSERT INTO cs_user_methods (tenant_id, user_id, name, method, enabled)
                     SELECT tenant_id, id, $3, $4, $5 FROM cs_users WHERE tenant_id = $1 AND id = $2
                     ON CONFLICT (tenant_id, user_id, name)
                     DO UPDATE SET method = EXCLUDED.method, enabled = EXCLUDED.enabled",
                )
                .bind(tenant.as_uuid())
                .bind(user.as_uuid())
                .bind(method.name.as_str())
                .bind(Json(method))
                .bind(enabled)
                .execute(&mut *conn)
                .await
                .map_err(db_commit("saving a method"))?;
                if done.rows_affected() == 0 {
                    return Err(PgError::not_found("user"));
                }
                Ok(())
            }
        }
    }

    async fn methods_once(&self, scope: Scope) -> Result<Vec<MethodRecord>> {
        let (rows, table) = match scope {
            Scope::Tenant(tenant) => (
                sqlx::query(
                    r#"SELECT method, enabled FROM cs_tenant_methods
                        WHERE tenant_id = $1 ORDER BY name COLLATE "C""#,
                )
                .bind(tenant.as_uuid())
                .fetch_all(self.reader())
                .await,
                "cs_tenant_methods",
            ),
            Scope::User(tenant, user) => (
                sqlx::query(
                    r#"SELECT method, enabled FROM cs_user_methods
                        WHERE tenant_id = $1 AND user_id = $2 ORDER BY name COLLATE "C""#,
                )
                .bind(tenant.as_uuid())
                .bind(user.as_uuid())
                .fetch_all(self.reader())
                .await,
                "cs_user_methods",
            ),
        };
        let rows = rows.map_err(db("reading methods"))?;
        rows.iter().map(|r| codec::method(r, table)).collect()
    }

    async fn set_method_enabled_once(
        &self,
        scope: Scope,
        name: &MethodName,
        enabled: bool,
    ) -> Result<bool> {
        match scope {
            Scope::Tenant(tenant) => {
                let mut tx = self.begin().await?;
                if !Self::lock_tenant(&mut tx, tenant).await? {
                    return Ok(false);
                }
                let (was, n) = Self::tenant_method_state(&mut tx, tenant, name).await?;
                let Some(was) = was else {
                    return Ok(false);
                };
                if was && !enabled && n <= 1 {
                    return Err(conflict_floor(LAST_METHOD));
                }
                sqlx::query(
                    "UPDATE cs_tenant_methods SET enabled = $3 WHERE tenant_id = $1 AND name = $2",
                )
                .bind(tenant.as_uuid())
                .bind(name.as_str())
                .bind(enabled)
                .execute(&mut *tx)
                .await
                .map_err(db("enabling a method"))?;
                tx.commit()
                    .await
                    .map_err(db_commit("committing a method"))?;
                Ok(true)
            }
            Scope::User(tenant, user) => {
                let mut conn = self.conn().await?;
                let done = sqlx::query(
                    "UPDATE cs_user_methods SET enabled = $4
                      WHERE tenant_id = $1 AND user_id = $2 AND name = $3",
                )
                .bind(tenant.as_uuid())
                .bind(user.as_uuid())
                .bind(name.as_str())
                .bind(enabled)
                .execute(&mut *conn)
                .await
                .map_err(db_commit("enabling a method"))?;
                Ok(done.rows_affected() > 0)
            }
        }
    }

    async fn remove_method_once(&self, scope: Scope, name: &MethodName) -> Result<bool> {
        match scope {
            Scope::Tenant(tenant) => {
                let mut tx = self.begin().await?;
                if !Self::lock_tenant(&mut tx, tenant).await? {
                    return Ok(false);
                }
                let (was, n) = Self::tenant_method_state(&mut tx, tenant, name).await?;
                let Some(was) = was else {
                    return Ok(false);
                };
                if was && n <= 1 {
                    return Err(conflict_floor(LAST_METHOD));
                }
                sqlx::query("DELETE FROM cs_tenant_methods WHERE tenant_id = $1 AND name = $2")
                    .bind(tenant.as_uuid())
                    .bind(name.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db("removing a method"))?;
                tx.commit()
                    .await
                    .map_err(db_commit("committing a method removal"))?;
                Ok(true)
            }
            Scope::User(tenant, user) => {
                let mut conn = self.conn().await?;
                let done = sqlx::query(
                    "DELETE FROM cs_user_methods WHERE tenant_id = $1 AND user_id = $2 AND name = $3",
                )
                .bind(tenant.as_uuid())
                .bind(user.as_uuid())
                .bind(name.as_str())
                .execute(&mut *conn)
                .await
                .map_err(db_commit("removing a method"))?;
                Ok(done.rows_affected() > 0)
            }
        }
    }

    async fn available_methods_once(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Vec<AuthMethod>> {
        // One statement, so one snapshot of both scopes; resolved by the
        // reference rules. Nothing for a user not in the tenant.
        let rows = sqlx::query(
            "SELECT false AS personal, method, enabled FROM cs_tenant_methods
              WHERE tenant_id = $1
                AND EXISTS (SELECT 1 FROM cs_users WHERE tenant_id = $1 AND id = $2)
             UNION ALL
             SELECT true AS personal, method, enabled FROM cs_user_methods
              WHERE tenant_id = $1 AND user_id = $2",
        )
        .bind(tenant.as_uuid())
        .bind(user.as_uuid())
        .fetch_all(self.reader())
        .await
        .map_err(db("reading available methods"))?;
        let mut tenant_scope = Vec::new();
        let mut user_scope = Vec::new();
        for row in &rows {
            let personal: bool = row
                .try_get("personal")
                .map_err(db("reading available methods"))?;
            if personal {
                user_scope.push(codec::method(row, "cs_user_methods")?);
            } else {
                tenant_scope.push(codec::method(row, "cs_tenant_methods")?);
            }
        }
        Ok(resolve_methods(&tenant_scope, &user_scope))
    }

    // ── AuditQuery ───────────────────────────────────────────────────────

    async fn query_events_once(
        &self,
        tenant: TenantId,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEvent>> {
        // Only the filters given become SQL, so the planner can use the
        // (tenant_id, [user_id,] at DESC, id DESC) indexes.
        let mut q = QueryBuilder::<Postgres>::new(concat!(
            "SELECT ",
            event_cols!(),
            " FROM cs_audit_events WHERE tenant_id = "
        ));
        q.push_bind(*tenant.as_uuid());
        if let Some(u) = filter.user_id {
            q.push(" AND user_id = ").push_bind(*u.as_uuid());
        }
        if let Some(k) = filter.kind {
            q.push(" AND kind = ").push_bind(k.as_str());
        }
        if let Some(s) = filter.status {
            q.push(" AND status = ").push_bind(s.as_str());
        }
        if let Some(from) = filter.from {
            q.push(" AND at >= ").push_bind(from);
        }
        if let Some(until) = filter.until {
            q.push(" AND at < ").push_bind(until);
        }
        q.push(" ORDER BY at DESC, id DESC LIMIT ")
            .push_bind(limit(filter.effective_limit()));
        let rows: Vec<PgRow> = q
            .build()
            .fetch_all(self.reader())
            .await
            .map_err(db("querying audit events"))?;
        rows.iter().map(codec::event).collect()
    }
}

fn reject_reserved(cond: bool, what: &'static str) -> Result<()> {
    if cond {
        Err(PgError::refused(StoreErrorKind::Rejected, what))
    } else {
        Ok(())
    }
}

impl IdentityLookup for PostgresStore {
    type Error = PgError;

    async fn get_tenant(&self, tenant: TenantId) -> Result<Option<Tenant>> {
        self.retry
            .run("get_tenant", true, || self.get_tenant_once(tenant))
            .await
    }

    async fn find_tenant(&self, slug: &TenantSlug) -> Result<Option<Tenant>> {
        self.retry
            .run("find_tenant", true, || self.find_tenant_once(slug))
            .await
    }

    async fn find_user(&self, tenant: TenantId, identifier: &Identifier) -> Result<Option<User>> {
        self.retry
            .run("find_user", true, || {
                self.find_user_once(tenant, identifier)
            })
            .await
    }

    async fn get_user(&self, tenant: TenantId, user: UserId) -> Result<Option<User>> {
        self.retry
            .run("get_user", true, || self.get_user_once(Some(tenant), user))
            .await
    }

    async fn get_user_cross_tenant(&self, user: UserId) -> Result<Option<User>> {
        self.retry
            .run("get_user_cross_tenant", true, || {
                self.get_user_once(None, user)
            })
            .await
    }

    async fn list_users(
        &self,
        tenant: TenantId,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<User>> {
        self.retry
            .run("list_users", true, || {
                self.list_users_once(tenant, after, limit)
            })
            .await
    }

    async fn failure_record(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<FailureRecord>> {
        self.retry
            .run("failure_record", true, || {
                self.failure_record_once(tenant, user)
            })
            .await
    }
}

impl IdentityAuthnLog for PostgresStore {
    /// Idempotent on the event id: recording an event twice stores it once
    /// (which makes retrying a failed append harmless).
    async fn record_event(&self, event: &AuditEvent) -> Result<()> {
        self.retry
            .run("record_event", true, || self.record_event_once(event))
            .await
    }

    async fn record_failed_attempt(
        &self,
        tenant: TenantId,
        user: UserId,
        policy: &LockoutPolicy,
        now: DateTime<Utc>,
    ) -> Result<FailureRecord> {
        self.retry
            .run("record_failed_attempt", false, || {
                self.record_failed_attempt_once(tenant, user, policy, now)
            })
            .await
    }

    async fn reset_failed_attempts(&self, tenant: TenantId, user: UserId) -> Result<()> {
        self.retry
            .run("reset_failed_attempts", true, || {
                self.reset_failed_attempts_once(tenant, user)
            })
            .await
    }

    async fn record_last_login(
        &self,
        tenant: TenantId,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.retry
            .run("record_last_login", true, || {
                self.record_last_login_once(tenant, user, at)
            })
            .await
    }
}

impl IdentityAdmin for PostgresStore {
    async fn provision_tenant(&self, provision: &TenantProvision) -> Result<()> {
        reject_reserved(
            provision.tenant().id.is_system(),
            "the system tenant is reserved",
        )?;
        self.retry
            .run("provision_tenant", false, || self.provision_once(provision))
            .await
    }

    async fn update_tenant_policy(&self, tenant: TenantId, policy: &TenantPolicy) -> Result<()> {
        self.retry
            .run("update_tenant_policy", true, || {
                self.update_tenant_policy_once(tenant, policy)
            })
            .await
    }

    async fn create_user(&self, user: &User, credentials: &[UserFactor]) -> Result<()> {
        reject_reserved(
            user.tenant_id.is_system() || user.id.is_reserved(),
            "reserved id",
        )?;
        self.retry
            .run("create_user", false, || {
                self.create_user_once(user, credentials)
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
        self.retry
            .run("set_user_state", false, || {
                self.set_user_state_once(tenant, user, from, to, reason, at)
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
            .run("push_password_history", false, || {
                self.push_password_history_once(tenant, user, phc, at, keep)
            })
            .await
    }

    async fn password_history(
        &self,
        tenant: TenantId,
        user: UserId,
        limit: u32,
    ) -> Result<Vec<String>> {
        self.retry
            .run("password_history", true, || {
                self.password_history_once(tenant, user, limit)
            })
            .await
    }

    async fn erase_user(&self, tenant: TenantId, user: UserId, pseudonym: UserId) -> Result<bool> {
        self.retry
            .run("erase_user", false, || {
                self.erase_user_once(tenant, user, pseudonym)
            })
            .await
    }
}

impl FactorStore for PostgresStore {
    type Error = PgError;

    async fn tenant_factor(
        &self,
        tenant: TenantId,
        kind: FactorKind,
    ) -> Result<Option<TenantFactor>> {
        self.retry
            .run("tenant_factor", true, || {
                self.tenant_factor_once(tenant, kind)
            })
            .await
    }

    async fn tenant_factors(&self, tenant: TenantId) -> Result<Vec<TenantFactor>> {
        self.retry
            .run("tenant_factors", true, || self.tenant_factors_once(tenant))
            .await
    }

    async fn save_tenant_factor(&self, tenant: TenantId, factor: &TenantFactor) -> Result<()> {
        self.retry
            .run("save_tenant_factor", true, || {
                self.save_tenant_factor_once(tenant, factor)
            })
            .await
    }

    async fn remove_tenant_factor(&self, tenant: TenantId, kind: FactorKind) -> Result<bool> {
        self.retry
            .run("remove_tenant_factor", false, || {
                self.remove_tenant_factor_once(tenant, kind)
            })
            .await
    }

    async fn user_factor(
        &self,
        tenant: TenantId,
        user: UserId,
        kind: FactorKind,
    ) -> Result<Option<Versioned<UserFactor>>> {
        self.retry
            .run("user_factor", true, || {
                self.user_factor_once(tenant, user, kind)
            })
            .await
    }

    async fn user_factors(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Vec<Versioned<UserFactor>>> {
        self.retry
            .run("user_factors", true, || {
                self.user_factors_once(tenant, user)
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
        self.retry
            .run("compare_and_save_user_factor", false, || {
                self.compare_and_save_once(tenant, user, expected, factor)
            })
            .await
    }

    async fn remove_user_factor(
        &self,
        tenant: TenantId,
        user: UserId,
        kind: FactorKind,
    ) -> Result<bool> {
        self.retry
            .run("remove_user_factor", false, || {
                self.remove_user_factor_once(tenant, user, kind)
            })
            .await
    }

    async fn save_method(&self, scope: Scope, method: &AuthMethod, enabled: bool) -> Result<()> {
        self.retry
            .run("save_method", true, || {
                self.save_method_once(scope, method, enabled)
            })
            .await
    }

    async fn methods(&self, scope: Scope) -> Result<Vec<MethodRecord>> {
        self.retry
            .run("methods", true, || self.methods_once(scope))
            .await
    }

    async fn set_method_enabled(
        &self,
        scope: Scope,
        name: &MethodName,
        enabled: bool,
    ) -> Result<bool> {
        self.retry
            .run("set_method_enabled", true, || {
                self.set_method_enabled_once(scope, name, enabled)
            })
            .await
    }

    async fn remove_method(&self, scope: Scope, name: &MethodName) -> Result<bool> {
        self.retry
            .run("remove_method", false, || {
                self.remove_method_once(scope, name)
            })
            .await
    }

    async fn available_methods(&self, tenant: TenantId, user: UserId) -> Result<Vec<AuthMethod>> {
        self.retry
            .run("available_methods", true, || {
                self.available_methods_once(tenant, user)
            })
            .await
    }
}

impl AuditQuery for PostgresStore {
    type Error = PgError;

    async fn query_events(
        &self,
        tenant: TenantId,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEvent>> {
        self.retry
            .run("query_events", true, || {
                self.query_events_once(tenant, filter)
            })
            .await
    }
}
