//! Secrets sealed at rest: an AEAD (AES-256-GCM) under a key the database
//! does not hold. A store dump alone then yields no usable TOTP secret or
//! signing key.
//!
//! The embedding application supplies the key ([`SealingKey`]); each sealed
//! value names the key that sealed it, so keys rotate: a [`Sealer`] seals
//! with its current key and opens with any key it still lists. Each value
//! is bound to where it belongs (associated data: tenant, user, what it
//! is), so a sealed value copied into another row does not open there.
//!
//! What is sealed: TOTP secrets (bound to tenant, user and `totp`) and the
//! private halves of JWT signing keys (bound to tenant, `kid` and
//! `signing-key`). A service is given a [`Sealer`] with `with_sealer`
//! (`AuthnService` and `SessionService` alike, the same sealer for both).
//!
//! **Without a sealer, secrets are stored in the clear**, as before this
//! module existed: whoever reads the database (a dump, a backup, a replica,
//! an SQL injection) can then mint TOTP codes and access tokens. That is a
//! deployment choice, not a default to keep in production.
//!
//! Reading is fail-closed: a sealed value read by a service with no sealer,
//! with a sealer that does not list its key, or in another row is an
//! [`Error::Internal`] whose source is a typed [`SealError`] (see
//! [`SealError::of`]), never a wrong secret. Values in the clear (written
//! without a sealer, or before sealing existed) still load, whatever the
//! sealer, and a TOTP secret is sealed (again, under the current key) on
//! its next write: each successful use. Signing keys are never rewritten:
//! [rotate](crate::SessionService::rotate_signing_key) them to get a key
//! sealed under the current sealing key.
//!
//! Rotating the sealing key: make the new key current and list the old one
//! with [`Sealer::with_previous`]; rotate every tenant's signing key; once
//! the old signing keys have expired (and every TOTP credential was used,
//! or re-enrolled), the old sealing key can go.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::env::Env;
use crate::error::{Error, InvalidInput, Result};
use crate::ids::{TenantId, UserId};

const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;
const VERSION: &str = "s1";

/// A 256-bit sealing key and its id. `Debug` shows the id only.
#[derive(Clone)]
pub struct SealingKey {
    id: String,
    cipher: Aes256Gcm,
}

impl SealingKey {
    /// A key with id `id` (1 to 32 characters of `[A-Za-z0-9_-]`, stored
    /// beside every value it seals) and 32 bytes of key material.
    pub fn new(id: &str, key: &[u8]) -> Result<Self, InvalidInput> {
        let id_ok = !id.is_empty()
            && id.len() <= 32
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !id_ok {
            return Err(InvalidInput::new(
                "sealing key id",
                "1 to 32 characters of A-Z, a-z, 0-9, `_` or `-`",
            ));
        }
        if key.len() != KEY_LEN {
            return Err(InvalidInput::new("sealing key", "must be 32 bytes"));
        }
        let cipher = Aes256Gcm::new_from_slice(key)
            .map_err(|_| InvalidInput::new("sealing key", "must be 32 bytes"))?;
        Ok(Self {
            id: id.to_owned(),
            cipher,
        })
    }

    /// A key from its base64url (no padding) text form, as configuration
    /// carries it.
    pub fn from_base64(id: &str, key: &str) -> Result<Self, InvalidInput> {
        let bytes = URL_SAFE_NO_PAD
            .decode(key.trim())
            .map_err(|_| InvalidInput::new("sealing key", "not base64url"))?;
        Self::new(id, &bytes)
    }

    /// A fresh random key from `env` (for tests, and for generating one to
    /// put in configuration).
    pub fn generate(id: &str, env: &Env) -> Result<Self> {
        let key: [u8; KEY_LEN] = env.random_bytes()?;
        Ok(Self::new(id, &key)?)
    }

    /// The key's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A sealed secret as stored: `s1.<key id>.<base64url(nonce ‖ ciphertext)>`.
/// `Debug` shows the key id only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Sealed {
    key_id: String,
    body: Vec<u8>,
}

impl Sealed {
    /// The id of the key that sealed it.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl From<Sealed> for String {
    fn from(s: Sealed) -> String {
        format!("{VERSION}.{}.{}", s.key_id, URL_SAFE_NO_PAD.encode(&s.body))
    }
}

impl TryFrom<String> for Sealed {
    type Error = InvalidInput;

    fn try_from(s: String) -> Result<Self, InvalidInput> {
        let bad = || InvalidInput::new("sealed value", "malformed");
        let mut parts = s.splitn(3, '.');
        let (Some(VERSION), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| bad())?;
        if key_id.is_empty() || body.len() < NONCE_LEN + 16 {
            return Err(bad());
        }
        Ok(Self {
            key_id: key_id.to_owned(),
            body,
        })
    }
}

/// Why a stored secret could not be used. Carried as the source of an
/// [`Error::Internal`] (a deployment or data fault, not caller input);
/// find it with [`SealError::of`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The secret is sealed and this service has no sealer (or it was not
    /// opened before use).
    #[error("a sealed secret, and no sealer to open it")]
    NoSealer,
    /// The secret was sealed under a key the sealer does not list.
    #[error("sealed under key `{0}`, which the sealer does not list")]
    UnknownKey(String),
    /// The key is listed but the value does not open: tampered, copied
    /// from another row, or another key under the same id.
    #[error("a sealed value does not open (tampered, another row's, or another key with its id)")]
    DoesNotOpen,
    /// The stored form is neither a secret in the clear nor a sealed value.
    #[error("a stored secret is malformed")]
    Malformed,
}

impl SealError {
    /// The sealing failure behind `err`, if it is one.
    pub fn of(err: &Error) -> Option<&SealError> {
        match err {
            Error::Internal {
                source: Some(source),
                ..
            } => source.downcast_ref::<SealError>(),
            _ => None,
        }
    }
}

impl From<SealError> for Error {
    fn from(e: SealError) -> Self {
        let what = match e {
            SealError::NoSealer => "a sealed secret and no sealer",
            SealError::UnknownKey(_) => "a secret sealed under an unknown key",
            SealError::DoesNotOpen => "a sealed secret does not open",
            SealError::Malformed => "a malformed stored secret",
        };
        Error::internal_from(what, e)
    }
}

/// A secret as a store holds it: in the clear (written without a sealer,
/// or before sealing existed) or sealed. Serialised untagged: a byte array
/// in the clear (the form secrets always had), a `s1.…` string sealed, so
/// stored values of either kind load. `Debug` shows neither.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StoredSecret {
    /// In the clear: readable by whoever reads the store.
    Plain(Vec<u8>),
    /// Sealed under a [`Sealer`]'s key.
    Sealed(Sealed),
}

impl StoredSecret {
    /// `secret` sealed by `sealer` for `context`, or in the clear when
    /// there is no sealer (see the [module docs](self)).
    pub fn seal(sealer: Option<&Sealer>, env: &Env, secret: &[u8], context: &[u8]) -> Result<Self> {
        Ok(match sealer {
            Some(sealer) => Self::Sealed(sealer.seal(env, secret, context)?),
            None => Self::Plain(secret.to_vec()),
        })
    }

    /// The secret in the clear: as stored if it is not sealed, else opened
    /// by `sealer` for `context`. Fails closed ([`SealError`]).
    pub fn open(&self, sealer: Option<&Sealer>, context: &[u8]) -> Result<Vec<u8>> {
        match (self, sealer) {
            (Self::Plain(secret), _) => Ok(secret.clone()),
            (Self::Sealed(sealed), Some(sealer)) => sealer.open(sealed, context),
            (Self::Sealed(_), None) => Err(SealError::NoSealer.into()),
        }
    }

    /// Whether it is sealed.
    pub fn is_sealed(&self) -> bool {
        matches!(self, Self::Sealed(_))
    }

    /// The id of the key that sealed it, if it is sealed.
    pub fn key_id(&self) -> Option<&str> {
        match self {
            Self::Plain(_) => None,
            Self::Sealed(s) => Some(s.key_id()),
        }
    }
}

impl From<Vec<u8>> for StoredSecret {
    fn from(secret: Vec<u8>) -> Self {
        Self::Plain(secret)
    }
}

impl fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain(_) => f.write_str("Plain(<redacted>)"),
            Self::Sealed(s) => s.fmt(f),
        }
    }
}

/// The context (associated data) a TOTP secret is sealed for: its tenant,
/// its user, `totp`.
pub fn totp_context(tenant: TenantId, user: UserId) -> Vec<u8> {
    format!("countersign/totp/{tenant}/{user}").into_bytes()
}

/// The context (associated data) a signing key's private half is sealed
/// for: its tenant, its `kid`, `signing-key`.
pub fn signing_key_context(tenant: TenantId, kid: &str) -> Vec<u8> {
    format!("countersign/signing-key/{tenant}/{kid}").into_bytes()
}

/// Seals with one current key; opens with it and any earlier key still
/// listed, so stored values survive a key rotation until re-sealed.
#[derive(Clone, Debug)]
pub struct Sealer {
    current: SealingKey,
    previous: Vec<SealingKey>,
}

impl Sealer {
    /// A sealer whose current key is `key`.
    pub fn new(key: SealingKey) -> Self {
        Self {
            current: key,
            previous: Vec::new(),
        }
    }

    /// Also open values sealed by `key` (an earlier, rotated-out key).
    pub fn with_previous(mut self, key: SealingKey) -> Self {
        self.previous.push(key);
        self
    }

    /// The id of the key new values are sealed with.
    pub fn current_key_id(&self) -> &str {
        self.current.id()
    }

    /// Seal `secret`, bound to `context` (where it belongs: a value sealed
    /// for one context does not open in another). A fresh random nonce
    /// from `env` per value.
    pub fn seal(&self, env: &Env, secret: &[u8], context: &[u8]) -> Result<Sealed> {
        let nonce: [u8; NONCE_LEN] = env.random_bytes()?;
        let ciphertext = self
            .current
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: secret,
                    aad: context,
                },
            )
            .map_err(|_| Error::internal("sealing a secret"))?;
        let mut body = nonce.to_vec();
        body.extend_from_slice(&ciphertext);
        Ok(Sealed {
            key_id: self.current.id.clone(),
            body,
        })
    }

    /// Open a value sealed for `context`. Fails closed: an unknown key id,
    /// a tampered value or another context is an error, never a wrong
    /// secret.
    pub fn open(&self, sealed: &Sealed, context: &[u8]) -> Result<Vec<u8>> {
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == sealed.key_id)
            .ok_or_else(|| SealError::UnknownKey(sealed.key_id.clone()))?;
        let (nonce, ciphertext) = sealed
            .body
            .split_at_checked(NONCE_LEN)
            .ok_or(SealError::Malformed)?;
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::Malformed)?;
        let opened = key.cipher.decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: ciphertext,
                aad: context,
            },
        );
        Ok(opened.map_err(|_| SealError::DoesNotOpen)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(id: &str, seed: u64) -> (Sealer, Env) {
        let (env, _) = Env::manual(seed);
        (Sealer::new(SealingKey::generate(id, &env).unwrap()), env)
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_context() {
        let (s, env) = sealer("k1", 1);
        let sealed = s.seal(&env, b"totp secret", b"t1/u1/totp").unwrap();
        let text: String = sealed.clone().into();
        assert!(text.starts_with("s1.k1."), "{text}");
        assert!(!text.contains("totp secret"));
        let back = Sealed::try_from(text).unwrap();
        assert_eq!(s.open(&back, b"t1/u1/totp").unwrap(), b"totp secret");
        // Another row's context, another key, a flipped bit: all refused.
        assert!(s.open(&back, b"t1/u2/totp").is_err());
        let (other, _) = sealer("k1", 2);
        assert!(other.open(&back, b"t1/u1/totp").is_err());
        let mut tampered = back.clone();
        if let Some(b) = tampered.body.last_mut() {
            *b ^= 1;
        }
        assert!(s.open(&tampered, b"t1/u1/totp").is_err());
        // Two seals of one secret differ (fresh nonces).
        assert_ne!(
            s.seal(&env, b"x", b"c").unwrap(),
            s.seal(&env, b"x", b"c").unwrap()
        );
        assert!(!format!("{sealed:?} {s:?}").contains("totp"));
    }

    #[test]
    fn rotated_keys_still_open_what_they_sealed() {
        let (old, env) = sealer("old", 3);
        let sealed = old.seal(&env, b"key material", b"ctx").unwrap();
        let new = Sealer::new(SealingKey::generate("new", &env).unwrap());
        assert!(new.open(&sealed, b"ctx").is_err());
        let rotated = new.with_previous(old.current.clone());
        assert_eq!(rotated.open(&sealed, b"ctx").unwrap(), b"key material");
        assert_eq!(rotated.seal(&env, b"y", b"c").unwrap().key_id(), "new");
    }

    #[test]
    fn failures_are_typed_and_stored_secrets_round_trip() {
        let (s, env) = sealer("k1", 5);
        let sealed = StoredSecret::seal(Some(&s), &env, b"secret", b"ctx").unwrap();
        let plain = StoredSecret::seal(None, &env, b"secret", b"ctx").unwrap();
        assert_eq!(plain, StoredSecret::Plain(b"secret".to_vec()));
        assert_eq!(sealed.key_id(), Some("k1"));
        let kind = |r: Result<Vec<u8>>| SealError::of(&r.unwrap_err()).cloned();
        assert_eq!(kind(sealed.open(None, b"ctx")), Some(SealError::NoSealer));
        assert_eq!(
            kind(sealed.open(Some(&s), b"other")),
            Some(SealError::DoesNotOpen)
        );
        let (other, _) = sealer("k2", 6);
        assert_eq!(
            kind(sealed.open(Some(&other), b"ctx")),
            Some(SealError::UnknownKey("k1".into()))
        );
        assert_eq!(sealed.open(Some(&s), b"ctx").unwrap(), b"secret");
        assert_eq!(plain.open(Some(&s), b"ctx").unwrap(), b"secret");
        // Clear secrets are byte arrays (as they always were), sealed ones
        // strings; both load.
        let json = serde_json::to_string(&[&plain, &sealed]).unwrap();
        assert!(json.starts_with("[[115,101,99"), "{json}");
        assert!(json.contains("\"s1.k1."), "{json}");
        let back: Vec<StoredSecret> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, [plain.clone(), sealed.clone()]);
        assert!(serde_json::from_str::<StoredSecret>("\"s1.k1\"").is_err());
        assert!(!format!("{plain:?} {sealed:?}").contains("115"));
    }

    #[test]
    fn bad_keys_and_malformed_values_are_typed_errors() {
        assert!(SealingKey::new("", &[0; 32]).is_err());
        assert!(SealingKey::new("a.b", &[0; 32]).is_err());
        assert!(SealingKey::new("k", &[0; 31]).is_err());
        assert!(SealingKey::from_base64("k", "not base64!").is_err());
        for bad in [
            "",
            "s1.k",
            "s2.k.AAAA",
            "s1..AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "s1.k.!!",
        ] {
            assert!(Sealed::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }
}
