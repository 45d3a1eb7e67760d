//! Sessions, refresh-token families and signing keys: the records stores
//! keep, the per-tenant policy that sets their lifetimes, the reference
//! semantics of renewal and rotation, the [`SessionService`] that issues
//! and checks them, and the signed access tokens of [`jwt`].

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;
use crate::flow::AuthRecord;
use crate::ids::{FamilyId, SessionId, TenantId, UserId};
use crate::rbac::RbacName;
use crate::seal::{SealError, Sealed, StoredSecret};
use crate::token::{TokenHash, TokenKind};

pub mod jwt;
mod keys;
mod proof;
mod service;
mod tenant;

pub use proof::{StepUpRequired, require_recent_at};
pub use service::{Cleanup, Introspection, IssuedSession, Refreshed, SessionService};

/// `t + d`, or `None` when the result lies beyond what a date can hold
/// (no silent fallback, no panic: callers decide what overflow means).
pub fn checked_after(t: DateTime<Utc>, d: Duration) -> Option<DateTime<Utc>> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
}

/// [`checked_after`] for a session policy's durations: overflow is the
/// policy's fault, a typed [`InvalidInput`].
pub(crate) fn policy_after(
    t: DateTime<Utc>,
    d: Duration,
    what: &'static str,
) -> Result<DateTime<Utc>, InvalidInput> {
    checked_after(t, d)
        .ok_or_else(|| InvalidInput::new("session policy", format!("{what} is out of range")))
}

/// Session tokens: `css_<base64url>`.
pub const SESSION_TOKEN: TokenKind = TokenKind::new("css", "session token");
/// Refresh tokens: `csr_<base64url>`.
pub const REFRESH_TOKEN: TokenKind = TokenKind::new("csr", "refresh token");

/// How long sessions and tokens of a tenant live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionPolicy {
    /// A session unused this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after login, however active.
    pub absolute_lifetime: Duration,
    /// A session is renewed (its idle deadline pushed out) when a check
    /// finds less than this much idle time left. Renewal is a write;
    /// checks with more time left are pure reads.
    pub renew_within: Duration,
    /// Whether logins get refresh tokens.
    pub refresh_tokens: bool,
    /// How long after its rotation the previous refresh token is refused
    /// *without* revoking the family (benign client races). Zero: any reuse
    /// revokes the family, as RFC 9700 recommends.
    pub refresh_reuse_grace: Duration,
    /// Signed JWT access tokens, if the tenant wants them. **Off by
    /// default** (`None`): a login then yields a session token (and a
    /// refresh token) but no JWT, and [`IssuedSession::access_token`] is
    /// `None`. Set an [`AccessTokenPolicy`] (an audience and a lifetime,
    /// optionally an algorithm and optional claims) to have every login and
    /// refresh also mint a JWT that services verify offline against the
    /// tenant's JWKS.
    pub access_tokens: Option<AccessTokenPolicy>,
}

impl Default for SessionPolicy {
    /// 30 minutes idle, 12 hours absolute, renewed in the last 15 minutes,
    /// refresh tokens on, strict reuse detection, no JWTs.
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_lifetime: Duration::from_secs(12 * 3600),
            renew_within: Duration::from_secs(15 * 60),
            refresh_tokens: true,
            refresh_reuse_grace: Duration::ZERO,
            access_tokens: None,
        }
    }
}

impl SessionPolicy {
    /// Check the policy's bounds.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let err = |r: &str| Err(InvalidInput::new("session policy", r));
        let year = Duration::from_secs(366 * 24 * 3600);
        if self.idle_timeout < Duration::from_secs(60) || self.idle_timeout > self.absolute_lifetime
        {
            return err("idle timeout must be at least a minute and at most the absolute lifetime");
        }
        if self.absolute_lifetime > year {
            return err("absolute lifetime must be at most a year");
        }
        if self.renew_within > self.idle_timeout {
            return err("renewal window must be within the idle timeout");
        }
        if self.refresh_reuse_grace > Duration::from_secs(60) {
            return err("refresh reuse grace must be at most a minute");
        }
        if let Some(a) = &self.access_tokens {
            a.validate()?;
        }
        Ok(())
    }
}

/// A tenant's JWT access tokens: setting one in
/// [`SessionPolicy::access_tokens`] turns them on (they are off by default).
///
/// Policies stored before [`algorithm`](Self::algorithm) and
/// [`claims`](Self::claims) existed read back with their defaults (EdDSA,
/// no optional claims).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenPolicy {
    /// The `aud` claim services expect.
    pub audience: String,
    /// Lifetime of one access token (at most an hour).
    pub ttl: Duration,
    /// The algorithm new signing keys use (EdDSA by default). Changing it
    /// takes effect at the next token issued: that issue rotates to a key
    /// of the new algorithm, and the previous key (of whatever algorithm)
    /// keeps verifying, and stays in the JWKS, for one token lifetime.
    #[serde(default)]
    pub algorithm: SigningAlgorithm,
    /// The optional claims tokens carry (none by default).
    #[serde(default)]
    pub claims: AccessTokenClaims,
}

impl AccessTokenPolicy {
    /// Tokens for `audience` living `ttl`, signed with EdDSA, with no
    /// optional claims.
    pub fn new(audience: impl Into<String>, ttl: Duration) -> Self {
        Self {
            audience: audience.into(),
            ttl,
            algorithm: SigningAlgorithm::default(),
            claims: AccessTokenClaims::default(),
        }
    }

    /// Check the policy's bounds.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        if self.audience.is_empty() || self.audience.len() > 256 {
            return Err(InvalidInput::new(
                "access token policy",
                "audience must be 1 to 256 bytes",
            ));
        }
        if self.ttl < Duration::from_secs(10) || self.ttl > Duration::from_secs(3600) {
            return Err(InvalidInput::new(
                "access token policy",
                "ttl must be 10 s to 1 h",
            ));
        }
        Ok(())
    }
}

/// The optional claims of a tenant's access tokens, beyond the standard
/// ones every token carries (`iss`, `sub`, `aud`, `exp`, `iat`, `nbf`,
/// `jti`, `tid`, `sid`, `amr`, `acr`, `auth_time`).
///
/// Claims are read when a token is minted (at login and at each refresh),
/// so a change (a role revoked) reaches tokens within one token lifetime.
/// Issuing costs no store call for `tenant` and one each for `roles_in`
/// and `tier`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccessTokenClaims {
    /// Add `tenant`: the tenant's slug (the id is always in `tid`).
    pub tenant: bool,
    /// Add `roles`: the roles the user holds in this RBAC service (an
    /// empty list when none), read from the store at each mint.
    pub roles_in: Option<RbacName>,
    /// Add `tier`: the user's tier, read from the store at each mint
    /// (omitted when the user has none).
    pub tier: bool,
}

/// How a tenant's access tokens are signed: the JWS `alg` of its keys.
///
/// EdDSA (Ed25519) is the default. ES256 (ECDSA over P-256 with SHA-256)
/// and RS256 (RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys) exist for
/// verifiers that know nothing else (many gateways and client libraries
/// verify only RS256). Each key records its algorithm; a verifier accepts a
/// token only when its header's `alg` is its key's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlgorithm {
    /// Ed25519 (RFC 8037): `EdDSA`.
    #[default]
    #[serde(rename = "EdDSA")]
    EdDsa,
    /// ECDSA with P-256 and SHA-256: `ES256`.
    #[serde(rename = "ES256")]
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 and a 2048-bit key: `RS256`.
    #[serde(rename = "RS256")]
    Rs256,
}

impl SigningAlgorithm {
    /// Every algorithm, default first.
    pub const ALL: [Self; 3] = [Self::EdDsa, Self::Es256, Self::Rs256];

    /// The JWS name (`EdDSA`, `ES256`, `RS256`): the `alg` of tokens and
    /// JWKs, and the value stores keep.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SigningAlgorithm {
    type Err = InvalidInput;

    /// The algorithm of a JWS name, exactly as [`as_str`](Self::as_str)
    /// writes it (`none`, `HS256` and the rest are refused).
    fn from_str(s: &str) -> Result<Self, InvalidInput> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                InvalidInput::new(
                    "signing algorithm",
                    format!("`{s}` is not one of EdDSA, ES256, RS256"),
                )
            })
    }
}

/// A session as stored: keyed by the hash of its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Its public id.
    pub id: SessionId,
    /// SHA-256 of its token.
    pub key: TokenHash,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The user.
    pub user_id: UserId,
    /// How the user authenticated: which factors, when.
    pub auth: AuthRecord,
    /// The client's IP at login.
    pub ip: Option<IpAddr>,
    /// The client's user agent at login.
    pub user_agent: Option<String>,
    /// When it began.
    pub created_at: DateTime<Utc>,
    /// When it was last renewed (at most `renew_within` stale).
    pub last_seen_at: DateTime<Utc>,
    /// When it ends unless renewed.
    pub expires_at: DateTime<Utc>,
    /// When it ends regardless.
    pub absolute_expires_at: DateTime<Utc>,
    /// Idle time granted at each renewal (the tenant's policy at login).
    pub idle_timeout: Duration,
    /// A check renews the session when less idle time than this is left.
    pub renew_within: Duration,
}

impl SessionRecord {
    /// Whether the session is usable at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at && now < self.absolute_expires_at
    }

    /// Whether a check at `now` renews this session: it is live and has
    /// less than `renew_within` idle time left.
    pub fn renewal_due(&self, now: DateTime<Utc>) -> bool {
        // `now + renew_within` beyond the last date: every deadline is
        // within it, exactly.
        self.is_live(now)
            && checked_after(now, self.renew_within).is_none_or(|edge| self.expires_at < edge)
    }

    /// The reference renewal: a live session with less than `renew_within`
    /// idle time left at `now` gets `expires_at = min(now + idle_timeout,
    /// absolute_expires_at)` and `last_seen_at = now`. Returns whether it
    /// changed. SQL stores express the same in their validating statement.
    pub fn renew(&mut self, now: DateTime<Utc>) -> bool {
        if !self.renewal_due(now) {
            return false;
        }
        // `now + idle_timeout` beyond the last date: the absolute deadline
        // is the earlier one, exactly.
        self.expires_at = checked_after(now, self.idle_timeout)
            .map_or(self.absolute_expires_at, |t| {
                t.min(self.absolute_expires_at)
            });
        self.last_seen_at = now;
        true
    }
}

/// A refresh-token family: every token of one login, of which only the
/// newest is valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshFamily {
    /// Its id.
    pub id: FamilyId,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The user.
    pub user_id: UserId,
    /// The session it belongs to (ended with it).
    pub session_id: SessionId,
    /// Hash of the one valid token.
    pub current: TokenHash,
    /// Hash of the token it replaced, if any.
    pub previous: Option<TokenHash>,
    /// How many rotations so far.
    pub generation: u64,
    /// When it last rotated.
    pub rotated_at: Option<DateTime<Utc>>,
    /// When it began.
    pub created_at: DateTime<Utc>,
    /// When it ends regardless.
    pub expires_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// How long after a rotation the previous token is refused without
    /// revoking (the tenant's policy at login).
    pub reuse_grace: Duration,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// It was the current token: the family now has the new one.
    Rotated(RefreshFamily),
    /// It was the token rotated away within the reuse grace: refused, the
    /// family left alone.
    Superseded,
    /// It was an earlier token: reuse. The family is now revoked and its
    /// session ended.
    Reused(RefreshFamily),
    /// The family was already revoked.
    Revoked,
    /// The family has expired.
    Expired,
    /// No family has this token.
    Unknown,
}

/// What [`SessionStore::rotate_refresh_recorded`](crate::store::SessionStore::rotate_refresh_recorded)
/// answers: the rotation, and, when the token rotated, the family's
/// session and tenant as they stand in the same transaction (what a
/// refresh needs next, without another round trip).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRotation {
    /// What presenting the token did.
    pub rotation: Rotation,
    /// The family's session when the token rotated (`None`: gone, or the
    /// token did not rotate).
    pub session: Option<SessionRecord>,
    /// The family's tenant when the token rotated (`None`: gone, or the
    /// token did not rotate).
    pub tenant: Option<crate::model::Tenant>,
}

impl RecordedRotation {
    /// A presentation that did not rotate: nothing else to carry.
    pub fn refused(rotation: Rotation) -> Self {
        Self {
            rotation,
            session: None,
            tenant: None,
        }
    }
}

/// The reference decision for a presented refresh token (stores that
/// decide in memory follow it; SQL stores express it in SQL).
pub fn decide_rotation(
    family: &RefreshFamily,
    presented: &TokenHash,
    now: DateTime<Utc>,
) -> RotationDecision {
    let grace = family.reuse_grace;
    if family.revoked_at.is_some() {
        RotationDecision::Revoked
    } else if now >= family.expires_at {
        RotationDecision::Expired
    } else if &family.current == presented {
        RotationDecision::Rotate
    } else if family.previous.as_ref() == Some(presented)
        && family
            .rotated_at
            .is_some_and(|r| checked_after(r, grace).is_none_or(|end| now < end))
    {
        RotationDecision::Superseded
    } else {
        RotationDecision::Revoke
    }
}

/// What [`decide_rotation`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationDecision {
    /// Rotate to the new token.
    Rotate,
    /// Refuse, keep the family.
    Superseded,
    /// Reuse: revoke the family and end its session.
    Revoke,
    /// Already revoked.
    Revoked,
    /// Expired.
    Expired,
}

/// A signing key of a tenant, as stored. The private half is sealed when
/// the service has a [`Sealer`](crate::seal::Sealer), never printed
/// (`Debug` redacts it, whatever the algorithm) and never serialised by
/// core.
///
/// The key material, by [`algorithm`](Self::algorithm):
///
/// | algorithm | private half (in the clear)        | public half                         |
/// |-----------|------------------------------------|-------------------------------------|
/// | EdDSA     | the 32-byte Ed25519 seed           | the 32-byte Ed25519 public key      |
/// | ES256     | PKCS#8 DER of the P-256 key        | the 65-byte SEC1 uncompressed point |
/// | RS256     | PKCS#1 DER `RSAPrivateKey`         | PKCS#1 DER `RSAPublicKey`           |
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The key id (`kid`), unique per tenant.
    pub kid: String,
    /// What it signs with: the `alg` of its tokens and of its JWK. Keys
    /// stored before algorithms existed are EdDSA.
    pub algorithm: SigningAlgorithm,
    /// The private half as stored, opaque bytes for the store: in the clear
    /// (written without a sealer; see the table above), or the UTF-8 text
    /// of it sealed for this tenant and `kid` (`s1.…`, never 32 bytes long
    /// nor starting as DER does). Read it with
    /// [`stored_private_key`](Self::stored_private_key).
    pub private_key: Vec<u8>,
    /// The public half (see the table above): what the JWKS publishes.
    pub public_key: Vec<u8>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stopped signing, if it did.
    pub retired_at: Option<DateTime<Utc>>,
    /// Until when tokens it signed still verify (set on retirement).
    pub verify_until: Option<DateTime<Utc>>,
}

impl fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Plain(<redacted>)` or `Sealed { key_id, .. }`: never the key.
        let stored = self.stored_private_key();
        let private_key: &dyn fmt::Debug = match &stored {
            Ok(k) => k,
            Err(_) => &"<malformed>",
        };
        f.debug_struct("SigningKeyRecord")
            .field("tenant_id", &self.tenant_id)
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("private_key", private_key)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .field("verify_until", &self.verify_until)
            .finish()
    }
}

impl SigningKeyRecord {
    /// The private half: in the clear (a 32-byte seed for EdDSA, DER for
    /// ES256 and RS256) or sealed. Anything else is
    /// [`SealError::Malformed`].
    pub fn stored_private_key(&self) -> Result<StoredSecret, SealError> {
        // INVARIANT: sealed text starts `s1.`, so it is never taken for a
        // clear value: not 32 bytes (it is longer), not DER (which starts
        // with a SEQUENCE tag, 0x30).
        let plain = match self.algorithm {
            SigningAlgorithm::EdDsa => self.private_key.len() == 32,
            SigningAlgorithm::Es256 | SigningAlgorithm::Rs256 => {
                self.private_key.first() == Some(&0x30)
            }
        };
        if plain {
            return Ok(StoredSecret::Plain(self.private_key.clone()));
        }
        let text = String::from_utf8(self.private_key.clone()).map_err(|_| SealError::Malformed)?;
        Sealed::try_from(text)
            .map(StoredSecret::Sealed)
            .map_err(|_| SealError::Malformed)
    }

    /// Whether it signs new tokens.
    pub fn is_active(&self) -> bool {
        self.retired_at.is_none()
    }

    /// Whether tokens it signed verify at `now`.
    pub fn verifies_at(&self, now: DateTime<Utc>) -> bool {
        self.verify_until.is_none_or(|u| now < u)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use crate::factor::{FactorKind, MethodName};
    use crate::flow::PassedFactor;

    const FOREVER: Duration = Duration::from_secs(300_000 * 366 * 24 * 3600);

    fn now() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn record(idle: Duration, within: Duration) -> SessionRecord {
        let (t, u) = (
            TenantId::from_uuid(uuid::Uuid::from_u128(1)),
            UserId::from_uuid(uuid::Uuid::from_u128(2)),
        );
        SessionRecord {
            id: SessionId::from_uuid(uuid::Uuid::from_u128(3)),
            key: TokenHash::from_bytes([1; 32]),
            tenant_id: t,
            user_id: u,
            auth: AuthRecord {
                tenant_id: t,
                user_id: u,
                method: MethodName::parse("pwd").unwrap(),
                factors: vec![PassedFactor {
                    kind: FactorKind::Password,
                    at: now(),
                }],
                at: now(),
            },
            ip: None,
            user_agent: None,
            created_at: now(),
            last_seen_at: now(),
            expires_at: now() + chrono::Duration::minutes(30),
            absolute_expires_at: DateTime::<Utc>::MAX_UTC,
            idle_timeout: idle,
            renew_within: within,
        }
    }

    /// Algorithms are stored and written under their JWS names, and
    /// nothing else parses; access-token policies stored before algorithms
    /// and optional claims existed read back as EdDSA with no optional
    /// claims.
    #[test]
    fn algorithms_have_their_jws_names_and_old_policies_read_as_eddsa() {
        for (alg, name) in SigningAlgorithm::ALL
            .into_iter()
            .zip(["EdDSA", "ES256", "RS256"])
        {
            assert_eq!(alg.as_str(), name);
            assert_eq!(alg.to_string(), name);
            assert_eq!(name.parse::<SigningAlgorithm>().unwrap(), alg);
            assert_eq!(serde_json::to_value(alg).unwrap(), name);
            assert_eq!(
                serde_json::from_value::<SigningAlgorithm>(name.into()).unwrap(),
                alg
            );
        }
        for bad in ["none", "HS256", "eddsa", "Ed25519", "RS512", ""] {
            assert!(bad.parse::<SigningAlgorithm>().is_err(), "{bad}");
        }
        let old: AccessTokenPolicy =
            serde_json::from_str(r#"{"audience":"api","ttl":{"secs":300,"nanos":0}}"#).unwrap();
        assert_eq!(old, AccessTokenPolicy::new("api", Duration::from_secs(300)));
        assert_eq!(old.algorithm, SigningAlgorithm::EdDsa);
        assert_eq!(old.claims, AccessTokenClaims::default());
        let new = AccessTokenPolicy {
            algorithm: SigningAlgorithm::Rs256,
            claims: AccessTokenClaims {
                tenant: true,
                roles_in: Some(RbacName::new("docs").unwrap()),
                tier: true,
            },
            ..old
        };
        let json = serde_json::to_value(&new).unwrap();
        assert_eq!(json["algorithm"], "RS256");
        assert_eq!(
            json["claims"],
            serde_json::json!({"tenant": true, "roles_in": "docs", "tier": true})
        );
        assert_eq!(
            serde_json::from_value::<AccessTokenPolicy>(json).unwrap(),
            new
        );
    }

    /// Durations whose deadlines fall beyond the calendar renew exactly
    /// (to the absolute end) and never panic; the policy arithmetic says
    /// so with a typed error.
    #[test]
    fn date_arithmetic_near_the_limits_is_checked() {
        assert_eq!(checked_after(now(), FOREVER), None);
        assert_eq!(checked_after(now(), Duration::MAX), None);
        assert!(policy_after(now(), FOREVER, "idle timeout").is_err());
        let mut s = record(FOREVER, FOREVER);
        assert!(s.renewal_due(now()));
        assert!(s.renew(now()));
        assert_eq!(s.expires_at, DateTime::<Utc>::MAX_UTC);
        let mut s = record(Duration::MAX, Duration::MAX);
        assert!(s.renew(now()));
        // A grace beyond the calendar is a grace that never ends.
        let mut f = RefreshFamily {
            id: FamilyId::from_uuid(uuid::Uuid::from_u128(4)),
            tenant_id: s.tenant_id,
            user_id: s.user_id,
            session_id: s.id,
            current: TokenHash::from_bytes([2; 32]),
            previous: Some(TokenHash::from_bytes([3; 32])),
            generation: 1,
            rotated_at: Some(now()),
            created_at: now(),
            expires_at: DateTime::<Utc>::MAX_UTC,
            revoked_at: None,
            reuse_grace: FOREVER,
        };
        let later = now() + chrono::Duration::days(1);
        assert_eq!(
            decide_rotation(&f, &TokenHash::from_bytes([3; 32]), later),
            RotationDecision::Superseded
        );
        f.reuse_grace = Duration::ZERO;
        assert_eq!(
            decide_rotation(&f, &TokenHash::from_bytes([3; 32]), later),
            RotationDecision::Revoke
        );
        s.expires_at = now();
        assert!(!s.renewal_due(now()));
    }
}
