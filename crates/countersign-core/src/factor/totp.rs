//! The TOTP factor (RFC 6238): tenant settings, the user's credential,
//! enrolment material (otpauth URI, QR code), and verification that spends
//! each time step once.
//!
//! The shared secret is stored sealed when the service has a
//! [`Sealer`](crate::seal::Sealer) (bound to its tenant and user), in the
//! clear otherwise; see [`seal`](crate::seal).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::{Check, Verdict, spend};
use crate::audit::AuditReason;
use crate::env::Env;
use crate::error::{Error, InvalidInput, Result};
use crate::ids::{TenantId, UserId};
use crate::seal::{SealError, Sealer, StoredSecret, totp_context};
use crate::store::FactorStore;

/// Bytes of a TOTP shared secret (160 bits, as RFC 4226 recommends).
pub const TOTP_SECRET_BYTES: usize = 20;

/// The HMAC a TOTP code is built on (RFC 6238).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum TotpAlgorithm {
    /// HMAC-SHA1: what every authenticator app supports.
    #[default]
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

/// A tenant's TOTP settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpSettings {
    /// The issuer shown in authenticator apps.
    pub issuer: String,
    /// Code length: 6 to 8 digits.
    pub digits: u8,
    /// Seconds per step (15 to 300).
    pub step_secs: u32,
    /// Steps of clock skew accepted on each side (0 to 2).
    pub skew_steps: u8,
    /// The HMAC algorithm.
    pub algorithm: TotpAlgorithm,
}

impl Default for TotpSettings {
    /// RFC 6238's recommendation: 6 digits, 30 s steps, one step of skew, SHA-1.
    fn default() -> Self {
        Self {
            issuer: "countersign".into(),
            digits: 6,
            step_secs: 30,
            skew_steps: 1,
            algorithm: TotpAlgorithm::Sha1,
        }
    }
}

impl TotpSettings {
    /// Check the settings' bounds.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let err = |r: &str| Err(InvalidInput::new("totp settings", r));
        if !(6..=8).contains(&self.digits) {
            return err("digits must be 6 to 8");
        }
        if !(15..=300).contains(&self.step_secs) {
            return err("the step must be 15 to 300 seconds");
        }
        if self.skew_steps > 2 {
            return err("skew must be 0 to 2 steps");
        }
        if self.issuer.is_empty() || self.issuer.contains(':') || self.issuer.len() > 128 {
            return err("the issuer must be 1 to 128 bytes without `:`");
        }
        Ok(())
    }
}

/// A user's TOTP credential. The shared secret must be kept to verify codes;
/// it is stored sealed when the service has a sealer, and redacted from
/// `Debug` output either way.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpCredential {
    /// The shared secret (20 random bytes), as stored: sealed for this
    /// tenant and user, or in the clear. Generating and checking codes
    /// needs it in the clear ([`open`](Self::open)).
    pub secret: StoredSecret,
    /// Code length.
    pub digits: u8,
    /// Seconds per step.
    pub step_secs: u32,
    /// The HMAC algorithm.
    pub algorithm: TotpAlgorithm,
    /// The last step a code was accepted for: codes of this step or earlier
    /// are refused, so each code works once.
    pub last_step: Option<u64>,
    /// Whether the user proved possession with a first valid code.
    pub confirmed: bool,
    /// When it was enrolled.
    pub created_at: DateTime<Utc>,
}

impl fmt::Debug for TotpCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpCredential")
            .field("secret", &self.secret)
            .field("digits", &self.digits)
            .field("step_secs", &self.step_secs)
            .field("algorithm", &self.algorithm)
            .field("last_step", &self.last_step)
            .field("confirmed", &self.confirmed)
            .finish()
    }
}

impl TotpCredential {
    /// The same credential with its secret in the clear: opened by
    /// `sealer` if it is sealed (for `tenant`'s `user`), as is if it is
    /// not. Fails closed with a [`SealError`]: no sealer, a key it does not
    /// list, or a secret sealed for another row.
    pub fn open(&self, sealer: Option<&Sealer>, tenant: TenantId, user: UserId) -> Result<Self> {
        let secret = self.secret.open(sealer, &totp_context(tenant, user))?;
        Ok(Self {
            secret: StoredSecret::Plain(secret),
            ..self.clone()
        })
    }

    /// The same credential as it is to be stored: a secret in the clear is
    /// sealed by `sealer` for `tenant`'s `user` (and stays in the clear
    /// without a sealer); a sealed one is kept as it is.
    pub fn seal(
        self,
        sealer: Option<&Sealer>,
        env: &Env,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Self> {
        let StoredSecret::Plain(secret) = &self.secret else {
            return Ok(self);
        };
        let secret = StoredSecret::seal(sealer, env, secret, &totp_context(tenant, user))?;
        Ok(Self { secret, ..self })
    }
}

/// The RFC 6238 generator for `credential`, labelled for an authenticator
/// app when `issuer` is given. A sealed secret is an error: open it first.
fn totp_engine(
    credential: &TotpCredential,
    issuer: Option<&str>,
    account: &str,
) -> Result<totp_rs::Totp> {
    let algorithm = match credential.algorithm {
        TotpAlgorithm::Sha1 => totp_rs::Algorithm::SHA1,
        TotpAlgorithm::Sha256 => totp_rs::Algorithm::SHA256,
        TotpAlgorithm::Sha512 => totp_rs::Algorithm::SHA512,
    };
    let StoredSecret::Plain(secret) = &credential.secret else {
        return Err(SealError::NoSealer.into());
    };
    let digits = credential.digits;
    if !(6..=8).contains(&digits) {
        return Err(InvalidInput::new("totp", "digits must be 6 to 8").into());
    }
    totp_rs::Builder::new()
        .with_algorithm(algorithm)
        .with_digits(digits)
        .with_skew(0)
        .with_step_duration(u64::from(credential.step_secs.max(1)))
        .with_secret(secret.clone())
        .with_issuer(issuer)
        .with_account_name(account)
        .build()
        .map_err(|e| Error::internal_from("totp parameters", e))
}

/// The TOTP code for `credential` (its secret in the clear) at unix time
/// `unix_secs` (for tests and test vectors; login never needs to generate
/// one).
pub fn totp_code(credential: &TotpCredential, unix_secs: u64) -> Result<String> {
    let totp = totp_engine(credential, None, "")?;
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

/// Check a (well-formed) code against `credential` (its secret in the
/// clear) at `now`, accepting `skew` steps either side. Codes are compared in constant time; a code of
/// a step at or before `last_step` is a replay.
pub fn check_totp(
    credential: &TotpCredential,
    code: &str,
    now: DateTime<Utc>,
    skew: u8,
) -> Result<TotpCheck> {
    let totp = totp_engine(credential, None, "")?;
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

/// A new, unconfirmed TOTP credential with a fresh secret (in the clear:
/// [`seal`](TotpCredential::seal) it before storing it), created `now`.
pub fn new_totp(env: &Env, settings: &TotpSettings, now: DateTime<Utc>) -> Result<TotpCredential> {
    let secret: [u8; TOTP_SECRET_BYTES] = env.random_bytes()?;
    Ok(TotpCredential {
        secret: StoredSecret::Plain(secret.to_vec()),
        digits: settings.digits,
        step_secs: settings.step_secs,
        algorithm: settings.algorithm,
        last_step: None,
        confirmed: false,
        created_at: now,
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

impl fmt::Debug for TotpEnrollment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpEnrollment { <redacted> }")
    }
}

/// The enrolment material for `credential` (its secret in the clear):
/// base32 secret, otpauth URI, QR.
pub fn totp_enrollment(
    credential: &TotpCredential,
    issuer: &str,
    account: &str,
) -> Result<TotpEnrollment> {
    let account: String = account.chars().filter(|c| *c != ':').collect();
    let totp = totp_engine(credential, Some(issuer), &account)?;
    let StoredSecret::Plain(secret) = &credential.secret else {
        return Err(SealError::NoSealer.into());
    };
    let uri = totp
        .to_url()
        .map_err(|e| Error::internal_from("totp uri", e))?;
    let qr = qrcode::QrCode::new(uri.as_bytes()).map_err(|e| Error::internal_from("qr code", e))?;
    let qr_svg = qr
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    Ok(TotpEnrollment {
        secret_base32: totp_rs::Secret::from(secret.clone()).to_base32(),
        uri,
        qr_svg,
    })
}

/// Verify a well-formed code for `user` and spend its time step with a
/// compare-and-save, so a code works once even when submitted twice at the
/// same instant. A missing or unconfirmed credential fails like a wrong code.
/// The secret is opened by `sealer` (fail closed: a [`SealError`]) and
/// saved sealed under its current key (so a secret in the clear, or under
/// an older key, is sealed anew on use).
pub(crate) async fn verify<S: FactorStore>(
    store: &S,
    (env, sealer): (&Env, Option<&Sealer>),
    now: DateTime<Utc>,
    (tenant, user): (TenantId, UserId),
    code: &str,
    skew: u8,
) -> Result<Check> {
    spend(
        store,
        tenant,
        user,
        "totp credential kept changing",
        |cred| {
            let Some(cred) = cred.filter(|c: &TotpCredential| c.confirmed) else {
                return Ok(Verdict::Keep(Check::Failed(AuditReason::NoCredential)));
            };
            let mut cred = cred.open(sealer, tenant, user)?;
            Ok(match check_totp(&cred, code, now, skew)? {
                TotpCheck::Invalid => Verdict::Keep(Check::Failed(AuditReason::WrongCode)),
                TotpCheck::Replayed => Verdict::Keep(Check::Failed(AuditReason::ReplayedCode)),
                TotpCheck::Valid { step } => {
                    cred.last_step = Some(step);
                    let cred = cred.seal(sealer, env, tenant, user)?;
                    Verdict::Save(cred, Check::Passed)
                }
            })
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::factor::{
        check_digits, new_recovery_code, normalize_recovery_code, numeric_code, sha256_hex,
    };

    fn cred(secret: &[u8], digits: u8, algorithm: TotpAlgorithm) -> TotpCredential {
        TotpCredential {
            secret: secret.to_vec().into(),
            digits,
            step_secs: 30,
            algorithm,
            last_step: None,
            confirmed: true,
            created_at: DateTime::<Utc>::default(),
        }
    }

    /// A credential stored before sealing (its secret a JSON byte array)
    /// still loads and verifies, with or without a sealer; sealing it for
    /// its next write leaves no trace of the secret, and it opens back
    /// only for its own row.
    #[test]
    fn clear_secrets_stored_before_sealing_still_load() {
        use crate::factor::FactorCredential;
        use crate::seal::{Sealer, SealingKey};
        let legacy = r#"{"kind":"totp","secret":[49,50,51,52,53,54,55,56,57,48,49,50,51,52,53,54,55,56,57,48],
            "digits":6,"step_secs":30,"algorithm":"SHA1","last_step":null,"confirmed":true,
            "created_at":"2024-01-01T00:00:00Z"}"#;
        let FactorCredential::Totp(stored) = serde_json::from_str(legacy).unwrap() else {
            panic!("totp")
        };
        assert!(!stored.secret.is_sealed());
        let (env, _) = Env::manual(4);
        let sealer = Sealer::new(SealingKey::generate("k1", &env).unwrap());
        let (t, u) = (
            TenantId::from_uuid(uuid::Uuid::from_u128(1)),
            UserId::from_uuid(uuid::Uuid::from_u128(2)),
        );
        let now = DateTime::<Utc>::from_timestamp(59, 0).unwrap();
        for s in [None, Some(&sealer)] {
            let open = stored.open(s, t, u).unwrap();
            assert_eq!(
                check_totp(&open, "287082", now, 0).unwrap(),
                TotpCheck::Valid { step: 1 }
            );
        }
        let resealed = stored
            .open(None, t, u)
            .unwrap()
            .seal(Some(&sealer), &env, t, u)
            .unwrap();
        let json = serde_json::to_string(&FactorCredential::Totp(resealed.clone())).unwrap();
        assert_eq!(resealed.secret.key_id(), Some("k1"), "{json}");
        assert!(
            !json.contains("49,50,51") && !json.contains("1234567890"),
            "{json}"
        );
        let back: FactorCredential = serde_json::from_str(&json).unwrap();
        let FactorCredential::Totp(back) = back else {
            panic!("totp")
        };
        assert_eq!(
            back.open(Some(&sealer), t, u).unwrap().secret,
            stored.secret
        );
        let other = UserId::from_uuid(uuid::Uuid::from_u128(3));
        assert!(back.open(Some(&sealer), t, other).is_err());
        assert!(
            check_totp(&back, "287082", now, 0).is_err(),
            "sealed: open first"
        );
        assert!(!format!("{back:?} {stored:?}").contains("49, 50"));
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
        let c = new_totp(&env, &TotpSettings::default(), env.now()).unwrap();
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
