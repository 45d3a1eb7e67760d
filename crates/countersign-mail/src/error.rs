//! The crate's error and its kind.

use std::fmt;
use std::time::Duration;

/// A boxed source error. Sources stay boxed so that lettre's types are not
/// part of this crate's API.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a caller can do about an [`Error`]: the one question a mail error
/// has to answer. Exhaustive on purpose, so every caller decides for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The configuration (host, port, addresses, TLS set-up, pool size) is
    /// wrong. Nothing was sent; fix the configuration.
    InvalidConfig,
    /// Sending failed but may succeed if retried later: a 4xx reply, a
    /// refused or dropped connection, a timeout, no free connection, a
    /// full or closed delivery queue.
    Transient,
    /// Sending this message will keep failing: a 5xx reply, a recipient the
    /// message format cannot carry, a failed TLS handshake (certificate or
    /// protocol), or a server that does not speak SMTP as expected.
    Permanent,
}

impl ErrorKind {
    /// A stable snake_case name (for logs and metrics).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::Transient => "transient",
            ErrorKind::Permanent => "permanent",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong building a sender or sending a message.
/// No variant carries a message body or a password, so displaying or
/// logging an error never leaks one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is invalid.
    #[error("invalid smtp configuration: {0}")]
    Config(String),
    /// A sender address (the configured or a tenant's `From`) does not
    /// parse as a mailbox.
    #[error("invalid from address `{value}`")]
    FromAddress {
        /// The address as given.
        value: String,
        /// Why it does not parse.
        #[source]
        source: BoxError,
    },
    /// The TLS parameters for the host could not be built.
    #[error("cannot set up tls for `{host}`")]
    Tls {
        /// The SMTP host.
        host: String,
        /// What failed.
        #[source]
        source: BoxError,
    },
    /// The recipient cannot be put on an SMTP envelope (core checks only
    /// the shape of an address; SMTP is stricter).
    #[error("invalid recipient address `{value}`")]
    Recipient {
        /// The address as given.
        value: String,
        /// Why it does not parse.
        #[source]
        source: BoxError,
    },
    /// The message could not be assembled.
    #[error("cannot build the message")]
    Message(#[source] BoxError),
    /// The SMTP exchange failed; the kind says whether to retry.
    #[error("sending over smtp failed ({kind})")]
    Smtp {
        /// Transient or permanent.
        kind: ErrorKind,
        /// The transport's error (it carries the server's reply, never the
        /// message).
        #[source]
        source: BoxError,
    },
    /// The send did not finish within the configured timeout (waiting for
    /// a connection slot included).
    #[error("sending over smtp timed out after {0:?}")]
    Timeout(Duration),
    /// A [`QueuedSender`](crate::QueuedSender)'s queue holds `capacity`
    /// messages already; this one was not queued.
    #[error("the mail queue is full ({capacity} messages)")]
    QueueFull {
        /// The queue's capacity.
        capacity: usize,
    },
    /// A [`QueuedSender`](crate::QueuedSender)'s delivery has finished
    /// (the service is shutting down); the message was not queued.
    #[error("the mail queue is closed")]
    QueueClosed,
}

impl Error {
    /// What a caller can do about it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(_) | Error::FromAddress { .. } | Error::Tls { .. } => {
                ErrorKind::InvalidConfig
            }
            Error::Recipient { .. } | Error::Message(_) => ErrorKind::Permanent,
            Error::Smtp { kind, .. } => *kind,
            Error::Timeout(_) | Error::QueueFull { .. } | Error::QueueClosed => {
                ErrorKind::Transient
            }
        }
    }

    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind() == ErrorKind::Transient
    }

    /// The error for a failed SMTP exchange, classified.
    pub(crate) fn smtp(e: lettre::transport::smtp::Error) -> Self {
        let kind = if e.is_transient() || e.is_timeout() {
            ErrorKind::Transient
        } else if e.is_permanent()
            || e.is_tls()
            || e.is_response()
            || e.is_client()
            || e.is_transport_shutdown()
        {
            ErrorKind::Permanent
        } else {
            // What is left: connecting failed, or the connection broke.
            ErrorKind::Transient
        };
        Error::Smtp {
            kind,
            source: Box::new(e),
        }
    }
}
