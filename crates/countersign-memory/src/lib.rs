//! In-memory backend for countersign: implements every store trait of
//! countersign-core with one lock around the whole state, so every method
//! is atomic and every compare-and-save is exact under any concurrency
//! (as is every rate-limit hit: `N` concurrent hits on one key count `N`).
//! That includes each tenant's RBAC model: a change, the grants and
//! assignments its delete cascades to, its audit event and the bump of the
//! tenant's RBAC version happen in one step (so `N` concurrent changes
//! give versions exactly `1..=N`), every listing is sorted and
//! tenant-scoped, and erasing a user also removes its assignments and
//! direct grants (bumping the version), its pending verifications and its
//! linked identities.
//!
//! Applications should depend on the `countersign` facade (feature
//! `memory`). The store doubles as the mock store for downstream tests:
//! [`MemoryStore::fail_next`] and [`MemoryStore::fail_next_on`] (aimed by a
//! [`StoreMethod`]) inject failures, and the inspection helpers
//! ([`MemoryStore::snapshot`], [`MemoryStore::events`], ...) read state
//! without going through the traits.
//!
//! Nothing is persisted: the state lives as long as the last clone.
//!
//! The modules follow the shape every backend shares: `error`, `store/`
//! (one file per store trait), plus `state` (what the lock guards),
//! `faults` and `inspect` (the mock-store helpers).

mod error;
mod faults;
mod inspect;
mod state;
mod store;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub use error::MemoryError;
pub use faults::StoreMethod;
pub use inspect::MemorySnapshot;

use error::Result;
use faults::Faults;
use state::State;

#[derive(Debug, Default)]
struct Inner {
    state: Mutex<State>,
    faults: Mutex<Faults>,
    /// Whether any fault is armed: the fast path skips the faults lock.
    armed: AtomicBool,
}

/// The in-memory store. Clones share state.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Consume one injected fault aimed at `method`, if any, then lock the state.
    fn begin(&self, method: StoreMethod) -> Result<MutexGuard<'_, State>> {
        self.injected(method)?;
        Ok(self.state())
    }
}
