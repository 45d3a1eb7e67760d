//! The password factor: rules for new passwords (after NIST SP 800-63B) and
//! argon2id hashing with a bounded pool of reusable memory.

mod hasher;
mod rules;

pub use hasher::{Argon2Params, PasswordHasher};
pub use rules::{
    MAX_HISTORY, MAX_PASSWORD_CHARS, PasswordRules, PasswordViolation, normalize_password,
};
