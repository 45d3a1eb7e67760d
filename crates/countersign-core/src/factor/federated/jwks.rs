//! An issuer's signing keys, fetched and cached ([`JwksCache`]).
//!
//! The key set is fetched when first needed, again once it is older than
//! the TTL (default 1 h), and when a token names a `kid` the cache does not
//! hold (a key the issuer rotated in), but never more than once per
//! minimum refetch interval (default 60 s): a flood of tokens with made-up
//! `kid`s makes at most one fetch a minute. Concurrent lookups that need a
//! fetch share one. A failed fetch keeps the keys held; a `kid` they do not
//! have stays unknown (fail closed).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use serde::Deserialize;

use super::config::MAX_KEYS;
use super::{DynHttpFetch, FetchError, HttpFetch, IdTokenAlgorithm, IdTokenError, JwksSource};

/// The largest key set document accepted (256 KiB).
pub(crate) const MAX_JWKS_BYTES: usize = 256 * 1024;

/// The least RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_BYTES: usize = 256;

/// The kind of a public key, which fixes the algorithms it verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

/// One usable verifying key of an issuer: a public key, its `kid`, and the
/// algorithm it is restricted to, if its JWK names one. Its `Debug` shows
/// the `kid` and the kind of key, never the key.
#[derive(Clone)]
pub struct CachedKey {
    kid: Option<String>,
    alg: Option<String>,
    kind: KeyKind,
    decoding: DecodingKey,
}

impl fmt::Debug for CachedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl CachedKey {
    /// The key from a JWK, if it can verify signatures here: `use` absent
    /// or `sig`, `key_ops` absent or with `verify`, an RSA key of at least
    /// 2048 bits, a P-256 or P-384 key, or an Ed25519 key. Symmetric
    /// (`oct`) keys are never usable.
    pub(crate) fn from_jwk(jwk: &Jwk) -> Option<Self> {
        let common = &jwk.common;
        if common
            .public_key_use
            .as_ref()
            .is_some_and(|u| *u != PublicKeyUse::Signature)
        {
            return None;
        }
        if common
            .key_operations
            .as_ref()
            .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
        {
            return None;
        }
        let kind = match &jwk.algorithm {
            AlgorithmParameters::RSA(p) => {
                let n = URL_SAFE_NO_PAD.decode(p.n.trim_end_matches('=')).ok()?;
                let significant = n.iter().skip_while(|b| **b == 0).count();
                if significant < MIN_RSA_BYTES {
                    return None;
                }
                KeyKind::Rsa
            }
            AlgorithmParameters::EllipticCurve(p) => match p.curve {
                EllipticCurve::P256 => KeyKind::P256,
                EllipticCurve::P384 => KeyKind::P384,
                _ => return None,
            },
            AlgorithmParameters::OctetKeyPair(p) => match p.curve {
                EllipticCurve::Ed25519 => KeyKind::Ed25519,
                _ => return None,
            },
            AlgorithmParameters::OctetKey(_) => return None,
        };
        let decoding = DecodingKey::from_jwk(jwk).ok()?;
        Some(Self {
            kid: common.key_id.clone(),
            alg: common.key_algorithm.map(|a| a.to_string()),
            kind,
            decoding,
        })
    }

    /// The key's `kid`, if its JWK has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Whether this key verifies `alg`: a key of the algorithm's type
    /// (RSA for RS*/PS*, P-256 for ES256, ...), and the JWK's own `alg`, if
    /// it names one, is `alg`.
    pub fn fits(&self, alg: IdTokenAlgorithm) -> bool {
        use IdTokenAlgorithm as A;
        let kind_fits = match alg {
            A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512 => {
                self.kind == KeyKind::Rsa
            }
            A::ES256 => self.kind == KeyKind::P256,
            A::ES384 => self.kind == KeyKind::P384,
            A::EdDSA => self.kind == KeyKind::Ed25519,
        };
        kind_fits && self.alg.as_deref().is_none_or(|a| a == alg.as_str())
    }

    /// The key as `jsonwebtoken` verifies with it.
    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }
}

/// The usable keys of a key set document: JSON `{"keys": [...]}` of at most
/// 256 KiB and 64 keys. A key this module cannot use (an unknown type, a
/// symmetric key, an encryption key, a short RSA modulus) is skipped, not
/// an error.
pub(crate) fn parse_jwks(body: &[u8]) -> Result<Vec<Arc<CachedKey>>, FetchError> {
    #[derive(Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    if body.len() > MAX_JWKS_BYTES {
        return Err(FetchError::TooLarge {
            limit: MAX_JWKS_BYTES,
        });
    }
    let raw: RawSet = serde_json::from_slice(body)
        .map_err(|_| FetchError::InvalidDocument("not a jwk set".into()))?;
    if raw.keys.len() > MAX_KEYS {
        return Err(FetchError::InvalidDocument("more than 64 keys".into()));
    }
    Ok(raw
        .keys
        .into_iter()
        .filter_map(|v| serde_json::from_value::<Jwk>(v).ok())
        .filter_map(|jwk| CachedKey::from_jwk(&jwk))
        .map(Arc::new)
        .collect())
}

/// The key among `keys` for a token naming `kid` and `alg`: the one with
/// that `kid` which fits `alg`; a token without `kid` is answered only
/// when the set has exactly one key (OpenID Connect Core §10.1).
fn pick(
    keys: &[Arc<CachedKey>],
    kid: Option<&str>,
    alg: IdTokenAlgorithm,
) -> Option<Arc<CachedKey>> {
    match kid {
        Some(kid) => keys
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid) && k.fits(alg))
            .cloned(),
        None => match keys {
            [only] if only.fits(alg) => Some(only.clone()),
            _ => None,
        },
    }
}

/// What the cache holds for a fetched key set.
#[derive(Default)]
struct State {
    /// The keys of the last successful fetch.
    keys: Vec<Arc<CachedKey>>,
    /// When they were fetched; `None` before the first success.
    fetched_at: Option<DateTime<Utc>>,
    /// When a fetch last started, successful or not: what the rate limit
    /// counts from.
    last_attempt: Option<DateTime<Utc>>,
    /// Why the last fetch failed, until one succeeds.
    last_error: Option<FetchError>,
    /// Whether a fetch is under way (under the fetch lock).
    in_flight: bool,
}

/// Marks a fetch under way; clears the mark when dropped (the fetch ended,
/// or the lookup that ran it was cancelled).
struct InFlight<'a>(&'a JwksCache);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.lock().in_flight = false;
    }
}

/// What a lookup does, decided from the state at `now`.
enum Decision {
    /// Answer this key.
    Use(Arc<CachedKey>),
    /// Answer this error.
    Refuse(IdTokenError),
    /// The key is held but the set is stale: refresh it, unless another
    /// lookup is already doing so, in which case answer this key.
    Stale(Arc<CachedKey>),
    /// Fetch the set, then answer from it.
    Fetch,
    /// A fetch is under way and the rate limit allows no other: wait for
    /// it, then answer from what it brought.
    Wait,
}

/// The key set of one issuer ([`JwksSource`]), cached. Cheap to share
/// behind the [`IdTokenVerifier`](super::IdTokenVerifier) that owns it;
/// safe to use from many tasks at once.
pub struct JwksCache {
    /// The URL to fetch, or `None` for a static set.
    url: Option<String>,
    /// A static set's keys (never refetched).
    fixed: Vec<Arc<CachedKey>>,
    ttl: TimeDelta,
    min_refetch: TimeDelta,
    state: Mutex<State>,
    /// Held across a fetch, so that concurrent lookups make one fetch.
    fetching: tokio::sync::Mutex<()>,
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("JwksCache")
            .field("url", &self.url)
            .field("keys", &(self.fixed.len() + state.keys.len()))
            .field("fetched_at", &state.fetched_at)
            .field("ttl", &self.ttl)
            .field("min_refetch", &self.min_refetch)
            .finish()
    }
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

impl JwksCache {
    /// How long a fetched key set is used before it is fetched again (1 h).
    pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

    /// The least time between two fetches, whatever the tokens ask (60 s).
    pub const DEFAULT_MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

    /// A cache of `source`'s keys, empty until the first lookup fetches
    /// them (a static set is parsed now: its unusable keys are left out).
    pub fn new(source: &JwksSource) -> Self {
        let (url, fixed) = match source {
            JwksSource::Url(url) => (Some(url.clone()), Vec::new()),
            JwksSource::Static(set) => (
                None,
                set.keys
                    .iter()
                    .filter_map(CachedKey::from_jwk)
                    .map(Arc::new)
                    .collect(),
            ),
        };
        Self {
            url,
            fixed,
            ttl: delta(Self::DEFAULT_TTL),
            min_refetch: delta(Self::DEFAULT_MIN_REFETCH_INTERVAL),
            state: Mutex::new(State::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// Use fetched keys for `ttl` before fetching them again.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = delta(ttl);
        self
    }

    /// Fetch at most once per `interval`, for a stale set as for an
    /// unknown `kid`.
    pub fn with_min_refetch_interval(mut self, interval: Duration) -> Self {
        self.min_refetch = delta(interval);
        self
    }

    /// When the keys held were fetched (`None`: never, or a static set).
    pub fn fetched_at(&self) -> Option<DateTime<Utc>> {
        self.lock().fetched_at
    }

    /// How many usable keys the cache holds.
    pub fn key_count(&self) -> usize {
        self.fixed.len() + self.lock().keys.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key for a token naming `kid` (if any) and `alg`, at `now`,
    /// fetching through `fetch` when the set is missing or stale or lacks
    /// `kid`, within the rate limit. [`IdTokenError::UnknownKey`] when no
    /// key fits; [`IdTokenError::Fetch`] when the keys could not be had.
    pub async fn key<F: HttpFetch>(
        &self,
        fetch: &F,
        kid: Option<&str>,
        alg: IdTokenAlgorithm,
        now: DateTime<Utc>,
    ) -> Result<Arc<CachedKey>, IdTokenError> {
        self.key_dyn(fetch, kid, alg, now).await
    }

    pub(crate) async fn key_dyn(
        &self,
        fetch: &dyn DynHttpFetch,
        kid: Option<&str>,
        alg: IdTokenAlgorithm,
        now: DateTime<Utc>,
    ) -> Result<Arc<CachedKey>, IdTokenError> {
        let Some(url) = &self.url else {
            return pick(&self.fixed, kid, alg).ok_or(IdTokenError::UnknownKey);
        };
        let _guard = match self.decide(kid, alg, now) {
            Decision::Use(key) => return Ok(key),
            Decision::Refuse(e) => return Err(e),
            Decision::Stale(key) => match self.fetching.try_lock() {
                Ok(guard) => guard,
                // Another lookup is refreshing: the held key serves meanwhile.
                Err(_) => return Ok(key),
            },
            Decision::Fetch | Decision::Wait => self.fetching.lock().await,
        };
        // Under the fetch lock: a fetch that finished while this lookup
        // waited may have answered it, or used up the rate limit.
        match self.decide(kid, alg, now) {
            Decision::Use(key) => return Ok(key),
            Decision::Refuse(e) => return Err(e),
            Decision::Stale(_) | Decision::Fetch => {}
            // No fetch is under way while this lookup holds the lock.
            Decision::Wait => return Err(IdTokenError::UnknownKey),
        }
        let fetched = {
            {
                let mut state = self.lock();
                state.last_attempt = Some(now);
                state.in_flight = true;
            }
            let _in_flight = InFlight(self);
            fetch.get_dyn(url).await.and_then(|body| parse_jwks(&body))
        };
        let mut state = self.lock();
        match fetched {
            Ok(keys) => {
                state.keys = keys;
                state.fetched_at = Some(now);
                state.last_error = None;
            }
            Err(e) => {
                tracing::warn!(url = %url, error = %e, "fetching an issuer's key set failed; the keys held are kept");
                state.last_error = Some(e);
            }
        }
        match pick(&state.keys, kid, alg) {
            Some(key) => Ok(key),
            None => Err(match &state.last_error {
                Some(e) => IdTokenError::Fetch(e.clone()),
                None => IdTokenError::UnknownKey,
            }),
        }
    }

    /// What a lookup of `kid` and `alg` does at `now`.
    fn decide(&self, kid: Option<&str>, alg: IdTokenAlgorithm, now: DateTime<Utc>) -> Decision {
        let state = self.lock();
        // A set fetched "in the future" (the clock went back) is stale.
        let fresh = state
            .fetched_at
            .is_some_and(|t| t <= now && now - t < self.ttl);
        let may_fetch = state
            .last_attempt
            .is_none_or(|t| now < t || now - t >= self.min_refetch);
        match (pick(&state.keys, kid, alg), fresh, may_fetch) {
            (Some(key), true, _) | (Some(key), false, false) => Decision::Use(key),
            (Some(key), false, true) => Decision::Stale(key),
            (None, _, true) => Decision::Fetch,
            (None, _, false) if state.in_flight => Decision::Wait,
            (None, _, false) => Decision::Refuse(match &state.last_error {
                Some(e) => IdTokenError::Fetch(e.clone()),
                None => IdTokenError::UnknownKey,
            }),
        }
    }
}
