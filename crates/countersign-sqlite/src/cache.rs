//! The session cache ([`SqliteOptions::session_cache`](crate::SqliteOptions::session_cache)):
//! sessions this store validated, answered again without SQL while
//! nothing has been written since.
//!
//! Coherence rests on one counter: the worker counts every call it
//! finishes before the caller hears back, and every write of this store
//! (any clone) is such a call. An entry is kept with the count read
//! *before* the read that found the session, and the whole cache is
//! dropped whenever the count moves: so an entry is served only if no
//! call of this store finished since before its read began, and a write
//! (a logout, a revocation, a step-up, a renewal, an erasure, a
//! cleanup) is seen by every validation that starts after it returned.
//! Another process writing the same file is seen once the entry is older
//! than the cache's time to live, or at the next call of this store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use countersign_core::{SessionRecord, TokenHash};

/// The most sessions a cache holds; when full, it starts over.
pub const SESSION_CACHE_CAPACITY: usize = 4096;

#[derive(Debug)]
pub(crate) struct SessionCache {
    ttl: chrono::Duration,
    /// The worker's count of finished calls.
    finished: Arc<AtomicU64>,
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    /// The count every entry was read at (or after).
    at: u64,
    map: HashMap<TokenHash, (Arc<SessionRecord>, DateTime<Utc>)>,
}

impl SessionCache {
    pub(crate) fn new(ttl: std::time::Duration, finished: Arc<AtomicU64>) -> Self {
        Self {
            ttl: chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX),
            finished,
            entries: Mutex::new(Entries::default()),
        }
    }

    /// The count to pass to [`put`](Self::put), read before the read.
    pub(crate) fn mark(&self) -> u64 {
        self.finished.load(Ordering::SeqCst)
    }

    /// The session with this key, if cached since the last write, younger
    /// than the time to live, live at `now` and not due for renewal (a
    /// renewal is a write: it goes to the store).
    pub(crate) fn get(&self, key: &TokenHash, now: DateTime<Utc>) -> Option<Arc<SessionRecord>> {
        let mark = self.mark();
        let mut e = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if e.at != mark {
            e.map.clear();
            e.at = mark;
            return None;
        }
        let (session, read_at) = e.map.get(key)?;
        let fresh = now >= *read_at && now - *read_at < self.ttl;
        if fresh && session.is_live(now) && !session.renewal_due(now) {
            return Some(Arc::clone(session));
        }
        e.map.remove(key);
        None
    }

    /// Keep `session`, read at `now` by a read that began at count `mark`,
    /// unless a call has finished since.
    pub(crate) fn put(
        &self,
        key: TokenHash,
        session: &Arc<SessionRecord>,
        mark: u64,
        now: DateTime<Utc>,
    ) {
        let current = self.mark();
        if mark != current {
            return;
        }
        let mut e = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if e.at != current {
            e.map.clear();
            e.at = current;
        }
        if e.map.len() >= SESSION_CACHE_CAPACITY {
            e.map.clear();
        }
        e.map.insert(key, (Arc::clone(session), now));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use countersign_core::{SessionId, TenantId, UserId};

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + s, 0).unwrap()
    }

    fn session(expires: i64) -> Arc<SessionRecord> {
        let env = countersign_core::Env::manual(1).0;
        let (tenant, user) = (
            TenantId::generate(&env).unwrap(),
            UserId::generate(&env).unwrap(),
        );
        Arc::new(SessionRecord {
            id: SessionId::generate(&env).unwrap(),
            key: TokenHash::from_bytes([7; 32]),
            tenant_id: tenant,
            user_id: user,
            auth: countersign_core::AuthRecord {
                tenant_id: tenant,
                user_id: user,
                method: countersign_core::MethodName::parse("password").unwrap(),
                factors: Vec::new(),
                at: t(0),
            },
            ip: None,
            user_agent: None,
            created_at: t(0),
            last_seen_at: t(0),
            expires_at: t(expires),
            absolute_expires_at: t(10_000),
            idle_timeout: std::time::Duration::from_secs(1800),
            renew_within: std::time::Duration::from_secs(900),
        })
    }

    /// An entry is served only while no call has finished since before its
    /// read, within its time to live, and while the session is live and
    /// not due for renewal.
    #[test]
    fn entries_live_until_any_call_finishes() {
        let finished = Arc::new(AtomicU64::new(0));
        let cache = SessionCache::new(std::time::Duration::from_secs(1), finished.clone());
        let key = TokenHash::from_bytes([7; 32]);
        let s = session(1800);
        let mark = cache.mark();
        cache.put(key, &s, mark, t(0));
        assert!(cache.get(&key, t(0)).is_some());
        // A call finished: everything goes.
        finished.fetch_add(1, Ordering::SeqCst);
        assert!(cache.get(&key, t(0)).is_none());
        assert_eq!(cache.len(), 0);
        // A read that began before a call finished is not kept.
        let stale = cache.mark();
        finished.fetch_add(1, Ordering::SeqCst);
        cache.put(key, &s, stale, t(0));
        assert!(cache.get(&key, t(0)).is_none());
        // Time to live.
        cache.put(key, &s, cache.mark(), t(0));
        assert!(cache.get(&key, t(0)).is_some());
        assert!(cache.get(&key, t(1)).is_none(), "older than the ttl");
        // Due for renewal (less than 15 minutes of idle time left), or
        // ended: not served.
        let short = session(800);
        cache.put(key, &short, cache.mark(), t(0));
        assert!(cache.get(&key, t(0)).is_none(), "renewal due");
        let ended = session(0);
        cache.put(key, &ended, cache.mark(), t(0));
        assert!(cache.get(&key, t(0)).is_none(), "not live");
    }

    /// The cache never holds more than its capacity.
    #[test]
    fn the_cache_is_bounded() {
        let cache = SessionCache::new(
            std::time::Duration::from_secs(60),
            Arc::new(AtomicU64::new(0)),
        );
        let s = session(1800);
        for i in 0..=SESSION_CACHE_CAPACITY as u32 {
            let mut k = [0u8; 32];
            k[..4].copy_from_slice(&i.to_le_bytes());
            cache.put(TokenHash::from_bytes(k), &s, cache.mark(), t(0));
            assert!(cache.len() <= SESSION_CACHE_CAPACITY);
        }
        assert!(cache.len() >= 1);
    }
}
