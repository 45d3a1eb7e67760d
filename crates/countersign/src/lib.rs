#![doc = include_str!("../../../README.md")]
//!
//! # Crate features
//!
//! | feature  | default | what it adds |
//! |----------|---------|--------------|
//! | `memory` | yes     | [`memory`]: the in-memory backend, also the mock store for tests |
//!
//! This is the one crate with a semver promise: depend on it rather than on
//! the `countersign-*` crates it re-exports.

pub use countersign_core as core;
pub use countersign_core::*;

#[cfg(feature = "memory")]
pub use countersign_memory as memory;

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
}
