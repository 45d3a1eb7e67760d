//! `KeyStore` in SQL.
//!
//! Keys are read on the main pool: a replica lagging behind a rotation
//! would not know the new key, and tokens it signed would not verify.

use chrono::{DateTime, Utc};
use countersign_core::{KeyStore, SigningKeyRecord, StoreErrorKind, TenantId};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::error::{PgError, db, db_commit};
use crate::{PostgresStore, Result};

fn read_key(row: &PgRow) -> Result<SigningKeyRecord> {
    let bad = |e: sqlx::Error| PgError::corrupt("cs_signing_keys", e);
    Ok(SigningKeyRecord {
        tenant_id: TenantId::from_uuid(row.try_get("tenant_id").map_err(bad)?),
        kid: row.try_get("kid").map_err(bad)?,
        private_key: row.try_get("private_key").map_err(bad)?,
        public_key: row.try_get("public_key").map_err(bad)?,
        created_at: row.try_get("created_at").map_err(bad)?,
        retired_at: row.try_get("retired_at").map_err(bad)?,
        verify_until: row.try_get("verify_until").map_err(bad)?,
    })
}

impl PostgresStore {
    async fn signing_keys_once(&self, tenant: TenantId) -> Result<Vec<SigningKeyRecord>> {
        let rows = sqlx::query(
            r#"SELECT tenant_id, kid, private_key, public_key, created_at, retired_at, verify_until
                 FROM cs_signing_keys WHERE tenant_id = $1
                ORDER BY created_at, kid COLLATE "C""#,
        )
        .bind(tenant.as_uuid())
        .fetch_all(&self.write)
        .await
        .map_err(db("reading signing keys"))?;
        rows.iter().map(read_key).collect()
    }

    async fn rotate_signing_key_once(
        &self,
        key: &SigningKeyRecord,
        verify_until: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self
            .write
            .begin()
            .await
            .map_err(db("beginning a transaction"))?;
        // The tenant row lock serialises rotations of one tenant: the
        // second sees (and retires) the key the first added, so a tenant
        // never ends up with two active keys.
        let tenant = sqlx::query("SELECT 1 FROM cs_tenants WHERE id = $1 FOR NO KEY UPDATE")
            .bind(key.tenant_id.as_uuid())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("locking the tenant"))?;
        if tenant.is_none() {
            return Err(PgError::not_found("tenant"));
        }
        sqlx::query(
            "WITH retired AS (
                 UPDATE cs_signing_keys SET retired_at = $5, verify_until = $8
                  WHERE tenant_id = $1 AND retired_at IS NULL
             )
             INSERT INTO cs_signing_keys (tenant_id, kid, private_key, public_key, created_at,
                                          retired_at, verify_until)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(key.tenant_id.as_uuid())
        .bind(key.kid.as_str())
        .bind(key.private_key.as_slice())
        .bind(key.public_key.as_slice())
        .bind(key.created_at)
        .bind(key.retired_at)
        .bind(key.verify_until)
        .bind(verify_until)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            let unique = e
                .as_database_error()
                .and_then(|d| d.code())
                .is_some_and(|c| c == "23505");
            if unique {
                PgError::refused(StoreErrorKind::Conflict, "signing key id already exists")
            } else {
                db("rotating a signing key")(e)
            }
        })?;
        tx.commit()
            .await
            .map_err(db_commit("committing a signing key"))
    }

    async fn delete_expired_signing_keys_once(&self, now: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM cs_signing_keys WHERE verify_until <= $1")
            .bind(now)
            .execute(&self.write)
            .await
            .map_err(db_commit("deleting expired signing keys"))?;
        Ok(done.rows_affected())
    }
}

impl KeyStore for PostgresStore {
    type Error = PgError;

    async fn signing_keys(&self, tenant: TenantId) -> Result<Vec<SigningKeyRecord>> {
        self.retry
            .run("signing_keys", true, || self.signing_keys_once(tenant))
            .await
    }

    async fn rotate_signing_key(
        &self,
        key: &SigningKeyRecord,
        verify_until: DateTime<Utc>,
    ) -> Result<()> {
        self.retry
            .run("rotate_signing_key", false, || {
                self.rotate_signing_key_once(key, verify_until)
            })
            .await
    }

    async fn delete_expired_signing_keys(&self, now: DateTime<Utc>) -> Result<u64> {
        self.retry
            .run("delete_expired_signing_keys", true, || {
                self.delete_expired_signing_keys_once(now)
            })
            .await
    }
}
