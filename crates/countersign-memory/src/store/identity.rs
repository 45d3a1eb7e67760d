//! `IdentityLookup`, `IdentityAuthnLog` and `IdentityAdmin` in memory.

use chrono::{DateTime, Utc};
use countersign_core::store::MAX_PAGE;
use countersign_core::{
    AccountState, AuditEvent, FactorCredential, FailureRecord, FamilyId, HistoryEntry, Identifier,
    IdentityAdmin, IdentityAuthnLog, IdentityLookup, LockoutPolicy, MethodRecord, Profile,
    StoreErrorKind, Tenant, TenantId, TenantPolicy, TenantProvision, TenantSlug, TokenHash, User,
    UserId, UserQuery, Versioned,
};

use crate::error::{MemoryError, Result, not_found, unique_violation};
use crate::state::State;
use crate::{MemoryStore, StoreMethod};

impl IdentityLookup for MemoryStore {
    type Error = MemoryError;

    async fn get_tenant(&self, tenant: TenantId) -> Result<Option<Tenant>> {
        Ok(self
            .begin(StoreMethod::GetTenant)?
            .tenants
            .get(&tenant)
            .cloned())
    }

    async fn find_tenant(&self, slug: &TenantSlug) -> Result<Option<Tenant>> {
        let st = self.begin(StoreMethod::FindTenant)?;
        Ok(st
            .slugs
            .get(slug)
            .and_then(|id| st.tenants.get(id))
            .cloned())
    }

    async fn find_user(&self, tenant: TenantId, identifier: &Identifier) -> Result<Option<User>> {
        let st = self.begin(StoreMethod::FindUser)?;
        Ok(st
            .identifiers
            .get(&(tenant, identifier.clone()))
            .and_then(|id| st.user_in(tenant, *id))
            .cloned())
    }

    async fn get_user(&self, tenant: TenantId, user: UserId) -> Result<Option<User>> {
        Ok(self
            .begin(StoreMethod::GetUser)?
            .user_in(tenant, user)
            .cloned())
    }

    async fn get_user_cross_tenant(&self, user: UserId) -> Result<Option<User>> {
        Ok(self
            .begin(StoreMethod::GetUserCrossTenant)?
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
        let st = self.begin(StoreMethod::ListUsers)?;
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

    async fn search_users(&self, tenant: TenantId, query: &UserQuery) -> Result<Vec<User>> {
        let st = self.begin(StoreMethod::SearchUsers)?;
        let mut users: Vec<&User> = st
            .users
            .values()
            .filter(|u| {
                u.tenant_id == tenant && query.after.is_none_or(|a| u.id > a) && query.matches(u)
            })
            .collect();
        users.sort_by_key(|u| u.id);
        Ok(users
            .into_iter()
            .take(query.limit.min(MAX_PAGE) as usize)
            .cloned()
            .collect())
    }

    async fn failure_record(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<FailureRecord>> {
        let st = self.begin(StoreMethod::FailureRecord)?;
        Ok(st
            .user_in(tenant, user)
            .and_then(|_| st.failures.get(&user))
            .cloned())
    }
}

impl IdentityAuthnLog for MemoryStore {
    async fn record_event(&self, event: &AuditEvent) -> Result<()> {
        let mut st = self.begin(StoreMethod::RecordEvent)?;
        st.record_event(event.clone());
        Ok(())
    }

    async fn record_failed_attempt(
        &self,
        tenant: TenantId,
        user: UserId,
        policy: &LockoutPolicy,
        now: DateTime<Utc>,
    ) -> Result<FailureRecord> {
        let mut st = self.begin(StoreMethod::RecordFailedAttempt)?;
        st.require_user(tenant, user)?;
        let next = policy.next_failure(st.failures.get(&user), now);
        st.failures.insert(user, next.clone());
        Ok(next)
    }

    async fn reset_failed_attempts(&self, tenant: TenantId, user: UserId) -> Result<()> {
        let mut st = self.begin(StoreMethod::ResetFailedAttempts)?;
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
        let mut st = self.begin(StoreMethod::RecordLastLogin)?;
        st.require_user(tenant, user)?;
        if let Some(u) = st.users.get_mut(&user) {
            u.last_login_at = Some(at);
        }
        Ok(())
    }

    async fn record_login(
        &self,
        tenant: TenantId,
        user: UserId,
        at: DateTime<Utc>,
        events: &[AuditEvent],
    ) -> Result<()> {
        let mut st = self.begin(StoreMethod::RecordLogin)?;
        st.require_user(tenant, user)?;
        // Checked above; nothing below can fail, so all of it happens.
        st.failures.remove(&user);
        if let Some(u) = st.users.get_mut(&user) {
            u.last_login_at = Some(at);
        }
        for event in events {
            st.record_event(event.clone());
        }
        Ok(())
    }
}

impl IdentityAdmin for MemoryStore {
    async fn provision_tenant(&self, provision: &TenantProvision) -> Result<()> {
        let mut st = self.begin(StoreMethod::ProvisionTenant)?;
        let tenant = provision.tenant();
        if tenant.id.is_system() {
            return Err(MemoryError::new(
                StoreErrorKind::Rejected,
                "the system tenant is reserved",
            ));
        }
        if st.tenants.contains_key(&tenant.id) || st.slugs.contains_key(&tenant.slug) {
            return Err(unique_violation("tenant"));
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
        let mut st = self.begin(StoreMethod::UpdateTenantPolicy)?;
        let t = st
            .tenants
            .get_mut(&tenant)
            .ok_or_else(|| not_found("tenant"))?;
        t.policy = policy.clone();
        Ok(())
    }

    async fn create_user(&self, user: &User, credentials: &[FactorCredential]) -> Result<()> {
        let mut st = self.begin(StoreMethod::CreateUser)?;
        insert_user(&mut st, user, credentials)
    }

    async fn register_user(
        &self,
        user: &User,
        credentials: &[FactorCredential],
        history: Option<&HistoryEntry>,
        event: &AuditEvent,
    ) -> Result<()> {
        let mut st = self.begin(StoreMethod::RegisterUser)?;
        // Every check before the first write: all or nothing.
        if st.event_ids.contains(&event.id) {
            return Err(unique_violation("audit event"));
        }
        insert_user(&mut st, user, credentials)?;
        if let Some(h) = history {
            push_history(&mut st, user.id, &h.phc, h.keep);
        }
        st.event_ids.insert(event.id);
        st.events.push(event.clone());
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
        let mut st = self.begin(StoreMethod::SetUserState)?;
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

    async fn update_profile(
        &self,
        tenant: TenantId,
        user: UserId,
        profile: &Profile,
        expected_updated_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut st = self.begin(StoreMethod::UpdateProfile)?;
        st.require_user(tenant, user)?;
        let Some(u) = st.users.get_mut(&user) else {
            return Err(not_found("user"));
        };
        if u.updated_at != expected_updated_at {
            return Ok(false);
        }
        u.display_name.clone_from(&profile.display_name);
        u.tier.clone_from(&profile.tier);
        u.attributes.clone_from(&profile.attributes);
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
        let mut st = self.begin(StoreMethod::PushPasswordHistory)?;
        st.require_user(tenant, user)?;
        push_history(&mut st, user, phc, keep);
        Ok(())
    }

    async fn password_history(
        &self,
        tenant: TenantId,
        user: UserId,
        limit: u32,
    ) -> Result<Vec<String>> {
        let st = self.begin(StoreMethod::PasswordHistory)?;
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
        let mut st = self.begin(StoreMethod::EraseUser)?;
        let Some(identifier) = st.user_in(tenant, user).map(|u| u.identifier.clone()) else {
            return Ok(false);
        };
        st.users.remove(&user);
        st.identifiers.remove(&(tenant, identifier));
        st.failures.remove(&user);
        st.history.remove(&user);
        st.user_factors.retain(|(u, _), _| *u != user);
        st.removed_factors.retain(|(u, _), _| *u != user);
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
        st.verifications
            .retain(|(t, u, _), _| !(*t == tenant && *u == user));
        st.linked
            .retain(|_, l| !(l.tenant_id == tenant && l.user_id == user));
        // Its assignments and direct grants go too, as one RBAC change.
        if let Some(rbac) = st.rbac.get_mut(&tenant) {
            rbac.forget_user(user);
        }
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

/// Add a password hash to a user's history, keeping the newest `keep`.
fn push_history(st: &mut State, user: UserId, phc: &str, keep: u32) {
    let h = st.history.entry(user).or_default();
    h.push(phc.to_owned());
    let excess = h.len().saturating_sub(keep as usize);
    h.drain(..excess);
}

/// Create a user with its credentials; checks everything before writing.
pub(crate) fn insert_user(
    st: &mut State,
    user: &User,
    credentials: &[FactorCredential],
) -> Result<()> {
    if user.tenant_id.is_system() || user.id.is_reserved() {
        return Err(MemoryError::new(StoreErrorKind::Rejected, "reserved id"));
    }
    if !st.tenants.contains_key(&user.tenant_id) {
        return Err(not_found("tenant"));
    }
    let key = (user.tenant_id, user.identifier.clone());
    if st.users.contains_key(&user.id) || st.identifiers.contains_key(&key) {
        return Err(unique_violation("user"));
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
