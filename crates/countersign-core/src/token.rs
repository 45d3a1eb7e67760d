//! Opaque bearer tokens: 256 random bits, base64url, with a short type
//! prefix. Only their SHA-256 is ever stored.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::env::Env;
use crate::error::{InvalidInput, Result};

/// Random bytes in a token.
pub const TOKEN_BYTES: usize = 32;
/// Base64url characters for [`TOKEN_BYTES`] bytes, unpadded.
const TOKEN_CHARS: usize = 43;

/// The SHA-256 of a token: the only form a store ever sees.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// The hash as lowercase hex (64 characters), for storage.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Read a stored hex hash.
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            let pair = s.get(2 * i..2 * i + 2)?;
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Self(out))
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// From raw bytes (as stored by a backend).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A hash is not the secret, but keep logs short and unlinkable.
        write!(f, "TokenHash({}…)", self.to_hex().get(..8).unwrap_or(""))
    }
}

impl Serialize for TokenHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for TokenHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::from_hex(&s).ok_or_else(|| serde::de::Error::custom("bad token hash"))
    }
}

/// A freshly issued token: the secret to hand to the client, once.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(String);

impl SecretToken {
    /// The token text (`<prefix>_<base64url>`), to give to the client.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken(<redacted>)")
    }
}

/// A kind of token, named by its prefix (`csf` for login flows, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenKind {
    prefix: &'static str,
    field: &'static str,
}

impl TokenKind {
    /// Login flow handles.
    pub const FLOW: TokenKind = TokenKind {
        prefix: "csf",
        field: "flow id",
    };

    /// A token kind with `prefix` (lowercase letters), reported as `field`
    /// in errors.
    pub const fn new(prefix: &'static str, field: &'static str) -> Self {
        Self { prefix, field }
    }

    /// A new random token of this kind and its hash.
    pub fn issue(&self, env: &Env) -> Result<(SecretToken, TokenHash)> {
        let bytes: [u8; TOKEN_BYTES] = env.random_bytes()?;
        let text = format!("{}_{}", self.prefix, URL_SAFE_NO_PAD.encode(bytes));
        let hash = hash_of(&text);
        Ok((SecretToken(text), hash))
    }

    /// Check a presented token's shape (prefix, length, alphabet) and hash
    /// it. Malformed tokens are refused here, before any store access.
    pub fn parse(&self, presented: &str) -> Result<TokenHash, InvalidInput> {
        let err = || InvalidInput::new(self.field, "malformed");
        let body = presented
            .strip_prefix(self.prefix)
            .and_then(|rest| rest.strip_prefix('_'))
            .ok_or_else(err)?;
        if !is_canonical_body(body.as_bytes()) {
            return Err(err());
        }
        Ok(hash_of(presented))
    }
}

/// Whether `body` is the canonical unpadded base64url encoding of
/// [`TOKEN_BYTES`] bytes: 43 characters of the URL-safe alphabet whose last
/// one carries no stray bits. Checked without decoding (this runs on every
/// request).
fn is_canonical_body(body: &[u8]) -> bool {
    let Some((&last, rest)) = body.split_last() else {
        return false;
    };
    body.len() == TOKEN_CHARS
        && rest.iter().all(|&b| b64_value(b).is_some())
        // 32 bytes = 256 bits = 42 full characters + 4 bits: the last
        // character's low 2 bits must be zero.
        && b64_value(last).is_some_and(|v| v & 0b11 == 0)
}

fn b64_value(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

fn hash_of(text: &str) -> TokenHash {
    TokenHash(Sha256::digest(text.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The fast shape check accepts exactly what decoding accepts.
        #[test]
        fn shape_check_agrees_with_base64(body in "[A-Za-z0-9_=+/-]{41,45}") {
            let decodes = URL_SAFE_NO_PAD.decode(&body).is_ok_and(|b| b.len() == TOKEN_BYTES);
            prop_assert_eq!(is_canonical_body(body.as_bytes()), decodes);
        }

        #[test]
        fn issued_tokens_always_parse(seed in any::<u64>()) {
            let (env, _) = Env::manual(seed);
            let (t, h) = TokenKind::FLOW.issue(&env).unwrap();
            prop_assert_eq!(TokenKind::FLOW.parse(t.expose()).unwrap(), h);
        }
    }

    #[test]
    fn tokens_round_trip_and_malformed_ones_are_refused() {
        let (env, _) = Env::manual(1);
        let (token, hash) = TokenKind::FLOW.issue(&env).unwrap();
        assert!(token.expose().starts_with("csf_"));
        assert_eq!(token.expose().len(), 4 + 43);
        assert_eq!(TokenKind::FLOW.parse(token.expose()).unwrap(), hash);
        assert_eq!(TokenHash::from_hex(&hash.to_hex()), Some(hash));
        assert!(!format!("{token:?}").contains(&token.expose()[4..]));
        let other = TokenKind::new("css", "session token");
        let body = &token.expose()[4..];
        for bad in [
            String::new(),
            body.to_owned(),
            format!("css_{body}"),
            format!("csf_{}", &body[1..]),
            format!("csf_{body}A"),
            format!("csf_{}=", &body[..42]),
            format!("csf_{}", "!".repeat(43)),
            "csf_".to_owned() + &"a".repeat(100_000),
        ] {
            assert!(TokenKind::FLOW.parse(&bad).is_err(), "{bad:.40}");
        }
        assert!(other.parse(token.expose()).is_err());
    }
}
