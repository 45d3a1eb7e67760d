//! `RbacLookup` and `RbacStore` in SQL.
//!
//! Every read goes to the main pool: the model decides authorization, and a
//! replica lagging behind a revocation would still allow what was revoked.
//!
//! Each change is one transaction that first bumps the tenant's version
//! (`cs_rbac_versions`), which locks that row until the commit: changes of
//! one tenant run one after the other, none loses its bump, and the checks
//! that follow (names exist, the user is the tenant's) cannot be undone by
//! a concurrent change before the commit. Erasing a user takes the same
//! lock first (see `erase_user`). Deletes cascade by foreign key.

use countersign_core::{
    AuditEvent, AuthzVersions, RbacChange, RbacKind, RbacLookup, RbacName, RbacSnapshot, RbacStore,
    RoleGrant, TenantId, UserId,
};

use super::{Tx, commit, execute, optional};
use crate::codec;
use crate::error::{PgError, Phase, db, unique_violation};
use crate::retry::Idempotence::Once;
use crate::{PostgresStore, Result};

/// The SQL `$before <table of kind> $after`, a `&'static str`.
macro_rules! per_kind {
    ($kind:expr, $before:literal, $after:literal) => {
        match $kind {
            RbacKind::Service => concat!($before, "cs_rbac_services", $after),
            RbacKind::Role => concat!($before, "cs_rbac_roles", $after),
            RbacKind::Permission => concat!($before, "cs_rbac_permissions", $after),
        }
    };
}

/// The table holding the names of `kind`.
fn names_table(kind: RbacKind) -> &'static str {
    per_kind!(kind, "", "")
}

impl RbacLookup for PostgresStore {
    type Error = PgError;

    async fn authz_versions(&self, tenant: TenantId) -> Result<AuthzVersions> {
        // One statement, one row whether or not the tenant has either.
        let stmt = || {
            sqlx::query(
                "SELECT (SELECT version FROM cs_policy_documents WHERE tenant_id = $1) AS policies,
                        COALESCE((SELECT version FROM cs_rbac_versions WHERE tenant_id = $1), 0)
                            AS rbac",
            )
            .bind(tenant.as_uuid())
        };
        let versions = self
            .lookup(
                "authz_versions",
                "reading the authorization versions",
                stmt,
                codec::authz_versions,
            )
            .await?;
        Ok(versions.unwrap_or_default())
    }

    async fn rbac_snapshot(&self, tenant: TenantId) -> Result<RbacSnapshot> {
        // One statement, so one snapshot of the database: never a mix of
        // two versions.
        let stmt = || {
            sqlx::query(
                "SELECT
                   COALESCE((SELECT version FROM cs_rbac_versions WHERE tenant_id = $1), 0)
                       AS version,
                   ARRAY(SELECT name FROM cs_rbac_services WHERE tenant_id = $1 ORDER BY name)
                       AS services,
                   ARRAY(SELECT name FROM cs_rbac_roles WHERE tenant_id = $1 ORDER BY name)
                       AS roles,
                   ARRAY(SELECT name FROM cs_rbac_permissions WHERE tenant_id = $1 ORDER BY name)
                       AS permissions,
                   COALESCE((SELECT json_agg(json_build_array(role, permission, service)
                                             ORDER BY role, permission, service NULLS FIRST)
                               FROM cs_rbac_role_grants WHERE tenant_id = $1), '[]'::json)
                       AS role_grants,
                   COALESCE((SELECT json_agg(json_build_array(user_id, role, service)
                                             ORDER BY user_id, role, service)
                               FROM cs_rbac_assignments WHERE tenant_id = $1), '[]'::json)
                       AS assignments,
                   COALESCE((SELECT json_agg(json_build_array(user_id, permission, service)
                                             ORDER BY user_id, permission, service)
                               FROM cs_rbac_direct_grants WHERE tenant_id = $1), '[]'::json)
                       AS direct_grants",
            )
            .bind(tenant.as_uuid())
        };
        self.lookup("rbac_snapshot", "reading an RBAC snapshot", stmt, |row| {
            codec::rbac_snapshot(row, tenant)
        })
        .await?
        .ok_or_else(|| {
            PgError::corrupt("cs_rbac_versions", "the snapshot statement returned no row")
        })
    }

    async fn rbac_names(&self, tenant: TenantId, kind: RbacKind) -> Result<Vec<RbacName>> {
        let table = names_table(kind);
        let stmt = || {
            sqlx::query(per_kind!(
                kind,
                "SELECT name FROM ",
                " WHERE tenant_id = $1 ORDER BY name"
            ))
            .bind(tenant.as_uuid())
        };
        self.lookup_all("rbac_names", "listing RBAC names", stmt, |row| {
            codec::rbac_name(row, table, "name")
        })
        .await
    }

    async fn role_permissions(&self, tenant: TenantId, role: &RbacName) -> Result<Vec<RoleGrant>> {
        let stmt = || {
            sqlx::query(
                "SELECT role, permission, service FROM cs_rbac_role_grants
                  WHERE tenant_id = $1 AND role = $2
                  ORDER BY permission, service NULLS FIRST",
            )
            .bind(tenant.as_uuid())
            .bind(role.as_str())
        };
        let mut grants = self
            .lookup_all(
                "role_permissions",
                "listing a role's permissions",
                stmt,
                codec::role_grant,
            )
            .await?;
        grants.sort();
        Ok(grants)
    }

    async fn service_roles(&self, tenant: TenantId, service: &RbacName) -> Result<Vec<RbacName>> {
        let stmt = || {
            sqlx::query(
                "SELECT role FROM cs_rbac_assignments WHERE tenant_id = $1 AND service = $2
                 UNION
                 SELECT role FROM cs_rbac_role_grants WHERE tenant_id = $1 AND service = $2
                 ORDER BY role",
            )
            .bind(tenant.as_uuid())
            .bind(service.as_str())
        };
        let mut roles = self
            .lookup_all("service_roles", "listing a service's roles", stmt, |row| {
                codec::rbac_name(row, "cs_rbac_assignments", "role")
            })
            .await?;
        roles.sort();
        Ok(roles)
    }

    async fn user_roles(
        &self,
        tenant: TenantId,
        user: UserId,
        service: &RbacName,
    ) -> Result<Vec<RbacName>> {
        let stmt = || {
            sqlx::query(
                "SELECT role FROM cs_rbac_assignments
                  WHERE tenant_id = $1 AND user_id = $2 AND service = $3
                  ORDER BY role",
            )
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .bind(service.as_str())
        };
        let mut roles = self
            .lookup_all("user_roles", "listing a user's roles", stmt, |row| {
                codec::rbac_name(row, "cs_rbac_assignments", "role")
            })
            .await?;
        roles.sort();
        Ok(roles)
    }

    async fn user_permissions(
        &self,
        tenant: TenantId,
        user: UserId,
        service: &RbacName,
    ) -> Result<Vec<RbacName>> {
        // rbac::effective_permissions: grants to the roles the user holds in
        // the service (limited to it or unlimited), and direct grants there.
        let stmt = || {
            sqlx::query(
                "SELECT g.permission
                   FROM cs_rbac_assignments a
                   JOIN cs_rbac_role_grants g
                     ON g.tenant_id = a.tenant_id AND g.role = a.role
                    AND (g.service IS NULL OR g.service = a.service)
                  WHERE a.tenant_id = $1 AND a.user_id = $2 AND a.service = $3
                 UNION
                 SELECT permission FROM cs_rbac_direct_grants
                  WHERE tenant_id = $1 AND user_id = $2 AND service = $3
                 ORDER BY permission",
            )
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .bind(service.as_str())
        };
        let mut permissions = self
            .lookup_all(
                "user_permissions",
                "listing a user's permissions",
                stmt,
                |row| codec::rbac_name(row, "cs_rbac_role_grants", "permission"),
            )
            .await?;
        permissions.sort();
        permissions.dedup();
        Ok(permissions)
    }

    async fn role_holders(
        &self,
        tenant: TenantId,
        role: &RbacName,
        service: &RbacName,
    ) -> Result<Vec<UserId>> {
        let stmt = || {
            sqlx::query(
                "SELECT user_id FROM cs_rbac_assignments
                  WHERE tenant_id = $1 AND service = $2 AND role = $3
                  ORDER BY user_id",
            )
            .bind(tenant.as_uuid())
            .bind(service.as_str())
            .bind(role.as_str())
        };
        let mut users = self
            .lookup_all("role_holders", "listing a role's holders", stmt, |row| {
                codec::user_id(row, "cs_rbac_assignments")
            })
            .await?;
        users.sort();
        Ok(users)
    }

    async fn user_services(&self, tenant: TenantId, user: UserId) -> Result<Vec<RbacName>> {
        let stmt = || {
            sqlx::query(
                "SELECT service FROM cs_rbac_assignments WHERE tenant_id = $1 AND user_id = $2
                 UNION
                 SELECT service FROM cs_rbac_direct_grants WHERE tenant_id = $1 AND user_id = $2
                 ORDER BY service",
            )
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
        };
        let mut services = self
            .lookup_all("user_services", "listing a user's services", stmt, |row| {
                codec::rbac_name(row, "cs_rbac_assignments", "service")
            })
            .await?;
        services.sort();
        Ok(services)
    }
}

impl RbacStore for PostgresStore {
    async fn apply_rbac_change(
        &self,
        tenant: TenantId,
        change: &RbacChange,
        event: Option<&AuditEvent>,
    ) -> Result<u64> {
        self.retry
            .run("apply_rbac_change", Once, || async {
                // Any refusal returns before the commit: the transaction
                // rolls back on drop, with the bump, the change and the event.
                let mut tx = self.begin().await?;
                let version = bump_version(&mut tx, tenant).await?;
                apply(&mut tx, tenant, change).await?;
                if let Some(event) = event {
                    let clash = unique_violation(
                        Phase::Uncommitted,
                        "recording an RBAC change",
                        "audit event already exists",
                    );
                    execute(super::identity::event_insert(event, false), &mut *tx, clash).await?;
                }
                commit(tx, "committing an RBAC change").await?;
                Ok(version)
            })
            .await
    }
}

/// Add one to the tenant's RBAC version (from 0: no row), locking its row
/// for the rest of `tx`; the new version. `NotFound` without the tenant.
async fn bump_version(tx: &mut Tx, tenant: TenantId) -> Result<u64> {
    let bump = sqlx::query(
        "INSERT INTO cs_rbac_versions AS v (tenant_id, version)
         SELECT id, 1 FROM cs_tenants WHERE id = $1
         ON CONFLICT (tenant_id) DO UPDATE SET version = v.version + 1
         RETURNING version",
    )
    .bind(tenant.as_uuid());
    let version = optional(bump, &mut **tx, db("bumping the RBAC version"), |row| {
        let v: i64 = codec::get(row, "cs_rbac_versions", "version")?;
        codec::unsigned("cs_rbac_versions", "version", v)
    })
    .await?;
    version.ok_or_else(|| PgError::not_found("tenant"))
}

/// Lock the tenant's RBAC version row for the rest of `tx` (if it has one)
/// without changing it, as a change would: for a transaction that may
/// change the model (erasing a user), so that it runs before or after the
/// tenant's changes, never between their checks and their commit.
pub(super) async fn lock_version(tx: &mut Tx, tenant: TenantId) -> Result<()> {
    let lock = sqlx::query("SELECT 1 FROM cs_rbac_versions WHERE tenant_id = $1 FOR NO KEY UPDATE")
        .bind(tenant.as_uuid());
    optional(lock, &mut **tx, db("locking the RBAC version"), |_| Ok(())).await?;
    Ok(())
}

/// Remove the user's assignments and direct grants inside `tx` and, if
/// there were any, add one to the tenant's RBAC version. The caller holds
/// the version lock ([`lock_version`]).
pub(super) async fn remove_user(tx: &mut Tx, tenant: TenantId, user: UserId) -> Result<()> {
    let remove = sqlx::query(
        "WITH a AS (
             DELETE FROM cs_rbac_assignments WHERE tenant_id = $1 AND user_id = $2 RETURNING 1
         ), d AS (
             DELETE FROM cs_rbac_direct_grants WHERE tenant_id = $1 AND user_id = $2 RETURNING 1
         )
         SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM d) AS removed",
    )
    .bind(tenant.as_uuid())
    .bind(user.as_uuid());
    let context = "removing a user's roles and grants";
    let removed = optional(remove, &mut **tx, db(context), |row| {
        codec::get::<i64>(row, "cs_rbac_assignments", "removed")
    })
    .await?
    .unwrap_or(0);
    if removed > 0 {
        let bump =
            sqlx::query("UPDATE cs_rbac_versions SET version = version + 1 WHERE tenant_id = $1")
                .bind(tenant.as_uuid());
        execute(bump, &mut **tx, db("bumping the RBAC version")).await?;
    }
    Ok(())
}

/// `NotFound` naming `what` unless `stmt` finds a row.
async fn require(tx: &mut Tx, stmt: super::Statement, what: &'static str) -> Result<()> {
    let found = optional(stmt, &mut **tx, db("checking an RBAC change"), |_| Ok(())).await?;
    found.ok_or_else(|| PgError::not_found(what))
}

/// `NotFound` unless the tenant has a `kind` named `name`.
async fn require_name(
    tx: &mut Tx,
    tenant: TenantId,
    kind: RbacKind,
    name: &RbacName,
) -> Result<()> {
    let stmt = sqlx::query(per_kind!(
        kind,
        "SELECT 1 FROM ",
        " WHERE tenant_id = $1 AND name = $2"
    ))
    .bind(tenant.as_uuid())
    .bind(name.as_str().to_owned());
    require(tx, stmt, kind.as_str()).await
}

/// `NotFound` unless `user` is a user of the tenant.
async fn require_user(tx: &mut Tx, tenant: TenantId, user: UserId) -> Result<()> {
    let stmt = sqlx::query("SELECT 1 FROM cs_users WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_uuid())
        .bind(user.as_uuid());
    require(tx, stmt, "user").await
}

/// `NotFound` naming `what` unless `stmt` removed a row.
async fn remove(tx: &mut Tx, stmt: super::Statement, what: &'static str) -> Result<()> {
    match execute(stmt, &mut **tx, db("applying an RBAC change")).await? {
        0 => Err(PgError::not_found(what)),
        _ => Ok(()),
    }
}

/// Run `stmt`, an insert whose unique violation is `Conflict` with `exists`.
async fn insert(tx: &mut Tx, stmt: super::Statement, exists: &'static str) -> Result<()> {
    let refused = unique_violation(Phase::Uncommitted, "applying an RBAC change", exists);
    execute(stmt, &mut **tx, refused).await?;
    Ok(())
}

/// Check and write `change` inside `tx` (which holds the version lock).
async fn apply(tx: &mut Tx, tenant: TenantId, change: &RbacChange) -> Result<()> {
    let t = *tenant.as_uuid();
    match change {
        RbacChange::Create { kind, name } => {
            let stmt = sqlx::query(per_kind!(
                *kind,
                "INSERT INTO ",
                " (tenant_id, name) VALUES ($1, $2)"
            ))
            .bind(t)
            .bind(name.as_str().to_owned());
            let exists = match kind {
                RbacKind::Service => "service already exists",
                RbacKind::Role => "role already exists",
                RbacKind::Permission => "permission already exists",
            };
            insert(tx, stmt, exists).await
        }
        RbacChange::Delete { kind, name } => {
            // Every grant and assignment naming it goes too (ON DELETE
            // CASCADE), in this statement.
            let stmt = sqlx::query(per_kind!(
                *kind,
                "DELETE FROM ",
                " WHERE tenant_id = $1 AND name = $2"
            ))
            .bind(t)
            .bind(name.as_str().to_owned());
            remove(tx, stmt, kind.as_str()).await
        }
        RbacChange::Grant(g) => {
            require_name(tx, tenant, RbacKind::Role, &g.role).await?;
            require_name(tx, tenant, RbacKind::Permission, &g.permission).await?;
            if let Some(service) = &g.service {
                require_name(tx, tenant, RbacKind::Service, service).await?;
            }
            let stmt = sqlx::query(
                "INSERT INTO cs_rbac_role_grants (tenant_id, role, permission, service)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(t)
            .bind(g.role.as_str().to_owned())
            .bind(g.permission.as_str().to_owned())
            .bind(g.service.as_ref().map(|s| s.as_str().to_owned()));
            insert(tx, stmt, "role grant already exists").await
        }
        RbacChange::Revoke(g) => {
            let stmt = sqlx::query(
                "DELETE FROM cs_rbac_role_grants
                  WHERE tenant_id = $1 AND role = $2 AND permission = $3
                    AND service IS NOT DISTINCT FROM $4",
            )
            .bind(t)
            .bind(g.role.as_str().to_owned())
            .bind(g.permission.as_str().to_owned())
            .bind(g.service.as_ref().map(|s| s.as_str().to_owned()));
            remove(tx, stmt, "role grant").await
        }
        RbacChange::Assign(a) => {
            require_user(tx, tenant, a.user).await?;
            require_name(tx, tenant, RbacKind::Role, &a.role).await?;
            require_name(tx, tenant, RbacKind::Service, &a.service).await?;
            let stmt = sqlx::query(
                "INSERT INTO cs_rbac_assignments (tenant_id, user_id, service, role)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(t)
            .bind(*a.user.as_uuid())
            .bind(a.service.as_str().to_owned())
            .bind(a.role.as_str().to_owned());
            insert(tx, stmt, "role assignment already exists").await
        }
        RbacChange::Unassign(a) => {
            let stmt = sqlx::query(
                "DELETE FROM cs_rbac_assignments
                  WHERE tenant_id = $1 AND user_id = $2 AND service = $3 AND role = $4",
            )
            .bind(t)
            .bind(*a.user.as_uuid())
            .bind(a.service.as_str().to_owned())
            .bind(a.role.as_str().to_owned());
            remove(tx, stmt, "role assignment").await
        }
        RbacChange::GrantDirect(g) => {
            require_user(tx, tenant, g.user).await?;
            require_name(tx, tenant, RbacKind::Permission, &g.permission).await?;
            require_name(tx, tenant, RbacKind::Service, &g.service).await?;
            let stmt = sqlx::query(
                "INSERT INTO cs_rbac_direct_grants (tenant_id, user_id, service, permission)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(t)
            .bind(*g.user.as_uuid())
            .bind(g.service.as_str().to_owned())
            .bind(g.permission.as_str().to_owned());
            insert(tx, stmt, "direct grant already exists").await
        }
        RbacChange::RevokeDirect(g) => {
            let stmt = sqlx::query(
                "DELETE FROM cs_rbac_direct_grants
                  WHERE tenant_id = $1 AND user_id = $2 AND service = $3 AND permission = $4",
            )
            .bind(t)
            .bind(*g.user.as_uuid())
            .bind(g.service.as_str().to_owned())
            .bind(g.permission.as_str().to_owned());
            remove(tx, stmt, "direct grant").await
        }
    }
}
