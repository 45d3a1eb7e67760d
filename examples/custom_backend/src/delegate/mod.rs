//! The store traits on [`CountingStore`]: every method counts the call
//! under its trait, then delegates to the inner store exactly once.

mod more;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use countersign_core::{
    AccountState, AuditEvent, AuthMethod, AuthRecord, FactorCredential, FactorKind, FactorSettings,
    FactorStore, FailureRecord, FamilyId, FlowRecord, FlowStore, HistoryEntry, Identifier,
    IdentityAdmin, IdentityAuthnLog, IdentityLookup, LockoutPolicy, MethodName, MethodRecord,
    MethodScope, Profile, RecordedRotation, RefreshFamily, Rotation, SessionId, SessionRecord,
    SessionStore, Tenant, TenantId, TenantPolicy, TenantProvision, TenantSlug, TokenHash, User,
    UserId, UserQuery, Versioned,
};

use crate::{CountingStore, StoreTrait};

impl<S: IdentityLookup> IdentityLookup for CountingStore<S> {
    type Error = <S as IdentityLookup>::Error;

    async fn get_tenant(&self, tenant: TenantId) -> Result<Option<Tenant>, Self::Error> {
        let call = self.inner.get_tenant(tenant);
        self.counted(StoreTrait::IdentityLookup, call).await
    }

    async fn find_tenant(&self, slug: &TenantSlug) -> Result<Option<Tenant>, Self::Error> {
        let call = self.inner.find_tenant(slug);
        self.counted(StoreTrait::IdentityLookup, call).await
    }

    async fn find_user(
        &self,
        tenant: TenantId,
        identifier: &Identifier,
    ) -> Result<Option<User>, Self::Error> {
        let call = self.inner.find_user(tenant, identifier);
        self.counted(StoreTrait::IdentityLookup, call).await
    }

    async fn get_user(&self, tenant: TenantId, user: UserId) -> Result<Option<User>, Self::Error> {
        let call = self.inner.get_user(tenant, user);
        self.counted(StoreTrait::IdentityLookup, call).await
    }

    async fn get_user_cross_tenant(&self, user: UserId) -> Result<Option<User>, Self::Error> {
        let call = self.inner.get_user_cross_tenant(user);
        self.counted(StoreTrait::IdentityLookup, call).await
    }

    async fn list_users(
        &self,
        tenant: TenantId,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<User>, Self::Error> {
        let call = self.inner.list_users(tenant, after, limit);
        self.counted(StoreTrait::IdentityLookup, call).await
    }

    async fn search_users(
        &self,
        tenant: TenantId,
        query: &UserQuery,
    ) -> Result<Vec<User>, Self::Error> {
        let call = self.inner.search_users(tenant, query);
        self.counted(StoreTrait::IdentityLookup, call).await
    }

    async fn failure_record(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<FailureRecord>, Self::Error> {
        let call = self.inner.failure_record(tenant, user);
        self.counted(StoreTrait::IdentityLookup, call).await
    }
}

impl<S: IdentityAuthnLog> IdentityAuthnLog for CountingStore<S> {
    async fn record_event(&self, event: &AuditEvent) -> Result<(), Self::Error> {
        let call = self.inner.record_event(event);
        self.counted(StoreTrait::IdentityAuthnLog, call).await
    }

    async fn record_failed_attempt(
        &self,
        tenant: TenantId,
        user: UserId,
        policy: &LockoutPolicy,
        now: DateTime<Utc>,
    ) -> Result<FailureRecord, Self::Error> {
        let call = self.inner.record_failed_attempt(tenant, user, policy, now);
        self.counted(StoreTrait::IdentityAuthnLog, call).await
    }

    async fn reset_failed_attempts(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<(), Self::Error> {
        let call = self.inner.reset_failed_attempts(tenant, user);
        self.counted(StoreTrait::IdentityAuthnLog, call).await
    }

    async fn record_last_login(
        &self,
        tenant: TenantId,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<(), Self::Error> {
        let call = self.inner.record_last_login(tenant, user, at);
        self.counted(StoreTrait::IdentityAuthnLog, call).await
    }

    async fn record_login(
        &self,
        tenant: TenantId,
        user: UserId,
        at: DateTime<Utc>,
        events: &[AuditEvent],
    ) -> Result<(), Self::Error> {
        let call = self.inner.record_login(tenant, user, at, events);
        self.counted(StoreTrait::IdentityAuthnLog, call).await
    }
}

impl<S: IdentityAdmin> IdentityAdmin for CountingStore<S> {
    async fn provision_tenant(&self, provision: &TenantProvision) -> Result<(), Self::Error> {
        let call = self.inner.provision_tenant(provision);
        self.counted(StoreTrait::IdentityAdmin, call).await
    }

    async fn update_tenant_policy(
        &self,
        tenant: TenantId,
        policy: &TenantPolicy,
    ) -> Result<(), Self::Error> {
        let call = self.inner.update_tenant_policy(tenant, policy);
        self.counted(StoreTrait::IdentityAdmin, call).await
    }

    async fn create_user(
        &self,
        user: &User,
        credentials: &[FactorCredential],
    ) -> Result<(), Self::Error> {
        let call = self.inner.create_user(user, credentials);
        self.counted(StoreTrait::IdentityAdmin, call).await
    }

    async fn register_user(
        &self,
        user: &User,
        credentials: &[FactorCredential],
        history: Option<&HistoryEntry>,
        event: &AuditEvent,
    ) -> Result<(), Self::Error> {
        let call = self.inner.register_user(user, credentials, history, event);
        self.counted(StoreTrait::IdentityAdmin, call).await
    }

    async fn set_user_state(
        &self,
        tenant: TenantId,
        user: UserId,
        from: AccountState,
        to: AccountState,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool, Self::Error> {
        let call = self
            .inner
            .set_user_state(tenant, user, from, to, reason, at);
        self.counted(StoreTrait::IdentityAdmin, call).await
    }

    async fn update_profile(
        &self,
        tenant: TenantId,
        user: UserId,
        profile: &Profile,
        expected_updated_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool, Self::Error> {
        let call = self
            .inner
            .update_profile(tenant, user, profile, expected_updated_at, at);
        self.counted(StoreTrait::IdentityAdmin, call).await
    }

    async fn push_password_history(
        &self,
        tenant: TenantId,
        user: UserId,
        phc: &str,
        at: DateTime<Utc>,
        keep: u32,
    ) -> Result<(), Self::Error> {
        let call = self
            .inner
            .push_password_history(tenant, user, phc, at, keep);
        self.counted(StoreTrait::IdentityAdmin, call).await
    }

    async fn password_history(
        &self,
        tenant: TenantId,
        user: UserId,
        limit: u32,
    ) -> Result<Vec<String>, Self::Error> {
        let call = self.inner.password_history(tenant, user, limit);
        self.counted(StoreTrait::IdentityAdmin, call).await
    }

    async fn erase_user(
        &self,
        tenant: TenantId,
        user: UserId,
        pseudonym: UserId,
    ) -> Result<bool, Self::Error> {
        let call = self.inner.erase_user(tenant, user, pseudonym);
        self.counted(StoreTrait::IdentityAdmin, call).await
    }
}

impl<S: FactorStore> FactorStore for CountingStore<S> {
    type Error = <S as FactorStore>::Error;

    async fn tenant_factor(
        &self,
        tenant: TenantId,
        kind: FactorKind,
    ) -> Result<Option<FactorSettings>, Self::Error> {
        let call = self.inner.tenant_factor(tenant, kind);
        self.counted(StoreTrait::FactorStore, call).await
    }

    async fn tenant_factors(&self, tenant: TenantId) -> Result<Vec<FactorSettings>, Self::Error> {
        let call = self.inner.tenant_factors(tenant);
        self.counted(StoreTrait::FactorStore, call).await
    }

    async fn save_tenant_factor(
        &self,
        tenant: TenantId,
        factor: &FactorSettings,
    ) -> Result<(), Self::Error> {
        let call = self.inner.save_tenant_factor(tenant, factor);
        self.counted(StoreTrait::FactorStore, call).await
    }

    async fn remove_tenant_factor(
        &self,
        tenant: TenantId,
        kind: FactorKind,
    ) -> Result<bool, Self::Error> {
        let call = self.inner.remove_tenant_factor(tenant, kind);
        self.counted(StoreTrait::FactorStore, call).await
    }

    async fn user_factor(
        &self,
        tenant: TenantId,
        user: UserId,
        kind: FactorKind,
    ) -> Result<Option<Versioned<FactorCredential>>, Self::Error> {
        let call = self.inner.user_factor(tenant, user, kind);
        self.counted(StoreTrait::FactorStore, call).await
    }

    async fn user_factors(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Vec<Versioned<FactorCredential>>, Self::Error> {
        let call = self.inner.user_factors(tenant, user);
        self.counted(StoreTrait::FactorStore, call).await
    }

    async fn compare_and_save_user_factor(
        &self,
        tenant: TenantId,
        user: UserId,
        expected: Option<u64>,
        factor: &FactorCredential,
    ) -> Result<bool, Self::Error> {
        let call = self
            .inner
            .compare_and_save_user_factor(tenant, user, expected, factor);
        self.counted(StoreTrait::FactorStore, call).await
    }

    async fn remove_user_factor(
        &self,
        tenant: TenantId,
        user: UserId,
        kind: FactorKind,
    ) -> Result<bool, Self::Error> {
        let call = self.inner.remove_user_factor(tenant, user, kind);
        self.counted(StoreTrait::FactorStore, call).await
    }

    async fn save_method(
        &self,
        scope: MethodScope,
        method: &AuthMethod,
        enabled: bool,
    ) -> Result<(), Self::Error> {
        let call = self.inner.save_method(scope, method, enabled);
        self.counted(StoreTrait::FactorStore, call).await
    }

    async fn methods(&self, scope: MethodScope) -> Result<Vec<MethodRecord>, Self::Error> {
        let call = self.inner.methods(scope);
        self.counted(StoreTrait::FactorStore, call).await
    }

    async fn set_method_enabled(
        &self,
        scope: MethodScope,
        name: &MethodName,
        enabled: bool,
    ) -> Result<bool, Self::Error> {
        let call = self.inner.set_method_enabled(scope, name, enabled);
        self.counted(StoreTrait::FactorStore, call).await
    }

    async fn remove_method(
        &self,
        scope: MethodScope,
        name: &MethodName,
    ) -> Result<bool, Self::Error> {
        let call = self.inner.remove_method(scope, name);
        self.counted(StoreTrait::FactorStore, call).await
    }

    async fn available_methods(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Vec<AuthMethod>, Self::Error> {
        let call = self.inner.available_methods(tenant, user);
        self.counted(StoreTrait::FactorStore, call).await
    }
}

impl<S: FlowStore> FlowStore for CountingStore<S> {
    type Error = <S as FlowStore>::Error;

    async fn create_flow(&self, flow: &FlowRecord) -> Result<(), Self::Error> {
        let call = self.inner.create_flow(flow);
        self.counted(StoreTrait::FlowStore, call).await
    }

    async fn flow(
        &self,
        tenant: TenantId,
        key: &TokenHash,
    ) -> Result<Option<Versioned<FlowRecord>>, Self::Error> {
        let call = self.inner.flow(tenant, key);
        self.counted(StoreTrait::FlowStore, call).await
    }

    async fn compare_and_save_flow(
        &self,
        expected: u64,
        flow: &FlowRecord,
    ) -> Result<bool, Self::Error> {
        let call = self.inner.compare_and_save_flow(expected, flow);
        self.counted(StoreTrait::FlowStore, call).await
    }

    async fn delete_flow(&self, tenant: TenantId, key: &TokenHash) -> Result<bool, Self::Error> {
        let call = self.inner.delete_flow(tenant, key);
        self.counted(StoreTrait::FlowStore, call).await
    }

    async fn delete_expired_flows(&self, now: DateTime<Utc>) -> Result<u64, Self::Error> {
        let call = self.inner.delete_expired_flows(now);
        self.counted(StoreTrait::FlowStore, call).await
    }
}

impl<S: SessionStore> SessionStore for CountingStore<S> {
    type Error = <S as SessionStore>::Error;

    async fn create_session(
        &self,
        session: &SessionRecord,
        family: Option<&RefreshFamily>,
        event: Option<&AuditEvent>,
    ) -> Result<(), Self::Error> {
        let call = self.inner.create_session(session, family, event);
        self.counted(StoreTrait::SessionStore, call).await
    }

    async fn set_session_auth(
        &self,
        tenant: TenantId,
        id: SessionId,
        expected: &AuthRecord,
        auth: &AuthRecord,
        now: DateTime<Utc>,
    ) -> Result<bool, Self::Error> {
        let call = self.inner.set_session_auth(tenant, id, expected, auth, now);
        self.counted(StoreTrait::SessionStore, call).await
    }

    async fn validate_session(
        &self,
        key: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<SessionRecord>>, Self::Error> {
        let call = self.inner.validate_session(key, now);
        self.counted(StoreTrait::SessionStore, call).await
    }

    async fn session(
        &self,
        tenant: TenantId,
        id: SessionId,
    ) -> Result<Option<SessionRecord>, Self::Error> {
        let call = self.inner.session(tenant, id);
        self.counted(StoreTrait::SessionStore, call).await
    }

    async fn user_sessions(
        &self,
        tenant: TenantId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionRecord>, Self::Error> {
        let call = self.inner.user_sessions(tenant, user, now);
        self.counted(StoreTrait::SessionStore, call).await
    }

    async fn delete_session(
        &self,
        tenant: TenantId,
        id: SessionId,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, Self::Error> {
        let call = self.inner.delete_session(tenant, id, now);
        self.counted(StoreTrait::SessionStore, call).await
    }

    async fn delete_session_by_key(
        &self,
        key: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, Self::Error> {
        let call = self.inner.delete_session_by_key(key, now);
        self.counted(StoreTrait::SessionStore, call).await
    }

    async fn delete_user_sessions(
        &self,
        tenant: TenantId,
        user: UserId,
        keep: Option<SessionId>,
        now: DateTime<Utc>,
    ) -> Result<u64, Self::Error> {
        let call = self.inner.delete_user_sessions(tenant, user, keep, now);
        self.counted(StoreTrait::SessionStore, call).await
    }

    async fn rotate_refresh(
        &self,
        presented: &TokenHash,
        new: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Rotation, Self::Error> {
        let call = self.inner.rotate_refresh(presented, new, now);
        self.counted(StoreTrait::SessionStore, call).await
    }

    async fn rotate_refresh_recorded(
        &self,
        presented: &TokenHash,
        new: &TokenHash,
        now: DateTime<Utc>,
        scope: Option<TenantId>,
        event: &AuditEvent,
    ) -> Result<RecordedRotation, Self::Error> {
        let call = self
            .inner
            .rotate_refresh_recorded(presented, new, now, scope, event);
        self.counted(StoreTrait::SessionStore, call).await
    }

    async fn refresh_family(
        &self,
        tenant: TenantId,
        id: FamilyId,
    ) -> Result<Option<RefreshFamily>, Self::Error> {
        let call = self.inner.refresh_family(tenant, id);
        self.counted(StoreTrait::SessionStore, call).await
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, Self::Error> {
        let call = self.inner.delete_expired_sessions(now);
        self.counted(StoreTrait::SessionStore, call).await
    }

    async fn count_live_sessions(&self, now: DateTime<Utc>) -> Result<u64, Self::Error> {
        let call = self.inner.count_live_sessions(now);
        self.counted(StoreTrait::SessionStore, call).await
    }
}
