//! The email-code factor: numeric codes sent to a confirmed address, kept as
//! SHA-256 with an expiry and a guess budget. At login the pending code
//! lives in the flow; during enrolment, in the credential.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Check, hashes_match, numeric_code, sha256_hex};
use crate::audit::AuditReason;
use crate::env::Env;
use crate::error::{Error, InvalidInput, Result};
use crate::model::EmailAddress;

/// A tenant's email one-time code settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailOtpSettings {
    /// Code length: 6 to 10 digits.
    pub digits: u8,
    /// How long a code is valid, in seconds (60 to 3600).
    pub ttl_secs: u32,
    /// Wrong guesses one code tolerates before it is void (1 to 10).
    pub max_attempts: u32,
}

impl Default for EmailOtpSettings {
    /// 6 digits, valid 10 minutes, 5 guesses.
    fn default() -> Self {
        Self {
            digits: 6,
            ttl_secs: 600,
            max_attempts: 5,
        }
    }
}

impl EmailOtpSettings {
    /// Check the settings' bounds.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let err = |r: &str| Err(InvalidInput::new("email otp settings", r));
        if !(6..=10).contains(&self.digits) {
            return err("digits must be 6 to 10");
        }
        if !(60..=3600).contains(&self.ttl_secs) {
            return err("ttl must be 60 to 3600 seconds");
        }
        if !(1..=10).contains(&self.max_attempts) {
            return err("max attempts must be 1 to 10");
        }
        Ok(())
    }
}

/// A code sent by email and not yet used: its hash, expiry and guesses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCode {
    /// Hex SHA-256 of the code.
    pub hash: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Wrong guesses so far.
    pub attempts: u32,
}

/// A user's email one-time code enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailOtpCredential {
    /// Where codes go.
    pub address: EmailAddress,
    /// Whether the address was proven with a code.
    pub confirmed: bool,
    /// The confirmation code in flight, during enrolment.
    pub pending: Option<PendingCode>,
    /// When it was enrolled.
    pub created_at: DateTime<Utc>,
}

impl PendingCode {
    /// A fresh code for `settings`, valid from `now`: the code to send, and
    /// what is kept of it.
    pub(crate) fn issue(
        env: &Env,
        settings: &EmailOtpSettings,
        now: DateTime<Utc>,
    ) -> Result<(String, Self)> {
        let code = numeric_code(env, settings.digits)?;
        let pending = Self {
            hash: sha256_hex(code.as_bytes()),
            expires_at: now + chrono::Duration::seconds(i64::from(settings.ttl_secs)),
            attempts: 0,
        };
        Ok((code, pending))
    }

    fn matches(&self, code: &str) -> bool {
        hashes_match(&self.hash, &sha256_hex(code.as_bytes()))
    }
}

/// Check a code against the one a login flow holds: expiry, guesses, single
/// use. An expired code, or one out of guesses, is dropped from the flow.
pub(crate) fn check_flow_code(
    pending: &mut Option<PendingCode>,
    user_known: bool,
    code: &str,
    now: DateTime<Utc>,
    max_attempts: u32,
) -> Check {
    let Some(held) = pending.as_mut() else {
        return Check::Failed(AuditReason::NoCode);
    };
    if now >= held.expires_at {
        *pending = None;
        return Check::Failed(AuditReason::ExpiredCode);
    }
    if held.matches(code) && user_known {
        return Check::Passed;
    }
    held.attempts = held.attempts.saturating_add(1);
    if held.attempts >= max_attempts {
        *pending = None;
    }
    Check::Failed(AuditReason::WrongCode)
}

/// Check the confirmation code of an enrolment. A right, live code confirms
/// the address and spends the code (`true`); a wrong one costs a guess, and
/// the code is dropped once expired or out of guesses (`false`). Either way
/// the caller saves `cred`.
pub(crate) fn confirm_code(
    cred: &mut EmailOtpCredential,
    code: &str,
    now: DateTime<Utc>,
    max_attempts: u32,
) -> Result<bool> {
    let Some(mut pending) = cred.pending.take() else {
        return Err(Error::ChallengeMissing);
    };
    let live = now < pending.expires_at;
    if pending.matches(code) && live {
        cred.confirmed = true;
        return Ok(true);
    }
    pending.attempts = pending.attempts.saturating_add(1);
    if live && pending.attempts < max_attempts {
        cred.pending = Some(pending);
    }
    Ok(false)
}
