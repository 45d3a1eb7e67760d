//! Typed audit events and the filter for querying them.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::env::Env;
use crate::error::Result;
use crate::factor::{FactorKind, MethodName};
use crate::ids::{EventId, TenantId, UserId};
use crate::model::{AccountState, ClientInfo};

macro_rules! str_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $s:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $($(#[$vmeta])* #[serde(rename = $s)] $variant,)+ }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable code stored and shown in APIs.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s,)+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::error::InvalidInput;
            fn from_str(s: &str) -> std::result::Result<Self, $crate::error::InvalidInput> {
                match s {
                    $($s => Ok($name::$variant),)+
                    _ => Err($crate::error::InvalidInput::new(stringify!($name), format!("unknown value `{s}`"))),
                }
            }
        }
    };
}
pub(crate) use str_enum;

str_enum! {
    /// What happened.
    pub enum AuditKind {
        /// One factor was checked during a login (status says how it went).
        Authentication => "authn.factor",
        /// A login completed every step of its method.
        LoginSucceeded => "authn.login",
        /// Too many failures locked the account.
        AccountLocked => "account.locked",
        /// A tenant was provisioned.
        TenantProvisioned => "tenant.provisioned",
        /// A tenant's policy changed.
        TenantPolicyChanged => "tenant.policy_changed",
        /// A tenant adopted a factor or changed its settings.
        TenantFactorChanged => "tenant.factor_changed",
        /// A tenant dropped a factor.
        TenantFactorRemoved => "tenant.factor_removed",
        /// A tenant method was added, enabled or disabled (the detail names it).
        TenantMethodChanged => "tenant.method_changed",
        /// A tenant method was removed (the detail names it).
        TenantMethodRemoved => "tenant.method_removed",
        /// A tenant's authorization model (Cedar schema and policies)
        /// was saved.
        TenantPoliciesChanged => "tenant.policies_changed",
        /// A tenant's RBAC model changed (the detail describes the change),
        /// or a change was refused (status failure).
        RbacChanged => "rbac.changed",
        /// A user was registered.
        UserRegistered => "user.registered",
        /// An identity at an issuer was linked to an existing account.
        IdentityLinked => "identity.linked",
        /// An identity at an issuer was unlinked from its account.
        IdentityUnlinked => "identity.unlinked",
        /// Someone registered with the address of an existing account: the
        /// answer was the same as for a new one, the owner got a notice.
        RegistrationDuplicate => "user.registration_duplicate",
        /// A verification (address code, reset token) was sent, or a
        /// request for one was refused or skipped (status failure, the
        /// detail says why).
        VerificationSent => "verification.sent",
        /// An address was verified: the account is active (status success),
        /// or a code was refused (status failure).
        AddressVerified => "account.verified",
        /// A password was reset with an emailed token (status success), or
        /// a token was refused (status failure).
        PasswordReset => "password.reset",
        /// A user was imported from another system (with the password hash
        /// it had there, if any).
        UserImported => "user.imported",
        /// A user's lifecycle state changed.
        UserStateChanged => "user.state_changed",
        /// A user's profile (display name, tier, attributes) changed (the
        /// detail names the fields), or a change was refused (status
        /// failure, the detail says why).
        ProfileChanged => "user.profile_changed",
        /// A user and their personal data were erased.
        UserErased => "user.erased",
        /// A password was set or changed.
        PasswordChanged => "password.changed",
        /// A stored password hash was upgraded to current parameters.
        PasswordRehashed => "password.rehashed",
        /// A factor was enrolled.
        FactorEnrolled => "factor.enrolled",
        /// A factor was removed.
        FactorRemoved => "factor.removed",
        /// A session began.
        SessionStarted => "session.started",
        /// A session (or several) ended: logout, revocation.
        SessionEnded => "session.ended",
        /// A refresh token rotated.
        TokenRefreshed => "token.refreshed",
        /// A rotated refresh token was presented again: its family is revoked.
        RefreshReuse => "token.reuse",
        /// A tenant's JWT signing key rotated.
        SigningKeyRotated => "key.rotated",
    }
}

str_enum! {
    /// How it went.
    pub enum AuditStatus {
        /// It succeeded.
        Success => "success",
        /// It failed or was refused.
        Failure => "failure",
    }
}

str_enum! {
    /// Why an attempt failed, or how an operation ended: the stable codes
    /// of [`AuditDetail::Reason`].
    pub enum AuditReason {
        /// No account has that identifier (or the flow never named one).
        UnknownIdentifier => "unknown_identifier",
        /// The account has no (confirmed) credential of that factor.
        NoCredential => "no_credential",
        /// The password was wrong.
        WrongSecret => "wrong_secret",
        /// The code was wrong.
        WrongCode => "wrong_code",
        /// The code was right but already used.
        ReplayedCode => "replayed_code",
        /// The code expired.
        ExpiredCode => "expired_code",
        /// No code was pending (never sent, or spent by too many guesses).
        NoCode => "no_code",
        /// The passkey assertion did not verify.
        BadAssertion => "bad_assertion",
        /// The passkey is not one of the account's.
        UnknownPasskey => "unknown_passkey",
        /// The account is locked.
        Locked => "locked",
        /// The account is not active.
        Inactive => "inactive",
        /// A factor passed, but the account was locked or deactivated meanwhile.
        Blocked => "blocked",
        /// The password was right, but no method of the account is a
        /// password alone: a one-call password check is not a login there.
        MoreFactorsNeeded => "more_factors_needed",
        /// The flow token was malformed.
        MalformedFlow => "malformed_flow",
        /// No such flow in this tenant.
        UnknownFlow => "unknown_flow",
        /// The flow had already ended.
        FlowEnded => "flow_ended",
        /// The flow had expired.
        ExpiredFlow => "expired_flow",
        /// The factor is not one the current step accepts.
        OutOfOrder => "out_of_order",
        /// The answer was malformed.
        Malformed => "malformed",
        /// The factor needed a challenge and none was pending.
        NoChallenge => "no_challenge",
        /// The user logged out.
        Logout => "logout",
        /// Every session of the user ended.
        Everywhere => "everywhere",
        /// A session was revoked by id.
        Revoked => "revoked",
        /// A refresh family was revoked after reuse.
        FamilyRevoked => "family_revoked",
        /// An ID token failed verification.
        BadIdToken => "bad_id_token",
        /// The send limit of a verification was reached.
        SendLimit => "send_limit",
        /// A verification was asked for an account it does not apply to.
        NotApplicable => "not_applicable",
        /// A profile change broke the tenant's profile schema (an
        /// undeclared or ill-typed attribute, oversized attributes, a tier
        /// the tenant does not allow) or was malformed.
        InvalidProfile => "invalid_profile",
        /// A user tried to change a profile field only administrators may.
        NotEditable => "not_editable",
    }
}

/// What more an audit event says: a stable code, or the one thing the
/// event names. Stored as one string ([`AuditDetail::code`], parsed back
/// by `FromStr`): `wrong_code`, `method:password-totp`,
/// `state:active->suspended`, `kid:<key id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum AuditDetail {
    /// Why it failed or how it ended.
    Reason(AuditReason),
    /// The method a login completed.
    Method(MethodName),
    /// An account's lifecycle transition.
    Transition {
        /// The state before.
        from: AccountState,
        /// The state after.
        to: AccountState,
    },
    /// The id of a signing key.
    Key(String),
    /// An administrative change, described by names and ids only
    /// (such as [`RbacChange::describe`](crate::rbac::RbacChange::describe)).
    Change(String),
}

impl AuditDetail {
    /// The stable string form stored and shown in APIs.
    pub fn code(&self) -> String {
        match self {
            AuditDetail::Reason(r) => r.as_str().to_owned(),
            AuditDetail::Method(m) => format!("method:{}", m.as_str()),
            AuditDetail::Transition { from, to } => format!("state:{from}->{to}"),
            AuditDetail::Key(kid) => format!("kid:{kid}"),
            AuditDetail::Change(c) => format!("change:{c}"),
        }
    }
}

impl std::fmt::Display for AuditDetail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.code())
    }
}

impl std::str::FromStr for AuditDetail {
    type Err = crate::error::InvalidInput;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let bad = || crate::error::InvalidInput::new("audit detail", format!("unknown `{s}`"));
        if let Some(name) = s.strip_prefix("method:") {
            return MethodName::parse(name).map(AuditDetail::Method);
        }
        if let Some(states) = s.strip_prefix("state:") {
            let (from, to) = states.split_once("->").ok_or_else(bad)?;
            return Ok(AuditDetail::Transition {
                from: from.parse().map_err(|_| bad())?,
                to: to.parse().map_err(|_| bad())?,
            });
        }
        if let Some(kid) = s.strip_prefix("kid:") {
            return Ok(AuditDetail::Key(kid.to_owned()));
        }
        if let Some(change) = s.strip_prefix("change:") {
            return Ok(AuditDetail::Change(change.to_owned()));
        }
        s.parse().map(AuditDetail::Reason)
    }
}

impl From<AuditDetail> for String {
    fn from(d: AuditDetail) -> String {
        d.code()
    }
}

impl TryFrom<String> for AuditDetail {
    type Error = crate::error::InvalidInput;

    fn try_from(s: String) -> std::result::Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<AuditReason> for AuditDetail {
    fn from(r: AuditReason) -> Self {
        AuditDetail::Reason(r)
    }
}

/// One audit record. Never holds a secret: no password, code or token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Its id (UUID v7: sorts by time).
    pub id: EventId,
    /// The tenant it belongs to.
    pub tenant_id: TenantId,
    /// The user it concerns, if one was resolved. After erasure, a pseudonym.
    pub user_id: Option<UserId>,
    /// What happened.
    pub kind: AuditKind,
    /// How it went.
    pub status: AuditStatus,
    /// The factor involved, if any.
    pub factor: Option<FactorKind>,
    /// The client's IP address.
    pub ip: Option<IpAddr>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What more it says (a reason code, the method, the transition).
    pub detail: Option<AuditDetail>,
}

impl AuditEvent {
    /// A new event that happened `at` (the request's one clock reading),
    /// with a fresh id from `env`.
    pub fn new(
        env: &Env,
        at: DateTime<Utc>,
        tenant_id: TenantId,
        user_id: Option<UserId>,
        kind: AuditKind,
        status: AuditStatus,
        client: &ClientInfo,
    ) -> Result<Self> {
        Ok(Self {
            id: EventId::generate(env)?,
            tenant_id,
            user_id,
            kind,
            status,
            factor: None,
            ip: client.ip,
            user_agent: client.user_agent.clone(),
            at,
            detail: None,
        })
    }

    /// The same event naming a factor.
    pub fn with_factor(mut self, factor: FactorKind) -> Self {
        self.factor = Some(factor);
        self
    }

    /// The same event with a detail.
    pub fn with_detail(mut self, detail: impl Into<AuditDetail>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// Filters for [`AuditQuery::query_events`](crate::store::AuditQuery::query_events).
///
/// Every field narrows the result (they combine with AND). The tenant is a
/// separate, required argument of the query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only events about this user.
    pub user_id: Option<UserId>,
    /// Only events of this kind.
    pub kind: Option<AuditKind>,
    /// Only events with this status.
    pub status: Option<AuditStatus>,
    /// Only events at or after this instant (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// Only events before this instant (exclusive).
    pub until: Option<DateTime<Utc>>,
    /// At most this many events; `None` means [`AuditFilter::DEFAULT_LIMIT`],
    /// and anything above [`AuditFilter::MAX_LIMIT`] is cut to it.
    pub limit: Option<u32>,
}

impl AuditFilter {
    /// Events returned when no limit is given.
    pub const DEFAULT_LIMIT: u32 = 100;
    /// The most events one query returns, whatever limit is asked for.
    pub const MAX_LIMIT: u32 = 1000;

    /// The limit a store must apply.
    pub fn effective_limit(&self) -> u32 {
        self.limit
            .unwrap_or(Self::DEFAULT_LIMIT)
            .min(Self::MAX_LIMIT)
    }

    /// Whether `event` passes every filter (tenant is checked separately).
    /// The reference semantics for stores that filter in memory.
    pub fn matches(&self, event: &AuditEvent) -> bool {
        self.user_id.is_none_or(|u| event.user_id == Some(u))
            && self.kind.is_none_or(|k| event.kind == k)
            && self.status.is_none_or(|s| event.status == s)
            && self.from.is_none_or(|f| event.at >= f)
            && self.until.is_none_or(|u| event.at < u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every detail is stored as its code and read back as itself, and
    /// codes are stable (what backends persist and APIs show).
    #[test]
    fn audit_details_round_trip_through_their_codes() {
        let mut details: Vec<AuditDetail> = AuditReason::ALL.iter().map(|r| (*r).into()).collect();
        details.push(AuditDetail::Method(
            MethodName::parse("password-totp").unwrap(),
        ));
        details.push(AuditDetail::Transition {
            from: AccountState::Active,
            to: AccountState::Suspended,
        });
        details.push(AuditDetail::Key("AbC-_1".into()));
        for d in details {
            let code = d.code();
            assert_eq!(code.parse::<AuditDetail>().unwrap(), d, "{code}");
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(serde_json::from_str::<AuditDetail>(&json).unwrap(), d);
        }
        assert_eq!(
            AuditDetail::Transition {
                from: AccountState::Active,
                to: AccountState::Suspended
            }
            .code(),
            "state:active->suspended"
        );
        assert_eq!(
            AuditDetail::from(AuditReason::WrongCode).code(),
            "wrong_code"
        );
        assert!("no such reason".parse::<AuditDetail>().is_err());
        assert!("state:active".parse::<AuditDetail>().is_err());
    }
}
