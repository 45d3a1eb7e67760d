//! The memory backend's error.

use countersign_core::{StoreError, StoreErrorKind};

/// The memory backend's error: a kind and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MemoryError {
    kind: StoreErrorKind,
    message: String,
}

impl MemoryError {
    pub(crate) fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl StoreError for MemoryError {
    fn kind(&self) -> StoreErrorKind {
        self.kind
    }
}

/// `Result` with [`MemoryError`].
pub(crate) type Result<T> = std::result::Result<T, MemoryError>;

/// `what` does not exist (in this tenant).
pub(crate) fn not_found(what: &str) -> MemoryError {
    MemoryError::new(StoreErrorKind::NotFound, format!("{what} not found"))
}

/// A `what` with the same unique key already exists: what a SQL backend's
/// unique constraint reports.
pub(crate) fn unique_violation(what: &str) -> MemoryError {
    MemoryError::new(StoreErrorKind::Conflict, format!("{what} already exists"))
}
