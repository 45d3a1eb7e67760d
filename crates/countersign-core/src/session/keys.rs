//! The verifying keys (and audience) of each tenant, cached in the
//! service so that a warm verification makes no store call.
//!
//! An entry is refetched when it is older than [`CACHE_TTL`], when the
//! clock went back behind it, and when a token names a `kid` it does not
//! hold (a key rotated on another node), at most once per
//! [`REFETCH_AFTER`] per tenant, so that tokens with made-up `kid`s
//! cannot turn every verification into a store round trip. A rotation
//! through this service forgets the tenant's entry at once.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};

use super::jwt::VerifyingKey;
use crate::error::Result;
use crate::ids::TenantId;

/// How long a tenant's keys are trusted without asking the store (60 s).
pub(crate) const CACHE_TTL: TimeDelta = TimeDelta::seconds(60);

/// The least age of an entry refetched for an unknown `kid` (1 s).
pub(crate) const REFETCH_AFTER: TimeDelta = TimeDelta::seconds(1);

/// What verifying a tenant's tokens needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verifier {
    /// The tenant's `aud`, if it issues access tokens at all.
    pub(crate) audience: Option<String>,
    /// Its keys, public halves only.
    pub(crate) keys: Vec<VerifyingKey>,
}

struct Entry {
    verifier: Arc<Verifier>,
    fetched: DateTime<Utc>,
}

/// A tenant's [`Verifier`]s by tenant, shared by the clones of a service.
#[derive(Clone, Default)]
pub(crate) struct KeyCache {
    entries: Arc<Mutex<HashMap<TenantId, Entry>>>,
}

impl fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("KeyCache").field("tenants", &n).finish()
    }
}

impl KeyCache {
    /// The tenant's verifier for a token naming `kid`, at `now`: the
    /// cached one if it is fresh and knows `kid` (or was fetched too
    /// recently to refetch), else what `fetch` returns, cached. A failed
    /// fetch caches nothing.
    pub(crate) async fn get<F, Fut>(
        &self,
        tenant: TenantId,
        kid: &str,
        now: DateTime<Utc>,
        fetch: F,
    ) -> Result<Arc<Verifier>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Verifier>>,
    {
        if let Some(hit) = self.lookup(tenant, kid, now) {
            return Ok(hit);
        }
        let verifier = Arc::new(fetch().await?);
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                tenant,
                Entry {
                    verifier: Arc::clone(&verifier),
                    fetched: now,
                },
            );
        Ok(verifier)
    }

    fn lookup(&self, tenant: TenantId, kid: &str, now: DateTime<Utc>) -> Option<Arc<Verifier>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let e = entries.get(&tenant)?;
        let age = now.signed_duration_since(e.fetched);
        let fresh = age >= TimeDelta::zero() && age < CACHE_TTL;
        let knows = e.verifier.keys.iter().any(|k| k.kid == kid);
        (fresh && (knows || age < REFETCH_AFTER)).then(|| Arc::clone(&e.verifier))
    }

    /// Forget the tenant's entry (after a rotation).
    pub(crate) fn forget(&self, tenant: TenantId) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&tenant);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn key(kid: &str) -> VerifyingKey {
        VerifyingKey {
            kid: kid.into(),
            algorithm: crate::session::SigningAlgorithm::EdDsa,
            public_key: vec![0; 32],
            verify_until: None,
        }
    }

    /// Verifications against a warm cache make no store call; an unknown
    /// kid refetches (at most once a second), and so does age.
    #[tokio::test]
    async fn a_warm_cache_makes_no_store_call() {
        let cache = KeyCache::default();
        let tenant = TenantId::from_uuid(uuid::Uuid::from_u128(7));
        let fetches = AtomicUsize::new(0);
        let kids = Mutex::new(vec![key("a")]);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok(Verifier {
                audience: Some("api".into()),
                keys: kids.lock().unwrap().clone(),
            })
        };
        let t0 = DateTime::<Utc>::from_timestamp(1_000_000, 0).unwrap();
        for i in 0..50 {
            let v = cache
                .get(tenant, "a", t0 + TimeDelta::milliseconds(i * 100), fetch)
                .await
                .unwrap();
            assert_eq!(v.keys.len(), 1);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1, "one fetch for 50 checks");
        // A made-up kid right after a fetch: no store call.
        let t = t0 + TimeDelta::seconds(5);
        cache.get(tenant, "zz", t, fetch).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 2, "refetched once for zz");
        cache.get(tenant, "zz", t, fetch).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 2, "not again within 1 s");
        // A key rotated elsewhere is found on its first use.
        kids.lock().unwrap().push(key("b"));
        let v = cache
            .get(tenant, "b", t + TimeDelta::seconds(2), fetch)
            .await
            .unwrap();
        assert_eq!(v.keys.len(), 2);
        assert_eq!(fetches.load(Ordering::SeqCst), 3);
        // Old entries are refetched; forgotten ones too.
        cache
            .get(tenant, "a", t + TimeDelta::seconds(63), fetch)
            .await
            .unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 4);
        cache.forget(tenant);
        cache
            .get(tenant, "a", t + TimeDelta::seconds(63), fetch)
            .await
            .unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 5);
    }
}
