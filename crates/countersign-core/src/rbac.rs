//! The role-based access model of a tenant: services, roles, permissions,
//! grants and assignments, as stored by an [`RbacStore`](crate::RbacStore)
//! and decided by the Cedar engine (`authz`).
//!
//! - A **service** is a resource container (an application, an API).
//! - A **permission** is the name of an action: holding `read` in the
//!   service `docs` allows the action `read` on resources of `docs`.
//! - A **role** is granted permissions ([`RoleGrant`]), either within one
//!   service or in every service the role is held in.
//! - A user **holds** a role within a service ([`RoleAssignment`]), and
//!   may be granted a permission directly within a service
//!   ([`DirectGrant`]).
//!
//! Roles do not contain roles, so role membership cannot be cyclic.
//! Every name is tenant-scoped and validated once, as an [`RbacName`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;
use crate::ids::{TenantId, UserId};

/// The longest service, role or permission name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;

/// A service, role or permission name: 1 to [`MAX_NAME_BYTES`] bytes,
/// without `/` (entity ids compose names with it) or control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RbacName(String);

impl RbacName {
    /// Checks and wraps `name`.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`] for an empty or oversized name, or one with `/` or
    /// a control character.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidInput> {
        let name = name.into();
        if name.is_empty()
            || name.len() > MAX_NAME_BYTES
            || name.contains('/')
            || name.chars().any(char::is_control)
        {
            return Err(InvalidInput::new(
                "name",
                format!("must be 1 to {MAX_NAME_BYTES} bytes, without '/' or control characters"),
            ));
        }
        Ok(Self(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RbacName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for RbacName {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, InvalidInput> {
        Self::new(s)
    }
}

impl TryFrom<String> for RbacName {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, InvalidInput> {
        Self::new(s)
    }
}

impl From<RbacName> for String {
    fn from(n: RbacName) -> String {
        n.0
    }
}

impl AsRef<str> for RbacName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The three kinds of named things of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RbacKind {
    /// A service.
    Service,
    /// A role.
    Role,
    /// A permission.
    Permission,
}

impl RbacKind {
    /// `"service"`, `"role"` or `"permission"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RbacKind::Service => "service",
            RbacKind::Role => "role",
            RbacKind::Permission => "permission",
        }
    }
}

/// A role is granted a permission, in one service or (`service: None`) in
/// every service the role is held in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RoleGrant {
    /// The role.
    pub role: RbacName,
    /// The permission.
    pub permission: RbacName,
    /// The service it is limited to, if any.
    pub service: Option<RbacName>,
}

/// A user holds a role within a service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RoleAssignment {
    /// The user.
    pub user: UserId,
    /// The role.
    pub role: RbacName,
    /// The service.
    pub service: RbacName,
}

/// A user is granted a permission directly, within a service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DirectGrant {
    /// The user.
    pub user: UserId,
    /// The permission.
    pub permission: RbacName,
    /// The service.
    pub service: RbacName,
}

/// One administrative change to a tenant's model, applied atomically by
/// [`RbacStore::apply_rbac_change`](crate::RbacStore::apply_rbac_change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RbacChange {
    /// Create a service, role or permission (`Conflict` if the name exists).
    Create {
        /// What to create.
        kind: RbacKind,
        /// Its name.
        name: RbacName,
    },
    /// Delete one, with every grant and assignment naming it.
    Delete {
        /// What to delete.
        kind: RbacKind,
        /// Its name.
        name: RbacName,
    },
    /// Grant a permission to a role.
    Grant(RoleGrant),
    /// Revoke a permission from a role.
    Revoke(RoleGrant),
    /// Assign a role to a user within a service.
    Assign(RoleAssignment),
    /// Take a role from a user within a service.
    Unassign(RoleAssignment),
    /// Grant a permission directly to a user within a service.
    GrantDirect(DirectGrant),
    /// Revoke a direct grant.
    RevokeDirect(DirectGrant),
}

impl RbacChange {
    /// A short, stable description for audit details (names and ids only).
    pub fn describe(&self) -> String {
        let scope = |s: &Option<RbacName>| s.as_ref().map_or("*".to_owned(), |s| s.to_string());
        match self {
            RbacChange::Create { kind, name } => format!("create {} {name}", kind.as_str()),
            RbacChange::Delete { kind, name } => format!("delete {} {name}", kind.as_str()),
            RbacChange::Grant(g) => {
                format!(
                    "grant {} to {} in {}",
                    g.permission,
                    g.role,
                    scope(&g.service)
                )
            }
            RbacChange::Revoke(g) => format!(
                "revoke {} from {} in {}",
                g.permission,
                g.role,
                scope(&g.service)
            ),
            RbacChange::Assign(a) => format!("assign {} to {} in {}", a.role, a.user, a.service),
            RbacChange::Unassign(a) => {
                format!("unassign {} from {} in {}", a.role, a.user, a.service)
            }
            RbacChange::GrantDirect(g) => {
                format!("grant {} to {} in {}", g.permission, g.user, g.service)
            }
            RbacChange::RevokeDirect(g) => {
                format!("revoke {} from {} in {}", g.permission, g.user, g.service)
            }
        }
    }
}

/// Everything a tenant's model holds at one version, read consistently
/// (what the authorization engine builds its entities from). Each list is
/// sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RbacSnapshot {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The version it was read at (0: never changed).
    pub version: u64,
    /// The services.
    pub services: Vec<RbacName>,
    /// The roles.
    pub roles: Vec<RbacName>,
    /// The permissions.
    pub permissions: Vec<RbacName>,
    /// Permissions granted to roles.
    pub role_grants: Vec<RoleGrant>,
    /// Roles held by users within services.
    pub assignments: Vec<RoleAssignment>,
    /// Permissions granted directly to users within services.
    pub direct_grants: Vec<DirectGrant>,
}

/// The versions an authorization cache keys on, read together in one
/// call: the tenant's policy document version (`None`: it has none) and
/// its RBAC version (0: never changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthzVersions {
    /// The policy document's version.
    pub policies: Option<u64>,
    /// The RBAC model's version.
    pub rbac: u64,
}

/// The effective permissions of `user` in `service` from a snapshot: those
/// granted to a role the user holds there (grants limited to that service
/// or unlimited) and those granted to the user directly there. Sorted and
/// deduplicated. The reference every backend's listing agrees with.
pub fn effective_permissions(
    snapshot: &RbacSnapshot,
    user: UserId,
    service: &RbacName,
) -> Vec<RbacName> {
    let roles: Vec<&RbacName> = snapshot
        .assignments
        .iter()
        .filter(|a| a.user == user && &a.service == service)
        .map(|a| &a.role)
        .collect();
    let mut out: Vec<RbacName> = snapshot
        .role_grants
        .iter()
        .filter(|g| roles.contains(&&g.role) && g.service.as_ref().is_none_or(|s| s == service))
        .map(|g| g.permission.clone())
        .chain(
            snapshot
                .direct_grants
                .iter()
                .filter(|g| g.user == user && &g.service == service)
                .map(|g| g.permission.clone()),
        )
        .collect();
    out.sort();
    out.dedup();
    out
}
