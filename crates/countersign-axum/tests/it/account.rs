//! The signed-in user's own account over HTTP: profile, password,
//! deactivation, export, factors, linked identities, and cookie sessions
//! with their CSRF token.

use chrono::Duration;
use countersign_axum::ApiStore;
use countersign_core::factor::{TotpCredential, totp_code};
use countersign_core::{
    AttributeDecl, AttributeKind, AuditEvent, AuditKind, AuditStatus, Enroll, Enrolled,
    FactorCredential, LinkedIdentity, Notice, ProfileSchema, TenantPolicy, TotpAlgorithm, User,
};
use countersign_testkit::fixtures::PASSWORD;
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Answer, Server, answer};

crate::on_memory!(
    recovery_codes_are_shown_once_and_usable,
    a_password_change_needs_the_current_password_and_ends_other_sessions,
    a_profile_update_changes_only_editable_fields,
    deactivation_ends_every_session_and_clears_cookies,
    the_export_holds_no_secret,
    another_users_passkey_is_not_found,
    unauthenticated_calls_are_401_problems,
    cookie_sessions_need_the_csrf_token_to_change_anything,
    sensitive_operations_need_a_recent_authentication,
    factors_are_listed_and_removed_by_kind,
    linked_identities_are_listed_and_unlinked_by_their_owner_only,
    email_codes_are_enrolled_with_the_mailed_code,
);

/// The TOTP round trip runs on every backend.
mod every_backend {
    use super::*;

    crate::on_every_backend!(totp_is_enrolled_over_http_and_signs_in);
}

const NEW_PASSWORD: &str = "an entirely new passphrase 42";

/// A signed-in caller: requests under `/v1/me` with its bearer token.
struct Me<'a, S: ApiStore> {
    s: &'a Server<S>,
    token: String,
}

impl<S: ApiStore> Me<'_, S> {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let path = format!("/v1/me{path}");
        self.s.send(method, &path, body, Some(&self.token)).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn patch(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }

    /// The caller's factors.
    async fn factors(&self) -> Vec<Value> {
        let a = self.get("/factors").await;
        assert_eq!(a.status, 200, "{a:?}");
        a.body.as_array().unwrap().clone()
    }

    /// The caller's factor of `kind` (`Null` when it has none).
    async fn factor(&self, kind: &str) -> Value {
        let found = self.factors().await.into_iter().find(|f| f["kind"] == kind);
        found.unwrap_or(Value::Null)
    }

    /// The status of `GET /v1/me`.
    async fn alive(&self) -> u16 {
        self.get("").await.status.as_u16()
    }
}

/// An active user `identifier` and a fresh session of it.
async fn signed_in<'a, S: ApiStore>(s: &'a Server<S>, identifier: &str) -> (User, Me<'a, S>) {
    let user = s.user(identifier).await;
    let token = s.session_for(&user).await;
    (user, Me { s, token })
}

/// Another fresh session of `user`.
async fn again<'a, S: ApiStore>(s: &'a Server<S>, user: &User) -> Me<'a, S> {
    let token = s.session_for(user).await;
    Me { s, token }
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

/// The current code of `secret` on the harness's manual clock (the
/// tenant's default parameters), as an authenticator app computes it.
fn code_now<S: ApiStore>(s: &Server<S>, secret: &[u8]) -> String {
    let now = s.world.svc.env().now();
    let app = TotpCredential {
        secret: secret.to_vec().into(),
        digits: 6,
        step_secs: 30,
        algorithm: TotpAlgorithm::Sha1,
        last_step: None,
        confirmed: true,
        created_at: now,
    };
    totp_code(&app, now.timestamp() as u64).unwrap()
}

/// A code that is not `code` (its last digit moved on).
fn wrong(code: &str) -> String {
    let (head, last) = code.split_at(code.len() - 1);
    let d = (last.parse::<u32>().unwrap() + 1) % 10;
    format!("{head}{d}")
}

/// The recovery codes of an answer.
fn codes_of(a: &Answer) -> Vec<String> {
    assert_eq!(a.status, 200, "{a:?}");
    serde_json::from_value(a.body["codes"].clone()).unwrap()
}

/// Begin an `mfa` login over HTTP and submit `password`.
async fn first_step<S: ApiStore>(s: &Server<S>, user: &User, password: &str) -> (String, Answer) {
    let begin = json!({"identifier": user.identifier.as_str(), "method": "mfa"});
    let a = s.post(&s.t("/login"), begin, None).await;
    assert_eq!(a.status, 200, "{a:?}");
    let flow = a.str("flow");
    let submit = json!({"flow": flow, "factor": "password", "response": password});
    (flow, s.post(&s.t("/login/submit"), submit, None).await)
}

/// Whether `password` passes the first step of an `mfa` login.
async fn password_accepted<S: ApiStore>(s: &Server<S>, user: &User, password: &str) -> bool {
    let (_, a) = first_step(s, user, password).await;
    a.body["status"] == "awaiting_factor" && a.body["refused"].is_null()
}

/// An `mfa` flow past its password step.
async fn password_step<S: ApiStore>(s: &Server<S>, user: &User) -> String {
    let (flow, a) = first_step(s, user, PASSWORD).await;
    assert!(
        a.body["status"] == "awaiting_factor" && a.body["refused"].is_null(),
        "{a:?}"
    );
    flow
}

/// Submit a second factor to `flow` over HTTP.
async fn second_step<S: ApiStore>(s: &Server<S>, flow: &str, factor: &str, code: &str) -> Answer {
    let submit = json!({"flow": flow, "factor": factor, "response": code});
    s.post(&s.t("/login/submit"), submit, None).await
}

/// Enrol TOTP over HTTP and confirm it; returns the base32 secret. The
/// clock is then one step past the confirming code.
async fn enroll_totp<S: ApiStore>(me: &Me<'_, S>) -> String {
    let a = me.post("/factors/totp", json!({})).await;
    assert_eq!(a.status, 200, "{a:?}");
    let b32 = a.str("secret_base32");
    let code = json!({"code": code_now(me.s, &base32_decode(&b32))});
    let a = me.post("/factors/totp/confirm", code).await;
    assert_eq!(a.status, 204, "{a:?}");
    me.s.world.clock.advance(Duration::seconds(30));
    b32
}

/// TOTP enrols over HTTP (secret shown, a wrong code refused, the right one
/// confirms), then signs in with the `mfa` method; a code works once.
async fn totp_is_enrolled_over_http_and_signs_in<S: ApiStore>(s: Server<S>) {
    let (alice, me) = signed_in(&s, "alice@example.org").await;
    let a = me.post("/factors/totp", json!({})).await;
    assert_eq!(a.status, 200, "{a:?}");
    let secret = base32_decode(&a.str("secret_base32"));
    assert!(a.str("otpauth_uri").starts_with("otpauth://totp/"), "{a:?}");
    assert!(a.str("qr_svg").contains("<svg"), "{a:?}");
    assert_eq!(me.factor("totp").await["confirmed"], false);

    // A wrong code confirms nothing; the right one does, once.
    let code = code_now(&s, &secret);
    let bad = json!({"code": wrong(&code)});
    let a = me.post("/factors/totp/confirm", bad).await;
    a.assert_problem(400, "invalid_input");
    assert_eq!(me.factor("totp").await["confirmed"], false);
    let a = me
        .post("/factors/totp/confirm", json!({"code": code}))
        .await;
    assert_eq!(a.status, 204, "{a:?}");
    assert_eq!(me.factor("totp").await["confirmed"], true);
    let a = me.post("/factors/totp", json!({})).await;
    a.assert_problem(409, "conflict");

    // Sign in: password, then a fresh code.
    let flow = password_step(&s, &alice).await;
    s.world.clock.advance(Duration::seconds(30));
    let fresh = code_now(&s, &secret);
    let a = second_step(&s, &flow, "totp", &fresh).await;
    assert_eq!(a.body["status"], "authenticated", "{a:?}");
    let token = a.body["session"]["session_token"].as_str();
    let token = token.unwrap().to_owned();
    let new = Me { s: &s, token };
    assert_eq!(new.get("").await.body["id"], alice.id.to_string());
    let factors = s.get("/v1/session", Some(&new.token)).await.body["factors"].clone();
    assert_eq!(factors, json!(["password", "totp"]));

    // The same code in a new flow is refused.
    let flow = password_step(&s, &alice).await;
    let a = second_step(&s, &flow, "totp", &fresh).await;
    assert_eq!(
        (a.status.as_u16(), &a.body["status"]),
        (200, &json!("awaiting_factor"))
    );
    assert_eq!(a.body["refused"], "incorrect", "{a:?}");
    assert!(a.body["session"].is_null(), "{a:?}");
}

/// Recovery codes are handed out once (no listing or export shows them),
/// each signs in once, and a new set voids the old one.
async fn recovery_codes_are_shown_once_and_usable<S: ApiStore>(s: Server<S>) {
    let (alice, me) = signed_in(&s, "alice@example.org").await;
    let old = codes_of(&me.post("/factors/recovery-codes", json!({})).await);
    let codes = codes_of(&me.post("/factors/recovery-codes", json!({})).await);
    assert!(codes.len() >= 5, "{codes:?}");
    assert!(old.iter().all(|c| !codes.contains(c)));
    assert_eq!(me.factor("recovery_codes").await["remaining"], codes.len());
    // Nothing shows them again.
    let listing = serde_json::to_string(&me.factors().await).unwrap();
    let export = me.get("/export").await.body.to_string();
    for c in &codes {
        assert!(!listing.contains(c.as_str()) && !export.contains(c.as_str()));
    }

    // The old set is void; a new code signs in once.
    let flow = password_step(&s, &alice).await;
    let a = second_step(&s, &flow, "recovery_code", &old[0]).await;
    assert_eq!(a.body["refused"], "incorrect", "{a:?}");
    let a = second_step(&s, &flow, "recovery_code", &codes[0]).await;
    assert_eq!(a.body["status"], "authenticated", "{a:?}");
    let flow = password_step(&s, &alice).await;
    let a = second_step(&s, &flow, "recovery_code", &codes[0]).await;
    assert_eq!(a.body["refused"], "incorrect", "{a:?}");
    assert_eq!(
        me.factor("recovery_codes").await["remaining"],
        codes.len() - 1
    );
}

/// A password change proves the current password (a wrong one changes
/// nothing), or without it a recent authentication; it ends every other
/// session and keeps this one.
async fn a_password_change_needs_the_current_password_and_ends_other_sessions<S: ApiStore>(
    s: Server<S>,
) {
    let (alice, me) = signed_in(&s, "alice@example.org").await;
    let other = again(&s, &alice).await;

    let wrong = json!({"current_password": "not my password", "new_password": NEW_PASSWORD});
    let a = me.post("/password", wrong).await;
    assert!(matches!(a.status.as_u16(), 400 | 401), "{a:?}");
    assert_eq!(a.content_type, "application/problem+json", "{a:?}");
    assert!(password_accepted(&s, &alice, PASSWORD).await);
    assert!(!password_accepted(&s, &alice, NEW_PASSWORD).await);
    assert_eq!(other.alive().await, 200);
    // Unknown fields are refused before anything happens.
    let body = json!({"new_password": NEW_PASSWORD, "force": true});
    let a = me.post("/password", body).await;
    a.assert_problem(422, "invalid_body");

    // Without the current password, the sign-in must be recent.
    s.world.clock.advance(Duration::minutes(6));
    let a = me
        .post("/password", json!({"new_password": NEW_PASSWORD}))
        .await;
    a.assert_problem(403, "step_up_required");
    assert_eq!(a.body["step_up"]["max_age_seconds"], 300, "{a:?}");
    assert!(password_accepted(&s, &alice, PASSWORD).await);
    assert_eq!(other.alive().await, 200);

    let right = json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD});
    let a = me.post("/password", right).await;
    assert_eq!(a.status, 204, "{a:?}");
    assert!(password_accepted(&s, &alice, NEW_PASSWORD).await);
    assert!(!password_accepted(&s, &alice, PASSWORD).await);
    other.get("").await.assert_problem(401, "unauthenticated");
    assert_eq!(me.alive().await, 200);
}

/// The tenant's schema: `nickname` users edit, `seats` only administrators.
async fn with_schema<S: ApiStore>(s: &Server<S>) {
    let attribute = |name: &str, kind, user_editable| AttributeDecl {
        name: name.into(),
        kind,
        user_editable,
    };
    let profile = ProfileSchema {
        attributes: vec![
            attribute("nickname", AttributeKind::Text { max_chars: 40 }, true),
            attribute("seats", AttributeKind::Integer { min: 0, max: 100 }, false),
        ],
        ..ProfileSchema::default()
    };
    let policy = TenantPolicy {
        profile,
        ..s.world.tenant.policy.clone()
    };
    let changed = s.world.svc.update_tenant_policy(s.world.tenant.id, policy);
    changed.await.unwrap();
}

/// A user changes their display name and editable attributes; unknown
/// fields (the tier, ...), attributes only administrators set and
/// undeclared ones are refused and change nothing.
async fn a_profile_update_changes_only_editable_fields<S: ApiStore>(s: Server<S>) {
    with_schema(&s).await;
    let (alice, me) = signed_in(&s, "alice@example.org").await;
    let change = json!({"display_name": "Alice A", "attributes": {"nickname": "al"}});
    let a = me.patch("", change).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["display_name"], "Alice A");
    assert_eq!(a.body["attributes"], json!({"nickname": "al"}));
    let before = me.get("").await.body;

    for bad in [
        json!({"tier": "premium"}),
        json!({"display_name": "Mallory", "state": "active"}),
        json!({"email": "mallory@example.org"}),
    ] {
        me.patch("", bad).await.assert_problem(422, "invalid_body");
    }
    for bad in [
        json!({"attributes": {"nickname": "al", "seats": 5}}),
        json!({"display_name": "Mallory", "attributes": {"nickname": "al", "undeclared": 1}}),
        json!({"attributes": {"nickname": 7}}),
        json!({"display_name": "x".repeat(10_000)}),
    ] {
        me.patch("", bad).await.assert_problem(400, "invalid_input");
    }
    assert_eq!(me.get("").await.body, before);
    assert_eq!(s.world.user_by(alice.identifier.as_str()).await.tier, None);

    // `null` clears the display name; absent fields stay.
    let a = me.patch("", json!({"display_name": null})).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.body.get("display_name").is_none(), "{a:?}");
    assert_eq!(a.body["attributes"], json!({"nickname": "al"}));
}

/// The `Set-Cookie` values of an answer.
fn set_cookies(a: &Answer) -> Vec<String> {
    let all = a.headers.get_all("set-cookie").iter();
    all.map(|v| v.to_str().unwrap().to_owned()).collect()
}

/// Deactivation (recent sign-in needed) deletes the account softly, ends
/// every session of it and clears the cookies.
async fn deactivation_ends_every_session_and_clears_cookies<S: ApiStore>(s: Server<S>) {
    let (bob, stale) = signed_in(&s, "bob@example.org").await;
    s.world.clock.advance(Duration::minutes(6));
    let a = stale.post("/deactivate", json!({})).await;
    a.assert_problem(403, "step_up_required");
    let stored = s.world.user_by(bob.identifier.as_str()).await;
    assert_eq!(stored.state.as_str(), "active");

    let (alice, me) = signed_in(&s, "alice@example.org").await;
    let other = again(&s, &alice).await;
    let a = me.post("/deactivate", json!({})).await;
    assert_eq!(a.status, 204, "{a:?}");
    let cleared = set_cookies(&a);
    for name in ["countersign_session", "countersign_csrf"] {
        let gone = |c: &String| c.starts_with(&format!("{name}=;")) && c.contains("Max-Age=0");
        assert!(cleared.iter().any(gone), "{cleared:?}");
    }
    me.get("").await.assert_problem(401, "unauthenticated");
    other.get("").await.assert_problem(401, "unauthenticated");
    let stored = s.world.user_by(alice.identifier.as_str()).await;
    assert_eq!(stored.state.as_str(), "deleted");
    assert!(!password_accepted(&s, &alice, PASSWORD).await);
}

/// The export names the account and its factors but holds no password
/// hash, TOTP secret, recovery code or token.
async fn the_export_holds_no_secret<S: ApiStore>(s: Server<S>) {
    let (alice, me) = signed_in(&s, "alice@example.org").await;
    let b32 = enroll_totp(&me).await;
    let codes = codes_of(&me.post("/factors/recovery-codes", json!({})).await);

    let a = me.get("/export").await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["user"]["id"], alice.id.to_string());
    let factors = a.body["factors"].as_array().unwrap();
    assert_eq!(kinds(factors), ["password", "recovery_codes", "totp"]);
    assert!(
        !a.body["audit_events"].as_array().unwrap().is_empty(),
        "{a:?}"
    );
    assert!(!a.body["sessions"].as_array().unwrap().is_empty(), "{a:?}");

    let text = a.body.to_string();
    let mut secrets = vec![
        b32.clone(),
        b32.to_lowercase(),
        me.token.clone(),
        "$argon2".into(),
    ];
    secrets.extend(codes.iter().cloned());
    secrets.extend(codes.iter().map(|c| c.replace('-', "")));
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "the export holds a secret");
    }
    for key in [
        "\"phc\"",
        "\"hash\"",
        "\"secret\"",
        "\"token_hash\"",
        "\"pending\"",
    ] {
        assert!(!text.contains(key), "the export has a {key} member");
    }
}

/// A passkey stored for `user`: its credential's fields as webauthn-rs
/// serialises them (a made-up public key: it never signs in).
async fn stored_passkey<S: ApiStore>(s: &Server<S>, user: &User, name: &str) -> uuid::Uuid {
    let id = uuid::Uuid::now_v7();
    let zeros = "A".repeat(43);
    let key = json!({"EC_EC2": {"curve": "SECP256R1", "x": zeros, "y": zeros}});
    let credential = json!({
        "kind": "passkey",
        "keys": [{
            "id": id,
            "name": name,
            "passkey": {"cred": {
                "cred_id": "AQIDBA",
                "cred": {"type_": "ES256", "key": key},
                "counter": 0,
                "transports": null,
                "user_verified": true,
                "backup_eligible": false,
                "backup_state": false,
                "registration_policy": "required",
                "extensions": {},
                "attestation": {"data": "None", "metadata": "None"},
                "attestation_format": "none"
            }},
            "created_at": s.world.svc.env().now(),
            "last_used_at": null
        }]
    });
    let credential: FactorCredential = serde_json::from_value(credential).unwrap();
    let (tenant, store) = (s.world.tenant.id, &s.world.store);
    let saved = store.compare_and_save_user_factor(tenant, user.id, None, &credential);
    assert!(saved.await.unwrap());
    id
}

/// Another user's passkey id is "not found" to rename and to delete, and
/// stays; its owner manages it.
async fn another_users_passkey_is_not_found<S: ApiStore>(s: Server<S>) {
    let (_, alice) = signed_in(&s, "alice@example.org").await;
    let (bob, bob_me) = signed_in(&s, "bob@example.org").await;
    let bobs = stored_passkey(&s, &bob, "bob's key").await;
    let path = format!("/factors/passkeys/{bobs}");

    assert_eq!(alice.get("/factors/passkeys").await.body, json!([]));
    alice.delete(&path).await.assert_problem(404, "not_found");
    let a = alice.patch(&path, json!({"name": "mine now"})).await;
    a.assert_problem(404, "not_found");
    let kept = s.world.svc.passkeys(s.world.tenant.id, bob.id).await;
    let kept = kept.unwrap();
    assert_eq!((kept.len(), kept[0].name.as_str()), (1, "bob's key"));
    // Malformed and nil ids are bad input.
    let a = alice.delete("/factors/passkeys/not-a-uuid").await;
    a.assert_problem(400, "invalid_input");
    let nil = format!("/factors/passkeys/{}", uuid::Uuid::nil());
    let a = alice.delete(&nil).await;
    a.assert_problem(400, "invalid_input");

    // Bob lists, renames and deletes it.
    assert_eq!(
        bob_me.get("/factors/passkeys").await.body[0]["id"],
        bobs.to_string()
    );
    assert_eq!(bob_me.factor("passkey").await["count"], 1);
    assert_eq!(
        bob_me.patch(&path, json!({"name": "laptop"})).await.status,
        204
    );
    assert_eq!(
        bob_me.get("/factors/passkeys").await.body[0]["name"],
        "laptop"
    );
    assert_eq!(bob_me.delete(&path).await.status, 204);
    bob_me.delete(&path).await.assert_problem(404, "not_found");
    assert_eq!(bob_me.factor("passkey").await, Value::Null);
}

/// Every account endpoint answers a request without a valid session with
/// a 401 problem, and does nothing.
async fn unauthenticated_calls_are_401_problems<S: ApiStore>(s: Server<S>) {
    let passkey = format!("/factors/passkeys/{}", uuid::Uuid::now_v7());
    let calls = [
        (Method::GET, ""),
        (Method::PATCH, ""),
        (Method::POST, "/password"),
        (Method::POST, "/deactivate"),
        (Method::GET, "/export"),
        (Method::GET, "/identities"),
        (Method::DELETE, "/identities"),
        (Method::GET, "/factors"),
        (Method::POST, "/factors/totp"),
        (Method::DELETE, "/factors/totp"),
        (Method::POST, "/factors/totp/confirm"),
        (Method::POST, "/factors/recovery-codes"),
        (Method::POST, "/factors/email-otp"),
        (Method::POST, "/factors/email-otp/confirm"),
        (Method::GET, "/factors/passkeys"),
        (Method::POST, "/factors/passkeys"),
        (Method::POST, "/factors/passkeys/confirm"),
        (Method::PATCH, passkey.as_str()),
        (Method::DELETE, passkey.as_str()),
        (Method::DELETE, "/factors/recovery_codes"),
    ];
    // A well-formed token of a session that ended.
    let (_, ended) = signed_in(&s, "bob@example.org").await;
    let a = s.post("/v1/logout", json!({}), Some(&ended.token)).await;
    assert_eq!(a.status, 204, "{a:?}");
    let sent = s.world.outbox.messages().len();
    for (method, path) in calls {
        let body = (method != Method::GET).then(|| json!({"name": "k", "code": "123456"}));
        for token in [None, Some(ended.token.as_str())] {
            let path = format!("/v1/me{path}");
            let a = s.send(method.clone(), &path, body.clone(), token).await;
            assert_eq!(a.status, 401, "{method} {path}: {a:?}");
            a.assert_problem(401, "unauthenticated");
        }
    }
    assert_eq!(s.world.outbox.messages().len(), sent);
}

/// The value of cookie `name` among `cookies`, and its whole line.
fn cookie_of(cookies: &[String], name: &str) -> (String, String) {
    let prefix = format!("{name}=");
    let line = cookies.iter().find(|c| c.starts_with(&prefix)).unwrap();
    let (pair, _) = line.split_once(';').unwrap();
    (pair[prefix.len()..].to_owned(), line.clone())
}

/// `PATCH /v1/me` with these cookies and CSRF header.
async fn with_cookies<S: ApiStore>(s: &Server<S>, cookie: &str, csrf: Option<&str>) -> Answer {
    let url = format!("{}/v1/me", s.base);
    let body = json!({"display_name": "Changed"});
    let mut rq = s.http.patch(url).header("cookie", cookie).json(&body);
    if let Some(t) = csrf {
        rq = rq.header("x-csrf-token", t);
    }
    answer(rq.send().await.unwrap()).await
}

/// A browser session (cookies set at sign-in over HTTP) reads freely but
/// changes the account only when the request echoes the CSRF cookie in
/// `x-csrf-token`.
async fn cookie_sessions_need_the_csrf_token_to_change_anything<S: ApiStore>(s: Server<S>) {
    let alice = s.user("alice@example.org").await;
    let enrolled = s.world.enroll(&alice, Enroll::RecoveryCodes).await.unwrap();
    let Enrolled::RecoveryCodes(codes) = enrolled else {
        panic!("recovery codes")
    };
    let flow = password_step(&s, &alice).await;
    let a = second_step(&s, &flow, "recovery_code", &codes[0]).await;
    assert_eq!(a.body["status"], "authenticated", "{a:?}");
    let cookies = set_cookies(&a);
    let (session, session_line) = cookie_of(&cookies, "countersign_session");
    let (csrf, csrf_line) = cookie_of(&cookies, "countersign_csrf");
    assert!(session_line.contains("HttpOnly"), "{session_line}");
    assert!(!csrf_line.contains("HttpOnly"), "{csrf_line}");
    assert!(!csrf.is_empty() && csrf != session);

    let session_only = format!("countersign_session={session}");
    let both = format!("countersign_session={session}; countersign_csrf={csrf}");
    // Reading needs no CSRF token.
    let url = format!("{}/v1/me", s.base);
    let r = s.http.get(url).header("cookie", &session_only).send();
    assert_eq!(answer(r.await.unwrap()).await.status, 200);

    for (cookie, header) in [
        (&session_only, None),
        (&both, None),
        (&both, Some("not-the-token")),
        (&session_only, Some(csrf.as_str())),
    ] {
        let a = with_cookies(&s, cookie, header).await;
        a.assert_problem(403, "csrf");
    }
    let stored = s.world.user_by(alice.identifier.as_str()).await;
    assert_eq!(stored.display_name, None);

    let a = with_cookies(&s, &both, Some(&csrf)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["display_name"], "Changed");
}

/// Enrolling, regenerating and removing factors (and unlinking an
/// identity) need a recent authentication: a stale session gets
/// `step_up_required` and nothing changes; the same calls pass after a
/// step-up over HTTP.
async fn sensitive_operations_need_a_recent_authentication<S: ApiStore>(s: Server<S>) {
    let (_, me) = signed_in(&s, "alice@example.org").await;
    s.world.clock.advance(Duration::minutes(6));
    let before = me.factors().await;
    let unlink = json!({"issuer": "https://idp.example", "subject": "s"});
    for (method, path, body) in [
        (Method::POST, "/factors/totp", Some(json!({}))),
        (Method::POST, "/factors/recovery-codes", Some(json!({}))),
        (Method::DELETE, "/factors/recovery_codes", None),
        (
            Method::POST,
            "/factors/email-otp",
            Some(json!({"address": "alice@example.org"})),
        ),
        (
            Method::POST,
            "/factors/passkeys",
            Some(json!({"name": "laptop"})),
        ),
        (Method::DELETE, "/identities", Some(unlink)),
    ] {
        let a = me.call(method, path, body).await;
        a.assert_problem(403, "step_up_required");
        assert_eq!(a.body["step_up"]["max_age_seconds"], 300, "{a:?}");
    }
    assert_eq!(me.factors().await, before);
    assert!(s.world.outbox.messages().is_empty());

    // A step-up with the password makes the same calls pass.
    let factors = json!({"factors": ["password"]});
    let a = s.post("/v1/step-up", factors, Some(&me.token)).await;
    assert_eq!(a.status, 200, "{a:?}");
    let submit = json!({"flow": a.str("flow"), "factor": "password", "response": PASSWORD});
    let a = s.post("/v1/step-up/submit", submit, Some(&me.token)).await;
    assert_eq!(a.body["status"], "authenticated", "{a:?}");
    codes_of(&me.post("/factors/recovery-codes", json!({})).await);
    let a = me.post("/factors/passkeys", json!({"name": "k"})).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(!a.str("ceremony").is_empty());
    let challenge = &a.body["challenge"]["publicKey"]["challenge"];
    assert!(challenge.is_string(), "{a:?}");
}

/// The kinds of a factor listing.
fn kinds(list: &[Value]) -> Vec<&str> {
    list.iter().map(|f| f["kind"].as_str().unwrap()).collect()
}

/// The factor list names what the caller has; removal by kind answers 404
/// when none is enrolled and refuses the password, passkeys (deleted one
/// by one) and unknown kinds.
async fn factors_are_listed_and_removed_by_kind<S: ApiStore>(s: Server<S>) {
    let (_, me) = signed_in(&s, "alice@example.org").await;
    let listed = me.factors().await;
    assert_eq!(kinds(&listed), ["password", "recovery_codes"]);

    for none in ["totp", "email_otp"] {
        let a = me.delete(&format!("/factors/{none}")).await;
        a.assert_problem(404, "not_found");
    }
    for bad in ["password", "passkey", "oidc_id_token", "bogus"] {
        let a = me.delete(&format!("/factors/{bad}")).await;
        a.assert_problem(400, "invalid_input");
    }
    assert_eq!(me.factors().await, listed);

    enroll_totp(&me).await;
    assert_eq!(me.delete("/factors/totp").await.status, 204);
    assert_eq!(me.factor("totp").await, Value::Null);
    assert_eq!(me.delete("/factors/recovery_codes").await.status, 204);
    let a = me.delete("/factors/recovery_codes").await;
    a.assert_problem(404, "not_found");
    assert_eq!(kinds(&me.factors().await), ["password"]);
}

/// Link `subject` at `issuer` to `user` in the store.
async fn link<S: ApiStore>(s: &Server<S>, user: &User, issuer: &str, subject: &str) {
    let (now, tenant) = (s.world.svc.env().now(), s.world.tenant.id);
    let identity = LinkedIdentity {
        tenant_id: tenant,
        user_id: user.id,
        issuer: issuer.to_owned(),
        subject: subject.to_owned(),
        email: None,
        linked_at: now,
    };
    let (kind, status) = (AuditKind::IdentityLinked, AuditStatus::Success);
    let (env, client) = (s.world.svc.env(), &s.world.client);
    let event = AuditEvent::new(env, now, tenant, Some(user.id), kind, status, client);
    let event = event.unwrap();
    let linked = s.world.store.link_identity(&identity, &event);
    linked.await.unwrap();
}

/// A user lists their own linked identities and unlinks them; another
/// user's link is "not found" and stays.
async fn linked_identities_are_listed_and_unlinked_by_their_owner_only<S: ApiStore>(s: Server<S>) {
    const IDP: &str = "https://idp.example";
    let (alice, me) = signed_in(&s, "alice@example.org").await;
    let bob = s.user("bob@example.org").await;
    link(&s, &alice, IDP, "alice-sub").await;
    link(&s, &bob, IDP, "bob-sub").await;

    let a = me.get("/identities").await;
    assert_eq!(a.status, 200, "{a:?}");
    let list = a.body.as_array().unwrap();
    assert_eq!(list.len(), 1, "{a:?}");
    assert_eq!(list[0]["issuer"], IDP);
    assert_eq!(list[0]["subject"], "alice-sub");
    assert!(list[0]["linked_at"].is_string());

    let unlink = |subject: &str| Some(json!({"issuer": IDP, "subject": subject}));
    let a = me
        .call(Method::DELETE, "/identities", unlink("bob-sub"))
        .await;
    a.assert_problem(404, "not_found");
    let bobs = s
        .world
        .svc
        .linked_identities(s.world.tenant.id, bob.id)
        .await;
    assert_eq!(bobs.unwrap().len(), 1);
    let a = me
        .call(Method::DELETE, "/identities", unlink("alice-sub"))
        .await;
    assert_eq!(a.status, 204, "{a:?}");
    let a = me
        .call(Method::DELETE, "/identities", unlink("alice-sub"))
        .await;
    a.assert_problem(404, "not_found");
    assert_eq!(me.get("/identities").await.body, json!([]));
}

/// Email codes: the address gets a code, a wrong one is refused, the
/// mailed one confirms.
async fn email_codes_are_enrolled_with_the_mailed_code<S: ApiStore>(s: Server<S>) {
    let (_, me) = signed_in(&s, "alice@example.org").await;
    let a = me
        .post("/factors/email-otp", json!({"address": "nope"}))
        .await;
    a.assert_problem(400, "invalid_input");
    let address = json!({"address": "alice@example.org"});
    let a = me.post("/factors/email-otp", address).await;
    assert_eq!(a.status, 202, "{a:?}");
    let mail = s.world.outbox.messages();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].to.as_str(), "alice@example.org");
    let Notice::AddressConfirmation { code, .. } = &mail[0].notice else {
        panic!("not a confirmation: {:?}", mail[0].notice)
    };
    let code = code.expose().to_owned();
    assert_eq!(me.factor("email_otp").await["confirmed"], false);
    let bad = json!({"code": wrong(&code)});
    let a = me.post("/factors/email-otp/confirm", bad).await;
    a.assert_problem(400, "invalid_input");
    let a = me
        .post("/factors/email-otp/confirm", json!({"code": code}))
        .await;
    assert_eq!(a.status, 204, "{a:?}");
    let email = me.factor("email_otp").await;
    assert_eq!(email["confirmed"], true);
    assert_eq!(email["address"], "alice@example.org");
}
