//! Why a command failed, and its exit code.

use std::fmt::Display;

use crate::config::ConfigError;

/// Why a command failed. Exit code 2 for configuration errors, 1 for the
/// rest.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// A setting cannot be used.
    #[error("config error: {0}")]
    Config(#[from] ConfigError),
    /// Something went wrong while running.
    #[error("{0}")]
    Failed(String),
}

impl Failure {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Config(_) => 2,
            Failure::Failed(_) => 1,
        }
    }
}

/// A failure while `context`, caused by `e`.
pub fn fail(context: &str, e: impl Display) -> Failure {
    Failure::Failed(format!("{context}: {e}"))
}

/// `.context("...")` on results: the error becomes a [`Failure`] naming
/// what was being done.
pub trait Context<T> {
    /// Map the error to a failure while doing `what`.
    fn context(self, what: &str) -> Result<T, Failure>;
}

impl<T, E: Display> Context<T> for Result<T, E> {
    fn context(self, what: &str) -> Result<T, Failure> {
        self.map_err(|e| fail(what, e))
    }
}
