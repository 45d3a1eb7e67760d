//! `KeyStore` in SQL.
//!
//! Keys are read on the main pool: a replica lagging behind a rotation
//! would not know the new key, and tokens it signed would not verify.

use chrono::{DateTime, Utc};
use countersign_core::{KeyStore, SigningKeyRecord, TenantId};

use super::{all, commit, execute, lock_tenant};
use crate::codec::{self, key_cols};
use crate::error::{PgError, Phase, db, db_commit, unique_violation};
use crate::retry::Idempotence::{Idempotent, Once};
use crate::{PostgresStore, Result};

impl KeyStore for PostgresStore {
    type Error = PgError;

    async fn signing_keys(&self, tenant: TenantId) -> Result<Vec<SigningKeyRecord>> {
        let stmt = || {
            sqlx::query(concat!(
                "SELECT ",
                key_cols!(),
                r#" FROM cs_signing_keys WHERE tenant_id = $1
                   ORDER BY created_at, kid COLLATE "C""#
            ))
            .bind(tenant.as_uuid())
        };
        self.retry
            .run("signing_keys", Idempotent, || {
                all(
                    stmt(),
                    &self.write,
                    db("reading signing keys"),
                    codec::signing_key,
                )
            })
            .await
    }

    async fn rotate_signing_key(
        &self,
        key: &SigningKeyRecord,
        verify_until: DateTime<Utc>,
    ) -> Result<()> {
        let stmt = || {
            sqlx::query(
                "WITH retired AS (
                     UPDATE cs_signing_keys SET retired_at = $5, verify_until = $8
                      WHERE tenant_id = $1 AND retired_at IS NULL
                 )
                 INSERT INTO cs_signing_keys (tenant_id, kid, private_key, public_key, created_at,
                                              retired_at, verify_until, algorithm)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $9)",
            )
            .bind(key.tenant_id.as_uuid())
            .bind(key.kid.as_str())
            .bind(key.private_key.as_slice())
            .bind(key.public_key.as_slice())
            .bind(key.created_at)
            .bind(key.retired_at)
            .bind(key.verify_until)
            .bind(verify_until)
            .bind(key.algorithm.as_str())
        };
        self.retry
            .run("rotate_signing_key", Once, || async {
                let mut tx = self.begin().await?;
                // The tenant row lock serialises rotations of one tenant:
                // the second sees (and retires) the key the first added, so
                // a tenant never ends up with two active keys.
                if !lock_tenant(&mut tx, key.tenant_id).await? {
                    return Err(PgError::not_found("tenant"));
                }
                let refused = unique_violation(
                    Phase::Uncommitted,
                    "rotating a signing key",
                    "signing key id already exists",
                );
                execute(stmt(), &mut *tx, refused).await?;
                commit(tx, "committing a signing key").await
            })
            .await
    }

    async fn delete_expired_signing_keys(&self, now: DateTime<Utc>) -> Result<u64> {
        let stmt = || sqlx::query("DELETE FROM cs_signing_keys WHERE verify_until <= $1").bind(now);
        self.retry
            .run("delete_expired_signing_keys", Idempotent, || {
                let context = db_commit("deleting expired signing keys");
                execute(stmt(), &self.write, context)
            })
            .await
    }
}
