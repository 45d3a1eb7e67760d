//! End-to-end flows over real HTTP, on every backend: a newcomer's whole
//! path from registration to an MFA-protected session and its end.

use chrono::Duration;

use countersign_axum::ApiStore;
use countersign_core::factor::{TotpCredential, totp_code};
use countersign_core::{
    AuthMethod, FactorKind, FactorSettings, FactorStep, NewTenant, PasswordSettings,
    RecoveryCodeSettings, TotpAlgorithm, TotpSettings,
};
use serde_json::{Value, json};

use crate::harness::Server;

crate::on_every_backend!(
    register_verify_mfa_login_refresh_reuse_and_logout,
    a_session_is_read_and_ended_over_http,
    the_per_account_limit_trips_and_recovers,
    the_per_ip_limit_trips_and_recovers,
);

/// A tenant like the server's bootstrap one: `mfa` (password, then TOTP
/// or a recovery code) first, so an account with TOTP must use it, then
/// `password` alone for accounts without a second factor.
async fn shop<S: ApiStore>(s: &Server<S>) -> String {
    let spec = NewTenant::new("shop", "Shop")
        .adopt(FactorSettings::Password(PasswordSettings::default()))
        .adopt(FactorSettings::Totp(TotpSettings {
            issuer: "Shop".into(),
            ..TotpSettings::default()
        }))
        .adopt(FactorSettings::RecoveryCodes(
            RecoveryCodeSettings::default(),
        ))
        .with_method(
            AuthMethod::new(
                "mfa",
                vec![
                    FactorStep::Required(FactorKind::Password),
                    FactorStep::AnyOf(vec![FactorKind::Totp, FactorKind::RecoveryCodes]),
                ],
            )
            .unwrap(),
        )
        .with_method(AuthMethod::sequence("password", &[FactorKind::Password]).unwrap());
    s.world.svc.provision_tenant(spec).await.unwrap();
    "/v1/tenants/shop".to_owned()
}

/// The 8-digit code in the newest mail to `to`.
fn code_in_mail<S: ApiStore>(s: &Server<S>, to: &str) -> String {
    let mail = s.world.outbox.last_to(to).expect("a mail");
    let text = mail.text.clone();
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 8)
        .unwrap_or_else(|| panic!("no code in {text:?}"))
        .to_owned()
}

/// The current TOTP code for a base32 secret at the server's clock.
fn totp_now<S: ApiStore>(s: &Server<S>, base32: &str) -> String {
    let secret = totp_rs::Secret::try_from_base32(base32)
        .unwrap()
        .as_bytes()
        .to_vec();
    let app = TotpCredential {
        secret: secret.into(),
        digits: 6,
        step_secs: 30,
        algorithm: TotpAlgorithm::Sha1,
        last_step: None,
        confirmed: true,
        created_at: s.world.svc.env().now(),
    };
    totp_code(&app, s.world.svc.env().now().timestamp() as u64).unwrap()
}

/// Submit one factor to a flow.
async fn submit<S: ApiStore>(
    s: &Server<S>,
    t: &str,
    flow: &str,
    factor: &str,
    response: &str,
) -> Value {
    let a = s
        .post(
            &format!("{t}/login/submit"),
            json!({"flow": flow, "factor": factor, "response": response}),
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    a.body
}

async fn register_verify_mfa_login_refresh_reuse_and_logout<S: ApiStore>(s: Server<S>) {
    let t = shop(&s).await;
    let email = "newbie@example.org";
    let password = "a much longer passphrase 42";

    // Register: a code goes to the address; the account is pending.
    let a = s
        .post(
            &format!("{t}/register"),
            json!({"email": email, "password": password}),
            None,
        )
        .await;
    assert_eq!(a.status, 202, "{a:?}");
    let code = code_in_mail(&s, email);
    // The account cannot sign in before the address is verified.
    let a = s
        .post(&format!("{t}/login"), json!({"identifier": email}), None)
        .await;
    let flow = a.str("flow");
    let body = submit(&s, &t, &flow, "password", password).await;
    assert_ne!(body["status"], "authenticated", "{body}");

    // Verify with the mailed code: active.
    let a = s
        .post(
            &format!("{t}/register/verify"),
            json!({"email": email, "code": code}),
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["state"], "active");

    // Sign in with the password alone (no second factor yet).
    let a = s
        .post(&format!("{t}/login"), json!({"identifier": email}), None)
        .await;
    assert_eq!(a.body["accepts"], json!(["password"]), "{a:?}");
    let body = submit(&s, &t, &a.str("flow"), "password", password).await;
    assert_eq!(body["status"], "authenticated", "{body}");
    let first = body["session"]["session_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Enrol TOTP with that session.
    let a = s.post("/v1/me/factors/totp", json!({}), Some(&first)).await;
    assert_eq!(a.status, 200, "{a:?}");
    let secret = a.str("secret_base32");
    assert!(a.str("otpauth_uri").starts_with("otpauth://totp/"));
    assert!(a.str("qr_svg").contains("<svg"));
    let a = s
        .post(
            "/v1/me/factors/totp/confirm",
            json!({"code": totp_now(&s, &secret)}),
            Some(&first),
        )
        .await;
    assert_eq!(a.status, 204, "{a:?}");
    assert_eq!(
        s.post("/v1/logout", json!({}), Some(&first)).await.status,
        204
    );

    // Now the password alone is not enough: the flow asks for TOTP.
    s.world.clock.advance(Duration::seconds(30));
    let a = s
        .post(&format!("{t}/login"), json!({"identifier": email}), None)
        .await;
    let flow = a.str("flow");
    let body = submit(&s, &t, &flow, "password", password).await;
    assert_eq!(body["status"], "awaiting_factor", "{body}");
    assert!(
        body["accepts"].as_array().unwrap().contains(&json!("totp")),
        "{body}"
    );
    let body = submit(&s, &t, &flow, "totp", &totp_now(&s, &secret)).await;
    assert_eq!(body["status"], "authenticated", "{body}");
    let session = body["session"]["session_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r1 = body["session"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = s.get("/v1/session", Some(&session)).await;
    assert_eq!(a.body["factors"], json!(["password", "totp"]), "{a:?}");

    // Refresh rotates; presenting the spent token again is reuse: the
    // family is revoked, so the rotated token dies too.
    let a = s
        .post(
            &format!("{t}/token/refresh"),
            json!({"refresh_token": r1}),
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    let r2 = a.str("refresh_token");
    assert_ne!(r1, r2);
    s.post(
        &format!("{t}/token/refresh"),
        json!({"refresh_token": r1}),
        None,
    )
    .await
    .assert_problem(401, "unauthenticated");
    s.post(
        &format!("{t}/token/refresh"),
        json!({"refresh_token": r2}),
        None,
    )
    .await
    .assert_problem(401, "unauthenticated");

    // Reuse means the login is compromised: its session ended with it.
    s.get("/v1/session", Some(&session))
        .await
        .assert_problem(401, "unauthenticated");

    // A new MFA login, its password step in one call; logout ends it.
    s.world.clock.advance(Duration::seconds(30));
    let a = s
        .post(
            &format!("{t}/login/password"),
            json!({"identifier": email, "password": password}),
            None,
        )
        .await;
    assert_eq!(a.body["status"], "awaiting_factor", "{a:?}");
    let flow = a.str("flow");
    let body = submit(&s, &t, &flow, "totp", &totp_now(&s, &secret)).await;
    assert_eq!(body["status"], "authenticated", "{body}");
    let session = body["session"]["session_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.get("/v1/session", Some(&session)).await.status, 200);
    let a = s.post("/v1/logout", json!({}), Some(&session)).await;
    assert_eq!(a.status, 204, "{a:?}");
    s.get("/v1/session", Some(&session))
        .await
        .assert_problem(401, "unauthenticated");

    // No secret of the whole run reached a log line (every level, every
    // crate, this process: server and client).
    let logs = crate::harness::logs();
    assert!(logs.contains("sign-in step"), "the log captured the run");
    for secret in [password, &code, &first, &session, &r1, &r2, &secret] {
        assert!(!logs.contains(secret), "a secret in the log: {secret}");
    }
}

async fn a_session_is_read_and_ended_over_http<S: ApiStore>(s: Server<S>) {
    let user = s.user("alice@example.org").await;
    let token = s.session_for(&user).await;
    let a = s.get("/v1/session", Some(&token)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["user_id"], user.id.to_string());
    let a = s.post("/v1/logout", json!({}), Some(&token)).await;
    assert_eq!(a.status, 204, "{a:?}");
    s.get("/v1/session", Some(&token))
        .await
        .assert_problem(401, "unauthenticated");
}

async fn the_per_account_limit_trips_and_recovers<S: ApiStore>(s: Server<S>) {
    let begin = |who: &'static str| {
        let s = &s;
        async move {
            s.post(&s.t("/login"), json!({"identifier": who}), None)
                .await
        }
    };
    // The default: 10 a minute per account, whatever the case or spaces.
    for i in 0..10 {
        let who = if i % 2 == 0 {
            "bob@example.org"
        } else {
            " BOB@example.org"
        };
        assert_eq!(begin(who).await.status, 200, "attempt {i}");
    }
    let a = begin("bob@example.org").await;
    a.assert_problem(429, "rate_limited");
    let retry: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(a.body["retry_after"], retry);
    // Another account is not limited by bob's.
    assert_eq!(begin("carol@example.org").await.status, 200);
    // The window ends: bob may try again.
    s.world.clock.advance(Duration::seconds(60));
    assert_eq!(begin("bob@example.org").await.status, 200);
}

async fn the_per_ip_limit_trips_and_recovers<S: ApiStore>(s: Server<S>) {
    // The default: 60 a minute per client address, across accounts.
    for i in 0..60 {
        let a = s
            .post(
                &s.t("/password/forgot"),
                json!({"identifier": format!("user{i}@example.org")}),
                None,
            )
            .await;
        assert_eq!(a.status, 202, "attempt {i}: {a:?}");
    }
    let a = s
        .post(
            &s.t("/login"),
            json!({"identifier": "fresh@example.org"}),
            None,
        )
        .await;
    a.assert_problem(429, "rate_limited");
    s.world.clock.advance(Duration::seconds(61));
    let a = s
        .post(
            &s.t("/login"),
            json!({"identifier": "fresh@example.org"}),
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
}
