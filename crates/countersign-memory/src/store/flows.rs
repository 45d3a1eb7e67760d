//! `FlowStore` in memory: flows under the hash of their token, versioned.

use chrono::{DateTime, Utc};
use countersign_core::{FlowRecord, FlowStore, MethodScope, TenantId, TokenHash, Versioned};

use crate::error::{MemoryError, Result, unique_violation};
use crate::state::next_version;
use crate::{MemoryStore, StoreMethod};

impl FlowStore for MemoryStore {
    type Error = MemoryError;

    async fn create_flow(&self, flow: &FlowRecord) -> Result<()> {
        let mut st = self.begin(StoreMethod::CreateFlow)?;
        match flow.user_id {
            Some(u) => st.require_user(flow.tenant_id, u)?,
            None => st.require_scope(MethodScope::Tenant(flow.tenant_id))?,
        }
        if st.flows.contains_key(&flow.key) {
            return Err(unique_violation("flow"));
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
        let st = self.begin(StoreMethod::Flow)?;
        Ok(st
            .flows
            .get(key)
            .filter(|f| f.value.tenant_id == tenant)
            .cloned())
    }

    async fn compare_and_save_flow(&self, expected: u64, flow: &FlowRecord) -> Result<bool> {
        let mut st = self.begin(StoreMethod::CompareAndSaveFlow)?;
        if let Some(u) = flow.user_id {
            st.require_user(flow.tenant_id, u)?;
        }
        let current = st
            .flows
            .get(&flow.key)
            .filter(|f| f.value.tenant_id == flow.tenant_id)
            .map(|f| f.version);
        let Some(version) = next_version(current, Some(expected)) else {
            return Ok(false);
        };
        let value = flow.clone();
        st.flows.insert(flow.key, Versioned { value, version });
        Ok(true)
    }

    async fn delete_flow(&self, tenant: TenantId, key: &TokenHash) -> Result<bool> {
        let mut st = self.begin(StoreMethod::DeleteFlow)?;
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
        let mut st = self.begin(StoreMethod::DeleteExpiredFlows)?;
        let before = st.flows.len();
        st.flows.retain(|_, f| f.value.expires_at > now);
        Ok((before - st.flows.len()) as u64)
    }
}
