//! `FactorStore` in SQL: tenant factors, credentials and methods.
//!
//! The invariants "a tenant keeps a factor" and "a tenant keeps an enabled
//! method" are checked in a transaction holding the tenant's row lock, so
//! concurrent removals of one tenant are serialised.

use countersign_core::store::resolve_methods;
use countersign_core::{
    AuthMethod, FactorCredential, FactorKind, FactorSettings, FactorStore, MethodName,
    MethodRecord, MethodScope, TenantId, UserId, Versioned,
};
use sqlx::Row;
use sqlx::types::Json;

use super::{Tx, commit, compare_and_save, conflict, execute, lock_tenant};
use crate::codec;
use crate::error::{PgError, db};
use crate::retry::Idempotence::{Idempotent, Once};
use crate::{PostgresStore, Result};

const LAST_FACTOR: &str = "a tenant keeps at least one factor";
const LAST_METHOD: &str = "a tenant keeps at least one enabled method";

/// Whether the tenant method `name` is enabled (`None`: no such method),
/// and how many of the tenant's methods are enabled.
async fn tenant_method_state(
    tx: &mut Tx,
    tenant: TenantId,
    name: &MethodName,
) -> Result<(Option<bool>, i64)> {
    let context = "reading the tenant's methods";
    let row = sqlx::query(
        "SELECT (SELECT enabled FROM cs_tenant_methods WHERE tenant_id = $1 AND name = $2) AS was,
                (SELECT count(*) FROM cs_tenant_methods WHERE tenant_id = $1 AND enabled) AS n",
    )
    .bind(tenant.as_uuid())
    .bind(name.as_str())
    .fetch_one(&mut **tx)
    .await
    .map_err(db(context))?;
    let was: Option<bool> = row.try_get("was").map_err(db(context))?;
    let n: i64 = row.try_get("n").map_err(db(context))?;
    Ok((was, n))
}

impl FactorStore for PostgresStore {
    type Error = PgError;

    async fn tenant_factor(
        &self,
        tenant: TenantId,
        kind: FactorKind,
    ) -> Result<Option<FactorSettings>> {
        let stmt = || {
            sqlx::query("SELECT config FROM cs_tenant_factors WHERE tenant_id = $1 AND kind = $2")
                .bind(tenant.as_uuid())
                .bind(kind.as_str())
        };
        self.lookup(
            "tenant_factor",
            "reading a tenant factor",
            stmt,
            codec::tenant_factor,
        )
        .await
    }

    async fn tenant_factors(&self, tenant: TenantId) -> Result<Vec<FactorSettings>> {
        let stmt = || {
            sqlx::query(
                r#"SELECT config FROM cs_tenant_factors
                    WHERE tenant_id = $1 ORDER BY kind COLLATE "C""#,
            )
            .bind(tenant.as_uuid())
        };
        self.lookup_all(
            "tenant_factors",
            "reading tenant factors",
            stmt,
            codec::tenant_factor,
        )
        .await
    }

    async fn save_tenant_factor(&self, tenant: TenantId, factor: &FactorSettings) -> Result<()> {
        let stmt = || {
            sqlx::query(
                "INSERT INTO cs_tenant_factors (tenant_id, kind, config)
                 SELECT id, $2, $3 FROM cs_tenants WHERE id = $1
                 ON CONFLICT (tenant_id, kind) DO UPDATE SET config = EXCLUDED.config",
            )
            .bind(tenant.as_uuid())
            .bind(factor.kind().as_str())
            .bind(Json(factor))
        };
        self.retry
            .run("save_tenant_factor", Idempotent, || async {
                match self.autocommit(stmt(), "saving a tenant factor").await? {
                    0 => Err(PgError::not_found("tenant")),
                    _ => Ok(()),
                }
            })
            .await
    }

    async fn remove_tenant_factor(&self, tenant: TenantId, kind: FactorKind) -> Result<bool> {
        self.retry
            .run("remove_tenant_factor", Once, || async {
                let mut tx = self.begin().await?;
                if !lock_tenant(&mut tx, tenant).await? {
                    return Ok(false);
                }
                let context = "reading tenant factors";
                let row = sqlx::query(
                    "SELECT count(*) FILTER (WHERE kind = $2) AS present, count(*) AS total
                       FROM cs_tenant_factors WHERE tenant_id = $1",
                )
                .bind(tenant.as_uuid())
                .bind(kind.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(db(context))?;
                let present: i64 = row.try_get("present").map_err(db(context))?;
                let total: i64 = row.try_get("total").map_err(db(context))?;
                if present == 0 {
                    return Ok(false);
                }
                if total <= 1 {
                    return Err(conflict(LAST_FACTOR));
                }
                let remove =
                    sqlx::query("DELETE FROM cs_tenant_factors WHERE tenant_id = $1 AND kind = $2")
                        .bind(tenant.as_uuid())
                        .bind(kind.as_str());
                execute(remove, &mut *tx, db("removing a tenant factor")).await?;
                commit(tx, "committing a factor removal").await?;
                Ok(true)
            })
            .await
    }

    async fn user_factor(
        &self,
        tenant: TenantId,
        user: UserId,
        kind: FactorKind,
    ) -> Result<Option<Versioned<FactorCredential>>> {
        let stmt = || {
            sqlx::query(
                "SELECT config, version FROM cs_user_factors
                  WHERE tenant_id = $1 AND user_id = $2 AND kind = $3 AND config <> 'null'::jsonb",
            )
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .bind(kind.as_str())
        };
        self.lookup(
            "user_factor",
            "reading a credential",
            stmt,
            codec::user_factor,
        )
        .await
    }

    async fn user_factors(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Vec<Versioned<FactorCredential>>> {
        let stmt = || {
            sqlx::query(
                r#"SELECT config, version FROM cs_user_factors
                    WHERE tenant_id = $1 AND user_id = $2 AND config <> 'null'::jsonb
                    ORDER BY kind COLLATE "C""#,
            )
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
        };
        self.lookup_all(
            "user_factors",
            "reading credentials",
            stmt,
            codec::user_factor,
        )
        .await
    }

    async fn compare_and_save_user_factor(
        &self,
        tenant: TenantId,
        user: UserId,
        expected: Option<u64>,
        factor: &FactorCredential,
    ) -> Result<bool> {
        // One statement each way: the insert relies on ON CONFLICT (of
        // concurrent inserts one lands; a tombstone left by a removal is
        // revived above its version), the update on its `version = $5`
        // re-check against the newest row version.
        let stmt = || match expected {
            None => sqlx::query(
                "WITH u AS (
                     SELECT tenant_id, id FROM cs_users WHERE tenant_id = $1 AND id = $2
                 ), saved AS (
                     INSERT INTO cs_user_factors (tenant_id, user_id, kind, config, version)
                     SELECT tenant_id, id, $3, $4, 1 FROM u
                     ON CONFLICT (tenant_id, user_id, kind) DO UPDATE
                       SET config = EXCLUDED.config, version = cs_user_factors.version + 1
                       WHERE cs_user_factors.config = 'null'::jsonb
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
                        AND config <> 'null'::jsonb
                     RETURNING 1
                 )
                 SELECT EXISTS (SELECT 1 FROM u) AS found, EXISTS (SELECT 1 FROM saved) AS saved",
            )
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .bind(factor.kind().as_str())
            .bind(Json(factor))
            .bind(codec::version(v)),
        };
        self.retry
            .run("compare_and_save_user_factor", Once, || async {
                let mut conn = self.conn().await?;
                compare_and_save(stmt(), &mut *conn, "saving a credential", "user").await
            })
            .await
    }

    async fn remove_user_factor(
        &self,
        tenant: TenantId,
        user: UserId,
        kind: FactorKind,
    ) -> Result<bool> {
        let stmt = || {
            sqlx::query(
                // A tombstone (config `null`) keeps the version, so a
                // re-enrolment continues above it (no ABA).
                "UPDATE cs_user_factors SET config = 'null'::jsonb, version = version + 1
                  WHERE tenant_id = $1 AND user_id = $2 AND kind = $3 AND config <> 'null'::jsonb",
            )
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .bind(kind.as_str())
        };
        self.retry
            .run("remove_user_factor", Once, || async {
                Ok(self.autocommit(stmt(), "removing a credential").await? > 0)
            })
            .await
    }

    async fn save_method(
        &self,
        scope: MethodScope,
        method: &AuthMethod,
        enabled: bool,
    ) -> Result<()> {
        self.retry
            .run("save_method", Idempotent, || async {
                match scope {
                    MethodScope::Tenant(tenant) => {
                        let mut tx = self.begin().await?;
                        if !lock_tenant(&mut tx, tenant).await? {
                            return Err(PgError::not_found("tenant"));
                        }
                        if !enabled {
                            let (was, n) =
                                tenant_method_state(&mut tx, tenant, &method.name).await?;
                            if was == Some(true) && n <= 1 {
                                return Err(conflict(LAST_METHOD));
                            }
                        }
                        let save = sqlx::query(
                            "INSERT INTO cs_tenant_methods (tenant_id, name, method, enabled)
                             VALUES ($1, $2, $3, $4)
                             ON CONFLICT (tenant_id, name)
                             DO UPDATE SET method = EXCLUDED.method, enabled = EXCLUDED.enabled",
                        )
                        .bind(tenant.as_uuid())
                        .bind(method.name.as_str())
                        .bind(Json(method))
                        .bind(enabled);
                        execute(save, &mut *tx, db("saving a method")).await?;
                        commit(tx, "committing a method").await
                    }
                    MethodScope::User(tenant, user) => {
                        let save = sqlx::query(
                            "INSERT INTO cs_user_methods (tenant_id, user_id, name, method, enabled)
                             SELECT tenant_id, id, $3, $4, $5 FROM cs_users
                              WHERE tenant_id = $1 AND id = $2
                             ON CONFLICT (tenant_id, user_id, name)
                             DO UPDATE SET method = EXCLUDED.method, enabled = EXCLUDED.enabled",
                        )
                        .bind(tenant.as_uuid())
                        .bind(user.as_uuid())
                        .bind(method.name.as_str())
                        .bind(Json(method))
                        .bind(enabled);
                        match self.autocommit(save, "saving a method").await? {
                            0 => Err(PgError::not_found("user")),
                            _ => Ok(()),
                        }
                    }
                }
            })
            .await
    }

    async fn methods(&self, scope: MethodScope) -> Result<Vec<MethodRecord>> {
        let table = match scope {
            MethodScope::Tenant(_) => "cs_tenant_methods",
            MethodScope::User(..) => "cs_user_methods",
        };
        let stmt = || match scope {
            MethodScope::Tenant(tenant) => sqlx::query(
                r#"SELECT method, enabled FROM cs_tenant_methods
                    WHERE tenant_id = $1 ORDER BY name COLLATE "C""#,
            )
            .bind(*tenant.as_uuid()),
            MethodScope::User(tenant, user) => sqlx::query(
                r#"SELECT method, enabled FROM cs_user_methods
                    WHERE tenant_id = $1 AND user_id = $2 ORDER BY name COLLATE "C""#,
            )
            .bind(*tenant.as_uuid())
            .bind(*user.as_uuid()),
        };
        let decode = |r: &sqlx::postgres::PgRow| codec::method(r, table);
        self.lookup_all("methods", "reading methods", stmt, decode)
            .await
    }

    async fn set_method_enabled(
        &self,
        scope: MethodScope,
        name: &MethodName,
        enabled: bool,
    ) -> Result<bool> {
        self.retry
            .run("set_method_enabled", Idempotent, || async {
                match scope {
                    MethodScope::Tenant(tenant) => {
                        let mut tx = self.begin().await?;
                        if !lock_tenant(&mut tx, tenant).await? {
                            return Ok(false);
                        }
                        let (was, n) = tenant_method_state(&mut tx, tenant, name).await?;
                        let Some(was) = was else {
                            return Ok(false);
                        };
                        if was && !enabled && n <= 1 {
                            return Err(conflict(LAST_METHOD));
                        }
                        let set = sqlx::query(
                            "UPDATE cs_tenant_methods SET enabled = $3
                              WHERE tenant_id = $1 AND name = $2",
                        )
                        .bind(tenant.as_uuid())
                        .bind(name.as_str())
                        .bind(enabled);
                        execute(set, &mut *tx, db("enabling a method")).await?;
                        commit(tx, "committing a method").await?;
                        Ok(true)
                    }
                    MethodScope::User(tenant, user) => {
                        let set = sqlx::query(
                            "UPDATE cs_user_methods SET enabled = $4
                              WHERE tenant_id = $1 AND user_id = $2 AND name = $3",
                        )
                        .bind(tenant.as_uuid())
                        .bind(user.as_uuid())
                        .bind(name.as_str())
                        .bind(enabled);
                        Ok(self.autocommit(set, "enabling a method").await? > 0)
                    }
                }
            })
            .await
    }

    async fn remove_method(&self, scope: MethodScope, name: &MethodName) -> Result<bool> {
        self.retry
            .run("remove_method", Once, || async {
                match scope {
                    MethodScope::Tenant(tenant) => {
                        let mut tx = self.begin().await?;
                        if !lock_tenant(&mut tx, tenant).await? {
                            return Ok(false);
                        }
                        let (was, n) = tenant_method_state(&mut tx, tenant, name).await?;
                        let Some(was) = was else {
                            return Ok(false);
                        };
                        if was && n <= 1 {
                            return Err(conflict(LAST_METHOD));
                        }
                        let remove = sqlx::query(
                            "DELETE FROM cs_tenant_methods WHERE tenant_id = $1 AND name = $2",
                        )
                        .bind(tenant.as_uuid())
                        .bind(name.as_str());
                        execute(remove, &mut *tx, db("removing a method")).await?;
                        commit(tx, "committing a method removal").await?;
                        Ok(true)
                    }
                    MethodScope::User(tenant, user) => {
                        let remove = sqlx::query(
                            "DELETE FROM cs_user_methods
                              WHERE tenant_id = $1 AND user_id = $2 AND name = $3",
                        )
                        .bind(tenant.as_uuid())
                        .bind(user.as_uuid())
                        .bind(name.as_str());
                        Ok(self.autocommit(remove, "removing a method").await? > 0)
                    }
                }
            })
            .await
    }

    async fn available_methods(&self, tenant: TenantId, user: UserId) -> Result<Vec<AuthMethod>> {
        // One statement, so one snapshot of both scopes; resolved by the
        // reference rules. Nothing for a user not in the tenant.
        let stmt = || {
            sqlx::query(
                "SELECT false AS personal, method, enabled FROM cs_tenant_methods
                  WHERE tenant_id = $1
                    AND EXISTS (SELECT 1 FROM cs_users WHERE tenant_id = $1 AND id = $2)
                 UNION ALL
                 SELECT true AS personal, method, enabled FROM cs_user_methods
                  WHERE tenant_id = $1 AND user_id = $2",
            )
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
        };
        let decode = |row: &sqlx::postgres::PgRow| {
            let personal: bool = row
                .try_get("personal")
                .map_err(db("reading available methods"))?;
            let table = if personal {
                "cs_user_methods"
            } else {
                "cs_tenant_methods"
            };
            Ok((personal, codec::method(row, table)?))
        };
        let rows = self
            .lookup_all(
                "available_methods",
                "reading available methods",
                stmt,
                decode,
            )
            .await?;
        let (mut tenant_scope, mut user_scope) = (Vec::new(), Vec::new());
        for (personal, method) in rows {
            if personal {
                user_scope.push(method);
            } else {
                tenant_scope.push(method);
            }
        }
        Ok(resolve_methods(&tenant_scope, &user_scope))
    }
}
