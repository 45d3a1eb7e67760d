//! Integration tests of the SQLite backend: the whole conformance suite on
//! in-memory databases, the suite's concurrency guarantees on a shared
//! file (one connection per store, so the races are real), migrations,
//! file modes, the worker thread and the pool of read-only connections
//! (with the whole conformance and engine suites again on file stores
//! that have one, in `pooled`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    unreachable_pub,
    reason = "tests"
)]

mod crash;
mod files;
mod pooled;
mod races;
mod readers;
mod worker;

use countersign_sqlite::SqliteStore;

async fn fresh() -> SqliteStore {
    SqliteStore::open_in_memory()
        .await
        .expect("in-memory sqlite")
}

countersign_testkit::conformance_suite!(fresh, audit);
countersign_testkit::engine_suite!(fresh, audit);
