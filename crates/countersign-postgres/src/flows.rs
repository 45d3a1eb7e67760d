//! `FlowStore` in SQL.

use chrono::{DateTime, Utc};
use countersign_core::{
    FlowRecord, FlowStore, StoreErrorKind, TenantId, TokenHash, UserId, Versioned,
};
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;

use crate::error::{PgError, db, db_commit};
use crate::{PostgresStore, Result};

fn read_flow(row: &PgRow) -> Result<Versioned<FlowRecord>> {
    let bad = |e: sqlx::Error| PgError::corrupt("cs_flows", e);
    let key: String = row.try_get("key").map_err(bad)?;
    let Json(state) = row.try_get("state").map_err(bad)?;
    let version: i64 = row.try_get("version").map_err(bad)?;
    Ok(Versioned {
        value: FlowRecord {
            key: TokenHash::from_hex(&key)
                .ok_or_else(|| PgError::corrupt("cs_flows", "bad key"))?,
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id").map_err(bad)?),
            user_id: row
                .try_get::<Option<uuid::Uuid>, _>("user_id")
                .map_err(bad)?
                .map(UserId::from_uuid),
            state,
            created_at: row.try_get("created_at").map_err(bad)?,
            expires_at: row.try_get("expires_at").map_err(bad)?,
        },
        version: u64::try_from(version)
            .map_err(|_| PgError::corrupt("cs_flows", "negative version"))?,
    })
}

impl PostgresStore {
    async fn create_flow_once(&self, f: &FlowRecord) -> Result<()> {
        // One statement: insert only if the tenant (and user, in it) exist;
        // report which of the three happened.
        let row = sqlx::query(
            "WITH ok AS (
                 SELECT 1 FROM cs_tenants t
                  WHERE t.id = $2
                    AND ($3::uuid IS NULL OR EXISTS (
                        SELECT 1 FROM cs_users u WHERE u.tenant_id = $2 AND u.id = $3))
             ), ins AS (
                 INSERT INTO cs_flows (key, tenant_id, user_id, state, version, created_at, expires_at)
                 SELECT $1, $2, $3, $4, 1, $5, $6 FROM ok
                 ON CONFLICT (key) DO NOTHING
                 RETURNING 1
             )
             SELECT EXISTS (SELECT 1 FROM ok) AS found, EXISTS (SELECT 1 FROM ins) AS inserted",
        )
        .bind(f.key.to_hex())
        .bind(f.tenant_id.as_uuid())
        .bind(f.user_id.map(|u| *u.as_uuid()))
        .bind(Json(&f.state))
        .bind(f.created_at)
        .bind(f.expires_at)
        .fetch_one(&self.write)
        .await
        .map_err(db_commit("creating a flow"))?;
        let found: bool = row.try_get("found").map_err(db("creating a flow"))?;
        let inserted: bool = row.try_get("inserted").map_err(db("creating a flow"))?;
        match (found, inserted) {
            (false, _) => Err(PgError::not_found("tenant or user")),
            (true, false) => Err(PgError::refused(
                StoreErrorKind::Conflict,
                "flow already exists",
            )),
            (true, true) => Ok(()),
        }
    }

    async fn flow_once(
        &self,
        tenant: TenantId,
        key: &TokenHash,
    ) -> Result<Option<Versioned<FlowRecord>>> {
        // Flows are read on the write pool: a replica may lag behind the
        // step that was just saved.
        let row = sqlx::query(
            "SELECT key, tenant_id, user_id, state, version, created_at, expires_at
               FROM cs_flows WHERE tenant_id = $1 AND key = $2",
        )
        .bind(tenant.as_uuid())
        .bind(key.to_hex())
        .fetch_optional(&self.write)
        .await
        .map_err(db("reading a flow"))?;
        row.as_ref().map(read_flow).transpose()
    }

    async fn save_flow_once(&self, expected: u64, f: &FlowRecord) -> Result<bool> {
        let row = sqlx::query(
            "WITH ok AS (
                 SELECT 1 WHERE $4::uuid IS NULL OR EXISTS (
                     SELECT 1 FROM cs_users u WHERE u.tenant_id = $2 AND u.id = $4)
             ), upd AS (
                 UPDATE cs_flows SET state = $3, user_id = $4, expires_at = $5, version = version + 1
                  WHERE key = $1 AND tenant_id = $2 AND version = $6 AND EXISTS (SELECT 1 FROM ok)
                 RETURNING 1
             )
             SELECT EXISTS (SELECT 1 FROM ok) AS user_ok, EXISTS (SELECT 1 FROM upd) AS saved",
        )
        .bind(f.key.to_hex())
        .bind(f.tenant_id.as_uuid())
        .bind(Json(&f.state))
        .bind(f.user_id.map(|u| *u.as_uuid()))
        .bind(f.expires_at)
        .bind(i64::try_from(expected).unwrap_or(-1))
        .fetch_one(&self.write)
        .await
        .map_err(db_commit("saving a flow"))?;
        let user_ok: bool = row.try_get("user_ok").map_err(db("saving a flow"))?;
        let saved: bool = row.try_get("saved").map_err(db("saving a flow"))?;
        if !user_ok {
            return Err(PgError::not_found("user"));
        }
        Ok(saved)
    }

    async fn delete_flow_once(&self, tenant: TenantId, key: &TokenHash) -> Result<bool> {
        let done = sqlx::query("DELETE FROM cs_flows WHERE tenant_id = $1 AND key = $2")
            .bind(tenant.as_uuid())
            .bind(key.to_hex())
            .execute(&self.write)
            .await
            .map_err(db_commit("deleting a flow"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_expired_flows_once(&self, now: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM cs_flows WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.write)
            .await
            .map_err(db_commit("deleting expired flows"))?;
        Ok(done.rows_affected())
    }
}

impl FlowStore for PostgresStore {
    type Error = PgError;

    async fn create_flow(&self, flow: &FlowRecord) -> Result<()> {
        self.retry
            .run("create_flow", false, || self.create_flow_once(flow))
            .await
    }

    async fn flow(
        &self,
        tenant: TenantId,
        key: &TokenHash,
    ) -> Result<Option<Versioned<FlowRecord>>> {
        self.retry
            .run("flow", true, || self.flow_once(tenant, key))
            .await
    }

    async fn compare_and_save_flow(&self, expected: u64, flow: &FlowRecord) -> Result<bool> {
        self.retry
            .run("compare_and_save_flow", false, || {
                self.save_flow_once(expected, flow)
            })
            .await
    }

    async fn delete_flow(&self, tenant: TenantId, key: &TokenHash) -> Result<bool> {
        self.retry
            .run("delete_flow", false, || self.delete_flow_once(tenant, key))
            .await
    }

    async fn delete_expired_flows(&self, now: DateTime<Utc>) -> Result<u64> {
        // Idempotent: a second run deletes what is left, which is the point.
        self.retry
            .run("delete_expired_flows", true, || {
                self.delete_expired_flows_once(now)
            })
            .await
    }
}
