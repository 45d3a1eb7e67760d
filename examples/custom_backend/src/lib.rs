//! How a third party writes a countersign backend, and proves it.
//!
//! [`CountingStore`] is a decorating backend: it wraps any store and counts
//! the calls (and failed calls) each store trait receives, without locks,
//! so it can sit on the hot path in production and feed a metrics
//! exporter, or let a test assert how many round trips a login costs. It
//! implements every store trait of `countersign-core` by delegating to the
//! store it wraps; the services take it like any other backend:
//!
//! ```
//! use countersign_core::{AuthnService, Env, NewTenant, PasswordHasher};
//! use countersign_example_custom_backend::{CountingStore, StoreTrait};
//! use countersign_memory::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), countersign_core::Error> {
//! let store = CountingStore::new(MemoryStore::new());
//! let authn = AuthnService::new(store.clone(), Env::system(), PasswordHasher::owasp()?);
//! authn.provision_tenant(NewTenant::password_only("acme", "Acme Inc")?).await?;
//!
//! let counts = store.counts(); // clones share the counters
//! assert!(counts.get(StoreTrait::IdentityAdmin).calls >= 1);
//! println!("{counts}");
//! # Ok(())
//! # }
//! ```
//!
//! # What a backend must guarantee
//!
//! The traits in `countersign_core::store` state their contracts method by
//! method. In short, a backend must:
//!
//! - be `Clone`, with clones sharing state (the services clone the store
//!   into every task);
//! - scope every lookup to its tenant: a user, flow, session, role or
//!   service of another tenant is indistinguishable from one that does not
//!   exist;
//! - make every method all or nothing, and make the compare-and-save
//!   methods exact under any concurrency: of N concurrent saves naming one
//!   version exactly one wins, N concurrent failed attempts raise the count
//!   by exactly N, of concurrent presentations of one refresh token at
//!   most one rotates, and N concurrent RBAC changes of a tenant get its
//!   versions one to N, each once (a delete with its cascade, and the
//!   change's audit event, in the same step), as N concurrent hits on one
//!   rate-limit key get the counts one to N;
//! - never read a clock (time is the `now` the caller passes) and keep
//!   timestamps to at least microsecond precision;
//! - report failures through [`StoreError::kind`]: `NotFound`, `Conflict`,
//!   `Rejected` and `Transient` each make the services answer differently.
//!
//! Every one of these is a test in `countersign-testkit`: the conformance
//! suite checks each store guarantee directly, and the engine suite runs
//! every login, enrolment, session and token scenario through the
//! services on the backend. A backend is done when both pass; this crate
//! runs them in `tests/it/main.rs` with
//! `countersign_testkit::conformance_suite!(fresh, audit)` and
//! `countersign_testkit::engine_suite!(fresh, audit)`, where `fresh` is an
//! `async fn` returning an empty store. Leave out `audit` when the backend
//! does not implement `AuditQuery`.
//!
//! # Writing a decorator
//!
//! A decorator keeps the inner store's guarantees only if it delegates each
//! call exactly once and keeps no state a read could observe. So it must
//! not cache reads (`validate_session` renews the session it returns, and a
//! cached session would survive its revocation), and must not retry writes
//! on `Transient` (a compare-and-save that committed before its connection
//! dropped would be retried and report `false`). Counting, tracing, timing
//! and fault injection are safe; the suites confirm it.
//!
//! [`StoreError::kind`]: countersign_core::StoreError::kind

mod delegate;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// One of the store traits of countersign-core, as [`CountingStore`]
/// counts it. A method is counted under the trait that declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StoreTrait {
    /// `IdentityLookup`: tenants, users, lockout records (read-only).
    IdentityLookup,
    /// `IdentityAuthnLog`: the writes a live login makes.
    IdentityAuthnLog,
    /// `IdentityAdmin`: provisioning and lifecycle.
    IdentityAdmin,
    /// `FactorStore`: factor settings, credentials, methods.
    FactorStore,
    /// `FlowStore`: login flows and other ceremonies.
    FlowStore,
    /// `SessionStore`: sessions and refresh-token families.
    SessionStore,
    /// `KeyStore`: JWT signing keys.
    KeyStore,
    /// `PolicyStore`: each tenant's authorization policy document.
    PolicyStore,
    /// `RbacLookup`: each tenant's services, roles, permissions, grants
    /// and assignments, and its authorization versions (read-only).
    RbacLookup,
    /// `RbacStore`: changes to each tenant's RBAC model.
    RbacStore,
    /// `VerificationStore`: address codes and reset tokens, consumed once.
    VerificationStore,
    /// `FederatedStore`: identities at other issuers linked to accounts.
    FederatedStore,
    /// `RateLimitStore`: fixed-window hit counters by key.
    RateLimitStore,
    /// `AuditQuery`: reading the audit log back.
    AuditQuery,
}

impl StoreTrait {
    /// Every store trait, from the identity tiers to the audit log.
    pub const ALL: [StoreTrait; 14] = [
        StoreTrait::IdentityLookup,
        StoreTrait::IdentityAuthnLog,
        StoreTrait::IdentityAdmin,
        StoreTrait::FactorStore,
        StoreTrait::FlowStore,
        StoreTrait::SessionStore,
        StoreTrait::KeyStore,
        StoreTrait::PolicyStore,
        StoreTrait::RbacLookup,
        StoreTrait::RbacStore,
        StoreTrait::VerificationStore,
        StoreTrait::FederatedStore,
        StoreTrait::RateLimitStore,
        StoreTrait::AuditQuery,
    ];

    /// The trait's name in countersign-core.
    pub fn name(self) -> &'static str {
        match self {
            StoreTrait::IdentityLookup => "IdentityLookup",
            StoreTrait::IdentityAuthnLog => "IdentityAuthnLog",
            StoreTrait::IdentityAdmin => "IdentityAdmin",
            StoreTrait::FactorStore => "FactorStore",
            StoreTrait::FlowStore => "FlowStore",
            StoreTrait::SessionStore => "SessionStore",
            StoreTrait::KeyStore => "KeyStore",
            StoreTrait::PolicyStore => "PolicyStore",
            StoreTrait::RbacLookup => "RbacLookup",
            StoreTrait::RbacStore => "RbacStore",
            StoreTrait::VerificationStore => "VerificationStore",
            StoreTrait::FederatedStore => "FederatedStore",
            StoreTrait::RateLimitStore => "RateLimitStore",
            StoreTrait::AuditQuery => "AuditQuery",
        }
    }
}

impl fmt::Display for StoreTrait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The calls one trait received, and how many of them returned an error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Calls made.
    pub calls: u64,
    /// Calls that returned an error (of any kind).
    pub errors: u64,
}

/// A snapshot of a [`CountingStore`]'s counters, per trait.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallCounts {
    tallies: [Tally; StoreTrait::ALL.len()],
}

impl CallCounts {
    /// The tally of one trait.
    pub fn get(&self, of: StoreTrait) -> Tally {
        self.tallies.get(of as usize).copied().unwrap_or_default()
    }

    /// Every trait with its tally, in [`StoreTrait::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (StoreTrait, Tally)> + '_ {
        StoreTrait::ALL
            .into_iter()
            .zip(self.tallies.iter().copied())
    }

    /// The sum over every trait.
    pub fn total(&self) -> Tally {
        self.tallies.iter().fold(Tally::default(), |sum, t| Tally {
            calls: sum.calls + t.calls,
            errors: sum.errors + t.errors,
        })
    }
}

impl fmt::Display for CallCounts {
    /// One line per trait that was called: `FlowStore: 4 calls, 0 errors`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, t) in self.iter().filter(|(_, t)| t.calls > 0) {
            if !first {
                writeln!(f)?;
            }
            first = false;
            write!(f, "{name}: {} calls, {} errors", t.calls, t.errors)?;
        }
        Ok(())
    }
}

/// One trait's live counters.
#[derive(Debug, Default)]
struct Slot {
    calls: AtomicU64,
    errors: AtomicU64,
}

/// A store that counts the calls each store trait receives, then hands
/// them to the store it wraps.
///
/// It implements each store trait exactly when the inner store does (so a
/// `CountingStore` over a backend without `AuditQuery` has none either),
/// with the inner store's error type. Clones share the inner store's state
/// and the counters. Counting is one relaxed atomic add per call, with no
/// lock.
#[derive(Debug, Clone)]
pub struct CountingStore<S> {
    inner: S,
    slots: Arc<[Slot; StoreTrait::ALL.len()]>,
}

impl<S> CountingStore<S> {
    /// Wrap `inner`, with every counter at zero.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            slots: Arc::default(),
        }
    }

    /// The wrapped store (calls made on it directly are not counted).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Unwrap the store.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The counters now. Calls still running are counted; whether they
    /// failed is not known yet.
    pub fn counts(&self) -> CallCounts {
        let mut counts = CallCounts::default();
        for (tally, slot) in counts.tallies.iter_mut().zip(self.slots.iter()) {
            tally.calls = slot.calls.load(Ordering::Relaxed);
            tally.errors = slot.errors.load(Ordering::Relaxed);
        }
        counts
    }

    /// Set every counter back to zero (for every clone).
    pub fn reset(&self) {
        for slot in self.slots.iter() {
            slot.calls.store(0, Ordering::Relaxed);
            slot.errors.store(0, Ordering::Relaxed);
        }
    }

    /// Count a call to `of`, run it, and count its failure if it fails.
    async fn counted<T, E>(
        &self,
        of: StoreTrait,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let slot = self.slots.get(of as usize);
        if let Some(slot) = slot {
            slot.calls.fetch_add(1, Ordering::Relaxed);
        }
        let result = call.await;
        if let (Some(slot), Err(_)) = (slot, &result) {
            slot.errors.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}
