//! `RateLimitStore` in memory: one window per key, following
//! [`RateLimitWindow::next`]. Each method runs under the state's one lock,
//! so concurrent hits on one key are counted exactly.

use std::time::Duration;

use chrono::{DateTime, Utc};
use countersign_core::{
    RateLimitDecision, RateLimitStore, RateLimitWindow, StoreErrorKind, check_rate_limit_key,
};

use crate::error::{MemoryError, Result};
use crate::{MemoryStore, StoreMethod};

/// `Rejected` unless a store accepts `key` (see [`check_rate_limit_key`]).
fn check_key(key: &str) -> Result<()> {
    check_rate_limit_key(key).map_err(|why| MemoryError::new(StoreErrorKind::Rejected, why))
}

impl RateLimitStore for MemoryStore {
    type Error = MemoryError;

    async fn hit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<RateLimitDecision> {
        let mut st = self.begin(StoreMethod::Hit)?;
        check_key(key)?;
        let next = RateLimitWindow::next(st.rate_limits.get(key), window, now);
        st.rate_limits.insert(key.to_owned(), next);
        Ok(next.decision(limit))
    }

    async fn reset_rate_limit(&self, key: &str) -> Result<bool> {
        let mut st = self.begin(StoreMethod::ResetRateLimit)?;
        check_key(key)?;
        Ok(st.rate_limits.remove(key).is_some())
    }

    async fn delete_expired_rate_limits(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut st = self.begin(StoreMethod::DeleteExpiredRateLimits)?;
        let count = st.rate_limits.len();
        st.rate_limits.retain(|_, w| !w.ended_at(before));
        Ok((count - st.rate_limits.len()) as u64)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// A count at `u32::MAX` stays there (the suite cannot hit four
    /// billion times; the SQL backends seed such a row in their tests).
    #[test]
    fn a_full_count_saturates() {
        countersign_testkit::run(async {
            let s = MemoryStore::new();
            let t0 = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
            let minute = Duration::from_secs(60);
            s.hit("k", 5, minute, t0).await.unwrap();
            s.state().rate_limits.get_mut("k").unwrap().count = u32::MAX - 1;
            for _ in 0..2 {
                let d = s.hit("k", u32::MAX, minute, t0).await.unwrap();
                assert_eq!((d.count, d.allowed, d.remaining), (u32::MAX, true, 0));
            }
            assert!(!s.hit("k", 5, minute, t0).await.unwrap().allowed);
        });
    }
}
