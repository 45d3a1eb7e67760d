//! Integration tests of countersign-core's services, on the memory backend.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    unreachable_pub,
    reason = "tests"
)]

mod flow_property;
mod lockout_property;
mod password_login;
mod provisioning;
mod support;
mod tokens;
