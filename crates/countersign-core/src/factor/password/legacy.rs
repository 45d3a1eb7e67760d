//! Password hashes imported from other systems: [`LegacyHash`].
//!
//! An imported hash is parsed from the syntax its source stores, bounded in
//! the work it may demand, kept in the user's password credential as a
//! PHC-style string (so no store learns a new column), verified in its own
//! algorithm, and replaced by the tenant's argon2id at the first successful
//! login.

use std::fmt;

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::error::{Error, InvalidInput, Result};

/// The highest bcrypt cost an import may carry (2^14 rounds of the key
/// schedule, about a second on a current core).
pub const MAX_BCRYPT_COST: u32 = 14;
/// The fewest PBKDF2 iterations an imported hash may have.
pub const MIN_PBKDF2_ITERATIONS: u32 = 1_000;
/// The most PBKDF2 iterations an imported hash may demand.
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// The highest scrypt `log2(N)` an imported hash may carry.
pub const MAX_SCRYPT_LOG_N: u8 = 20;
/// The most scrypt work (`N · r · p`) an imported hash may demand:
/// 2^21, eight times Better Auth's own (2^14 · 16), at most 256 MiB of
/// memory (scrypt needs `128 · N · r` bytes).
pub const MAX_SCRYPT_COST: u64 = 1 << 21;
/// The most argon2 work (memory in KiB times passes) an imported argon2
/// hash may demand: 2^22, about 100 times OWASP's parameters (19456 KiB,
/// 2 passes).
pub const MAX_ARGON2_KIB_PASSES: u64 = 1 << 22;

/// Shortest derived key accepted: a shorter one would let a wrong password
/// match by chance far too often.
const MIN_OUTPUT: usize = 16;
/// Longest derived key accepted (PBKDF2 and scrypt).
const MAX_OUTPUT: usize = 64;
/// Longest salt accepted, in bytes.
const MAX_SALT: usize = 256;
/// Longest input accepted, in bytes.
const MAX_INPUT: usize = 1024;
/// The parameters of Better Auth's scrypt: N = 2^14, r = 16, p = 1.
const BETTER_AUTH: (u8, u32, u32) = (14, 16, 1);

const FIELD: &str = "password hash";

/// Standard base64, written without padding (as PHC strings are) and read
/// with or without it.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn bad(reason: impl Into<String>) -> InvalidInput {
    InvalidInput::new(FIELD, reason)
}

/// A password hash brought from another system, to import a user with the
/// password they already have ([`AuthnService::import_user`]).
///
/// The user's first successful login verifies the password in this
/// algorithm, then replaces the hash with the tenant's argon2id (audited as
/// `password.rehashed`); from then on the account is like any other.
/// Passwords are verified after countersign's NFKC normalisation, like
/// every password here: a password that NFKC changes (compatibility
/// characters, such as full-width letters or ligatures) and that its source
/// hashed unnormalised does not verify, and its owner resets it.
///
/// Every value is bounded in the work it can demand
/// ([`MAX_BCRYPT_COST`], [`MIN_PBKDF2_ITERATIONS`] to
/// [`MAX_PBKDF2_ITERATIONS`], [`MAX_SCRYPT_LOG_N`] and [`MAX_SCRYPT_COST`],
/// [`MAX_ARGON2_KIB_PASSES`]) and in its sizes (salts of 1 to 256 bytes,
/// derived keys of 16 to 64 bytes), so an import cannot plant a hash that
/// makes each login attempt a denial of service: [`check`](Self::check)
/// refuses anything beyond, and so does the import.
///
/// [`parse`](Self::parse) recognises these syntaxes (leading and trailing
/// whitespace is ignored):
///
/// | source | syntax |
/// | --- | --- |
/// | bcrypt (PHP `password_hash`, Node `bcrypt`, ...) | `$2a$`, `$2b$` or `$2y$`, a two-digit cost (4 to 14), `$`, 53 characters of bcrypt's base64 (modular crypt format, 60 characters in all) |
/// | Better Auth (scrypt) | `<salt>:<key>`, as `@better-auth/utils` writes it: see [`better_auth`](Self::better_auth) |
/// | scrypt, PHC | `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<key>`, salt and key in standard base64 without padding (passlib, RustCrypto) |
/// | Django (PBKDF2-SHA256) | `pbkdf2_sha256$<iterations>$<salt>$<key>`: see [`django`](Self::django) |
/// | PBKDF2, PHC | `$pbkdf2-sha256$i=<iterations>[,l=<key length>]$<salt>$<key>` (RustCrypto), or `$pbkdf2-sha256$<iterations>$<salt>$<key>` with passlib's base64 (`.` for `+`); the same with `sha512` |
/// | argon2, PHC | `$argon2id$`, `$argon2i$` or `$argon2d$` strings, verified as they are |
///
/// Keycloak keeps its credentials as two JSON documents rather than one
/// string: [`keycloak`](Self::keycloak) reads them.
///
/// `Debug` shows the algorithm only.
///
/// [`AuthnService::import_user`]: crate::AuthnService::import_user
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LegacyHash {
    /// bcrypt in modular crypt format (`$2a$`, `$2b$`, `$2y$`). Passwords
    /// longer than 72 bytes are cut at 72, as bcrypt always did.
    Bcrypt(String),
    /// scrypt (RFC 7914).
    Scrypt {
        /// `log2(N)`, the CPU and memory cost.
        log_n: u8,
        /// The block size.
        r: u32,
        /// The parallelism.
        p: u32,
        /// The salt, as the bytes given to scrypt.
        salt: Vec<u8>,
        /// The derived key (its length is the length derived).
        hash: Vec<u8>,
    },
    /// PBKDF2 with HMAC-SHA-256.
    Pbkdf2Sha256 {
        /// The iteration count.
        iterations: u32,
        /// The salt, as the bytes given to PBKDF2.
        salt: Vec<u8>,
        /// The derived key (its length is the length derived).
        hash: Vec<u8>,
    },
    /// PBKDF2 with HMAC-SHA-512 (Keycloak's default from version 24).
    Pbkdf2Sha512 {
        /// The iteration count.
        iterations: u32,
        /// The salt, as the bytes given to PBKDF2.
        salt: Vec<u8>,
        /// The derived key (its length is the length derived).
        hash: Vec<u8>,
    },
    /// An argon2 PHC string (`$argon2id$v=19$m=...`), verified as it is.
    Argon2Phc(String),
}

impl fmt::Debug for LegacyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LegacyHash({}, <redacted>)", self.algorithm())
    }
}

/// Keycloak's `secretData`.
#[derive(Deserialize)]
struct KeycloakSecret {
    value: String,
    salt: String,
}

/// Keycloak's `credentialData`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeycloakCredential {
    hash_iterations: u32,
    algorithm: String,
}

impl LegacyHash {
    /// Parse a hash in any syntax of the table above, recognised by its
    /// prefix (and Better Auth's by its `:`), and [`check`](Self::check)
    /// it. A malformed, unrecognised or over-costly hash is
    /// [`InvalidInput`] (its reason names no part of the hash).
    pub fn parse(input: &str) -> Result<Self, InvalidInput> {
        let s = input.trim();
        if s.len() > MAX_INPUT {
            return Err(bad("too long"));
        }
        let hash = if s.starts_with("$2") {
            LegacyHash::Bcrypt(s.to_owned())
        } else if let Some(rest) = s.strip_prefix("$scrypt$") {
            parse_scrypt_phc(rest)?
        } else if let Some(rest) = s.strip_prefix("$pbkdf2-sha256$") {
            parse_pbkdf2_phc(rest, Prf::Sha256)?
        } else if let Some(rest) = s.strip_prefix("$pbkdf2-sha512$") {
            parse_pbkdf2_phc(rest, Prf::Sha512)?
        } else if s.starts_with("$argon2") {
            LegacyHash::Argon2Phc(s.to_owned())
        } else if s.starts_with("pbkdf2_sha256$") {
            return Self::django(s);
        } else if s.contains(':') && !s.contains('$') {
            return Self::better_auth(s);
        } else {
            return Err(bad(
                "unrecognised format: expected bcrypt, scrypt (PHC or Better Auth), \
                 PBKDF2 (PHC or Django) or argon2 (PHC)",
            ));
        };
        hash.check()?;
        Ok(hash)
    }

    /// Parse a Better Auth hash: `<salt>:<key>`, the key in hex (Better
    /// Auth writes 128 lowercase hex digits: 64 bytes), derived by scrypt
    /// with N = 16384, r = 16, p = 1 from the NFKC-normalised password and
    /// the salt **as text** (its UTF-8 bytes; Better Auth's salts are 32
    /// hex digits, used as they are, not decoded). This is
    /// `hashPassword` in Better Auth's `packages/better-auth/src/crypto/password.ts`
    /// (`salt = hex.encode(random 16 bytes)`, `scryptAsync(password.normalize("NFKC"),
    /// salt, { N: 16384, r: 16, p: 1, dkLen: 64 })`, stored as
    /// `` `${salt}:${hex.encode(key)}` ``).
    pub fn better_auth(input: &str) -> Result<Self, InvalidInput> {
        let s = input.trim();
        if s.len() > MAX_INPUT {
            return Err(bad("too long"));
        }
        let (salt, key) = s
            .split_once(':')
            .ok_or_else(|| bad("a Better Auth hash is `<salt>:<hex key>`"))?;
        let hash = decode_hex(key).ok_or_else(|| bad("the Better Auth key is not hex"))?;
        let (log_n, r, p) = BETTER_AUTH;
        let hash = LegacyHash::Scrypt {
            log_n,
            r,
            p,
            salt: salt.as_bytes().to_vec(),
            hash,
        };
        hash.check()?;
        Ok(hash)
    }

    /// Parse Django's PBKDF2 hash: `pbkdf2_sha256$<iterations>$<salt>$<key>`,
    /// the iterations in decimal, the salt as text (its UTF-8 bytes; Django
    /// never puts `$` in it), the key in standard base64 with padding
    /// (Django's `PBKDF2PasswordHasher`, the default of every Django
    /// release since 1.4).
    pub fn django(input: &str) -> Result<Self, InvalidInput> {
        let s = input.trim();
        if s.len() > MAX_INPUT {
            return Err(bad("too long"));
        }
        let rest = s
            .strip_prefix("pbkdf2_sha256$")
            .ok_or_else(|| bad("a Django hash starts with `pbkdf2_sha256$`"))?;
        let [iterations, salt, key] = split3(rest)
            .ok_or_else(|| bad("a Django hash is `pbkdf2_sha256$<iterations>$<salt>$<hash>`"))?;
        let hash = LegacyHash::Pbkdf2Sha256 {
            iterations: decimal(iterations, "iteration count")?,
            salt: salt.as_bytes().to_vec(),
            hash: B64
                .decode(key)
                .map_err(|_| bad("the Django hash is not base64"))?,
        };
        hash.check()?;
        Ok(hash)
    }

    /// Parse a Keycloak password credential from the two JSON documents a
    /// realm export (or the `credential` table) holds for it:
    /// `secret_data` is `{"value": "<key, base64>", "salt": "<salt,
    /// base64>", ...}` and `credential_data` is `{"hashIterations": <n>,
    /// "algorithm": "pbkdf2-sha256" | "pbkdf2-sha512", ...}`; other fields
    /// are ignored. The key's length is the length derived (Keycloak
    /// derives 64 bytes). Keycloak pads passwords shorter than 14
    /// characters with NULs before hashing, which leaves HMAC's key, and so
    /// the result, unchanged. Other Keycloak algorithms (`pbkdf2` with
    /// SHA-1, `argon2`) are refused.
    pub fn keycloak(secret_data: &str, credential_data: &str) -> Result<Self, InvalidInput> {
        if secret_data.len() > MAX_INPUT || credential_data.len() > MAX_INPUT {
            return Err(bad("too long"));
        }
        // serde's messages can quote the input: say only what was wrong.
        let secret: KeycloakSecret = serde_json::from_str(secret_data)
            .map_err(|_| bad("Keycloak secret data is not `{\"value\", \"salt\"}` JSON"))?;
        let data: KeycloakCredential = serde_json::from_str(credential_data).map_err(|_| {
            bad("Keycloak credential data is not `{\"hashIterations\", \"algorithm\"}` JSON")
        })?;
        let salt = B64
            .decode(secret.salt.trim())
            .map_err(|_| bad("the Keycloak salt is not base64"))?;
        let hash = B64
            .decode(secret.value.trim())
            .map_err(|_| bad("the Keycloak hash is not base64"))?;
        let iterations = data.hash_iterations;
        let hash = match data.algorithm.as_str() {
            "pbkdf2-sha256" => LegacyHash::Pbkdf2Sha256 {
                iterations,
                salt,
                hash,
            },
            "pbkdf2-sha512" => LegacyHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            },
            other => {
                let shown: String = other.chars().take(32).collect();
                return Err(bad(format!(
                    "Keycloak algorithm `{shown}` is not supported (only `pbkdf2-sha256` and `pbkdf2-sha512`)"
                )));
            }
        };
        hash.check()?;
        Ok(hash)
    }

    /// The algorithm's name: `bcrypt`, `scrypt`, `pbkdf2-sha256`,
    /// `pbkdf2-sha512` or `argon2`.
    pub fn algorithm(&self) -> &'static str {
        match self {
            LegacyHash::Bcrypt(_) => "bcrypt",
            LegacyHash::Scrypt { .. } => "scrypt",
            LegacyHash::Pbkdf2Sha256 { .. } => "pbkdf2-sha256",
            LegacyHash::Pbkdf2Sha512 { .. } => "pbkdf2-sha512",
            LegacyHash::Argon2Phc(_) => "argon2",
        }
    }

    /// Check that the hash is well formed and within the bounds on work and
    /// sizes (see the type's docs). [`parse`](Self::parse) and the other
    /// constructors check; this is for values built directly.
    pub fn check(&self) -> Result<(), InvalidInput> {
        match self {
            LegacyHash::Bcrypt(s) => check_bcrypt(s),
            LegacyHash::Scrypt {
                log_n,
                r,
                p,
                salt,
                hash,
            } => {
                check_sizes(salt, hash)?;
                if *log_n == 0 || *log_n > MAX_SCRYPT_LOG_N {
                    return Err(bad(format!(
                        "scrypt log2(N) must be 1 to {MAX_SCRYPT_LOG_N}, not {log_n}"
                    )));
                }
                if *r == 0 || *p == 0 {
                    return Err(bad("scrypt r and p must be at least 1"));
                }
                let work = (1u64 << log_n)
                    .saturating_mul(u64::from(*r))
                    .saturating_mul(u64::from(*p));
                if work > MAX_SCRYPT_COST {
                    return Err(bad(format!(
                        "scrypt N·r·p is {work}, above the allowed {MAX_SCRYPT_COST}"
                    )));
                }
                scrypt::Params::new(*log_n, *r, *p)
                    .map(|_| ())
                    .map_err(|_| bad("scrypt parameters are invalid"))
            }
            LegacyHash::Pbkdf2Sha256 {
                iterations,
                salt,
                hash,
            }
            | LegacyHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => {
                check_sizes(salt, hash)?;
                if !(MIN_PBKDF2_ITERATIONS..=MAX_PBKDF2_ITERATIONS).contains(iterations) {
                    return Err(bad(format!(
                        "PBKDF2 iterations must be {MIN_PBKDF2_ITERATIONS} to \
                         {MAX_PBKDF2_ITERATIONS}, not {iterations}"
                    )));
                }
                Ok(())
            }
            LegacyHash::Argon2Phc(phc) => super::hasher::check_imported_argon2(phc),
        }
    }

    /// The string the password credential stores for this hash: bcrypt's
    /// and argon2's own, `$scrypt$ln=..,r=..,p=..$<salt>$<key>` and
    /// `$pbkdf2-sha256$i=..,l=..$<salt>$<key>` (PHC, base64 without
    /// padding) for the others. [`LegacyHash::from_stored`] reads it back.
    pub(crate) fn to_stored(&self) -> Result<String, InvalidInput> {
        self.check()?;
        Ok(match self {
            LegacyHash::Bcrypt(s) | LegacyHash::Argon2Phc(s) => s.clone(),
            LegacyHash::Scrypt {
                log_n,
                r,
                p,
                salt,
                hash,
            } => format!(
                "$scrypt$ln={log_n},r={r},p={p}${}${}",
                B64.encode(salt),
                B64.encode(hash)
            ),
            LegacyHash::Pbkdf2Sha256 {
                iterations,
                salt,
                hash,
            } => format!(
                "$pbkdf2-sha256$i={iterations},l={}${}${}",
                hash.len(),
                B64.encode(salt),
                B64.encode(hash)
            ),
            LegacyHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => format!(
                "$pbkdf2-sha512$i={iterations},l={}${}${}",
                hash.len(),
                B64.encode(salt),
                B64.encode(hash)
            ),
        })
    }

    /// Read a stored credential string that is not argon2's: only the
    /// `$`-prefixed forms [`to_stored`](Self::to_stored) writes, under the
    /// same bounds as an import (a corrupt or hostile row is refused, not
    /// run). An unusable one is [`Error::Hashing`].
    pub(crate) fn from_stored(stored: &str) -> Result<Self> {
        let parsed = if stored.starts_with('$') && !stored.starts_with("$argon2") {
            Self::parse(stored)
        } else {
            Err(bad("not a stored imported hash"))
        };
        parsed.map_err(|e| Error::hashing_from("stored hash is unusable", e))
    }

    /// Whether `password` (normalised) matches: the whole computation, on
    /// the caller's thread (the hasher runs it on a blocking one). The
    /// derived keys are compared in constant time.
    pub(crate) fn verify(&self, password: &[u8]) -> Result<bool> {
        match self {
            LegacyHash::Bcrypt(s) => {
                // bcrypt compares its outputs with `subtle`.
                bcrypt::verify(password, s)
                    .map_err(|_| Error::hashing("bcrypt verification failed"))
            }
            LegacyHash::Scrypt {
                log_n,
                r,
                p,
                salt,
                hash,
            } => {
                let params = scrypt::Params::new(*log_n, *r, *p)
                    .map_err(|e| Error::hashing_from("scrypt parameters", e))?;
                let mut out = vec![0u8; hash.len()];
                scrypt::scrypt(password, salt, &params, &mut out)
                    .map_err(|e| Error::hashing_from("scrypt", e))?;
                Ok(bool::from(out.as_slice().ct_eq(hash.as_slice())))
            }
            LegacyHash::Pbkdf2Sha256 {
                iterations,
                salt,
                hash,
            } => pbkdf2_matches(Prf::Sha256, password, salt, *iterations, hash),
            LegacyHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => pbkdf2_matches(Prf::Sha512, password, salt, *iterations, hash),
            LegacyHash::Argon2Phc(_) => Err(Error::hashing(
                "argon2 hashes are verified by the argon2 hasher",
            )),
        }
    }
}

#[derive(Clone, Copy)]
enum Prf {
    Sha256,
    Sha512,
}

fn pbkdf2_matches(
    prf: Prf,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    expected: &[u8],
) -> Result<bool> {
    let params =
        pbkdf2::Params::new(iterations).map_err(|e| Error::hashing_from("pbkdf2 parameters", e))?;
    let algorithm = match prf {
        Prf::Sha256 => pbkdf2::Algorithm::Pbkdf2Sha256,
        Prf::Sha512 => pbkdf2::Algorithm::Pbkdf2Sha512,
    };
    let mut out = vec![0u8; expected.len()];
    // The non-generic entry point: PBKDF2's loop is compiled in the pbkdf2
    // crate (optimised even in dev builds), not instantiated here.
    pbkdf2::pbkdf2_hmac_with_params(password, salt, algorithm, params, &mut out);
    Ok(bool::from(out.as_slice().ct_eq(expected)))
}

fn check_sizes(salt: &[u8], hash: &[u8]) -> Result<(), InvalidInput> {
    if salt.is_empty() || salt.len() > MAX_SALT {
        return Err(bad(format!("the salt must be 1 to {MAX_SALT} bytes")));
    }
    if !(MIN_OUTPUT..=MAX_OUTPUT).contains(&hash.len()) {
        return Err(bad(format!(
            "the derived key must be {MIN_OUTPUT} to {MAX_OUTPUT} bytes, not {}",
            hash.len()
        )));
    }
    Ok(())
}

fn check_bcrypt(s: &str) -> Result<(), InvalidInput> {
    if s.starts_with("$2x$") {
        return Err(bad(
            "`$2x$` bcrypt hashes (crypt_blowfish's flawed variant) are not supported",
        ));
    }
    let rest = ["$2a$", "$2b$", "$2y$"]
        .iter()
        .find_map(|prefix| s.strip_prefix(prefix))
        .ok_or_else(|| bad("a bcrypt hash starts with `$2a$`, `$2b$` or `$2y$`"))?;
    let (cost, body) = rest
        .split_once('$')
        .ok_or_else(|| bad("a bcrypt hash is `$2b$<cost>$<salt and hash>`"))?;
    if cost.len() != 2 || !cost.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("the bcrypt cost is two digits"));
    }
    let cost: u32 = cost
        .parse()
        .map_err(|_| bad("the bcrypt cost is two digits"))?;
    if !(4..=MAX_BCRYPT_COST).contains(&cost) {
        return Err(bad(format!(
            "the bcrypt cost must be 4 to {MAX_BCRYPT_COST}, not {cost}"
        )));
    }
    let bcrypt_b64 = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'/';
    if body.len() != 53 || !body.bytes().all(bcrypt_b64) {
        return Err(bad(
            "a bcrypt salt and hash are 53 characters of bcrypt's base64",
        ));
    }
    s.parse::<bcrypt::HashParts>()
        .map(|_| ())
        .map_err(|_| bad("the bcrypt salt or hash does not decode"))
}

/// `ln=<u8>,r=<u32>,p=<u32>$<salt>$<key>`.
fn parse_scrypt_phc(rest: &str) -> Result<LegacyHash, InvalidInput> {
    let [params, salt, key] = split3(rest)
        .ok_or_else(|| bad("a scrypt hash is `$scrypt$ln=<n>,r=<r>,p=<p>$<salt>$<hash>`"))?;
    let (mut log_n, mut r, mut p) = (None, None, None);
    for pair in params.split(',') {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| bad("scrypt parameters are `ln=<n>,r=<r>,p=<p>`"))?;
        let slot = match k {
            "ln" => &mut log_n,
            "r" => &mut r,
            "p" => &mut p,
            _ => return Err(bad("scrypt parameters are `ln`, `r` and `p`")),
        };
        if slot.replace(decimal(v, "scrypt parameter")?).is_some() {
            return Err(bad("a scrypt parameter is repeated"));
        }
    }
    let (Some(log_n), Some(r), Some(p)) = (log_n, r, p) else {
        return Err(bad("scrypt needs `ln`, `r` and `p`"));
    };
    Ok(LegacyHash::Scrypt {
        log_n: u8::try_from(log_n).map_err(|_| bad("scrypt log2(N) is out of range"))?,
        r,
        p,
        salt: B64
            .decode(salt)
            .map_err(|_| bad("the scrypt salt is not base64"))?,
        hash: B64
            .decode(key)
            .map_err(|_| bad("the scrypt hash is not base64"))?,
    })
}

/// `i=<u32>[,l=<len>]$<salt>$<key>` (PHC, standard base64), or passlib's
/// `<u32>$<salt>$<key>` (its base64 writes `.` for `+`).
fn parse_pbkdf2_phc(rest: &str, prf: Prf) -> Result<LegacyHash, InvalidInput> {
    let [params, salt, key] = split3(rest)
        .ok_or_else(|| bad("a PBKDF2 hash is `$pbkdf2-sha256$i=<iterations>$<salt>$<hash>`"))?;
    let passlib = params.bytes().all(|b| b.is_ascii_digit());
    let (iterations, length) = if passlib {
        (decimal(params, "iteration count")?, None)
    } else {
        let (mut i, mut l) = (None, None);
        for pair in params.split(',') {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| bad("PBKDF2 parameters are `i=<iterations>[,l=<length>]`"))?;
            let slot = match k {
                "i" => &mut i,
                "l" => &mut l,
                _ => return Err(bad("PBKDF2 parameters are `i` and `l`")),
            };
            if slot.replace(decimal(v, "PBKDF2 parameter")?).is_some() {
                return Err(bad("a PBKDF2 parameter is repeated"));
            }
        }
        (i.ok_or_else(|| bad("PBKDF2 needs `i`"))?, l)
    };
    let decode = |field: &str, what: &'static str| {
        let text = if passlib {
            field.replace('.', "+")
        } else {
            field.to_owned()
        };
        B64.decode(text).map_err(|_| bad(what))
    };
    let salt = decode(salt, "the PBKDF2 salt is not base64")?;
    let hash = decode(key, "the PBKDF2 hash is not base64")?;
    if length.is_some_and(|l| usize::try_from(l).ok() != Some(hash.len())) {
        return Err(bad("the PBKDF2 `l` is not the hash's length"));
    }
    Ok(match prf {
        Prf::Sha256 => LegacyHash::Pbkdf2Sha256 {
            iterations,
            salt,
            hash,
        },
        Prf::Sha512 => LegacyHash::Pbkdf2Sha512 {
            iterations,
            salt,
            hash,
        },
    })
}

/// Exactly three `$`-separated fields.
fn split3(s: &str) -> Option<[&str; 3]> {
    let mut it = s.split('$');
    let out = [it.next()?, it.next()?, it.next()?];
    it.next().is_none().then_some(out)
}

/// A plain decimal number (digits only, at most 10 of them).
fn decimal(s: &str, what: &str) -> Result<u32, InvalidInput> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(format!("the {what} is not a decimal number")));
    }
    s.parse()
        .map_err(|_| bad(format!("the {what} is out of range")))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let nibble = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some(nibble(*hi)? << 4 | nibble(*lo)?),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests;
