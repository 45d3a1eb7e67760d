//! The password factor: the tenant's rules for new passwords (after NIST SP
//! 800-63B), the user's credential (a PHC argon2id string, never the
//! password), argon2id hashing with a bounded pool of reusable memory, and
//! the hashes imported from other systems ([`LegacyHash`]), verified in
//! their own format until the first login rehashes them.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod hasher;
mod legacy;
mod rules;
mod slots;

pub use hasher::{Argon2Params, PasswordHasher};
pub use legacy::{
    LegacyHash, MAX_ARGON2_KIB_PASSES, MAX_BCRYPT_COST, MAX_PBKDF2_ITERATIONS, MAX_SCRYPT_COST,
    MAX_SCRYPT_LOG_N, MIN_PBKDF2_ITERATIONS,
};
pub use rules::{
    MAX_HISTORY, MAX_PASSWORD_CHARS, PasswordRules, PasswordViolation, normalize_password,
};

/// The tenant's password settings (the tenant-scope password factor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PasswordSettings {
    /// Rules new passwords must meet.
    pub rules: PasswordRules,
}

/// A user's password credential. Holds only a hash: a PHC-format argon2
/// one, or, for an imported user until their first successful login, the
/// stored form of a [`LegacyHash`] (bcrypt's own string, or a PHC-style
/// `$scrypt$` or `$pbkdf2-sha256$` one).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordCredential {
    /// The PHC string (`$argon2id$v=19$m=...`, or an imported hash's).
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

/// The length of a [`generate_password`] password.
pub const GENERATED_PASSWORD_CHARS: usize = 24;

/// A random password of [`GENERATED_PASSWORD_CHARS`] characters of
/// `[A-Za-z0-9_-]` from `env`'s random source (6 bits each, unbiased: 144
/// bits), for accounts an operator creates for someone else. It meets
/// the default [`PasswordRules`] (a new tenant's), which ask for no
/// character class: a tenant whose rules demand classes or more than
/// [`GENERATED_PASSWORD_CHARS`] characters may refuse it.
pub fn generate_password(env: &crate::Env) -> crate::Result<String> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes: [u8; GENERATED_PASSWORD_CHARS] = env.random_bytes()?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET.get(usize::from(b & 63)).copied().unwrap_or(b'_')))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generated passwords are 24 characters of the alphabet, differ from
    /// one another, and pass the default rules.
    #[test]
    fn generated_passwords_are_random_and_pass_the_default_rules() {
        let env = crate::Env::system();
        let a = generate_password(&env).unwrap();
        let b = generate_password(&env).unwrap();
        assert_eq!(a.chars().count(), GENERATED_PASSWORD_CHARS);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(a, b);
        assert!(PasswordRules::default().check(&a, &[]).is_ok());
    }
}
