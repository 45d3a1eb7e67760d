//! The email-code factor: numeric codes sent to a confirmed address, kept as
//! a keyed hash (HMAC-SHA256 under the service's [`CodeKey`]) with an
//! expiry and a guess budget, and sent at a bounded rate (per flow, and per
//! address in process). At login the pending code lives in the flow;
//! during enrolment, in the credential.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Check, CodeKey, hashes_match, numeric_code};
use crate::audit::AuditReason;
use crate::env::Env;
use crate::error::{Error, InvalidInput, Result};
use crate::ids::TenantId;
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

/// A code sent by email and not yet used: its keyed hash, expiry and
/// guesses, and how many codes this flow (or enrolment) has been sent.
/// `Debug` leaves the hash out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCode {
    /// Hex HMAC-SHA256 of the code under the service's [`CodeKey`]; empty
    /// once the code is void (expired or out of guesses), when only the
    /// send count is kept.
    pub hash: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Wrong guesses so far.
    pub attempts: u32,
    /// Codes sent so far for this flow, this one included.
    #[serde(default)]
    pub sends: u32,
    /// When this code was sent.
    #[serde(default)]
    pub sent_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for PendingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingCode")
            .field("hash", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("attempts", &self.attempts)
            .field("sends", &self.sends)
            .field("sent_at", &self.sent_at)
            .finish()
    }
}

/// How often codes may be sent: per flow (a count and a minimum interval,
/// kept in the flow) and per address (a count per window, kept in process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SendLimits {
    /// Codes one flow may be sent.
    pub per_flow: u32,
    /// Time between two sends for one flow.
    pub interval: Duration,
}

/// The error of a send refused by the per-flow limits (the same for every
/// flow, known account or not).
fn throttled() -> Error {
    InvalidInput::new(
        "email code",
        "a code was sent for this login too recently or too often: wait, or begin a new login",
    )
    .into()
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
    /// A fresh code for `settings`, valid from `now`, replacing `previous`
    /// (the flow's earlier code, live or void) if the per-flow `limits`
    /// allow another send: the code to send, and what is kept of it.
    pub(crate) fn issue(
        key: &CodeKey,
        env: &Env,
        settings: &EmailOtpSettings,
        now: DateTime<Utc>,
        previous: Option<&PendingCode>,
        limits: SendLimits,
    ) -> Result<(String, Self)> {
        let sends = previous.map_or(0, |p| p.sends);
        if let Some(p) = previous {
            let interval = chrono::Duration::from_std(limits.interval)
                .map_err(|_| Error::internal("email resend interval"))?;
            let too_soon = p
                .sent_at
                .and_then(|at| at.checked_add_signed(interval))
                .is_some_and(|next| now < next);
            if sends >= limits.per_flow || too_soon {
                return Err(throttled());
            }
        }
        let code = numeric_code(env, settings.digits)?;
        let ttl = chrono::Duration::seconds(i64::from(settings.ttl_secs));
        let pending = Self {
            hash: key.code_hash(&code),
            expires_at: now
                .checked_add_signed(ttl)
                .ok_or(Error::internal("email code expiry"))?,
            attempts: 0,
            sends: sends.saturating_add(1),
            sent_at: Some(now),
        };
        Ok((code, pending))
    }

    /// Whether the code can still be guessed (not expired or spent by
    /// guesses: then only the send count is kept).
    pub fn is_live(&self) -> bool {
        !self.hash.is_empty()
    }

    fn void(&mut self) {
        self.hash.clear();
    }

    fn matches(&self, key: &CodeKey, code: &str) -> bool {
        self.is_live() && hashes_match(&self.hash, &key.code_hash(code))
    }
}

/// A tenant and a lowercased address.
type AddressKey = (TenantId, String);

/// Sends per address in a sliding window, counted in this process: a
/// shared limiter (a store) comes with the HTTP layer. Several nodes each
/// allow the budget; a restart forgets it.
#[derive(Debug, Default)]
pub(crate) struct AddressLimiter {
    sent: Mutex<HashMap<AddressKey, Vec<DateTime<Utc>>>>,
}

/// The most addresses the limiter tracks; past it, expired entries are
/// dropped, and if that is not enough, sends are refused (fail closed).
const MAX_TRACKED_ADDRESSES: usize = 100_000;

impl AddressLimiter {
    /// Count a send to `to` at `now` if fewer than `max` went there within
    /// `window`; returns whether it may go.
    pub(crate) fn allow(
        &self,
        tenant: TenantId,
        to: &EmailAddress,
        now: DateTime<Utc>,
        max: u32,
        window: Duration,
    ) -> bool {
        let Ok(window) = chrono::Duration::from_std(window) else {
            return false;
        };
        let since = now.checked_sub_signed(window).unwrap_or(now);
        let mut sent = match self.sent.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if sent.len() >= MAX_TRACKED_ADDRESSES {
            sent.retain(|_, times| times.iter().any(|t| *t > since));
            if sent.len() >= MAX_TRACKED_ADDRESSES {
                return false;
            }
        }
        let times = sent
            .entry((tenant, to.as_str().to_ascii_lowercase()))
            .or_default();
        times.retain(|t| *t > since);
        if times.len() >= usize::try_from(max).unwrap_or(usize::MAX) {
            return false;
        }
        times.push(now);
        true
    }
}

/// Check a code against the one a login flow holds: expiry, guesses, single
/// use. An expired code, or one out of guesses, is voided (its send count
/// stays, so the resend limits still hold).
pub(crate) fn check_flow_code(
    key: &CodeKey,
    pending: &mut Option<PendingCode>,
    user_known: bool,
    code: &str,
    now: DateTime<Utc>,
    max_attempts: u32,
) -> Check {
    let Some(held) = pending.as_mut().filter(|p| p.is_live()) else {
        return Check::Failed(AuditReason::NoCode);
    };
    if now >= held.expires_at {
        held.void();
        return Check::Failed(AuditReason::ExpiredCode);
    }
    if held.matches(key, code) && user_known {
        return Check::Passed;
    }
    held.attempts = held.attempts.saturating_add(1);
    if held.attempts >= max_attempts {
        held.void();
    }
    Check::Failed(AuditReason::WrongCode)
}

/// Check the confirmation code of an enrolment. A right, live code confirms
/// the address and spends the code (`true`); a wrong one costs a guess, and
/// the code is dropped once expired or out of guesses (`false`). Either way
/// the caller saves `cred`.
pub(crate) fn confirm_code(
    key: &CodeKey,
    cred: &mut EmailOtpCredential,
    code: &str,
    now: DateTime<Utc>,
    max_attempts: u32,
) -> Result<bool> {
    let Some(mut pending) = cred.pending.take().filter(|p| p.is_live()) else {
        return Err(Error::ChallengeMissing);
    };
    let live = now < pending.expires_at;
    if pending.matches(key, code) && live {
        cred.confirmed = true;
        return Ok(true);
    }
    pending.attempts = pending.attempts.saturating_add(1);
    if live && pending.attempts < max_attempts {
        cred.pending = Some(pending);
    }
    Ok(false)
}
