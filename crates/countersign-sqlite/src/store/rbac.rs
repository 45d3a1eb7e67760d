//! `RbacLookup` and `RbacStore` in SQLite: each tenant's services, roles
//! and permissions (one table per kind), the grants and assignments naming
//! them (removed with them by foreign-key cascade), and a per-tenant
//! version bumped in the transaction of every change.

use countersign_core::{
    AuditEvent, AuthzVersions, RbacChange, RbacKind, RbacLookup, RbacName, RbacSnapshot, RbacStore,
    RoleGrant, TenantId, UserId,
};
use rusqlite::{Connection, TransactionBehavior, params};

use super::{first, require_tenant, require_user, rows};
use crate::codec::{
    ASSIGNMENT_COLS, DIRECT_GRANT_COLS, ROLE_GRANT_COLS, id, read_assignment, read_authz_versions,
    read_direct_grant, read_name, read_role_grant, read_user_id, read_version,
};
use crate::{Result, SqliteError, SqliteStore};

/// The table holding the names of `kind`.
fn names_table(kind: RbacKind) -> &'static str {
    match kind {
        RbacKind::Service => "cs_rbac_services",
        RbacKind::Role => "cs_rbac_roles",
        RbacKind::Permission => "cs_rbac_permissions",
    }
}

/// Sort a listing (every listing of the trait is sorted; sorting here keeps
/// the order `Ord`'s whatever the database's collation).
fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// A unique violation of the statement as `Conflict(what)`.
fn conflict(what: &'static str) -> impl Fn(rusqlite::Error) -> SqliteError {
    move |e| {
        let e = SqliteError::from(e);
        if e.unique_violation() {
            SqliteError::Conflict(what)
        } else {
            e
        }
    }
}

/// `NotFound(kind)` unless the tenant has a `kind` named `name`.
fn require_name(c: &Connection, t: &str, kind: RbacKind, name: &RbacName) -> Result<()> {
    let exists = c
        .prepare_cached(&format!(
            "SELECT 1 FROM {} WHERE tenant_id = ?1 AND name = ?2",
            names_table(kind)
        ))?
        .exists(params![t, name.as_str()])?;
    if exists {
        Ok(())
    } else {
        Err(SqliteError::NotFound(kind.as_str()))
    }
}

/// Bump the tenant's RBAC version (inside the caller's transaction);
/// returns the new version. A tenant without a row is at version 0.
pub(super) fn bump_version(c: &Connection, t: &str) -> Result<u64> {
    let mut stmt = c.prepare_cached(
        "INSERT INTO cs_rbac_versions (tenant_id, version) VALUES (?1, 1)
         ON CONFLICT (tenant_id) DO UPDATE SET version = version + 1
         RETURNING version",
    )?;
    let mut rows = stmt.query([t])?;
    match rows.next()? {
        Some(row) => read_version(row),
        None => Err(SqliteError::Corrupt("no rbac version returned".into())),
    }
}

/// The tenant's RBAC version (0 without a row).
fn version(c: &Connection, t: &str) -> Result<u64> {
    Ok(first(
        c,
        "SELECT version FROM cs_rbac_versions WHERE tenant_id = ?1",
        [t],
        read_version,
    )?
    .unwrap_or(0))
}

/// Apply one change (inside the caller's transaction), without the
/// version bump.
fn apply(c: &Connection, t: &str, change: &RbacChange) -> Result<()> {
    match change {
        RbacChange::Create { kind, name } => {
            c.prepare_cached(&format!(
                "INSERT INTO {} (tenant_id, name) VALUES (?1, ?2)",
                names_table(*kind)
            ))?
            .execute(params![t, name.as_str()])
            .map_err(conflict("name already exists"))?;
        }
        RbacChange::Delete { kind, name } => {
            // Grants and assignments naming it go by cascade.
            let n = c
                .prepare_cached(&format!(
                    "DELETE FROM {} WHERE tenant_id = ?1 AND name = ?2",
                    names_table(*kind)
                ))?
                .execute(params![t, name.as_str()])?;
            if n == 0 {
                return Err(SqliteError::NotFound(kind.as_str()));
            }
        }
        RbacChange::Grant(g) => {
            require_name(c, t, RbacKind::Role, &g.role)?;
            require_name(c, t, RbacKind::Permission, &g.permission)?;
            if let Some(s) = &g.service {
                require_name(c, t, RbacKind::Service, s)?;
            }
            c.prepare_cached(
                "INSERT INTO cs_rbac_role_grants (tenant_id, role, permission, service)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                t,
                g.role.as_str(),
                g.permission.as_str(),
                g.service.as_ref().map(RbacName::as_str)
            ])
            .map_err(conflict("role grant already exists"))?;
        }
        RbacChange::Revoke(g) => {
            let n = c
                .prepare_cached(
                    "DELETE FROM cs_rbac_role_grants
                     WHERE tenant_id = ?1 AND role = ?2 AND permission = ?3 AND service IS ?4",
                )?
                .execute(params![
                    t,
                    g.role.as_str(),
                    g.permission.as_str(),
                    g.service.as_ref().map(RbacName::as_str)
                ])?;
            if n == 0 {
                return Err(SqliteError::NotFound("role grant"));
            }
        }
        RbacChange::Assign(a) => {
            let u = id(a.user.as_uuid());
            require_user(c, t, &u)?;
            require_name(c, t, RbacKind::Role, &a.role)?;
            require_name(c, t, RbacKind::Service, &a.service)?;
            c.prepare_cached(
                "INSERT INTO cs_rbac_assignments (tenant_id, user_id, role, service)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![t, u, a.role.as_str(), a.service.as_str()])
            .map_err(conflict("assignment already exists"))?;
        }
        RbacChange::Unassign(a) => {
            let n = c
                .prepare_cached(
                    "DELETE FROM cs_rbac_assignments
                     WHERE tenant_id = ?1 AND user_id = ?2 AND role = ?3 AND service = ?4",
                )?
                .execute(params![
                    t,
                    id(a.user.as_uuid()),
                    a.role.as_str(),
                    a.service.as_str()
                ])?;
            if n == 0 {
                return Err(SqliteError::NotFound("assignment"));
            }
        }
        RbacChange::GrantDirect(g) => {
            let u = id(g.user.as_uuid());
            require_user(c, t, &u)?;
            require_name(c, t, RbacKind::Permission, &g.permission)?;
            require_name(c, t, RbacKind::Service, &g.service)?;
            c.prepare_cached(
                "INSERT INTO cs_rbac_direct_grants (tenant_id, user_id, permission, service)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![t, u, g.permission.as_str(), g.service.as_str()])
            .map_err(conflict("direct grant already exists"))?;
        }
        RbacChange::RevokeDirect(g) => {
            let n = c
                .prepare_cached(
                    "DELETE FROM cs_rbac_direct_grants
                     WHERE tenant_id = ?1 AND user_id = ?2 AND permission = ?3 AND service = ?4",
                )?
                .execute(params![
                    t,
                    id(g.user.as_uuid()),
                    g.permission.as_str(),
                    g.service.as_str()
                ])?;
            if n == 0 {
                return Err(SqliteError::NotFound("direct grant"));
            }
        }
    }
    Ok(())
}

impl RbacLookup for SqliteStore {
    type Error = SqliteError;

    async fn authz_versions(&self, tenant: TenantId) -> Result<AuthzVersions> {
        // One statement: both versions from one read.
        Ok(self
            .fetch_optional(
                "SELECT (SELECT version FROM cs_policy_documents WHERE tenant_id = ?1),
                        (SELECT version FROM cs_rbac_versions WHERE tenant_id = ?1)",
                [id(tenant.as_uuid())],
                read_authz_versions,
            )
            .await?
            .unwrap_or_default())
    }

    async fn rbac_snapshot(&self, tenant: TenantId) -> Result<RbacSnapshot> {
        let t = id(tenant.as_uuid());
        self.call(move |c| {
            // One read transaction: every SELECT sees the same commit.
            let tx = c.transaction()?;
            let version = version(&tx, &t)?;
            let names = |kind| {
                rows(
                    &tx,
                    &format!(
                        "SELECT name FROM {} WHERE tenant_id = ?1",
                        names_table(kind)
                    ),
                    [&t],
                    read_name,
                )
                .map(sorted)
            };
            let services = names(RbacKind::Service)?;
            let roles = names(RbacKind::Role)?;
            let permissions = names(RbacKind::Permission)?;
            let role_grants = sorted(rows(
                &tx,
                &format!("SELECT {ROLE_GRANT_COLS} FROM cs_rbac_role_grants WHERE tenant_id = ?1"),
                [&t],
                read_role_grant,
            )?);
            let assignments = sorted(rows(
                &tx,
                &format!("SELECT {ASSIGNMENT_COLS} FROM cs_rbac_assignments WHERE tenant_id = ?1"),
                [&t],
                read_assignment,
            )?);
            let direct_grants = sorted(rows(
                &tx,
                &format!(
                    "SELECT {DIRECT_GRANT_COLS} FROM cs_rbac_direct_grants WHERE tenant_id = ?1"
                ),
                [&t],
                read_direct_grant,
            )?);
            tx.commit()?;
            Ok(RbacSnapshot {
                tenant_id: tenant,
                version,
                services,
                roles,
                permissions,
                role_grants,
                assignments,
                direct_grants,
            })
        })
        .await
    }

    async fn rbac_names(&self, tenant: TenantId, kind: RbacKind) -> Result<Vec<RbacName>> {
        self.fetch_all(
            format!(
                "SELECT name FROM {} WHERE tenant_id = ?1",
                names_table(kind)
            ),
            [id(tenant.as_uuid())],
            read_name,
        )
        .await
        .map(sorted)
    }

    async fn role_permissions(&self, tenant: TenantId, role: &RbacName) -> Result<Vec<RoleGrant>> {
        self.fetch_all(
            format!(
                "SELECT {ROLE_GRANT_COLS} FROM cs_rbac_role_grants WHERE tenant_id = ?1 AND role = ?2"
            ),
            [id(tenant.as_uuid()), role.as_str().to_owned()],
            read_role_grant,
        )
        .await
        .map(sorted)
    }

    async fn service_roles(&self, tenant: TenantId, service: &RbacName) -> Result<Vec<RbacName>> {
        self.fetch_all(
            "SELECT role FROM cs_rbac_assignments WHERE tenant_id = ?1 AND service = ?2
             UNION
             SELECT role FROM cs_rbac_role_grants WHERE tenant_id = ?1 AND service = ?2",
            [id(tenant.as_uuid()), service.as_str().to_owned()],
            read_name,
        )
        .await
        .map(sorted)
    }

    async fn user_roles(
        &self,
        tenant: TenantId,
        user: UserId,
        service: &RbacName,
    ) -> Result<Vec<RbacName>> {
        self.fetch_all(
            "SELECT role FROM cs_rbac_assignments
             WHERE tenant_id = ?1 AND user_id = ?2 AND service = ?3",
            [
                id(tenant.as_uuid()),
                id(user.as_uuid()),
                service.as_str().to_owned(),
            ],
            read_name,
        )
        .await
        .map(sorted)
    }

    async fn user_permissions(
        &self,
        tenant: TenantId,
        user: UserId,
        service: &RbacName,
    ) -> Result<Vec<RbacName>> {
        // rbac::effective_permissions in SQL; UNION deduplicates.
        self.fetch_all(
            "SELECT g.permission FROM cs_rbac_assignments a
               JOIN cs_rbac_role_grants g ON g.tenant_id = a.tenant_id AND g.role = a.role
             WHERE a.tenant_id = ?1 AND a.user_id = ?2 AND a.service = ?3
               AND (g.service IS NULL OR g.service = ?3)
             UNION
             SELECT permission FROM cs_rbac_direct_grants
             WHERE tenant_id = ?1 AND user_id = ?2 AND service = ?3",
            [
                id(tenant.as_uuid()),
                id(user.as_uuid()),
                service.as_str().to_owned(),
            ],
            read_name,
        )
        .await
        .map(sorted)
    }

    async fn role_holders(
        &self,
        tenant: TenantId,
        role: &RbacName,
        service: &RbacName,
    ) -> Result<Vec<UserId>> {
        self.fetch_all(
            "SELECT user_id FROM cs_rbac_assignments
             WHERE tenant_id = ?1 AND role = ?2 AND service = ?3",
            [
                id(tenant.as_uuid()),
                role.as_str().to_owned(),
                service.as_str().to_owned(),
            ],
            read_user_id,
        )
        .await
        .map(sorted)
    }

    async fn user_services(&self, tenant: TenantId, user: UserId) -> Result<Vec<RbacName>> {
        self.fetch_all(
            "SELECT service FROM cs_rbac_assignments WHERE tenant_id = ?1 AND user_id = ?2
             UNION
             SELECT service FROM cs_rbac_direct_grants WHERE tenant_id = ?1 AND user_id = ?2",
            [id(tenant.as_uuid()), id(user.as_uuid())],
            read_name,
        )
        .await
        .map(sorted)
    }
}

impl RbacStore for SqliteStore {
    async fn apply_rbac_change(
        &self,
        tenant: TenantId,
        change: &RbacChange,
        event: Option<&AuditEvent>,
    ) -> Result<u64> {
        let t = id(tenant.as_uuid());
        let (change, e) = (change.clone(), event.cloned());
        self.call(move |c| {
            // The change, its event and the version bump commit together;
            // any error drops the transaction, which rolls back.
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            require_tenant(&tx, &t)?;
            apply(&tx, &t, &change)?;
            if let Some(e) = &e {
                super::identity::insert_event(&tx, e).map_err(|e| {
                    if e.unique_violation() {
                        SqliteError::Conflict("event id already exists")
                    } else {
                        e
                    }
                })?;
            }
            let v = bump_version(&tx, &t)?;
            tx.commit()?;
            Ok(v)
        })
        .await
    }
}
