//! What the tests share: a core service to get real notices from, a tiny
//! SMTP server, a MIME reader and a tracing capture.

pub mod capture;
pub mod core;
pub mod mime;
pub mod smtp_server;
