//! `KeyStore` in memory: per-tenant signing keys.

use chrono::{DateTime, Utc};
use countersign_core::{KeyStore, MethodScope, SigningKeyRecord, TenantId};

use crate::error::{MemoryError, Result, unique_violation};
use crate::{MemoryStore, StoreMethod};

impl KeyStore for MemoryStore {
    type Error = MemoryError;

    async fn signing_keys(&self, tenant: TenantId) -> Result<Vec<SigningKeyRecord>> {
        let st = self.begin(StoreMethod::SigningKeys)?;
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
        let mut st = self.begin(StoreMethod::RotateSigningKey)?;
        st.require_scope(MethodScope::Tenant(key.tenant_id))?;
        if st
            .signing_keys
            .iter()
            .any(|k| k.tenant_id == key.tenant_id && k.kid == key.kid)
        {
            return Err(unique_violation("kid"));
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
        let mut st = self.begin(StoreMethod::DeleteExpiredSigningKeys)?;
        let before = st.signing_keys.len();
        st.signing_keys
            .retain(|k| k.verify_until.is_none_or(|u| u > now));
        Ok((before - st.signing_keys.len()) as u64)
    }
}
