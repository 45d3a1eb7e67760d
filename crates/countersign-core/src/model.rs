//! Tenants, users and the account lifecycle.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::error::InvalidInput;
use crate::ids::{TenantId, UserId};
use crate::lockout::LockoutPolicy;

/// The longest identifier, in characters, after normalisation.
pub const MAX_IDENTIFIER_CHARS: usize = 256;
/// The longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 256;
/// The longest user agent kept on an audit event, in bytes; longer ones are cut.
pub const MAX_USER_AGENT_BYTES: usize = 512;

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Whether `c` is invisible or reorders text: zero-width characters
/// (spaces, joiners, the BOM, the soft hyphen, the combining grapheme
/// joiner, variation selectors) and bidirectional controls (embeddings,
/// overrides, isolates, marks). Such characters make two identifiers that
/// look the same compare different, so identifiers refuse them.
fn is_invisible_or_bidi(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}'
            | '\u{E0100}'..='\u{E01EF}'
    )
}

/// A tenant's short name, unique across the deployment: 1 to 63 of
/// `a-z`, `0-9` and `-`, neither starting nor ending with `-`. The slug
/// `system` is reserved.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantSlug(String);

impl TenantSlug {
    /// The reserved slug of the system tenant.
    pub const RESERVED: &'static str = "system";

    /// Validate a slug from caller input.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let err = |r: &str| InvalidInput::new("tenant slug", r);
        if s.is_empty() || s.len() > 63 {
            return Err(err("must be 1 to 63 characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(err("only a-z, 0-9 and `-` are allowed"));
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err(err("must not start or end with `-`"));
        }
        if s == Self::RESERVED {
            return Err(err("`system` is reserved"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantSlug {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, InvalidInput> {
        Self::parse(&s)
    }
}
impl From<TenantSlug> for String {
    fn from(s: TenantSlug) -> String {
        s.0
    }
}
impl FromStr for TenantSlug {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, InvalidInput> {
        Self::parse(s)
    }
}
impl fmt::Display for TenantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for TenantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantSlug({:?})", self.0)
    }
}

/// A user's login identifier (a username or an email address), unique
/// within its tenant.
///
/// Normalised so that lookups match what a person means: Unicode NFKC,
/// surrounding whitespace trimmed, lowercased. After that it must be 1 to
/// [`MAX_IDENTIFIER_CHARS`] characters with no whitespace, no control
/// characters, and no zero-width or bidirectional control characters (which
/// would let two identifiers that look alike differ).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Identifier(String);

impl Identifier {
    /// Normalise and validate caller input.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let err = |r: &str| InvalidInput::new("identifier", r);
        // Refuse absurd input before normalising it (bounded work).
        if s.len() > MAX_IDENTIFIER_CHARS * 4 + 64 {
            return Err(err("too long"));
        }
        let normalised: String = s.trim().nfkc().collect::<String>().to_lowercase();
        if normalised.is_empty() {
            return Err(err("must not be empty"));
        }
        if normalised.chars().count() > MAX_IDENTIFIER_CHARS {
            return Err(err("too long"));
        }
        if has_control(&normalised) {
            return Err(err("control characters are not allowed"));
        }
        if normalised.chars().any(is_invisible_or_bidi) {
            return Err(err(
                "zero-width and bidirectional control characters are not allowed",
            ));
        }
        if normalised.chars().any(char::is_whitespace) {
            return Err(err("whitespace is not allowed"));
        }
        Ok(Self(normalised))
    }

    /// The normalised identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Identifier {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, InvalidInput> {
        Self::parse(&s)
    }
}
impl From<Identifier> for String {
    fn from(s: Identifier) -> String {
        s.0
    }
}
impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identifier({:?})", self.0)
    }
}

/// An email address, checked only for shape (one `@`, non-empty parts, no
/// whitespace or control characters, at most 254 bytes). Deliverability is
/// proven by verification, not by parsing.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Validate caller input; the domain is lowercased.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let err = |r: &str| InvalidInput::new("email", r);
        let s = s.trim();
        if s.len() > 254 {
            return Err(err("too long"));
        }
        if has_control(s) || s.chars().any(char::is_whitespace) {
            return Err(err("whitespace and control characters are not allowed"));
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(err("must contain `@`"));
        };
        if local.is_empty() || domain.is_empty() {
            return Err(err("must have a local part and a domain"));
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for EmailAddress {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, InvalidInput> {
        Self::parse(&s)
    }
}
impl From<EmailAddress> for String {
    fn from(s: EmailAddress) -> String {
        s.0
    }
}
impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({:?})", self.0)
    }
}

/// Validate a display name: at most [`MAX_DISPLAY_NAME_CHARS`] characters,
/// no control characters. Surrounding whitespace is trimmed.
pub fn parse_display_name(s: &str) -> Result<String, InvalidInput> {
    let err = |r: &str| InvalidInput::new("display name", r);
    if s.len() > MAX_DISPLAY_NAME_CHARS * 4 {
        return Err(err("too long"));
    }
    let s = s.trim();
    if s.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(err("too long"));
    }
    if has_control(s) {
        return Err(err("control characters are not allowed"));
    }
    Ok(s.to_owned())
}

/// Per-tenant security policy kept on the tenant itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TenantPolicy {
    /// How failed attempts lock an account.
    pub lockout: LockoutPolicy,
    /// How long sessions and tokens live.
    #[serde(default)]
    pub sessions: crate::session::SessionPolicy,
    /// The shape of its users' profiles: tiers and attributes.
    #[serde(default)]
    pub profile: crate::profile::ProfileSchema,
    /// Keep the tenant's password-only methods usable by users who have a
    /// second factor. Off by default: confirming a TOTP app or an
    /// email-code address, or registering a passkey, disables every
    /// method that asks only for a password for that user (until the last
    /// such factor is removed), so enrolling a second factor protects the
    /// account.
    #[serde(default)]
    pub keep_password_only_after_mfa: bool,
}

impl TenantPolicy {
    /// Check the whole policy: the lockout policy, the session policy
    /// (with its access-token policy) and the profile schema
    /// ([`ProfileSchema::validate`](crate::profile::ProfileSchema::validate)).
    /// A policy out of bounds is refused,
    /// never replaced by a default. (Password rules are the password
    /// factor's settings, checked with the factor.)
    pub fn validate(&self) -> Result<(), InvalidInput> {
        self.lockout.validate()?;
        self.sessions.validate()?;
        self.profile.validate()
    }
}

/// A tenant: the unit of isolation. Every user, factor, method and audit
/// event belongs to exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Its id.
    pub id: TenantId,
    /// Its unique short name.
    pub slug: TenantSlug,
    /// Its human-readable name.
    pub name: String,
    /// Its security policy.
    pub policy: TenantPolicy,
    /// When it was provisioned.
    pub created_at: DateTime<Utc>,
}

/// Where an account is in its life.
///
/// Transitions (anything else is refused):
///
/// ```text
/// Candidate -> Pending | Active | Deleted
/// Pending   -> Active | Deleted
/// Active    -> Suspended | Deleted
/// Suspended -> Active | Deleted
/// Deleted   -> (terminal)
/// ```
///
/// Only `Active` accounts may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    /// Created, nothing verified yet.
    Candidate,
    /// Waiting on a verification (an emailed link, an admin's approval).
    Pending,
    /// May sign in.
    Active,
    /// Barred from signing in by an administrator; reversible.
    Suspended,
    /// Closed. The row may remain (for audit) but the account is gone for good.
    Deleted,
}

impl AccountState {
    /// Every state, for tests and exhaustive tables.
    pub const ALL: [AccountState; 5] = [
        AccountState::Candidate,
        AccountState::Pending,
        AccountState::Active,
        AccountState::Suspended,
        AccountState::Deleted,
    ];

    /// Whether the lifecycle allows moving from `self` to `to`.
    pub fn can_become(self, to: AccountState) -> bool {
        use AccountState::*;
        matches!(
            (self, to),
            (Candidate, Pending | Active | Deleted)
                | (Pending, Active | Deleted)
                | (Active, Suspended | Deleted)
                | (Suspended, Active | Deleted)
        )
    }

    /// A stable lowercase name, used in storage and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::Candidate => "candidate",
            AccountState::Pending => "pending",
            AccountState::Active => "active",
            AccountState::Suspended => "suspended",
            AccountState::Deleted => "deleted",
        }
    }
}

impl fmt::Display for AccountState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AccountState {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, InvalidInput> {
        AccountState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| InvalidInput::new("account state", format!("unknown state `{s}`")))
    }
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// The tenant it belongs to.
    pub tenant_id: TenantId,
    /// Its login identifier, unique within the tenant.
    pub identifier: Identifier,
    /// Optional display name.
    pub display_name: Option<String>,
    /// Optional email address (for codes and resets).
    pub email: Option<EmailAddress>,
    /// Lifecycle state.
    pub state: AccountState,
    /// Why it is in that state (e.g. a suspension reason), if recorded.
    pub state_reason: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its state or profile last changed.
    pub updated_at: DateTime<Utc>,
    /// When it last signed in successfully.
    pub last_login_at: Option<DateTime<Utc>>,
    /// Its tier, if it has one (one its tenant's
    /// [`ProfileSchema`](crate::profile::ProfileSchema) allows).
    #[serde(default)]
    pub tier: Option<crate::profile::Tier>,
    /// Its attributes, of the shape its tenant declares.
    #[serde(default)]
    pub attributes: crate::profile::Attributes,
}

/// What is known of the client making a request, recorded on audit events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// Its IP address.
    pub ip: Option<IpAddr>,
    /// Its user agent, cut to [`MAX_USER_AGENT_BYTES`].
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// Client information with the user agent cut to a safe length and
    /// stripped of control characters.
    pub fn new(ip: Option<IpAddr>, user_agent: Option<&str>) -> Self {
        let user_agent = user_agent.map(|ua| {
            let mut out = String::new();
            for c in ua.chars().filter(|c| !c.is_control()) {
                if out.len() + c.len_utf8() > MAX_USER_AGENT_BYTES {
                    break;
                }
                out.push(c);
            }
            out
        });
        Self { ip, user_agent }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_normalise_and_refuse_bad_input() {
        let id = Identifier::parse("  Alice@Example.COM ").unwrap();
        assert_eq!(id.as_str(), "alice@example.com");
        // NFKC folds the fullwidth form into ASCII.
        assert_eq!(Identifier::parse("ＡＢＣ").unwrap().as_str(), "abc");
        assert!(Identifier::parse("").is_err());
        assert!(Identifier::parse("   ").is_err());
        assert!(Identifier::parse("a\u{0}b").is_err());
        assert!(Identifier::parse("a\nb").is_err());
        assert!(Identifier::parse("a b").is_err());
        assert!(Identifier::parse(&"x".repeat(1_000_000)).is_err());
        assert!(Identifier::parse(&"x".repeat(257)).is_err());
        assert!(Identifier::parse(&"x".repeat(256)).is_ok());
    }

    /// Invisible and text-reordering characters would let `alice` and
    /// `al\u{200B}ice` be two accounts that look the same.
    #[test]
    fn identifiers_refuse_zero_width_and_bidi_controls() {
        for c in [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{200E}',
            '\u{200F}',
            '\u{202A}',
            '\u{202E}',
            '\u{2066}',
            '\u{2069}',
            '\u{061C}',
            '\u{FE0F}',
            '\u{E0041}',
        ] {
            let bad = format!("al{c}ice");
            assert!(Identifier::parse(&bad).is_err(), "U+{:04X}", u32::from(c));
        }
        assert!(Identifier::parse("zoë").is_ok());
        assert!(Identifier::parse("пользователь").is_ok());
    }

    #[test]
    fn slugs_are_strict_and_system_is_reserved() {
        assert!(TenantSlug::parse("acme-corp").is_ok());
        for bad in [
            "",
            "-a",
            "a-",
            "Acme",
            "a b",
            "system",
            "a_b",
            &"a".repeat(64),
        ] {
            assert!(TenantSlug::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lifecycle_table() {
        use AccountState::*;
        assert!(Candidate.can_become(Active));
        assert!(Active.can_become(Suspended));
        assert!(Suspended.can_become(Active));
        assert!(!Deleted.can_become(Active));
        assert!(!Active.can_become(Active));
        assert!(!Pending.can_become(Suspended));
        for s in AccountState::ALL {
            assert!(!Deleted.can_become(s));
            assert_eq!(s.as_str().parse::<AccountState>().unwrap(), s);
        }
    }

    #[test]
    fn emails_and_user_agents() {
        assert_eq!(
            EmailAddress::parse("Bob@EXAMPLE.org").unwrap().as_str(),
            "Bob@example.org"
        );
        assert!(EmailAddress::parse("no-at").is_err());
        assert!(EmailAddress::parse("@x").is_err());
        assert!(EmailAddress::parse("a @x").is_err());
        let ua = "u\u{7}".repeat(1000);
        let info = ClientInfo::new(None, Some(&ua));
        let kept = info.user_agent.unwrap();
        assert!(kept.len() <= MAX_USER_AGENT_BYTES && !kept.contains('\u{7}'));
    }
}
