//! The key cache: fetch rate limit, rotation, TTL, failures, concurrency,
//! and which keys of a set are usable.

use super::*;
use crate::factor::federated::jwks::parse_jwks;

#[tokio::test]
async fn a_flood_of_unknown_kids_makes_one_fetch_per_interval() {
    let fetch = FakeFetch::google(&[rsa_jwk(0, "k1")]);
    let verifier = google_verifier(&fetch);
    // The first token fetches the set; it knows k1.
    verifier
        .verify(&sign_rs(0, "k1", &claims()), None, now())
        .await
        .unwrap();
    assert_eq!(fetch.calls(), 1);
    // 200 tokens with made-up kids within the interval: no fetch at all.
    for i in 0..200 {
        let t = now() + secs(i % 59);
        let token = sign_rs(0, &format!("random-{i}"), &claims());
        assert_eq!(
            verifier.verify(&token, None, t).await,
            Err(IdTokenError::UnknownKey)
        );
    }
    assert_eq!(fetch.calls(), 1, "unknown kids within the interval fetched");
    // Once the interval has passed, one more fetch, then quiet again.
    let later = now() + secs(60);
    for i in 0..50 {
        let token = sign_rs(0, &format!("later-{i}"), &claims());
        assert_eq!(
            verifier.verify(&token, None, later).await,
            Err(IdTokenError::UnknownKey)
        );
    }
    assert_eq!(fetch.calls(), 2);
    // The known kid never needed a fetch meanwhile.
    verifier
        .verify(&sign_rs(0, "k1", &claims()), None, later)
        .await
        .unwrap();
    assert_eq!(fetch.calls(), 2);
}

#[tokio::test]
async fn a_rotated_in_key_is_found_by_one_refetch() {
    let fetch = FakeFetch::google(&[rsa_jwk(0, "k1")]);
    let verifier = google_verifier(&fetch);
    verifier
        .verify(&sign_rs(0, "k1", &claims()), None, now())
        .await
        .unwrap();
    // The issuer rotates in k2 (keeping k1 for a while).
    fetch.serve(Ok(jwks_body(&[rsa_jwk(0, "k1"), rsa_jwk(1, "k2")])));
    let t = now() + secs(120);
    let token = sign_rs(1, "k2", &claims_at(t));
    verifier.verify(&token, None, t).await.unwrap();
    assert_eq!(fetch.calls(), 2, "one refetch found the new key");
    verifier.verify(&token, None, t + secs(1)).await.unwrap();
    assert_eq!(fetch.calls(), 2, "the new key is cached");
}

#[tokio::test]
async fn a_rotation_inside_the_interval_waits_for_it() {
    let fetch = FakeFetch::google(&[rsa_jwk(0, "k1")]);
    let verifier = google_verifier(&fetch);
    // The first lookup names an unknown kid: it fetches, and uses the
    // interval up.
    let token = sign_rs(1, "k2", &claims());
    assert_eq!(
        verifier.verify(&token, None, now()).await,
        Err(IdTokenError::UnknownKey)
    );
    fetch.serve(Ok(jwks_body(&[rsa_jwk(0, "k1"), rsa_jwk(1, "k2")])));
    assert_eq!(
        verifier.verify(&token, None, now() + secs(30)).await,
        Err(IdTokenError::UnknownKey)
    );
    assert_eq!(fetch.calls(), 1);
    verifier
        .verify(&token, None, now() + secs(61))
        .await
        .unwrap();
    assert_eq!(fetch.calls(), 2);
}

#[tokio::test]
async fn the_set_is_refreshed_after_its_ttl() {
    let fetch = FakeFetch::google(&[rsa_jwk(0, "k1")]);
    let verifier = google_verifier(&fetch);
    let at = claims_at;
    verifier
        .verify(&sign_rs(0, "k1", &claims()), None, now())
        .await
        .unwrap();
    assert_eq!(verifier.cache().fetched_at(), Some(now()));
    // Within the hour: cached.
    let t = now() + secs(3599);
    verifier
        .verify(&sign_rs(0, "k1", &at(t)), None, t)
        .await
        .unwrap();
    assert_eq!(fetch.calls(), 1);
    // The issuer drops k1 for k2; after the hour the set is refetched,
    // and k1 is gone.
    fetch.serve(Ok(jwks_body(&[rsa_jwk(1, "k2")])));
    let t = now() + secs(3600);
    assert_eq!(
        verifier.verify(&sign_rs(0, "k1", &at(t)), None, t).await,
        Err(IdTokenError::UnknownKey)
    );
    assert_eq!(fetch.calls(), 2, "the stale set was refreshed");
    assert_eq!(verifier.cache().fetched_at(), Some(t));
    let t = t + secs(1);
    verifier
        .verify(&sign_rs(1, "k2", &at(t)), None, t)
        .await
        .unwrap();
    assert_eq!(fetch.calls(), 2);
}

#[tokio::test]
async fn a_failed_fetch_keeps_the_old_keys_and_fails_closed() {
    let fetch = FakeFetch::google(&[rsa_jwk(0, "k1")]);
    let verifier = google_verifier(&fetch);
    let at = claims_at;
    verifier
        .verify(&sign_rs(0, "k1", &claims()), None, now())
        .await
        .unwrap();
    for failure in [
        Err(FetchError::Status(503)),
        Ok(b"<html>oops</html>".to_vec()),
    ] {
        fetch.serve(failure);
        let calls = fetch.calls();
        // After the TTL the refresh fails: the held key still verifies.
        let t = now() + secs(7200 + 100 * i64::try_from(calls).unwrap());
        verifier
            .verify(&sign_rs(0, "k1", &at(t)), None, t)
            .await
            .unwrap();
        assert_eq!(fetch.calls(), calls + 1);
        // An unknown kid is refused: the fetch failed, the rate limit holds.
        let token = sign_rs(1, "k2", &at(t));
        let refused = verifier.verify(&token, None, t).await.unwrap_err();
        assert!(matches!(refused, IdTokenError::Fetch(_)), "{refused:?}");
        assert_eq!(refused.kind(), crate::error::ErrorKind::Unavailable);
        assert_eq!(fetch.calls(), calls + 1);
    }
    // The issuer recovers.
    fetch.serve(Ok(jwks_body(&[rsa_jwk(0, "k1"), rsa_jwk(1, "k2")])));
    let t = now() + secs(9000);
    verifier
        .verify(&sign_rs(1, "k2", &at(t)), None, t)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_first_fetch_that_fails_is_rate_limited_too() {
    let fetch = FakeFetch::google(&[]);
    fetch.serve(Err(FetchError::Transport("connection refused".into())));
    let verifier = google_verifier(&fetch);
    for i in 0..20 {
        let refused = verifier
            .verify(&sign_rs(0, "k1", &claims()), None, now() + secs(i))
            .await
            .unwrap_err();
        assert_eq!(
            refused,
            IdTokenError::Fetch(FetchError::Transport("connection refused".into()))
        );
    }
    assert_eq!(fetch.calls(), 1);
}

#[test]
fn concurrent_unknown_kid_lookups_make_one_fetch() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let fetch = FakeFetch::google(&[rsa_jwk(0, "k1")]);
        let verifier = Arc::new(google_verifier(&fetch));
        // The fetch waits until every lookup has started.
        let hold = fetch.gate.clone().write_owned().await;
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..32 {
            let verifier = verifier.clone();
            // Half name the real key, half made-up ones.
            let kid = if i % 2 == 0 {
                "k1".to_owned()
            } else {
                format!("x{i}")
            };
            let token = sign_rs(0, &kid, &claims());
            tasks.spawn(async move { (kid, verifier.verify(&token, None, now()).await) });
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        drop(hold);
        while let Some(done) = tasks.join_next().await {
            let (kid, result) = done.unwrap();
            if kid == "k1" {
                result.unwrap();
            } else {
                assert_eq!(result, Err(IdTokenError::UnknownKey));
            }
        }
        assert_eq!(fetch.calls(), 1);
    });
}

#[tokio::test]
async fn a_static_set_never_fetches() {
    let mut config = IssuerConfig::google(CLIENT);
    config.jwks =
        JwksSource::Static(serde_json::from_value(json!({ "keys": [rsa_jwk(0, "k1")] })).unwrap());
    let verifier = IdTokenVerifier::new(config, NoFetch).unwrap();
    verifier
        .verify(&sign_rs(0, "k1", &claims()), None, now())
        .await
        .unwrap();
    assert_eq!(
        verifier
            .verify(&sign_rs(1, "k2", &claims()), None, now())
            .await,
        Err(IdTokenError::UnknownKey)
    );
    assert_eq!(verifier.cache().key_count(), 1);
}

#[tokio::test]
async fn a_token_without_kid_needs_a_single_key_set() {
    let claims = claims();
    let no_kid = {
        let der = rsa_key(0).to_pkcs1_der().unwrap();
        jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &claims,
            &EncodingKey::from_rsa_der(der.as_bytes()),
        )
        .unwrap()
    };
    let fetch = FakeFetch::google(&[rsa_jwk(0, "k1")]);
    google_verifier(&fetch)
        .verify(&no_kid, None, now())
        .await
        .unwrap();
    let fetch = FakeFetch::google(&[rsa_jwk(0, "k1"), rsa_jwk(1, "k2")]);
    assert_eq!(
        google_verifier(&fetch).verify(&no_kid, None, now()).await,
        Err(IdTokenError::UnknownKey)
    );
}

#[test]
fn only_usable_keys_are_kept() {
    let mut enc = rsa_jwk(0, "enc");
    enc["use"] = json!("enc");
    let mut sign_only = rsa_jwk(0, "sign-only");
    sign_only["key_ops"] = json!(["sign"]);
    let short = {
        let key = rsa::RsaPrivateKey::new(&mut ChaCha20Rng::seed_from_u64(9), 1024).unwrap();
        json!({
            "kty": "RSA", "kid": "short",
            "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be()),
        })
    };
    let body = jwks_body(&[
        rsa_jwk(0, "k1"),
        es_jwk("e1"),
        json!({ "kty": "oct", "kid": "hmac", "k": b64(b"secret") }),
        json!({ "kty": "XYZ", "kid": "future" }),
        json!({ "kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA" }),
        enc,
        sign_only,
        short,
        json!("not a key"),
    ]);
    let keys = parse_jwks(&body).unwrap();
    let kids: Vec<_> = keys.iter().map(|k| k.kid().unwrap()).collect();
    assert_eq!(kids, ["k1", "e1"]);
    assert!(keys[0].fits(IdTokenAlgorithm::RS256));
    assert!(!keys[0].fits(IdTokenAlgorithm::PS256), "its JWK says RS256");
    assert!(!keys[0].fits(IdTokenAlgorithm::ES256));
    assert!(keys[1].fits(IdTokenAlgorithm::ES256));
    assert!(!keys[1].fits(IdTokenAlgorithm::ES384));
}

#[test]
fn malformed_or_oversized_sets_are_refused() {
    assert!(matches!(
        parse_jwks(b"{\"not_keys\": []}"),
        Err(FetchError::InvalidDocument(_))
    ));
    assert!(matches!(
        parse_jwks(b"not json"),
        Err(FetchError::InvalidDocument(_))
    ));
    let many: Vec<Value> = (0..65).map(|i| es_jwk(&format!("e{i}"))).collect();
    assert!(matches!(
        parse_jwks(&jwks_body(&many)),
        Err(FetchError::InvalidDocument(_))
    ));
    let huge = vec![b' '; 256 * 1024 + 1];
    assert_eq!(
        parse_jwks(&huge).unwrap_err(),
        FetchError::TooLarge { limit: 256 * 1024 }
    );
}

#[tokio::test]
async fn a_stale_set_serves_known_keys_while_a_refresh_is_under_way() {
    let fetch = FakeFetch::google(&[rsa_jwk(0, "k1")]);
    let verifier = Arc::new(google_verifier(&fetch));
    verifier
        .verify(&sign_rs(0, "k1", &claims()), None, now())
        .await
        .unwrap();
    // After the TTL, one lookup starts a refresh that hangs at the issuer.
    let hold = fetch.gate.clone().write_owned().await;
    let t = now() + secs(3700);
    let token = sign_rs(0, "k1", &claims_at(t));
    let refreshing = tokio::spawn({
        let (verifier, token) = (verifier.clone(), token.clone());
        async move { verifier.verify(&token, None, t).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(fetch.calls(), 2);
    // Meanwhile the held key still answers, without waiting.
    let quick = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        verifier.verify(&token, None, t),
    )
    .await;
    quick.unwrap().unwrap();
    drop(hold);
    refreshing.await.unwrap().unwrap();
    assert_eq!(fetch.calls(), 2);
}

#[tokio::test]
async fn a_cancelled_fetch_counts_and_leaves_no_lookup_waiting() {
    let fetch = FakeFetch::google(&[rsa_jwk(0, "k1")]);
    let verifier = google_verifier(&fetch);
    let token = sign_rs(0, "k1", &claims());
    let hold = fetch.gate.clone().write_owned().await;
    // The caller gives up while the fetch hangs.
    let gave_up = tokio::time::timeout(
        std::time::Duration::from_millis(50),
        verifier.verify(&token, None, now()),
    )
    .await;
    assert!(gave_up.is_err());
    drop(hold);
    assert_eq!(fetch.calls(), 1);
    // The attempt counts against the rate limit, and nothing hangs.
    assert_eq!(
        verifier.verify(&token, None, now() + secs(1)).await,
        Err(IdTokenError::UnknownKey)
    );
    assert_eq!(fetch.calls(), 1);
    let t = now() + secs(60);
    verifier
        .verify(&sign_rs(0, "k1", &claims_at(t)), None, t)
        .await
        .unwrap();
    assert_eq!(fetch.calls(), 2);
}
