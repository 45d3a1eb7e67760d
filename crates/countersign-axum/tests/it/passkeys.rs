//! Passkeys over HTTP, with a software authenticator playing the browser:
//! registration (begin, confirm once), sign-in with an identifier and
//! without one, and a replayed assertion refused.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use countersign_axum::ApiStore;
use countersign_testkit::fixtures::ORIGIN;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::harness::{Answer, Server};

crate::on_every_backend!(passkeys_register_and_sign_in_over_http);

/// The software authenticator's answer to a registration challenge.
fn register(pk: &mut SoftPasskey, challenge: &Value) -> Value {
    let challenge = serde_json::from_value(challenge.clone()).expect("a creation challenge");
    let answer = pk
        .do_registration(Url::parse(ORIGIN).unwrap(), challenge)
        .expect("the authenticator registers");
    serde_json::to_value(&answer).unwrap()
}

/// The software authenticator's assertion for a sign-in challenge.
#[track_caller]
fn sign(pk: &mut SoftPasskey, challenge: &Value) -> Value {
    let challenge = serde_json::from_value(challenge.clone()).expect("a request challenge");
    let answer = pk
        .do_authentication(Url::parse(ORIGIN).unwrap(), challenge)
        .expect("the authenticator signs");
    serde_json::to_value(&answer).unwrap()
}

/// Submit a passkey assertion to `flow`.
async fn submit<S: ApiStore>(s: &Server<S>, flow: &str, credential: &Value) -> Answer {
    let body = json!({"flow": flow, "factor": "passkey", "response": credential});
    s.post(&s.t("/login/submit"), body, None).await
}

/// The user id and factors of the session an authenticated answer carries.
async fn session_of<S: ApiStore>(s: &Server<S>, a: &Answer) -> (Value, Value) {
    assert_eq!(a.body["status"], "authenticated", "{a:?}");
    let token = a.body["session"]["session_token"].as_str().unwrap();
    let current = s.get("/v1/session", Some(token)).await;
    assert_eq!(current.status, 200, "{current:?}");
    (
        current.body["user_id"].clone(),
        current.body["factors"].clone(),
    )
}

/// A passkey registers over HTTP (its ceremony confirms once), then signs
/// in by the tenant's `passkey` method, with the identifier first and with
/// none (the passkey names the account); an assertion is good for one
/// flow only.
async fn passkeys_register_and_sign_in_over_http<S: ApiStore>(s: Server<S>) {
    let alice = s.user("alice@example.org").await;
    let token = s.session_for(&alice).await;
    let mut pk = SoftPasskey::new(true);

    let a = s
        .post(
            "/v1/me/factors/passkeys",
            json!({"name": "laptop"}),
            Some(&token),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    let ceremony = a.str("ceremony");
    let credential = register(&mut pk, &a.body["challenge"]);
    let confirm = json!({"ceremony": ceremony, "credential": &credential});
    let a = s
        .post(
            "/v1/me/factors/passkeys/confirm",
            confirm.clone(),
            Some(&token),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["name"], "laptop", "{a:?}");
    // The ceremony is spent: the same answer registers nothing more.
    let again = s
        .post("/v1/me/factors/passkeys/confirm", confirm, Some(&token))
        .await;
    assert!(again.status.is_client_error(), "{again:?}");
    assert_eq!(again.content_type, "application/problem+json", "{again:?}");
    let listed = s.get("/v1/me/factors/passkeys", Some(&token)).await;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(1), "{listed:?}");

    // With the identifier: begin, ask for the challenge, answer it.
    let begin = json!({"identifier": alice.identifier.as_str(), "method": "passkey"});
    let a = s.post(&s.t("/login"), begin, None).await;
    assert_eq!(a.status, 200, "{a:?}");
    let flow = a.str("flow");
    let challenge = s
        .post(
            &s.t("/login/passkey-challenge"),
            json!({"flow": flow}),
            None,
        )
        .await;
    assert_eq!(challenge.status, 200, "{challenge:?}");
    let assertion = sign(&mut pk, &challenge.body);
    let a = submit(&s, &flow, &assertion).await;
    let (user, factors) = session_of(&s, &a).await;
    assert_eq!(user, alice.id.to_string());
    assert_eq!(factors, json!(["passkey"]));

    // The same assertion in another flow (another challenge) is refused.
    let a = s.post(&s.t("/login/passkey"), json!({}), None).await;
    assert_eq!(a.status, 200, "{a:?}");
    let flow = a.str("flow");
    let replay = submit(&s, &flow, &assertion).await;
    assert_ne!(replay.body["status"], "authenticated", "{replay:?}");
    assert!(replay.body["session"].is_null(), "{replay:?}");

    // Without an identifier: the flow's own challenge names no
    // credential. The software authenticator keeps no resident keys, so
    // it is pointed at its credential, and given the user handle a
    // resident key returns (the handle is not signed over).
    let a = s.post(&s.t("/login/passkey"), json!({}), None).await;
    assert_eq!(a.status, 200, "{a:?}");
    let flow = a.str("flow");
    let mut challenge = a.body["passkey_challenge"].clone();
    assert_eq!(
        challenge["publicKey"]["allowCredentials"],
        json!([]),
        "username-less: {challenge}"
    );
    challenge["publicKey"]["allowCredentials"] =
        json!([{"type": "public-key", "id": credential["rawId"]}]);
    let mut assertion = sign(&mut pk, &challenge);
    assertion["response"]["userHandle"] =
        Value::String(URL_SAFE_NO_PAD.encode(alice.id.as_uuid().as_bytes()));
    let a = submit(&s, &flow, &assertion).await;
    let (user, factors) = session_of(&s, &a).await;
    assert_eq!(user, alice.id.to_string());
    assert_eq!(factors, json!(["passkey"]));
}
