//! Bad input gets a 4xx problem+json answer and changes nothing.

use serde_json::json;

use crate::harness::Server;
use countersign_axum::ApiStore;

crate::on_memory!(
    malformed_json_is_a_400_problem,
    wrong_content_type_is_a_415_problem,
    unknown_fields_are_refused,
    bodies_that_are_not_objects_are_refused,
    another_users_session_is_not_found_and_stays_live,
    oversized_bodies_are_a_413_problem,
    unknown_tenant_is_a_404_problem,
    unknown_path_and_method_are_problems,
    missing_or_malformed_credentials_are_401_problems,
    invalid_uuid_in_a_path_is_a_400_problem,
);

async fn raw<S: ApiStore>(
    s: &Server<S>,
    path: &str,
    ct: &str,
    body: Vec<u8>,
) -> crate::harness::Answer {
    let r = s
        .http
        .post(format!("{}{path}", s.base))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    crate::harness::answer(r).await
}

async fn malformed_json_is_a_400_problem<S: ApiStore>(s: Server<S>) {
    let a = raw(
        &s,
        &s.t("/login"),
        "application/json",
        b"{\"identifier\":".to_vec(),
    )
    .await;
    a.assert_problem(400, "malformed_body");
}

async fn wrong_content_type_is_a_415_problem<S: ApiStore>(s: Server<S>) {
    let a = raw(
        &s,
        &s.t("/login"),
        "text/plain",
        b"{\"identifier\":\"a\"}".to_vec(),
    )
    .await;
    a.assert_problem(415, "unsupported_media_type");
}

async fn unknown_fields_are_refused<S: ApiStore>(s: Server<S>) {
    let a = s
        .post(&s.t("/register"), json!({"email": "new@example.org", "password": "a long enough password 1", "admin": true}), None)
        .await;
    a.assert_problem(422, "invalid_body");
    // Nothing was written: no account, no mail.
    assert!(s.world.user_opt("new@example.org").await.is_none());
    assert!(s.world.outbox.messages().is_empty());
}

async fn oversized_bodies_are_a_413_problem<S: ApiStore>(s: Server<S>) {
    let big = format!("{{\"identifier\":\"{}\"}}", "a".repeat(100 * 1024));
    let a = raw(&s, &s.t("/login"), "application/json", big.into_bytes()).await;
    a.assert_problem(413, "body_too_large");
}

async fn unknown_tenant_is_a_404_problem<S: ApiStore>(s: Server<S>) {
    let a = s
        .post(
            "/v1/tenants/nobody/login",
            json!({"identifier": "a@example.org"}),
            None,
        )
        .await;
    a.assert_problem(404, "not_found");
}

async fn unknown_path_and_method_are_problems<S: ApiStore>(s: Server<S>) {
    s.get("/v1/nothing-here", None)
        .await
        .assert_problem(404, "not_found");
    s.get(&s.t("/login"), None)
        .await
        .assert_problem(405, "method_not_allowed");
}

async fn missing_or_malformed_credentials_are_401_problems<S: ApiStore>(s: Server<S>) {
    s.get("/v1/session", None)
        .await
        .assert_problem(401, "unauthenticated");
    s.get("/v1/session", Some("css_not-a-real-token"))
        .await
        .assert_problem(401, "unauthenticated");
    let r = s
        .http
        .get(format!("{}/v1/session", s.base))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    crate::harness::answer(r)
        .await
        .assert_problem(401, "unauthenticated");
}

async fn invalid_uuid_in_a_path_is_a_400_problem<S: ApiStore>(s: Server<S>) {
    let user = s.user("alice@example.org").await;
    let token = s.session_for(&user).await;
    s.delete("/v1/sessions/not-a-uuid", Some(&token))
        .await
        .assert_problem(400, "invalid_input");
    // The nil id names nothing, and nothing ended.
    s.delete(
        "/v1/sessions/00000000-0000-0000-0000-000000000000",
        Some(&token),
    )
    .await
    .assert_problem(404, "not_found");
    assert_eq!(s.get("/v1/session", Some(&token)).await.status, 200);
}

async fn bodies_that_are_not_objects_are_refused<S: ApiStore>(s: Server<S>) {
    let user = s.user("alice@example.org").await;
    let token = s.session_for(&user).await;
    for body in ["[null, null]", "[]", "null", "42", "\"x\""] {
        let r = s
            .http
            .patch(format!("{}/v1/me", s.base))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        crate::harness::answer(r)
            .await
            .assert_problem(422, "invalid_body");
    }
    // Nothing changed.
    let me = s.get("/v1/me", Some(&token)).await;
    assert_eq!(
        me.body["updated_at"],
        serde_json::to_value(user.updated_at).unwrap()
    );
}

async fn another_users_session_is_not_found_and_stays_live<S: ApiStore>(s: Server<S>) {
    let alice = s.user("alice@example.org").await;
    let bob = s.user("bob@example.org").await;
    let (a1, a2, b) = (
        s.session_for(&alice).await,
        s.session_for(&alice).await,
        s.session_for(&bob).await,
    );
    let bobs = s.get("/v1/session", Some(&b)).await.str("id");
    s.delete(&format!("/v1/sessions/{bobs}"), Some(&a1))
        .await
        .assert_problem(404, "not_found");
    assert_eq!(s.get("/v1/session", Some(&b)).await.status, 200);
    // Her own other session ends; the one she asked with lives on.
    let second = s.get("/v1/session", Some(&a2)).await.str("id");
    assert_eq!(
        s.delete(&format!("/v1/sessions/{second}"), Some(&a1))
            .await
            .status,
        204
    );
    s.get("/v1/session", Some(&a2))
        .await
        .assert_problem(401, "unauthenticated");
    assert_eq!(s.get("/v1/session", Some(&a1)).await.status, 200);
}

/// The client address comes from the rightmost `X-Forwarded-For` entry
/// only when the API trusts a proxy; otherwise the header is ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_counts_only_behind_a_trusted_proxy() {
    use countersign_axum::{ApiConfig, Limit, RateLimits};
    for trust in [true, false] {
        let config = ApiConfig {
            trust_forwarded_for: trust,
            rate_limits: RateLimits {
                per_ip: Some(Limit::new(2, std::time::Duration::from_secs(60))),
                per_account: None,
            },
            ..ApiConfig::default()
        };
        let s = Server::start_with(countersign_memory::MemoryStore::new(), config).await;
        let begin = |xff: &'static str| {
            let s = &s;
            async move {
                let r = s
                    .http
                    .post(format!("{}{}", s.base, s.t("/login")))
                    .header("x-forwarded-for", xff)
                    .json(&serde_json::json!({"identifier": "a@example.org"}))
                    .send()
                    .await
                    .unwrap();
                crate::harness::answer(r).await.status.as_u16()
            }
        };
        assert_eq!(begin("198.51.100.7, 192.0.2.1").await, 200);
        assert_eq!(begin("192.0.2.1").await, 200);
        // A third request from 192.0.2.1 (the rightmost entry) is over.
        assert_eq!(begin("203.0.113.9, 192.0.2.1").await, 429);
        // Another address: its own count when trusted; the same peer
        // (127.0.0.1) otherwise.
        let other = begin("192.0.2.2").await;
        assert_eq!(other, if trust { 200 } else { 429 }, "trust = {trust}");
    }
}
