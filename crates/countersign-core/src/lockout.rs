//! Failed-attempt counting and temporary account lockout.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;

/// How failed attempts lock an account, per tenant.
///
/// Failures are counted in a window that opens at the first failure. When
/// the count reaches `max_attempts` inside the window, the account locks
/// for `lock_duration`, then unlocks by itself. Failures while locked are
/// counted but do not extend the lock. The first failure after the lock
/// has lifted, or (when not locked) after the window has closed, starts a
/// new count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockoutPolicy {
    /// Failures that lock the account (at least 1).
    pub max_attempts: u32,
    /// How long the counting window stays open after its first failure.
    pub window: Duration,
    /// How long a lock lasts.
    pub lock_duration: Duration,
}

impl Default for LockoutPolicy {
    /// 5 failures in 15 minutes lock the account for 15 minutes.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            window: Duration::from_secs(15 * 60),
            lock_duration: Duration::from_secs(15 * 60),
        }
    }
}

/// The longest window or lock a policy may set (one year).
pub const MAX_LOCKOUT_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

impl LockoutPolicy {
    /// Check the policy's own bounds.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        if self.max_attempts == 0 {
            return Err(InvalidInput::new(
                "lockout policy",
                "max attempts must be at least 1",
            ));
        }
        if self.window.is_zero() || self.lock_duration.is_zero() {
            return Err(InvalidInput::new(
                "lockout policy",
                "durations must be positive",
            ));
        }
        if self.window > MAX_LOCKOUT_DURATION || self.lock_duration > MAX_LOCKOUT_DURATION {
            return Err(InvalidInput::new(
                "lockout policy",
                "durations must be at most a year",
            ));
        }
        Ok(())
    }

    /// The window as a chrono duration.
    pub fn window_delta(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.window).unwrap_or(chrono::Duration::MAX)
    }

    /// The lock duration as a chrono duration.
    pub fn lock_delta(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.lock_duration).unwrap_or(chrono::Duration::MAX)
    }

    /// The record after one more failure at `now`: the reference semantics
    /// every store implements (SQL backends in one statement).
    pub fn next_failure(&self, prev: Option<&FailureRecord>, now: DateTime<Utc>) -> FailureRecord {
        let restart = match prev {
            None => true,
            // A lock runs its full course whatever the window; without a
            // lock, the window closing starts a new count.
            Some(r) => match r.locked_until {
                Some(until) => now >= until,
                None => now >= r.window_start + self.window_delta(),
            },
        };
        let mut next = match (restart, prev) {
            (false, Some(r)) => FailureRecord {
                count: r.count.saturating_add(1),
                window_start: r.window_start,
                locked_until: r.locked_until,
            },
            _ => FailureRecord {
                count: 1,
                window_start: now,
                locked_until: None,
            },
        };
        if next.locked_until.is_none() && next.count >= self.max_attempts {
            next.locked_until = Some(now + self.lock_delta());
        }
        next
    }
}

/// Failed attempts recorded against one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// Failures in the current window (keeps counting while locked).
    pub count: u32,
    /// When the current window opened.
    pub window_start: DateTime<Utc>,
    /// When the current lock lifts, if the account is locked.
    pub locked_until: Option<DateTime<Utc>>,
}

impl FailureRecord {
    /// The instant the lock lifts, if the account is locked at `now`.
    pub fn locked_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.locked_until.filter(|until| *until > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration as D;

    #[test]
    fn locks_at_the_limit_and_lifts_after_the_duration() {
        let p = LockoutPolicy {
            max_attempts: 3,
            window: Duration::from_secs(60),
            lock_duration: Duration::from_secs(300),
        };
        let t0 = DateTime::<Utc>::from_timestamp(1_000_000, 0).unwrap();
        let r1 = p.next_failure(None, t0);
        let r2 = p.next_failure(Some(&r1), t0 + D::seconds(1));
        assert_eq!(r2.locked_at(t0), None);
        let r3 = p.next_failure(Some(&r2), t0 + D::seconds(2));
        assert_eq!(r3.count, 3);
        assert_eq!(r3.locked_at(t0 + D::seconds(3)), Some(t0 + D::seconds(302)));
        // Still locked: counting goes on, the lock is not extended.
        let r4 = p.next_failure(Some(&r3), t0 + D::seconds(100));
        assert_eq!((r4.count, r4.locked_until), (4, r3.locked_until));
        // After the lock lifts, a failure starts a fresh window.
        let r5 = p.next_failure(Some(&r4), t0 + D::seconds(302));
        assert_eq!((r5.count, r5.locked_until), (1, None));
        // Failures spread beyond the window never lock.
        let s1 = p.next_failure(None, t0);
        let s2 = p.next_failure(Some(&s1), t0 + D::seconds(61));
        assert_eq!(s2.count, 1);
    }

    #[test]
    fn policy_bounds() {
        assert!(LockoutPolicy::default().validate().is_ok());
        let zero = LockoutPolicy {
            max_attempts: 0,
            ..LockoutPolicy::default()
        };
        assert!(zero.validate().is_err());
    }
}
