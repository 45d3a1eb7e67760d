//! countersign-core: domain types, store traits, factors and the
//! authentication service of countersign.
//!
//! Applications should depend on the [`countersign`] facade crate, which
//! re-exports this crate and the backends; depend on this crate directly
//! only to write a backend or an integration.
//!
//! This crate does no I/O of its own: every read and write goes through the
//! store traits in [`store`], and time and randomness come in through an
//! [`Env`].
//!
//! # Map
//!
//! The domain: [`ids`] (typed ids), [`model`] (tenants, users, account
//! lifecycle), [`lockout`], [`audit`], [`token`] (opaque tokens, kept as
//! SHA-256), [`provision`] and [`error`]; [`env`](mod@env) brings time and
//! randomness in. [`store`] holds the traits a backend implements, with
//! their contracts. [`factor`] holds the kinds of factor, methods and steps,
//! and one private file per factor (password, TOTP, recovery codes, email
//! codes, passkeys) with its settings, credential, verification and the one
//! compare-and-save loop that spends a credential. [`flow`] is the login
//! state machine, pure and advanced by value. [`AuthnService`] runs
//! provisioning, accounts, login flows and enrolment over the stores;
//! [`session`] holds session and refresh-token records and policies,
//! [`SessionService`] (issue, validate, refresh, revoke) and [`jwt`]
//! (signed access tokens). [`email`] is the outgoing-mail seam. Every name
//! an application needs is re-exported here, at the crate root.
//!
//! [`countersign`]: https://docs.rs/countersign

pub mod audit;
mod authn;
#[cfg(feature = "authz")]
pub mod authz;
pub mod email;
pub mod env;
pub mod error;
pub mod factor;
pub mod flow;
pub mod ids;
pub mod lockout;
pub mod model;
pub mod notice;
pub mod profile;
pub mod provision;
pub mod rbac;
pub mod seal;
pub mod session;
pub mod store;
pub mod token;

/// Signed JWT access tokens and the JWKS document; the same module as
/// [`session::jwt`], re-exported at the root where backends and tests
/// name it.
pub use session::jwt;

/// Kept for the callers that name `countersign_core::otp::totp_code`;
/// the home of that function is [`factor`].
#[doc(hidden)]
pub mod otp {
    pub use crate::factor::totp_code;
}

pub use audit::{AuditDetail, AuditEvent, AuditFilter, AuditKind, AuditReason, AuditStatus};
pub use authn::{
    AuthnConfig, AuthnService, Confirm, DEACTIVATED_BY_USER, Enroll, Enrolled, FactorExport,
    FactorResponse, FederatedStart, ImportOutcome, ImportUser, LoginStatus, NewTenant, NewUser,
    PasswordLogin, RESET_TOKEN, Refusal, Registration, RegistrationReceipt, SelfService,
    SessionExport, Submission, UserExport, VerificationExport,
};
#[cfg(feature = "authz")]
pub use authz::{
    AdminAction, AuthzData, AuthzError, AuthzModel, AuthzService, Decision, Resource, TenantAuthz,
};
pub use email::{EmailMessage, EmailSender, Outbox};
pub use env::{Clock, Env, ManualClock, OsRng, SecureRng, SeededRng, SystemClock};
pub use error::{
    BoxError, Error, ErrorKind, InvalidInput, RefreshRefusal, Result, StoreError, StoreErrorKind,
};
pub use factor::federated::{
    DiscoveryDocument, FederationSettings, FetchError, HttpFetch, IdTokenError, IdTokenVerifier,
    IssuerConfig, JwksCache, JwksSource, VerifiedIdToken,
};
pub use factor::{
    Argon2Params, AuthMethod, CodeKey, EmailOtpSettings, FactorCredential, FactorKind,
    FactorSettings, FactorStep, LegacyHash, MethodName, MethodRecord, MethodScope, PasskeyInfo,
    PasskeySettings, PasswordCredential, PasswordHasher, PasswordRules, PasswordSettings,
    PasswordViolation, RecoveryCodeSettings, TotpAlgorithm, TotpEnrollment, TotpSettings,
    Versioned,
};
pub use flow::{
    AuthRecord, Authentication, DenyReason, FlowRecord, FlowState, LoginState, PassedFactor, StepUp,
};
pub use ids::{EventId, FamilyId, IdError, SessionId, TenantId, UserId};
pub use lockout::{FailureRecord, LockoutPolicy};
pub use model::{
    AccountState, ClientInfo, EmailAddress, Identifier, Tenant, TenantPolicy, TenantSlug, User,
};
pub use notice::{Notice, NoticeRenderer, NoticeSecret, PlainText, SecurityEvent};
pub use profile::{
    AttributeDecl, AttributeKind, Attributes, Profile, ProfileChange, ProfileSchema, Tier,
    UserQuery,
};
pub use provision::TenantProvision;
pub use rbac::{
    AuthzVersions, DirectGrant, RbacChange, RbacKind, RbacName, RbacSnapshot, RoleAssignment,
    RoleGrant,
};
pub use seal::{SealError, Sealed, Sealer, SealingKey, StoredSecret};
pub use session::{
    AccessTokenClaims, AccessTokenPolicy, Cleanup, Introspection, IssuedSession, RecordedRotation,
    RefreshFamily, Refreshed, Rotation, SessionPolicy, SessionRecord, SessionService,
    SigningAlgorithm, SigningKeyRecord, StepUpRequired,
};
pub use store::{
    AuditQuery, FactorStore, FederatedStore, FlowStore, HistoryEntry, IdentityAdmin,
    IdentityAuthnLog, IdentityLookup, IdentityStore, KeyStore, LinkedIdentity, MAX_RATE_LIMIT_KEY,
    PolicyDocument, PolicyStore, RateLimitDecision, RateLimitStore, RateLimitWindow, RbacLookup,
    RbacStore, SessionStore, Store, TemplateLink, Verification, VerificationPurpose,
    VerificationStore, check_rate_limit_key,
};
pub use token::{SecretToken, TokenHash, TokenKind};
