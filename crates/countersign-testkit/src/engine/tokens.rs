//! Access tokens and introspection: signing, key rotation, refusals.

use chrono::Duration;
use countersign_core::jwt::JwtError;
use countersign_core::{
    AccessTokenPolicy, AccountState, Error, LockoutPolicy, RefreshRefusal, SessionPolicy,
    SessionService,
};

use super::{api_tokens, set_sessions};
use crate::ConformanceStore;
use crate::fixtures::{ISSUER, PASSWORD, World, mfa_tenant, sign_in};

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
    assert_eq!(header["typ"], "at+jwt");
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
    // At `exp` the 30 s leeway still accepts it; beyond, it is expired.
    w.clock.advance(Duration::seconds(290));
    w.sessions
        .verify_access_token(&jwt)
        .await
        .expect("within the leeway");
    w.clock.advance(Duration::seconds(29));
    w.sessions
        .verify_access_token(&jwt)
        .await
        .expect("29 s past exp");
    w.clock.advance(Duration::seconds(1));
    assert!(matches!(
        w.sessions.verify_access_token(&jwt).await,
        Err(Error::AccessToken(JwtError::Expired))
    ));
    w.clock.advance(Duration::seconds(41));
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
    // A token of the right key and claims but another `typ` (RFC 9068).
    let header0: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header0["typ"], "at+jwt");
    let mut wrong_typ = header0.clone();
    wrong_typ["typ"] = "JWT".into();
    let id_token = format!(
        "{}.{}.{}",
        b64.encode(wrong_typ.to_string()),
        parts[1],
        parts[2]
    );
    assert_eq!(
        reason(w.sessions.verify_access_token(&id_token).await),
        JwtError::Type
    );
    let header = serde_json::json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "nope"});
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
    // A fresh service: the fixture's caches the tenant's audience (60 s).
    let fresh = SessionService::new(w.store.clone(), w.svc.env().clone(), ISSUER);
    assert_eq!(
        reason(fresh.verify_access_token(&jwt).await),
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
    let jwt = issued.access_token.clone().unwrap();
    w.sessions
        .logout(issued.session_token.expose(), &w.client)
        .await
        .unwrap();
    // Offline verification keeps accepting it until `exp` (the documented
    // window); the live check and introspection do not.
    w.sessions.verify_access_token(&jwt).await.unwrap();
    assert!(matches!(
        w.sessions.verify_access_token_live(&jwt).await,
        Err(Error::AccessToken(JwtError::SessionEnded))
    ));
    for dead in [
        issued.session_token.expose(),
        jwt.as_str(),
        "css_short",
        "garbage",
        "",
    ] {
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

/// The JWT of a session ended by suspension, erasure or a password change
/// introspects inactive, and the live check refuses it.
pub async fn access_tokens_die_with_their_session<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 38).await;
    set_sessions(&w, api_tokens()).await;
    let alice = w.user("alice").await;
    let dead = |jwt: String| {
        let sessions = w.sessions.clone();
        async move {
            let i = sessions.introspect(&jwt).await.unwrap();
            let live = sessions.verify_access_token_live(&jwt).await;
            !i.active && matches!(live, Err(Error::AccessToken(JwtError::SessionEnded)))
        }
    };
    let jwt = |a| {
        let sessions = w.sessions.clone();
        let client = w.client.clone();
        async move {
            sessions
                .issue(&a, &client)
                .await
                .unwrap()
                .access_token
                .unwrap()
        }
    };
    let a = jwt(sign_in(&w, &alice).await).await;
    assert!(w.sessions.introspect(&a).await.unwrap().active);
    w.sessions.verify_access_token_live(&a).await.unwrap();
    w.svc
        .change_password(
            w.tenant.id,
            alice.id,
            PASSWORD,
            "a brand new passphrase here",
            None,
            &w.client,
        )
        .await
        .unwrap();
    assert!(dead(a).await, "password change");
    let bob = w.user("bob").await;
    let b = jwt(sign_in(&w, &bob).await).await;
    w.transition(&bob, AccountState::Suspended).await.unwrap();
    assert!(dead(b).await, "suspension");
    let carol = w.user("carol").await;
    let c = jwt(sign_in(&w, &carol).await).await;
    w.svc
        .erase_user(w.tenant.id, carol.id, &w.client)
        .await
        .unwrap();
    assert!(dead(c).await, "erasure");
}

/// Every tenant-bound call answers a token of another tenant exactly as an
/// unknown token, and leaves the other tenant's session alone.
pub async fn tenant_bound_calls_refuse_other_tenants_tokens<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 39).await;
    set_sessions(&w, api_tokens()).await;
    let mut spec = mfa_tenant(LockoutPolicy::default());
    spec.slug = "bravo".into();
    let b = w.svc.provision_tenant(spec).await.unwrap().id;
    let a = w.tenant.id;
    let alice = w.user("alice").await;
    let issued = w
        .sessions
        .issue(&sign_in(&w, &alice).await, &w.client)
        .await
        .unwrap();
    let session = issued.session_token.expose();
    let jwt = issued.access_token.clone().unwrap();
    let refresh = issued.refresh_token.unwrap();
    let unknown_session = "css_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    // Session tokens.
    assert!(matches!(
        w.sessions.validate_in(b, session).await,
        Err(Error::SessionInvalid)
    ));
    assert_eq!(
        w.sessions.validate_in(a, session).await.unwrap().id,
        issued.session.id
    );
    assert_eq!(
        w.sessions.introspect_in(b, session).await.unwrap(),
        w.sessions.introspect_in(b, unknown_session).await.unwrap()
    );
    assert!(!w.sessions.introspect_in(b, session).await.unwrap().active);
    assert!(w.sessions.introspect_in(a, session).await.unwrap().active);
    assert!(!w.sessions.logout_in(b, session, &w.client).await.unwrap());
    w.sessions.validate(session).await.expect("left alone");
    // Access tokens.
    assert!(matches!(
        w.sessions.verify_access_token_in(b, &jwt).await,
        Err(Error::AccessToken(JwtError::Tenant))
    ));
    assert!(matches!(
        w.sessions.verify_access_token_live_in(b, &jwt).await,
        Err(Error::AccessToken(JwtError::Tenant))
    ));
    w.sessions.verify_access_token_in(a, &jwt).await.unwrap();
    assert!(!w.sessions.introspect_in(b, &jwt).await.unwrap().active);
    assert!(w.sessions.introspect_in(a, &jwt).await.unwrap().active);
    // Refresh tokens: refused as unknown, nothing minted. (Rotation is not
    // tenant-scoped in the store: the presented token is spent and the
    // login it belongs to revoked, as a leaked credential.)
    let next = w
        .sessions
        .refresh_in(a, refresh.expose(), &w.client)
        .await
        .unwrap()
        .refresh_token;
    assert!(matches!(
        w.sessions.refresh_in(b, next.expose(), &w.client).await,
        Err(Error::RefreshRefused(RefreshRefusal::Unknown))
    ));
    assert!(w.sessions.validate(session).await.is_err());
    // Logout in the right tenant works.
    let other = w
        .sessions
        .issue(&sign_in(&w, &alice).await, &w.client)
        .await
        .unwrap();
    let other = other.session_token.expose();
    assert!(w.sessions.logout_in(a, other, &w.client).await.unwrap());
    assert!(w.sessions.validate(other).await.is_err());
}
