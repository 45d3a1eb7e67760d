//! The storage traits every backend implements.
//!
//! The surface is split by capability so a component asks for exactly what
//! it uses and a backend may implement a subset:
//!
//! ```text
//! IdentityLookup            read-only: tenants, users, lockout records
//!   └ IdentityAuthnLog      the writes a live login makes
//!       └ IdentityAdmin     provisioning and lifecycle
//! IdentityStore             umbrella for all three (blanket impl)
//! FactorStore               tenant factor settings, user credentials, methods
//! PolicyStore               each tenant's Cedar schema and policies
//! RbacLookup                read-only: services, roles, permissions, grants
//!   └ RbacStore             their administration, one change at a time
//! VerificationStore         address codes and reset tokens, consumed once
//! FederatedStore            identities at OIDC issuers linked to accounts
//! RateLimitStore            fixed-window hit counters by key (global)
//! AuditQuery                opt-in: reading the audit log back
//! ```
//!
//! Conventions every method follows:
//! - **Tenant scoping.** Every method that names a user also names the
//!   tenant, and treats a user of another tenant exactly as a user that
//!   does not exist. The only exception says so in its name
//!   ([`IdentityLookup::get_user_cross_tenant`]). [`RateLimitStore`] names
//!   no user: its keys are global (the caller puts the tenant in the key).
//! - **Time is a parameter.** Stores never read a clock; callers pass `now`.
//! - **Atomicity.** A method either does all it says or nothing.
//! - **Errors carry a kind** ([`StoreErrorKind`](crate::StoreErrorKind)):
//!   `NotFound` when a named row does not exist in the tenant, `Conflict`
//!   for uniqueness and invariant refusals, `Rejected` for reserved ids
//!   and refused input (a rate-limit key too long), `Transient` for
//!   retryable failures.
//!
//! Every guarantee stated here is a test in `countersign-testkit`'s
//! conformance suite, which every backend runs.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::audit::{AuditEvent, AuditFilter};
use crate::error::StoreError;
use crate::factor::{
    AuthMethod, FactorCredential, FactorKind, FactorSettings, MethodName, MethodRecord,
    MethodScope, Versioned,
};
use crate::flow::{AuthRecord, FlowRecord};
use crate::ids::{FamilyId, SessionId, TenantId, UserId};
use crate::lockout::{FailureRecord, LockoutPolicy};
use crate::model::{AccountState, Identifier, Tenant, TenantPolicy, TenantSlug, User};
use crate::profile::{Profile, UserQuery};
use crate::provision::TenantProvision;
use crate::session::{RecordedRotation, RefreshFamily, Rotation, SessionRecord, SigningKeyRecord};
use crate::token::TokenHash;

mod federated;
mod policies;
mod ratelimit;
mod rbac;
mod verification;

pub use federated::{FederatedStore, LinkedIdentity};
pub use policies::{PolicyDocument, PolicyStore, TemplateLink};
pub use ratelimit::{
    MAX_RATE_LIMIT_KEY, RateLimitDecision, RateLimitStore, RateLimitWindow, check_rate_limit_key,
};
pub use rbac::{RbacLookup, RbacStore};
pub use verification::{Verification, VerificationPurpose, VerificationStore};

/// The most users [`IdentityLookup::list_users`] returns at once.
pub const MAX_PAGE: u32 = 1000;

/// Read-only identity lookups: enough for middleware and validators.
pub trait IdentityLookup: Send + Sync + 'static {
    /// The backend's error.
    type Error: StoreError;

    /// The tenant with this id.
    fn get_tenant(
        &self,
        tenant: TenantId,
    ) -> impl Future<Output = Result<Option<Tenant>, Self::Error>> + Send;

    /// The tenant with this slug.
    fn find_tenant(
        &self,
        slug: &TenantSlug,
    ) -> impl Future<Output = Result<Option<Tenant>, Self::Error>> + Send;

    /// The user with this (normalised) identifier in this tenant. The same
    /// identifier in another tenant is another user, or none.
    fn find_user(
        &self,
        tenant: TenantId,
        identifier: &Identifier,
    ) -> impl Future<Output = Result<Option<User>, Self::Error>> + Send;

    /// The user with this id, only if it belongs to `tenant`: a user of
    /// another tenant is `None`, indistinguishable from no user.
    fn get_user(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> impl Future<Output = Result<Option<User>, Self::Error>> + Send;

    /// The user with this id in whatever tenant: for platform-operator
    /// paths only, which must ask for it by this name.
    fn get_user_cross_tenant(
        &self,
        user: UserId,
    ) -> impl Future<Output = Result<Option<User>, Self::Error>> + Send;

    /// Users of `tenant` ordered by id, starting after `after`, at most
    /// `limit` (capped at [`MAX_PAGE`]).
    fn list_users(
        &self,
        tenant: TenantId,
        after: Option<UserId>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<User>, Self::Error>> + Send;

    /// Users of `tenant` that match `query`, ordered by id, only those
    /// with an id greater than `query.after`, at most `query.limit`
    /// (capped at [`MAX_PAGE`]): paging with the last id of each page as
    /// the next `after` visits every match exactly once. Every given filter
    /// narrows the result ([`UserQuery::matches`] is the reference):
    /// - `text`: a substring of the identifier, the email or the display
    ///   name, ASCII letters matching regardless of case (other letters as
    ///   the backend folds them); `%`, `_` and `\` in it match themselves,
    ///   never as wildcards;
    /// - `state`, `tier`: equal.
    ///
    /// Never a user of another tenant.
    fn search_users(
        &self,
        tenant: TenantId,
        query: &UserQuery,
    ) -> impl Future<Output = Result<Vec<User>, Self::Error>> + Send;

    /// The failed-attempt record of a user in `tenant`, if any.
    fn failure_record(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> impl Future<Output = Result<Option<FailureRecord>, Self::Error>> + Send;
}

/// The writes a live login makes: audit, lockout counting, last login.
pub trait IdentityAuthnLog: IdentityLookup {
    /// Append an audit event. Events are never updated afterwards (except
    /// pseudonymised by erasure).
    fn record_event(
        &self,
        event: &AuditEvent,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Count one failed attempt at `now` under `policy`, atomically: `N`
    /// concurrent calls raise the count by exactly `N`. The new record
    /// follows [`LockoutPolicy::next_failure`]. `NotFound` if the user is
    /// not in `tenant`.
    fn record_failed_attempt(
        &self,
        tenant: TenantId,
        user: UserId,
        policy: &LockoutPolicy,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<FailureRecord, Self::Error>> + Send;

    /// Forget the user's failed attempts (after a successful login).
    fn reset_failed_attempts(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Record a successful login at `at`. `NotFound` if the user is not in `tenant`.
    fn record_last_login(
        &self,
        tenant: TenantId,
        user: UserId,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Everything a successful login writes, in one transaction: forget
    /// the user's failed attempts (as
    /// [`reset_failed_attempts`](Self::reset_failed_attempts)), record the
    /// login at `at` (as [`record_last_login`](Self::record_last_login))
    /// and append `events` (as [`record_event`](Self::record_event)): all
    /// of it or, on any error, none of it. `NotFound` if the user is not in
    /// `tenant`, and then nothing is written.
    fn record_login(
        &self,
        tenant: TenantId,
        user: UserId,
        at: DateTime<Utc>,
        events: &[AuditEvent],
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Provisioning and lifecycle: the privileged writes.
pub trait IdentityAdmin: IdentityAuthnLog {
    /// Create a tenant with its factor settings and methods (all enabled),
    /// all or nothing. `Conflict` if the id or slug exists; `Rejected` for
    /// the system tenant.
    fn provision_tenant(
        &self,
        provision: &TenantProvision,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Replace a tenant's policy. `NotFound` if there is no such tenant.
    fn update_tenant_policy(
        &self,
        tenant: TenantId,
        policy: &TenantPolicy,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Create a user with its first credentials, all or nothing.
    /// `Conflict` if the identifier is taken in the tenant or the id exists;
    /// `NotFound` if the tenant does not exist; `Rejected` for the system
    /// tenant or a reserved user id.
    fn create_user(
        &self,
        user: &User,
        credentials: &[FactorCredential],
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Register a user: create it with its first credentials (as
    /// [`create_user`](Self::create_user)), add its first password-history
    /// entry (when `history` is given, as
    /// [`push_password_history`](Self::push_password_history)) and record
    /// the audit `event` that describes the registration, in one
    /// transaction: after a crash at any point either all of it exists or
    /// none of it. Errors as `create_user`; a conflicting event id is
    /// `Conflict` and writes nothing.
    fn register_user(
        &self,
        user: &User,
        credentials: &[FactorCredential],
        history: Option<&HistoryEntry>,
        event: &AuditEvent,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Move a user from `from` to `to` only if it is in `from` now
    /// (compare-and-set: of two concurrent transitions from one state, one
    /// wins). Returns whether it moved; `NotFound` if the user is not in
    /// `tenant`. The lifecycle graph is checked by the caller.
    fn set_user_state(
        &self,
        tenant: TenantId,
        user: UserId,
        from: AccountState,
        to: AccountState,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Replace a user's display name, tier and attributes with `profile`
    /// and set its `updated_at` to `at`, only if its `updated_at` is
    /// `expected_updated_at` now (compare-and-set: of concurrent updates
    /// made from one read, exactly one wins; callers pass an `at` later
    /// than `expected_updated_at`, so every write changes the version).
    /// Returns whether it was written (`false`: nothing was); `NotFound`
    /// if the user is not in `tenant`. The profile is checked against the
    /// tenant's schema by the caller.
    fn update_profile(
        &self,
        tenant: TenantId,
        user: UserId,
        profile: &Profile,
        expected_updated_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Add a password hash to the user's history, keeping the newest `keep`.
    fn push_password_history(
        &self,
        tenant: TenantId,
        user: UserId,
        phc: &str,
        at: DateTime<Utc>,
        keep: u32,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The newest `limit` password hashes of the user, newest first.
    fn password_history(
        &self,
        tenant: TenantId,
        user: UserId,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<String>, Self::Error>> + Send;

    /// Erase a user (GDPR art. 17): the user row, credentials, user-scope
    /// methods, lockout record, password history, flows, sessions,
    /// refresh families, pending verifications, linked identities, RBAC
    /// role assignments and direct grants go (the
    /// tenant's RBAC version is bumped when any of the latter went, so
    /// authorization caches drop them); audit events keep
    /// their facts but name `pseudonym` instead of the user, with client
    /// ip and user agent cleared. Returns whether the user existed.
    fn erase_user(
        &self,
        tenant: TenantId,
        user: UserId,
        pseudonym: UserId,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;
}

/// A password-history entry written with a registration
/// ([`IdentityAdmin::register_user`]). `Debug` leaves the hash out.
#[derive(Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The PHC string of the password.
    pub phc: String,
    /// When it was set.
    pub at: DateTime<Utc>,
    /// How many entries the user keeps (the newest).
    pub keep: u32,
}

impl std::fmt::Debug for HistoryEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryEntry")
            .field("at", &self.at)
            .field("keep", &self.keep)
            .finish_non_exhaustive()
    }
}

/// All three identity tiers.
pub trait IdentityStore: IdentityAdmin {}
impl<T: IdentityAdmin> IdentityStore for T {}

/// Every store trait the services need, in one name: what a complete
/// backend implements, and the bound the services, the server and
/// applications write (`S: Store`). Implemented for every type that
/// implements the parts (a blanket impl); clones share state.
///
/// [`AuditQuery`] is not part of it: querying the audit trail is an opt-in
/// capability a backend may lack.
pub trait Store:
    IdentityStore
    + FactorStore
    + FlowStore
    + SessionStore
    + KeyStore
    + PolicyStore
    + RbacStore
    + VerificationStore
    + FederatedStore
    + RateLimitStore
    + Clone
{
}
impl<T> Store for T where
    T: IdentityStore
        + FactorStore
        + FlowStore
        + SessionStore
        + KeyStore
        + PolicyStore
        + RbacStore
        + VerificationStore
        + FederatedStore
        + RateLimitStore
        + Clone
{
}

/// Factor settings per tenant, credentials per user, and methods.
pub trait FactorStore: Send + Sync + 'static {
    /// The backend's error.
    type Error: StoreError;

    /// The tenant's settings for `kind`, if it has adopted that factor.
    fn tenant_factor(
        &self,
        tenant: TenantId,
        kind: FactorKind,
    ) -> impl Future<Output = Result<Option<FactorSettings>, Self::Error>> + Send;

    /// Every factor the tenant has adopted, ordered by kind name.
    fn tenant_factors(
        &self,
        tenant: TenantId,
    ) -> impl Future<Output = Result<Vec<FactorSettings>, Self::Error>> + Send;

    /// Adopt a factor or replace its settings. `NotFound` if no tenant.
    fn save_tenant_factor(
        &self,
        tenant: TenantId,
        factor: &FactorSettings,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Drop a factor from the tenant. Returns whether it was adopted;
    /// `Conflict` if it is the tenant's last factor (a tenant always keeps one).
    fn remove_tenant_factor(
        &self,
        tenant: TenantId,
        kind: FactorKind,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// The user's credential for `kind`, with its version.
    fn user_factor(
        &self,
        tenant: TenantId,
        user: UserId,
        kind: FactorKind,
    ) -> impl Future<Output = Result<Option<Versioned<FactorCredential>>, Self::Error>> + Send;

    /// Every credential of the user, ordered by kind name.
    fn user_factors(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> impl Future<Output = Result<Vec<Versioned<FactorCredential>>, Self::Error>> + Send;

    /// Save `factor` only if the stored version is `expected` (`None`:
    /// only if there is none yet). Atomic: of any number of concurrent
    /// calls naming the same version, exactly one returns `true`. A saved
    /// factor's version is the expected one plus one; a new one starts at
    /// 1, and one that was removed comes back above every version it had,
    /// so versions never repeat and a save naming a version from before a
    /// removal never succeeds (no ABA).
    /// `NotFound` if the user is not in `tenant`.
    fn compare_and_save_user_factor(
        &self,
        tenant: TenantId,
        user: UserId,
        expected: Option<u64>,
        factor: &FactorCredential,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Remove the user's credential for `kind`. Returns whether one existed.
    fn remove_user_factor(
        &self,
        tenant: TenantId,
        user: UserId,
        kind: FactorKind,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Create or replace the method of that name at `scope`. `NotFound` if
    /// the tenant (or, for a user scope, the user in it) does not exist.
    fn save_method(
        &self,
        scope: MethodScope,
        method: &AuthMethod,
        enabled: bool,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The methods stored at exactly `scope`, ordered by name.
    fn methods(
        &self,
        scope: MethodScope,
    ) -> impl Future<Output = Result<Vec<MethodRecord>, Self::Error>> + Send;

    /// Enable or disable a method. Returns whether it exists. `Conflict` if
    /// it would leave the tenant scope with no enabled method.
    fn set_method_enabled(
        &self,
        scope: MethodScope,
        name: &MethodName,
        enabled: bool,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Delete a method. Returns whether it existed. `Conflict` if it would
    /// leave the tenant scope with no enabled method.
    fn remove_method(
        &self,
        scope: MethodScope,
        name: &MethodName,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// The enabled methods a user may log in with, ordered by name: the
    /// tenant's methods, where a user-scope method of the same name takes
    /// the tenant's place (and hides it when disabled), plus the user's own.
    fn available_methods(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> impl Future<Output = Result<Vec<AuthMethod>, Self::Error>> + Send;
}

/// Login flows and other short-lived ceremonies, keyed by the hash of their
/// token, scoped to a tenant.
pub trait FlowStore: Send + Sync + 'static {
    /// The backend's error.
    type Error: StoreError;

    /// Store a new flow at version 1. `Conflict` if the key exists;
    /// `NotFound` if the tenant does not (or the named user is not in it).
    fn create_flow(
        &self,
        flow: &FlowRecord,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The flow with this key in `tenant` (another tenant's is `None`).
    fn flow(
        &self,
        tenant: TenantId,
        key: &TokenHash,
    ) -> impl Future<Output = Result<Option<Versioned<FlowRecord>>, Self::Error>> + Send;

    /// Replace the flow only if its version is `expected` (atomic: of
    /// concurrent saves naming one version, exactly one wins). The key and
    /// tenant of `flow` must match. Returns whether it was saved.
    fn compare_and_save_flow(
        &self,
        expected: u64,
        flow: &FlowRecord,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Delete the flow. Returns whether it existed in `tenant`.
    fn delete_flow(
        &self,
        tenant: TenantId,
        key: &TokenHash,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Delete every flow (of every tenant) whose `expires_at` is at or
    /// before `now`. Returns how many went. Safe to run from several nodes
    /// at once.
    fn delete_expired_flows(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;
}

/// Sessions and refresh-token families.
pub trait SessionStore: Send + Sync + 'static {
    /// The backend's error.
    type Error: StoreError;

    /// Store a new session, its refresh family if given (whose `current`
    /// token is recorded as the family's first) and the audit `event` that
    /// records the start if given, in one transaction: after a crash either
    /// all of them exist or none. `NotFound` if the user is not in the
    /// tenant; `Conflict` if the key, id, family or event id exists.
    fn create_session(
        &self,
        session: &SessionRecord,
        family: Option<&RefreshFamily>,
        event: Option<&AuditEvent>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The session with this token hash if it is live at `now`, in one
    /// atomic step that also renews it as [`SessionRecord::renew`] says.
    /// The result is the session after renewal (shared: this is the hot
    /// path, and a store may hand out its own copy). A session that is not
    /// live is `None`.
    fn validate_session(
        &self,
        key: &TokenHash,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<std::sync::Arc<SessionRecord>>, Self::Error>> + Send;

    /// The session with this id in `tenant` (live or not, until deleted).
    fn session(
        &self,
        tenant: TenantId,
        id: SessionId,
    ) -> impl Future<Output = Result<Option<SessionRecord>, Self::Error>> + Send;

    /// The user's sessions live at `now`, newest first.
    fn user_sessions(
        &self,
        tenant: TenantId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<SessionRecord>, Self::Error>> + Send;

    /// End one session (and revoke its refresh family at `now`). Returns
    /// the ended session, if it existed in `tenant`.
    fn delete_session(
        &self,
        tenant: TenantId,
        id: SessionId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<SessionRecord>, Self::Error>> + Send;

    /// End the session with this token hash (and revoke its family).
    /// Returns the ended session, if any.
    fn delete_session_by_key(
        &self,
        key: &TokenHash,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<SessionRecord>, Self::Error>> + Send;

    /// End every session of the user except `keep` (and revoke their
    /// families). Returns how many ended.
    fn delete_user_sessions(
        &self,
        tenant: TenantId,
        user: UserId,
        keep: Option<SessionId>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// Present a refresh token (its hash) at `now`, atomically, following
    /// [`decide_rotation`](crate::session::decide_rotation): the current
    /// token rotates to `new`; the previous one within the family's
    /// `reuse_grace` is refused harmlessly; any other known token revokes the family and ends its
    /// session. Of concurrent presentations of one token, at most one
    /// rotates.
    fn rotate_refresh(
        &self,
        presented: &TokenHash,
        new: &TokenHash,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Rotation, Self::Error>> + Send;

    /// A refresh in one call: [`rotate_refresh`](Self::rotate_refresh),
    /// with two differences. A token of a family outside `scope` (when
    /// given) is [`Rotation::Unknown`] and changes nothing. And when the
    /// token rotates, the answer carries the family's session and tenant
    /// as they stand (`None`: gone), read in the same transaction, and, if
    /// that session is live at `now`, `event` is appended in the same
    /// transaction, with the family's tenant and user in place of its own;
    /// otherwise no event is written. A presentation that does not rotate
    /// carries neither.
    fn rotate_refresh_recorded(
        &self,
        presented: &TokenHash,
        new: &TokenHash,
        now: DateTime<Utc>,
        scope: Option<TenantId>,
        event: &AuditEvent,
    ) -> impl Future<Output = Result<RecordedRotation, Self::Error>> + Send;

    /// Replace the authentication record of the session with this id in
    /// `tenant` by `auth` (a step-up merged into it), if the session is
    /// live at `now` and its record is still `expected`: a compare-and-set,
    /// so that of concurrent step-ups, each merging into the record it
    /// read, none overwrites another's factor unseen (the losers get
    /// `false`, read again and merge again). Returns whether it wrote. The
    /// session's key, deadlines and family are untouched.
    fn set_session_auth(
        &self,
        tenant: TenantId,
        id: SessionId,
        expected: &AuthRecord,
        auth: &AuthRecord,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// The family with this id in `tenant`.
    fn refresh_family(
        &self,
        tenant: TenantId,
        id: FamilyId,
    ) -> impl Future<Output = Result<Option<RefreshFamily>, Self::Error>> + Send;

    /// Delete sessions no longer live at `now` and families expired or
    /// revoked before `now` (with their tokens). Returns how many rows went.
    /// Safe to run from several nodes at once.
    fn delete_expired_sessions(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// How many sessions, of every tenant, are live at `now` (a gauge for
    /// operators: a session past either deadline is not counted, whether
    /// or not a cleanup has deleted it yet).
    fn count_live_sessions(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;
}

/// JWT signing keys per tenant.
pub trait KeyStore: Send + Sync + 'static {
    /// The backend's error.
    type Error: StoreError;

    /// The tenant's keys, oldest first.
    fn signing_keys(
        &self,
        tenant: TenantId,
    ) -> impl Future<Output = Result<Vec<SigningKeyRecord>, Self::Error>> + Send;

    /// Add a key and retire every other active key of the tenant at
    /// `key.created_at`, keeping them verifiable until `verify_until`, in
    /// one atomic step. `Conflict` if the kid exists; `NotFound` if no tenant.
    fn rotate_signing_key(
        &self,
        key: &SigningKeyRecord,
        verify_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Delete retired keys whose `verify_until` is at or before `now`.
    fn delete_expired_signing_keys(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;
}

/// Reading the audit log back: an opt-in capability. A backend without an
/// audit table does not implement it, so code that needs it does not
/// compile against such a backend (rather than finding nothing).
pub trait AuditQuery: Send + Sync + 'static {
    /// The backend's error.
    type Error: StoreError;

    /// Events of `tenant` (never of another) that pass `filter`, newest
    /// first (ties broken by id, newest first), at most
    /// [`AuditFilter::effective_limit`].
    fn query_events(
        &self,
        tenant: TenantId,
        filter: &AuditFilter,
    ) -> impl Future<Output = Result<Vec<AuditEvent>, Self::Error>> + Send;
}

/// The tenant scoping rule, for stores that keep users in memory: a user is
/// visible in `tenant` only if it belongs to it.
pub fn visible_in(user: &User, tenant: TenantId) -> bool {
    user.tenant_id == tenant
}

/// The reference resolution of [`FactorStore::available_methods`], for
/// stores that resolve in memory: tenant methods overridden by user methods
/// of the same name, enabled only, ordered by name.
pub fn resolve_methods(tenant: &[MethodRecord], user: &[MethodRecord]) -> Vec<AuthMethod> {
    let mut by_name: std::collections::BTreeMap<&MethodName, &MethodRecord> =
        tenant.iter().map(|r| (&r.method.name, r)).collect();
    for r in user {
        by_name.insert(&r.method.name, r);
    }
    by_name
        .into_values()
        .filter(|r| r.enabled)
        .map(|r| r.method.clone())
        .collect()
}
