//! `PolicyStore` in SQLite: one authorization document per tenant, saved
//! by compare-and-save on a version column.

use countersign_core::{AuditEvent, PolicyDocument, PolicyStore, TenantId};
use rusqlite::{TransactionBehavior, params};

use super::require_tenant;
use crate::codec::{POLICY_COLS, id, links_json, micros, read_policy, version_param};
use crate::{Result, SqliteError, SqliteStore};

impl PolicyStore for SqliteStore {
    type Error = SqliteError;

    async fn policy_document(&self, tenant: TenantId) -> Result<Option<PolicyDocument>> {
        self.fetch_optional(
            format!("SELECT {POLICY_COLS} FROM cs_policy_documents WHERE tenant_id = ?1"),
            [id(tenant.as_uuid())],
            read_policy,
        )
        .await
    }

    async fn compare_and_save_policy_document(
        &self,
        doc: &PolicyDocument,
        expected: Option<u64>,
        event: Option<&AuditEvent>,
    ) -> Result<bool> {
        let e = event.cloned();
        let t = id(doc.tenant_id.as_uuid());
        let (schema, policies) = (doc.schema.clone(), doc.policies.clone());
        let links = links_json(doc)?;
        let at = micros(doc.updated_at);
        let expected = expected.map(version_param).transpose()?;
        self.call(move |c| {
            // The save and its audit event commit together.
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let n = match expected {
                None => tx
                    .prepare_cached(
                        "INSERT INTO cs_policy_documents (tenant_id, schema, policies, version, updated_at, links)
                         SELECT ?1, ?2, ?3, 1, ?4, ?5
                         WHERE EXISTS (SELECT 1 FROM cs_tenants WHERE id = ?1)
                         ON CONFLICT (tenant_id) DO NOTHING",
                    )?
                    .execute(params![t, schema, policies, at, links])?,
                Some(v) => tx
                    .prepare_cached(
                        "UPDATE cs_policy_documents
                         SET schema = ?2, policies = ?3, version = version + 1, updated_at = ?4,
                             links = ?6
                         WHERE tenant_id = ?1 AND version = ?5",
                    )?
                    .execute(params![t, schema, policies, at, v, links])?,
            };
            if n == 0 {
                require_tenant(&tx, &t)?;
                return Ok(false);
            }
            if let Some(e) = &e {
                super::identity::insert_event(&tx, e)?;
            }
            tx.commit()?;
            Ok(true)
        })
        .await
    }
}
