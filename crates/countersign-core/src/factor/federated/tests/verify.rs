//! What a token must be to verify, one refusal per check.

use super::*;
use crate::error::{Error, ErrorKind};

/// Verify `token` (nonce expected) with a verifier holding RSA key 0 as
/// `k1` and the P-256 key as `e1`.
async fn verify(token: &str) -> Result<VerifiedIdToken, IdTokenError> {
    let fetch = FakeFetch::google(&[rsa_jwk(0, "k1"), es_jwk("e1")]);
    google_verifier(&fetch)
        .verify(token, Some("n-0S6_WzA2Mj"), now())
        .await
}

#[tokio::test]
async fn accepts_a_google_token_with_either_iss_spelling() {
    for iss in [GOOGLE_ISSUER, "accounts.google.com"] {
        let token = sign_rs(0, "k1", &with("iss", json!(iss)));
        let v = verify(&token).await.unwrap();
        assert_eq!(v.issuer, GOOGLE_ISSUER, "canonical issuer for {iss}");
        assert_eq!(v.subject, "110169484474386276334");
        assert_eq!(v.email.as_ref().unwrap().as_str(), "alice@example.com");
        assert!(v.email_verified);
        assert_eq!(v.name.as_deref(), Some("Alice Example"));
        assert_eq!(v.issued_at, now() - secs(10));
        assert_eq!(v.expires_at, now() + secs(3590));
    }
}

#[tokio::test]
async fn accepts_an_es256_token() {
    let v = verify(&sign_es("e1", &claims())).await.unwrap();
    assert_eq!(v.subject, "110169484474386276334");
}

#[tokio::test]
async fn accepts_aud_as_an_array_with_a_matching_azp() {
    let mut c = with("aud", json!([CLIENT, "other-client"]));
    c["azp"] = json!(CLIENT);
    verify(&sign_rs(0, "k1", &c)).await.unwrap();
    // One audience in an array needs no azp.
    verify(&sign_rs(0, "k1", &with("aud", json!([CLIENT]))))
        .await
        .unwrap();
}

#[tokio::test]
async fn accepts_email_verified_as_the_string_true() {
    let v = verify(&sign_rs(0, "k1", &with("email_verified", json!("true"))))
        .await
        .unwrap();
    assert!(v.email_verified);
}

#[tokio::test]
async fn accepts_a_token_without_email_or_nonce_when_none_is_expected() {
    let mut c = with("email", Value::Null);
    c.as_object_mut().unwrap().remove("email_verified");
    c.as_object_mut().unwrap().remove("nonce");
    let fetch = FakeFetch::google(&[rsa_jwk(0, "k1")]);
    let v = google_verifier(&fetch)
        .verify(&sign_rs(0, "k1", &c), None, now())
        .await
        .unwrap();
    assert_eq!(v.email, None);
    assert!(!v.email_verified);
}

#[tokio::test]
async fn accepts_times_within_the_skew() {
    let t = now().timestamp();
    // Expired 59 s ago, issued 59 s ahead: inside the 60 s skew.
    let mut c = with("exp", json!(t - 59));
    c["iat"] = json!(t - 600 - 59);
    verify(&sign_rs(0, "k1", &c)).await.unwrap();
    verify(&sign_rs(0, "k1", &with("iat", json!(t + 59))))
        .await
        .unwrap();
}

#[tokio::test]
async fn refuses_a_wrong_audience() {
    let token = sign_rs(0, "k1", &with("aud", json!("another-client")));
    assert_eq!(verify(&token).await, Err(IdTokenError::WrongAudience));
    let token = sign_rs(0, "k1", &with("aud", json!(["a", "b"])));
    assert_eq!(verify(&token).await, Err(IdTokenError::WrongAudience));
}

#[tokio::test]
async fn refuses_a_wrong_issuer() {
    for iss in [
        "https://accounts.google.com.evil.example",
        "https://evil.example",
        "accounts.google.com/",
        "",
    ] {
        let token = sign_rs(0, "k1", &with("iss", json!(iss)));
        assert_eq!(
            verify(&token).await,
            Err(IdTokenError::WrongIssuer),
            "{iss}"
        );
    }
}

#[tokio::test]
async fn refuses_an_expired_token() {
    let t = now().timestamp();
    for exp in [t - 60, t - 3600] {
        let token = sign_rs(0, "k1", &with("exp", json!(exp)));
        assert_eq!(
            verify(&token).await,
            Err(IdTokenError::Expired),
            "exp {exp}"
        );
    }
}

#[tokio::test]
async fn refuses_a_token_issued_in_the_future() {
    let t = now().timestamp();
    let token = sign_rs(0, "k1", &with("iat", json!(t + 61)));
    assert_eq!(verify(&token).await, Err(IdTokenError::IssuedInFuture));
    let token = sign_rs(0, "k1", &with("nbf", json!(t + 61)));
    assert_eq!(verify(&token).await, Err(IdTokenError::IssuedInFuture));
}

#[tokio::test]
async fn refuses_a_token_older_than_max_age() {
    let t = now().timestamp();
    let token = sign_rs(0, "k1", &with("iat", json!(t - 600 - 61)));
    assert_eq!(verify(&token).await, Err(IdTokenError::TooOld));
}

#[tokio::test]
async fn refuses_alg_none() {
    for alg in ["none", "None", "NONE"] {
        let header = json!({ "alg": alg, "kid": "k1", "typ": "JWT" });
        for signature in ["", "e30"] {
            let token = hand_crafted(&header, &claims(), signature);
            assert_eq!(
                verify(&token).await,
                Err(IdTokenError::UnsupportedAlgorithm),
                "{alg} {signature:?}"
            );
        }
    }
}

#[tokio::test]
async fn refuses_hs256_signed_with_the_rsa_public_key() {
    let public = rsa_key(0).to_public_key();
    let der = rsa::pkcs1::EncodeRsaPublicKey::to_pkcs1_der(&public).unwrap();
    let pem =
        rsa::pkcs1::EncodeRsaPublicKey::to_pkcs1_pem(&public, rsa::pkcs8::LineEnding::LF).unwrap();
    let n = public.n().to_bytes_be();
    let n_b64 = b64(&n);
    let secrets: [&[u8]; 4] = [&n, der.as_bytes(), pem.as_bytes(), n_b64.as_bytes()];
    for (i, secret) in secrets.into_iter().enumerate() {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let mut header = Header::new(alg);
            header.kid = Some("k1".into());
            let token = jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(secret))
                .unwrap();
            assert_eq!(
                verify(&token).await,
                Err(IdTokenError::UnsupportedAlgorithm),
                "secret {i}, {alg:?}"
            );
        }
    }
}

#[tokio::test]
async fn refuses_an_algorithm_the_config_does_not_allow() {
    let fetch = FakeFetch::google(&[rsa_jwk(0, "k1"), es_jwk("e1")]);
    let mut config = IssuerConfig::google(CLIENT);
    config.algorithms = vec![IdTokenAlgorithm::RS256];
    let verifier = IdTokenVerifier::new(config, fetch.clone()).unwrap();
    let token = sign_es("e1", &claims());
    assert_eq!(
        verifier.verify(&token, None, now()).await,
        Err(IdTokenError::UnsupportedAlgorithm)
    );
    assert_eq!(fetch.calls(), 0, "refused before any key is looked up");
}

#[tokio::test]
async fn refuses_a_key_of_another_type_than_the_alg() {
    // An ES256 header naming the RSA key's kid: no key fits.
    let token = sign_es("k1", &claims());
    assert_eq!(verify(&token).await, Err(IdTokenError::UnknownKey));
    // An RS256 header naming an RSA key whose JWK says RS384.
    let mut jwk = rsa_jwk(0, "k1");
    jwk["alg"] = json!("RS384");
    let fetch = FakeFetch::google(&[jwk]);
    let token = sign_rs(0, "k1", &claims());
    assert_eq!(
        google_verifier(&fetch).verify(&token, None, now()).await,
        Err(IdTokenError::UnknownKey)
    );
}

#[tokio::test]
async fn refuses_an_unknown_kid() {
    let token = sign_rs(0, "k9", &claims());
    assert_eq!(verify(&token).await, Err(IdTokenError::UnknownKey));
}

#[tokio::test]
async fn refuses_a_bad_signature() {
    // Signed by RSA key 1 under key 0's kid.
    let token = sign_rs(1, "k1", &claims());
    assert_eq!(verify(&token).await, Err(IdTokenError::BadSignature));
    // Key 0's signature over other claims.
    let good = sign_rs(0, "k1", &claims());
    let forged = sign_rs(0, "k1", &with("sub", json!("someone-else")));
    let (head, rest) = forged.split_once('.').unwrap();
    let (payload, _) = rest.split_once('.').unwrap();
    let signature = good.rsplit('.').next().unwrap();
    let token = format!("{head}.{payload}.{signature}");
    assert_eq!(verify(&token).await, Err(IdTokenError::BadSignature));
}

#[tokio::test]
async fn refuses_an_unverified_email_unless_allowed() {
    for flag in [json!(false), json!("false"), json!("yes"), Value::Null] {
        let token = sign_rs(0, "k1", &with("email_verified", flag.clone()));
        assert_eq!(
            verify(&token).await,
            Err(IdTokenError::EmailUnverified),
            "{flag}"
        );
    }
    let fetch = FakeFetch::google(&[rsa_jwk(0, "k1")]);
    let mut config = IssuerConfig::google(CLIENT);
    config.require_email_verified = false;
    let verifier = IdTokenVerifier::new(config, fetch).unwrap();
    let token = sign_rs(0, "k1", &with("email_verified", json!(false)));
    let v = verifier.verify(&token, None, now()).await.unwrap();
    assert_eq!(v.email.unwrap().as_str(), "alice@example.com");
    assert!(!v.email_verified);
}

#[tokio::test]
async fn refuses_a_nonce_mismatch() {
    let token = sign_rs(0, "k1", &with("nonce", json!("n-0S6_WzA2Mk")));
    assert_eq!(verify(&token).await, Err(IdTokenError::NonceMismatch));
    let token = sign_rs(0, "k1", &with("nonce", Value::Null));
    assert_eq!(verify(&token).await, Err(IdTokenError::NonceMismatch));
    let token = sign_rs(0, "k1", &with("nonce", json!("n-0S6_WzA2Mj-longer")));
    assert_eq!(verify(&token).await, Err(IdTokenError::NonceMismatch));
}

#[tokio::test]
async fn refuses_an_azp_mismatch() {
    let token = sign_rs(0, "k1", &with("azp", json!("another-client")));
    assert_eq!(
        verify(&token).await,
        Err(IdTokenError::WrongAuthorizedParty)
    );
    // Several audiences and no azp.
    let token = sign_rs(0, "k1", &with("aud", json!([CLIENT, "other-client"])));
    assert_eq!(
        verify(&token).await,
        Err(IdTokenError::WrongAuthorizedParty)
    );
}

#[tokio::test]
async fn refuses_malformed_tokens() {
    let good = sign_rs(0, "k1", &claims());
    let huge = format!("{good}{}", "A".repeat(MAX_ID_TOKEN_BYTES));
    let crit = hand_crafted(
        &json!({ "alg": "RS256", "kid": "k1", "crit": ["exp"] }),
        &claims(),
        "AAAA",
    );
    for token in [
        "",
        "a.b",
        "a.b.c.d",
        &format!("{good}.x"),
        "!!!.e30.AAAA",
        &huge,
        &crit,
    ] {
        assert_eq!(
            verify(token).await,
            Err(IdTokenError::Malformed),
            "{:.40}",
            token
        );
    }
    for (claim, value) in [
        ("sub", json!("")),
        ("sub", json!("x".repeat(256))),
        ("sub", Value::Null),
        ("exp", json!("tomorrow")),
        ("aud", json!(42)),
        ("email", json!("not an address")),
    ] {
        let token = sign_rs(0, "k1", &with(claim, value.clone()));
        assert_eq!(
            verify(&token).await,
            Err(IdTokenError::Malformed),
            "{claim}: {value}"
        );
    }
}

#[tokio::test]
async fn reads_the_unverified_issuer_for_routing() {
    let token = sign_rs(0, "k1", &with("iss", json!("https://issuer.example")));
    assert_eq!(
        IdTokenVerifier::unverified_issuer(&token).unwrap(),
        "https://issuer.example"
    );
    assert_eq!(
        IdTokenVerifier::unverified_issuer("x.y"),
        Err(IdTokenError::Malformed)
    );
}

#[test]
fn errors_have_a_kind_and_lowercase_messages() {
    let fetch = IdTokenError::Fetch(FetchError::Timeout);
    assert_eq!(Error::from(fetch.clone()).kind(), ErrorKind::Unavailable);
    for e in [
        IdTokenError::Malformed,
        IdTokenError::UnsupportedAlgorithm,
        IdTokenError::UnknownKey,
        IdTokenError::BadSignature,
        IdTokenError::WrongIssuer,
        IdTokenError::WrongAudience,
        IdTokenError::WrongAuthorizedParty,
        IdTokenError::Expired,
        IdTokenError::IssuedInFuture,
        IdTokenError::TooOld,
        IdTokenError::NonceMismatch,
        IdTokenError::EmailUnverified,
    ] {
        assert_eq!(Error::from(e.clone()).kind(), ErrorKind::Unauthenticated);
        let message = e.to_string();
        assert_eq!(message, message.to_lowercase());
    }
    assert_eq!(fetch.to_string(), fetch.to_string().to_lowercase());
}

#[tokio::test]
async fn no_key_or_token_in_debug_output() {
    let fetch = FakeFetch::google(&[rsa_jwk(0, "k1")]);
    let verifier = google_verifier(&fetch);
    let token = sign_rs(0, "k1", &claims());
    let v = verifier
        .verify(&token, Some("n-0S6_WzA2Mj"), now())
        .await
        .unwrap();
    let n = rsa_jwk(0, "k1")["n"].as_str().unwrap().to_owned();
    let mut config = IssuerConfig::google(CLIENT);
    config.jwks =
        JwksSource::Static(serde_json::from_value(json!({ "keys": [rsa_jwk(0, "k1")] })).unwrap());
    let statics = IdTokenVerifier::new(config, NoFetch).unwrap();
    for debug in [
        format!("{verifier:?}"),
        format!("{v:?}"),
        format!("{statics:?}"),
        format!("{:?}", statics.config()),
        format!("{:?}", verifier.cache()),
    ] {
        assert!(!debug.contains(&n[..24]), "key material in {debug}");
        for part in token.split('.') {
            assert!(!debug.contains(part), "token in {debug}");
        }
    }
}
