//! `VerificationStore` in SQL.
//!
//! Every read goes to the main pool (a verification decides whether a
//! code or reset token works). Compare-and-save, failure counting and
//! consumption are each one statement, exact under any number of
//! concurrent callers on any number of nodes: an `UPDATE` or `DELETE`
//! re-checks its `WHERE` on the newest row version after waiting for a
//! concurrent writer, and an `INSERT ... ON CONFLICT DO NOTHING` waits for
//! a concurrent insert of the same key and then does nothing.

use chrono::{DateTime, Utc};
use countersign_core::{TenantId, UserId, Verification, VerificationPurpose, VerificationStore};

use super::{Statement, compare_and_save, optional};
use crate::codec::{self, verification_cols};
use crate::error::{PgError, db_commit};
use crate::retry::Idempotence::{Idempotent, Once};
use crate::{PostgresStore, Result};

/// Bind `$1`..`$9` of a save: the key, then every other column of `v`.
fn bind_row(q: Statement, v: &Verification) -> Statement {
    q.bind(*v.tenant_id.as_uuid())
        .bind(*v.user_id.as_uuid())
        .bind(v.purpose.as_str())
        .bind(v.secret_hash.clone())
        .bind(v.payload.clone())
        .bind(v.created_at)
        .bind(v.expires_at)
        .bind(i64::from(v.sends))
        .bind(i64::from(v.failures))
}

impl VerificationStore for PostgresStore {
    type Error = PgError;

    async fn save_verification(
        &self,
        v: &Verification,
        expected_sends: Option<u32>,
    ) -> Result<bool> {
        // One statement each way, reporting whether the user is in the
        // tenant and whether the verification was saved.
        let stmt = || match expected_sends {
            None => bind_row(
                sqlx::query(
                    "WITH u AS (
                         SELECT 1 FROM cs_users WHERE tenant_id = $1 AND id = $2
                     ), saved AS (
                         INSERT INTO cs_verifications (tenant_id, user_id, purpose, secret_hash,
                                                       payload, created_at, expires_at, sends,
                                                       failures)
                         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 FROM u
                         ON CONFLICT (tenant_id, user_id, purpose) DO NOTHING
                         RETURNING 1
                     )
                     SELECT EXISTS (SELECT 1 FROM u) AS found,
                            EXISTS (SELECT 1 FROM saved) AS saved",
                ),
                v,
            ),
            Some(expected) => bind_row(
                sqlx::query(
                    "WITH u AS (
                         SELECT 1 FROM cs_users WHERE tenant_id = $1 AND id = $2
                     ), saved AS (
                         UPDATE cs_verifications
                            SET secret_hash = $4, payload = $5, created_at = $6,
                                expires_at = $7, sends = $8, failures = $9
                          WHERE tenant_id = $1 AND user_id = $2 AND purpose = $3
                            AND sends = $10
                         RETURNING 1
                     )
                     SELECT EXISTS (SELECT 1 FROM u) AS found,
                            EXISTS (SELECT 1 FROM saved) AS saved",
                ),
                v,
            )
            .bind(i64::from(expected)),
        };
        self.retry
            .run("save_verification", Once, || async {
                let mut conn = self.conn().await?;
                let context = "saving a verification";
                compare_and_save(stmt(), &mut *conn, context, "user").await
            })
            .await
    }

    async fn verification(
        &self,
        tenant: TenantId,
        user: UserId,
        purpose: VerificationPurpose,
    ) -> Result<Option<Verification>> {
        let stmt = || {
            sqlx::query(concat!(
                "SELECT ",
                verification_cols!(),
                " FROM cs_verifications WHERE tenant_id = $1 AND user_id = $2 AND purpose = $3"
            ))
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .bind(purpose.as_str())
        };
        self.lookup(
            "verification",
            "reading a verification",
            stmt,
            codec::verification,
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
        let stmt = || {
            sqlx::query(concat!(
                "SELECT ",
                verification_cols!(),
                " FROM cs_verifications
                  WHERE tenant_id = $1 AND purpose = $2 AND secret_hash = $3
                  ORDER BY user_id LIMIT 1"
            ))
            .bind(tenant.as_uuid())
            .bind(purpose.as_str())
            .bind(secret_hash)
        };
        self.lookup(
            "find_verification",
            "finding a verification",
            stmt,
            codec::verification,
        )
        .await
    }

    async fn record_verification_failure(
        &self,
        tenant: TenantId,
        user: UserId,
        purpose: VerificationPurpose,
    ) -> Result<Option<u32>> {
        let stmt = || {
            sqlx::query(
                "UPDATE cs_verifications SET failures = LEAST(failures + 1, 4294967295)
                  WHERE tenant_id = $1 AND user_id = $2 AND purpose = $3
                 RETURNING failures",
            )
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .bind(purpose.as_str())
        };
        self.retry
            .run("record_verification_failure", Once, || async {
                let mut conn = self.conn().await?;
                let context = db_commit("counting a verification failure");
                optional(stmt(), &mut *conn, context, |row| {
                    let n: i64 = codec::get(row, "cs_verifications", "failures")?;
                    codec::unsigned("cs_verifications", "failures", n)
                })
                .await
            })
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
        // Single use in one statement: of concurrent deletes of the row one
        // deletes it; the others wait for it, re-check, and find nothing.
        let stmt = || {
            sqlx::query(concat!(
                "DELETE FROM cs_verifications
                  WHERE tenant_id = $1 AND user_id = $2 AND purpose = $3 AND secret_hash = $4
                    AND expires_at > $5 AND failures < $6
                 RETURNING ",
                verification_cols!()
            ))
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .bind(purpose.as_str())
            .bind(secret_hash)
            .bind(now)
            .bind(i64::from(max_failures))
        };
        // Once: a retry after a delete that committed would answer `None`.
        self.retry
            .run("consume_verification", Once, || async {
                let mut conn = self.conn().await?;
                let context = db_commit("consuming a verification");
                optional(stmt(), &mut *conn, context, codec::verification).await
            })
            .await
    }

    async fn delete_verifications(
        &self,
        tenant: TenantId,
        user: UserId,
        purpose: Option<VerificationPurpose>,
    ) -> Result<u64> {
        let stmt = || {
            sqlx::query(
                "DELETE FROM cs_verifications
                  WHERE tenant_id = $1 AND user_id = $2
                    AND ($3::text IS NULL OR purpose = $3::text)",
            )
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .bind(purpose.map(VerificationPurpose::as_str))
        };
        // Once: the count it answers is of this call's deletions.
        self.retry
            .run("delete_verifications", Once, || {
                self.autocommit(stmt(), "deleting verifications")
            })
            .await
    }

    async fn delete_expired_verifications(&self, now: DateTime<Utc>) -> Result<u64> {
        // Idempotent: a second run deletes what is left, which is the point.
        let stmt = || sqlx::query("DELETE FROM cs_verifications WHERE expires_at <= $1").bind(now);
        self.retry
            .run("delete_expired_verifications", Idempotent, || {
                self.autocommit(stmt(), "deleting expired verifications")
            })
            .await
    }
}
