//! Signed JWT access tokens (EdDSA over Ed25519, `typ: at+jwt` as RFC
//! 9068 says) and the JWKS document.
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
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

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
    /// The 32-byte Ed25519 public key.
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

/// A fresh Ed25519 signing key for `tenant`, created `now`, from the
/// environment's random source. Its private half is in the clear:
/// [`seal_signing_key`] it before storing it.
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

/// `key` as it is to be stored: its private half sealed by `sealer` for its
/// tenant and `kid` (in the clear without a sealer; kept as it is if it is
/// sealed already).
pub fn seal_signing_key(
    mut key: SigningKeyRecord,
    sealer: Option<&Sealer>,
    env: &Env,
) -> Result<SigningKeyRecord> {
    if let StoredSecret::Plain(seed) = key.stored_private_key()? {
        let context = signing_key_context(key.tenant_id, &key.kid);
        if let StoredSecret::Sealed(sealed) = StoredSecret::seal(sealer, env, &seed, &context)? {
            key.private_key = String::from(sealed).into_bytes();
        }
    }
    Ok(key)
}

/// The private half of `key` in the clear: opened by `sealer` if it is
/// sealed, as stored if it is not. Fails closed with a [`SealError`] (no
/// sealer, a key it does not list, another row's value).
fn open_seed(key: &SigningKeyRecord, sealer: Option<&Sealer>) -> Result<[u8; 32]> {
    let context = signing_key_context(key.tenant_id, &key.kid);
    let seed = key.stored_private_key()?.open(sealer, &context)?;
    Ok(seed
        .as_slice()
        .try_into()
        .map_err(|_| SealError::Malformed)?)
}

/// Sign `claims` with `key`, opening its private half with `sealer` when
/// it is sealed (fail closed: a [`SealError`]).
pub fn sign(
    key: &SigningKeyRecord,
    sealer: Option<&Sealer>,
    claims: &AccessClaims,
) -> Result<String> {
    let seed = open_seed(key, sealer)?;
    let der = ed25519_dalek::SigningKey::from_bytes(&seed)
        .to_pkcs8_der()
        .map_err(|e| Error::internal_from("signing key encoding", e))?;
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some(TYP.to_owned());
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
        typ: Option<String>,
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
    Ok((kid, tenant))
}

/// Verify `token` against the tenant's `keys` at `now`: EdDSA only,
/// `typ: at+jwt`, a known `kid` whose key still verifies, a good
/// signature, the expected issuer, audience and tenant, and
/// `nbf, iat <= now < exp` within [`LEEWAY`] (time from the caller's clock,
/// never the wall clock).
pub fn verify(
    token: &str,
    keys: &[VerifyingKey],
    expected: &Expected<'_>,
    now: DateTime<Utc>,
) -> Result<AccessClaims, JwtError> {
    let (kid, tenant) = peek(token)?;
    if tenant != expected.tenant {
        return Err(JwtError::Tenant);
    }
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
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

    use super::*;
    use crate::factor::MethodName;
    use crate::flow::PassedFactor;

    fn setup() -> (Env, DateTime<Utc>, SigningKeyRecord, AccessClaims) {
        let (env, _clock) = Env::manual(9);
        let now = env.now();
        let tenant = TenantId::from_uuid(uuid::Uuid::from_u128(1));
        let key = new_signing_key(&env, tenant, now).unwrap();
        let auth = AuthRecord {
            tenant_id: tenant,
            user_id: crate::ids::UserId::from_uuid(uuid::Uuid::from_u128(2)),
            method: MethodName::parse("pwd").unwrap(),
            factors: vec![PassedFactor {
                kind: FactorKind::Password,
                at: now,
            }],
            at: now,
        };
        let sid = SessionId::from_uuid(uuid::Uuid::from_u128(3));
        let ttl = std::time::Duration::from_secs(300);
        let claims = claims_for(&env, now, &auth, sid, "iss", "api", ttl).unwrap();
        (env, now, key, claims)
    }

    fn expected(tenant: TenantId) -> Expected<'static> {
        Expected {
            issuer: "iss",
            audience: "api",
            tenant,
        }
    }

    /// `exp`, `nbf` and `iat` are checked with a 30 s leeway, no more.
    #[test]
    fn verification_has_a_small_leeway() {
        let (_, now, key, claims) = setup();
        let t = key.tenant_id;
        let keys = [VerifyingKey::from(&key)];
        let token = sign(&key, None, &claims).unwrap();
        let at = |s: i64| now + chrono::Duration::seconds(s);
        verify(&token, &keys, &expected(t), at(300 + 29)).unwrap();
        assert_eq!(
            verify(&token, &keys, &expected(t), at(300 + 30)),
            Err(JwtError::Expired)
        );
        // A token from a clock 29 s ahead verifies; 31 s ahead does not.
        verify(&token, &keys, &expected(t), at(-29)).unwrap();
        assert_eq!(
            verify(&token, &keys, &expected(t), at(-31)),
            Err(JwtError::NotYetValid)
        );
    }

    /// Tokens carry `typ: at+jwt`; another `typ` (or none) is refused even
    /// with a good signature, and so is another tenant's token.
    #[test]
    fn typ_and_tenant_are_checked() {
        let (_, now, key, claims) = setup();
        let t = key.tenant_id;
        let keys = [VerifyingKey::from(&key)];
        let token = sign(&key, None, &claims).unwrap();
        let head: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(head["typ"], "at+jwt");
        let seed: [u8; 32] = key.private_key.as_slice().try_into().unwrap();
        let der = ed25519_dalek::SigningKey::from_bytes(&seed)
            .to_pkcs8_der()
            .unwrap();
        for typ in [Some("JWT"), None, Some("id+jwt")] {
            let mut header = Header::new(Algorithm::EdDSA);
            header.typ = typ.map(str::to_owned);
            header.kid = Some(key.kid.clone());
            let other =
                jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(der.as_bytes()))
                    .unwrap();
            assert_eq!(
                verify(&other, &keys, &expected(t), now),
                Err(JwtError::Type),
                "{typ:?}"
            );
        }
        let b = TenantId::from_uuid(uuid::Uuid::from_u128(99));
        assert_eq!(
            verify(&token, &keys, &expected(b), now),
            Err(JwtError::Tenant)
        );
        verify(&token, &keys, &expected(t), now).unwrap();
    }

    /// A signing key stored before sealing (its 32-byte seed in the
    /// clear) still signs, with or without a sealer; sealed, it leaves no
    /// trace of the seed, signs only with the sealer, and its tokens verify
    /// against the same public key.
    #[test]
    fn clear_signing_keys_stored_before_sealing_still_sign() {
        use crate::seal::{SealError, Sealer, SealingKey, StoredSecret};
        let (env, now, legacy, claims) = setup();
        let t = legacy.tenant_id;
        let keys = [VerifyingKey::from(&legacy)];
        let sealer = Sealer::new(SealingKey::generate("k1", &env).unwrap());
        assert!(matches!(
            legacy.stored_private_key(),
            Ok(StoredSecret::Plain(_))
        ));
        for s in [None, Some(&sealer)] {
            let token = sign(&legacy, s, &claims).unwrap();
            verify(&token, &keys, &expected(t), now).unwrap();
        }
        let sealed = seal_signing_key(legacy.clone(), Some(&sealer), &env).unwrap();
        assert_eq!(sealed.stored_private_key().unwrap().key_id(), Some("k1"));
        assert!(
            !sealed
                .private_key
                .windows(32)
                .any(|w| w == legacy.private_key.as_slice())
        );
        assert!(!format!("{sealed:?}").contains(&format!("{:?}", legacy.private_key)));
        let token = sign(&sealed, Some(&sealer), &claims).unwrap();
        verify(&token, &keys, &expected(t), now).unwrap();
        let err = sign(&sealed, None, &claims).unwrap_err();
        assert_eq!(SealError::of(&err), Some(&SealError::NoSealer));
        // Bound to its kid: the same sealed bytes under another kid fail.
        let mut moved = sealed.clone();
        moved.kid = "another".into();
        let err = sign(&moved, Some(&sealer), &claims).unwrap_err();
        assert_eq!(SealError::of(&err), Some(&SealError::DoesNotOpen));
    }

    /// A lifetime beyond the calendar is a typed error, not a panic.
    #[test]
    fn claims_with_an_impossible_lifetime_are_an_error() {
        let (env, now, _, claims) = setup();
        let auth = AuthRecord {
            tenant_id: claims.tid.parse().unwrap(),
            user_id: claims.sub.parse().unwrap(),
            method: MethodName::parse("pwd").unwrap(),
            factors: vec![],
            at: now,
        };
        let sid = SessionId::from_uuid(uuid::Uuid::from_u128(3));
        let forever = std::time::Duration::from_secs(u64::MAX / 2);
        assert!(matches!(
            claims_for(&env, now, &auth, sid, "iss", "api", forever),
            Err(Error::InvalidInput(_))
        ));
    }
}
