//! An issuer a tenant trusts ([`IssuerConfig`]), Google's preset, and
//! configuration by OpenID Connect Discovery ([`DiscoveryDocument`]).

use std::fmt;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};

use super::jwks::CachedKey;
use super::{FetchError, validate_fetch_url};
use crate::error::InvalidInput;

/// Google's issuer, as its discovery document names it.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// The other `iss` spelling Google's ID tokens carry.
const GOOGLE_ISSUER_ALIAS: &str = "accounts.google.com";

/// Google's key set.
pub const GOOGLE_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";

/// The most `iss` spellings besides the canonical one.
const MAX_ALIASES: usize = 4;
/// The most client ids per issuer.
const MAX_CLIENT_IDS: usize = 16;
/// The longest client id or alias, in bytes.
const MAX_NAME_BYTES: usize = 256;
/// The most keys in a static key set (and in a fetched one).
pub(crate) const MAX_KEYS: usize = 64;
/// The largest clock skew tolerated (5 minutes).
const MAX_SKEW: Duration = Duration::from_secs(300);
/// The largest `max_age` (24 hours).
const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// A signature algorithm an ID token may use. Only asymmetric ones exist
/// here: `none` and the HMAC algorithms (`HS256`, ...) cannot be
/// configured at all, so a public key can never serve as an HMAC secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IdTokenAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (every OpenID provider supports it).
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

impl IdTokenAlgorithm {
    /// Every algorithm, in the order discovery prefers nothing over.
    pub const ALL: [IdTokenAlgorithm; 9] = [
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::ES256,
        Self::ES384,
        Self::EdDSA,
    ];

    /// The algorithms an [`IssuerConfig`] allows unless told otherwise:
    /// RS256 and ES256.
    pub const DEFAULT: [IdTokenAlgorithm; 2] = [Self::RS256, Self::ES256];

    /// The JOSE name (`RS256`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
        }
    }

    /// The algorithm of a JOSE name; `None` for `none`, HMAC and anything
    /// unknown.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The same algorithm as `jsonwebtoken` names it.
    pub(crate) fn jws(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as A;
        match self {
            Self::RS256 => A::RS256,
            Self::RS384 => A::RS384,
            Self::RS512 => A::RS512,
            Self::PS256 => A::PS256,
            Self::PS384 => A::PS384,
            Self::PS512 => A::PS512,
            Self::ES256 => A::ES256,
            Self::ES384 => A::ES384,
            Self::EdDSA => A::EdDSA,
        }
    }
}

impl fmt::Display for IdTokenAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an issuer's signing keys come from.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JwksSource {
    /// Fetched from this URL (`jwks_uri`) through an
    /// [`HttpFetch`](super::HttpFetch), and cached.
    Url(String),
    /// Given once, for offline use (tests, air-gapped issuers); never
    /// fetched.
    Static(JwkSet),
}

impl fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwksSource::Url(url) => f.debug_tuple("Url").field(url).finish(),
            // The keys are public, but no key material goes into Debug.
            JwksSource::Static(set) => write!(f, "Static({} keys)", set.keys.len()),
        }
    }
}

/// An OpenID Connect issuer a tenant trusts for ID tokens. Stored by
/// tenants (serde), checked by [`IssuerConfig::validate`] before use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerConfig {
    /// The canonical issuer (`https://accounts.google.com`): what a
    /// [`VerifiedIdToken`](super::VerifiedIdToken) reports, and an accepted
    /// `iss`.
    pub issuer: String,
    /// Other accepted `iss` spellings (Google also emits
    /// `accounts.google.com`); at most 4.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issuer_aliases: Vec<String>,
    /// The client ids this tenant registered with the issuer: the accepted
    /// audiences (`aud`) and authorized parties (`azp`); 1 to 16.
    pub client_ids: Vec<String>,
    /// Where the issuer's signing keys are.
    pub jwks: JwksSource,
    /// The signature algorithms accepted (default RS256 and ES256).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<IdTokenAlgorithm>,
    /// Clock skew tolerated on `exp`, `iat` and `nbf` (default 60 s, at
    /// most 5 min); stored as whole seconds.
    #[serde(rename = "max_skew_secs", with = "secs", default = "default_skew")]
    pub max_skew: Duration,
    /// How old `iat` may be (default 10 min, 1 s to 24 h): an ID token is
    /// spent right after sign-in at the issuer. Stored as whole seconds.
    #[serde(rename = "max_age_secs", with = "secs", default = "default_max_age")]
    pub max_age: Duration,
    /// Refuse a token whose `email` the issuer has not verified (default
    /// true: an unverified address must never link accounts). A token
    /// without an `email` claim is not affected.
    #[serde(default = "default_true")]
    pub require_email_verified: bool,
}

fn default_algorithms() -> Vec<IdTokenAlgorithm> {
    IdTokenAlgorithm::DEFAULT.to_vec()
}
fn default_skew() -> Duration {
    Duration::from_secs(60)
}
fn default_max_age() -> Duration {
    Duration::from_secs(600)
}
fn default_true() -> bool {
    true
}

/// Durations as whole seconds.
mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// Whether `s` is a plausible name: 1 to [`MAX_NAME_BYTES`] bytes, no
/// whitespace or control characters.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_BYTES
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl IssuerConfig {
    /// An issuer with the defaults: RS256 and ES256, 60 s of skew, tokens
    /// at most 10 min old, verified email required. Check it with
    /// [`validate`](Self::validate) (a verifier does).
    pub fn new(issuer: impl Into<String>, client_ids: Vec<String>, jwks: JwksSource) -> Self {
        Self {
            issuer: issuer.into(),
            issuer_aliases: Vec::new(),
            client_ids,
            jwks,
            algorithms: default_algorithms(),
            max_skew: default_skew(),
            max_age: default_max_age(),
            require_email_verified: true,
        }
    }

    /// Google as an issuer, for the OAuth client `client_id`: issuer
    /// `https://accounts.google.com` (also accepting
    /// `accounts.google.com`), keys from
    /// `https://www.googleapis.com/oauth2/v3/certs`.
    pub fn google(client_id: impl Into<String>) -> Self {
        let mut config = Self::new(
            GOOGLE_ISSUER,
            vec![client_id.into()],
            JwksSource::Url(GOOGLE_JWKS_URL.to_owned()),
        );
        config.issuer_aliases = vec![GOOGLE_ISSUER_ALIAS.to_owned()];
        config
    }

    /// Whether `iss` is one of this issuer's spellings.
    pub fn accepts_issuer(&self, iss: &str) -> bool {
        self.issuer == iss || self.issuer_aliases.iter().any(|a| a == iss)
    }

    /// Check the configuration: an `https` issuer and key set URL (`http`
    /// only on loopback, see [`validate_fetch_url`]), at most 4 aliases,
    /// 1 to 16 client ids (each 1 to 256 bytes, no whitespace), 1 to 9
    /// distinct algorithms, a static key set of 1 to 64 keys, a skew of at
    /// most 5 min and a `max_age` of 1 s to 24 h.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let err = |r: &str| InvalidInput::new("issuer config", r);
        validate_fetch_url(&self.issuer)
            .map_err(|e| InvalidInput::new("issuer config", format!("issuer {}", e.reason)))?;
        if self.issuer_aliases.len() > MAX_ALIASES {
            return Err(err("at most 4 issuer aliases"));
        }
        if !self.issuer_aliases.iter().all(|a| is_name(a)) {
            return Err(err(
                "an issuer alias must be 1 to 256 bytes without whitespace",
            ));
        }
        if self.client_ids.is_empty() || self.client_ids.len() > MAX_CLIENT_IDS {
            return Err(err("must have 1 to 16 client ids"));
        }
        if !self.client_ids.iter().all(|c| is_name(c)) {
            return Err(err("a client id must be 1 to 256 bytes without whitespace"));
        }
        match &self.jwks {
            JwksSource::Url(url) => validate_fetch_url(url).map_err(|e| {
                InvalidInput::new("issuer config", format!("jwks url {}", e.reason))
            })?,
            JwksSource::Static(set) => {
                if set.keys.is_empty() || set.keys.len() > MAX_KEYS {
                    return Err(err("a static key set must have 1 to 64 keys"));
                }
                if !set.keys.iter().any(|k| CachedKey::from_jwk(k).is_some()) {
                    return Err(err("a static key set has no usable signing key"));
                }
            }
        }
        if self.algorithms.is_empty() {
            return Err(err("must allow at least one algorithm"));
        }
        let mut algs = self.algorithms.clone();
        algs.sort_by_key(|a| a.as_str());
        algs.dedup();
        if algs.len() != self.algorithms.len() {
            return Err(err("an algorithm is listed twice"));
        }
        if self.max_skew > MAX_SKEW {
            return Err(err("max skew must be at most 5 minutes"));
        }
        if self.max_age < Duration::from_secs(1) || self.max_age > MAX_AGE {
            return Err(err("max age must be 1 second to 24 hours"));
        }
        Ok(())
    }

    /// An issuer from its discovery document, fetched from
    /// [`DiscoveryDocument::url_for`]`(expected_issuer)`: the document's
    /// `issuer` must be exactly `expected_issuer` (OpenID Connect Discovery
    /// §4.3: a document naming another issuer is refused, whatever served
    /// it). Keys come from its `jwks_uri`; the algorithms are those of
    /// `id_token_signing_alg_values_supported` this module supports (RS256
    /// when the list is absent), never `none` nor HMAC. Google's document
    /// also gets Google's second `iss` spelling. The other settings are
    /// the defaults of [`IssuerConfig::new`].
    pub fn from_discovery(
        expected_issuer: &str,
        doc: &DiscoveryDocument,
        client_ids: Vec<String>,
    ) -> Result<Self, DiscoveryError> {
        validate_fetch_url(expected_issuer)?;
        if doc.issuer != expected_issuer {
            return Err(DiscoveryError::IssuerMismatch {
                expected: expected_issuer.to_owned(),
                found: doc.issuer.chars().take(MAX_NAME_BYTES).collect(),
            });
        }
        let algorithms = if doc.id_token_signing_alg_values_supported.is_empty() {
            vec![IdTokenAlgorithm::RS256]
        } else {
            let mut algs = Vec::new();
            for alg in doc
                .id_token_signing_alg_values_supported
                .iter()
                .filter_map(|name| IdTokenAlgorithm::from_name(name))
            {
                if !algs.contains(&alg) {
                    algs.push(alg);
                }
            }
            algs
        };
        if algorithms.is_empty() {
            return Err(DiscoveryError::NoSupportedAlgorithm);
        }
        let mut config = Self::new(
            expected_issuer,
            client_ids,
            JwksSource::Url(doc.jwks_uri.clone()),
        );
        config.algorithms = algorithms;
        if expected_issuer == GOOGLE_ISSUER {
            config.issuer_aliases = vec![GOOGLE_ISSUER_ALIAS.to_owned()];
        }
        config.validate()?;
        Ok(config)
    }
}

/// The fields of an OpenID Provider's discovery document
/// (`/.well-known/openid-configuration`) that verifying ID tokens needs;
/// the others are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryDocument {
    /// The issuer the document speaks for.
    pub issuer: String,
    /// Where its key set is.
    pub jwks_uri: String,
    /// The algorithms it signs ID tokens with.
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Vec<String>,
}

impl DiscoveryDocument {
    /// The largest document accepted (64 KiB).
    pub const MAX_BYTES: usize = 64 * 1024;

    /// Parse a document: JSON of at most [`MAX_BYTES`](Self::MAX_BYTES)
    /// bytes.
    pub fn parse(json: &[u8]) -> Result<Self, DiscoveryError> {
        if json.len() > Self::MAX_BYTES {
            return Err(DiscoveryError::Fetch(FetchError::TooLarge {
                limit: Self::MAX_BYTES,
            }));
        }
        serde_json::from_slice(json).map_err(|_| DiscoveryError::Malformed)
    }

    /// Where `issuer`'s document is (OpenID Connect Discovery §4): the
    /// issuer, without a trailing `/`, followed by
    /// `/.well-known/openid-configuration`. The issuer must pass
    /// [`validate_fetch_url`], have no query, and be used as given.
    pub fn url_for(issuer: &str) -> Result<String, DiscoveryError> {
        validate_fetch_url(issuer)?;
        if issuer.contains('?') {
            return Err(InvalidInput::new("url", "an issuer has no query").into());
        }
        Ok(format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        ))
    }
}

/// Why configuring an issuer by discovery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// Fetching the document failed.
    #[error("fetching the discovery document failed: {0}")]
    Fetch(#[from] FetchError),
    /// The document is not JSON of the expected shape.
    #[error("malformed discovery document")]
    Malformed,
    /// The document speaks for another issuer than the one asked for.
    #[error("discovery document names issuer `{found}`, expected `{expected}`")]
    IssuerMismatch {
        /// The issuer asked for.
        expected: String,
        /// The issuer the document names (cut to 256 characters).
        found: String,
    },
    /// The document lists no signing algorithm this library accepts.
    #[error("the issuer signs id tokens with no supported algorithm")]
    NoSupportedAlgorithm,
    /// The issuer, the key set URL or another value is invalid.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
}
