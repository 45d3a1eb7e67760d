//! `RateLimitStore` in SQL: one row per key, shared by every node.
//!
//! A hit is one `INSERT ... ON CONFLICT (key) DO UPDATE ... RETURNING`,
//! never a read then a write: of concurrent hits on one key, on any
//! number of nodes, one inserts the row (or locks it) and each other waits
//! for that row version, then updates the newest one. So `N` concurrent
//! hits count `N`, and of hits racing past a window's end exactly one
//! opens the new window.

use std::time::Duration;

use chrono::{DateTime, Utc};
use countersign_core::{
    RateLimitDecision, RateLimitStore, RateLimitWindow, StoreErrorKind, check_rate_limit_key,
};

use crate::codec::{self, rate_limit_cols};
use crate::error::{PgError, db_commit};
use crate::retry::Idempotence::{Idempotent, Once};
use crate::{PostgresStore, Result};

/// `Rejected` unless a store accepts `key` (see [`check_rate_limit_key`]).
fn check_key(key: &str) -> Result<()> {
    check_rate_limit_key(key).map_err(|why| PgError::refused(StoreErrorKind::Rejected, why))
}

impl RateLimitStore for PostgresStore {
    type Error = PgError;

    async fn hit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<RateLimitDecision> {
        check_key(key)?;
        // The window this hit opens if it opens one; whether it does is
        // decided in the statement, on the newest row version.
        let fresh = RateLimitWindow::starting(now, window);
        let stmt = || {
            sqlx::query(concat!(
                "INSERT INTO cs_rate_limits AS r (key, window_start, window_end, hits)
                 VALUES ($1, $2, $3, 1)
                 ON CONFLICT (key) DO UPDATE SET
                     window_start = CASE WHEN r.window_end <= $2
                                         THEN $2 ELSE r.window_start END,
                     window_end = CASE WHEN r.window_end <= $2
                                       THEN $3 ELSE r.window_end END,
                     hits = CASE WHEN r.window_end <= $2
                                 THEN 1 ELSE LEAST(r.hits + 1, 4294967295) END
                 RETURNING ",
                rate_limit_cols!()
            ))
            .bind(key.to_owned())
            .bind(fresh.start)
            .bind(fresh.end)
        };
        // Once: a retry after a hit that committed would count it twice.
        let after = self
            .retry
            .run("hit", Once, || async {
                let mut conn = self.conn().await?;
                let row = stmt()
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(db_commit("counting a rate-limit hit"))?;
                codec::rate_limit(&row)
            })
            .await?;
        Ok(after.decision(limit))
    }

    async fn reset_rate_limit(&self, key: &str) -> Result<bool> {
        check_key(key)?;
        let stmt = || sqlx::query("DELETE FROM cs_rate_limits WHERE key = $1").bind(key.to_owned());
        // Once: the answer is whether this call deleted the row.
        let n = self
            .retry
            .run("reset_rate_limit", Once, || {
                self.autocommit(stmt(), "resetting a rate limit")
            })
            .await?;
        Ok(n > 0)
    }

    async fn delete_expired_rate_limits(&self, before: DateTime<Utc>) -> Result<u64> {
        // Idempotent: a second run deletes what is left, which is the point.
        let stmt = || sqlx::query("DELETE FROM cs_rate_limits WHERE window_end <= $1").bind(before);
        self.retry
            .run("delete_expired_rate_limits", Idempotent, || {
                self.autocommit(stmt(), "deleting ended rate-limit windows")
            })
            .await
    }
}
