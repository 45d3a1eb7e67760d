//! `RateLimitStore`: fixed-window hit counters by opaque key, shared by
//! every node on one store (what the HTTP layer limits attempts per
//! client address and per account with).

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::StoreError;

/// The longest key a [`RateLimitStore`] accepts, in bytes of UTF-8.
pub const MAX_RATE_LIMIT_KEY: usize = 256;

/// Whether a store accepts `key`: at most [`MAX_RATE_LIMIT_KEY`] bytes and
/// no NUL character (which some databases cannot hold in text). Every
/// backend refuses any other key with `Rejected`, before it reads or
/// writes anything; the `Err` is the reason, with no part of the key in it.
pub fn check_rate_limit_key(key: &str) -> Result<(), &'static str> {
    if key.len() > MAX_RATE_LIMIT_KEY {
        Err("rate limit key longer than 256 bytes")
    } else if key.contains('\0') {
        Err("rate limit key contains a NUL character")
    } else {
        Ok(())
    }
}

/// The latest instant a window can end at: the latest representable
/// date, in whole seconds (so every backend stores it exactly).
fn latest_end() -> DateTime<Utc> {
    DateTime::from_timestamp(DateTime::<Utc>::MAX_UTC.timestamp(), 0)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// One key's current window: the reference semantics every
/// [`RateLimitStore`] implements (SQL backends in one statement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitWindow {
    /// When the window started (the hit that opened it).
    pub start: DateTime<Utc>,
    /// When it ends, fixed when it starts: `start` plus the `window` of
    /// the hit that opened it, or the latest representable instant (in
    /// whole seconds) if that overflows.
    pub end: DateTime<Utc>,
    /// Hits counted in it, including refused ones; saturates at
    /// `u32::MAX`.
    pub count: u32,
}

impl RateLimitWindow {
    /// A window of length `window` opened by one hit at `now`. Never
    /// panics: an end beyond what a date holds is the latest one.
    pub fn starting(now: DateTime<Utc>, window: Duration) -> Self {
        let end = chrono::Duration::from_std(window)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .map_or_else(latest_end, |end| end.min(latest_end()));
        Self {
            start: now,
            end,
            count: 1,
        }
    }

    /// Whether the window has ended at `now` (`end <= now`): a hit then
    /// opens a new one, and cleanup at `now` may delete it.
    pub fn ended_at(&self, now: DateTime<Utc>) -> bool {
        self.end <= now
    }

    /// The window after one more hit at `now`: a new window (see
    /// [`starting`](Self::starting)) if there is none or `current` has
    /// ended at `now`, else `current` with one more hit, saturating.
    pub fn next(current: Option<&Self>, window: Duration, now: DateTime<Utc>) -> Self {
        match current {
            Some(w) if !w.ended_at(now) => Self {
                count: w.count.saturating_add(1),
                ..*w
            },
            _ => Self::starting(now, window),
        }
    }

    /// The decision for this window's count under `limit`.
    pub fn decision(&self, limit: u32) -> RateLimitDecision {
        RateLimitDecision {
            allowed: self.count <= limit,
            count: self.count,
            remaining: limit.saturating_sub(self.count),
            reset_at: self.end,
        }
    }
}

/// The answer to one [`RateLimitStore::hit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitDecision {
    /// Whether this hit is within the limit (`count <= limit`).
    pub allowed: bool,
    /// Hits in the current window, this one included (at least 1;
    /// saturates at `u32::MAX`).
    pub count: u32,
    /// Hits still allowed in this window (`limit - count`, at least 0).
    pub remaining: u32,
    /// When the current window ends: the first instant at which a hit
    /// opens a new window (for a `Retry-After`).
    pub reset_at: DateTime<Utc>,
}

/// Fixed-window rate-limit counters, by opaque key.
///
/// Keys are global, not tenant-scoped: the caller builds them (for
/// example `login:ip:192.0.2.1` or `login:acct:<tenant>:<identifier>`)
/// and puts the tenant in the key when it matters. A key is any text
/// [`check_rate_limit_key`] accepts (up to [`MAX_RATE_LIMIT_KEY`] bytes);
/// any other is refused with `Rejected`, never a panic.
///
/// A backend shared by several nodes (Postgres) shares the counters
/// between them: every hit is counted exactly once, whichever node takes
/// it. Stores never read a clock; `now` is the caller's.
pub trait RateLimitStore: Send + Sync + 'static {
    /// The backend's error.
    type Error: StoreError;

    /// Count one hit on `key` at `now`, atomically, as
    /// [`RateLimitWindow::next`] says: with no window, or one that ended
    /// at or before `now`, a new window of length `window` starts at `now`
    /// with count 1; otherwise the count goes up by one, saturating at
    /// `u32::MAX`. A window's end is fixed when it opens (so with one
    /// `window` per key, a window started at or before `now - window` has
    /// ended). Hits over the limit count too: a flood stays refused until
    /// its window ends. Returns [`RateLimitWindow::decision`] under `limit`
    /// for the window after this hit. Exact under any concurrency: `N`
    /// concurrent hits in one window get the counts `1..=N`, each once.
    fn hit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<RateLimitDecision, Self::Error>> + Send;

    /// Forget `key`'s window (the next hit opens a new one). Returns
    /// whether there was one.
    fn reset_rate_limit(&self, key: &str)
    -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Delete every window that ended at or before `before` (`end <=
    /// before`), of every key. Returns how many went. Safe to run from
    /// several nodes at once.
    fn delete_expired_rate_limits(
        &self,
        before: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn counts_within_a_window_and_restarts_at_its_end() {
        let w1 = RateLimitWindow::next(None, MINUTE, t(0));
        assert_eq!((w1.start, w1.end, w1.count), (t(0), t(60), 1));
        let w2 = RateLimitWindow::next(Some(&w1), MINUTE, t(59));
        assert_eq!((w2.start, w2.end, w2.count), (t(0), t(60), 2));
        let w3 = RateLimitWindow::next(Some(&w2), MINUTE, t(60));
        assert_eq!((w3.start, w3.end, w3.count), (t(60), t(120), 1));
    }

    #[test]
    fn decisions_allow_up_to_the_limit() {
        let mut w = RateLimitWindow::starting(t(0), MINUTE);
        let d = w.decision(2);
        assert!(d.allowed && d.count == 1 && d.remaining == 1 && d.reset_at == t(60));
        w.count = 2;
        assert_eq!((w.decision(2).allowed, w.decision(2).remaining), (true, 0));
        w.count = 3;
        assert_eq!((w.decision(2).allowed, w.decision(2).remaining), (false, 0));
        assert!(!w.decision(0).allowed);
    }

    #[test]
    fn counts_saturate_and_ends_never_overflow() {
        let full = RateLimitWindow {
            count: u32::MAX,
            ..RateLimitWindow::starting(t(0), MINUTE)
        };
        let next = RateLimitWindow::next(Some(&full), MINUTE, t(1));
        assert_eq!(next.count, u32::MAX);
        assert!(!next.decision(u32::MAX - 1).allowed);
        assert!(next.decision(u32::MAX).allowed);
        let forever = RateLimitWindow::starting(t(0), Duration::MAX);
        assert_eq!(forever.end, latest_end());
        let late = RateLimitWindow::starting(latest_end(), MINUTE);
        assert_eq!(late.end, latest_end());
        assert!(late.ended_at(latest_end()));
    }

    #[test]
    fn keys_are_checked_by_length_in_bytes_and_for_nul() {
        assert!(check_rate_limit_key("").is_ok());
        assert!(check_rate_limit_key(&"a".repeat(256)).is_ok());
        assert!(check_rate_limit_key(&"é".repeat(128)).is_ok());
        assert!(check_rate_limit_key(&"a".repeat(257)).is_err());
        assert!(check_rate_limit_key(&"é".repeat(129)).is_err());
        assert!(check_rate_limit_key("a\0b").is_err());
    }
}
