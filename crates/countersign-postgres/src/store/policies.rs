//! `PolicyStore` in SQL.
//!
//! Documents are read on the main pool: a replica lagging behind a save
//! would authorize with the previous policies.

use countersign_core::{AuditEvent, PolicyDocument, PolicyStore, TenantId};

use super::compare_and_save;
use crate::codec::{self, policy_cols};
use crate::error::PgError;
use crate::retry::Idempotence::Once;
use crate::{PostgresStore, Result};

impl PolicyStore for PostgresStore {
    type Error = PgError;

    async fn policy_document(&self, tenant: TenantId) -> Result<Option<PolicyDocument>> {
        let stmt = || {
            sqlx::query(concat!(
                "SELECT ",
                policy_cols!(),
                " FROM cs_policy_documents WHERE tenant_id = $1"
            ))
            .bind(tenant.as_uuid())
        };
        self.lookup(
            "policy_document",
            "reading a policy document",
            stmt,
            codec::policy_document,
        )
        .await
    }

    async fn compare_and_save_policy_document(
        &self,
        doc: &PolicyDocument,
        expected: Option<u64>,
        event: Option<&AuditEvent>,
    ) -> Result<bool> {
        let links = serde_json::to_string(&doc.links)
            .map_err(|e| PgError::corrupt("cs_policy_documents", format!("column links: {e}")))?;
        // One statement each way, reporting whether the tenant exists and
        // whether the document was saved. The insert waits on a concurrent
        // one for the same tenant and then does nothing; the update re-checks
        // `version = $5` against the newest row version.
        let stmt = || match expected {
            None => sqlx::query(
                "WITH t AS (
                     SELECT id FROM cs_tenants WHERE id = $1
                 ), saved AS (
                     INSERT INTO cs_policy_documents (tenant_id, schema, policies, version,
                                                      updated_at, links)
                     SELECT id, $2, $3, 1, $4, $5 FROM t
                     ON CONFLICT (tenant_id) DO NOTHING
                     RETURNING 1
                 )
                 SELECT EXISTS (SELECT 1 FROM t) AS found, EXISTS (SELECT 1 FROM saved) AS saved",
            )
            .bind(doc.tenant_id.as_uuid())
            .bind(doc.schema.as_str())
            .bind(doc.policies.as_str())
            .bind(doc.updated_at)
            .bind(links.as_str()),
            Some(v) => sqlx::query(
                "WITH t AS (
                     SELECT 1 FROM cs_tenants WHERE id = $1
                 ), saved AS (
                     UPDATE cs_policy_documents
                        SET schema = $2, policies = $3, version = version + 1, updated_at = $4,
                            links = $6
                      WHERE tenant_id = $1 AND version = $5
                     RETURNING 1
                 )
                 SELECT EXISTS (SELECT 1 FROM t) AS found, EXISTS (SELECT 1 FROM saved) AS saved",
            )
            .bind(doc.tenant_id.as_uuid())
            .bind(doc.schema.as_str())
            .bind(doc.policies.as_str())
            .bind(doc.updated_at)
            .bind(codec::version(v))
            .bind(links.as_str()),
        };
        self.retry
            .run("compare_and_save_policy_document", Once, || async {
                let Some(event) = event else {
                    let mut conn = self.conn().await?;
                    let context = "saving a policy document";
                    return compare_and_save(stmt(), &mut *conn, context, "tenant").await;
                };
                // With its audit event: one transaction.
                let mut tx = self.begin().await?;
                let context = "saving a policy document";
                if !compare_and_save(stmt(), &mut *tx, context, "tenant").await? {
                    return Ok(false);
                }
                let clash = crate::error::unique_violation(
                    crate::error::Phase::Uncommitted,
                    "recording a policy change",
                    "audit event already exists",
                );
                super::execute(super::identity::event_insert(event, false), &mut *tx, clash)
                    .await?;
                super::commit(tx, "committing a policy document").await?;
                Ok(true)
            })
            .await
    }
}
