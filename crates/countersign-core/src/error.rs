//! The core error type, and the contract store errors follow.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::factor::PasswordViolation;
use crate::model::AccountState;

/// What kind of failure a store reported, so core can react without
/// downcasting a backend's own error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The row the operation needs does not exist (in this tenant).
    NotFound,
    /// A uniqueness rule or an invariant of the store refused the write.
    Conflict,
    /// The store refused the request itself (e.g. a reserved id).
    Rejected,
    /// A passing failure: retrying the same call may succeed.
    Transient,
    /// Anything else: corrupt data, a bug, an unreachable invariant.
    Other,
}

impl fmt::Display for StoreErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreErrorKind::NotFound => "not found",
            StoreErrorKind::Conflict => "conflict",
            StoreErrorKind::Rejected => "rejected",
            StoreErrorKind::Transient => "transient",
            StoreErrorKind::Other => "other",
        })
    }
}

/// The bound on every store trait's `Error` type.
pub trait StoreError: std::error::Error + Send + Sync + 'static {
    /// The kind of this failure.
    fn kind(&self) -> StoreErrorKind;
}

/// Which caller-supplied field was refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct InvalidInput {
    /// The field, as named in the API (`identifier`, `tenant slug`, ...).
    pub field: &'static str,
    /// Why it was refused, lowercase, with no secret in it.
    pub reason: String,
}

impl InvalidInput {
    /// An invalid-input error for `field`.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// Errors returned by countersign-core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Caller input was malformed; nothing was read or written.
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),
    /// A new password broke the tenant's password rules.
    #[error("password rejected: {0}")]
    PasswordRejected(PasswordViolation),
    /// The identifier is unknown or the secret is wrong. The two cases are
    /// deliberately one error: callers cannot tell them apart.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Too many failed attempts; the account unlocks by itself at `until`.
    #[error("account locked until {until}")]
    AccountLocked {
        /// When the lock lifts.
        until: DateTime<Utc>,
    },
    /// The account exists but may not sign in in its current state.
    #[error("account is {state}")]
    AccountInactive {
        /// The account's state.
        state: AccountState,
    },
    /// No tenant with that id or slug.
    #[error("tenant not found")]
    TenantNotFound,
    /// No user with that id in this tenant.
    #[error("user not found")]
    UserNotFound,
    /// A reserved id or name was claimed through a runtime path.
    #[error("`{0}` is reserved")]
    Reserved(String),
    /// The thing already exists (an identifier taken, a tenant slug taken).
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The account cannot move from `from` to `to`.
    #[error("an account cannot go from {from} to {to}")]
    InvalidTransition {
        /// Current state.
        from: AccountState,
        /// Requested state.
        to: AccountState,
    },
    /// A concurrent change won; the caller may reload and retry.
    #[error("concurrent modification: {0}")]
    Concurrent(&'static str),
    /// Provisioning input broke an invariant (no factors, no method, ...).
    #[error("provisioning refused: {0}")]
    Provisioning(String),
    /// A verification code or reset token is wrong, expired, used, out of
    /// guesses, or another tenant's: the cases are deliberately one error.
    #[error("invalid or expired verification")]
    VerificationFailed,
    /// No login flow with that id in this tenant (unknown, or another
    /// tenant's: the two are indistinguishable).
    #[error("unknown login flow")]
    FlowNotFound,
    /// The login flow outlived its time.
    #[error("the login flow has expired")]
    FlowExpired,
    /// The login flow already ended (authenticated, denied or locked).
    #[error("the login flow has ended")]
    FlowEnded,
    /// The submitted factor is not one the current step accepts.
    #[error("this factor is not expected at this step")]
    FactorNotExpected,
    /// The factor needs a challenge first (a passkey challenge, an emailed
    /// code) and none is pending.
    #[error("no challenge is pending for this factor")]
    ChallengeMissing,
    /// The user has no usable enabled method in this tenant.
    #[error("no usable sign-in method")]
    NoUsableMethod,
    /// The factor is not enrolled (or enrolment is unfinished).
    #[error("factor `{0}` is not enrolled")]
    FactorNotEnrolled(crate::factor::FactorKind),
    /// WebAuthn refused a ceremony (a malformed or unverifiable response,
    /// or relying-party settings it cannot use).
    #[error("passkey ceremony failed")]
    Passkey(#[source] webauthn_rs::prelude::WebauthnError),
    /// No email sender is configured, so a factor that mails a code cannot
    /// be used.
    #[error("no email sender is configured")]
    NoEmailSender,
    /// Sending an email failed.
    #[error("sending email failed")]
    Email(#[source] BoxError),
    /// The session token is unknown, expired or revoked (one error for all
    /// three).
    #[error("session not valid")]
    SessionInvalid,
    /// The refresh token was refused.
    #[error("refresh token refused: {0}")]
    RefreshRefused(RefreshRefusal),
    /// The session's authentication is not recent or strong enough for
    /// this operation; a step-up that meets `required` would be.
    #[error(transparent)]
    StepUpRequired(#[from] crate::session::StepUpRequired),
    /// The access token was refused.
    #[error("access token refused: {0}")]
    AccessToken(#[from] crate::session::jwt::JwtError),
    /// An OpenID Connect ID token was refused, or its issuer's keys could
    /// not be fetched; its kind is
    /// [`IdTokenError::kind`](crate::factor::federated::IdTokenError::kind).
    #[error("id token refused: {0}")]
    IdToken(#[from] crate::factor::federated::IdTokenError),
    /// An authorization model or its data was refused (it does not parse
    /// or validate, is too large, or the data is inconsistent); the
    /// [`AuthzError`](crate::authz::AuthzError) with Cedar's diagnostics is
    /// the source. Its kind is [`AuthzError::kind`](crate::authz::AuthzError::kind):
    /// [`ErrorKind::InvalidInput`] for every refusal today.
    #[cfg(feature = "authz")]
    #[error("authorization model refused")]
    Authz(#[from] crate::authz::AuthzError),
    /// The store failed.
    #[error("store error ({kind}): {source}")]
    Store {
        /// What kind of failure the store reported.
        kind: StoreErrorKind,
        /// The backend's own error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The random source failed; nothing random-dependent was produced.
    #[error("random source failed")]
    Rng(#[source] getrandom::Error),
    /// Password hashing failed (an unusable stored hash, no runtime, ...).
    #[error("password hashing failed: {what}")]
    Hashing {
        /// What failed, with no secret in it.
        what: &'static str,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// A cryptographic or encoding step other than password hashing failed
    /// (signing a token, building a TOTP URI or QR code). Not caller input.
    #[error("internal error: {what}")]
    Internal {
        /// What failed, with no secret in it.
        what: &'static str,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
}

/// A boxed error kept as the source of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What kind of failure an [`Error`] is, for an edge (HTTP, CLI) that maps
/// each kind to its own answer. Exhaustive on purpose: a new kind is a
/// breaking change that every edge must place, with no wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request itself is malformed or breaks a rule; nothing changed.
    InvalidInput,
    /// The caller did not prove who they are (unknown or wrong credentials,
    /// an invalid session or token).
    Unauthenticated,
    /// The account is locked for a while after too many failures.
    Locked,
    /// Known and authenticated enough, but not allowed (inactive account,
    /// no usable method).
    Forbidden,
    /// The named thing does not exist (in this tenant).
    NotFound,
    /// It exists already, or a concurrent change won; reload and retry.
    Conflict,
    /// It existed but has ended (an expired or finished flow).
    Gone,
    /// A dependency is unavailable or not configured; retrying later may work.
    Unavailable,
    /// A bug or a broken invariant; the details go to the log, not the caller.
    Internal,
}

impl ErrorKind {
    /// A stable snake_case code for APIs and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Locked => "locked",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Gone => "gone",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The kind of this error: how an edge should answer it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidInput(_)
            | Error::PasswordRejected(_)
            | Error::Reserved(_)
            | Error::Provisioning(_)
            | Error::FactorNotExpected
            | Error::ChallengeMissing
            | Error::Passkey(_) => ErrorKind::InvalidInput,
            Error::InvalidCredentials
            | Error::VerificationFailed
            | Error::SessionInvalid
            | Error::RefreshRefused(_)
            | Error::AccessToken(_) => ErrorKind::Unauthenticated,
            Error::AccountLocked { .. } => ErrorKind::Locked,
            Error::AccountInactive { .. } | Error::NoUsableMethod | Error::StepUpRequired(_) => {
                ErrorKind::Forbidden
            }
            Error::TenantNotFound
            | Error::UserNotFound
            | Error::FlowNotFound
            | Error::FactorNotEnrolled(_) => ErrorKind::NotFound,
            Error::AlreadyExists(_) | Error::InvalidTransition { .. } | Error::Concurrent(_) => {
                ErrorKind::Conflict
            }
            Error::FlowExpired | Error::FlowEnded => ErrorKind::Gone,
            Error::NoEmailSender | Error::Email(_) => ErrorKind::Unavailable,
            Error::Store { kind, .. } => match kind {
                StoreErrorKind::NotFound => ErrorKind::NotFound,
                StoreErrorKind::Conflict => ErrorKind::Conflict,
                StoreErrorKind::Rejected => ErrorKind::InvalidInput,
                StoreErrorKind::Transient => ErrorKind::Unavailable,
                StoreErrorKind::Other => ErrorKind::Internal,
            },
            Error::Rng(_) | Error::Hashing { .. } | Error::Internal { .. } => ErrorKind::Internal,
            #[cfg(feature = "authz")]
            Error::Authz(e) => e.kind(),
            // Unauthenticated, or Unavailable when the keys could not be fetched.
            Error::IdToken(e) => e.kind(),
        }
    }

    /// A hashing failure with no underlying error.
    pub(crate) fn hashing(what: &'static str) -> Self {
        Error::Hashing { what, source: None }
    }

    /// A hashing failure caused by `source`.
    pub(crate) fn hashing_from(
        what: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Hashing {
            what,
            source: Some(Box::new(source)),
        }
    }

    /// An internal failure with no underlying error.
    pub(crate) fn internal(what: &'static str) -> Self {
        Error::Internal { what, source: None }
    }

    /// An internal failure caused by `source`.
    pub(crate) fn internal_from(
        what: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Internal {
            what,
            source: Some(Box::new(source)),
        }
    }

    /// Wrap a store error, keeping its kind.
    pub fn store<E: StoreError>(err: E) -> Self {
        Error::Store {
            kind: err.kind(),
            source: Box::new(err),
        }
    }

    /// The store error kind, if this is a store error.
    pub fn store_kind(&self) -> Option<StoreErrorKind> {
        match self {
            Error::Store { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// `Ok` if a compare-and-save won, else [`Error::Concurrent`]`(what)`.
    pub(crate) fn unless_lost(saved: bool, what: &'static str) -> Result<()> {
        if saved {
            Ok(())
        } else {
            Err(Error::Concurrent(what))
        }
    }
}

/// [`Error::store`] as a function, for `map_err`.
pub(crate) fn store_err<E: StoreError>(e: E) -> Error {
    Error::store(e)
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a refresh token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshRefusal {
    /// No family has it.
    #[error("unknown")]
    Unknown,
    /// Its family has expired.
    #[error("expired")]
    Expired,
    /// Its family was revoked (logout, reuse, suspension).
    #[error("revoked")]
    Revoked,
    /// It was just rotated away (a benign race within the grace period).
    #[error("superseded")]
    Superseded,
    /// It was used before: the family is now revoked.
    #[error("reused; the login is revoked")]
    Reused,
}
