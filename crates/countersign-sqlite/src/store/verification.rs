//! `VerificationStore` in SQLite: pending one-time proofs, one row per
//! (tenant, user, purpose). Compare-and-save, failure counting and
//! consumption are each one statement (consumption a `DELETE ...
//! RETURNING`), so they are exact even with several processes on one file.

use chrono::{DateTime, Utc};
use countersign_core::{TenantId, UserId, Verification, VerificationPurpose, VerificationStore};
use rusqlite::params;

use super::require_user;
use crate::codec::{VERIFICATION_COLS, id, micros, read_verification};
use crate::{Result, SqliteError, SqliteStore};

/// The `failures` column returned by a failure count.
fn read_failures(r: &rusqlite::Row<'_>) -> Result<u32> {
    u32::try_from(r.get::<_, i64>(0)?)
        .map_err(|_| SqliteError::Corrupt("verification failures".into()))
}

impl VerificationStore for SqliteStore {
    type Error = SqliteError;

    async fn save_verification(
        &self,
        v: &Verification,
        expected_sends: Option<u32>,
    ) -> Result<bool> {
        let (t, u) = (id(v.tenant_id.as_uuid()), id(v.user_id.as_uuid()));
        let purpose = v.purpose.as_str();
        let (hash, payload) = (v.secret_hash.clone(), v.payload.clone());
        let (created, expires) = (micros(v.created_at), micros(v.expires_at));
        let (sends, failures) = (i64::from(v.sends), i64::from(v.failures));
        self.call(move |c| {
            // One statement each way: an insert that does nothing if one
            // exists (or the user is not in the tenant), or an update
            // guarded by the send count.
            let n = match expected_sends {
                None => c
                    .prepare_cached(&format!(
                        "INSERT INTO cs_verifications ({VERIFICATION_COLS})
                         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9
                         WHERE EXISTS (SELECT 1 FROM cs_users WHERE tenant_id = ?1 AND id = ?2)
                         ON CONFLICT (tenant_id, user_id, purpose) DO NOTHING"
                    ))?
                    .execute(params![
                        t, u, purpose, hash, payload, created, expires, sends, failures
                    ])?,
                Some(expected) => c
                    .prepare_cached(
                        "UPDATE cs_verifications
                         SET secret_hash = ?4, payload = ?5, created_at = ?6, expires_at = ?7,
                             sends = ?8, failures = ?9
                         WHERE tenant_id = ?1 AND user_id = ?2 AND purpose = ?3 AND sends = ?10",
                    )?
                    .execute(params![
                        t,
                        u,
                        purpose,
                        hash,
                        payload,
                        created,
                        expires,
                        sends,
                        failures,
                        i64::from(expected)
                    ])?,
            };
            if n == 0 {
                require_user(c, &t, &u)?;
            }
            Ok(n == 1)
        })
        .await
    }

    async fn verification(
        &self,
        tenant: TenantId,
        user: UserId,
        purpose: VerificationPurpose,
    ) -> Result<Option<Verification>> {
        self.fetch_optional(
            format!(
                "SELECT {VERIFICATION_COLS} FROM cs_verifications
                 WHERE tenant_id = ?1 AND user_id = ?2 AND purpose = ?3"
            ),
            (id(tenant.as_uuid()), id(user.as_uuid()), purpose.as_str()),
            read_verification,
        )
        .await
    }

    async fn find_verification(
        &self,
        tenant: TenantId,
        purpose: VerificationPurpose,
        secret_hash: &str,
    ) -> Result<Option<Verification>> {
        // Of several with one hash (never, for real secrets), the lowest
        // user id, as every backend answers.
        self.fetch_optional(
            format!(
                "SELECT {VERIFICATION_COLS} FROM cs_verifications
                 WHERE tenant_id = ?1 AND purpose = ?2 AND secret_hash = ?3
                 ORDER BY user_id LIMIT 1"
            ),
            (
                id(tenant.as_uuid()),
                purpose.as_str(),
                secret_hash.to_owned(),
            ),
            read_verification,
        )
        .await
    }

    async fn record_verification_failure(
        &self,
        tenant: TenantId,
        user: UserId,
        purpose: VerificationPurpose,
    ) -> Result<Option<u32>> {
        self.fetch_optional(
            "UPDATE cs_verifications SET failures = MIN(failures + 1, 4294967295)
             WHERE tenant_id = ?1 AND user_id = ?2 AND purpose = ?3
             RETURNING failures",
            (id(tenant.as_uuid()), id(user.as_uuid()), purpose.as_str()),
            read_failures,
        )
        .await
    }

    async fn consume_verification(
        &self,
        tenant: TenantId,
        user: UserId,
        purpose: VerificationPurpose,
        secret_hash: &str,
        max_failures: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<Verification>> {
        // Single use in one statement: the row goes only if every check
        // holds, and only one statement can delete it.
        self.fetch_optional(
            format!(
                "DELETE FROM cs_verifications
                 WHERE tenant_id = ?1 AND user_id = ?2 AND purpose = ?3 AND secret_hash = ?4
                   AND expires_at > ?5 AND failures < ?6
                 RETURNING {VERIFICATION_COLS}"
            ),
            (
                id(tenant.as_uuid()),
                id(user.as_uuid()),
                purpose.as_str(),
                secret_hash.to_owned(),
                micros(now),
                i64::from(max_failures),
            ),
            read_verification,
        )
        .await
    }

    async fn delete_verifications(
        &self,
        tenant: TenantId,
        user: UserId,
        purpose: Option<VerificationPurpose>,
    ) -> Result<u64> {
        let n = self
            .execute(
                "DELETE FROM cs_verifications
                 WHERE tenant_id = ?1 AND user_id = ?2 AND (?3 IS NULL OR purpose = ?3)",
                (
                    id(tenant.as_uuid()),
                    id(user.as_uuid()),
                    purpose.map(VerificationPurpose::as_str),
                ),
            )
            .await?;
        Ok(n as u64)
    }

    async fn delete_expired_verifications(&self, now: DateTime<Utc>) -> Result<u64> {
        let n = self
            .execute(
                "DELETE FROM cs_verifications WHERE expires_at <= ?1",
                [micros(now)],
            )
            .await?;
        Ok(n as u64)
    }
}
