//! Verifying an ID token ([`IdTokenVerifier`]): OpenID Connect Core
//! §3.1.3.7, with time from the caller.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::Validation;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use subtle::ConstantTimeEq as _;

use super::{DynHttpFetch, FetchError, HttpFetch, IdTokenAlgorithm, IssuerConfig, JwksCache};
use crate::error::{ErrorKind, InvalidInput};
use crate::model::{EmailAddress, parse_display_name};

/// The largest ID token looked at (16 KiB); a longer one is refused before
/// it is parsed.
pub const MAX_ID_TOKEN_BYTES: usize = 16 * 1024;

/// The longest `sub` accepted (OpenID Connect Core §2: 255 ASCII
/// characters).
const MAX_SUBJECT_BYTES: usize = 255;
/// The longest `kid` looked up.
const MAX_KID_BYTES: usize = 256;
/// The most audiences a token may name.
const MAX_AUDIENCES: usize = 32;

/// Why an ID token was refused. Messages are lowercase and carry no part
/// of the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdTokenError {
    /// Not a JWT of the expected shape: too large, not three base64url
    /// parts, not JSON, a claim missing or of the wrong type, a `crit`
    /// header.
    #[error("malformed id token")]
    Malformed,
    /// The header's `alg` is not one the issuer's configuration allows
    /// (`none` and HMAC never are).
    #[error("unsupported id token algorithm")]
    UnsupportedAlgorithm,
    /// No key of the issuer has the token's `kid` (after a refetch, when
    /// the rate limit allowed one) and fits its `alg`.
    #[error("unknown id token signing key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad id token signature")]
    BadSignature,
    /// `iss` is not the configured issuer.
    #[error("wrong id token issuer")]
    WrongIssuer,
    /// `aud` names none of the configured client ids.
    #[error("wrong id token audience")]
    WrongAudience,
    /// `azp` is not a configured client id, or is missing while `aud`
    /// names several audiences.
    #[error("wrong id token authorized party")]
    WrongAuthorizedParty,
    /// `exp` has passed (beyond the allowed skew).
    #[error("id token expired")]
    Expired,
    /// `iat` or `nbf` is in the future (beyond the allowed skew).
    #[error("id token issued in the future")]
    IssuedInFuture,
    /// `iat` is older than the configuration's `max_age`.
    #[error("id token too old")]
    TooOld,
    /// A nonce was expected and the token's is missing or different.
    #[error("id token nonce mismatch")]
    NonceMismatch,
    /// The token has an `email` the issuer did not verify, and the
    /// configuration requires verified addresses.
    #[error("id token email not verified")]
    EmailUnverified,
    /// The issuer's keys could not be fetched.
    #[error("fetching the issuer's keys failed: {0}")]
    Fetch(FetchError),
}

impl IdTokenError {
    /// How an edge answers it: [`ErrorKind::Unavailable`] when the keys
    /// could not be fetched (retrying later may work),
    /// [`ErrorKind::Unauthenticated`] for every refusal of the token.
    pub fn kind(&self) -> ErrorKind {
        match self {
            IdTokenError::Fetch(_) => ErrorKind::Unavailable,
            _ => ErrorKind::Unauthenticated,
        }
    }
}

/// What a verified ID token says about its user. Whoever verified it knows
/// the issuer's `(issuer, subject)` pair identifies the user; `email` is
/// only a hint unless `email_verified`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdToken {
    /// The configured (canonical) issuer, whichever accepted spelling the
    /// token used.
    pub issuer: String,
    /// `sub`: the user's stable id at the issuer (1 to 255 bytes).
    pub subject: String,
    /// `email`, if the token has one.
    pub email: Option<EmailAddress>,
    /// Whether the issuer verified `email` (`email_verified`, as a boolean
    /// or the string `"true"`); false when there is no email.
    pub email_verified: bool,
    /// `name`, if present and a valid display name.
    pub name: Option<String>,
    /// `exp`.
    pub expires_at: DateTime<Utc>,
    /// `iat`.
    pub issued_at: DateTime<Utc>,
}

/// Verifies ID tokens of one issuer: its [`IssuerConfig`], the
/// [`JwksCache`] of its keys, and the [`HttpFetch`] that fetches them.
/// Share one per issuer (in an `Arc`): the cache is what keeps fetches
/// rare.
pub struct IdTokenVerifier {
    config: IssuerConfig,
    cache: JwksCache,
    fetch: Box<dyn DynHttpFetch>,
}

impl fmt::Debug for IdTokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdTokenVerifier")
            .field("config", &self.config)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl IdTokenVerifier {
    /// A verifier for `config` (checked with [`IssuerConfig::validate`]),
    /// fetching keys through `fetch` (use [`NoFetch`](super::NoFetch) for a
    /// static key set), with the cache's default TTL and refetch interval.
    pub fn new(config: IssuerConfig, fetch: impl HttpFetch) -> Result<Self, InvalidInput> {
        config.validate()?;
        let cache = JwksCache::new(&config.jwks);
        Ok(Self {
            config,
            cache,
            fetch: Box::new(fetch),
        })
    }

    /// Use fetched keys for `ttl` before fetching them again (default 1 h).
    pub fn with_jwks_ttl(mut self, ttl: Duration) -> Self {
        self.cache = self.cache.with_ttl(ttl);
        self
    }

    /// Fetch keys at most once per `interval` (default 60 s).
    pub fn with_min_refetch_interval(mut self, interval: Duration) -> Self {
        self.cache = self.cache.with_min_refetch_interval(interval);
        self
    }

    /// The issuer's configuration.
    pub fn config(&self) -> &IssuerConfig {
        &self.config
    }

    /// The cache of the issuer's keys.
    pub fn cache(&self) -> &JwksCache {
        &self.cache
    }

    /// The `iss` of `token`, **unverified**: only to choose which
    /// issuer's verifier should then verify it.
    pub fn unverified_issuer(token: &str) -> Result<String, IdTokenError> {
        #[derive(Deserialize)]
        struct Iss {
            iss: String,
        }
        let (_, payload) = split(token)?;
        let iss: Iss = decode_json(payload)?;
        Ok(iss.iss)
    }

    /// Verify `token` at `now`: its size, its header's `alg` (allowed by
    /// the configuration: never `none` nor HMAC) and `kid` (a key of the
    /// issuer, fetched within the cache's rate limit), its signature, then
    /// `iss` (an accepted spelling), `aud` (names a configured client id),
    /// `azp` (a configured client id if present, required with several
    /// audiences), `exp` (after `now` minus the skew), `iat` (not after
    /// `now` plus the skew, not older than `max_age` plus the skew), `nbf`
    /// if present, `nonce` (when `expected_nonce` is given: present and
    /// equal, compared in constant time), `sub` (1 to 255 bytes), and
    /// `email_verified` when an email is present and the configuration
    /// requires it. `now` comes from the caller's clock.
    pub async fn verify(
        &self,
        token: &str,
        expected_nonce: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<VerifiedIdToken, IdTokenError> {
        let (header, _) = split(token)?;
        #[derive(Deserialize)]
        struct Head {
            alg: String,
            kid: Option<String>,
            crit: Option<serde_json::Value>,
        }
        let head: Head = decode_json(header)?;
        // No critical extension is understood here (RFC 7515 §4.1.11).
        if head.crit.is_some() {
            return Err(IdTokenError::Malformed);
        }
        // Only the configured asymmetric algorithms: `none` and `HS*` have
        // no `IdTokenAlgorithm` at all, so a public key never becomes an
        // HMAC secret.
        let alg = IdTokenAlgorithm::from_name(&head.alg)
            .filter(|a| self.config.algorithms.contains(a))
            .ok_or(IdTokenError::UnsupportedAlgorithm)?;
        if head.kid.as_ref().is_some_and(|k| k.len() > MAX_KID_BYTES) {
            return Err(IdTokenError::Malformed);
        }
        let key = self
            .cache
            .key_dyn(self.fetch.as_ref(), head.kid.as_deref(), alg, now)
            .await?;

        // jsonwebtoken checks the signature only: its exp/nbf checks read
        // the system clock, so every claim is checked below against `now`.
        let mut validation = Validation::new(alg.jws());
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        let claims = jsonwebtoken::decode::<Claims>(token, key.decoding(), &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => IdTokenError::BadSignature,
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                    IdTokenError::UnsupportedAlgorithm
                }
                _ => IdTokenError::Malformed,
            })?
            .claims;
        self.check(claims, expected_nonce, now)
    }

    /// The claim checks, on a token whose signature verified.
    fn check(
        &self,
        c: Claims,
        expected_nonce: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<VerifiedIdToken, IdTokenError> {
        let config = &self.config;
        if !config.accepts_issuer(&c.iss) {
            return Err(IdTokenError::WrongIssuer);
        }
        let audiences = match &c.aud {
            Audience::One(a) => std::slice::from_ref(a),
            Audience::Many(a) => a.as_slice(),
        };
        if audiences.len() > MAX_AUDIENCES {
            return Err(IdTokenError::Malformed);
        }
        let is_client = |id: &str| config.client_ids.iter().any(|c| c == id);
        if !audiences.iter().any(|a| is_client(a)) {
            return Err(IdTokenError::WrongAudience);
        }
        match &c.azp {
            Some(azp) if !is_client(azp) => return Err(IdTokenError::WrongAuthorizedParty),
            None if audiences.len() > 1 => return Err(IdTokenError::WrongAuthorizedParty),
            _ => {}
        }
        let t = now.timestamp();
        let skew = secs(config.max_skew);
        if c.exp.0 <= t.saturating_sub(skew) {
            return Err(IdTokenError::Expired);
        }
        let latest = t.saturating_add(skew);
        if c.iat.0 > latest || c.nbf.is_some_and(|nbf| nbf.0 > latest) {
            return Err(IdTokenError::IssuedInFuture);
        }
        if c.iat.0 < t.saturating_sub(secs(config.max_age)).saturating_sub(skew) {
            return Err(IdTokenError::TooOld);
        }
        if let Some(expected) = expected_nonce {
            let matches = c
                .nonce
                .as_deref()
                .is_some_and(|n| bool::from(n.as_bytes().ct_eq(expected.as_bytes())));
            if !matches {
                return Err(IdTokenError::NonceMismatch);
            }
        }
        if c.sub.is_empty()
            || c.sub.len() > MAX_SUBJECT_BYTES
            || c.sub.chars().any(char::is_control)
        {
            return Err(IdTokenError::Malformed);
        }
        let email = c
            .email
            .as_deref()
            .map(EmailAddress::parse)
            .transpose()
            .map_err(|_| IdTokenError::Malformed)?;
        let verified = match &c.email_verified {
            Some(Flag::Bool(b)) => *b,
            Some(Flag::Text(s)) => s == "true",
            None => false,
        };
        if email.is_some() && !verified && config.require_email_verified {
            return Err(IdTokenError::EmailUnverified);
        }
        let (Some(expires_at), Some(issued_at)) = (
            DateTime::from_timestamp(c.exp.0, 0),
            DateTime::from_timestamp(c.iat.0, 0),
        ) else {
            return Err(IdTokenError::Malformed);
        };
        Ok(VerifiedIdToken {
            issuer: config.issuer.clone(),
            subject: c.sub,
            email_verified: email.is_some() && verified,
            email,
            name: c
                .name
                .as_deref()
                .and_then(|n| parse_display_name(n).ok())
                .filter(|n| !n.is_empty()),
            expires_at,
            issued_at,
        })
    }
}

/// Whole seconds of `d`, as a timestamp offset.
fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// The header and payload of a compact JWS of at most
/// [`MAX_ID_TOKEN_BYTES`]: exactly three dot-separated parts.
fn split(token: &str) -> Result<(&str, &str), IdTokenError> {
    if token.len() > MAX_ID_TOKEN_BYTES {
        return Err(IdTokenError::Malformed);
    }
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(header), Some(payload), Some(_), None) => Ok((header, payload)),
        _ => Err(IdTokenError::Malformed),
    }
}

/// A base64url part as JSON.
fn decode_json<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T, IdTokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| IdTokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| IdTokenError::Malformed)
}

/// The claims an ID token is checked on.
#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: Audience,
    exp: NumericDate,
    iat: NumericDate,
    #[serde(default)]
    nbf: Option<NumericDate>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<Flag>,
    #[serde(default)]
    name: Option<String>,
}

/// `aud`: one string or an array of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// A boolean claim as issuers send it: `true`, or the string `"true"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Text(String),
}

/// Seconds since the epoch (RFC 7519 §2), an integer or a finite number
/// of plausible size (a fraction is dropped).
#[derive(Clone, Copy)]
struct NumericDate(i64);

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = serde_json::Number::deserialize(d)?;
        n.as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && f.abs() < 1e15)
                    .map(|f| f.floor() as i64)
            })
            .map(NumericDate)
            .ok_or_else(|| D::Error::custom("not a numeric date"))
    }
}
