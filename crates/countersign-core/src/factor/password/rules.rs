use std::fmt;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::error::InvalidInput;

/// The largest `max_length` a tenant may configure, in characters.
pub const MAX_PASSWORD_CHARS: u32 = 1024;
/// The longest password history a tenant may keep.
pub const MAX_HISTORY: u32 = 24;

/// Rules a new password must meet, per tenant.
///
/// Defaults follow NIST SP 800-63B: at least 8 characters, at most 128 (a
/// tenant may not set the maximum below 64), any Unicode (normalised with
/// NFKC before counting and hashing), no composition rules, and rejection
/// of common and easily guessed passwords. Composition rules exist for
/// tenants whose compliance regime still asks for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PasswordRules {
    /// Fewest characters (Unicode scalar values after NFKC).
    pub min_length: u32,
    /// Most characters; at least 64, at most [`MAX_PASSWORD_CHARS`].
    pub max_length: u32,
    /// Require a lowercase letter.
    pub require_lowercase: bool,
    /// Require an uppercase letter.
    pub require_uppercase: bool,
    /// Require a digit.
    pub require_digit: bool,
    /// Require a character that is neither letter nor digit.
    pub require_symbol: bool,
    /// The lowest zxcvbn score (0 to 4) accepted. zxcvbn's bundled lists
    /// (common passwords, names, words, keyboard patterns) back this check:
    /// at 1 and above, listed common passwords and their obvious variants
    /// are refused. 0 turns the check off.
    pub min_strength: u8,
    /// How many previous passwords a new one may not repeat (0 to 24).
    pub history: u32,
}

impl Default for PasswordRules {
    fn default() -> Self {
        Self {
            min_length: 8,
            max_length: 128,
            require_lowercase: false,
            require_uppercase: false,
            require_digit: false,
            require_symbol: false,
            min_strength: 2,
            history: 5,
        }
    }
}

/// Why a new password was refused. Carries no part of the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PasswordViolation {
    /// Shorter than the minimum.
    TooShort {
        /// The minimum.
        min: u32,
    },
    /// Longer than the maximum.
    TooLong {
        /// The maximum.
        max: u32,
    },
    /// Missing a lowercase letter.
    MissingLowercase,
    /// Missing an uppercase letter.
    MissingUppercase,
    /// Missing a digit.
    MissingDigit,
    /// Missing a symbol.
    MissingSymbol,
    /// Common, or too easy to guess.
    TooWeak {
        /// Its zxcvbn score.
        score: u8,
        /// The lowest accepted.
        min: u8,
    },
    /// Contains a control character.
    ControlCharacter,
    /// Repeats one of the last passwords.
    Reused,
}

impl fmt::Display for PasswordViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordViolation::TooShort { min } => write!(f, "shorter than {min} characters"),
            PasswordViolation::TooLong { max } => write!(f, "longer than {max} characters"),
            PasswordViolation::MissingLowercase => f.write_str("needs a lowercase letter"),
            PasswordViolation::MissingUppercase => f.write_str("needs an uppercase letter"),
            PasswordViolation::MissingDigit => f.write_str("needs a digit"),
            PasswordViolation::MissingSymbol => f.write_str("needs a symbol"),
            PasswordViolation::TooWeak { .. } => f.write_str("too common or easy to guess"),
            PasswordViolation::ControlCharacter => f.write_str("contains a control character"),
            PasswordViolation::Reused => f.write_str("repeats a recent password"),
        }
    }
}

/// NFKC-normalise a password, refusing input too large to be a password
/// before doing any work on it. Login and registration both hash the
/// normalised form, so a password typed on another keyboard still matches.
pub fn normalize_password(password: &str) -> Result<String, InvalidInput> {
    // 4 bytes per character is the most UTF-8 needs; anything larger than
    // the largest configurable maximum cannot be a password.
    if password.len() > (MAX_PASSWORD_CHARS as usize) * 4 {
        return Err(InvalidInput::new("password", "too long"));
    }
    if password.is_empty() {
        return Err(InvalidInput::new("password", "must not be empty"));
    }
    Ok(password.nfkc().collect())
}

impl PasswordRules {
    /// Check the rules' own bounds.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let err = |r: &str| Err(InvalidInput::new("password rules", r));
        if self.max_length < 64 || self.max_length > MAX_PASSWORD_CHARS {
            return err("max length must be between 64 and 1024");
        }
        if self.min_length == 0 || self.min_length > self.max_length {
            return err("min length must be between 1 and max length");
        }
        if self.min_strength > 4 {
            return err("min strength is a zxcvbn score, 0 to 4");
        }
        if self.history > MAX_HISTORY {
            return err("history may keep at most 24 passwords");
        }
        Ok(())
    }

    /// Check a new, already normalised password against these rules.
    /// `context` holds words the password must not lean on (identifier,
    /// email, names, tenant): zxcvbn scores them as guessable.
    pub fn check(&self, password: &str, context: &[&str]) -> Result<(), PasswordViolation> {
        if password.chars().any(char::is_control) {
            return Err(PasswordViolation::ControlCharacter);
        }
        let len = password.chars().count();
        if len < self.min_length as usize {
            return Err(PasswordViolation::TooShort {
                min: self.min_length,
            });
        }
        if len > self.max_length as usize {
            return Err(PasswordViolation::TooLong {
                max: self.max_length,
            });
        }
        if self.require_lowercase && !password.chars().any(char::is_lowercase) {
            return Err(PasswordViolation::MissingLowercase);
        }
        if self.require_uppercase && !password.chars().any(char::is_uppercase) {
            return Err(PasswordViolation::MissingUppercase);
        }
        if self.require_digit && !password.chars().any(|c| c.is_numeric()) {
            return Err(PasswordViolation::MissingDigit);
        }
        if self.require_symbol && !password.chars().any(|c| !c.is_alphanumeric()) {
            return Err(PasswordViolation::MissingSymbol);
        }
        if self.min_strength > 0 {
            let score = u8::from(zxcvbn::zxcvbn(password, context).score());
            if score < self.min_strength {
                return Err(PasswordViolation::TooWeak {
                    score,
                    min: self.min_strength,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_nist() {
        let r = PasswordRules::default();
        r.validate().unwrap();
        assert_eq!(
            r.check("short", &[]),
            Err(PasswordViolation::TooShort { min: 8 })
        );
        assert!(matches!(
            r.check("password123", &[]),
            Err(PasswordViolation::TooWeak { .. })
        ));
        assert!(matches!(
            r.check("qwertyuiop", &[]),
            Err(PasswordViolation::TooWeak { .. })
        ));
        // No composition rules by default: a long passphrase of lowercase words passes.
        assert_eq!(r.check("correct horse battery staple", &[]), Ok(()));
        // Any Unicode is allowed and counted by character.
        assert_eq!(r.check("ключ-от-сарая-номер-девять", &[]), Ok(()));
        assert_eq!(
            r.check(&"x".repeat(129), &[]),
            Err(PasswordViolation::TooLong { max: 128 })
        );
        assert_eq!(
            r.check("abc\u{0}defghijk", &[]),
            Err(PasswordViolation::ControlCharacter)
        );
    }

    #[test]
    fn context_words_weaken_a_password() {
        let r = PasswordRules::default();
        assert!(r.check("margaretthatcher1", &["margaretthatcher"]).is_err());
    }

    #[test]
    fn composition_rules_when_asked() {
        let r = PasswordRules {
            require_uppercase: true,
            require_digit: true,
            require_symbol: true,
            min_strength: 0,
            ..PasswordRules::default()
        };
        assert_eq!(
            r.check("alllowercase", &[]),
            Err(PasswordViolation::MissingUppercase)
        );
        assert_eq!(
            r.check("Alllowercase", &[]),
            Err(PasswordViolation::MissingDigit)
        );
        assert_eq!(
            r.check("Alllowercase1", &[]),
            Err(PasswordViolation::MissingSymbol)
        );
        assert_eq!(r.check("Alllowercase1!", &[]), Ok(()));
    }

    #[test]
    fn bounds_and_oversized_input() {
        let bad = PasswordRules {
            max_length: 63,
            ..PasswordRules::default()
        };
        assert!(bad.validate().is_err());
        assert!(normalize_password(&"a".repeat(1_000_000)).is_err());
        assert!(normalize_password("").is_err());
        assert_eq!(normalize_password("ｐａｓｓ").unwrap(), "pass");
    }
}
