//! Integration tests of countersign-oidc, one binary: a local issuer on
//! 127.0.0.1 (`issuer.rs`) serving a discovery document and a key set;
//! discovery then verification end to end through `ReqwestFetch`, key
//! rotation found by the refetch, and the fetcher's bounds (body cap while
//! streaming, no redirects, timeouts, https only off loopback). Every test
//! talks to 127.0.0.1 only, and is bounded in time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    unreachable_pub,
    reason = "tests"
)]

mod fetch;
mod issuer;
mod sign_in;
mod verify;

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng as _;
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};

/// The client id registered at the test issuer.
pub const CLIENT: &str = "countersign-test-client";

/// The fixed time of the tests (2026-01-01T00:00:00Z): tokens are checked
/// against it, never against the wall clock.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap()
}

/// Two 2048-bit RSA keys, generated once (seeded).
pub fn rsa_key(i: usize) -> &'static rsa::RsaPrivateKey {
    static KEYS: OnceLock<Vec<rsa::RsaPrivateKey>> = OnceLock::new();
    &KEYS.get_or_init(|| {
        (0..2u64)
            .map(|s| {
                rsa::RsaPrivateKey::new(&mut ChaCha20Rng::seed_from_u64(s + 11), 2048).unwrap()
            })
            .collect()
    })[i]
}

/// The public JWK of RSA key `i`, named `kid`.
pub fn jwk(i: usize, kid: &str) -> Value {
    let key = rsa_key(i).to_public_key();
    json!({
        "kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
        "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
    })
}

/// A key set document.
pub fn jwks(keys: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "keys": keys })).unwrap()
}

/// An ID token from `issuer` for [`CLIENT`], issued 10 s before `at`,
/// signed with RSA key `i` under `kid`.
pub fn id_token(issuer: &str, i: usize, kid: &str, at: DateTime<Utc>) -> String {
    let t = at.timestamp();
    let claims = json!({
        "iss": issuer, "aud": CLIENT, "sub": "user-42",
        "iat": t - 10, "exp": t + 3590, "nonce": "nonce-1",
        "email": "bob@example.com", "email_verified": true,
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let der = rsa_key(i).to_pkcs1_der().unwrap();
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_der(der.as_bytes())).unwrap()
}
