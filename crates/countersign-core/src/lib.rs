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
pub mod env;
pub mod error;
pub mod factor;
pub mod ids;
pub mod lockout;
pub mod model;
pub mod password;
pub mod provision;
pub mod service;
pub mod store;

pub use audit::{AuditEvent, AuditFilter, AuditKind, AuditStatus};
pub use env::{Clock, Env, ManualClock, OsRng, SecureRng, SeededRng, SystemClock};
pub use error::{Error, InvalidInput, Result, StoreError, StoreErrorKind};
pub use factor::{
    AuthMethod, FactorKind, FactorStep, MethodName, MethodRecord, PasswordCredential,
    PasswordSettings, Scope, TenantFactor, UserFactor, Versioned,
};
pub use ids::{EventId, IdError, TenantId, UserId};
pub use lockout::{FailureRecord, LockoutPolicy};
pub use model::{
    AccountState, ClientInfo, EmailAddress, Identifier, Tenant, TenantPolicy, TenantSlug, User,
};
pub use password::{Argon2Params, PasswordHasher, PasswordRules, PasswordViolation};
pub use provision::TenantProvision;
pub use service::{AuthnService, NewTenant, NewUser, PasswordLogin};
pub use store::{
    AuditQuery, FactorStore, IdentityAdmin, IdentityAuthnLog, IdentityLookup, IdentityStore,
};
