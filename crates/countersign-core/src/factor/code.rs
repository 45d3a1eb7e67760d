//! What the one-time-code factors share: codes kept only as SHA-256,
//! compared in constant time, and checked for shape before any lookup.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::env::Env;
use crate::error::{InvalidInput, Result};

/// Hex SHA-256 of a secret: how codes and tokens are kept at rest.
pub fn sha256_hex(secret: &[u8]) -> String {
    Sha256::digest(secret)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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
