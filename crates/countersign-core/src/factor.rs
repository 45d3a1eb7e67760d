//! Factors, authentication methods and the typed factor configurations
//! stored per scope (tenant settings, user credentials).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::str_enum;
use crate::error::InvalidInput;
use crate::ids::{TenantId, UserId};
use crate::password::PasswordRules;

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
pub enum Scope {
    /// Everyone in the tenant.
    Tenant(TenantId),
    /// One user (who belongs to the tenant).
    User(TenantId, UserId),
}

impl Scope {
    /// The tenant of this scope.
    pub fn tenant(&self) -> TenantId {
        match self {
            Scope::Tenant(t) | Scope::User(t, _) => *t,
        }
    }

    /// The user of this scope, if it is a user scope.
    pub fn user(&self) -> Option<UserId> {
        match self {
            Scope::Tenant(_) => None,
            Scope::User(_, u) => Some(*u),
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

/// The tenant's password settings (the tenant-scope password factor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PasswordSettings {
    /// Rules new passwords must meet.
    pub rules: PasswordRules,
}

/// A tenant's settings for one factor it has adopted. A tenant offers a
/// factor to its users only if it holds a settings row for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TenantFactor {
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
}

impl TenantFactor {
    /// The factor kind.
    pub fn kind(&self) -> FactorKind {
        match self {
            TenantFactor::Password(_) => FactorKind::Password,
            TenantFactor::Totp(_) => FactorKind::Totp,
            TenantFactor::RecoveryCodes(_) => FactorKind::RecoveryCodes,
            TenantFactor::EmailOtp(_) => FactorKind::EmailOtp,
            TenantFactor::Passkey(_) => FactorKind::Passkey,
        }
    }

    /// Check the settings' own bounds.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        match self {
            TenantFactor::Password(p) => p.rules.validate(),
            TenantFactor::Totp(t) => t.validate(),
            TenantFactor::RecoveryCodes(r) => r.validate(),
            TenantFactor::EmailOtp(e) => e.validate(),
            TenantFactor::Passkey(p) => p.validate(),
        }
    }
}

/// The HMAC a TOTP code is built on (RFC 6238).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum TotpAlgorithm {
    /// HMAC-SHA1: what every authenticator app supports.
    #[default]
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

/// A tenant's TOTP settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpSettings {
    /// The issuer shown in authenticator apps.
    pub issuer: String,
    /// Code length: 6 to 8 digits.
    pub digits: u8,
    /// Seconds per step (15 to 300).
    pub step_secs: u32,
    /// Steps of clock skew accepted on each side (0 to 2).
    pub skew_steps: u8,
    /// The HMAC algorithm.
    pub algorithm: TotpAlgorithm,
}

impl Default for TotpSettings {
    /// RFC 6238's recommendation: 6 digits, 30 s steps, one step of skew, SHA-1.
    fn default() -> Self {
        Self {
            issuer: "countersign".into(),
            digits: 6,
            step_secs: 30,
            skew_steps: 1,
            algorithm: TotpAlgorithm::Sha1,
        }
    }
}

impl TotpSettings {
    /// Check the settings' bounds.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let err = |r: &str| Err(InvalidInput::new("totp settings", r));
        if !(6..=8).contains(&self.digits) {
            return err("digits must be 6 to 8");
        }
        if !(15..=300).contains(&self.step_secs) {
            return err("the step must be 15 to 300 seconds");
        }
        if self.skew_steps > 2 {
            return err("skew must be 0 to 2 steps");
        }
        if self.issuer.is_empty() || self.issuer.contains(':') || self.issuer.len() > 128 {
            return err("the issuer must be 1 to 128 bytes without `:`");
        }
        Ok(())
    }
}

/// A tenant's recovery-code settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryCodeSettings {
    /// Codes per set (1 to 32).
    pub count: u8,
}

impl Default for RecoveryCodeSettings {
    /// Ten codes per set.
    fn default() -> Self {
        Self { count: 10 }
    }
}

impl RecoveryCodeSettings {
    /// Check the settings' bounds.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        if (1..=32).contains(&self.count) {
            Ok(())
        } else {
            Err(InvalidInput::new(
                "recovery code settings",
                "count must be 1 to 32",
            ))
        }
    }
}

/// A tenant's email one-time code settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailOtpSettings {
    /// Code length: 6 to 10 digits.
    pub digits: u8,
    /// How long a code is valid, in seconds (60 to 3600).
    pub ttl_secs: u32,
    /// Wrong guesses one code tolerates before it is void (1 to 10).
    pub max_attempts: u32,
}

impl Default for EmailOtpSettings {
    /// 6 digits, valid 10 minutes, 5 guesses.
    fn default() -> Self {
        Self {
            digits: 6,
            ttl_secs: 600,
            max_attempts: 5,
        }
    }
}

impl EmailOtpSettings {
    /// Check the settings' bounds.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let err = |r: &str| Err(InvalidInput::new("email otp settings", r));
        if !(6..=10).contains(&self.digits) {
            return err("digits must be 6 to 10");
        }
        if !(60..=3600).contains(&self.ttl_secs) {
            return err("ttl must be 60 to 3600 seconds");
        }
        if !(1..=10).contains(&self.max_attempts) {
            return err("max attempts must be 1 to 10");
        }
        Ok(())
    }
}

/// A tenant's WebAuthn relying-party settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeySettings {
    /// The relying party id: the site's registrable domain (`example.com`).
    pub rp_id: String,
    /// The relying party name shown by authenticators.
    pub rp_name: String,
    /// The web origin ceremonies come from (`https://login.example.com`).
    pub origin: String,
}

impl PasskeySettings {
    /// Check that the origin is a URL and the relying party id non-empty.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let err = |r: &str| Err(InvalidInput::new("passkey settings", r));
        if self.rp_id.is_empty() || self.rp_id.len() > 253 {
            return err("the relying party id must be a domain");
        }
        if self.rp_name.is_empty() || self.rp_name.len() > 128 {
            return err("the relying party name must be 1 to 128 bytes");
        }
        if url::Url::parse(&self.origin).is_err() {
            return err("the origin must be a URL");
        }
        Ok(())
    }
}

/// A user's password credential. Holds only a PHC-format argon2 hash.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordCredential {
    /// The PHC string (`$argon2id$v=19$m=...`).
    pub phc: String,
    /// When it was set.
    pub changed_at: DateTime<Utc>,
}

impl fmt::Debug for PasswordCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordCredential")
            .field("phc", &"<redacted>")
            .field("changed_at", &self.changed_at)
            .finish()
    }
}

/// A user's TOTP credential. The shared secret must be kept to verify codes;
/// it is redacted from `Debug` output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpCredential {
    /// The shared secret (20 random bytes).
    pub secret: Vec<u8>,
    /// Code length.
    pub digits: u8,
    /// Seconds per step.
    pub step_secs: u32,
    /// The HMAC algorithm.
    pub algorithm: TotpAlgorithm,
    /// The last step a code was accepted for: codes of this step or earlier
    /// are refused, so each code works once.
    pub last_step: Option<u64>,
    /// Whether the user proved possession with a first valid code.
    pub confirmed: bool,
    /// When it was enrolled.
    pub created_at: DateTime<Utc>,
}

impl fmt::Debug for TotpCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpCredential")
            .field("secret", &"<redacted>")
            .field("digits", &self.digits)
            .field("step_secs", &self.step_secs)
            .field("algorithm", &self.algorithm)
            .field("last_step", &self.last_step)
            .field("confirmed", &self.confirmed)
            .finish()
    }
}

/// One recovery code as stored: its SHA-256 hash, and when it was used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryCodeSlot {
    /// Hex SHA-256 of the normalised code.
    pub hash: String,
    /// When it was spent, if it was.
    pub used_at: Option<DateTime<Utc>>,
}

/// A user's set of recovery codes (hashes only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryCodesCredential {
    /// The codes.
    pub codes: Vec<RecoveryCodeSlot>,
    /// When the set was generated.
    pub generated_at: DateTime<Utc>,
}

/// A code sent by email and not yet used: its hash, expiry and guesses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCode {
    /// Hex SHA-256 of the code.
    pub hash: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Wrong guesses so far.
    pub attempts: u32,
}

/// A user's email one-time code enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailOtpCredential {
    /// Where codes go.
    pub address: crate::model::EmailAddress,
    /// Whether the address was proven with a code.
    pub confirmed: bool,
    /// The confirmation code in flight, during enrolment.
    pub pending: Option<PendingCode>,
    /// When it was enrolled.
    pub created_at: DateTime<Utc>,
}

/// One registered passkey.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasskeyEntry {
    /// Our id for it (stable across renames).
    pub id: uuid::Uuid,
    /// The user's name for it.
    pub name: String,
    /// The credential (public key, counter, backup state).
    pub passkey: webauthn_rs::prelude::Passkey,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it was last used to sign in.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl PartialEq for PasskeyEntry {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.name == other.name
            && self.passkey == other.passkey
            && self.created_at == other.created_at
            && self.last_used_at == other.last_used_at
    }
}

/// A user's passkeys.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PasskeysCredential {
    /// The registered passkeys.
    pub keys: Vec<PasskeyEntry>,
}

/// A user's credential for one factor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum UserFactor {
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

impl UserFactor {
    /// The factor kind.
    pub fn kind(&self) -> FactorKind {
        match self {
            UserFactor::Password(_) => FactorKind::Password,
            UserFactor::Totp(_) => FactorKind::Totp,
            UserFactor::RecoveryCodes(_) => FactorKind::RecoveryCodes,
            UserFactor::EmailOtp(_) => FactorKind::EmailOtp,
            UserFactor::Passkey(_) => FactorKind::Passkey,
        }
    }

    /// Whether the credential can be used to sign in (enrolment finished).
    pub fn is_usable(&self) -> bool {
        match self {
            UserFactor::Password(_) => true,
            UserFactor::Totp(t) => t.confirmed,
            UserFactor::RecoveryCodes(r) => r.codes.iter().any(|c| c.used_at.is_none()),
            UserFactor::EmailOtp(e) => e.confirmed,
            UserFactor::Passkey(p) => !p.keys.is_empty(),
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
