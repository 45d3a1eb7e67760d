//! `KeyStore` in SQLite: per-tenant signing keys, rotated in one
//! `IMMEDIATE` transaction.

use chrono::{DateTime, Utc};
use countersign_core::{KeyStore, SigningKeyRecord, TenantId};
use rusqlite::{TransactionBehavior, params};

use super::require_tenant;
use crate::codec::{KEY_COLS, id, micros, read_key};
use crate::{Result, SqliteError, SqliteStore};

impl KeyStore for SqliteStore {
    type Error = SqliteError;

    async fn signing_keys(&self, tenant: TenantId) -> Result<Vec<SigningKeyRecord>> {
        self.fetch_all(
            format!(
                "SELECT {KEY_COLS} FROM cs_signing_keys WHERE tenant_id = ?1 ORDER BY created_at, kid"
            ),
            [id(tenant.as_uuid())],
            read_key,
        )
        .await
    }

    async fn rotate_signing_key(
        &self,
        key: &SigningKeyRecord,
        verify_until: DateTime<Utc>,
    ) -> Result<()> {
        let k = key.clone();
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let t = id(k.tenant_id.as_uuid());
            require_tenant(&tx, &t)?;
            tx.execute(
                "UPDATE cs_signing_keys SET retired_at = ?2, verify_until = ?3 WHERE tenant_id = ?1 AND retired_at IS NULL",
                params![t, micros(k.created_at), micros(verify_until)],
            )?;
            // A taken kid fails the insert; the transaction then rolls back
            // unwritten, retirements included.
            tx.execute(
                &format!("INSERT INTO cs_signing_keys ({KEY_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                params![
                    t,
                    k.kid,
                    k.private_key,
                    k.public_key,
                    micros(k.created_at),
                    k.retired_at.map(micros),
                    k.verify_until.map(micros),
                    k.algorithm.as_str()
                ],
            )
            .map_err(SqliteError::from)
            .map_err(|e| {
                if e.unique_violation() {
                    SqliteError::Conflict("kid already exists")
                } else {
                    e
                }
            })?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn delete_expired_signing_keys(&self, now: DateTime<Utc>) -> Result<u64> {
        let n = self
            .execute(
                "DELETE FROM cs_signing_keys WHERE verify_until IS NOT NULL AND verify_until <= ?1",
                [micros(now)],
            )
            .await?;
        Ok(n as u64)
    }
}
