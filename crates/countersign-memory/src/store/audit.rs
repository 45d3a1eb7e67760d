//! `AuditQuery` in memory.

use countersign_core::{AuditEvent, AuditFilter, AuditQuery, TenantId};

use crate::error::{MemoryError, Result};
use crate::{MemoryStore, StoreMethod};

impl AuditQuery for MemoryStore {
    type Error = MemoryError;

    async fn query_events(
        &self,
        tenant: TenantId,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEvent>> {
        let st = self.begin(StoreMethod::QueryEvents)?;
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
