//! `FactorStore` in SQLite: tenant factor settings, user credentials
//! (compare-and-save on a version column) and methods at both scopes.

use countersign_core::store::resolve_methods;
use countersign_core::{
    AuthMethod, FactorCredential, FactorKind, FactorSettings, FactorStore, MethodName,
    MethodRecord, MethodScope, TenantId, UserId, Versioned,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{require_tenant, require_user, rows, user_exists};
use crate::codec::{
    METHOD_COLS, USER_FACTOR_COLS, id, json, read_json, read_method, read_versioned_factor,
    version_param,
};
use crate::{Result, SqliteError, SqliteStore};

fn tenant_methods(c: &Connection, tenant: &str) -> Result<Vec<MethodRecord>> {
    rows(
        c,
        &format!("SELECT {METHOD_COLS} FROM cs_tenant_methods WHERE tenant_id = ?1 ORDER BY name"),
        [tenant],
        read_method,
    )
}

fn user_methods(c: &Connection, tenant: &str, user: &str) -> Result<Vec<MethodRecord>> {
    rows(
        c,
        &format!(
            "SELECT {METHOD_COLS} FROM cs_user_methods WHERE tenant_id = ?1 AND user_id = ?2 ORDER BY name"
        ),
        [tenant, user],
        read_method,
    )
}

/// Refuse to change the tenant method `name` to `enabled` (or to remove
/// it, `None`) if that would leave the tenant without an enabled method.
fn keep_an_enabled_method(
    c: &Connection,
    tenant: &str,
    name: &str,
    enabled: Option<bool>,
) -> Result<()> {
    if enabled == Some(true) {
        return Ok(());
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
    if this_enabled && others == 0 {
        return Err(SqliteError::Conflict(
            "a tenant keeps at least one enabled method",
        ));
    }
    Ok(())
}

impl SqliteStore {
    /// Enable or disable (`Some`) or remove (`None`) the method `name` at
    /// `scope`, keeping a tenant's last enabled method. Whether it existed.
    async fn change_method(
        &self,
        scope: MethodScope,
        name: &MethodName,
        enabled: Option<bool>,
    ) -> Result<bool> {
        let name = name.as_str().to_owned();
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let t = id(scope.tenant().as_uuid());
            let n = match (scope.user().map(|u| id(u.as_uuid())), enabled) {
                (None, _) => {
                    keep_an_enabled_method(&tx, &t, &name, enabled)?;
                    match enabled {
                        Some(e) => tx.execute(
                            "UPDATE cs_tenant_methods SET enabled = ?3 WHERE tenant_id = ?1 AND name = ?2",
                            params![t, name, e],
                        )?,
                        None => tx.execute(
                            "DELETE FROM cs_tenant_methods WHERE tenant_id = ?1 AND name = ?2",
                            [&t, &name],
                        )?,
                    }
                }
                (Some(u), Some(e)) => tx.execute(
                    "UPDATE cs_user_methods SET enabled = ?4 WHERE tenant_id = ?1 AND user_id = ?2 AND name = ?3",
                    params![t, u, name, e],
                )?,
                (Some(u), None) => tx.execute(
                    "DELETE FROM cs_user_methods WHERE tenant_id = ?1 AND user_id = ?2 AND name = ?3",
                    [&t, &u, &name],
                )?,
            };
            tx.commit()?;
            Ok(n == 1)
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
    ) -> Result<Option<FactorSettings>> {
        self.read_optional(
            "SELECT config FROM cs_tenant_factors WHERE tenant_id = ?1 AND kind = ?2",
            (id(tenant.as_uuid()), kind.as_str()),
            read_json,
        )
        .await
    }

    async fn tenant_factors(&self, tenant: TenantId) -> Result<Vec<FactorSettings>> {
        self.fetch_all(
            "SELECT config FROM cs_tenant_factors WHERE tenant_id = ?1 ORDER BY kind",
            [id(tenant.as_uuid())],
            read_json,
        )
        .await
    }

    async fn save_tenant_factor(&self, tenant: TenantId, factor: &FactorSettings) -> Result<()> {
        self.execute(
            "INSERT INTO cs_tenant_factors (tenant_id, kind, config) VALUES (?1, ?2, ?3)
             ON CONFLICT (tenant_id, kind) DO UPDATE SET config = excluded.config",
            (id(tenant.as_uuid()), factor.kind().as_str(), json(factor)?),
        )
        .await?;
        Ok(())
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
    ) -> Result<Option<Versioned<FactorCredential>>> {
        self.read_optional(
            format!(
                "SELECT {USER_FACTOR_COLS} FROM cs_user_factors WHERE tenant_id = ?1 AND user_id = ?2 AND kind = ?3 AND config <> 'null'"
            ),
            (id(tenant.as_uuid()), id(user.as_uuid()), kind.as_str()),
            read_versioned_factor,
        )
        .await
    }

    async fn user_factors(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Vec<Versioned<FactorCredential>>> {
        self.fetch_all(
            format!(
                "SELECT {USER_FACTOR_COLS} FROM cs_user_factors WHERE tenant_id = ?1 AND user_id = ?2 AND config <> 'null' ORDER BY kind"
            ),
            [id(tenant.as_uuid()), id(user.as_uuid())],
            read_versioned_factor,
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
        let (t, u) = (id(tenant.as_uuid()), id(user.as_uuid()));
        let (kind, config) = (factor.kind().as_str(), json(factor)?);
        let expected = expected.map(version_param).transpose()?;
        self.call(move |c| {
            let n = match expected {
                None => c
                    .prepare_cached(
                        // A removed credential left a tombstone (config
                        // `null`) holding its last version: re-enrolment
                        // continues above it (no ABA).
                        "INSERT INTO cs_user_factors (tenant_id, user_id, kind, config, version)
                         SELECT ?1, ?2, ?3, ?4, 1
                         WHERE EXISTS (SELECT 1 FROM cs_users WHERE tenant_id = ?1 AND id = ?2)
                         ON CONFLICT (tenant_id, user_id, kind) DO UPDATE
                           SET config = excluded.config, version = cs_user_factors.version + 1
                           WHERE cs_user_factors.config = 'null'",
                    )?
                    .execute(params![t, u, kind, config])?,
                Some(v) => c
                    .prepare_cached(
                        "UPDATE cs_user_factors SET config = ?4, version = version + 1
                         WHERE tenant_id = ?1 AND user_id = ?2 AND kind = ?3 AND version = ?5
                           AND config <> 'null'",
                    )?
                    .execute(params![t, u, kind, config, v])?,
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
        let n = self
            .execute(
                // A tombstone keeps the version (see compare-and-save).
                "UPDATE cs_user_factors SET config = 'null', version = version + 1
                 WHERE tenant_id = ?1 AND user_id = ?2 AND kind = ?3 AND config <> 'null'",
                (id(tenant.as_uuid()), id(user.as_uuid()), kind.as_str()),
            )
            .await?;
        Ok(n == 1)
    }

    async fn save_method(
        &self,
        scope: MethodScope,
        method: &AuthMethod,
        enabled: bool,
    ) -> Result<()> {
        let (name, body) = (method.name.as_str().to_owned(), json(method)?);
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let t = id(scope.tenant().as_uuid());
            match scope.user() {
                None => {
                    require_tenant(&tx, &t)?;
                    keep_an_enabled_method(&tx, &t, &name, Some(enabled))?;
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

    async fn methods(&self, scope: MethodScope) -> Result<Vec<MethodRecord>> {
        self.read_snapshot(move |c| {
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
        scope: MethodScope,
        name: &MethodName,
        enabled: bool,
    ) -> Result<bool> {
        self.change_method(scope, name, Some(enabled)).await
    }

    async fn remove_method(&self, scope: MethodScope, name: &MethodName) -> Result<bool> {
        self.change_method(scope, name, None).await
    }

    async fn available_methods(&self, tenant: TenantId, user: UserId) -> Result<Vec<AuthMethod>> {
        let (t, u) = (id(tenant.as_uuid()), id(user.as_uuid()));
        self.read_snapshot(move |c| {
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
