//! Access tokens and introspection: signing, key rotation, refusals.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Duration;
use countersign_core::jwt::{JwkKey, JwtError};
use countersign_core::{
    AccessTokenClaims, AccessTokenPolicy, AccountState, Error, LockoutPolicy, RbacChange, RbacKind,
    RbacName, RefreshRefusal, RoleAssignment, SessionPolicy, SessionService, SigningAlgorithm,
};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::{api_tokens, set_sessions};
use crate::ConformanceStore;
use crate::fixtures::{ISSUER, PASSWORD, World, mfa_tenant, sign_in};

/// [`api_tokens`] signed with `algorithm`.
fn api_tokens_signed_with(algorithm: SigningAlgorithm) -> SessionPolicy {
    let mut policy = api_tokens();
    if let Some(a) = &mut policy.access_tokens {
        a.algorithm = algorithm;
    }
    policy
}

/// A token's JOSE header or claims, as JSON.
fn jwt_part(token: &str, i: usize) -> serde_json::Value {
    let part = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Verify `token` as a gateway would that knows nothing of countersign but
/// the tenant's published JWKS `document` (JSON text), the issuer and the
/// audience: jsonwebtoken's own JWK parsing picks the key by `kid`, takes
/// its algorithm from the JWK's `alg` (the token's `alg` must match), and
/// checks the signature, `iss` and `aud`; `exp` is checked against `now`
/// (unix seconds: the fixture's clock, not the wall clock). The claims, or
/// why not.
fn verify_with_published_jwks(
    document: &str,
    token: &str,
    now: i64,
) -> Result<serde_json::Value, String> {
    let set: JwkSet = serde_json::from_str(document).map_err(|e| format!("document: {e}"))?;
    let header = jsonwebtoken::decode_header(token).map_err(|e| format!("header: {e}"))?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = set.find(&kid).ok_or("kid not published")?;
    let alg: Algorithm = jwk
        .common
        .key_algorithm
        .ok_or("the published key has no alg")?
        .to_string()
        .parse()
        .map_err(|e| format!("published alg: {e}"))?;
    if header.alg != alg {
        return Err(format!("token alg {:?}, published {alg:?}", header.alg));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("jwk: {e}"))?;
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&["api"]);
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .map_err(|e| format!("decode: {e}"))?
        .claims;
    match claims["exp"].as_i64() {
        Some(exp) if now < exp => Ok(claims),
        _ => Err("expired".into()),
    }
}

/// The tenant's JWKS as it would be published: its JSON text.
async fn published_jwks<S: ConformanceStore>(w: &World<S>) -> String {
    serde_json::to_string(&w.sessions.jwks(w.tenant.id).await.unwrap()).unwrap()
}

/// For each algorithm (EdDSA, ES256, RS256), an access token issued through
/// the services verifies with nothing but the tenant's published JWKS
/// document, parsed by jsonwebtoken; within each algorithm a rotation
/// keeps the previous key published and its tokens verifying; at the end
/// one document verifies every token of every algorithm still in its
/// overlap.
pub async fn each_algorithm_verifies_with_nothing_but_the_published_jwks<S: ConformanceStore>(
    s: S,
) {
    let w = World::mfa(s.clone(), 40).await;
    let alice = w.user("alice").await;
    let now = || w.svc.env().now().timestamp();
    let mut tokens = Vec::new();
    for alg in SigningAlgorithm::ALL {
        set_sessions(&w, api_tokens_signed_with(alg)).await;
        let first = w
            .sessions
            .issue(&sign_in(&w, &alice).await, &w.client)
            .await
            .unwrap()
            .access_token
            .unwrap();
        assert_eq!(jwt_part(&first, 0)["alg"], alg.as_str());
        let claims = verify_with_published_jwks(&published_jwks(&w).await, &first, now())
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(claims["sub"], alice.id.to_string());
        assert_eq!(claims["tid"], w.tenant.id.to_string());
        // A rotation within the algorithm: a new key of it signs, the
        // previous one stays published, and both tokens verify by the
        // document alone.
        w.clock.advance(Duration::seconds(1));
        let kid = w.sessions.rotate_signing_key(w.tenant.id).await.unwrap();
        let second = w
            .sessions
            .issue(&sign_in(&w, &alice).await, &w.client)
            .await
            .unwrap()
            .access_token
            .unwrap();
        let head = jwt_part(&second, 0);
        assert_eq!(
            (head["alg"].as_str(), head["kid"].as_str()),
            (Some(alg.as_str()), Some(kid.as_str()))
        );
        let document = published_jwks(&w).await;
        for token in [&first, &second] {
            verify_with_published_jwks(&document, token, now())
                .unwrap_or_else(|e| panic!("{alg} after rotation: {e}"));
        }
        tokens.push(first);
        tokens.push(second);
    }
    let document = published_jwks(&w).await;
    let jwks: serde_json::Value = serde_json::from_str(&document).unwrap();
    let published: Vec<(&str, &str)> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kty"].as_str().unwrap(), k["alg"].as_str().unwrap()))
        .collect();
    assert_eq!(
        published,
        [
            ("OKP", "EdDSA"),
            ("OKP", "EdDSA"),
            ("EC", "ES256"),
            ("EC", "ES256"),
            ("RSA", "RS256"),
            ("RSA", "RS256"),
        ]
    );
    for token in &tokens {
        verify_with_published_jwks(&document, token, now()).unwrap();
        w.sessions.verify_access_token(token).await.unwrap();
    }
}

/// A tenant moving from EdDSA to RS256: its next token rotates to an RS256
/// key; the EdDSA key stays in the JWKS, and its tokens verify (by the
/// service and by the JWKS alone) until they expire; at the key's
/// `verify_until` it leaves the JWKS, and cleanup removes it.
pub async fn a_change_of_algorithm_rotates_with_overlap<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 41).await;
    set_sessions(&w, api_tokens()).await;
    let alice = w.user("alice").await;
    let now = || w.svc.env().now().timestamp();
    let old = w
        .sessions
        .issue(&sign_in(&w, &alice).await, &w.client)
        .await
        .unwrap()
        .access_token
        .unwrap();
    let old_kid = jwt_part(&old, 0)["kid"].as_str().unwrap().to_owned();
    assert_eq!(jwt_part(&old, 0)["alg"], "EdDSA");

    w.clock.advance(Duration::seconds(10));
    set_sessions(&w, api_tokens_signed_with(SigningAlgorithm::Rs256)).await;
    // The policy change alone publishes nothing new: the next token rotates.
    assert_eq!(w.sessions.jwks(w.tenant.id).await.unwrap().keys.len(), 1);
    let issued = w
        .sessions
        .issue(&sign_in(&w, &alice).await, &w.client)
        .await
        .unwrap();
    let new = issued.access_token.unwrap();
    let new_head = jwt_part(&new, 0);
    assert_eq!(new_head["alg"], "RS256");
    let new_kid = new_head["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    let jwks = w.sessions.jwks(w.tenant.id).await.unwrap();
    assert_eq!(
        jwks.keys
            .iter()
            .map(|k| (k.kid.as_str(), k.alg.as_str()))
            .collect::<Vec<_>>(),
        [(old_kid.as_str(), "EdDSA"), (new_kid.as_str(), "RS256")]
    );
    let document = published_jwks(&w).await;
    for token in [&old, &new] {
        verify_with_published_jwks(&document, token, now()).unwrap();
        w.sessions.verify_access_token(token).await.unwrap();
    }
    // A refresh stays on the new key: one rotation, not one per token.
    let refreshed = w
        .sessions
        .refresh(issued.refresh_token.unwrap().expose(), &w.client)
        .await
        .unwrap()
        .access_token
        .unwrap();
    assert_eq!(jwt_part(&refreshed, 0)["kid"], new_kid.as_str());

    let keys = w.store.signing_keys(w.tenant.id).await.unwrap();
    let (retired, active) = (&keys[0], &keys[1]);
    assert_eq!(
        (retired.algorithm, active.algorithm),
        (SigningAlgorithm::EdDsa, SigningAlgorithm::Rs256)
    );
    assert!(format!("{keys:?}").contains("<redacted>"));
    // Token lifetime (300 s) plus a minute, from the rotation.
    let until = retired.verify_until.unwrap();
    assert_eq!(until, active.created_at + Duration::seconds(360));
    // The old token verifies to its `exp` (+30 s leeway), then expires.
    w.clock.advance(Duration::seconds(300 - 10 + 29));
    w.sessions.verify_access_token(&old).await.unwrap();
    w.clock.advance(Duration::seconds(1));
    assert!(matches!(
        w.sessions.verify_access_token(&old).await,
        Err(Error::AccessToken(JwtError::Expired))
    ));
    // The old key stays published until `verify_until`, not a second more.
    w.clock.set(until - Duration::seconds(1));
    assert_eq!(w.sessions.jwks(w.tenant.id).await.unwrap().keys.len(), 2);
    w.clock.set(until);
    let jwks = w.sessions.jwks(w.tenant.id).await.unwrap();
    assert_eq!(
        jwks.keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
        [new_kid.as_str()]
    );
    assert_eq!(w.sessions.cleanup().await.unwrap().keys, 1);
    // RS256 tokens minted now verify, by the service and by the document.
    let later = w
        .sessions
        .issue(&sign_in(&w, &alice).await, &w.client)
        .await
        .unwrap()
        .access_token
        .unwrap();
    verify_with_published_jwks(&published_jwks(&w).await, &later, now()).unwrap();
    w.sessions.verify_access_token(&later).await.unwrap();
}

/// Access tokens carry the tenant's slug and the user's roles in the
/// configured service only when the tenant's policy asks; roles are those
/// of that service alone, read at each mint (a refresh sees a change).
pub async fn access_tokens_carry_the_claims_the_tenant_configures<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 42).await;
    let alice = w.user("alice").await;
    let bob = w.user("bob").await;
    let name = |s: &str| RbacName::new(s).unwrap();
    let assign = |role: &str, service: &str| {
        RbacChange::Assign(RoleAssignment {
            user: alice.id,
            role: name(role),
            service: name(service),
        })
    };
    let mut changes = Vec::new();
    for service in ["docs", "billing"] {
        changes.push(RbacChange::Create {
            kind: RbacKind::Service,
            name: name(service),
        });
    }
    for role in ["viewer", "editor", "admin"] {
        changes.push(RbacChange::Create {
            kind: RbacKind::Role,
            name: name(role),
        });
    }
    changes.push(assign("viewer", "docs"));
    changes.push(assign("editor", "docs"));
    changes.push(assign("admin", "billing"));
    for change in &changes {
        w.store
            .apply_rbac_change(w.tenant.id, change, None)
            .await
            .unwrap();
    }
    let mut policy = api_tokens();
    if let Some(a) = &mut policy.access_tokens {
        a.claims = AccessTokenClaims {
            tenant: true,
            roles_in: Some(name("docs")),
            tier: false,
        };
    }
    set_sessions(&w, policy).await;
    let issued = w
        .sessions
        .issue(&sign_in(&w, &alice).await, &w.client)
        .await
        .unwrap();
    let c = w
        .sessions
        .verify_access_token(issued.access_token.as_ref().unwrap())
        .await
        .unwrap();
    assert_eq!(c.tenant.as_deref(), Some("acme"));
    let mut roles = c.roles.unwrap();
    roles.sort();
    assert_eq!(roles, ["editor", "viewer"], "docs roles only");
    let b = w
        .sessions
        .issue(&sign_in(&w, &bob).await, &w.client)
        .await
        .unwrap()
        .access_token
        .unwrap();
    let payload = jwt_part(&b, 1);
    assert_eq!(
        payload["roles"],
        serde_json::json!([]),
        "no roles: an empty list"
    );
    assert_eq!(payload["tenant"], "acme");

    w.store
        .apply_rbac_change(
            w.tenant.id,
            &RbacChange::Unassign(RoleAssignment {
                user: alice.id,
                role: name("viewer"),
                service: name("docs"),
            }),
            None,
        )
        .await
        .unwrap();
    let refreshed = w
        .sessions
        .refresh(issued.refresh_token.unwrap().expose(), &w.client)
        .await
        .unwrap()
        .access_token
        .unwrap();
    let c = w.sessions.verify_access_token(&refreshed).await.unwrap();
    assert_eq!(c.roles.unwrap(), ["editor"]);

    set_sessions(&w, api_tokens()).await;
    let plain = w
        .sessions
        .issue(&sign_in(&w, &alice).await, &w.client)
        .await
        .unwrap()
        .access_token
        .unwrap();
    let payload = jwt_part(&plain, 1);
    assert!(
        payload.get("tenant").is_none() && payload.get("roles").is_none(),
        "{payload}"
    );
    let c = w.sessions.verify_access_token(&plain).await.unwrap();
    assert_eq!((c.tenant, c.roles), (None, None));
}

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
            .all(|k| k.alg == "EdDSA"
                && matches!(&k.key, JwkKey::Okp { crv, .. } if crv == "Ed25519"))
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
            access_tokens: Some(AccessTokenPolicy::new(
                "other",
                std::time::Duration::from_secs(300),
            )),
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
    // Refresh tokens: refused as unknown, nothing minted, nothing changed:
    // the token still rotates in its own tenant, the session lives on.
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
    w.sessions.validate(session).await.expect("left alone");
    let after = w
        .sessions
        .refresh_in(a, next.expose(), &w.client)
        .await
        .expect("still the current token");
    // Whatever a token of another tenant is, it is unknown here.
    assert!(matches!(
        w.sessions.refresh_in(b, next.expose(), &w.client).await,
        Err(Error::RefreshRefused(RefreshRefusal::Unknown))
    ));
    w.sessions
        .validate(session)
        .await
        .expect("reuse elsewhere is no reuse");
    w.sessions
        .refresh_in(a, after.refresh_token.expose(), &w.client)
        .await
        .unwrap();
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
