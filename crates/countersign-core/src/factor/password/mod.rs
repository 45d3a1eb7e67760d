//! The password factor: the tenant's rules for new passwords (after NIST SP
//! 800-63B), the user's credential (a PHC argon2id string, never the
//! password), and argon2id hashing with a bounded pool of reusable memory.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod hasher;
mod rules;

pub use hasher::{Argon2Params, PasswordHasher};
pub use rules::{
    MAX_HISTORY, MAX_PASSWORD_CHARS, PasswordRules, PasswordViolation, normalize_password,
};

/// The tenant's password settings (the tenant-scope password factor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PasswordSettings {
    /// Rules new passwords must meet.
    pub rules: PasswordRules,
}

/// A user's password credential. Holds only a PHC-format argon2 hash.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordCredential {
    /// The PHC string (`$argon2id$v=19$m=...`).
    pub phc: String,
    /// When it was set.
    pub changed_at: DateTime<Utc>,
}

impl fmt::Debug for PasswordCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordCredential")
            .field("phc", &"<redacted>")
            .field("changed_at", &self.changed_at)
            .finish()
    }
}
