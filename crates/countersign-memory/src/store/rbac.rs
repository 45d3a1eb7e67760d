//! `RbacLookup` and `RbacStore` in memory: each tenant's services, roles,
//! permissions, grants and assignments, with its version.

use std::collections::BTreeSet;

use countersign_core::{
    AuditEvent, AuthzVersions, MethodScope, RbacChange, RbacKind, RbacLookup, RbacName,
    RbacSnapshot, RbacStore, RoleGrant, TenantId, UserId,
};

use crate::error::{MemoryError, Result, not_found, unique_violation};
use crate::state::{Rbac, State};
use crate::{MemoryStore, StoreMethod};

impl MemoryStore {
    /// Read `tenant`'s model with `f` under the one lock; a tenant whose
    /// model never changed (or no tenant) reads as empty.
    fn read_rbac<T: Default>(
        &self,
        method: StoreMethod,
        tenant: TenantId,
        f: impl FnOnce(&Rbac) -> T,
    ) -> Result<T> {
        let st = self.begin(method)?;
        Ok(st.rbac.get(&tenant).map(f).unwrap_or_default())
    }
}

impl RbacLookup for MemoryStore {
    type Error = MemoryError;

    async fn authz_versions(&self, tenant: TenantId) -> Result<AuthzVersions> {
        let st = self.begin(StoreMethod::AuthzVersions)?;
        Ok(AuthzVersions {
            policies: st.policies.get(&tenant).map(|d| d.version),
            rbac: st.rbac.get(&tenant).map_or(0, |r| r.version),
        })
    }

    async fn rbac_snapshot(&self, tenant: TenantId) -> Result<RbacSnapshot> {
        let st = self.begin(StoreMethod::RbacSnapshot)?;
        Ok(st
            .rbac
            .get(&tenant)
            .map_or_else(|| Rbac::default().snapshot(tenant), |r| r.snapshot(tenant)))
    }

    async fn rbac_names(&self, tenant: TenantId, kind: RbacKind) -> Result<Vec<RbacName>> {
        self.read_rbac(StoreMethod::RbacNames, tenant, |r| {
            r.names(kind).iter().cloned().collect()
        })
    }

    async fn role_permissions(&self, tenant: TenantId, role: &RbacName) -> Result<Vec<RoleGrant>> {
        self.read_rbac(StoreMethod::RolePermissions, tenant, |r| {
            r.role_grants
                .iter()
                .filter(|g| &g.role == role)
                .cloned()
                .collect()
        })
    }

    async fn service_roles(&self, tenant: TenantId, service: &RbacName) -> Result<Vec<RbacName>> {
        self.read_rbac(StoreMethod::ServiceRoles, tenant, |r| {
            let held = r
                .assignments
                .iter()
                .filter(|a| &a.service == service)
                .map(|a| &a.role);
            let granted = r
                .role_grants
                .iter()
                .filter(|g| g.service.as_ref() == Some(service))
                .map(|g| &g.role);
            let roles: BTreeSet<&RbacName> = held.chain(granted).collect();
            roles.into_iter().cloned().collect()
        })
    }

    async fn user_roles(
        &self,
        tenant: TenantId,
        user: UserId,
        service: &RbacName,
    ) -> Result<Vec<RbacName>> {
        self.read_rbac(StoreMethod::UserRoles, tenant, |r| {
            // Sorted by role: the set orders by user, then role.
            r.assignments
                .iter()
                .filter(|a| a.user == user && &a.service == service)
                .map(|a| a.role.clone())
                .collect()
        })
    }

    async fn user_permissions(
        &self,
        tenant: TenantId,
        user: UserId,
        service: &RbacName,
    ) -> Result<Vec<RbacName>> {
        self.read_rbac(StoreMethod::UserPermissions, tenant, |r| {
            let roles: BTreeSet<&RbacName> = r
                .assignments
                .iter()
                .filter(|a| a.user == user && &a.service == service)
                .map(|a| &a.role)
                .collect();
            let via_roles = r
                .role_grants
                .iter()
                .filter(|g| roles.contains(&g.role))
                .filter(|g| g.service.as_ref().is_none_or(|s| s == service))
                .map(|g| &g.permission);
            let direct = r
                .direct_grants
                .iter()
                .filter(|g| g.user == user && &g.service == service)
                .map(|g| &g.permission);
            let perms: BTreeSet<&RbacName> = via_roles.chain(direct).collect();
            perms.into_iter().cloned().collect()
        })
    }

    async fn role_holders(
        &self,
        tenant: TenantId,
        role: &RbacName,
        service: &RbacName,
    ) -> Result<Vec<UserId>> {
        self.read_rbac(StoreMethod::RoleHolders, tenant, |r| {
            // Sorted by user: the set orders by user first.
            r.assignments
                .iter()
                .filter(|a| &a.role == role && &a.service == service)
                .map(|a| a.user)
                .collect()
        })
    }

    async fn user_services(&self, tenant: TenantId, user: UserId) -> Result<Vec<RbacName>> {
        self.read_rbac(StoreMethod::UserServices, tenant, |r| {
            let held = r
                .assignments
                .iter()
                .filter(|a| a.user == user)
                .map(|a| &a.service);
            let direct = r
                .direct_grants
                .iter()
                .filter(|g| g.user == user)
                .map(|g| &g.service);
            let services: BTreeSet<&RbacName> = held.chain(direct).collect();
            services.into_iter().cloned().collect()
        })
    }
}

impl RbacStore for MemoryStore {
    async fn apply_rbac_change(
        &self,
        tenant: TenantId,
        change: &RbacChange,
        event: Option<&AuditEvent>,
    ) -> Result<u64> {
        let mut st = self.begin(StoreMethod::ApplyRbacChange)?;
        st.require_scope(MethodScope::Tenant(tenant))?;
        // Every check before the first write: all or nothing.
        check(&st, tenant, change)?;
        if let Some(e) = event {
            if st.event_ids.contains(&e.id) {
                return Err(unique_violation("audit event"));
            }
            st.event_ids.insert(e.id);
            st.events.push(e.clone());
        }
        let rbac = st.rbac.entry(tenant).or_default();
        apply(rbac, change);
        rbac.version += 1;
        Ok(rbac.version)
    }
}

/// Whether `change` can be applied to `tenant`'s model as it is: the
/// names it uses exist, the user is the tenant's, what it adds is new and
/// what it removes is there.
fn check(st: &State, tenant: TenantId, change: &RbacChange) -> Result<()> {
    let empty = Rbac::default();
    let r = st.rbac.get(&tenant).unwrap_or(&empty);
    let exists = |kind: RbacKind, name: &RbacName| {
        if r.names(kind).contains(name) {
            Ok(())
        } else {
            Err(not_found(kind.as_str()))
        }
    };
    let absent = |there: bool, what: &str| {
        if there {
            Err(unique_violation(what))
        } else {
            Ok(())
        }
    };
    let present = |there: bool, what: &str| {
        if there { Ok(()) } else { Err(not_found(what)) }
    };
    match change {
        RbacChange::Create { kind, name } => absent(r.names(*kind).contains(name), kind.as_str()),
        RbacChange::Delete { kind, name } => exists(*kind, name),
        RbacChange::Grant(g) => {
            exists(RbacKind::Role, &g.role)?;
            exists(RbacKind::Permission, &g.permission)?;
            if let Some(s) = &g.service {
                exists(RbacKind::Service, s)?;
            }
            absent(r.role_grants.contains(g), "role grant")
        }
        RbacChange::Revoke(g) => present(r.role_grants.contains(g), "role grant"),
        RbacChange::Assign(a) => {
            st.require_user(tenant, a.user)?;
            exists(RbacKind::Role, &a.role)?;
            exists(RbacKind::Service, &a.service)?;
            absent(r.assignments.contains(a), "role assignment")
        }
        RbacChange::Unassign(a) => present(r.assignments.contains(a), "role assignment"),
        RbacChange::GrantDirect(g) => {
            st.require_user(tenant, g.user)?;
            exists(RbacKind::Permission, &g.permission)?;
            exists(RbacKind::Service, &g.service)?;
            absent(r.direct_grants.contains(g), "direct grant")
        }
        RbacChange::RevokeDirect(g) => present(r.direct_grants.contains(g), "direct grant"),
    }
}

/// Apply a [`check`]ed change (which cannot fail), deleting with a name
/// every grant and assignment naming it.
fn apply(r: &mut Rbac, change: &RbacChange) {
    match change {
        RbacChange::Create { kind, name } => {
            r.names_mut(*kind).insert(name.clone());
        }
        RbacChange::Delete { kind, name } => {
            r.names_mut(*kind).remove(name);
            match kind {
                RbacKind::Service => {
                    r.role_grants.retain(|g| g.service.as_ref() != Some(name));
                    r.assignments.retain(|a| &a.service != name);
                    r.direct_grants.retain(|g| &g.service != name);
                }
                RbacKind::Role => {
                    r.role_grants.retain(|g| &g.role != name);
                    r.assignments.retain(|a| &a.role != name);
                }
                RbacKind::Permission => {
                    r.role_grants.retain(|g| &g.permission != name);
                    r.direct_grants.retain(|g| &g.permission != name);
                }
            }
        }
        RbacChange::Grant(g) => {
            r.role_grants.insert(g.clone());
        }
        RbacChange::Revoke(g) => {
            r.role_grants.remove(g);
        }
        RbacChange::Assign(a) => {
            r.assignments.insert(a.clone());
        }
        RbacChange::Unassign(a) => {
            r.assignments.remove(a);
        }
        RbacChange::GrantDirect(g) => {
            r.direct_grants.insert(g.clone());
        }
        RbacChange::RevokeDirect(g) => {
            r.direct_grants.remove(g);
        }
    }
}
