//! Secrets sealed at rest: with a sealer, a dump of the store holds no
//! usable TOTP secret or signing key; another key, no key, or another row
//! opens nothing (a typed error); sealing keys rotate.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::Duration;
use countersign_core::factor::{TotpCredential, totp_code};
use countersign_core::seal::{SealError, Sealer, SealingKey, signing_key_context};
use countersign_core::{
    Authentication, AuthnService, Confirm, Enroll, Enrolled, Error, FactorCredential, FactorKind,
    FactorResponse, LoginStatus, SessionService, SigningKeyRecord, TotpAlgorithm, User,
};

use super::{api_tokens, set_sessions};
use crate::ConformanceStore;
use crate::fixtures::{ISSUER, PASSWORD, World, sign_in};

/// A sealer whose current key is `id`, 32 bytes of `byte`.
fn sealer(id: &str, byte: u8) -> Sealer {
    Sealer::new(sealing_key(id, byte))
}

fn sealing_key(id: &str, byte: u8) -> SealingKey {
    SealingKey::new(id, &[byte; 32]).unwrap()
}

/// The `mfa` world of a clone of `s` issuing access tokens, its services
/// sealing with `sealer` when given, and its active user `alice`.
async fn world<S: ConformanceStore>(s: &S, seed: u64, sealer: Option<Sealer>) -> (World<S>, User) {
    let mut w = World::mfa(s.clone(), seed).await;
    set_sessions(&w, api_tokens()).await;
    if let Some(sealer) = sealer {
        w.svc = w.svc.clone().with_sealer(sealer.clone());
        w.sessions = w.sessions.clone().with_sealer(sealer);
    }
    let alice = w.user("alice").await;
    (w, alice)
}

/// Services over the world's store and clock sealing with `sealer`, or
/// with none.
fn services<S: ConformanceStore>(
    w: &World<S>,
    sealer: Option<Sealer>,
) -> (AuthnService<S>, SessionService<S>) {
    let env = w.svc.env().clone();
    let svc = AuthnService::new(w.store.clone(), env.clone(), w.svc.hasher().clone());
    let sessions = SessionService::new(w.store.clone(), env, ISSUER);
    match sealer {
        Some(s) => (svc.with_sealer(s.clone()), sessions.with_sealer(s)),
        None => (svc, sessions),
    }
}

/// RFC 4648 base32 (unpadded), as an authenticator app reads it.
fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut buffer, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let value = ALPHABET.iter().position(|a| *a == c).expect("base32");
        buffer = (buffer << 5) | value as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    out
}

/// The current code of a secret (the tenant's default parameters).
fn code_of<S: ConformanceStore>(w: &World<S>, secret: &[u8]) -> String {
    let app = TotpCredential {
        secret: secret.to_vec().into(),
        digits: 6,
        step_secs: 30,
        algorithm: TotpAlgorithm::Sha1,
        last_step: None,
        confirmed: true,
        created_at: w.svc.env().now(),
    };
    totp_code(&app, w.svc.env().now().timestamp() as u64).unwrap()
}

/// Enrol and confirm TOTP for `user` through `svc`, as an app would (from
/// the enrolment's base32 secret); returns the secret. The clock moves on
/// one step past the confirming code.
async fn enroll_totp<S: ConformanceStore>(
    w: &World<S>,
    svc: &AuthnService<S>,
    user: &User,
) -> Vec<u8> {
    let Enrolled::Totp(material) = svc
        .enroll(w.tenant.id, user.id, Enroll::Totp, &w.client)
        .await
        .unwrap()
    else {
        panic!("totp material")
    };
    let secret = base32_decode(&material.secret_base32);
    assert_eq!(secret.len(), 20);
    let code = code_of(w, &secret);
    svc.confirm(
        w.tenant.id,
        user.id,
        Confirm::Totp { code: &code },
        &w.client,
    )
    .await
    .unwrap();
    w.clock.advance(Duration::seconds(30));
    secret
}

/// Sign `user` in through `svc` with the password and a code of `secret`
/// (then move the clock one step on, so the next code is fresh).
async fn totp_login<S: ConformanceStore>(
    w: &World<S>,
    svc: &AuthnService<S>,
    user: &User,
    secret: &[u8],
) -> Result<Authentication, Error> {
    let t = w.tenant.id;
    let (flow, _) = svc
        .begin_login(t, user.identifier.as_str(), Some("mfa"), &w.client)
        .await
        .unwrap();
    let password = FactorResponse::Password(PASSWORD);
    svc.submit(t, flow.expose(), password, &w.client)
        .await
        .unwrap();
    let code = code_of(w, secret);
    let done = svc
        .submit(t, flow.expose(), FactorResponse::Totp(&code), &w.client)
        .await;
    w.clock.advance(Duration::seconds(30));
    match done?.status {
        LoginStatus::Authenticated(a) => Ok(a),
        other => panic!("not signed in: {other:?}"),
    }
}

/// The user's stored TOTP credential, through the store trait.
async fn stored_totp<S: ConformanceStore>(w: &World<S>, user: &User) -> (TotpCredential, u64) {
    let v = w
        .store
        .user_factor(w.tenant.id, user.id, FactorKind::Totp)
        .await
        .unwrap()
        .expect("a totp row");
    let FactorCredential::Totp(cred) = v.value else {
        panic!("not totp")
    };
    (cred, v.version)
}

/// The tenant's stored signing keys, through the store trait.
async fn stored_keys<S: ConformanceStore>(w: &World<S>) -> Vec<SigningKeyRecord> {
    w.store.signing_keys(w.tenant.id).await.unwrap()
}

/// Which key sealed the stored TOTP secret of `user` (`None`: in the clear).
async fn totp_sealed_by<S: ConformanceStore>(w: &World<S>, user: &User) -> Option<String> {
    let (cred, _) = stored_totp(w, user).await;
    cred.secret.key_id().map(str::to_owned)
}

/// Which key sealed each stored signing key (`None`: in the clear).
async fn keys_sealed_by<S: ConformanceStore>(w: &World<S>) -> Vec<Option<String>> {
    let keys = stored_keys(w).await;
    let by = |k: &SigningKeyRecord| k.stored_private_key().unwrap().key_id().map(str::to_owned);
    keys.iter().map(by).collect()
}

/// The sealing failure behind a result, if it failed with one.
fn seal_error<T: std::fmt::Debug>(r: Result<T, Error>) -> SealError {
    let e = r.expect_err("a sealed secret must not open");
    SealError::of(&e)
        .cloned()
        .unwrap_or_else(|| panic!("not a sealing error: {e:?}"))
}

/// Every form a secret could be written in: raw, hex, base32, base64,
/// as a JSON array and as a `Debug` list.
fn forms(secret: &[u8]) -> Vec<Vec<u8>> {
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let list = |sep: &str| {
        secret
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(sep)
    };
    let b32 = countersign_core::factor::totp_enrollment(
        &TotpCredential {
            secret: secret.to_vec().into(),
            digits: 6,
            step_secs: 30,
            algorithm: TotpAlgorithm::Sha1,
            last_step: None,
            confirmed: false,
            created_at: chrono::DateTime::default(),
        },
        "x",
        "y",
    )
    .unwrap()
    .secret_base32;
    [
        hex.clone(),
        hex.to_uppercase(),
        b32,
        STANDARD.encode(secret),
        URL_SAFE_NO_PAD.encode(secret),
        list(","),
        list(", "),
    ]
    .into_iter()
    .map(String::into_bytes)
    .chain([secret.to_vec()])
    .collect()
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What a store dump shows of the tenant's secrets: every credential row of
/// `users` and every signing key row, as JSON, as `Debug`, and the private
/// key column's raw bytes.
async fn dump<S: ConformanceStore>(w: &World<S>, users: &[&User]) -> Vec<u8> {
    let mut out = Vec::new();
    for user in users {
        for kind in [FactorKind::Totp, FactorKind::Password] {
            if let Some(v) = w
                .store
                .user_factor(w.tenant.id, user.id, kind)
                .await
                .unwrap()
            {
                out.extend(serde_json::to_vec(&v.value).unwrap());
                out.extend(format!("{:?}", v.value).into_bytes());
            }
        }
    }
    for k in stored_keys(w).await {
        let row = serde_json::json!({
            "tenant_id": k.tenant_id.to_string(),
            "kid": k.kid,
            "private_key": k.private_key,
            "public_key": k.public_key,
        });
        out.extend(serde_json::to_vec(&row).unwrap());
        out.extend(format!("{k:?}").into_bytes());
        out.extend(&k.private_key);
    }
    out
}

/// With a sealer, neither the TOTP secret nor a signing key's private half
/// appears in a dump of the store, in any encoding; TOTP logins and
/// access tokens still work.
pub async fn a_store_dump_holds_no_usable_secret<S: ConformanceStore>(s: S) {
    let k1 = sealer("k1", 1);
    let (w, alice) = world(&s, 90, Some(k1.clone())).await;
    let secret = enroll_totp(&w, &w.svc, &alice).await;
    let kid = w.sessions.rotate_signing_key(w.tenant.id).await.unwrap();
    let auth = totp_login(&w, &w.svc, &alice, &secret).await.unwrap();
    let issued = w.sessions.issue(&auth, &w.client).await.unwrap();
    let jwt = issued.access_token.expect("an access token");
    let claims = w.sessions.verify_access_token(&jwt).await.unwrap();
    assert_eq!(claims.sub, alice.id.to_string());

    assert_eq!(totp_sealed_by(&w, &alice).await.as_deref(), Some("k1"));
    assert_eq!(keys_sealed_by(&w).await, [Some("k1".to_owned())]);
    let keys = stored_keys(&w).await;
    let [key] = keys.as_slice() else {
        panic!("one signing key")
    };
    assert_eq!(key.kid, kid);
    let context = signing_key_context(w.tenant.id, &kid);
    let seed = key
        .stored_private_key()
        .unwrap()
        .open(Some(&k1), &context)
        .unwrap();
    assert_eq!(seed.len(), 32);

    let dump = dump(&w, &[&alice]).await;
    for (what, secret) in [("the totp secret", &secret), ("the signing key", &seed)] {
        for form in forms(secret) {
            assert!(
                !contains(&dump, &form),
                "{what} appears in the store dump as {:?}",
                String::from_utf8_lossy(&form)
            );
        }
    }
}

/// A sealed secret opens only with a key its sealer lists, in its own
/// row: another key (another id, or the same id with other material) or no
/// sealer is a typed [`SealError`], and so is a TOTP secret copied into
/// another user's row; tokens signed before still verify anywhere.
pub async fn another_key_or_another_row_opens_nothing<S: ConformanceStore>(s: S) {
    let (w, alice) = world(&s, 91, Some(sealer("k1", 1))).await;
    let bob = w.user("bob").await;
    let secret = enroll_totp(&w, &w.svc, &alice).await;
    enroll_totp(&w, &w.svc, &bob).await;
    let first = sign_in(&w, &alice).await;
    let jwt = w.sessions.issue(&first, &w.client).await.unwrap();
    let jwt = jwt.access_token.expect("an access token");

    let (other_id, _) = services(&w, Some(sealer("k2", 2)));
    let (same_id, _) = services(&w, Some(sealer("k1", 9)));
    let (unsealed, _) = services(&w, None);
    assert_eq!(
        seal_error(totp_login(&w, &other_id, &alice, &secret).await),
        SealError::UnknownKey("k1".into())
    );
    assert_eq!(
        seal_error(totp_login(&w, &same_id, &alice, &secret).await),
        SealError::DoesNotOpen
    );
    assert_eq!(
        seal_error(totp_login(&w, &unsealed, &alice, &secret).await),
        SealError::NoSealer
    );

    for (key, expected) in [
        (Some(sealer("k2", 2)), SealError::UnknownKey("k1".into())),
        (Some(sealer("k1", 9)), SealError::DoesNotOpen),
        (None, SealError::NoSealer),
    ] {
        let (_, sessions) = services(&w, key);
        let auth = sign_in(&w, &alice).await;
        assert_eq!(seal_error(sessions.issue(&auth, &w.client).await), expected);
        // Verification needs only public keys.
        sessions.verify_access_token(&jwt).await.unwrap();
    }

    // Alice's sealed secret copied into Bob's row does not open there.
    let (alices, _) = stored_totp(&w, &alice).await;
    let (_, bobs_version) = stored_totp(&w, &bob).await;
    let copied = FactorCredential::Totp(alices);
    let saved = w
        .store
        .compare_and_save_user_factor(w.tenant.id, bob.id, Some(bobs_version), &copied)
        .await
        .unwrap();
    assert!(saved);
    assert_eq!(
        seal_error(totp_login(&w, &w.svc, &bob, &secret).await),
        SealError::DoesNotOpen
    );
    // The right service still signs Alice in.
    totp_login(&w, &w.svc, &alice, &secret).await.unwrap();
}

/// Secrets stored in the clear (before sealing) still work and are sealed
/// on their next write; after a sealing-key rotation, values sealed under
/// the previous key open while it is listed, and new writes use the
/// current key.
pub async fn sealing_keys_rotate_and_clear_secrets_get_sealed<S: ConformanceStore>(s: S) {
    let (w, alice) = world(&s, 92, None).await;
    // Before sealing: a TOTP secret and a signing key in the clear.
    let secret = enroll_totp(&w, &w.svc, &alice).await;
    w.sessions.rotate_signing_key(w.tenant.id).await.unwrap();
    assert_eq!(totp_sealed_by(&w, &alice).await, None);
    assert_eq!(keys_sealed_by(&w).await, [None]);

    // k1 arrives: the clear values still work; a use seals the TOTP secret,
    // a rotation gives a sealed signing key.
    let (svc1, sessions1) = services(&w, Some(sealer("k1", 1)));
    let auth = totp_login(&w, &svc1, &alice, &secret).await.unwrap();
    sessions1.issue(&auth, &w.client).await.unwrap();
    assert_eq!(totp_sealed_by(&w, &alice).await.as_deref(), Some("k1"));
    sessions1.rotate_signing_key(w.tenant.id).await.unwrap();
    assert_eq!(keys_sealed_by(&w).await, [None, Some("k1".to_owned())]);

    // k2 becomes current, k1 listed as previous: what k1 sealed opens,
    // and what is written now is sealed under k2.
    let rotated = Sealer::new(sealing_key("k2", 2)).with_previous(sealing_key("k1", 1));
    let (svc2, sessions2) = services(&w, Some(rotated));
    let auth = totp_login(&w, &svc2, &alice, &secret).await.unwrap();
    let issued = sessions2.issue(&auth, &w.client).await.unwrap();
    sessions2
        .verify_access_token(&issued.access_token.expect("a token"))
        .await
        .unwrap();
    assert_eq!(totp_sealed_by(&w, &alice).await.as_deref(), Some("k2"));
    sessions2.rotate_signing_key(w.tenant.id).await.unwrap();
    assert_eq!(
        keys_sealed_by(&w).await,
        [None, Some("k1".to_owned()), Some("k2".to_owned())]
    );

    // k1 dropped: everything in use is under k2 now.
    let (svc3, sessions3) = services(&w, Some(sealer("k2", 2)));
    let auth = totp_login(&w, &svc3, &alice, &secret).await.unwrap();
    sessions3.issue(&auth, &w.client).await.unwrap();
    // And k1 alone no longer opens the re-sealed TOTP secret.
    let (svc1, _) = services(&w, Some(sealer("k1", 1)));
    assert_eq!(
        seal_error(totp_login(&w, &svc1, &alice, &secret).await),
        SealError::UnknownKey("k2".into())
    );
}
