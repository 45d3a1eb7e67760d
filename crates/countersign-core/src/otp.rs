//! One-time codes: TOTP (RFC 6238), recovery codes, email codes, and the
//! hashing of short secrets.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::env::Env;
use crate::error::{Error, InvalidInput, Result};
use crate::factor::{TotpAlgorithm, TotpCredential, TotpSettings};

/// Bytes of a TOTP shared secret (160 bits, as RFC 4226 recommends).
pub const TOTP_SECRET_BYTES: usize = 20;

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

fn totp_engine(
    secret: &[u8],
    digits: u8,
    step_secs: u32,
    algorithm: TotpAlgorithm,
    issuer: Option<&str>,
    account: &str,
) -> Result<totp_rs::Totp> {
    let algorithm = match algorithm {
        TotpAlgorithm::Sha1 => totp_rs::Algorithm::SHA1,
        TotpAlgorithm::Sha256 => totp_rs::Algorithm::SHA256,
        TotpAlgorithm::Sha512 => totp_rs::Algorithm::SHA512,
    };
    if !(6..=8).contains(&digits) {
        return Err(InvalidInput::new("totp", "digits must be 6 to 8").into());
    }
    totp_rs::Builder::new()
        .with_algorithm(algorithm)
        .with_digits(digits)
        .with_skew(0)
        .with_step_duration(u64::from(step_secs.max(1)))
        .with_secret(secret.to_vec())
        .with_issuer(issuer)
        .with_account_name(account)
        .build()
        .map_err(|e| Error::Internal(format!("totp: {e}")))
}

/// The TOTP code for `credential` at unix time `unix_secs` (for tests and
/// test vectors; login never needs to generate one).
pub fn totp_code(credential: &TotpCredential, unix_secs: u64) -> Result<String> {
    let totp = totp_engine(
        &credential.secret,
        credential.digits,
        credential.step_secs,
        credential.algorithm,
        None,
        "",
    )?;
    Ok(totp.generate(unix_secs).to_string())
}

/// What checking a TOTP code found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpCheck {
    /// The code is valid for this step, later than any used before.
    Valid {
        /// The matched step (to store as `last_step`).
        step: u64,
    },
    /// The code matches a step already used: a replay.
    Replayed,
    /// The code matches no step in the window.
    Invalid,
}

/// Check a (well-formed) code against `credential` at `now`, accepting
/// `skew` steps either side. Codes are compared in constant time; a code of
/// a step at or before `last_step` is a replay.
pub fn check_totp(
    credential: &TotpCredential,
    code: &str,
    now: DateTime<Utc>,
    skew: u8,
) -> Result<TotpCheck> {
    let totp = totp_engine(
        &credential.secret,
        credential.digits,
        credential.step_secs,
        credential.algorithm,
        None,
        "",
    )?;
    let step_secs = u64::from(credential.step_secs.max(1));
    let t = u64::try_from(now.timestamp()).unwrap_or(0);
    let origin = t / step_secs;
    let mut found = None;
    for step in origin.saturating_sub(u64::from(skew))..=origin.saturating_add(u64::from(skew)) {
        let expected = totp.generate(step.saturating_mul(step_secs)).to_string();
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) && found.is_none() {
            found = Some(step);
        }
    }
    Ok(match found {
        None => TotpCheck::Invalid,
        Some(step) if credential.last_step.is_some_and(|last| step <= last) => TotpCheck::Replayed,
        Some(step) => TotpCheck::Valid { step },
    })
}

/// A new, unconfirmed TOTP credential with a fresh secret.
pub fn new_totp(env: &Env, settings: &TotpSettings) -> Result<TotpCredential> {
    let secret: [u8; TOTP_SECRET_BYTES] = env.random_bytes()?;
    Ok(TotpCredential {
        secret: secret.to_vec(),
        digits: settings.digits,
        step_secs: settings.step_secs,
        algorithm: settings.algorithm,
        last_step: None,
        confirmed: false,
        created_at: env.now(),
    })
}

/// What an authenticator app needs to add a TOTP credential.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpEnrollment {
    /// The secret in base32, for manual entry.
    pub secret_base32: String,
    /// The `otpauth://totp/...` URI.
    pub uri: String,
    /// The URI as a QR code, an SVG image.
    pub qr_svg: String,
}

impl std::fmt::Debug for TotpEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrollment { <redacted> }")
    }
}

/// The enrolment material for `credential`: base32 secret, otpauth URI, QR.
pub fn totp_enrollment(
    credential: &TotpCredential,
    issuer: &str,
    account: &str,
) -> Result<TotpEnrollment> {
    let account: String = account.chars().filter(|c| *c != ':').collect();
    let totp = totp_engine(
        &credential.secret,
        credential.digits,
        credential.step_secs,
        credential.algorithm,
        Some(issuer),
        &account,
    )?;
    let uri = totp
        .to_url()
        .map_err(|e| Error::Internal(format!("totp uri: {e}")))?;
    let qr = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| Error::Internal(format!("qr code: {e}")))?;
    let qr_svg = qr
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    Ok(TotpEnrollment {
        secret_base32: totp_rs::Secret::from(credential.secret.clone()).to_base32(),
        uri,
        qr_svg,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(secret: &[u8], digits: u8, algorithm: TotpAlgorithm) -> TotpCredential {
        TotpCredential {
            secret: secret.to_vec(),
            digits,
            step_secs: 30,
            algorithm,
            last_step: None,
            confirmed: true,
            created_at: DateTime::<Utc>::default(),
        }
    }

    /// RFC 6238 appendix B test vectors (8 digits).
    #[test]
    fn rfc6238_test_vectors() {
        let sha1 = cred(b"12345678901234567890", 8, TotpAlgorithm::Sha1);
        let sha256 = cred(
            b"12345678901234567890123456789012",
            8,
            TotpAlgorithm::Sha256,
        );
        let sha512 = cred(
            b"1234567890123456789012345678901234567890123456789012345678901234",
            8,
            TotpAlgorithm::Sha512,
        );
        let vectors: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        for (t, c1, c256, c512) in vectors {
            assert_eq!(totp_code(&sha1, t).unwrap(), c1, "sha1 at {t}");
            assert_eq!(totp_code(&sha256, t).unwrap(), c256, "sha256 at {t}");
            assert_eq!(totp_code(&sha512, t).unwrap(), c512, "sha512 at {t}");
            let now = DateTime::<Utc>::from_timestamp(i64::try_from(t).unwrap(), 0).unwrap();
            assert_eq!(
                check_totp(&sha1, c1, now, 0).unwrap(),
                TotpCheck::Valid { step: t / 30 }
            );
        }
    }

    /// RFC 4226 appendix D (HOTP) vectors: TOTP at time 30·i is HOTP counter i.
    #[test]
    fn rfc4226_hotp_vectors() {
        let c = cred(b"12345678901234567890", 6, TotpAlgorithm::Sha1);
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (i, code) in expected.iter().enumerate() {
            assert_eq!(totp_code(&c, 30 * i as u64).unwrap(), *code, "counter {i}");
        }
    }

    #[test]
    fn replays_and_skew() {
        let mut c = cred(b"12345678901234567890", 6, TotpAlgorithm::Sha1);
        let now = DateTime::<Utc>::from_timestamp(1_000_000_020, 0).unwrap();
        let step = 1_000_000_020 / 30;
        let code = totp_code(&c, 1_000_000_020).unwrap();
        assert_eq!(
            check_totp(&c, &code, now, 1).unwrap(),
            TotpCheck::Valid { step }
        );
        c.last_step = Some(step);
        assert_eq!(check_totp(&c, &code, now, 1).unwrap(), TotpCheck::Replayed);
        let previous = totp_code(&c, 1_000_000_020 - 30).unwrap();
        assert_eq!(
            check_totp(&c, &previous, now, 1).unwrap(),
            TotpCheck::Replayed,
            "older than the last used"
        );
        let next = totp_code(&c, 1_000_000_020 + 30).unwrap();
        assert_eq!(
            check_totp(&c, &next, now, 1).unwrap(),
            TotpCheck::Valid { step: step + 1 }
        );
        assert_eq!(
            check_totp(&c, &next, now, 0).unwrap(),
            TotpCheck::Invalid,
            "no skew"
        );
        let far = totp_code(&c, 1_000_000_020 + 90).unwrap();
        assert_eq!(check_totp(&c, &far, now, 1).unwrap(), TotpCheck::Invalid);
    }

    #[test]
    fn enrollment_material_and_code_shapes() {
        let (env, _) = Env::manual(9);
        let c = new_totp(&env, &TotpSettings::default()).unwrap();
        let e = totp_enrollment(&c, "Acme", "alice@example.org").unwrap();
        assert!(
            e.uri
                .starts_with("otpauth://totp/Acme:alice%40example.org?"),
            "{}",
            e.uri
        );
        assert!(e.uri.contains(&format!("secret={}", e.secret_base32)));
        assert!(e.qr_svg.starts_with("<?xml") && e.qr_svg.contains("<svg"));
        assert!(!format!("{c:?}").contains(&e.secret_base32));
        assert!(check_digits("123456", 6, "code").is_ok());
        for bad in ["12345", "1234567", "12345a", "１２３４５６", ""] {
            assert!(check_digits(bad, 6, "code").is_err(), "{bad}");
        }
        let code = numeric_code(&env, 8).unwrap();
        assert!(check_digits(&code, 8, "code").is_ok());
        let rc = new_recovery_code(&env).unwrap();
        assert_eq!(rc.len(), 19);
        assert_eq!(
            normalize_recovery_code(&rc.to_uppercase().replace('-', " ")).unwrap(),
            rc.replace('-', "")
        );
        assert!(normalize_recovery_code("not-a-code").is_err());
        assert!(normalize_recovery_code(&"a".repeat(1000)).is_err());
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
