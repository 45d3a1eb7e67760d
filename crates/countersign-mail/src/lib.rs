//! countersign-mail: the senders and templates behind core's mail seam.
//! Applications should depend on the [`countersign`] facade (feature
//! `mail`), which re-exports this crate as `countersign::mail`.
//!
//! Core decides *what* to tell a user, as a typed
//! [`Notice`](countersign_core::Notice); a
//! [`NoticeRenderer`](countersign_core::NoticeRenderer) words it into an
//! [`EmailMessage`](countersign_core::EmailMessage), and an
//! [`EmailSender`](countersign_core::EmailSender) delivers it. This crate
//! supplies both ends:
//!
//! - [`Templates`]: a renderer with a text and an HTML body for every
//!   notice, in each tenant's [`Branding`] (product name, `From`,
//!   password-reset link), looked up through a [`BrandingSource`] such as
//!   [`Brands`].
//! - [`SmtpSender`]: SMTP through lettre, configured by [`SmtpConfig`].
//! - [`LogSender`]: logs that a message would have been sent, for
//!   development.
//! - [`QueuedSender`]: any sender behind a bounded queue delivered by a
//!   background task, so no request waits for (or is timed by) delivery.
//! - [`Outbox`]: core's capturing sender, re-exported, for tests.
//!
//! ```no_run
//! # async fn demo(store: countersign_memory::MemoryStore,
//! #     env: countersign_core::Env, hasher: countersign_core::PasswordHasher,
//! #     tenant: countersign_core::TenantId) -> Result<(), countersign_mail::Error> {
//! use std::sync::Arc;
//! use countersign_core::AuthnService;
//! use countersign_mail::{Branding, Brands, FromAddress, SmtpConfig, SmtpCredentials,
//!     SmtpSender, Templates};
//!
//! let brands = Arc::new(Brands::new().with(
//!     tenant,
//!     Branding::new("Acme").with_from(FromAddress::parse("Acme <no-reply@acme.example>")?),
//! ));
//! let config = SmtpConfig::new("smtp.example.com", "Login <no-reply@example.com>")
//!     .with_credentials(SmtpCredentials::new("mailer", "s3cret"));
//! let sender = SmtpSender::new(config)?.with_branding(brands.clone());
//! let service = AuthnService::new(store, env, hasher)
//!     .with_notice_renderer(Templates::with_branding(brands))
//!     .with_email_sender(sender);
//! # let _ = service; Ok(()) }
//! ```
//!
//! # Guarantees
//!
//! - **No secret in logs or `Debug`.** No sender logs a message body, a
//!   code or a token; [`LogSender`] logs the recipient, the subject and
//!   the notice's name only, and [`SmtpSender`] the tenant, the notice's
//!   name and the outcome. The `Debug` output of [`SmtpConfig`],
//!   [`SmtpCredentials`] and [`SmtpSender`] never shows the password (core
//!   keeps bodies and codes out of its own `Debug`). Errors carry the
//!   server's reply, never the message.
//! - **TLS modes.** [`SmtpSecurity::StartTls`] requires `STARTTLS` before
//!   credentials or mail (no silent fallback to plain text);
//!   [`SmtpSecurity::Tls`] is TLS from the first byte;
//!   [`SmtpSecurity::Plain`] is for local relays and refuses credentials.
//!   Certificates are checked by rustls against the system's roots and the
//!   host name, with no switch to turn that off.
//! - **Bounded pool and time.** At most [`SmtpConfig::pool_size`] sends
//!   talk to the server at once and at most as many idle connections are
//!   kept; every send ends within [`SmtpConfig::timeout`], waiting for a
//!   connection included.
//! - **Errors with a kind.** [`Error::kind`] says whether the
//!   configuration is wrong, a retry may help ([`ErrorKind::Transient`]:
//!   4xx replies, connection failures, timeouts) or not
//!   ([`ErrorKind::Permanent`]: 5xx replies, TLS failures).
//! - **Escaped HTML.** Every value [`Templates`] puts into an HTML body is
//!   escaped; subjects never carry a code and cannot add header lines.
//!
//! [`countersign`]: https://docs.rs/countersign
#![forbid(unsafe_code)]

mod address;
mod branding;
mod error;
mod log;
mod queue;
mod smtp;
mod templates;

pub use address::FromAddress;
pub use branding::{Branding, BrandingSource, Brands};
pub use error::{BoxError, Error, ErrorKind, Result};
pub use log::LogSender;
pub use queue::{Delivery, QueuedSender};
pub use smtp::{SmtpConfig, SmtpCredentials, SmtpSecurity, SmtpSender};
pub use templates::Templates;

/// Core's capturing sender: keeps every message in memory, for tests and
/// local development (re-exported, so a test needs no other import).
pub use countersign_core::Outbox;
