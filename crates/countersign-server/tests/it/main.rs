//! countersign-server's integration tests: the real binary, and the
//! library where a test needs to look inside the store.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod commands;
mod harness;
mod import;
mod serve;
