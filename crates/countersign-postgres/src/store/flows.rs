//! `FlowStore` in SQL.
//!
//! Flows are read on the main pool: a replica may lag behind the step that
//! was just saved.

use chrono::{DateTime, Utc};
use countersign_core::{FlowRecord, FlowStore, TenantId, TokenHash, Versioned};
use sqlx::types::Json;

use super::{compare_and_save, conflict, execute, optional};
use crate::codec::{self, flow_cols};
use crate::error::{PgError, db, db_commit};
use crate::retry::Idempotence::{Idempotent, Once};
use crate::{PostgresStore, Result};

impl FlowStore for PostgresStore {
    type Error = PgError;

    async fn create_flow(&self, f: &FlowRecord) -> Result<()> {
        // One statement: insert only if the tenant (and user, in it) exist;
        // report which of the three happened.
        let stmt = || {
            sqlx::query(
                "WITH ok AS (
                     SELECT 1 FROM cs_tenants t
                      WHERE t.id = $2
                        AND ($3::uuid IS NULL OR EXISTS (
                            SELECT 1 FROM cs_users u WHERE u.tenant_id = $2 AND u.id = $3))
                 ), ins AS (
                     INSERT INTO cs_flows (key, tenant_id, user_id, state, version, created_at,
                                           expires_at)
                     SELECT $1, $2, $3, $4, 1, $5, $6 FROM ok
                     ON CONFLICT (key) DO NOTHING
                     RETURNING 1
                 )
                 SELECT EXISTS (SELECT 1 FROM ok) AS found, EXISTS (SELECT 1 FROM ins) AS saved",
            )
            .bind(f.key.to_hex())
            .bind(f.tenant_id.as_uuid())
            .bind(f.user_id.map(|u| *u.as_uuid()))
            .bind(Json(&f.state))
            .bind(f.created_at)
            .bind(f.expires_at)
        };
        self.retry
            .run("create_flow", Once, || async {
                let context = "creating a flow";
                match compare_and_save(stmt(), &self.write, context, "tenant or user").await? {
                    true => Ok(()),
                    false => Err(conflict("flow already exists")),
                }
            })
            .await
    }

    async fn flow(
        &self,
        tenant: TenantId,
        key: &TokenHash,
    ) -> Result<Option<Versioned<FlowRecord>>> {
        let stmt = || {
            sqlx::query(concat!(
                "SELECT ",
                flow_cols!(),
                " FROM cs_flows WHERE tenant_id = $1 AND key = $2"
            ))
            .bind(tenant.as_uuid())
            .bind(key.to_hex())
        };
        self.retry
            .run("flow", Idempotent, || {
                optional(stmt(), &self.write, db("reading a flow"), codec::flow)
            })
            .await
    }

    async fn compare_and_save_flow(&self, expected: u64, f: &FlowRecord) -> Result<bool> {
        let stmt = || {
            sqlx::query(
                "WITH ok AS (
                     SELECT 1 WHERE $4::uuid IS NULL OR EXISTS (
                         SELECT 1 FROM cs_users u WHERE u.tenant_id = $2 AND u.id = $4)
                 ), upd AS (
                     UPDATE cs_flows
                        SET state = $3, user_id = $4, expires_at = $5, version = version + 1
                      WHERE key = $1 AND tenant_id = $2 AND version = $6
                        AND EXISTS (SELECT 1 FROM ok)
                     RETURNING 1
                 )
                 SELECT EXISTS (SELECT 1 FROM ok) AS found, EXISTS (SELECT 1 FROM upd) AS saved",
            )
            .bind(f.key.to_hex())
            .bind(f.tenant_id.as_uuid())
            .bind(Json(&f.state))
            .bind(f.user_id.map(|u| *u.as_uuid()))
            .bind(f.expires_at)
            .bind(codec::version(expected))
        };
        self.retry
            .run("compare_and_save_flow", Once, || {
                compare_and_save(stmt(), &self.write, "saving a flow", "user")
            })
            .await
    }

    async fn delete_flow(&self, tenant: TenantId, key: &TokenHash) -> Result<bool> {
        let stmt = || {
            sqlx::query("DELETE FROM cs_flows WHERE tenant_id = $1 AND key = $2")
                .bind(tenant.as_uuid())
                .bind(key.to_hex())
        };
        self.retry
            .run("delete_flow", Once, || async {
                Ok(execute(stmt(), &self.write, db_commit("deleting a flow")).await? == 1)
            })
            .await
    }

    async fn delete_expired_flows(&self, now: DateTime<Utc>) -> Result<u64> {
        // Idempotent: a second run deletes what is left, which is the point.
        let stmt = || sqlx::query("DELETE FROM cs_flows WHERE expires_at <= $1").bind(now);
        self.retry
            .run("delete_expired_flows", Idempotent, || {
                execute(stmt(), &self.write, db_commit("deleting expired flows"))
            })
            .await
    }
}
