//! Factors and authentication methods: the kinds of factor, the steps and
//! methods a login passes, and each factor's tenant settings and user
//! credential, one file per factor.
//!
//! Settings ([`FactorSettings`]) are what a tenant adopts; credentials
//! ([`FactorCredential`]) are what a user enrols. Both are stored per scope and
//! saved with a compare-and-save naming the [`Versioned::version`] read.
//! Every credential that is spent or updated on use (a TOTP step, a
//! recovery code, a passkey's counter) goes through one loop here: read,
//! decide, compare-and-save, and on a lost race read again.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::audit::str_enum;
use crate::error::{Error, InvalidInput, Result, store_err};
use crate::ids::{TenantId, UserId};
use crate::store::FactorStore;

mod code;
pub(crate) mod email_code;
pub mod federated;
pub(crate) mod passkey;
mod password;
pub(crate) mod recovery;
pub(crate) mod totp;

pub use code::{CODE_KEY_BYTES, CodeKey, check_digits, hashes_match, numeric_code, sha256_hex};
pub use email_code::{EmailOtpCredential, EmailOtpSettings, PendingCode};
pub use passkey::{PasskeyEntry, PasskeyInfo, PasskeySettings, PasskeysCredential};
pub use password::{
    Argon2Params, GENERATED_PASSWORD_CHARS, LegacyHash, MAX_ARGON2_KIB_PASSES, MAX_BCRYPT_COST,
    MAX_HISTORY, MAX_PASSWORD_CHARS, MAX_PBKDF2_ITERATIONS, MAX_SCRYPT_COST, MAX_SCRYPT_LOG_N,
    MIN_PBKDF2_ITERATIONS, PasswordCredential, PasswordHasher, PasswordRules, PasswordSettings,
    PasswordViolation, generate_password, normalize_password,
};
pub use recovery::{
    RECOVERY_CODE_CHARS, RecoveryCodeSettings, RecoveryCodeSlot, RecoveryCodesCredential,
    new_recovery_code, normalize_recovery_code,
};
pub use totp::{
    TOTP_SECRET_BYTES, TotpAlgorithm, TotpCheck, TotpCredential, TotpEnrollment, TotpSettings,
    check_totp, new_totp, totp_code, totp_enrollment,
};

str_enum! {
    /// A kind of authentication factor.
    pub enum FactorKind {
        /// Something the user knows: a password.
        Password => "password",
        /// A time-based one-time code (RFC 6238).
        Totp => "totp",
        /// Single-use recovery codes.
        RecoveryCodes => "recovery_codes",
        /// A one-time code sent by email.
        EmailOtp => "email_otp",
        /// A WebAuthn passkey.
        Passkey => "passkey",
        /// An OpenID Connect ID token from a trusted issuer.
        OidcIdToken => "oidc_id_token",
    }
}

/// One step of a method: exactly one factor, or a choice among several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactorStep {
    /// This factor must pass.
    Required(FactorKind),
    /// Any one of these factors must pass.
    AnyOf(Vec<FactorKind>),
}

impl FactorStep {
    /// Whether `kind` satisfies this step.
    pub fn admits(&self, kind: FactorKind) -> bool {
        match self {
            FactorStep::Required(k) => *k == kind,
            FactorStep::AnyOf(ks) => ks.contains(&kind),
        }
    }

    /// The factors this step accepts.
    pub fn kinds(&self) -> &[FactorKind] {
        match self {
            FactorStep::Required(k) => std::slice::from_ref(k),
            FactorStep::AnyOf(ks) => ks,
        }
    }
}

/// The most steps a method may have.
pub const MAX_METHOD_STEPS: usize = 8;

/// An authentication method's name: 1 to 64 of `a-z`, `0-9`, `+`, `-`, `_`, `.`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MethodName(String);

impl MethodName {
    /// Validate a method name.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'+' | b'-' | b'_' | b'.')
            });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidInput::new(
                "method name",
                "must be 1 to 64 of a-z, 0-9, `+`, `-`, `_`, `.`",
            ))
        }
    }

    /// The name of the one-step method of a step-up flow
    /// ([`AuthnService::begin_step_up`](crate::AuthnService::begin_step_up)).
    pub const STEP_UP: &'static str = "step-up";

    /// Whether the engine keeps this name for itself: `step-up` (step-up
    /// flows). A tenant cannot define a method of this name.
    pub fn is_reserved(&self) -> bool {
        self.0 == Self::STEP_UP
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for MethodName {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, InvalidInput> {
        Self::parse(&s)
    }
}
impl From<MethodName> for String {
    fn from(s: MethodName) -> String {
        s.0
    }
}
impl fmt::Display for MethodName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for MethodName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MethodName({:?})", self.0)
    }
}

/// An authentication method: a named, ordered list of steps, all of which a
/// login must pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthMethod {
    /// Its name, unique per scope.
    pub name: MethodName,
    /// Its steps, in order.
    pub steps: Vec<FactorStep>,
}

impl AuthMethod {
    /// A method from steps, validated: 1 to [`MAX_METHOD_STEPS`] steps,
    /// every `AnyOf` non-empty and without repeats.
    pub fn new(name: &str, steps: Vec<FactorStep>) -> Result<Self, InvalidInput> {
        let method = Self {
            name: MethodName::parse(name)?,
            steps,
        };
        method.validate()?;
        Ok(method)
    }

    /// A method of required factors in sequence (`password` then `totp`, ...).
    pub fn sequence(name: &str, factors: &[FactorKind]) -> Result<Self, InvalidInput> {
        Self::new(
            name,
            factors.iter().copied().map(FactorStep::Required).collect(),
        )
    }

    /// Check the method's shape (stores may hold methods built by hand).
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let err = |r: &str| InvalidInput::new("method", r);
        if self.steps.is_empty() || self.steps.len() > MAX_METHOD_STEPS {
            return Err(err("must have 1 to 8 steps"));
        }
        for step in &self.steps {
            if let FactorStep::AnyOf(kinds) = step {
                if kinds.is_empty() {
                    return Err(err("an any-of step needs at least one factor"));
                }
                let mut seen = kinds.clone();
                seen.sort_by_key(|k| k.as_str());
                seen.dedup();
                if seen.len() != kinds.len() {
                    return Err(err("an any-of step names a factor twice"));
                }
            }
        }
        Ok(())
    }

    /// Every factor kind the method can use.
    pub fn factor_kinds(&self) -> impl Iterator<Item = FactorKind> + '_ {
        self.steps.iter().flat_map(|s| s.kinds().iter().copied())
    }
}

/// Where a method or factor configuration applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MethodScope {
    /// Everyone in the tenant.
    Tenant(TenantId),
    /// One user (who belongs to the tenant).
    User(TenantId, UserId),
}

impl MethodScope {
    /// The tenant of this scope.
    pub fn tenant(&self) -> TenantId {
        match self {
            MethodScope::Tenant(t) | MethodScope::User(t, _) => *t,
        }
    }

    /// The user of this scope, if it is a user scope.
    pub fn user(&self) -> Option<UserId> {
        match self {
            MethodScope::Tenant(_) => None,
            MethodScope::User(_, u) => Some(*u),
        }
    }
}

/// A method as stored, with its enabled flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodRecord {
    /// The method.
    pub method: AuthMethod,
    /// Whether logins may use it.
    pub enabled: bool,
}

/// A tenant's settings for one factor it has adopted. A tenant offers a
/// factor to its users only if it holds a settings row for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FactorSettings {
    /// Passwords.
    Password(PasswordSettings),
    /// Time-based one-time codes.
    Totp(TotpSettings),
    /// Recovery codes.
    RecoveryCodes(RecoveryCodeSettings),
    /// One-time codes by email.
    EmailOtp(EmailOtpSettings),
    /// WebAuthn passkeys.
    Passkey(PasskeySettings),
    /// OpenID Connect ID tokens from trusted issuers.
    OidcIdToken(federated::FederationSettings),
}

impl FactorSettings {
    /// The factor kind.
    pub fn kind(&self) -> FactorKind {
        match self {
            FactorSettings::Password(_) => FactorKind::Password,
            FactorSettings::Totp(_) => FactorKind::Totp,
            FactorSettings::RecoveryCodes(_) => FactorKind::RecoveryCodes,
            FactorSettings::EmailOtp(_) => FactorKind::EmailOtp,
            FactorSettings::Passkey(_) => FactorKind::Passkey,
            FactorSettings::OidcIdToken(_) => FactorKind::OidcIdToken,
        }
    }

    /// Check the settings' own bounds.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        match self {
            FactorSettings::Password(p) => p.rules.validate(),
            FactorSettings::Totp(t) => t.validate(),
            FactorSettings::RecoveryCodes(r) => r.validate(),
            FactorSettings::EmailOtp(e) => e.validate(),
            FactorSettings::Passkey(p) => p.validate(),
            FactorSettings::OidcIdToken(f) => f.validate(),
        }
    }
}

/// A user's credential for one factor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FactorCredential {
    /// A password.
    Password(PasswordCredential),
    /// A TOTP secret.
    Totp(TotpCredential),
    /// Recovery codes.
    RecoveryCodes(RecoveryCodesCredential),
    /// An email address for one-time codes.
    EmailOtp(EmailOtpCredential),
    /// Passkeys.
    Passkey(PasskeysCredential),
}

impl FactorCredential {
    /// The factor kind.
    pub fn kind(&self) -> FactorKind {
        match self {
            FactorCredential::Password(_) => FactorKind::Password,
            FactorCredential::Totp(_) => FactorKind::Totp,
            FactorCredential::RecoveryCodes(_) => FactorKind::RecoveryCodes,
            FactorCredential::EmailOtp(_) => FactorKind::EmailOtp,
            FactorCredential::Passkey(_) => FactorKind::Passkey,
        }
    }

    /// Whether the credential can be used to sign in (enrolment finished).
    pub fn is_usable(&self) -> bool {
        match self {
            FactorCredential::Password(_) => true,
            FactorCredential::Totp(t) => t.confirmed,
            FactorCredential::RecoveryCodes(r) => r.codes.iter().any(|c| c.used_at.is_none()),
            FactorCredential::EmailOtp(e) => e.confirmed,
            FactorCredential::Passkey(p) => !p.keys.is_empty(),
        }
    }
}

/// A stored value with the version a compare-and-save must name.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// Its version: 1 when first saved, one more on every successful save.
    pub version: u64,
}

/// The outcome of checking one factor: it passed, or it failed for a reason
/// that goes to the audit log (never to the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// The factor is right.
    Passed,
    /// The factor is wrong; the audit detail says how.
    Failed(crate::audit::AuditReason),
}

/// A user credential of one factor kind: one variant of [`FactorCredential`].
pub(crate) trait Credential: Sized {
    /// The kind it is stored under.
    const KIND: FactorKind;
    /// The credential, if `factor` is of this kind.
    fn from_factor(factor: FactorCredential) -> Option<Self>;
    /// The credential as stored.
    fn into_factor(self) -> FactorCredential;
}

macro_rules! credentials {
    ($($ty:ty => $variant:ident,)*) => {$(
        impl Credential for $ty {
            const KIND: FactorKind = FactorKind::$variant;
            fn from_factor(factor: FactorCredential) -> Option<Self> {
                match factor {
                    FactorCredential::$variant(c) => Some(c),
                    _ => None,
                }
            }
            fn into_factor(self) -> FactorCredential {
                FactorCredential::$variant(self)
            }
        }
    )*};
}

credentials! {
    PasswordCredential => Password,
    TotpCredential => Totp,
    RecoveryCodesCredential => RecoveryCodes,
    EmailOtpCredential => EmailOtp,
    PasskeysCredential => Passkey,
}

/// Read `user`'s credential of kind `C`, with its version. A row of another
/// kind reads as none.
pub(crate) async fn credential<C: Credential, S: FactorStore>(
    store: &S,
    tenant: TenantId,
    user: UserId,
) -> Result<Option<Versioned<C>>> {
    let found = store
        .user_factor(tenant, user, C::KIND)
        .await
        .map_err(store_err)?;
    Ok(found.and_then(|v| {
        C::from_factor(v.value).map(|value| Versioned {
            value,
            version: v.version,
        })
    }))
}

/// Save `cred` once, naming `expected` (`None`: there must be none yet).
/// Losing the race is [`Error::Concurrent`].
pub(crate) async fn save<C: Credential, S: FactorStore>(
    store: &S,
    tenant: TenantId,
    user: UserId,
    expected: Option<u64>,
    cred: C,
) -> Result<()> {
    let saved = store
        .compare_and_save_user_factor(tenant, user, expected, &cred.into_factor())
        .await
        .map_err(store_err)?;
    Error::unless_lost(saved, "the credential changed meanwhile")
}

/// What a spend decides about the credential it read.
pub(crate) enum Verdict<C, T> {
    /// Save this credential (naming the version read); if the save wins,
    /// the spend answers `T`, and if it loses, the spend reads again.
    Save(C, T),
    /// Save nothing and answer `T`.
    Keep(T),
}

/// How often a spend reads again after losing a compare-and-save.
const SPEND_ATTEMPTS: usize = 4;

/// The one spend loop: read `user`'s credential of kind `C`, let `decide`
/// look at it (`None`: there is none), and save what it returns with a
/// compare-and-save naming the version read. A lost race reads again, up
/// to four times; then the spend fails with [`Error::Concurrent`]`(what)`.
///
/// This is how single use holds with concurrent requests: of two spends
/// of the same code, one saves and the other reads the spent credential.
pub(crate) async fn spend<C, S, T>(
    store: &S,
    tenant: TenantId,
    user: UserId,
    what: &'static str,
    decide: impl FnMut(Option<C>) -> Result<Verdict<C, T>>,
) -> Result<T>
where
    C: Credential,
    S: FactorStore,
{
    let first = credential(store, tenant, user).await?;
    spend_from(store, tenant, user, first, what, decide).await
}

/// [`spend`] from a credential already read (its first decision uses it).
pub(crate) async fn spend_from<C, S, T>(
    store: &S,
    tenant: TenantId,
    user: UserId,
    first: Option<Versioned<C>>,
    what: &'static str,
    mut decide: impl FnMut(Option<C>) -> Result<Verdict<C, T>>,
) -> Result<T>
where
    C: Credential,
    S: FactorStore,
{
    let mut current = first;
    for attempt in 0..SPEND_ATTEMPTS {
        if attempt > 0 {
            current = credential(store, tenant, user).await?;
        }
        let expected = current.as_ref().map(|v| v.version);
        match decide(current.take().map(|v| v.value))? {
            Verdict::Keep(answer) => return Ok(answer),
            Verdict::Save(cred, answer) => {
                let saved = store
                    .compare_and_save_user_factor(tenant, user, expected, &cred.into_factor())
                    .await
                    .map_err(store_err)?;
                if saved {
                    return Ok(answer);
                }
            }
        }
    }
    Err(Error::Concurrent(what))
}
