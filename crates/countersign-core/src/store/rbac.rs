//! `RbacLookup` and `RbacStore`: each tenant's services, roles,
//! permissions, grants and assignments.

use std::future::Future;

use crate::audit::AuditEvent;
use crate::error::StoreError;
use crate::ids::{TenantId, UserId};
use crate::rbac::{AuthzVersions, RbacChange, RbacKind, RbacName, RbacSnapshot, RoleGrant};

#[cfg(doc)]
use super::IdentityAdmin;

/// Read-only lookups of each tenant's RBAC model (see [`crate::rbac`]):
/// enough for deciding and for listings. Tenant-scoped: nothing of another
/// tenant is ever returned, and a user, role or service of another tenant
/// reads as absent (an empty list); an unknown tenant reads as an empty
/// model at version 0. Every list is sorted by the types' `Ord` (names
/// byte-wise, so `"Zeta"` before `"admin"`; a [`RoleGrant`] by role,
/// permission, then service with `None` first) and holds no duplicates.
pub trait RbacLookup: Send + Sync + 'static {
    /// The backend's error.
    type Error: StoreError;

    /// The tenant's policy document version and RBAC version, read in one
    /// call: what an authorization cache checks before each decision.
    /// A tenant without either reads as `policies: None`, `rbac: 0`.
    fn authz_versions(
        &self,
        tenant: TenantId,
    ) -> impl Future<Output = Result<AuthzVersions, Self::Error>> + Send;

    /// Everything the tenant's model holds, read consistently at one
    /// version (never a mix of two versions).
    fn rbac_snapshot(
        &self,
        tenant: TenantId,
    ) -> impl Future<Output = Result<RbacSnapshot, Self::Error>> + Send;

    /// The tenant's services, roles or permissions.
    fn rbac_names(
        &self,
        tenant: TenantId,
        kind: RbacKind,
    ) -> impl Future<Output = Result<Vec<RbacName>, Self::Error>> + Send;

    /// The permissions granted to `role` (each with the service it is
    /// limited to, if any).
    fn role_permissions(
        &self,
        tenant: TenantId,
        role: &RbacName,
    ) -> impl Future<Output = Result<Vec<RoleGrant>, Self::Error>> + Send;

    /// The roles of `service`: those held by someone in it, and those
    /// granted a permission limited to it.
    fn service_roles(
        &self,
        tenant: TenantId,
        service: &RbacName,
    ) -> impl Future<Output = Result<Vec<RbacName>, Self::Error>> + Send;

    /// The roles `user` holds in `service`.
    fn user_roles(
        &self,
        tenant: TenantId,
        user: UserId,
        service: &RbacName,
    ) -> impl Future<Output = Result<Vec<RbacName>, Self::Error>> + Send;

    /// The effective permissions of `user` in `service`: those granted to
    /// the roles it holds there (limited to that service or unlimited) and
    /// those granted to it directly there, deduplicated
    /// (as [`rbac::effective_permissions`](crate::rbac::effective_permissions)
    /// computes from a snapshot).
    fn user_permissions(
        &self,
        tenant: TenantId,
        user: UserId,
        service: &RbacName,
    ) -> impl Future<Output = Result<Vec<RbacName>, Self::Error>> + Send;

    /// The users holding `role` in `service`.
    fn role_holders(
        &self,
        tenant: TenantId,
        role: &RbacName,
        service: &RbacName,
    ) -> impl Future<Output = Result<Vec<UserId>, Self::Error>> + Send;

    /// The services in which `user` holds a role or a direct grant.
    fn user_services(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> impl Future<Output = Result<Vec<RbacName>, Self::Error>> + Send;
}

/// Administration of each tenant's RBAC model: one method, one change,
/// one transaction.
pub trait RbacStore: RbacLookup {
    /// Apply `change` to `tenant`'s model and, if given, record `event`
    /// with it, in one transaction; returns the new RBAC version (one more
    /// than before: every applied change bumps it, so a cache on another
    /// node sees it at its next version check).
    ///
    /// - `Create`: `Conflict` if the name exists in the tenant.
    /// - `Delete`: removes the service, role or permission and, in the
    ///   same transaction, every grant and assignment naming it (for a
    ///   service: the role grants limited to it, the assignments and direct
    ///   grants in it; role grants not limited to a service stay).
    /// - `Grant`, `Assign`, `GrantDirect`: every name must exist in the
    ///   tenant and the user must be a user of the tenant (`NotFound`
    ///   otherwise: another tenant's role, service or user is absent here);
    ///   `Conflict` if that grant or assignment exists.
    /// - `Delete`, `Revoke`, `Unassign`, `RevokeDirect`: `NotFound` if
    ///   there is nothing to remove. `Revoke` matches the grant exactly,
    ///   service included: role grants are unique over (role, permission,
    ///   service or none), so a grant in every service and one limited to
    ///   `docs` are two grants.
    ///
    /// `NotFound` if the tenant does not exist; `Conflict` if the event id
    /// exists (a refusal of the change itself is reported first). Any error
    /// writes nothing (no change, no version, no event). The event is
    /// recorded as given (its tenant is the caller's to set).
    /// Erasing a user ([`IdentityAdmin::erase_user`]) also removes its
    /// assignments and direct grants and bumps the version.
    fn apply_rbac_change(
        &self,
        tenant: TenantId,
        change: &RbacChange,
        event: Option<&AuditEvent>,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;
}
