//! `FlowStore` in SQLite: flows under the hash of their token, saved by
//! compare-and-save on a version column.

use chrono::{DateTime, Utc};
use countersign_core::{FlowRecord, FlowStore, TenantId, TokenHash, Versioned};
use rusqlite::params;

use super::{require_tenant, require_user};
use crate::codec::{FLOW_COLS, id, json, micros, read_flow, version_param};
use crate::{Result, SqliteError, SqliteStore};

impl FlowStore for SqliteStore {
    type Error = SqliteError;

    async fn create_flow(&self, flow: &FlowRecord) -> Result<()> {
        let f = flow.clone();
        let state = json(&flow.state)?;
        self.call(move |c| {
            let t = id(f.tenant_id.as_uuid());
            let u = f.user_id.map(|u| id(u.as_uuid()));
            require_tenant(c, &t)?;
            if let Some(u) = &u {
                require_user(c, &t, u)?;
            }
            c.prepare_cached(&format!(
                "INSERT INTO cs_flows ({FLOW_COLS}) VALUES (?1, 1, ?2, ?3, ?4, ?5, ?6)"
            ))?
            .execute(params![
                state,
                f.key.to_hex(),
                t,
                u,
                micros(f.created_at),
                micros(f.expires_at)
            ])?;
            Ok(())
        })
        .await
    }

    async fn flow(
        &self,
        tenant: TenantId,
        key: &TokenHash,
    ) -> Result<Option<Versioned<FlowRecord>>> {
        self.read_optional(
            format!("SELECT {FLOW_COLS} FROM cs_flows WHERE tenant_id = ?1 AND key = ?2"),
            [id(tenant.as_uuid()), key.to_hex()],
            read_flow,
        )
        .await
    }

    async fn compare_and_save_flow(&self, expected: u64, flow: &FlowRecord) -> Result<bool> {
        let f = flow.clone();
        let state = json(&flow.state)?;
        let expected = version_param(expected)?;
        self.call(move |c| {
            let t = id(f.tenant_id.as_uuid());
            let u = f.user_id.map(|u| id(u.as_uuid()));
            if let Some(u) = &u {
                require_user(c, &t, u)?;
            }
            let n = c
                .prepare_cached(
                    "UPDATE cs_flows SET state = ?1, version = version + 1, user_id = ?4, expires_at = ?5
                     WHERE tenant_id = ?2 AND key = ?3 AND version = ?6",
                )?
                .execute(params![state, t, f.key.to_hex(), u, micros(f.expires_at), expected])?;
            Ok(n == 1)
        })
        .await
    }

    async fn delete_flow(&self, tenant: TenantId, key: &TokenHash) -> Result<bool> {
        let n = self
            .execute(
                "DELETE FROM cs_flows WHERE tenant_id = ?1 AND key = ?2",
                [id(tenant.as_uuid()), key.to_hex()],
            )
            .await?;
        Ok(n == 1)
    }

    async fn delete_expired_flows(&self, now: DateTime<Utc>) -> Result<u64> {
        let n = self
            .execute("DELETE FROM cs_flows WHERE expires_at <= ?1", [micros(now)])
            .await?;
        Ok(n as u64)
    }
}
