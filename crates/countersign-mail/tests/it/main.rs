//! Integration tests of countersign-mail, one binary: configuration and
//! its redaction, the templates for every notice, the log sender's
//! silence about secrets, the queued sender's delivery off the request
//! path, and SMTP end to end against a tiny in-process
//! server (a core login code travelling through `Templates` and
//! `SmtpSender`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    unreachable_pub,
    reason = "tests"
)]

mod config;
mod log_sender;
mod queue;
mod smtp;
mod support;
mod templates;
