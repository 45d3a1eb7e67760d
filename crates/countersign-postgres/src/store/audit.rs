//! `AuditQuery` in SQL. (Appending events is `IdentityAuthnLog`'s, in
//! `identity.rs`.)

use countersign_core::{AuditEvent, AuditFilter, AuditQuery, TenantId};
use sqlx::{Postgres, QueryBuilder};

use super::limit;
use crate::codec::{self, event_cols};
use crate::error::{PgError, db};
use crate::retry::Idempotence::Idempotent;
use crate::{PostgresStore, Result};

impl AuditQuery for PostgresStore {
    type Error = PgError;

    async fn query_events(
        &self,
        tenant: TenantId,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEvent>> {
        // Only the filters given become SQL, so the planner can use the
        // (tenant_id, [user_id,] at DESC, id DESC) indexes.
        let stmt = || {
            let mut q = QueryBuilder::<Postgres>::new(concat!(
                "SELECT ",
                event_cols!(),
                " FROM cs_audit_events WHERE tenant_id = "
            ));
            q.push_bind(*tenant.as_uuid());
            if let Some(u) = filter.user_id {
                q.push(" AND user_id = ").push_bind(*u.as_uuid());
            }
            if let Some(k) = filter.kind {
                q.push(" AND kind = ").push_bind(k.as_str());
            }
            if let Some(s) = filter.status {
                q.push(" AND status = ").push_bind(s.as_str());
            }
            if let Some(from) = filter.from {
                q.push(" AND at >= ").push_bind(from);
            }
            if let Some(until) = filter.until {
                q.push(" AND at < ").push_bind(until);
            }
            q.push(" ORDER BY at DESC, id DESC LIMIT ")
                .push_bind(limit(filter.effective_limit()));
            q
        };
        self.retry
            .run("query_events", Idempotent, || async {
                let rows = stmt()
                    .build()
                    .fetch_all(self.read_pool())
                    .await
                    .map_err(db("querying audit events"))?;
                rows.iter().map(codec::event).collect()
            })
            .await
    }
}
