//! In-memory backend for countersign: implements every store trait of
//! countersign-core with one lock around the whole state, so every method
//! is atomic and every compare-and-save is exact under any concurrency.
//!
//! Applications should depend on the `countersign` facade (feature
//! `memory`). The store doubles as the mock store for downstream tests:
//! [`MemoryStore::fail_next`] injects failures and the inspection helpers
//! ([`MemoryStore::snapshot`], [`MemoryStore::events`], ...) read state
//! without going through the traits.
//!
//! Nothing is persisted: the state lives as long as the last clone.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use countersign_core::session::{RotationDecision, decide_rotation};
use countersign_core::store::{MAX_PAGE, resolve_methods};
use countersign_core::{
    AccountState, AuditEvent, AuditFilter, AuditQuery, AuthMethod, FactorKind, FactorStore,
    FailureRecord, FamilyId, FlowRecord, FlowStore, Identifier, IdentityAdmin, IdentityAuthnLog,
    IdentityLookup, KeyStore, LockoutPolicy, MethodName, MethodRecord, RefreshFamily, Rotation,
    Scope, SessionId, SessionRecord, SessionStore, SigningKeyRecord, StoreError, StoreErrorKind,
    Tenant, TenantFactor, TenantId, TenantPolicy, TenantProvision, TenantSlug, TokenHash, User,
    UserFactor, UserId, Versioned,
};

/// The memory backend's error: a kind and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MemoryError {
    kind: StoreErrorKind,
    message: String,
}

impl MemoryError {
    fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl StoreError for MemoryError {
    fn kind(&self) -> StoreErrorKind {
        self.kind
    }
}

type Result<T> = std::result::Result<T, MemoryError>;

fn not_found(what: &str) -> MemoryError {
    MemoryError::new(StoreErrorKind::NotFound, format!("{what} not found"))
}

/// Key of a method: tenant, optional user, name.
type MethodKey = (TenantId, Option<UserId>, MethodName);

#[derive(Debug, Default, Clone)]
struct State {
    tenants: HashMap<TenantId, Tenant>,
    slugs: HashMap<TenantSlug, TenantId>,
    users: HashMap<UserId, User>,
    identifiers: HashMap<(TenantId, Identifier), UserId>,
    failures: HashMap<UserId, FailureRecord>,
    events: Vec<AuditEvent>,
    tenant_factors: BTreeMap<(TenantId, &'static str), TenantFactor>,
    user_factors: BTreeMap<(UserId, &'static str), Versioned<UserFactor>>,
    methods: BTreeMap<MethodKey, MethodRecord>,
    history: HashMap<UserId, Vec<String>>,
    flows: HashMap<TokenHash, Versioned<FlowRecord>>,
    sessions: HashMap<TokenHash, Arc<SessionRecord>>,
    session_keys: HashMap<SessionId, TokenHash>,
    families: HashMap<FamilyId, RefreshFamily>,
    refresh_tokens: HashMap<TokenHash, FamilyId>,
    signing_keys: Vec<SigningKeyRecord>,
}

impl State {
    /// End a session and revoke its family at `now`.
    fn end_session(&mut self, key: &TokenHash, now: DateTime<Utc>) -> Option<SessionRecord> {
        let s = Arc::unwrap_or_clone(self.sessions.remove(key)?);
        self.session_keys.remove(&s.id);
        for f in self.families.values_mut().filter(|f| f.session_id == s.id) {
            if f.revoked_at.is_none() {
                f.revoked_at = Some(now);
            }
        }
        Some(s)
    }
}

impl State {
    fn user_in(&self, tenant: TenantId, user: UserId) -> Option<&User> {
        self.users.get(&user).filter(|u| u.tenant_id == tenant)
    }

    fn require_user(&self, tenant: TenantId, user: UserId) -> Result<()> {
        self.user_in(tenant, user)
            .map(|_| ())
            .ok_or_else(|| not_found("user"))
    }

    fn require_scope(&self, scope: Scope) -> Result<()> {
        match scope {
            Scope::Tenant(t) => self
                .tenants
                .contains_key(&t)
                .then_some(())
                .ok_or_else(|| not_found("tenant")),
            Scope::User(t, u) => self.require_user(t, u),
        }
    }

    fn methods_at(&self, scope: Scope) -> Vec<MethodRecord> {
        let (t, u) = (scope.tenant(), scope.user());
        self.methods
            .iter()
            .filter(|((mt, mu, _), _)| *mt == t && *mu == u)
            .map(|(_, r)| r.clone())
            .collect()
    }

    fn enabled_tenant_methods(&self, tenant: TenantId) -> usize {
        self.methods
            .iter()
            .filter(|((t, u, _), r)| *t == tenant && u.is_none() && r.enabled)
            .count()
    }
}

#[derive(Debug, Default)]
struct Faults {
    remaining: usize,
    kind: Option<StoreErrorKind>,
    only: Option<&'static str>,
}

#[derive(Debug, Default)]
struct Inner {
    state: Mutex<State>,
    faults: Mutex<Faults>,
    /// Whether any fault is armed: the fast path skips the faults lock.
    armed: std::sync::atomic::AtomicBool,
}

/// The in-memory store. Clones share state.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

/// Counts of what the store holds, for assertions in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemorySnapshot {
    /// Tenants.
    pub tenants: usize,
    /// Users.
    pub users: usize,
    /// Audit events.
    pub events: usize,
    /// Tenant factor settings.
    pub tenant_factors: usize,
    /// User credentials.
    pub user_factors: usize,
    /// Methods at any scope.
    pub methods: usize,
    /// Password history entries.
    pub password_history: usize,
    /// Failed-attempt records.
    pub failure_records: usize,
    /// Flows (logins and ceremonies in progress).
    pub flows: usize,
    /// Sessions.
    pub sessions: usize,
    /// Refresh families.
    pub families: usize,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Make the next `calls` store calls (of any method) fail with an error
    /// of `kind`, without touching state. `fail_next(0, _)` clears it.
    pub fn fail_next(&self, calls: usize, kind: StoreErrorKind) {
        self.set_faults(calls, kind, None);
    }

    /// Make the next `calls` calls of the trait method named `method` (for
    /// example `"record_event"`) fail with an error of `kind`; other
    /// methods work normally. Replaces any earlier injection.
    pub fn fail_next_on(&self, method: &'static str, calls: usize, kind: StoreErrorKind) {
        self.set_faults(calls, kind, Some(method));
    }

    fn set_faults(&self, calls: usize, kind: StoreErrorKind, only: Option<&'static str>) {
        let mut f = self
            .inner
            .faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f.remaining = calls;
        f.kind = Some(kind);
        f.only = only;
        self.inner
            .armed
            .store(calls > 0, std::sync::atomic::Ordering::SeqCst);
    }

    /// Counts of everything the store holds.
    pub fn snapshot(&self) -> MemorySnapshot {
        let st = self.state();
        MemorySnapshot {
            tenants: st.tenants.len(),
            users: st.users.len(),
            events: st.events.len(),
            tenant_factors: st.tenant_factors.len(),
            user_factors: st.user_factors.len(),
            methods: st.methods.len(),
            password_history: st.history.values().map(Vec::len).sum(),
            failure_records: st.failures.len(),
            flows: st.flows.len(),
            sessions: st.sessions.len(),
            families: st.families.len(),
        }
    }

    /// Every audit event of every tenant, in the order recorded.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.state().events.clone()
    }

    /// Every user of every tenant, ordered by id.
    pub fn users(&self) -> Vec<User> {
        let mut users: Vec<User> = self.state().users.values().cloned().collect();
        users.sort_by_key(|u| u.id);
        users
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Consume one injected fault aimed at `method`, if any, then lock the state.
    fn begin(&self, method: &'static str) -> Result<MutexGuard<'_, State>> {
        if self.inner.armed.load(std::sync::atomic::Ordering::SeqCst) {
            let mut f = self
                .inner
                .faults
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if f.remaining > 0 && f.only.is_none_or(|m| m == method) {
                f.remaining -= 1;
                if f.remaining == 0 {
                    self.inner
                        .armed
                        .store(false, std::sync::atomic::Ordering::SeqCst);
                }
                let kind = f.kind.unwrap_or(StoreErrorKind::Transient);
                return Err(MemoryError::new(kind, "injected failure"));
            }
        }
        Ok(self.state())
    }
}

impl IdentityLookup for MemoryStore {
    type Error = MemoryError;

    async fn get_tenant(&self, tenant: TenantId) -> Result<Option<Tenant>> {
        Ok(self.begin("get_tenant")?.tenants.get(&tenant).cloned())
    }

    async fn find_tenant(&self, slug: &TenantSlug) -> Result<Option<Tenant>> {
        let st = self.begin("find_tenant")?;
        Ok(st
            .slugs
            .get(slug)
            .and_then(|id| st.tenants.get(id))
            .cloned())
    }

    async fn find_user(&self, tenant: TenantId, identifier: &Identifier) -> Result<Option<User>> {
        let st = self.begin("find_user")?;
        Ok(st
            .identifiers
            .get(&(tenant, identifier.clone()))
            .and_then(|id| st.user_in(tenant, *id))
            .cloned())
    }

    async fn get_user(&self, tenant: TenantId, user: UserId) -> Result<Option<User>> {
        Ok(self.begin("get_user")?.user_in(tenant, user).cloned())
    }

    async fn get_user_cross_tenant(&self, user: UserId) -> Result<Option<User>> {
        Ok(self
            .begin("get_user_cross_tenant")?
            .users
            .get(&user)
            .cloned())
    }

    async fn list_users(
        &self,
        tenant: TenantId,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<User>> {
        let st = self.begin("list_users")?;
        let mut users: Vec<&User> = st
            .users
            .values()
            .filter(|u| u.tenant_id == tenant && after.is_none_or(|a| u.id > a))
            .collect();
        users.sort_by_key(|u| u.id);
        Ok(users
            .into_iter()
            .take(limit.min(MAX_PAGE) as usize)
            .cloned()
            .collect())
    }

    async fn failure_record(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<FailureRecord>> {
        let st = self.begin("failure_record")?;
        Ok(st
            .user_in(tenant, user)
            .and_then(|_| st.failures.get(&user))
            .cloned())
    }
}

impl IdentityAuthnLog for MemoryStore {
    async fn record_event(&self, event: &AuditEvent) -> Result<()> {
        self.begin("record_event")?.events.push(event.clone());
        Ok(())
    }

    async fn record_failed_attempt(
        &self,
        tenant: TenantId,
        user: UserId,
        policy: &LockoutPolicy,
        now: DateTime<Utc>,
    ) -> Result<FailureRecord> {
        let mut st = self.begin("record_failed_attempt")?;
        st.require_user(tenant, user)?;
        let next = policy.next_failure(st.failures.get(&user), now);
        st.failures.insert(user, next.clone());
        Ok(next)
    }

    async fn reset_failed_attempts(&self, tenant: TenantId, user: UserId) -> Result<()> {
        let mut st = self.begin("reset_failed_attempts")?;
        if st.user_in(tenant, user).is_some() {
            st.failures.remove(&user);
        }
        Ok(())
    }

    async fn record_last_login(
        &self,
        tenant: TenantId,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let mut st = self.begin("record_last_login")?;
        st.require_user(tenant, user)?;
        if let Some(u) = st.users.get_mut(&user) {
            u.last_login_at = Some(at);
        }
        Ok(())
    }
}

impl IdentityAdmin for MemoryStore {
    async fn provision_tenant(&self, provision: &TenantProvision) -> Result<()> {
        let mut st = self.begin("provision_tenant")?;
        let tenant = provision.tenant();
        if tenant.id.is_system() {
            return Err(MemoryError::new(
                StoreErrorKind::Rejected,
                "the system tenant is reserved",
            ));
        }
        if st.tenants.contains_key(&tenant.id) || st.slugs.contains_key(&tenant.slug) {
            return Err(MemoryError::new(
                StoreErrorKind::Conflict,
                "tenant already exists",
            ));
        }
        // Everything is checked above; from here on nothing can fail, so
        // the tenant appears whole or not at all.
        st.tenants.insert(tenant.id, tenant.clone());
        st.slugs.insert(tenant.slug.clone(), tenant.id);
        for f in provision.factors() {
            st.tenant_factors
                .insert((tenant.id, f.kind().as_str()), f.clone());
        }
        for m in provision.methods() {
            st.methods.insert(
                (tenant.id, None, m.name.clone()),
                MethodRecord {
                    method: m.clone(),
                    enabled: true,
                },
            );
        }
        Ok(())
    }

    async fn update_tenant_policy(&self, tenant: TenantId, policy: &TenantPolicy) -> Result<()> {
        let mut st = self.begin("update_tenant_policy")?;
        let t = st
            .tenants
            .get_mut(&tenant)
            .ok_or_else(|| not_found("tenant"))?;
        t.policy = policy.clone();
        Ok(())
    }

    async fn create_user(&self, user: &User, credentials: &[UserFactor]) -> Result<()> {
        let mut st = self.begin("create_user")?;
        if user.tenant_id.is_system() || user.id.is_reserved() {
            return Err(MemoryError::new(StoreErrorKind::Rejected, "reserved id"));
        }
        if !st.tenants.contains_key(&user.tenant_id) {
            return Err(not_found("tenant"));
        }
        let key = (user.tenant_id, user.identifier.clone());
        if st.users.contains_key(&user.id) || st.identifiers.contains_key(&key) {
            return Err(MemoryError::new(
                StoreErrorKind::Conflict,
                "user already exists",
            ));
        }
        let mut kinds: Vec<&str> = credentials.iter().map(|c| c.kind().as_str()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        if kinds.len() != credentials.len() {
            return Err(MemoryError::new(
                StoreErrorKind::Rejected,
                "a credential kind is repeated",
            ));
        }
        st.users.insert(user.id, user.clone());
        st.identifiers.insert(key, user.id);
        for c in credentials {
            st.user_factors.insert(
                (user.id, c.kind().as_str()),
                Versioned {
                    value: c.clone(),
                    version: 1,
                },
            );
        }
        Ok(())
    }

    async fn set_user_state(
        &self,
        tenant: TenantId,
        user: UserId,
        from: AccountState,
        to: AccountState,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut st = self.begin("set_user_state")?;
        st.require_user(tenant, user)?;
        let Some(u) = st.users.get_mut(&user) else {
            return Err(not_found("user"));
        };
        if u.state != from {
            return Ok(false);
        }
        u.state = to;
        u.state_reason = reason.map(str::to_owned);
        u.updated_at = at;
        Ok(true)
    }

    async fn push_password_history(
        &self,
        tenant: TenantId,
        user: UserId,
        phc: &str,
        _at: DateTime<Utc>,
        keep: u32,
    ) -> Result<()> {
        let mut st = self.begin("push_password_history")?;
        st.require_user(tenant, user)?;
        let h = st.history.entry(user).or_default();
        h.push(phc.to_owned());
        let excess = h.len().saturating_sub(keep as usize);
        h.drain(..excess);
        Ok(())
    }

    async fn password_history(
        &self,
        tenant: TenantId,
        user: UserId,
        limit: u32,
    ) -> Result<Vec<String>> {
        let st = self.begin("password_history")?;
        if st.user_in(tenant, user).is_none() {
            return Ok(Vec::new());
        }
        Ok(st
            .history
            .get(&user)
            .map(|h| h.iter().rev().take(limit as usize).cloned().collect())
            .unwrap_or_default())
    }

    async fn erase_user(&self, tenant: TenantId, user: UserId, pseudonym: UserId) -> Result<bool> {
        let mut st = self.begin("erase_user")?;
        let Some(identifier) = st.user_in(tenant, user).map(|u| u.identifier.clone()) else {
            return Ok(false);
        };
        st.users.remove(&user);
        st.identifiers.remove(&(tenant, identifier));
        st.failures.remove(&user);
        st.history.remove(&user);
        st.user_factors.retain(|(u, _), _| *u != user);
        st.methods.retain(|(_, u, _), _| *u != Some(user));
        st.flows.retain(|_, f| f.value.user_id != Some(user));
        let keys: Vec<TokenHash> = st
            .sessions
            .values()
            .filter(|s| s.user_id == user)
            .map(|s| s.key)
            .collect();
        for k in keys {
            st.end_session(&k, DateTime::<Utc>::MIN_UTC);
        }
        let families: Vec<FamilyId> = st
            .families
            .values()
            .filter(|f| f.user_id == user)
            .map(|f| f.id)
            .collect();
        for f in &families {
            st.families.remove(f);
        }
        st.refresh_tokens.retain(|_, f| !families.contains(f));
        for e in st
            .events
            .iter_mut()
            .filter(|e| e.tenant_id == tenant && e.user_id == Some(user))
        {
            e.user_id = Some(pseudonym);
            e.ip = None;
            e.user_agent = None;
        }
        Ok(true)
    }
}

impl FactorStore for MemoryStore {
    type Error = MemoryError;

    async fn tenant_factor(
        &self,
        tenant: TenantId,
        kind: FactorKind,
    ) -> Result<Option<TenantFactor>> {
        Ok(self
            .begin("tenant_factor")?
            .tenant_factors
            .get(&(tenant, kind.as_str()))
            .cloned())
    }

    async fn tenant_factors(&self, tenant: TenantId) -> Result<Vec<TenantFactor>> {
        Ok(self
            .begin("tenant_factors")?
            .tenant_factors
            .iter()
            .filter(|((t, _), _)| *t == tenant)
            .map(|(_, f)| f.clone())
            .collect())
    }

    async fn save_tenant_factor(&self, tenant: TenantId, factor: &TenantFactor) -> Result<()> {
        let mut st = self.begin("save_tenant_factor")?;
        st.require_scope(Scope::Tenant(tenant))?;
        st.tenant_factors
            .insert((tenant, factor.kind().as_str()), factor.clone());
        Ok(())
    }

    async fn remove_tenant_factor(&self, tenant: TenantId, kind: FactorKind) -> Result<bool> {
        let mut st = self.begin("remove_tenant_factor")?;
        let key = (tenant, kind.as_str());
        if !st.tenant_factors.contains_key(&key) {
            return Ok(false);
        }
        let count = st
            .tenant_factors
            .keys()
            .filter(|(t, _)| *t == tenant)
            .count();
        if count <= 1 {
            return Err(MemoryError::new(
                StoreErrorKind::Conflict,
                "a tenant keeps at least one factor",
            ));
        }
        st.tenant_factors.remove(&key);
        Ok(true)
    }

    async fn user_factor(
        &self,
        tenant: TenantId,
        user: UserId,
        kind: FactorKind,
    ) -> Result<Option<Versioned<UserFactor>>> {
        let st = self.begin("user_factor")?;
        Ok(st
            .user_in(tenant, user)
            .and_then(|_| st.user_factors.get(&(user, kind.as_str())))
            .cloned())
    }

    async fn user_factors(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Vec<Versioned<UserFactor>>> {
        let st = self.begin("user_factors")?;
        if st.user_in(tenant, user).is_none() {
            return Ok(Vec::new());
        }
        Ok(st
            .user_factors
            .iter()
            .filter(|((u, _), _)| *u == user)
            .map(|(_, f)| f.clone())
            .collect())
    }

    async fn compare_and_save_user_factor(
        &self,
        tenant: TenantId,
        user: UserId,
        expected: Option<u64>,
        factor: &UserFactor,
    ) -> Result<bool> {
        let mut st = self.begin("compare_and_save_user_factor")?;
        st.require_user(tenant, user)?;
        let key = (user, factor.kind().as_str());
        let current = st.user_factors.get(&key).map(|v| v.version);
        if current != expected {
            return Ok(false);
        }
        st.user_factors.insert(
            key,
            Versioned {
                value: factor.clone(),
                version: expected.map_or(1, |v| v + 1),
            },
        );
        Ok(true)
    }

    async fn remove_user_factor(
        &self,
        tenant: TenantId,
        user: UserId,
        kind: FactorKind,
    ) -> Result<bool> {
        let mut st = self.begin("remove_user_factor")?;
        if st.user_in(tenant, user).is_none() {
            return Ok(false);
        }
        Ok(st.user_factors.remove(&(user, kind.as_str())).is_some())
    }

    async fn save_method(&self, scope: Scope, method: &AuthMethod, enabled: bool) -> Result<()> {
        let mut st = self.begin("save_method")?;
        st.require_scope(scope)?;
        let key = (scope.tenant(), scope.user(), method.name.clone());
        if scope.user().is_none() && !enabled {
            let was_enabled = st.methods.get(&key).is_some_and(|r| r.enabled);
            if was_enabled && st.enabled_tenant_methods(scope.tenant()) <= 1 {
                return Err(MemoryError::new(
                    StoreErrorKind::Conflict,
                    "a tenant keeps at least one enabled method",
                ));
            }
        }
        st.methods.insert(
            key,
            MethodRecord {
                method: method.clone(),
                enabled,
            },
        );
        Ok(())
    }

    async fn methods(&self, scope: Scope) -> Result<Vec<MethodRecord>> {
        Ok(self.begin("methods")?.methods_at(scope))
    }

    async fn set_method_enabled(
        &self,
        scope: Scope,
        name: &MethodName,
        enabled: bool,
    ) -> Result<bool> {
        let mut st = self.begin("set_method_enabled")?;
        let key = (scope.tenant(), scope.user(), name.clone());
        let Some(was) = st.methods.get(&key).map(|r| r.enabled) else {
            return Ok(false);
        };
        if scope.user().is_none()
            && was
            && !enabled
            && st.enabled_tenant_methods(scope.tenant()) <= 1
        {
            return Err(MemoryError::new(
                StoreErrorKind::Conflict,
                "a tenant keeps at least one enabled method",
            ));
        }
        if let Some(r) = st.methods.get_mut(&key) {
            r.enabled = enabled;
        }
        Ok(true)
    }

    async fn remove_method(&self, scope: Scope, name: &MethodName) -> Result<bool> {
        let mut st = self.begin("remove_method")?;
        let key = (scope.tenant(), scope.user(), name.clone());
        let Some(was) = st.methods.get(&key).map(|r| r.enabled) else {
            return Ok(false);
        };
        if scope.user().is_none() && was && st.enabled_tenant_methods(scope.tenant()) <= 1 {
            return Err(MemoryError::new(
                StoreErrorKind::Conflict,
                "a tenant keeps at least one enabled method",
            ));
        }
        st.methods.remove(&key);
        Ok(true)
    }

    async fn available_methods(&self, tenant: TenantId, user: UserId) -> Result<Vec<AuthMethod>> {
        let st = self.begin("available_methods")?;
        if st.user_in(tenant, user).is_none() {
            return Ok(Vec::new());
        }
        Ok(resolve_methods(
            &st.methods_at(Scope::Tenant(tenant)),
            &st.methods_at(Scope::User(tenant, user)),
        ))
    }
}

impl FlowStore for MemoryStore {
    type Error = MemoryError;

    async fn create_flow(&self, flow: &FlowRecord) -> Result<()> {
        let mut st = self.begin("create_flow")?;
        match flow.user_id {
            Some(u) => st.require_user(flow.tenant_id, u)?,
            None => st.require_scope(Scope::Tenant(flow.tenant_id))?,
        }
        if st.flows.contains_key(&flow.key) {
            return Err(MemoryError::new(
                StoreErrorKind::Conflict,
                "flow already exists",
            ));
        }
        st.flows.insert(
            flow.key,
            Versioned {
                value: flow.clone(),
                version: 1,
            },
        );
        Ok(())
    }

    async fn flow(
        &self,
        tenant: TenantId,
        key: &TokenHash,
    ) -> Result<Option<Versioned<FlowRecord>>> {
        let st = self.begin("flow")?;
        Ok(st
            .flows
            .get(key)
            .filter(|f| f.value.tenant_id == tenant)
            .cloned())
    }

    async fn compare_and_save_flow(&self, expected: u64, flow: &FlowRecord) -> Result<bool> {
        let mut st = self.begin("compare_and_save_flow")?;
        if let Some(u) = flow.user_id {
            st.require_user(flow.tenant_id, u)?;
        }
        let Some(current) = st
            .flows
            .get_mut(&flow.key)
            .filter(|f| f.value.tenant_id == flow.tenant_id)
        else {
            return Ok(false);
        };
        if current.version != expected {
            return Ok(false);
        }
        *current = Versioned {
            value: flow.clone(),
            version: expected + 1,
        };
        Ok(true)
    }

    async fn delete_flow(&self, tenant: TenantId, key: &TokenHash) -> Result<bool> {
        let mut st = self.begin("delete_flow")?;
        if st
            .flows
            .get(key)
            .is_some_and(|f| f.value.tenant_id == tenant)
        {
            st.flows.remove(key);
            return Ok(true);
        }
        Ok(false)
    }

    async fn delete_expired_flows(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut st = self.begin("delete_expired_flows")?;
        let before = st.flows.len();
        st.flows.retain(|_, f| f.value.expires_at > now);
        Ok((before - st.flows.len()) as u64)
    }
}

impl SessionStore for MemoryStore {
    type Error = MemoryError;

    async fn create_session(
        &self,
        session: &SessionRecord,
        family: Option<&RefreshFamily>,
    ) -> Result<()> {
        let mut st = self.begin("create_session")?;
        st.require_user(session.tenant_id, session.user_id)?;
        if st.sessions.contains_key(&session.key) || st.session_keys.contains_key(&session.id) {
            return Err(MemoryError::new(
                StoreErrorKind::Conflict,
                "session already exists",
            ));
        }
        if let Some(f) = family {
            if st.families.contains_key(&f.id) || st.refresh_tokens.contains_key(&f.current) {
                return Err(MemoryError::new(
                    StoreErrorKind::Conflict,
                    "family already exists",
                ));
            }
            st.families.insert(f.id, f.clone());
            st.refresh_tokens.insert(f.current, f.id);
        }
        st.session_keys.insert(session.id, session.key);
        st.sessions.insert(session.key, Arc::new(session.clone()));
        Ok(())
    }

    async fn validate_session(
        &self,
        key: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<SessionRecord>>> {
        let mut st = self.begin("validate_session")?;
        let Some(s) = st.sessions.get_mut(key) else {
            return Ok(None);
        };
        if !s.is_live(now) {
            return Ok(None);
        }
        if s.renewal_due(now) {
            Arc::make_mut(s).renew(now);
        }
        Ok(Some(Arc::clone(s)))
    }

    async fn session(&self, tenant: TenantId, id: SessionId) -> Result<Option<SessionRecord>> {
        let st = self.begin("session")?;
        Ok(st
            .session_keys
            .get(&id)
            .and_then(|k| st.sessions.get(k))
            .filter(|s| s.tenant_id == tenant)
            .map(|s| SessionRecord::clone(s)))
    }

    async fn user_sessions(
        &self,
        tenant: TenantId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionRecord>> {
        let st = self.begin("user_sessions")?;
        let mut out: Vec<SessionRecord> = st
            .sessions
            .values()
            .filter(|s| s.tenant_id == tenant && s.user_id == user && s.is_live(now))
            .map(|s| SessionRecord::clone(s))
            .collect();
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(out)
    }

    async fn delete_session(
        &self,
        tenant: TenantId,
        id: SessionId,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>> {
        let mut st = self.begin("delete_session")?;
        let Some(key) = st
            .session_keys
            .get(&id)
            .copied()
            .filter(|k| st.sessions.get(k).is_some_and(|s| s.tenant_id == tenant))
        else {
            return Ok(None);
        };
        Ok(st.end_session(&key, now))
    }

    async fn delete_session_by_key(
        &self,
        key: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>> {
        let mut st = self.begin("delete_session_by_key")?;
        Ok(st.end_session(key, now))
    }

    async fn delete_user_sessions(
        &self,
        tenant: TenantId,
        user: UserId,
        keep: Option<SessionId>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut st = self.begin("delete_user_sessions")?;
        let keys: Vec<TokenHash> = st
            .sessions
            .values()
            .filter(|s| s.tenant_id == tenant && s.user_id == user && Some(s.id) != keep)
            .map(|s| s.key)
            .collect();
        for k in &keys {
            st.end_session(k, now);
        }
        Ok(keys.len() as u64)
    }

    async fn rotate_refresh(
        &self,
        presented: &TokenHash,
        new: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Rotation> {
        let mut st = self.begin("rotate_refresh")?;
        let Some(fid) = st.refresh_tokens.get(presented).copied() else {
            return Ok(Rotation::Unknown);
        };
        let Some(family) = st.families.get(&fid).cloned() else {
            return Ok(Rotation::Unknown);
        };
        Ok(match decide_rotation(&family, presented, now) {
            RotationDecision::Revoked => Rotation::Revoked,
            RotationDecision::Expired => Rotation::Expired,
            RotationDecision::Superseded => Rotation::Superseded,
            RotationDecision::Rotate => {
                if st.refresh_tokens.contains_key(new) {
                    return Err(MemoryError::new(
                        StoreErrorKind::Conflict,
                        "token already exists",
                    ));
                }
                let mut next = family;
                next.previous = Some(next.current);
                next.current = *new;
                next.generation += 1;
                next.rotated_at = Some(now);
                st.refresh_tokens.insert(*new, fid);
                st.families.insert(fid, next.clone());
                Rotation::Rotated(next)
            }
            RotationDecision::Revoke => {
                let mut revoked = family;
                revoked.revoked_at = Some(now);
                st.families.insert(fid, revoked.clone());
                if let Some(key) = st.session_keys.get(&revoked.session_id).copied() {
                    st.end_session(&key, now);
                }
                Rotation::Reused(revoked)
            }
        })
    }

    async fn refresh_family(
        &self,
        tenant: TenantId,
        id: FamilyId,
    ) -> Result<Option<RefreshFamily>> {
        let st = self.begin("refresh_family")?;
        Ok(st
            .families
            .get(&id)
            .filter(|f| f.tenant_id == tenant)
            .cloned())
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut st = self.begin("delete_expired_sessions")?;
        let dead: Vec<TokenHash> = st
            .sessions
            .values()
            .filter(|s| !s.is_live(now))
            .map(|s| s.key)
            .collect();
        for k in &dead {
            if let Some(s) = st.sessions.remove(k) {
                st.session_keys.remove(&s.id);
            }
        }
        let gone: Vec<FamilyId> = st
            .families
            .values()
            .filter(|f| f.expires_at <= now || f.revoked_at.is_some_and(|r| r < now))
            .map(|f| f.id)
            .collect();
        for f in &gone {
            st.families.remove(f);
        }
        st.refresh_tokens.retain(|_, f| !gone.contains(f));
        Ok((dead.len() + gone.len()) as u64)
    }
}

impl KeyStore for MemoryStore {
    type Error = MemoryError;

    async fn signing_keys(&self, tenant: TenantId) -> Result<Vec<SigningKeyRecord>> {
        let st = self.begin("signing_keys")?;
        let mut keys: Vec<SigningKeyRecord> = st
            .signing_keys
            .iter()
            .filter(|k| k.tenant_id == tenant)
            .cloned()
            .collect();
        keys.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.kid.cmp(&b.kid)));
        Ok(keys)
    }

    async fn rotate_signing_key(
        &self,
        key: &SigningKeyRecord,
        verify_until: DateTime<Utc>,
    ) -> Result<()> {
        let mut st = self.begin("rotate_signing_key")?;
        st.require_scope(Scope::Tenant(key.tenant_id))?;
        if st
            .signing_keys
            .iter()
            .any(|k| k.tenant_id == key.tenant_id && k.kid == key.kid)
        {
            return Err(MemoryError::new(
                StoreErrorKind::Conflict,
                "kid already exists",
            ));
        }
        for k in st
            .signing_keys
            .iter_mut()
            .filter(|k| k.tenant_id == key.tenant_id && k.is_active())
        {
            k.retired_at = Some(key.created_at);
            k.verify_until = Some(verify_until);
        }
        st.signing_keys.push(key.clone());
        Ok(())
    }

    async fn delete_expired_signing_keys(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut st = self.begin("delete_expired_signing_keys")?;
        let before = st.signing_keys.len();
        st.signing_keys
            .retain(|k| k.verify_until.is_none_or(|u| u > now));
        Ok((before - st.signing_keys.len()) as u64)
    }
}

impl AuditQuery for MemoryStore {
    type Error = MemoryError;

    async fn query_events(
        &self,
        tenant: TenantId,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEvent>> {
        let st = self.begin("query_events")?;
        let mut found: Vec<&AuditEvent> = st
            .events
            .iter()
            .filter(|e| e.tenant_id == tenant && filter.matches(e))
            .collect();
        found.sort_by(|a, b| b.at.cmp(&a.at).then(b.id.cmp(&a.id)));
        Ok(found
            .into_iter()
            .take(filter.effective_limit() as usize)
            .cloned()
            .collect())
    }
}
