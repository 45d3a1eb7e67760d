//! The sender address.

use std::fmt;
use std::str::FromStr;

use lettre::message::Mailbox;

use crate::error::{Error, Result};

/// A validated `From` mailbox: an address with an optional display name,
/// as in `Acme <no-reply@acme.example>` or `no-reply@acme.example`.
/// Holding one means it parsed: a sender never finds a bad `From` at send
/// time.
#[derive(Clone, PartialEq, Eq)]
pub struct FromAddress(Mailbox);

impl FromAddress {
    /// Parse a mailbox; a bad one is [`Error::FromAddress`] (kind
    /// [`InvalidConfig`](crate::ErrorKind::InvalidConfig)).
    pub fn parse(s: &str) -> Result<Self> {
        Mailbox::from_str(s.trim())
            .map(Self)
            .map_err(|e| Error::FromAddress {
                value: s.to_owned(),
                source: Box::new(e),
            })
    }

    /// The address alone, without the display name.
    pub fn address(&self) -> String {
        self.0.email.to_string()
    }

    /// The domain of the address.
    pub fn domain(&self) -> &str {
        self.0.email.domain()
    }

    pub(crate) fn mailbox(&self) -> &Mailbox {
        &self.0
    }
}

impl FromStr for FromAddress {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for FromAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for FromAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FromAddress({})", self.0)
    }
}
