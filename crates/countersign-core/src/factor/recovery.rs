//! The recovery-code factor: single-use codes shown once, kept as SHA-256
//! hashes, each spent with a compare-and-save.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Check, Verdict, hashes_match, sha256_hex, spend};
use crate::audit::AuditReason;
use crate::env::Env;
use crate::error::{InvalidInput, Result};
use crate::ids::{TenantId, UserId};
use crate::store::FactorStore;

/// A tenant's recovery-code settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryCodeSettings {
    /// Codes per set (1 to 32).
    pub count: u8,
}

impl Default for RecoveryCodeSettings {
    /// Ten codes per set.
    fn default() -> Self {
        Self { count: 10 }
    }
}

impl RecoveryCodeSettings {
    /// Check the settings' bounds.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        if (1..=32).contains(&self.count) {
            Ok(())
        } else {
            Err(InvalidInput::new(
                "recovery code settings",
                "count must be 1 to 32",
            ))
        }
    }
}

/// One recovery code as stored: its SHA-256 hash, and when it was used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryCodeSlot {
    /// Hex SHA-256 of the normalised code.
    pub hash: String,
    /// When it was spent, if it was.
    pub used_at: Option<DateTime<Utc>>,
}

/// A user's set of recovery codes (hashes only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryCodesCredential {
    /// The codes.
    pub codes: Vec<RecoveryCodeSlot>,
    /// When the set was generated.
    pub generated_at: DateTime<Utc>,
}

/// The recovery code alphabet (RFC 4648 base32, lowercase, no padding).
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// Characters in a recovery code (80 bits of entropy).
pub const RECOVERY_CODE_CHARS: usize = 16;

/// A fresh recovery code, shown as `xxxx-xxxx-xxxx-xxxx`.
pub fn new_recovery_code(env: &Env) -> Result<String> {
    let bytes: [u8; RECOVERY_CODE_CHARS] = env.random_bytes()?;
    let mut out = String::with_capacity(RECOVERY_CODE_CHARS + 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        // INVARIANT: `b & 31` < 32 = BASE32.len().
        out.push(char::from(
            BASE32.get(usize::from(b & 31)).copied().unwrap_or(b'a'),
        ));
    }
    Ok(out)
}

/// Normalise a typed recovery code (case, spaces and dashes ignored) and
/// check its shape.
pub fn normalize_recovery_code(code: &str) -> Result<String, InvalidInput> {
    if code.len() > 64 {
        return Err(InvalidInput::new("recovery code", "too long"));
    }
    let clean: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if clean.len() == RECOVERY_CODE_CHARS && clean.bytes().all(|b| BASE32.contains(&b)) {
        Ok(clean)
    } else {
        Err(InvalidInput::new(
            "recovery code",
            "must be 16 base32 characters",
        ))
    }
}

/// A fresh set of `settings.count` codes generated at `now`: the codes to
/// show once, and the credential that keeps only their hashes.
pub(crate) fn new_set(
    env: &Env,
    settings: &RecoveryCodeSettings,
    now: DateTime<Utc>,
) -> Result<(Vec<String>, RecoveryCodesCredential)> {
    let mut codes = Vec::with_capacity(usize::from(settings.count));
    let mut slots = Vec::with_capacity(usize::from(settings.count));
    for _ in 0..settings.count {
        let code = new_recovery_code(env)?;
        let normal = normalize_recovery_code(&code)?;
        slots.push(RecoveryCodeSlot {
            hash: sha256_hex(normal.as_bytes()),
            used_at: None,
        });
        codes.push(code);
    }
    let set = RecoveryCodesCredential {
        codes: slots,
        generated_at: now,
    };
    Ok((codes, set))
}

/// Find an unused code matching the normalised `code` and mark it used with
/// a compare-and-save: each code works once.
pub(crate) async fn spend_code<S: FactorStore>(
    store: &S,
    now: DateTime<Utc>,
    tenant: TenantId,
    user: UserId,
    code: &str,
) -> Result<Check> {
    let hash = sha256_hex(code.as_bytes());
    spend(store, tenant, user, "recovery codes kept changing", |set| {
        let Some(mut set): Option<RecoveryCodesCredential> = set else {
            return Ok(Verdict::Keep(Check::Failed(AuditReason::NoCredential)));
        };
        // Compare against every slot, so timing does not tell which matched.
        let mut hit = None;
        for (i, slot) in set.codes.iter().enumerate() {
            if hashes_match(&slot.hash, &hash) && slot.used_at.is_none() && hit.is_none() {
                hit = Some(i);
            }
        }
        let Some(slot) = hit.and_then(|i| set.codes.get_mut(i)) else {
            return Ok(Verdict::Keep(Check::Failed(AuditReason::WrongCode)));
        };
        slot.used_at = Some(now);
        Ok(Verdict::Save(set, Check::Passed))
    })
    .await
}
