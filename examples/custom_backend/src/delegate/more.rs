//! The remaining store traits on [`CountingStore`]: keys, policies, RBAC,
//! verification, federated links, rate limits and the audit query.

use chrono::{DateTime, Utc};
use countersign_core::{
    AuditEvent, AuditFilter, AuditQuery, AuthzVersions, FederatedStore, KeyStore, LinkedIdentity,
    PolicyDocument, PolicyStore, RateLimitDecision, RateLimitStore, RbacChange, RbacKind,
    RbacLookup, RbacName, RbacSnapshot, RbacStore, RoleGrant, SigningKeyRecord, TenantId, User,
    UserId, Verification, VerificationPurpose, VerificationStore,
};

use crate::{CountingStore, StoreTrait};

impl<S: KeyStore> KeyStore for CountingStore<S> {
    type Error = <S as KeyStore>::Error;

    async fn signing_keys(&self, tenant: TenantId) -> Result<Vec<SigningKeyRecord>, Self::Error> {
        let call = self.inner.signing_keys(tenant);
        self.counted(StoreTrait::KeyStore, call).await
    }

    async fn rotate_signing_key(
        &self,
        key: &SigningKeyRecord,
        verify_until: DateTime<Utc>,
    ) -> Result<(), Self::Error> {
        let call = self.inner.rotate_signing_key(key, verify_until);
        self.counted(StoreTrait::KeyStore, call).await
    }

    async fn delete_expired_signing_keys(&self, now: DateTime<Utc>) -> Result<u64, Self::Error> {
        let call = self.inner.delete_expired_signing_keys(now);
        self.counted(StoreTrait::KeyStore, call).await
    }
}

impl<S: PolicyStore> PolicyStore for CountingStore<S> {
    type Error = <S as PolicyStore>::Error;

    async fn policy_document(
        &self,
        tenant: TenantId,
    ) -> Result<Option<PolicyDocument>, Self::Error> {
        let call = self.inner.policy_document(tenant);
        self.counted(StoreTrait::PolicyStore, call).await
    }

    async fn compare_and_save_policy_document(
        &self,
        doc: &PolicyDocument,
        expected: Option<u64>,
        event: Option<&AuditEvent>,
    ) -> Result<bool, Self::Error> {
        let call = self
            .inner
            .compare_and_save_policy_document(doc, expected, event);
        self.counted(StoreTrait::PolicyStore, call).await
    }
}

impl<S: RbacLookup> RbacLookup for CountingStore<S> {
    type Error = <S as RbacLookup>::Error;

    async fn authz_versions(&self, tenant: TenantId) -> Result<AuthzVersions, Self::Error> {
        let call = self.inner.authz_versions(tenant);
        self.counted(StoreTrait::RbacLookup, call).await
    }

    async fn rbac_snapshot(&self, tenant: TenantId) -> Result<RbacSnapshot, Self::Error> {
        let call = self.inner.rbac_snapshot(tenant);
        self.counted(StoreTrait::RbacLookup, call).await
    }

    async fn rbac_names(
        &self,
        tenant: TenantId,
        kind: RbacKind,
    ) -> Result<Vec<RbacName>, Self::Error> {
        let call = self.inner.rbac_names(tenant, kind);
        self.counted(StoreTrait::RbacLookup, call).await
    }

    async fn role_permissions(
        &self,
        tenant: TenantId,
        role: &RbacName,
    ) -> Result<Vec<RoleGrant>, Self::Error> {
        let call = self.inner.role_permissions(tenant, role);
        self.counted(StoreTrait::RbacLookup, call).await
    }

    async fn service_roles(
        &self,
        tenant: TenantId,
        service: &RbacName,
    ) -> Result<Vec<RbacName>, Self::Error> {
        let call = self.inner.service_roles(tenant, service);
        self.counted(StoreTrait::RbacLookup, call).await
    }

    async fn user_roles(
        &self,
        tenant: TenantId,
        user: UserId,
        service: &RbacName,
    ) -> Result<Vec<RbacName>, Self::Error> {
        let call = self.inner.user_roles(tenant, user, service);
        self.counted(StoreTrait::RbacLookup, call).await
    }

    async fn user_permissions(
        &self,
        tenant: TenantId,
        user: UserId,
        service: &RbacName,
    ) -> Result<Vec<RbacName>, Self::Error> {
        let call = self.inner.user_permissions(tenant, user, service);
        self.counted(StoreTrait::RbacLookup, call).await
    }

    async fn role_holders(
        &self,
        tenant: TenantId,
        role: &RbacName,
        service: &RbacName,
    ) -> Result<Vec<UserId>, Self::Error> {
        let call = self.inner.role_holders(tenant, role, service);
        self.counted(StoreTrait::RbacLookup, call).await
    }

    async fn user_services(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Vec<RbacName>, Self::Error> {
        let call = self.inner.user_services(tenant, user);
        self.counted(StoreTrait::RbacLookup, call).await
    }
}

impl<S: RbacStore> RbacStore for CountingStore<S> {
    async fn apply_rbac_change(
        &self,
        tenant: TenantId,
        change: &RbacChange,
        event: Option<&AuditEvent>,
    ) -> Result<u64, Self::Error> {
        let call = self.inner.apply_rbac_change(tenant, change, event);
        self.counted(StoreTrait::RbacStore, call).await
    }
}

impl<S: VerificationStore> VerificationStore for CountingStore<S> {
    type Error = <S as VerificationStore>::Error;

    async fn save_verification(
        &self,
        v: &Verification,
        expected_sends: Option<u32>,
    ) -> Result<bool, Self::Error> {
        let call = self.inner.save_verification(v, expected_sends);
        self.counted(StoreTrait::VerificationStore, call).await
    }

    async fn verification(
        &self,
        tenant: TenantId,
        user: UserId,
        purpose: VerificationPurpose,
    ) -> Result<Option<Verification>, Self::Error> {
        let call = self.inner.verification(tenant, user, purpose);
        self.counted(StoreTrait::VerificationStore, call).await
    }

    async fn find_verification(
        &self,
        tenant: TenantId,
        purpose: VerificationPurpose,
        secret_hash: &str,
    ) -> Result<Option<Verification>, Self::Error> {
        let call = self.inner.find_verification(tenant, purpose, secret_hash);
        self.counted(StoreTrait::VerificationStore, call).await
    }

    async fn record_verification_failure(
        &self,
        tenant: TenantId,
        user: UserId,
        purpose: VerificationPurpose,
    ) -> Result<Option<u32>, Self::Error> {
        let call = self
            .inner
            .record_verification_failure(tenant, user, purpose);
        self.counted(StoreTrait::VerificationStore, call).await
    }

    async fn consume_verification(
        &self,
        tenant: TenantId,
        user: UserId,
        purpose: VerificationPurpose,
        secret_hash: &str,
        max_failures: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<Verification>, Self::Error> {
        let call =
            self.inner
                .consume_verification(tenant, user, purpose, secret_hash, max_failures, now);
        self.counted(StoreTrait::VerificationStore, call).await
    }

    async fn delete_verifications(
        &self,
        tenant: TenantId,
        user: UserId,
        purpose: Option<VerificationPurpose>,
    ) -> Result<u64, Self::Error> {
        let call = self.inner.delete_verifications(tenant, user, purpose);
        self.counted(StoreTrait::VerificationStore, call).await
    }

    async fn delete_expired_verifications(&self, now: DateTime<Utc>) -> Result<u64, Self::Error> {
        let call = self.inner.delete_expired_verifications(now);
        self.counted(StoreTrait::VerificationStore, call).await
    }
}

impl<S: FederatedStore> FederatedStore for CountingStore<S> {
    type Error = <S as FederatedStore>::Error;

    async fn find_linked_identity(
        &self,
        tenant: TenantId,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<LinkedIdentity>, Self::Error> {
        let call = self.inner.find_linked_identity(tenant, issuer, subject);
        self.counted(StoreTrait::FederatedStore, call).await
    }

    async fn linked_identities(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Vec<LinkedIdentity>, Self::Error> {
        let call = self.inner.linked_identities(tenant, user);
        self.counted(StoreTrait::FederatedStore, call).await
    }

    async fn link_identity(
        &self,
        identity: &LinkedIdentity,
        event: &AuditEvent,
    ) -> Result<(), Self::Error> {
        let call = self.inner.link_identity(identity, event);
        self.counted(StoreTrait::FederatedStore, call).await
    }

    async fn create_linked_user(
        &self,
        user: &User,
        identity: &LinkedIdentity,
        event: &AuditEvent,
    ) -> Result<(), Self::Error> {
        let call = self.inner.create_linked_user(user, identity, event);
        self.counted(StoreTrait::FederatedStore, call).await
    }

    async fn unlink_identity(
        &self,
        tenant: TenantId,
        user: UserId,
        issuer: &str,
        subject: &str,
    ) -> Result<bool, Self::Error> {
        let call = self.inner.unlink_identity(tenant, user, issuer, subject);
        self.counted(StoreTrait::FederatedStore, call).await
    }
}

impl<S: RateLimitStore> RateLimitStore for CountingStore<S> {
    type Error = <S as RateLimitStore>::Error;

    async fn hit(
        &self,
        key: &str,
        limit: u32,
        window: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Result<RateLimitDecision, Self::Error> {
        let call = self.inner.hit(key, limit, window, now);
        self.counted(StoreTrait::RateLimitStore, call).await
    }

    async fn reset_rate_limit(&self, key: &str) -> Result<bool, Self::Error> {
        let call = self.inner.reset_rate_limit(key);
        self.counted(StoreTrait::RateLimitStore, call).await
    }

    async fn delete_expired_rate_limits(&self, before: DateTime<Utc>) -> Result<u64, Self::Error> {
        let call = self.inner.delete_expired_rate_limits(before);
        self.counted(StoreTrait::RateLimitStore, call).await
    }
}

impl<S: AuditQuery> AuditQuery for CountingStore<S> {
    type Error = <S as AuditQuery>::Error;

    async fn query_events(
        &self,
        tenant: TenantId,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEvent>, Self::Error> {
        let call = self.inner.query_events(tenant, filter);
        self.counted(StoreTrait::AuditQuery, call).await
    }
}
