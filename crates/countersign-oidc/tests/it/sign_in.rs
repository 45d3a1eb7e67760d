//! Federated sign-in end to end: a memory store, an `AuthnService`
//! fetching keys through `ReqwestFetch` from the local issuer's key set on
//! loopback, discovery, then a sign-in whose account is created and linked,
//! found again by its link, and a key rotation at the issuer found by one
//! refetch.

use chrono::TimeDelta;
use countersign_core::{
    Argon2Params, AuthnService, ClientInfo, Env, FactorKind, FactorResponse, FactorSettings,
    FederationSettings, LoginStatus, NewTenant, PasswordHasher, UserId,
};
use countersign_memory::MemoryStore;
use countersign_oidc::{ReqwestFetch, discover};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use serde_json::json;

use crate::issuer::{Issuer, Route};
use crate::{CLIENT, jwk, jwks, now, rsa_key};

/// An ID token from `issuer` for `subject` carrying `nonce`, issued at
/// `at`, signed with RSA key `i` under `kid`.
fn token(
    issuer: &str,
    subject: &str,
    nonce: &str,
    i: usize,
    kid: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> String {
    let t = at.timestamp();
    let claims = json!({
        "iss": issuer, "aud": CLIENT, "sub": subject, "iat": t - 1, "exp": t + 600,
        "nonce": nonce, "email": "carol@example.com", "email_verified": true,
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let der = rsa_key(i).to_pkcs1_der().unwrap();
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_der(der.as_bytes())).unwrap()
}

#[tokio::test]
async fn signs_in_through_an_issuer_served_on_loopback() {
    let issuer = Issuer::start().await;
    let doc = json!({
        "issuer": issuer.base,
        "jwks_uri": format!("{}/jwks", issuer.base),
        "id_token_signing_alg_values_supported": ["RS256"],
    });
    issuer.route(
        "/.well-known/openid-configuration",
        Route::Json(serde_json::to_vec(&doc).unwrap()),
    );
    issuer.route("/jwks", Route::Json(jwks(&[jwk(0, "k1")])));
    let fetch = ReqwestFetch::new().unwrap();
    let config = discover(&fetch, &issuer.base, vec![CLIENT.into()])
        .await
        .unwrap();

    let (env, clock) = Env::manual(3);
    clock.set(now());
    let hasher = PasswordHasher::new(Argon2Params::INSECURE_TEST, 2).unwrap();
    let svc = AuthnService::new(MemoryStore::new(), env, hasher).with_http_fetch(fetch);
    let spec = NewTenant::new("acme", "Acme")
        .adopt(FactorSettings::OidcIdToken(FederationSettings::new(vec![
            config,
        ])))
        .method("sign-in-with-issuer", &[FactorKind::OidcIdToken])
        .unwrap();
    let tenant = svc.provision_tenant(spec).await.unwrap();
    let client = ClientInfo::default();

    let sign_in = |subject: &'static str, i: usize, kid: &'static str| {
        let (svc, base, client) = (&svc, issuer.base.clone(), client.clone());
        async move {
            let start = svc
                .begin_federated_login(tenant.id, &base, &client)
                .await
                .unwrap();
            let t = token(&base, subject, &start.nonce, i, kid, svc.env().now());
            let s = svc
                .submit(
                    tenant.id,
                    start.flow.expose(),
                    FactorResponse::IdToken(&t),
                    &client,
                )
                .await
                .unwrap();
            match s.status {
                LoginStatus::Authenticated(a) => Some(a.user_id()),
                _ => None,
            }
        }
    };

    let carol: UserId = sign_in("carol-1", 0, "k1").await.expect("signed in");
    assert_eq!(issuer.hits("/jwks"), 1);
    let links = svc.linked_identities(tenant.id, carol).await.unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].issuer, issuer.base);
    // Again: the same account by its link, the keys from the cache.
    assert_eq!(sign_in("carol-1", 0, "k1").await, Some(carol));
    assert_eq!(issuer.hits("/jwks"), 1);

    // The issuer rotates to a new key: within the refetch interval of the
    // last fetch the unknown kid is refused unfetched; past it, one
    // refetch finds it.
    issuer.route("/jwks", Route::Json(jwks(&[jwk(0, "k1"), jwk(1, "k2")])));
    assert_eq!(sign_in("carol-1", 1, "k2").await, None);
    assert_eq!(issuer.hits("/jwks"), 1, "rate-limited");
    clock.advance(TimeDelta::seconds(61));
    assert_eq!(sign_in("carol-1", 1, "k2").await, Some(carol));
    assert_eq!(issuer.hits("/jwks"), 2, "one refetch for the unknown kid");
}
