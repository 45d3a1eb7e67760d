//! What the one-time-code factors share: codes kept only as hashes (a
//! keyed HMAC for short codes, SHA-256 for high-entropy ones), compared in
//! constant time, and checked for shape before any lookup.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::env::Env;
use crate::error::{InvalidInput, Result};

/// Bytes of a [`CodeKey`].
pub const CODE_KEY_BYTES: usize = 32;

/// The server secret that keys the hashes of short codes (emailed
/// one-time codes) and the decoys shown for unknown accounts. It lives
/// outside the database: a stored hash of a six-digit code is then not the
/// code (without the key, the million candidates cannot be tried offline).
///
/// Supply one with [`AuthnService::with_code_key`], the same on every node
/// and across restarts. Without one, the service draws a random key per
/// process: codes pending at a restart then stop working (a new one must be
/// sent), and decoys change across restarts.
///
/// `Debug` shows no key material.
///
/// [`AuthnService::with_code_key`]: crate::AuthnService::with_code_key
#[derive(Clone)]
pub struct CodeKey([u8; CODE_KEY_BYTES]);

impl CodeKey {
    /// A key from 32 bytes of secret material (from a secret store, never
    /// from the database).
    pub fn new(key: [u8; CODE_KEY_BYTES]) -> Self {
        Self(key)
    }

    /// A key from `bytes`, which must be exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, InvalidInput> {
        <[u8; CODE_KEY_BYTES]>::try_from(bytes)
            .map(Self)
            .map_err(|_| InvalidInput::new("code key", "must be exactly 32 bytes"))
    }

    /// A fresh random key from `env`: what the service uses when none is
    /// supplied.
    pub fn random(env: &Env) -> Result<Self> {
        Ok(Self(env.random_bytes()?))
    }

    /// HMAC-SHA256 under this key of `parts`, each length-prefixed after
    /// the domain `label` (so distinct uses and part boundaries never
    /// collide).
    pub(crate) fn tag(&self, label: &str, parts: &[&[u8]]) -> [u8; 32] {
        // HMAC takes keys of any length: this cannot fail.
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.0) else {
            return [0; 32];
        };
        for part in std::iter::once(label.as_bytes()).chain(parts.iter().copied()) {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// Hex HMAC-SHA256 of a verification code, bound to its tenant, user
    /// and purpose (a code sent for one cannot be spent on another).
    pub(crate) fn verification_hash(
        &self,
        purpose: &str,
        tenant: &[u8],
        user: &[u8],
        code: &str,
    ) -> String {
        hex(&self.tag(
            "countersign/verification/v1",
            &[purpose.as_bytes(), tenant, user, code.as_bytes()],
        ))
    }

    /// Hex HMAC-SHA256 of a short code: how emailed codes are kept at rest.
    pub(crate) fn code_hash(&self, code: &str) -> String {
        hex(&self.tag("countersign/email-code/v1", &[code.as_bytes()]))
    }
}

impl fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeKey(<redacted>)")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex SHA-256 of a secret: how codes and tokens are kept at rest.
pub fn sha256_hex(secret: &[u8]) -> String {
    hex(&Sha256::digest(secret))
}

/// Constant-time equality of two hex hashes.
pub fn hashes_match(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Check that `code` is exactly `digits` ASCII digits: a malformed code is
/// bad input, not a wrong guess.
pub fn check_digits(code: &str, digits: u8, field: &'static str) -> Result<(), InvalidInput> {
    if code.len() == usize::from(digits) && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(InvalidInput::new(
            field,
            format!("must be exactly {digits} digits"),
        ))
    }
}

/// A random numeric code of `digits` digits, uniformly distributed.
pub fn numeric_code(env: &Env, digits: u8) -> Result<String> {
    let mut out = String::with_capacity(usize::from(digits));
    while out.len() < usize::from(digits) {
        let [b]: [u8; 1] = env.random_bytes()?;
        // Rejection sampling: 250 = 25 * 10, so b < 250 gives a uniform digit.
        if b < 250 {
            out.push(char::from(b'0' + b % 10));
        }
    }
    Ok(out)
}
