//! Authorization with Cedar: may this principal do this action on this
//! resource? (feature `authz`, on by default)
//!
//! A tenant's [`AuthzModel`] is its Cedar schema (countersign's
//! [`COUNTERSIGN_SCHEMA`] plus the tenant's own types and actions) and its
//! policy set, refused with Cedar's diagnostics unless it parses and
//! validates. [`TenantAuthz::build`] turns the tenant's [`AuthzData`]
//! (users, services, roles, permissions, grants, assignments, its own
//! resources) into Cedar entities once per version (the entity model is
//! described below), and
//! [`TenantAuthz::decide`] answers each request with a [`Decision`].
//!
//! # Entity model
//!
//! Roles are parents of users (one `Countersign::Role` entity per role
//! held in a service, id `service/role`), permissions are parents of roles
//! (`Countersign::Permission`, id `service/permission`), and direct grants
//! make a permission a parent of the user. So RBAC is one policy per
//! (service, permission), for instance
//!
//! ```cedar
//! permit(
//!   principal in Countersign::Permission::"docs/read",
//!   action == Action::"read",
//!   resource in Countersign::Service::"docs"
//! );
//! ```
//!
//! and the number of policies does not grow with users, roles or
//! assignments. Users carry `tenant`, `state` and an optional `tier`, and
//! the tenant's own attributes as tags.
//!
//! # Context
//!
//! Every request's context holds `authentication`, a
//! `Countersign::Authentication` record of the session's login: `method`,
//! `factors` (factor kinds), `acr` (`"mfa"` or `"sfa"`), `mfa`,
//! `auth_time` (seconds since the epoch) and `age` (seconds since then).
//! Every action of the tenant's schema must declare it in its context
//! (`context: { authentication: Countersign::Authentication, ... }`); the
//! rest of the context is the caller's. When a request is denied and the
//! same request with a stronger or fresher authentication would be
//! allowed, the decision names what would satisfy it in
//! [`Decision::step_up`], a [`StepUp`](crate::StepUp) that the login
//! engine's step-up flow produces (derived as described there).
//!
//! # Invariants
//!
//! Tenant isolation lives outside the tenant's policies (a `forbid` whose
//! condition errors is skipped by Cedar, so a policy could fail open): a
//! principal of one tenant is never allowed on a resource of another, nor
//! under another tenant's model, whatever the policies say
//! (property-tested). Any evaluation error denies.

mod decide;
mod entities;
mod model;
mod service;
#[cfg(test)]
mod tests;

pub use cedar_policy::EntityUid;

use crate::error::ErrorKind;
pub use decide::{
    AUTHENTICATION_KEY, Decision, MAX_STEP_UP_AGE_SECS, Resource, UNBOUNDED_AGE_SECS,
};
pub use entities::{AppEntity, AuthzData, TenantAuthz, UserFacts};
pub use model::{
    AuthzModel, BASE_POLICY_PREFIX, COUNTERSIGN_SCHEMA, GRANTS_KEY, MAX_LINKS,
    MAX_MODEL_TEXT_BYTES, RBAC_POLICY_ID,
};
pub use service::{ADMIN_ROLE, ADMIN_SERVICE, AdminAction, AuthzService};

/// Why a model or its data was refused. Cedar's own diagnostics are kept
/// as strings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthzError {
    /// A schema or policy text over [`MAX_MODEL_TEXT_BYTES`] bytes, or
    /// more than [`MAX_LINKS`] template links.
    #[error("the {what} is {size} {unit}, over the limit of {max}")]
    TooLarge {
        /// `"schema"`, `"policies"` or `"links"`.
        what: &'static str,
        /// Its size.
        size: usize,
        /// `"bytes"`, or `"links"` for links.
        unit: &'static str,
        /// The limit.
        max: usize,
    },
    /// The schema does not parse or is inconsistent.
    #[error("invalid schema: {}", diagnostics.join("; "))]
    Schema {
        /// Cedar's diagnostics.
        diagnostics: Vec<String>,
    },
    /// The policies do not parse.
    #[error("policies do not parse: {}", diagnostics.join("; "))]
    Parse {
        /// Cedar's diagnostics.
        diagnostics: Vec<String>,
    },
    /// The policies do not validate against the schema.
    #[error("policies do not validate against the schema: {}", diagnostics.join("; "))]
    Validation {
        /// Cedar's diagnostics, each prefixed with the policy id.
        diagnostics: Vec<String>,
    },
    /// The data is inconsistent (unknown or duplicate names, another
    /// tenant's user, a parent outside the data).
    #[error("invalid authorization data: {0}")]
    Data(String),
    /// The entities do not conform to the schema.
    #[error("entities do not conform to the schema: {0}")]
    Entities(String),
}

impl AuthzError {
    /// How an edge should answer it (the kind of the [`Error::Authz`] that
    /// wraps it). Every refusal is [`ErrorKind::InvalidInput`]: the schema,
    /// the policies and the data all come from the caller (the tenant's
    /// administrator or the application), nothing was saved, and the same
    /// input is refused again. Exhaustive on purpose, so a new variant must
    /// be placed here.
    ///
    /// [`Error::Authz`]: crate::Error::Authz
    pub fn kind(&self) -> ErrorKind {
        match self {
            AuthzError::TooLarge { .. }
            | AuthzError::Schema { .. }
            | AuthzError::Parse { .. }
            | AuthzError::Validation { .. }
            | AuthzError::Data(_)
            | AuthzError::Entities(_) => ErrorKind::InvalidInput,
        }
    }
}
