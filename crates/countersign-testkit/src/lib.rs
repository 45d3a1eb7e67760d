//! The countersign backend conformance suite, fixtures and test helpers.
//!
//! Two suites, generic over the store, prove a backend:
//!
//! - [`conformance`]: every guarantee the store traits of countersign-core
//!   promise, one function each, called directly on the store;
//! - [`engine`]: the login engine end to end (every factor, sessions,
//!   tokens) through `AuthnService` and `SessionService` on the store.
//!
//! # Running the suites on a backend
//!
//! A backend, built in or third-party, runs both from one integration-test
//! binary: add `countersign-testkit` (and `tokio`) as dev-dependencies,
//! then in `tests/it/main.rs`:
//!
//! ```text
//! async fn fresh() -> MyStore {
//!     // an empty store: a new database, schema or instance per call
//! }
//! countersign_testkit::conformance_suite!(fresh, audit);
//! countersign_testkit::engine_suite!(fresh, audit);
//! ```
//!
//! Each macro expands to a module of tests, one `#[test]` per guarantee,
//! namespaced by suite and concern (`conformance::identity::…`,
//! `conformance::sessions::…`, `engine::login::…`, `engine::tokens::…`), so
//! `cargo test conformance::sessions` runs exactly the session guarantees.
//! Each suite also gets a `suite_is_complete` test.
//!
//! The store must be `Clone` (clones share state; the concurrency tests
//! hand clones to many tasks) and implement [`ConformanceStore`]'s traits.
//! Timestamps must round-trip with at least microsecond precision.
//!
//! # Audit is opt-in
//!
//! `AuditQuery` (reading the audit log back) is optional for a backend.
//! `conformance_suite!(fresh)` and `engine_suite!(fresh)` run every
//! guarantee except the `audit` modules and need only [`ConformanceStore`].
//! `conformance_suite!(fresh, audit)` and `engine_suite!(fresh, audit)`
//! also run `conformance::audit` (the `AuditQuery` guarantees and erasure's
//! pseudonymisation of events) and `engine::audit` (the engine scenarios
//! that check audit rows, re-run with those checks made), and need
//! [`AuditedStore`]. The built-in backends (memory, SQLite, Postgres) opt
//! in.
//!
//! # Adding a guarantee
//!
//! Write it as a `pub async fn name<S: ConformanceStore>(s: S)` in the
//! module of its concern, and add `name` to that module's entry in the one
//! list in the suite's `mod.rs` (`__conformance_list!`, `__engine_list!`).
//! The macros and [`conformance::ALL`] / [`engine::ALL`] are built from
//! that list; a unit test of this crate fails when a `pub async fn` of a
//! suite file is missing from it, or a listed name has no function.
//!
//! [`fixtures`] holds the deterministic row builders and the engine's
//! [`World`](fixtures::World); [`bench`](mod@bench) the provisioning the backends'
//! session benchmarks share.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test harness: a failed expectation is a test failure"
)]

pub mod bench;
#[cfg(test)]
mod completeness;
pub mod conformance;
pub mod crash;
pub mod engine;
pub mod fixtures;
mod macros;

use std::future::Future;

use countersign_core::{AuditQuery, Store};

/// Everything the suites exercise, except the audit log read back: core's
/// [`Store`] umbrella, under the name the suites' docs use.
pub trait ConformanceStore: Store {}
impl<T: Store> ConformanceStore for T {}

/// A [`ConformanceStore`] that also reads its audit log back: what the
/// opt-in `audit` modules of both suites need.
pub trait AuditedStore: ConformanceStore + AuditQuery {}
impl<T> AuditedStore for T where T: ConformanceStore + AuditQuery {}

/// Run an async test body on a fresh multi-threaded runtime (4 workers, so
/// the concurrency tests really race).
pub fn run<F: Future<Output = ()>>(body: F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("test runtime")
        .block_on(body);
}
