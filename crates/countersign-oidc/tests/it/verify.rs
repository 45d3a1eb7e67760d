//! Discovery then verification end to end, through `ReqwestFetch` and the
//! local issuer.

use chrono::TimeDelta;
use countersign_core::factor::federated::DiscoveryError;
use countersign_core::{IdTokenError, IdTokenVerifier, IssuerConfig, JwksSource};
use countersign_oidc::{ReqwestFetch, discover};
use serde_json::json;

use crate::issuer::{Issuer, Route};
use crate::{CLIENT, id_token, jwk, jwks, now};

const DISCOVERY: &str = "/.well-known/openid-configuration";

/// An issuer serving its discovery document and a key set of `keys`.
async fn issuer_with(keys: &[serde_json::Value]) -> Issuer {
    let issuer = Issuer::start().await;
    let doc = json!({
        "issuer": issuer.base,
        "authorization_endpoint": format!("{}/authorize", issuer.base),
        "jwks_uri": format!("{}/jwks", issuer.base),
        "id_token_signing_alg_values_supported": ["RS256"],
        "subject_types_supported": ["public"],
    });
    issuer.route(DISCOVERY, Route::Json(serde_json::to_vec(&doc).unwrap()));
    issuer.route("/jwks", Route::Json(jwks(keys)));
    issuer
}

#[tokio::test]
async fn discovers_an_issuer_and_verifies_its_token_end_to_end() {
    let issuer = issuer_with(&[jwk(0, "k1")]).await;
    let fetch = ReqwestFetch::new().unwrap();
    let config = discover(&fetch, &issuer.base, vec![CLIENT.into()])
        .await
        .unwrap();
    assert_eq!(config.issuer, issuer.base);
    assert_eq!(
        config.jwks,
        JwksSource::Url(format!("{}/jwks", issuer.base))
    );
    assert_eq!(issuer.hits(DISCOVERY), 1);

    let verifier = IdTokenVerifier::new(config, fetch).unwrap();
    let token = id_token(&issuer.base, 0, "k1", now());
    let verified = verifier
        .verify(&token, Some("nonce-1"), now())
        .await
        .unwrap();
    assert_eq!(verified.issuer, issuer.base);
    assert_eq!(verified.subject, "user-42");
    assert_eq!(verified.email.unwrap().as_str(), "bob@example.com");
    assert!(verified.email_verified);
    assert_eq!(issuer.hits("/jwks"), 1);

    // Cached: a second token makes no request.
    verifier.verify(&token, None, now()).await.unwrap();
    assert_eq!(issuer.hits("/jwks"), 1);
    // The same token checked by the claims: another issuer's is refused.
    let foreign = id_token("https://elsewhere.example", 0, "k1", now());
    assert_eq!(
        verifier.verify(&foreign, None, now()).await,
        Err(IdTokenError::WrongIssuer)
    );
}

#[tokio::test]
async fn finds_a_rotated_key_through_one_refetch() {
    let issuer = issuer_with(&[jwk(0, "k1")]).await;
    let fetch = ReqwestFetch::new().unwrap();
    let config = discover(&fetch, &issuer.base, vec![CLIENT.into()])
        .await
        .unwrap();
    let verifier = IdTokenVerifier::new(config, fetch).unwrap();
    verifier
        .verify(&id_token(&issuer.base, 0, "k1", now()), None, now())
        .await
        .unwrap();

    // The issuer rotates in k2. Inside the refetch interval the new kid is
    // refused without a request; after it, one refetch finds it.
    issuer.route("/jwks", Route::Json(jwks(&[jwk(0, "k1"), jwk(1, "k2")])));
    let soon = now() + TimeDelta::seconds(30);
    let token = id_token(&issuer.base, 1, "k2", soon);
    for _ in 0..20 {
        assert_eq!(
            verifier.verify(&token, None, soon).await,
            Err(IdTokenError::UnknownKey)
        );
    }
    assert_eq!(issuer.hits("/jwks"), 1);
    let later = now() + TimeDelta::seconds(61);
    let token = id_token(&issuer.base, 1, "k2", later);
    verifier.verify(&token, None, later).await.unwrap();
    assert_eq!(issuer.hits("/jwks"), 2);
}

#[tokio::test]
async fn an_unreachable_key_set_is_unavailable_not_a_bad_token() {
    let issuer = issuer_with(&[jwk(0, "k1")]).await;
    issuer.route("/jwks", Route::Status(503, None));
    let config = IssuerConfig::new(
        issuer.base.clone(),
        vec![CLIENT.into()],
        JwksSource::Url(format!("{}/jwks", issuer.base)),
    );
    let verifier = IdTokenVerifier::new(config, ReqwestFetch::new().unwrap()).unwrap();
    let refused = verifier
        .verify(&id_token(&issuer.base, 0, "k1", now()), None, now())
        .await
        .unwrap_err();
    assert_eq!(
        refused,
        IdTokenError::Fetch(countersign_core::FetchError::Status(503))
    );
    assert_eq!(
        countersign_core::Error::from(refused).kind(),
        countersign_core::ErrorKind::Unavailable
    );
}

#[tokio::test]
async fn refuses_a_discovery_document_for_another_issuer() {
    let issuer = Issuer::start().await;
    let doc = json!({
        "issuer": "https://accounts.google.com",
        "jwks_uri": format!("{}/jwks", issuer.base),
    });
    issuer.route(DISCOVERY, Route::Json(serde_json::to_vec(&doc).unwrap()));
    let fetch = ReqwestFetch::new().unwrap();
    let refused = discover(&fetch, &issuer.base, vec![CLIENT.into()])
        .await
        .unwrap_err();
    assert!(
        matches!(refused, DiscoveryError::IssuerMismatch { .. }),
        "{refused:?}"
    );
    // A missing document is a fetch error.
    let other = Issuer::start().await;
    let refused = discover(&fetch, &other.base, vec![CLIENT.into()])
        .await
        .unwrap_err();
    assert_eq!(
        refused,
        DiscoveryError::Fetch(countersign_core::FetchError::Status(404))
    );
    // Not JSON.
    other.route(DISCOVERY, Route::Json(b"<html></html>".to_vec()));
    assert_eq!(
        discover(&fetch, &other.base, vec![CLIENT.into()]).await,
        Err(DiscoveryError::Malformed)
    );
}
