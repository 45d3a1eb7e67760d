#![doc = include_str!("../../../README.md")]
//!
//! # Crate features
//!
//! | feature  | default | what it adds |
//! |----------|---------|--------------|
//! | `memory` | yes     | [`memory`]: the in-memory backend, also the mock store for tests |
//! | `sqlite` | yes     | [`sqlite`]: the SQLite backend, the embedded default |
//! | `postgres` | no    | [`postgres`]: the PostgreSQL backend, for scale-out |
//!
//! This is the one crate with a semver promise: depend on it rather than on
//! the `countersign-*` crates it re-exports.

pub use countersign_core as core;
pub use countersign_core::*;

#[cfg(feature = "memory")]
pub use countersign_memory as memory;
#[cfg(feature = "postgres")]
pub use countersign_postgres as postgres;
#[cfg(feature = "sqlite")]
pub use countersign_sqlite as sqlite;

/// The names most applications need, in one import.
pub mod prelude {
    pub use countersign_core::{
        AccountState, AuthMethod, AuthnService, ClientInfo, Env, Error, FactorKind, NewTenant,
        NewUser, PasswordHasher, Tenant, TenantId, User, UserId,
    };
    pub use countersign_core::{
        AuditQuery, FactorStore, IdentityAdmin, IdentityAuthnLog, IdentityLookup,
    };

    #[cfg(feature = "memory")]
    pub use countersign_memory::MemoryStore;
    #[cfg(feature = "postgres")]
    pub use countersign_postgres::PostgresStore;
    #[cfg(feature = "sqlite")]
    pub use countersign_sqlite::SqliteStore;
}
