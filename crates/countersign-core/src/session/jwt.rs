//! Signed JWT access tokens (`typ: at+jwt` as RFC 9068 says) and the
//! JWKS document.
//!
//! A tenant signs with EdDSA (Ed25519, the default), ES256 (P-256) or
//! RS256 (2048-bit RSA): [`SigningAlgorithm`], chosen in its
//! [`AccessTokenPolicy`](super::AccessTokenPolicy). Every key records its
//! algorithm, and a token verifies only under a key of its tenant with its
//! `kid` whose algorithm is the token's `alg`: `none`, HMAC and any other
//! `alg` are refused before a key is looked at, so a public key can never
//! be used as an HMAC secret.
//!
//! Verification is offline: a token verifies until its `exp` (plus
//! [`LEEWAY`]) whatever happens to its session meanwhile, so logout,
//! suspension, erasure or a password change leave already minted tokens
//! usable for at most the tenant's access-token lifetime. Callers that
//! must not accept that window check the session too
//! ([`SessionService::verify_access_token_live`]; introspection always
//! does).
//!
//! [`SessionService::verify_access_token_live`]: crate::SessionService::verify_access_token_live
//!
//! The private halves of signing keys are stored sealed when the service
//! has a [`Sealer`] (bound to the tenant and `kid`), in the clear
//! otherwise ([`seal_signing_key`], [`sign`]); see [`seal`](crate::seal).

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng as _;
use rsa::pkcs1::{DecodeRsaPublicKey as _, EncodeRsaPrivateKey as _, EncodeRsaPublicKey as _};
use rsa::traits::PublicKeyParts as _;
use serde::{Deserialize, Serialize};

pub use super::SigningAlgorithm;
use super::SigningKeyRecord;
use crate::env::Env;
use crate::error::{Error, Result};
use crate::factor::FactorKind;
use crate::flow::AuthRecord;
use crate::ids::{SessionId, TenantId};
use crate::seal::{SealError, Sealer, StoredSecret, signing_key_context};

/// The `typ` header of access tokens (RFC 9068).
pub const TYP: &str = "at+jwt";

/// Clock skew tolerated on `exp`, `nbf` and `iat` (30 s).
pub const LEEWAY: i64 = 30;

/// The size of RS256 keys, in bits.
pub const RSA_BITS: usize = 2048;

impl SigningAlgorithm {
    /// The same algorithm as `jsonwebtoken` names it.
    fn jws(self) -> Algorithm {
        match self {
            Self::EdDsa => Algorithm::EdDSA,
            Self::Es256 => Algorithm::ES256,
            Self::Rs256 => Algorithm::RS256,
        }
    }
}

/// What a verifier expects of a token besides its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected<'a> {
    /// `iss`.
    pub issuer: &'a str,
    /// `aud`.
    pub audience: &'a str,
    /// `tid`: the tenant the token must belong to.
    pub tenant: TenantId,
}

/// The public half of a signing key, as verification needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    /// The key id (`kid`).
    pub kid: String,
    /// The only `alg` it verifies.
    pub algorithm: SigningAlgorithm,
    /// The public key, encoded as [`SigningKeyRecord::public_key`] is.
    pub public_key: Vec<u8>,
    /// Until when tokens it signed verify (`None`: still signing).
    pub verify_until: Option<DateTime<Utc>>,
}

impl VerifyingKey {
    /// Whether tokens it signed verify at `now`.
    pub fn verifies_at(&self, now: DateTime<Utc>) -> bool {
        self.verify_until.is_none_or(|u| now < u)
    }
}

impl From<&SigningKeyRecord> for VerifyingKey {
    fn from(k: &SigningKeyRecord) -> Self {
        Self {
            kid: k.kid.clone(),
            algorithm: k.algorithm,
            public_key: k.public_key.clone(),
            verify_until: k.verify_until,
        }
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user id.
    pub sub: String,
    /// Audience.
    pub aud: String,
    /// Expiry (unix seconds).
    pub exp: i64,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Not before (unix seconds).
    pub nbf: i64,
    /// Token id.
    pub jti: String,
    /// Tenant id.
    pub tid: String,
    /// Session id.
    pub sid: String,
    /// Authentication methods (RFC 8176 values).
    pub amr: Vec<String>,
    /// Authentication context: `mfa` or `sfa`.
    pub acr: String,
    /// When the user authenticated (unix seconds).
    pub auth_time: i64,
    /// The tenant's slug, when its policy asks for it
    /// ([`AccessTokenClaims::tenant`](super::AccessTokenClaims::tenant)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The user's roles in the service the tenant's policy names
    /// ([`AccessTokenClaims::roles_in`](super::AccessTokenClaims::roles_in)),
    /// as they were when the token was minted; absent when it names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// The user's tier when the token was minted, when the tenant's policy
    /// asks for it ([`AccessTokenClaims::tier`](super::AccessTokenClaims::tier))
    /// and the user has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
}

/// Why an access token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// Not a JWT, or its parts do not decode.
    #[error("malformed token")]
    Malformed,
    /// `alg` is not one of EdDSA, ES256, RS256 (`none` and HMAC included),
    /// or not the algorithm of the key its `kid` names.
    #[error("algorithm not accepted")]
    Algorithm,
    /// No `kid`, or no key of the tenant with that id (or it no longer verifies).
    #[error("unknown signing key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad signature")]
    Signature,
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `nbf`/`iat` lie in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is not this issuer.
    #[error("wrong issuer")]
    Issuer,
    /// `aud` is not the tenant's audience.
    #[error("wrong audience")]
    Audience,
    /// The `typ` header is not `at+jwt`.
    #[error("not an access token")]
    Type,
    /// `tid` is not the tenant asked for.
    #[error("wrong tenant")]
    Tenant,
    /// The token's session has ended (checked only when asked for).
    #[error("session ended")]
    SessionEnded,
}

/// The RFC 8176 `amr` values of an authentication, and whether it was
/// multi-factor.
pub fn amr_of(auth: &AuthRecord) -> (Vec<String>, bool) {
    let mut out: Vec<String> = auth
        .factors
        .iter()
        .map(|f| match f.kind {
            FactorKind::Password => "pwd",
            FactorKind::Totp | FactorKind::EmailOtp | FactorKind::RecoveryCodes => "otp",
            FactorKind::Passkey => "hwk",
            FactorKind::OidcIdToken => "fed",
        })
        .map(str::to_owned)
        .collect();
    out.sort();
    out.dedup();
    let mut kinds: Vec<&str> = auth.factors.iter().map(|f| f.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let mfa = kinds.len() >= 2;
    if mfa {
        out.push("mfa".into());
    }
    (out, mfa)
}

/// A random generator for the key-generation crates (which take a
/// `rand_core` 0.6 `CryptoRng`): ChaCha20 seeded with 256 bits drawn from
/// the environment. Drawing the seed is the one fallible step (their
/// `fill_bytes` cannot fail), and a seeded environment yields the same keys
/// every run.
fn key_rng(env: &Env) -> Result<ChaCha20Rng> {
    Ok(ChaCha20Rng::from_seed(env.random_bytes()?))
}

fn encoding_error(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::internal_from("signing key encoding", e)
}

/// A fresh signing key of `algorithm` for `tenant`, created `now`, from
/// the environment's random source. Its private half is in the clear:
/// [`seal_signing_key`] it before storing it. An RS256 key takes a while
/// (a 2048-bit RSA key generation: tens to hundreds of milliseconds).
pub fn new_signing_key(
    env: &Env,
    tenant: TenantId,
    algorithm: SigningAlgorithm,
    now: DateTime<Utc>,
) -> Result<SigningKeyRecord> {
    let (private_key, public_key) = match algorithm {
        SigningAlgorithm::EdDsa => {
            let seed: [u8; 32] = env.random_bytes()?;
            let key = ed25519_dalek::SigningKey::from_bytes(&seed);
            (seed.to_vec(), key.verifying_key().to_bytes().to_vec())
        }
        SigningAlgorithm::Es256 => {
            let key = p256::ecdsa::SigningKey::random(&mut key_rng(env)?);
            let der = p256::pkcs8::EncodePrivateKey::to_pkcs8_der(&key).map_err(encoding_error)?;
            let point = key.verifying_key().to_encoded_point(false);
            (der.as_bytes().to_vec(), point.as_bytes().to_vec())
        }
        SigningAlgorithm::Rs256 => {
            let key =
                rsa::RsaPrivateKey::new(&mut key_rng(env)?, RSA_BITS).map_err(encoding_error)?;
            let der = key.to_pkcs1_der().map_err(encoding_error)?;
            let public = key.to_public_key().to_pkcs1_der().map_err(encoding_error)?;
            (der.as_bytes().to_vec(), public.as_bytes().to_vec())
        }
    };
    let kid_bytes: [u8; 12] = env.random_bytes()?;
    Ok(SigningKeyRecord {
        tenant_id: tenant,
        kid: URL_SAFE_NO_PAD.encode(kid_bytes),
        algorithm,
        private_key,
        public_key,
        created_at: now,
        retired_at: None,
        verify_until: None,
    })
}

/// `key` as it is to be stored: its private half sealed by `sealer` for its
/// tenant and `kid` (in the clear without a sealer; kept as it is if it is
/// sealed already).
pub fn seal_signing_key(
    mut key: SigningKeyRecord,
    sealer: Option<&Sealer>,
    env: &Env,
) -> Result<SigningKeyRecord> {
    if let StoredSecret::Plain(secret) = key.stored_private_key()? {
        let context = signing_key_context(key.tenant_id, &key.kid);
        if let StoredSecret::Sealed(sealed) = StoredSecret::seal(sealer, env, &secret, &context)? {
            key.private_key = String::from(sealed).into_bytes();
        }
    }
    Ok(key)
}

/// The private half of `key` as `jsonwebtoken` signs with it: opened by
/// `sealer` if it is sealed, as stored if it is not. Fails closed with a
/// [`SealError`] (no sealer, a key it does not list, another row's value).
fn encoding_key(key: &SigningKeyRecord, sealer: Option<&Sealer>) -> Result<EncodingKey> {
    let context = signing_key_context(key.tenant_id, &key.kid);
    let secret = key.stored_private_key()?.open(sealer, &context)?;
    Ok(match key.algorithm {
        SigningAlgorithm::EdDsa => {
            let seed: [u8; 32] = secret
                .as_slice()
                .try_into()
                .map_err(|_| SealError::Malformed)?;
            let der = ed25519_dalek::SigningKey::from_bytes(&seed)
                .to_pkcs8_der()
                .map_err(encoding_error)?;
            EncodingKey::from_ed_der(der.as_bytes())
        }
        SigningAlgorithm::Es256 => EncodingKey::from_ec_der(&secret),
        SigningAlgorithm::Rs256 => EncodingKey::from_rsa_der(&secret),
    })
}

/// Sign `claims` with `key` (a JWS of its algorithm, `typ: at+jwt`, its
/// `kid`), opening its private half with `sealer` when it is sealed (fail
/// closed: a [`SealError`]).
pub fn sign(
    key: &SigningKeyRecord,
    sealer: Option<&Sealer>,
    claims: &AccessClaims,
) -> Result<String> {
    let encoding = encoding_key(key, sealer)?;
    let mut header = Header::new(key.algorithm.jws());
    header.typ = Some(TYP.to_owned());
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &encoding)
        .map_err(|e| Error::internal_from("jwt signing", e))
}

/// What a token says about itself before it is verified: only to choose
/// the key that must then verify it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peeked {
    /// `alg`: one of the accepted algorithms.
    pub algorithm: SigningAlgorithm,
    /// `kid`.
    pub kid: String,
    /// `tid`.
    pub tenant: TenantId,
}

/// The unverified `alg`, `kid` and `tid` of a token: only to choose the key
/// that must then verify it. An `alg` other than EdDSA, ES256 and RS256
/// (`none`, HMAC, ...) is refused here.
pub fn peek(token: &str) -> Result<Peeked, JwtError> {
    if token.len() > 8192 {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    #[derive(Deserialize)]
    struct Head {
        alg: String,
        typ: Option<String>,
        kid: Option<String>,
    }
    let head: Head = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    // Only the three signature algorithms, never `none` nor a MAC, whatever
    // the rest says.
    let algorithm = head
        .alg
        .parse::<SigningAlgorithm>()
        .map_err(|_| JwtError::Algorithm)?;
    // RFC 9068: `at+jwt` (or `application/at+jwt`), case-insensitively.
    let typ = head.typ.as_deref().unwrap_or_default().to_ascii_lowercase();
    if typ != TYP && typ != "application/at+jwt" {
        return Err(JwtError::Type);
    }
    let kid = head.kid.ok_or(JwtError::UnknownKey)?;
    #[derive(Deserialize)]
    struct Tid {
        tid: String,
    }
    let tid: Tid = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    let tenant = tid
        .tid
        .parse::<TenantId>()
        .map_err(|_| JwtError::Malformed)?;
    Ok(Peeked {
        algorithm,
        kid,
        tenant,
    })
}

/// Verify `token` against the tenant's `keys` at `now`: `typ: at+jwt`, a
/// known `kid` whose key still verifies and whose algorithm is the token's
/// `alg`, a good signature, the expected issuer, audience and tenant, and
/// `nbf, iat <= now < exp` within [`LEEWAY`] (time from the caller's clock,
/// never the wall clock).
pub fn verify(
    token: &str,
    keys: &[VerifyingKey],
    expected: &Expected<'_>,
    now: DateTime<Utc>,
) -> Result<AccessClaims, JwtError> {
    let head = peek(token)?;
    if head.tenant != expected.tenant {
        return Err(JwtError::Tenant);
    }
    let key = keys
        .iter()
        .find(|k| k.kid == head.kid && k.verifies_at(now))
        .ok_or(JwtError::UnknownKey)?;
    // A key verifies its own algorithm only: an ES256 header on an RS256
    // key's kid is refused here, before any signature check.
    if key.algorithm != head.algorithm {
        return Err(JwtError::Algorithm);
    }
    // The key as the JWKS publishes it: what this verifies with is what
    // every other verifier gets.
    let decoding = JwkKey::of(key.algorithm, &key.public_key)
        .and_then(|k| k.decoding_key())
        .ok_or(JwtError::UnknownKey)?;
    let mut validation = Validation::new(key.algorithm.jws());
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims = HashSet::new();
    let data =
        jsonwebtoken::decode::<AccessClaims>(token, &decoding, &validation).map_err(|e| match e
            .kind()
        {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => JwtError::Signature,
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => JwtError::Algorithm,
            _ => JwtError::Malformed,
        })?;
    let c = data.claims;
    if c.iss != expected.issuer {
        return Err(JwtError::Issuer);
    }
    if c.aud != expected.audience {
        return Err(JwtError::Audience);
    }
    if c.tid.parse::<TenantId>().ok() != Some(expected.tenant) {
        return Err(JwtError::Tenant);
    }
    let t = now.timestamp();
    if t >= c.exp.saturating_add(LEEWAY) {
        return Err(JwtError::Expired);
    }
    let t_late = t.saturating_add(LEEWAY);
    if c.nbf > t_late || c.iat > t_late {
        return Err(JwtError::NotYetValid);
    }
    Ok(c)
}

/// The public parameters of a JWK, by key type (`kty`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kty")]
pub enum JwkKey {
    /// `OKP` (RFC 8037): an Ed25519 key.
    #[serde(rename = "OKP")]
    Okp {
        /// `Ed25519`.
        crv: String,
        /// The public key, base64url.
        x: String,
    },
    /// `EC` (RFC 7518 §6.2): a P-256 key.
    #[serde(rename = "EC")]
    Ec {
        /// `P-256`.
        crv: String,
        /// The x coordinate, 32 bytes big-endian, base64url.
        x: String,
        /// The y coordinate, 32 bytes big-endian, base64url.
        y: String,
    },
    /// `RSA` (RFC 7518 §6.3).
    #[serde(rename = "RSA")]
    Rsa {
        /// The modulus, big-endian, base64url.
        n: String,
        /// The public exponent, big-endian, base64url.
        e: String,
    },
}

impl JwkKey {
    /// The parameters of a public key of `algorithm` encoded as
    /// [`SigningKeyRecord::public_key`] is; `None` if it is malformed.
    pub fn of(algorithm: SigningAlgorithm, public_key: &[u8]) -> Option<Self> {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        match algorithm {
            SigningAlgorithm::EdDsa => (public_key.len() == 32).then(|| Self::Okp {
                crv: "Ed25519".into(),
                x: b64(public_key),
            }),
            SigningAlgorithm::Es256 => {
                // SEC1 uncompressed: 0x04 || x || y.
                let (tag, xy) = public_key.split_first()?;
                if *tag != 0x04 || xy.len() != 64 {
                    return None;
                }
                let (x, y) = xy.split_at(32);
                Some(Self::Ec {
                    crv: "P-256".into(),
                    x: b64(x),
                    y: b64(y),
                })
            }
            SigningAlgorithm::Rs256 => {
                let key = rsa::RsaPublicKey::from_pkcs1_der(public_key).ok()?;
                Some(Self::Rsa {
                    n: b64(&key.n().to_bytes_be()),
                    e: b64(&key.e().to_bytes_be()),
                })
            }
        }
    }

    fn decoding_key(&self) -> Option<DecodingKey> {
        match self {
            Self::Okp { x, .. } => DecodingKey::from_ed_components(x),
            Self::Ec { x, y, .. } => DecodingKey::from_ec_components(x, y),
            Self::Rsa { n, e } => DecodingKey::from_rsa_components(n, e),
        }
        .ok()
    }
}

/// One key of a JWKS document (RFC 7517): its public parameters, `kid`,
/// `alg` and `use: sig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// `kty` and the public parameters.
    #[serde(flatten)]
    pub key: JwkKey,
    /// Key id.
    pub kid: String,
    /// `EdDSA`, `ES256` or `RS256`: the only algorithm it verifies.
    pub alg: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub use_: String,
}

/// A JWKS document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys that verify now (active and retired-but-overlapping), of
    /// whatever algorithm.
    pub keys: Vec<Jwk>,
}

/// The JWKS of `keys` at `now`: every key that still verifies, each with
/// its own algorithm. A key whose public half is malformed (it could not
/// verify anything either) is left out, and logged.
pub fn jwks(keys: &[SigningKeyRecord], now: DateTime<Utc>) -> Jwks {
    Jwks {
        keys: keys
            .iter()
            .filter(|k| k.verifies_at(now))
            .filter_map(|k| {
                let Some(key) = JwkKey::of(k.algorithm, &k.public_key) else {
                    tracing::error!(
                        tenant = %k.tenant_id,
                        kid = %k.kid,
                        "a signing key with a malformed public key is left out of the JWKS"
                    );
                    return None;
                };
                Some(Jwk {
                    key,
                    kid: k.kid.clone(),
                    alg: k.algorithm.as_str().to_owned(),
                    use_: "sig".into(),
                })
            })
            .collect(),
    }
}

/// Claims for an access token of `auth` in `session`, issued `now`, without
/// the optional ones (the service adds those its tenant's policy asks for).
pub fn claims_for(
    env: &Env,
    now: DateTime<Utc>,
    auth: &AuthRecord,
    session: SessionId,
    issuer: &str,
    audience: &str,
    ttl: std::time::Duration,
) -> Result<AccessClaims> {
    let exp = super::checked_after(now, ttl)
        .ok_or_else(|| {
            crate::error::InvalidInput::new("access token policy", "ttl is out of range")
        })?
        .timestamp();
    let now = now.timestamp();
    let (amr, mfa) = amr_of(auth);
    let jti: [u8; 16] = env.random_bytes()?;
    Ok(AccessClaims {
        iss: issuer.to_owned(),
        sub: auth.user_id.to_string(),
        aud: audience.to_owned(),
        exp,
        iat: now,
        nbf: now,
        jti: URL_SAFE_NO_PAD.encode(jti),
        tid: auth.tenant_id.to_string(),
        sid: session.to_string(),
        amr,
        acr: if mfa { "mfa".into() } else { "sfa".into() },
        auth_time: auth.at.timestamp(),
        tenant: None,
        roles: None,
        tier: None,
    })
}

#[cfg(test)]
mod tests;
