//! Fixed-window rate limits: the guarantees of `RateLimitStore`.
//!
//! Saturation at `u32::MAX` cannot be reached through the trait in a
//! test's time; core's `RateLimitWindow` tests hold the reference, and
//! each built-in backend seeds a full count in its own tests.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use countersign_core::{RateLimitDecision, RateLimitWindow, StoreErrorKind};

use super::kind;
use crate::ConformanceStore;
use crate::fixtures::at;

/// The window most tests use.
const MINUTE: Duration = Duration::from_secs(60);

/// One hit on `key` under `limit` per [`MINUTE`] at `now`.
async fn hit<S: ConformanceStore>(
    s: &S,
    key: &str,
    limit: u32,
    now: DateTime<Utc>,
) -> RateLimitDecision {
    s.hit(key, limit, MINUTE, now).await.unwrap()
}

/// The decision `(allowed, count, remaining, reset_at)`, to compare whole.
fn parts(d: RateLimitDecision) -> (bool, u32, u32, DateTime<Utc>) {
    (d.allowed, d.count, d.remaining, d.reset_at)
}

/// Hits within one window are counted from 1, each allowed while the
/// count is at most the limit, with the remaining hits and the window's
/// end (start + window) reported; a later hit naming another window
/// length does not move the end of the current one.
pub async fn hits_are_counted_within_a_window<S: ConformanceStore>(s: S) {
    let key = "login:ip:192.0.2.1";
    assert_eq!(parts(hit(&s, key, 3, at(0)).await), (true, 1, 2, at(60)));
    assert_eq!(parts(hit(&s, key, 3, at(10)).await), (true, 2, 1, at(60)));
    let longer = s.hit(key, 3, MINUTE * 60, at(20)).await.unwrap();
    assert_eq!(parts(longer), (true, 3, 0, at(60)), "the end is fixed");
}

/// Hits past the limit are refused, with nothing remaining and the
/// window's end to retry at, and still counted: the count keeps rising
/// and a flood stays refused until the window ends.
pub async fn hits_past_the_limit_are_refused_and_counted<S: ConformanceStore>(s: S) {
    let key = "login:acct:acme:alice";
    for n in 0..2 {
        assert!(hit(&s, key, 2, at(n)).await.allowed);
    }
    for n in 3..=6 {
        let d = hit(&s, key, 2, at(i64::from(n) * 5)).await;
        assert_eq!(parts(d), (false, n, 0, at(60)), "hit {n}");
    }
    // A higher limit in the same window counts on from there.
    assert_eq!(parts(hit(&s, key, 10, at(40)).await), (true, 7, 3, at(60)));
}

/// A window ends at exactly start + window: a hit a microsecond before
/// counts in it, a hit at the end (or later) opens a new window at its
/// own time with count 1.
pub async fn a_new_window_starts_when_the_last_one_ends<S: ConformanceStore>(s: S) {
    let key = "k";
    for _ in 0..3 {
        hit(&s, key, 2, at(0)).await;
    }
    let just_before = at(60) - chrono::Duration::microseconds(1);
    assert_eq!(
        parts(hit(&s, key, 2, just_before).await),
        (false, 4, 0, at(60))
    );
    assert_eq!(parts(hit(&s, key, 2, at(60)).await), (true, 1, 1, at(120)));
    assert_eq!(parts(hit(&s, key, 2, at(61)).await), (true, 2, 0, at(120)));
    // Long after: a new window starting at the hit, not on a grid.
    assert_eq!(
        parts(hit(&s, key, 2, at(1000)).await),
        (true, 1, 1, at(1060))
    );
}

/// Keys are counted apart, whatever they share: a prefix, letters that
/// differ only in case, a trailing space, or a tenant-like segment.
pub async fn rate_limit_keys_are_independent<S: ConformanceStore>(s: S) {
    let keys = [
        "login:ip:192.0.2.1",
        "login:ip:192.0.2.10",
        "login:ip:192.0.2.1 ",
        "LOGIN:ip:192.0.2.1",
        "login:acct:acme:alice",
        "login:acct:globex:alice",
        "",
    ];
    for (i, key) in keys.iter().enumerate() {
        for _ in 0..=i {
            hit(&s, key, 100, at(0)).await;
        }
    }
    for (i, key) in keys.iter().enumerate() {
        let want = u32::try_from(i).unwrap() + 2;
        assert_eq!(hit(&s, key, 100, at(1)).await.count, want, "{key:?}");
    }
}

/// Resetting a key forgets its window (the next hit opens a new one at
/// its own time) and answers whether there was one; other keys keep
/// theirs.
pub async fn reset_forgets_one_key<S: ConformanceStore>(s: S) {
    for _ in 0..3 {
        hit(&s, "a", 2, at(0)).await;
        hit(&s, "b", 2, at(0)).await;
    }
    assert!(s.reset_rate_limit("a").await.unwrap());
    assert!(!s.reset_rate_limit("a").await.unwrap(), "already gone");
    assert!(!s.reset_rate_limit("never").await.unwrap());
    assert_eq!(parts(hit(&s, "a", 2, at(30)).await), (true, 1, 1, at(90)));
    assert_eq!(parts(hit(&s, "b", 2, at(30)).await), (false, 4, 0, at(60)));
}

/// Cleanup at `before` deletes exactly the windows that ended at or
/// before it (`end <= before`), of every key, and answers how many; a
/// window still running keeps counting.
pub async fn expired_rate_limits_are_deleted_at_their_end<S: ConformanceStore>(s: S) {
    hit(&s, "ends-60", 5, at(0)).await;
    hit(&s, "ends-60", 5, at(1)).await;
    hit(&s, "ends-90", 5, at(30)).await;
    s.hit("ends-3600", 5, MINUTE * 60, at(0)).await.unwrap();
    assert_eq!(s.delete_expired_rate_limits(at(59)).await.unwrap(), 0);
    assert_eq!(s.delete_expired_rate_limits(at(60)).await.unwrap(), 1);
    assert_eq!(s.delete_expired_rate_limits(at(60)).await.unwrap(), 0);
    // Gone: a hit dated inside its old window finds none and opens one.
    assert_eq!(hit(&s, "ends-60", 5, at(2)).await.count, 1);
    assert_eq!(s.delete_expired_rate_limits(at(100)).await.unwrap(), 2);
    let kept = s.hit("ends-3600", 5, MINUTE, at(100)).await.unwrap();
    assert_eq!(parts(kept), (true, 2, 3, at(3600)));
}

/// A key of up to 256 bytes is accepted (multi-byte characters counted
/// in bytes); a longer one, or one with a NUL character, is an error of
/// kind `Rejected` (never a panic) for every method, and changes nothing.
pub async fn an_overlong_rate_limit_key_is_rejected<S: ConformanceStore>(s: S) {
    let ascii = "a".repeat(256);
    let accented = "é".repeat(128);
    assert_eq!(hit(&s, &ascii, 5, at(0)).await.count, 1);
    assert_eq!(hit(&s, &accented, 5, at(0)).await.count, 1);
    for bad in ["a".repeat(257), "é".repeat(129), "a\0b".to_owned()] {
        let refused = s.hit(&bad, 5, MINUTE, at(0)).await;
        assert_eq!(kind(refused), StoreErrorKind::Rejected, "{}", bad.len());
        let refused = s.reset_rate_limit(&bad).await;
        assert_eq!(kind(refused), StoreErrorKind::Rejected);
    }
    assert_eq!(hit(&s, &ascii, 5, at(1)).await.count, 2);
    assert_eq!(hit(&s, &accented, 5, at(1)).await.count, 2);
    assert_eq!(s.delete_expired_rate_limits(at(60)).await.unwrap(), 2);
}

/// The extremes are answers, not failures: a limit of 0 refuses every
/// hit (still counting them), a limit of `u32::MAX` allows; a zero window
/// ends where it starts (every hit opens a new one), and a window too
/// long for a date ends at the latest one.
pub async fn extreme_limits_and_windows_are_answered<S: ConformanceStore>(s: S) {
    assert_eq!(
        parts(hit(&s, "zero", 0, at(0)).await),
        (false, 1, 0, at(60))
    );
    assert_eq!(
        parts(hit(&s, "zero", 0, at(1)).await),
        (false, 2, 0, at(60))
    );
    let max = hit(&s, "max", u32::MAX, at(0)).await;
    assert_eq!(parts(max), (true, 1, u32::MAX - 1, at(60)));
    for n in 0..3 {
        let d = s.hit("instant", 1, Duration::ZERO, at(n)).await.unwrap();
        assert_eq!(parts(d), (true, 1, 0, at(n)), "hit {n}");
    }
    let forever = RateLimitWindow::starting(at(0), Duration::MAX).end;
    for n in 1..=2 {
        let d = s.hit("forever", 5, Duration::MAX, at(0)).await.unwrap();
        assert_eq!(parts(d), (true, n, 5 - n, forever));
    }
    assert_eq!(hit(&s, "forever", 5, at(1_000_000_000)).await.count, 3);
}

/// `N` concurrent hits on one key in one window (released together by a
/// barrier) get the counts `1..=N`, each exactly once, and exactly
/// `limit` of them are allowed: those counted up to the limit.
pub async fn concurrent_hits_are_counted_exactly<S: ConformanceStore>(s: S) {
    const N: u32 = 32;
    const LIMIT: u32 = 10;
    let gate = Arc::new(tokio::sync::Barrier::new(N as usize));
    let mut tasks = Vec::new();
    for _ in 0..N {
        let (s, gate) = (s.clone(), Arc::clone(&gate));
        tasks.push(tokio::spawn(async move {
            gate.wait().await;
            s.hit("race", LIMIT, MINUTE, at(5)).await.unwrap()
        }));
    }
    let mut decisions = Vec::new();
    for task in tasks {
        decisions.push(task.await.unwrap());
    }
    let mut counts: Vec<u32> = decisions.iter().map(|d| d.count).collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=N).collect::<Vec<_>>());
    assert_eq!(
        decisions.iter().filter(|d| d.allowed).count(),
        LIMIT as usize
    );
    for d in &decisions {
        assert_eq!(d.allowed, d.count <= LIMIT, "{d:?}");
        assert_eq!(d.reset_at, at(65), "{d:?}");
    }
    assert_eq!(hit(&s, "race", LIMIT, at(6)).await.count, N + 1);
}
