//! Signed JWT access tokens (EdDSA over Ed25519) and the JWKS document.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::SigningKeyRecord;
use crate::env::Env;
use crate::error::{Error, Result};
use crate::factor::FactorKind;
use crate::flow::AuthRecord;
use crate::ids::{SessionId, TenantId};

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
}

/// Why an access token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// Not a JWT, or its parts do not decode.
    #[error("malformed token")]
    Malformed,
    /// `alg` is not EdDSA (`none` included).
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

/// A fresh Ed25519 signing key for `tenant`, created `now`, from the
/// environment's random source.
pub fn new_signing_key(
    env: &Env,
    tenant: TenantId,
    now: DateTime<Utc>,
) -> Result<SigningKeyRecord> {
    let seed: [u8; 32] = env.random_bytes()?;
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let kid_bytes: [u8; 12] = env.random_bytes()?;
    Ok(SigningKeyRecord {
        tenant_id: tenant,
        kid: URL_SAFE_NO_PAD.encode(kid_bytes),
        private_key: seed.to_vec(),
        public_key: key.verifying_key().to_bytes().to_vec(),
        created_at: now,
        retired_at: None,
        verify_until: None,
    })
}

/// Sign `claims` with `key`.
pub fn sign(key: &SigningKeyRecord, claims: &AccessClaims) -> Result<String> {
    let seed: [u8; 32] = key
        .private_key
        .as_slice()
        .try_into()
        .map_err(|_| Error::internal("signing key is not 32 bytes"))?;
    let der = ed25519_dalek::SigningKey::from_bytes(&seed)
        .to_pkcs8_der()
        .map_err(|e| Error::internal_from("signing key encoding", e))?;
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes()))
        .map_err(|e| Error::internal_from("jwt signing", e))
}

/// The unverified `kid` and `tid` of a token: only to choose the key that
/// must then verify it.
pub fn peek(token: &str) -> Result<(String, TenantId), JwtError> {
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
        kid: Option<String>,
    }
    let head: Head = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    // Only EdDSA, and never `none`, whatever the rest says.
    if head.alg != "EdDSA" {
        return Err(JwtError::Algorithm);
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
    Ok((kid, tenant))
}

/// Verify `token` against the tenant's `keys` at `now`: EdDSA only, a
/// known `kid` whose key still verifies, a good signature, this issuer and
/// audience, and `nbf <= now < exp` (time from the caller's clock, never
/// the wall clock).
pub fn verify(
    token: &str,
    keys: &[SigningKeyRecord],
    issuer: &str,
    audience: &str,
    now: DateTime<Utc>,
) -> Result<AccessClaims, JwtError> {
    let (kid, _) = peek(token)?;
    let key = keys
        .iter()
        .find(|k| k.kid == kid && k.verifies_at(now))
        .ok_or(JwtError::UnknownKey)?;
    let decoding = DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(&key.public_key))
        .map_err(|_| JwtError::UnknownKey)?;
    let mut validation = Validation::new(Algorithm::EdDSA);
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
    if c.iss != issuer {
        return Err(JwtError::Issuer);
    }
    if c.aud != audience {
        return Err(JwtError::Audience);
    }
    let t = now.timestamp();
    if t >= c.exp {
        return Err(JwtError::Expired);
    }
    if c.nbf > t || c.iat > t {
        return Err(JwtError::NotYetValid);
    }
    Ok(c)
}

/// One key of a JWKS document (RFC 8037 OKP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// `OKP`.
    pub kty: String,
    /// `Ed25519`.
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    /// Key id.
    pub kid: String,
    /// `EdDSA`.
    pub alg: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub use_: String,
}

/// A JWKS document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys that verify now (active and retired-but-overlapping).
    pub keys: Vec<Jwk>,
}

/// The JWKS of `keys` at `now`: every key that still verifies.
pub fn jwks(keys: &[SigningKeyRecord], now: DateTime<Utc>) -> Jwks {
    Jwks {
        keys: keys
            .iter()
            .filter(|k| k.verifies_at(now))
            .map(|k| Jwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x: URL_SAFE_NO_PAD.encode(&k.public_key),
                kid: k.kid.clone(),
                alg: "EdDSA".into(),
                use_: "sig".into(),
            })
            .collect(),
    }
}

/// Claims for an access token of `auth` in `session`, issued `now`.
pub fn claims_for(
    env: &Env,
    now: DateTime<Utc>,
    auth: &AuthRecord,
    session: SessionId,
    issuer: &str,
    audience: &str,
    ttl: std::time::Duration,
) -> Result<AccessClaims> {
    let now = now.timestamp();
    let (amr, mfa) = amr_of(auth);
    let jti: [u8; 16] = env.random_bytes()?;
    Ok(AccessClaims {
        iss: issuer.to_owned(),
        sub: auth.user_id.to_string(),
        aud: audience.to_owned(),
        exp: now + i64::try_from(ttl.as_secs()).unwrap_or(3600),
        iat: now,
        nbf: now,
        jti: URL_SAFE_NO_PAD.encode(jti),
        tid: auth.tenant_id.to_string(),
        sid: session.to_string(),
        amr,
        acr: if mfa { "mfa".into() } else { "sfa".into() },
        auth_time: auth.at.timestamp(),
    })
}
