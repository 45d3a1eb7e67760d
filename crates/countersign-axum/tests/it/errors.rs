//! Bad input gets a 4xx problem+json answer and changes nothing.

use serde_json::json;

use crate::harness::Server;
use countersign_axum::ApiStore;

crate::on_memory!(
    malformed_json_is_a_400_problem,
    wrong_content_type_is_a_415_problem,
    unknown_fields_are_refused,
    bodies_that_are_not_objects_are_refused,
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
