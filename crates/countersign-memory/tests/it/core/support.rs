//! The memory store under the testkit's [`World`](countersign_testkit::fixtures::World).

use std::time::Duration;

use countersign_core::{Argon2Params, LockoutPolicy, PasswordHasher};
use countersign_memory::MemoryStore;
pub use countersign_testkit::fixtures::PASSWORD;

/// A service over a fresh memory store, with its tenant.
pub type World = countersign_testkit::fixtures::World<MemoryStore>;

/// The hashing the worlds use: cheap, 2 workers.
pub fn hasher() -> PasswordHasher {
    PasswordHasher::new(Argon2Params::INSECURE_TEST, 2).unwrap()
}

pub fn policy(max: u32, window_secs: u64, lock_secs: u64) -> LockoutPolicy {
    LockoutPolicy {
        max_attempts: max,
        window: Duration::from_secs(window_secs),
        lock_duration: Duration::from_secs(lock_secs),
    }
}

/// Run `body` to completion on a fresh 2-worker runtime (a proptest case).
pub fn block_on<F: Future>(body: F) -> F::Output {
    countersign_testkit::bench::runtime().block_on(body)
}

/// A password-only `acme` tenant with the default lockout.
pub async fn world(seed: u64) -> World {
    world_with_policy(seed, LockoutPolicy::default()).await
}

/// A password-only `acme` tenant locking out by `lockout`.
pub async fn world_with_policy(seed: u64, lockout: LockoutPolicy) -> World {
    World::password_only(MemoryStore::new(), seed, lockout).await
}

/// The testkit's every-factor `acme` tenant.
pub async fn mfa_world(seed: u64) -> World {
    World::mfa(MemoryStore::new(), seed).await
}
