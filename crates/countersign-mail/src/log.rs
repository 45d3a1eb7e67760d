//! A sender that only logs, for development.

use std::convert::Infallible;

use countersign_core::{EmailMessage, EmailSender};

/// An [`EmailSender`] for development: it sends nothing and logs (at
/// `info`, target `countersign_mail`) that a message would have gone to
/// whom, with which subject and for which notice.
///
/// It never logs the text or HTML body, nor the notice's code or token:
/// to read a code during development, use an [`Outbox`](crate::Outbox)
/// or a local SMTP catcher with [`SmtpSender`](crate::SmtpSender).
/// It never fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogSender;

impl LogSender {
    /// A log sender.
    pub fn new() -> Self {
        Self
    }
}

impl EmailSender for LogSender {
    type Error = Infallible;

    async fn send(&self, message: &EmailMessage) -> Result<(), Infallible> {
        // INVARIANT: only these fields are logged; `text`, `html` and the
        // notice's secret never are (the notice is logged by its code only).
        tracing::info!(
            target: "countersign_mail",
            tenant = %message.tenant_id,
            to = %message.to,
            subject = %message.subject,
            notice = message.notice.code(),
            "email not sent (log sender)"
        );
        Ok(())
    }
}
