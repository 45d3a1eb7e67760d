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
}

impl TenantFactor {
    /// The factor kind.
    pub fn kind(&self) -> FactorKind {
        match self {
            TenantFactor::Password(_) => FactorKind::Password,
        }
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

/// A user's credential for one factor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum UserFactor {
    /// A password.
    Password(PasswordCredential),
}

impl UserFactor {
    /// The factor kind.
    pub fn kind(&self) -> FactorKind {
        match self {
            UserFactor::Password(_) => FactorKind::Password,
        }
    }
}

/// A stored value with the version a compare-and-save must name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// Its version: 1 when first saved, one more on every successful save.
    pub version: u64,
}
