//! Delivering email: the trait core uses, and a capturing outbox for tests
//! and development. What a message says comes from a
//! [`NoticeRenderer`](crate::notice::NoticeRenderer); SMTP lives in the
//! countersign-mail crate.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use crate::ids::TenantId;
use crate::model::EmailAddress;
use crate::notice::Notice;

/// One rendered message to send. Its `Debug` output leaves out the bodies
/// (they may carry a one-time code).
#[derive(Clone, PartialEq, Eq)]
pub struct EmailMessage {
    /// The tenant on whose behalf it is sent.
    pub tenant_id: TenantId,
    /// The recipient.
    pub to: EmailAddress,
    /// The subject line (never a secret).
    pub subject: String,
    /// The plain-text body. It may carry a one-time code: senders must not
    /// log it.
    pub text: String,
    /// The HTML body, when the renderer makes one. Same rule as `text`.
    pub html: Option<String>,
    /// The notice this message renders (its secret is redacted in `Debug`).
    pub notice: Notice,
}

impl std::fmt::Debug for EmailMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailMessage")
            .field("tenant_id", &self.tenant_id)
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("notice", &self.notice)
            .finish_non_exhaustive()
    }
}

/// Sends email. Implementations must not log message bodies.
pub trait EmailSender: Send + Sync + 'static {
    /// The sender's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Send one message; `Ok` means the message was handed over for delivery.
    fn send(&self, message: &EmailMessage) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Object-safe form of [`EmailSender`], so services can hold any sender.
pub(crate) trait DynEmailSender: Send + Sync {
    fn send_dyn<'a>(
        &'a self,
        message: &'a EmailMessage,
    ) -> BoxFuture<'a, Result<(), Box<dyn std::error::Error + Send + Sync>>>;
}

impl<T: EmailSender> DynEmailSender for T {
    fn send_dyn<'a>(
        &'a self,
        message: &'a EmailMessage,
    ) -> BoxFuture<'a, Result<(), Box<dyn std::error::Error + Send + Sync>>> {
        Box::pin(async move { self.send(message).await.map_err(|e| Box::new(e) as _) })
    }
}

/// A sender that keeps messages in memory instead of sending them: for
/// tests and local development. Clones share the outbox.
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    sent: Arc<Mutex<Vec<EmailMessage>>>,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message "sent" so far, oldest first.
    pub fn messages(&self) -> Vec<EmailMessage> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The newest message to `to`, if any.
    pub fn last_to(&self, to: &str) -> Option<EmailMessage> {
        self.messages()
            .into_iter()
            .rev()
            .find(|m| m.to.as_str() == to)
    }
}

/// The outbox never fails.
#[derive(Debug, thiserror::Error)]
#[error("unreachable")]
pub enum Never {}

impl EmailSender for Outbox {
    type Error = Never;

    async fn send(&self, message: &EmailMessage) -> Result<(), Never> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(message.clone());
        Ok(())
    }
}
