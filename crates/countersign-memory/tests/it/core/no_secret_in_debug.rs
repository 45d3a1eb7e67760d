//! No secret reaches `Debug` output: what a caller might log (inputs,
//! enrolment results, issued sessions, refreshes, mail) prints no
//! password, code, token or TOTP secret.

use std::time::Duration;

use countersign_core::{AccessTokenPolicy, Enroll, Enrolled, NewUser, SessionPolicy, TenantPolicy};
use countersign_testkit::fixtures::sign_in;

use super::support::mfa_world;

/// Fails if `text` contains `secret` (and says which).
fn assert_hidden(what: &str, text: &str, secret: &str) {
    assert!(!secret.is_empty());
    assert!(!text.contains(secret), "{what} leaks a secret: {text}");
}

#[tokio::test]
async fn no_secret_reaches_debug_output() {
    let w = mfa_world(91).await;
    // A new user's password.
    let new = NewUser {
        identifier: "dora",
        password: Some("a very secret passphrase"),
        ..NewUser::default()
    };
    assert_hidden("NewUser", &format!("{new:?}"), "a very secret passphrase");
    // A password-history entry's hash.
    let entry = countersign_core::HistoryEntry {
        phc: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        at: w.svc.env().now(),
        keep: 5,
    };
    assert_hidden("HistoryEntry", &format!("{entry:?}"), "aGFzaA");

    let alice = w.user("alice").await;
    // Recovery codes, shown to the user once.
    let Enrolled::RecoveryCodes(codes) = w.enroll(&alice, Enroll::RecoveryCodes).await.unwrap()
    else {
        panic!("recovery codes")
    };
    let shown = format!("{:?}", Enrolled::RecoveryCodes(codes.clone()));
    for c in &codes {
        assert_hidden("Enrolled::RecoveryCodes", &shown, c);
    }
    // The TOTP secret of an enrolment.
    let totp = w.enroll(&alice, Enroll::Totp).await.unwrap();
    let Enrolled::Totp(material) = &totp else {
        panic!("totp")
    };
    assert_hidden(
        "Enrolled::Totp",
        &format!("{totp:?}"),
        &material.secret_base32,
    );
    assert_hidden(
        "TotpEnrollment",
        &format!("{material:?}"),
        &material.secret_base32,
    );

    // Issued sessions and refreshes, with JWTs on.
    let policy = TenantPolicy {
        sessions: SessionPolicy {
            access_tokens: Some(AccessTokenPolicy::new("api", Duration::from_secs(300))),
            ..SessionPolicy::default()
        },
        ..w.tenant.policy.clone()
    };
    w.svc
        .update_tenant_policy(w.tenant.id, policy)
        .await
        .unwrap();
    let auth = sign_in(&w, &alice).await;
    let issued = w.sessions.issue(&auth, &w.client).await.unwrap();
    let text = format!("{issued:?}");
    assert_hidden("IssuedSession", &text, issued.session_token.expose());
    let refresh = issued.refresh_token.as_ref().unwrap();
    assert_hidden("IssuedSession", &text, refresh.expose());
    let jwt = issued.access_token.as_ref().unwrap();
    for part in jwt.split('.') {
        assert_hidden("IssuedSession", &text, part);
    }
    let refreshed = w
        .sessions
        .refresh(refresh.expose(), &w.client)
        .await
        .unwrap();
    let text = format!("{refreshed:?}");
    assert_hidden("Refreshed", &text, refreshed.refresh_token.expose());
    let jwt = refreshed.access_token.as_ref().unwrap();
    for part in jwt.split('.') {
        assert_hidden("Refreshed", &text, part);
    }

    // A mailed code: the message and its notice.
    w.enroll(
        &alice,
        Enroll::EmailOtp {
            address: "alice@example.org",
        },
    )
    .await
    .unwrap();
    let m = w
        .outbox
        .last_to("alice@example.org")
        .expect("a confirmation mail");
    let code = m
        .text
        .split_whitespace()
        .find(|t| t.len() == 6 && t.bytes().all(|b| b.is_ascii_digit()))
        .expect("a code in the text");
    assert_hidden("EmailMessage", &format!("{m:?}"), code);
    assert_hidden("Notice", &format!("{:?}", m.notice), code);
}
