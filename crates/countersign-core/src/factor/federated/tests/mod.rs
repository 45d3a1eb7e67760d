//! Tests of ID token verification: a local issuer with generated keys
//! (RS256 with `rsa`, ES256 with `p256`), tokens signed with
//! `jsonwebtoken::encode`, a counting fake fetcher, and a fixed `now`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng as _;
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};

use super::*;

mod config;
mod jwks;
mod verify;

/// The client id the tests' tenant registered.
const CLIENT: &str = "client-1.apps.example";

/// The fixed time of every test: 2026-01-01T00:00:00Z.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap()
}

fn secs(s: i64) -> TimeDelta {
    TimeDelta::seconds(s)
}

/// Two 2048-bit RSA keys, generated once per test binary (seeded).
fn rsa_key(i: usize) -> &'static rsa::RsaPrivateKey {
    static KEYS: OnceLock<Vec<rsa::RsaPrivateKey>> = OnceLock::new();
    &KEYS.get_or_init(|| {
        (0..2u64)
            .map(|seed| {
                rsa::RsaPrivateKey::new(&mut ChaCha20Rng::seed_from_u64(seed + 1), 2048).unwrap()
            })
            .collect()
    })[i]
}

/// A P-256 key (seeded).
fn es_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::random(&mut ChaCha20Rng::seed_from_u64(7))
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The public JWK of RSA key `i`, named `kid`.
fn rsa_jwk(i: usize, kid: &str) -> Value {
    let key = rsa_key(i).to_public_key();
    json!({
        "kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
        "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be()),
    })
}

/// The public JWK of the P-256 key, named `kid`.
fn es_jwk(kid: &str) -> Value {
    let point = es_key().verifying_key().to_encoded_point(false);
    json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
        "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()),
    })
}

/// A key set document of `keys`.
fn jwks_body(keys: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "keys": keys })).unwrap()
}

/// `claims` signed with RSA key `i` (RS256), header `kid`.
fn sign_rs(i: usize, kid: &str, claims: &Value) -> String {
    let der = rsa_key(i).to_pkcs1_der().unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(der.as_bytes())).unwrap()
}

/// `claims` signed with the P-256 key (ES256), header `kid`.
fn sign_es(kid: &str, claims: &Value) -> String {
    let der = p256::pkcs8::EncodePrivateKey::to_pkcs8_der(&es_key()).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(der.as_bytes())).unwrap()
}

/// A token from raw header and claims JSON and a raw signature part.
fn hand_crafted(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64(&serde_json::to_vec(header).unwrap()),
        b64(&serde_json::to_vec(claims).unwrap())
    )
}

/// Valid claims from Google for [`CLIENT`], issued 10 s before [`now`].
fn claims() -> Value {
    let t = now().timestamp();
    json!({
        "iss": GOOGLE_ISSUER,
        "aud": CLIENT,
        "sub": "110169484474386276334",
        "iat": t - 10,
        "exp": t + 3590,
        "nonce": "n-0S6_WzA2Mj",
        "email": "alice@Example.com",
        "email_verified": true,
        "name": "Alice Example",
    })
}

/// `claims()` issued 10 s before `t`.
fn claims_at(t: DateTime<Utc>) -> Value {
    let mut c = claims();
    c["iat"] = json!(t.timestamp() - 10);
    c["exp"] = json!(t.timestamp() + 3590);
    c
}

/// `claims()` with `key` set to `value` (`Value::Null` removes it).
fn with(key: &str, value: Value) -> Value {
    let mut c = claims();
    let map = c.as_object_mut().unwrap();
    if value.is_null() {
        map.remove(key);
    } else {
        map.insert(key.to_owned(), value);
    }
    c
}

/// A fetcher serving one body (or failure) at one URL, counting calls;
/// clones share the body, the count and the gate. Each call yields to the
/// runtime a few times and waits while a test holds the gate (to make
/// concurrent lookups overlap).
#[derive(Clone)]
struct FakeFetch {
    url: String,
    body: Arc<Mutex<Result<Vec<u8>, FetchError>>>,
    calls: Arc<AtomicUsize>,
    gate: Arc<tokio::sync::RwLock<()>>,
}

impl FakeFetch {
    fn new(url: &str, body: Vec<u8>) -> Self {
        Self {
            url: url.to_owned(),
            body: Arc::new(Mutex::new(Ok(body))),
            calls: Arc::new(AtomicUsize::new(0)),
            gate: Arc::new(tokio::sync::RwLock::new(())),
        }
    }

    /// Google's key set URL serving `keys`.
    fn google(keys: &[Value]) -> Self {
        Self::new(GOOGLE_JWKS_URL, jwks_body(keys))
    }

    fn serve(&self, body: Result<Vec<u8>, FetchError>) {
        *self.body.lock().unwrap_or_else(PoisonError::into_inner) = body;
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl HttpFetch for FakeFetch {
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        assert_eq!(url, self.url, "fetched an unexpected url");
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
        let _open = self.gate.read().await;
        self.body
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A verifier of Google tokens for [`CLIENT`] over `fetch`.
fn google_verifier(fetch: &FakeFetch) -> IdTokenVerifier {
    IdTokenVerifier::new(IssuerConfig::google(CLIENT), fetch.clone()).unwrap()
}
