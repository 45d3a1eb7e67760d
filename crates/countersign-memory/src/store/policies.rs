//! `PolicyStore` in memory: each tenant's versioned policy document.

use countersign_core::{AuditEvent, MethodScope, PolicyDocument, PolicyStore, TenantId};

use crate::error::{MemoryError, Result, unique_violation};
use crate::state::next_version;
use crate::{MemoryStore, StoreMethod};

impl PolicyStore for MemoryStore {
    type Error = MemoryError;

    async fn policy_document(&self, tenant: TenantId) -> Result<Option<PolicyDocument>> {
        Ok(self
            .begin(StoreMethod::PolicyDocument)?
            .policies
            .get(&tenant)
            .cloned())
    }

    async fn compare_and_save_policy_document(
        &self,
        doc: &PolicyDocument,
        expected: Option<u64>,
        event: Option<&AuditEvent>,
    ) -> Result<bool> {
        let mut st = self.begin(StoreMethod::CompareAndSavePolicyDocument)?;
        st.require_scope(MethodScope::Tenant(doc.tenant_id))?;
        let current = st.policies.get(&doc.tenant_id).map(|d| d.version);
        let Some(version) = next_version(current, expected) else {
            return Ok(false);
        };
        // Every check before the first write: all or nothing.
        if let Some(e) = event {
            if st.event_ids.contains(&e.id) {
                return Err(unique_violation("audit event"));
            }
            st.event_ids.insert(e.id);
            st.events.push(e.clone());
        }
        let saved = PolicyDocument {
            version,
            ..doc.clone()
        };
        st.policies.insert(doc.tenant_id, saved);
        Ok(true)
    }
}
