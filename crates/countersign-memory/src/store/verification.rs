//! `VerificationStore` in memory: pending one-time proofs, at most one per
//! (tenant, user, purpose). Each method runs under the state's one lock, so
//! compare-and-save, failure counting and consumption are exact under any
//! concurrency.

use chrono::{DateTime, Utc};
use countersign_core::{TenantId, UserId, Verification, VerificationPurpose, VerificationStore};

use crate::error::{MemoryError, Result};
use crate::{MemoryStore, StoreMethod};

impl VerificationStore for MemoryStore {
    type Error = MemoryError;

    async fn save_verification(
        &self,
        v: &Verification,
        expected_sends: Option<u32>,
    ) -> Result<bool> {
        let mut st = self.begin(StoreMethod::SaveVerification)?;
        st.require_user(v.tenant_id, v.user_id)?;
        let key = (v.tenant_id, v.user_id, v.purpose);
        if st.verifications.get(&key).map(|c| c.sends) != expected_sends {
            return Ok(false);
        }
        st.verifications.insert(key, v.clone());
        Ok(true)
    }

    async fn verification(
        &self,
        tenant: TenantId,
        user: UserId,
        purpose: VerificationPurpose,
    ) -> Result<Option<Verification>> {
        let st = self.begin(StoreMethod::Verification)?;
        Ok(st.verifications.get(&(tenant, user, purpose)).cloned())
    }

    async fn find_verification(
        &self,
        tenant: TenantId,
        purpose: VerificationPurpose,
        secret_hash: &str,
    ) -> Result<Option<Verification>> {
        let st = self.begin(StoreMethod::FindVerification)?;
        // Of several with one hash (never, for real secrets), the lowest
        // user id, as the SQL backends order them.
        Ok(st
            .verifications
            .values()
            .filter(|v| v.tenant_id == tenant && v.purpose == purpose)
            .filter(|v| v.secret_hash == secret_hash)
            .min_by_key(|v| v.user_id)
            .cloned())
    }

    async fn record_verification_failure(
        &self,
        tenant: TenantId,
        user: UserId,
        purpose: VerificationPurpose,
    ) -> Result<Option<u32>> {
        let mut st = self.begin(StoreMethod::RecordVerificationFailure)?;
        Ok(st.verifications.get_mut(&(tenant, user, purpose)).map(|v| {
            v.failures = v.failures.saturating_add(1);
            v.failures
        }))
    }

    async fn consume_verification(
        &self,
        tenant: TenantId,
        user: UserId,
        purpose: VerificationPurpose,
        secret_hash: &str,
        max_failures: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<Verification>> {
        let mut st = self.begin(StoreMethod::ConsumeVerification)?;
        let key = (tenant, user, purpose);
        let usable = st.verifications.get(&key).is_some_and(|v| {
            v.secret_hash == secret_hash && now < v.expires_at && v.failures < max_failures
        });
        Ok(if usable {
            st.verifications.remove(&key)
        } else {
            None
        })
    }

    async fn delete_verifications(
        &self,
        tenant: TenantId,
        user: UserId,
        purpose: Option<VerificationPurpose>,
    ) -> Result<u64> {
        let mut st = self.begin(StoreMethod::DeleteVerifications)?;
        let before = st.verifications.len();
        st.verifications.retain(|(t, u, p), _| {
            !(*t == tenant && *u == user && purpose.is_none_or(|want| want == *p))
        });
        Ok((before - st.verifications.len()) as u64)
    }

    async fn delete_expired_verifications(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut st = self.begin(StoreMethod::DeleteExpiredVerifications)?;
        let before = st.verifications.len();
        st.verifications.retain(|_, v| v.expires_at > now);
        Ok((before - st.verifications.len()) as u64)
    }
}
