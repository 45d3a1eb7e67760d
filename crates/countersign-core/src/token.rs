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
        if body.len() != TOKEN_CHARS
            || !body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(err());
        }
        // Canonical encoding only: decoding and re-encoding gives it back.
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| err())?;
        if bytes.len() != TOKEN_BYTES {
            return Err(err());
        }
        Ok(hash_of(presented))
    }
}

fn hash_of(text: &str) -> TokenHash {
    TokenHash(Sha256::digest(text.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

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
