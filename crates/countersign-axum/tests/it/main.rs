//! countersign-axum's one integration test binary: a live server on a
//! random loopback port, driven over real HTTP.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    unreachable_pub,
    missing_docs,
    reason = "tests"
)]

mod harness;

mod account;
mod admin;
mod authz;
mod errors;
mod flows;
mod openapi;
mod passkeys;
mod selfprotect;
mod tenants;
