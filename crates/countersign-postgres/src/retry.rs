//! Bounded exponential backoff for transient failures.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::BuildHasher;
use std::time::Duration;

use crate::error::PgError;

/// Whether running a call twice has the effect and the result of running
/// it once. Decides whether a call is retried after a failure that may
/// have let its write commit (see [`RetryPolicy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotence {
    /// Running it twice is running it once: reads, audit appends keyed by
    /// event id, upserts, deletes by key, renewals at a given instant.
    Idempotent,
    /// A second run could apply the write twice or answer differently
    /// (inserts that refuse duplicates, compare-and-save, counters,
    /// rotations): retried only when the first run certainly did not apply.
    Once,
}

/// How the store retries calls that failed transiently.
///
/// A call is retried only when its error is transient (see
/// [`PgError`]) **and** a retry cannot apply a write twice:
///
/// - the server reported the failure (serialization failure, deadlock,
///   shutdown, connection exception): the statement or transaction was
///   rolled back as a whole, so any call may run again;
/// - no connection could be had, or the connection broke before anything
///   could commit (inside a transaction, before `COMMIT`): any call may run
///   again;
/// - the connection broke while a write was committing (an autocommit
///   statement, or `COMMIT` itself) and no answer came back: the write may
///   have applied, so only idempotent calls run again (reads, audit
///   appends keyed by event id, upserts, deletes by key).
///
/// Statement and lock timeouts are transient but never retried
/// automatically: retrying would multiply the load that caused them.
///
/// The `n`-th retry (from 0) waits `base_delay * 2^n`, capped at
/// `max_delay`, then scaled by a random factor in `[0.5, 1.0]` so that
/// clients failing together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 disables retrying.
    pub max_retries: u32,
    /// The wait before the first retry.
    pub base_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 3 retries, from 20 ms, at most 1 s apart.
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// No retries: every error is returned as it happens.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// The wait before retry number `retry` (from 0).
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = self
            .base_delay
            .checked_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX))
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        // Jitter in [0.5, 1.0] from std's per-process random hash keys.
        let r = RandomState::new().hash_one(retry);
        let permille = 500 + (r % 501);
        exp.mul_f64(permille as f64 / 1000.0)
    }

    /// Run `attempt` until it succeeds, fails permanently, or the retries
    /// are spent; `op` names the call in the log.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        op: &'static str,
        idempotence: Idempotence,
        mut attempt: F,
    ) -> Result<T, PgError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, PgError>>,
    {
        let mut retry = 0u32;
        loop {
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) if retry < self.max_retries && e.may_retry(idempotence) => {
                    let wait = self.delay(retry);
                    tracing::warn!(
                        op,
                        retry = retry + 1,
                        max_retries = self.max_retries,
                        wait_ms = wait.as_millis() as u64,
                        error = %e,
                        "transient postgres failure; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    retry += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        let p = RetryPolicy::default();
        for n in 0..40 {
            let d = p.delay(n);
            let full = (p.base_delay * 2u32.saturating_pow(n)).min(p.max_delay);
            assert!(d <= full && d >= full / 2, "retry {n}: {d:?} vs {full:?}");
        }
        assert!(p.delay(100) <= p.max_delay);
    }
}
