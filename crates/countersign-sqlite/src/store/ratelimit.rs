//! `RateLimitStore` in SQLite: one row per key. A hit is one `INSERT ...
//! ON CONFLICT DO UPDATE ... RETURNING` that opens a new window or counts
//! in the current one, so it is exact even with several processes on one
//! file (SQLite's write lock serialises the statements).

use std::time::Duration;

use chrono::{DateTime, Utc};
use countersign_core::{RateLimitDecision, RateLimitStore, RateLimitWindow, check_rate_limit_key};

use crate::codec::{RATE_LIMIT_COLS, micros, read_rate_limit};
use crate::{Result, SqliteError, SqliteStore};

/// `Rejected` unless a store accepts `key` (see [`check_rate_limit_key`]).
fn check_key(key: &str) -> Result<()> {
    check_rate_limit_key(key).map_err(SqliteError::Rejected)
}

impl RateLimitStore for SqliteStore {
    type Error = SqliteError;

    async fn hit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<RateLimitDecision> {
        check_key(key)?;
        // The window this hit opens if it opens one; whether it does is
        // decided in the statement, on the row as it is when it runs.
        let fresh = RateLimitWindow::starting(now, window);
        let after = self
            .fetch_optional(
                format!(
                    "INSERT INTO cs_rate_limits (key, window_start, window_end, hits)
                     VALUES (?1, ?2, ?3, 1)
                     ON CONFLICT (key) DO UPDATE SET
                         window_start = CASE WHEN window_end <= ?2
                                             THEN ?2 ELSE window_start END,
                         window_end = CASE WHEN window_end <= ?2
                                           THEN ?3 ELSE window_end END,
                         hits = CASE WHEN window_end <= ?2
                                     THEN 1 ELSE MIN(hits + 1, 4294967295) END
                     RETURNING {RATE_LIMIT_COLS}"
                ),
                (key.to_owned(), micros(fresh.start), micros(fresh.end)),
                read_rate_limit,
            )
            .await?
            .ok_or_else(|| SqliteError::Corrupt("a rate-limit hit returned no row".into()))?;
        Ok(after.decision(limit))
    }

    async fn reset_rate_limit(&self, key: &str) -> Result<bool> {
        check_key(key)?;
        let n = self
            .execute(
                "DELETE FROM cs_rate_limits WHERE key = ?1",
                [key.to_owned()],
            )
            .await?;
        Ok(n > 0)
    }

    async fn delete_expired_rate_limits(&self, before: DateTime<Utc>) -> Result<u64> {
        let n = self
            .execute(
                "DELETE FROM cs_rate_limits WHERE window_end <= ?1",
                [micros(before)],
            )
            .await?;
        Ok(n as u64)
    }
}
