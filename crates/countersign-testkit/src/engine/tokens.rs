//! Access tokens and introspection: signing, key rotation, refusals.

use chrono::Duration;
use countersign_core::jwt::JwtError;
use countersign_core::{AccessTokenPolicy, Error, SessionPolicy, SessionService};

use super::{api_tokens, set_sessions};
use crate::ConformanceStore;
use crate::fixtures::{ISSUER, World, sign_in};

/// Access tokens are EdDSA JWTs with standard claims; after a key rotation
/// the old key verifies until its tokens expire, then leaves the JWKS.
pub async fn access_tokens_verify_and_keys_rotate_with_overlap<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 33).await;
    set_sessions(&w, api_tokens()).await;
    let alice = w.user("alice").await;
    let auth = sign_in(&w, &alice).await;
    let issued = w.sessions.issue(&auth, &w.client).await.unwrap();
    let jwt = issued.access_token.unwrap();
    let header = jwt.split('.').next().unwrap();
    use base64::Engine;
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "EdDSA");
    let old_kid = header["kid"].as_str().unwrap().to_owned();
    let c = w.sessions.verify_access_token(&jwt).await.unwrap();
    assert_eq!(
        (c.iss.as_str(), c.aud.as_str(), c.sub.clone(), c.tid.clone()),
        (ISSUER, "api", alice.id.to_string(), w.tenant.id.to_string())
    );
    assert_eq!(c.sid, issued.session.id.to_string());
    assert_eq!(c.amr, ["otp", "pwd", "mfa"]);
    assert_eq!(c.acr, "mfa");
    assert_eq!(c.exp - c.iat, 300);
    assert_eq!(w.sessions.jwks(w.tenant.id).await.unwrap().keys.len(), 1);

    w.clock.advance(Duration::seconds(10));
    let new_kid = w.sessions.rotate_signing_key(w.tenant.id).await.unwrap();
    assert_ne!(new_kid, old_kid);
    let jwks = w.sessions.jwks(w.tenant.id).await.unwrap();
    assert_eq!(
        jwks.keys.iter().map(|k| k.kid.clone()).collect::<Vec<_>>(),
        [old_kid.clone(), new_kid.clone()]
    );
    assert!(
        jwks.keys
            .iter()
            .all(|k| k.kty == "OKP" && k.crv == "Ed25519" && k.alg == "EdDSA")
    );
    w.sessions
        .verify_access_token(&jwt)
        .await
        .expect("the retired key still verifies");
    let refreshed = w
        .sessions
        .refresh(issued.refresh_token.unwrap().expose(), &w.client)
        .await
        .unwrap();
    let fresh = refreshed.access_token.unwrap();
    assert!(
        fresh.split('.').next() != jwt.split('.').next(),
        "signed with the new kid"
    );
    w.clock.advance(Duration::seconds(290));
    assert!(matches!(
        w.sessions.verify_access_token(&jwt).await,
        Err(Error::AccessToken(JwtError::Expired))
    ));
    w.clock.advance(Duration::seconds(71));
    let jwks = w.sessions.jwks(w.tenant.id).await.unwrap();
    assert_eq!(jwks.keys.len(), 1, "the old key's overlap is over");
    assert_eq!(w.sessions.cleanup().await.unwrap().keys, 1);
    // Private keys never show in Debug output.
    let keys = format!(
        "{:?}",
        countersign_core::KeyStore::signing_keys(&w.store, w.tenant.id)
            .await
            .unwrap()
    );
    assert!(keys.contains("<redacted>"));
}

/// Tampered, unsigned, foreign and malformed access tokens are refused
/// with a typed reason.
pub async fn bad_access_tokens_are_refused_with_a_reason<S: ConformanceStore>(s: S) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let w = World::mfa(s.clone(), 34).await;
    set_sessions(&w, api_tokens()).await;
    let alice = w.user("alice").await;
    let auth = sign_in(&w, &alice).await;
    let jwt = w
        .sessions
        .issue(&auth, &w.client)
        .await
        .unwrap()
        .access_token
        .unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    let reason = |r: Result<countersign_core::jwt::AccessClaims, Error>| match r {
        Err(Error::AccessToken(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let none = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    assert_eq!(
        reason(w.sessions.verify_access_token(&none).await),
        JwtError::Algorithm
    );
    let mut sig = b64.decode(parts[2]).unwrap();
    sig[0] ^= 1;
    let tampered = format!("{}.{}.{}", parts[0], parts[1], b64.encode(&sig));
    assert_eq!(
        reason(w.sessions.verify_access_token(&tampered).await),
        JwtError::Signature
    );
    let mut claims: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = serde_json::Value::String("someone-else".into());
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(claims.to_string()),
        parts[2]
    );
    assert_eq!(
        reason(w.sessions.verify_access_token(&forged).await),
        JwtError::Signature
    );
    let header = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": "nope"});
    let unknown = format!(
        "{}.{}.{}",
        b64.encode(header.to_string()),
        parts[1],
        parts[2]
    );
    assert_eq!(
        reason(w.sessions.verify_access_token(&unknown).await),
        JwtError::UnknownKey
    );
    let other_issuer =
        SessionService::new(w.store.clone(), w.svc.env().clone(), "https://evil.example");
    assert_eq!(
        reason(other_issuer.verify_access_token(&jwt).await),
        JwtError::Issuer
    );
    set_sessions(
        &w,
        SessionPolicy {
            access_tokens: Some(AccessTokenPolicy {
                audience: "other".into(),
                ttl: std::time::Duration::from_secs(300),
            }),
            ..SessionPolicy::default()
        },
    )
    .await;
    assert_eq!(
        reason(w.sessions.verify_access_token(&jwt).await),
        JwtError::Audience
    );
    for garbage in ["", "a.b.c", "not a jwt", &"x".repeat(100_000)] {
        assert_eq!(
            reason(w.sessions.verify_access_token(garbage).await),
            JwtError::Malformed,
            "{garbage:.20}"
        );
    }
}

/// Introspection answers RFC 7662-style for sessions and access tokens,
/// and says only `active: false` for anything invalid.
pub async fn introspection_answers_for_both_token_kinds<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 36).await;
    set_sessions(&w, api_tokens()).await;
    let alice = w.user("alice").await;
    let auth = sign_in(&w, &alice).await;
    let issued = w.sessions.issue(&auth, &w.client).await.unwrap();
    for token in [
        issued.session_token.expose().to_owned(),
        issued.access_token.clone().unwrap(),
    ] {
        let i = w.sessions.introspect(&token).await.unwrap();
        assert!(i.active);
        assert_eq!(
            (i.tenant_id, i.sub, i.sid),
            (Some(w.tenant.id), Some(alice.id), Some(issued.session.id))
        );
        assert_eq!(i.acr.as_deref(), Some("mfa"));
        assert!(i.amr.contains(&"pwd".to_owned()));
        assert_eq!(i.auth_time, Some(auth.record().at.timestamp()));
    }
    w.sessions
        .logout(issued.session_token.expose(), &w.client)
        .await
        .unwrap();
    for dead in [issued.session_token.expose(), "css_short", "garbage", ""] {
        let i = w.sessions.introspect(dead).await.unwrap();
        assert!(
            !i.active && i.sub.is_none() && i.tenant_id.is_none(),
            "{dead:.12}"
        );
        assert_eq!(
            serde_json::to_value(&i).unwrap(),
            serde_json::json!({"active": false})
        );
    }
}
