#![doc = include_str!("../../../README.md")]
//!
//! # Crate features
//!
//! | feature  | default | what it adds |
//! |----------|---------|--------------|
//! | `memory` | yes     | [`memory`]: the in-memory backend, also the mock store for tests |
//! | `sqlite` | yes     | [`sqlite`]: the SQLite backend, the embedded default |
//! | `postgres` | no    | `postgres`: the PostgreSQL backend, for scale-out |
//! | `mail`   | no      | `mail`: SMTP and log senders, branded templates for notices |
//! | `oidc`   | no      | `oidc`: fetching OpenID Connect key sets and discovery documents over HTTPS |
//! | `axum`   | no      | `axum`: the HTTP API as an axum router, extractors, the permission guard, OpenAPI |
//!
//! This is the one crate with a semver promise: depend on it rather than on
//! the `countersign-*` crates it re-exports.

pub use countersign_core as core;
pub use countersign_core::*;

#[cfg(feature = "axum")]
pub use countersign_axum as axum;
#[cfg(feature = "mail")]
pub use countersign_mail as mail;
#[cfg(feature = "memory")]
pub use countersign_memory as memory;
#[cfg(feature = "oidc")]
pub use countersign_oidc as oidc;
#[cfg(feature = "postgres")]
pub use countersign_postgres as postgres;
#[cfg(feature = "sqlite")]
pub use countersign_sqlite as sqlite;

/// The names most applications need, in one import: the services, their
/// inputs and outcomes, the backends, and the [`Store`] bound for code
/// generic over a backend.
///
/// The store traits themselves (`FactorStore`, `IdentityAdmin`, ...) are
/// deliberately not here: they reach raw credentials (password hashes, TOTP
/// secrets) and skip the services' validation and audit. Import them by
/// name when writing a backend.
pub mod prelude {
    pub use countersign_core::{
        AccountState, AuthMethod, Authentication, AuthnService, ClientInfo, Env, Error, ErrorKind,
        FactorKind, FactorResponse, FactorSettings, LoginStatus, NewTenant, NewUser,
        PasswordHasher, SessionService, Store, Submission, Tenant, TenantId, User, UserId,
    };
    pub use countersign_core::{
        AdminAction, AuthzService, Decision, DirectGrant, RbacChange, RbacKind, RbacName, Resource,
        RoleAssignment, RoleGrant,
    };
    pub use countersign_core::{Attributes, ProfileChange, ProfileSchema, Tier, UserQuery};
    pub use countersign_core::{ImportOutcome, ImportUser, LegacyHash, UserExport};

    #[cfg(feature = "memory")]
    pub use countersign_memory::MemoryStore;
    #[cfg(feature = "postgres")]
    pub use countersign_postgres::PostgresStore;
    #[cfg(feature = "sqlite")]
    pub use countersign_sqlite::SqliteStore;
}
