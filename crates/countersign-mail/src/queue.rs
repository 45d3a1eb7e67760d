//! [`QueuedSender`]: delivery off the request path.
//!
//! A caller asking for a password reset must not learn from the answer's
//! timing whether a message went out: with a sender that talks to an SMTP
//! server (or writes and syncs a file) inside the request, "an account with
//! an address" takes a delivery longer than "no such account". The queued
//! sender hands each message to a bounded in-process queue and answers at
//! once; one background task delivers the queue in order through the inner
//! sender.
//!
//! Guarantees:
//!
//! - **`send` never waits for delivery.** It answers as soon as the message
//!   is queued, whatever the inner sender is doing.
//! - **Bounded.** At most `capacity` messages wait; beyond that `send`
//!   fails with [`Error::QueueFull`] (a transient error: the caller's
//!   request fails, nothing grows without bound).
//! - **In order, one at a time**, through the inner sender. A failed
//!   delivery is logged (the notice's code and the error, never the
//!   recipient's message) and the queue moves on: delivery is not retried
//!   here, so an inner sender that should retry does so itself.
//! - **Drained at shutdown.** [`Delivery::finish`] stops new messages
//!   ([`Error::QueueClosed`]) and waits, up to a deadline, until every
//!   message queued before it has been delivered (or has failed).

use std::sync::Arc;
use std::time::Duration;

use countersign_core::{EmailMessage, EmailSender};
use tokio::sync::{Notify, mpsc, watch};

use crate::{Error, Result};

/// An [`EmailSender`] that queues each message for a background task
/// (see the module docs). Clones share the queue.
#[derive(Debug, Clone)]
pub struct QueuedSender {
    queue: mpsc::Sender<EmailMessage>,
    capacity: usize,
}

/// The background delivery of a [`QueuedSender`]'s queue: ask it to finish
/// (at shutdown) and wait until it has. Clones name the same task.
#[derive(Debug, Clone)]
pub struct Delivery {
    close: Arc<Notify>,
    done: watch::Receiver<bool>,
}

impl QueuedSender {
    /// A queue of at most `capacity` messages (at least 1) delivered
    /// through `inner` by a task spawned on the current tokio runtime.
    /// [`Error::Config`] outside a runtime.
    pub fn spawn<S: EmailSender>(inner: S, capacity: usize) -> Result<(Self, Delivery)> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::Config("a mail queue needs a tokio runtime".to_owned()))?;
        let capacity = capacity.max(1);
        let (queue, rx) = mpsc::channel(capacity);
        let close = Arc::new(Notify::new());
        let (done_tx, done) = watch::channel(false);
        runtime.spawn(deliver(inner, rx, close.clone(), done_tx));
        Ok((Self { queue, capacity }, Delivery { close, done }))
    }
}

impl EmailSender for QueuedSender {
    type Error = Error;

    /// Queue `message`; `Ok` means it is queued, not yet delivered.
    async fn send(&self, message: &EmailMessage) -> Result<()> {
        self.queue.try_send(message.clone()).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::QueueFull {
                capacity: self.capacity,
            },
            mpsc::error::TrySendError::Closed(_) => Error::QueueClosed,
        })
    }
}

impl Delivery {
    /// Stop taking messages and wait until every queued one has been
    /// handed to the inner sender, at most `within`. `true` if the queue
    /// was drained in time; `false` if messages may be left undelivered.
    pub async fn finish(&self, within: Duration) -> bool {
        self.close.notify_one();
        let mut done = self.done.clone();
        tokio::time::timeout(within, done.wait_for(|d| *d))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Whether the task has stopped (after [`finish`](Self::finish), or
    /// once every [`QueuedSender`] is dropped and the queue is empty).
    pub fn is_finished(&self) -> bool {
        *self.done.borrow()
    }
}

/// The task: deliver in order until asked to finish (then drain what is
/// queued) or until every sender is gone.
async fn deliver<S: EmailSender>(
    inner: S,
    mut rx: mpsc::Receiver<EmailMessage>,
    close: Arc<Notify>,
    done: watch::Sender<bool>,
) {
    loop {
        tokio::select! {
            biased;
            () = close.notified() => {
                rx.close();
                while let Some(m) = rx.recv().await {
                    deliver_one(&inner, &m).await;
                }
                break;
            }
            m = rx.recv() => match m {
                Some(m) => deliver_one(&inner, &m).await,
                None => break,
            },
        }
    }
    let _ = done.send(true);
}

async fn deliver_one<S: EmailSender>(inner: &S, m: &EmailMessage) {
    if let Err(e) = inner.send(m).await {
        // INVARIANT: the notice's code and the error; never the body.
        tracing::warn!(notice = m.notice.code(), error = %e, "mail delivery failed");
    }
}
