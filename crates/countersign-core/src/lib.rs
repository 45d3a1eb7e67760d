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
//! [`countersign`]: https://docs.rs/countersign

pub mod audit;
pub mod email;
mod enroll;
pub mod env;
pub mod error;
pub mod factor;
pub mod flow;
pub mod ids;
pub mod jwt;
pub mod lockout;
mod login;
pub mod model;
pub mod otp;
pub mod password;
pub mod provision;
pub mod service;
pub mod session;
mod sessions;
pub mod store;
pub mod token;

pub use audit::{AuditEvent, AuditFilter, AuditKind, AuditStatus};
pub use email::{EmailMessage, EmailSender, Outbox};
pub use enroll::{Confirm, Enroll, Enrolled, PasskeyInfo};
pub use env::{Clock, Env, ManualClock, OsRng, SecureRng, SeededRng, SystemClock};
pub use error::{Error, InvalidInput, RefreshRefusal, Result, StoreError, StoreErrorKind};
pub use factor::{
    AuthMethod, EmailOtpSettings, FactorKind, FactorStep, MethodName, MethodRecord,
    PasskeySettings, PasswordCredential, PasswordSettings, RecoveryCodeSettings, Scope,
    TenantFactor, TotpAlgorithm, TotpSettings, UserFactor, Versioned,
};
pub use flow::{
    Authentication, DenyReason, FlowRecord, FlowState, LoginState, PassedFactor, StepUp,
};
pub use ids::{EventId, FamilyId, IdError, SessionId, TenantId, UserId};
pub use lockout::{FailureRecord, LockoutPolicy};
pub use login::{FactorResponse, LoginStatus, Submission};
pub use model::{
    AccountState, ClientInfo, EmailAddress, Identifier, Tenant, TenantPolicy, TenantSlug, User,
};
pub use otp::TotpEnrollment;
pub use password::{Argon2Params, PasswordHasher, PasswordRules, PasswordViolation};
pub use provision::TenantProvision;
pub use service::{AuthnConfig, AuthnService, NewTenant, NewUser, PasswordLogin};
pub use session::{
    AccessTokenPolicy, RefreshFamily, Rotation, SessionPolicy, SessionRecord, SigningKeyRecord,
};
pub use sessions::{Cleanup, Introspection, IssuedSession, Refreshed, SessionService};
pub use store::{
    AuditQuery, FactorStore, FlowStore, IdentityAdmin, IdentityAuthnLog, IdentityLookup,
    IdentityStore, KeyStore, SessionStore,
};
pub use token::{SecretToken, TokenHash, TokenKind};
