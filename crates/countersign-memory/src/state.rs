//! The state behind the store's one lock, and the checks every store
//! method shares.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use countersign_core::{
    AuditEvent, DirectGrant, EventId, FactorCredential, FactorSettings, FailureRecord, FamilyId,
    FlowRecord, Identifier, LinkedIdentity, MethodName, MethodRecord, MethodScope, PolicyDocument,
    RateLimitWindow, RbacKind, RbacName, RbacSnapshot, RefreshFamily, RoleAssignment, RoleGrant,
    SessionId, SessionRecord, SigningKeyRecord, StoreErrorKind, Tenant, TenantId, TenantSlug,
    TokenHash, User, UserId, Verification, VerificationPurpose, Versioned,
};

use crate::error::{MemoryError, Result, not_found};

/// Key of a method: tenant, optional user, name.
pub(crate) type MethodKey = (TenantId, Option<UserId>, MethodName);

/// Key of a pending verification: tenant, user, purpose.
pub(crate) type VerificationKey = (TenantId, UserId, VerificationPurpose);

/// Key of a linked identity: tenant, issuer, subject.
pub(crate) type LinkKey = (TenantId, String, String);

/// Everything the store holds. Every store method runs with it locked, so
/// each is atomic.
#[derive(Debug, Default, Clone)]
pub(crate) struct State {
    pub(crate) tenants: HashMap<TenantId, Tenant>,
    pub(crate) slugs: HashMap<TenantSlug, TenantId>,
    pub(crate) users: HashMap<UserId, User>,
    pub(crate) identifiers: HashMap<(TenantId, Identifier), UserId>,
    pub(crate) failures: HashMap<UserId, FailureRecord>,
    pub(crate) events: Vec<AuditEvent>,
    /// The ids in `events`, for the uniqueness checks of the writes that
    /// record an event together with other rows.
    pub(crate) event_ids: HashSet<EventId>,
    pub(crate) tenant_factors: BTreeMap<(TenantId, &'static str), FactorSettings>,
    pub(crate) user_factors: BTreeMap<(UserId, &'static str), Versioned<FactorCredential>>,
    /// The last version of each removed credential: a re-enrolment
    /// continues from it, so versions never repeat (no ABA).
    pub(crate) removed_factors: BTreeMap<(UserId, &'static str), u64>,
    pub(crate) methods: BTreeMap<MethodKey, MethodRecord>,
    pub(crate) history: HashMap<UserId, Vec<String>>,
    pub(crate) flows: HashMap<TokenHash, Versioned<FlowRecord>>,
    pub(crate) sessions: HashMap<TokenHash, Arc<SessionRecord>>,
    pub(crate) session_keys: HashMap<SessionId, TokenHash>,
    pub(crate) families: HashMap<FamilyId, RefreshFamily>,
    pub(crate) refresh_tokens: HashMap<TokenHash, FamilyId>,
    pub(crate) signing_keys: Vec<SigningKeyRecord>,
    pub(crate) policies: HashMap<TenantId, PolicyDocument>,
    /// Each tenant's RBAC model; a tenant never changed has none (version 0).
    pub(crate) rbac: HashMap<TenantId, Rbac>,
    /// Pending verifications, at most one per (tenant, user, purpose).
    pub(crate) verifications: HashMap<VerificationKey, Verification>,
    /// Linked identities, at most one per (tenant, issuer, subject).
    pub(crate) linked: BTreeMap<LinkKey, LinkedIdentity>,
    /// Rate-limit windows by key (global, not per tenant).
    pub(crate) rate_limits: HashMap<String, RateLimitWindow>,
}

/// One tenant's RBAC model. Sets, so every listing comes out sorted (by
/// the types' `Ord`) and every uniqueness rule is the set's.
#[derive(Debug, Default, Clone)]
pub(crate) struct Rbac {
    /// One more for every applied change (0: never changed).
    pub(crate) version: u64,
    pub(crate) services: BTreeSet<RbacName>,
    pub(crate) roles: BTreeSet<RbacName>,
    pub(crate) permissions: BTreeSet<RbacName>,
    /// Unique over (role, permission, service-or-none).
    pub(crate) role_grants: BTreeSet<RoleGrant>,
    pub(crate) assignments: BTreeSet<RoleAssignment>,
    pub(crate) direct_grants: BTreeSet<DirectGrant>,
}

impl Rbac {
    /// The names of one kind.
    pub(crate) fn names(&self, kind: RbacKind) -> &BTreeSet<RbacName> {
        match kind {
            RbacKind::Service => &self.services,
            RbacKind::Role => &self.roles,
            RbacKind::Permission => &self.permissions,
        }
    }

    /// The names of one kind, to change.
    pub(crate) fn names_mut(&mut self, kind: RbacKind) -> &mut BTreeSet<RbacName> {
        match kind {
            RbacKind::Service => &mut self.services,
            RbacKind::Role => &mut self.roles,
            RbacKind::Permission => &mut self.permissions,
        }
    }

    /// Everything, as `tenant`'s snapshot at this version.
    pub(crate) fn snapshot(&self, tenant: TenantId) -> RbacSnapshot {
        RbacSnapshot {
            tenant_id: tenant,
            version: self.version,
            services: self.services.iter().cloned().collect(),
            roles: self.roles.iter().cloned().collect(),
            permissions: self.permissions.iter().cloned().collect(),
            role_grants: self.role_grants.iter().cloned().collect(),
            assignments: self.assignments.iter().cloned().collect(),
            direct_grants: self.direct_grants.iter().cloned().collect(),
        }
    }

    /// Remove `user`'s assignments and direct grants, bumping the version
    /// if there were any (erasure). Returns whether any went.
    pub(crate) fn forget_user(&mut self, user: UserId) -> bool {
        let before = self.assignments.len() + self.direct_grants.len();
        self.assignments.retain(|a| a.user != user);
        self.direct_grants.retain(|g| g.user != user);
        let removed = self.assignments.len() + self.direct_grants.len() != before;
        if removed {
            self.version += 1;
        }
        removed
    }
}

/// Compare-and-save on a version: the version to write if `current` (the
/// stored version, `None` when absent) is the `expected` one, else `None`.
/// A new value starts at version 1.
pub(crate) fn next_version(current: Option<u64>, expected: Option<u64>) -> Option<u64> {
    (current == expected).then(|| expected.map_or(1, |v| v + 1))
}

impl State {
    /// Append `event` unless one with its id is there already (recording
    /// an event twice records it once). Returns whether it was appended.
    pub(crate) fn record_event(&mut self, event: AuditEvent) -> bool {
        let new = self.event_ids.insert(event.id);
        if new {
            self.events.push(event);
        }
        new
    }

    /// End a session and revoke its family at `now`.
    pub(crate) fn end_session(
        &mut self,
        key: &TokenHash,
        now: DateTime<Utc>,
    ) -> Option<SessionRecord> {
        let s = Arc::unwrap_or_clone(self.sessions.remove(key)?);
        self.session_keys.remove(&s.id);
        for f in self.families.values_mut().filter(|f| f.session_id == s.id) {
            if f.revoked_at.is_none() {
                f.revoked_at = Some(now);
            }
        }
        Some(s)
    }

    pub(crate) fn user_in(&self, tenant: TenantId, user: UserId) -> Option<&User> {
        self.users.get(&user).filter(|u| u.tenant_id == tenant)
    }

    pub(crate) fn require_user(&self, tenant: TenantId, user: UserId) -> Result<()> {
        self.user_in(tenant, user)
            .map(|_| ())
            .ok_or_else(|| not_found("user"))
    }

    pub(crate) fn require_scope(&self, scope: MethodScope) -> Result<()> {
        match scope {
            MethodScope::Tenant(t) => self
                .tenants
                .contains_key(&t)
                .then_some(())
                .ok_or_else(|| not_found("tenant")),
            MethodScope::User(t, u) => self.require_user(t, u),
        }
    }

    pub(crate) fn methods_at(&self, scope: MethodScope) -> Vec<MethodRecord> {
        let (t, u) = (scope.tenant(), scope.user());
        self.methods
            .iter()
            .filter(|((mt, mu, _), _)| *mt == t && *mu == u)
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Refuse to change the method at `key` to `enabled` (or to remove it,
    /// `None`) if that would leave its tenant without an enabled method.
    pub(crate) fn keep_an_enabled_method(
        &self,
        key: &MethodKey,
        enabled: Option<bool>,
    ) -> Result<()> {
        let (tenant, user, _) = key;
        if user.is_some() || enabled == Some(true) {
            return Ok(());
        }
        let was_enabled = self.methods.get(key).is_some_and(|r| r.enabled);
        let enabled_here = self
            .methods
            .iter()
            .filter(|((t, u, _), r)| t == tenant && u.is_none() && r.enabled)
            .count();
        if was_enabled && enabled_here <= 1 {
            return Err(MemoryError::new(
                StoreErrorKind::Conflict,
                "a tenant keeps at least one enabled method",
            ));
        }
        Ok(())
    }
}
