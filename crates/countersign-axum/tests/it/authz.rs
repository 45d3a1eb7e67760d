//! Authorization over HTTP: the RBAC model and the Cedar policies
//! administered under `/v1/admin` (only by administrators, only in their
//! tenant), and decisions for the signed-in caller at `/v1/authorize`,
//! with the step-up they may ask for.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Answer, Server};
use countersign_axum::ApiStore;
use countersign_core::{AccountState, NewTenant, NewUser, User};
use countersign_testkit::fixtures::PASSWORD;

mod every_backend {
    use super::*;
    crate::on_every_backend!(
        rbac_grants_decide_over_http_and_revoking_denies,
        a_stale_session_is_told_to_step_up_and_then_allowed,
    );
}

mod memory_only {
    use super::*;
    crate::on_memory!(
        non_admins_are_refused_by_every_admin_endpoint_and_nothing_changes,
        invalid_policies_are_refused_with_diagnostics_and_the_old_version_stays,
        validate_reports_errors_without_saving,
        template_links_are_added_kept_across_saves_and_removed,
        malformed_uids_and_names_are_400_problems,
        another_tenants_user_and_unknown_names_are_404s,
    );
}

/// Actions on services: holding the permission `read` in `docs` allows
/// `App::Action::"read"` on `Countersign::Service::"docs"`.
const RBAC_SCHEMA: &str = r#"
namespace App {
  action read, write appliesTo { principal: Countersign::User, resource: Countersign::Service };
}
"#;

/// Documents and an action whose permit reads the authentication.
const DOC_SCHEMA: &str = r#"
namespace App {
  entity Document;
  action delete appliesTo { principal: Countersign::User, resource: Document };
}
"#;

/// Deleting needs an authentication under five minutes old.
const FRESH_POLICY: &str = r#"
@id("delete-needs-fresh-auth")
permit(principal, action == App::Action::"delete", resource)
  when { context.authentication.age < 300 };
"#;

/// A template of owners allowed to delete.
const OWNER_TEMPLATE: &str = r#"
@id("owner")
permit(principal == ?principal, action == App::Action::"delete", resource);
"#;

/// Names an action the schema does not declare: parses, does not
/// validate.
const UNDECLARED_ACTION: &str = r#"permit(principal, action == App::Action::"nope", resource);"#;

fn read_docs() -> Value {
    json!({"action": "App::Action::\"read\"", "resource": "Countersign::Service::\"docs\""})
}

fn delete_doc() -> Value {
    json!({"action": "App::Action::\"delete\"", "resource": "App::Document::\"d1\""})
}

async fn put<S: ApiStore>(s: &Server<S>, path: &str, body: Option<Value>, token: &str) -> Answer {
    s.send(Method::PUT, path, body, Some(token)).await
}

#[track_caller]
fn ok(a: &Answer, status: u16) {
    assert_eq!(a.status.as_u16(), status, "{a:?}");
}

/// `docs` with `read` (and `write`), the role `reader` granted `read` in
/// `docs` only, under [`RBAC_SCHEMA`]: all over HTTP by `admin`.
async fn docs_model<S: ApiStore>(s: &Server<S>, admin: &str) {
    let a = put(
        s,
        "/v1/admin/policies",
        Some(json!({"schema": RBAC_SCHEMA, "policies": ""})),
        admin,
    )
    .await;
    ok(&a, 200);
    assert_eq!(a.body["version"], 1);
    for (path, name) in [
        ("/v1/admin/services", "docs"),
        ("/v1/admin/permissions", "read"),
        ("/v1/admin/permissions", "write"),
        ("/v1/admin/roles", "reader"),
    ] {
        ok(&s.post(path, json!({"name": name}), Some(admin)).await, 201);
    }
    let grant = "/v1/admin/services/docs/roles/reader/permissions/read";
    ok(&put(s, grant, None, admin).await, 200);
}

fn assignment(user: &User) -> String {
    format!("/v1/admin/users/{}/roles/docs/reader", user.id)
}

/// An administrator builds the RBAC model over HTTP; the role it assigns
/// allows exactly its permission (the decision comes from the built-in
/// RBAC policy), the caller sees its own permissions, duplicates are 409s,
/// and taking the role away denies at the next decision.
async fn rbac_grants_decide_over_http_and_revoking_denies<S: ApiStore>(s: Server<S>) {
    let (_, admin) = s.admin("root@example.org").await;
    let alice = s.user("alice@example.org").await;
    let token = s.session_for(&alice).await;
    docs_model(&s, &admin).await;

    // Not yet assigned: decided, and denied.
    let a = s.post("/v1/authorize", read_docs(), Some(&token)).await;
    ok(&a, 200);
    assert_eq!(a.body["allowed"], false, "{a:?}");

    ok(&put(&s, &assignment(&alice), None, &admin).await, 200);
    let a = s.post("/v1/authorize", read_docs(), Some(&token)).await;
    ok(&a, 200);
    assert_eq!(a.body["allowed"], true, "{a:?}");
    assert_eq!(a.body["reasons"], json!(["countersign::rbac"]));
    assert_eq!(a.body["errors"], json!([]));
    // Only what was granted.
    let write =
        json!({"action": "App::Action::\"write\"", "resource": "Countersign::Service::\"docs\""});
    let a = s.post("/v1/authorize", write, Some(&token)).await;
    ok(&a, 200);
    assert_eq!(a.body["allowed"], false, "{a:?}");

    // The caller's own permissions; the administrator's views agree.
    let a = s.get("/v1/permissions?service=docs", Some(&token)).await;
    ok(&a, 200);
    assert_eq!(a.body, json!({"service": "docs", "permissions": ["read"]}));
    let a = s
        .get(
            &format!("/v1/admin/users/{}/permissions?service=docs", alice.id),
            Some(&admin),
        )
        .await;
    assert_eq!(a.body["permissions"], json!(["read"]), "{a:?}");
    let a = s
        .get(&format!("/v1/admin/users/{}/roles", alice.id), Some(&admin))
        .await;
    assert_eq!(
        a.body,
        json!([{"service": "docs", "role": "reader"}]),
        "{a:?}"
    );
    let a = s
        .get("/v1/admin/services/docs/roles/reader/users", Some(&admin))
        .await;
    assert_eq!(a.body, json!([alice.id.to_string()]), "{a:?}");
    let a = s.get("/v1/admin/rbac", Some(&admin)).await;
    ok(&a, 200);
    assert!(
        a.body["assignments"]
            .as_array()
            .unwrap()
            .contains(&json!({"user": alice.id.to_string(), "role": "reader", "service": "docs"})),
        "{a:?}"
    );

    // Duplicates are conflicts.
    put(&s, &assignment(&alice), None, &admin)
        .await
        .assert_problem(409, "conflict");
    s.post("/v1/admin/services", json!({"name": "docs"}), Some(&admin))
        .await
        .assert_problem(409, "conflict");

    // Revoked: denied at the next decision; nothing left to revoke.
    ok(&s.delete(&assignment(&alice), Some(&admin)).await, 204);
    let a = s.post("/v1/authorize", read_docs(), Some(&token)).await;
    ok(&a, 200);
    assert_eq!(a.body["allowed"], false, "{a:?}");
    s.delete(&assignment(&alice), Some(&admin))
        .await
        .assert_problem(404, "not_found");
    let a = s.get("/v1/permissions?service=docs", Some(&token)).await;
    assert_eq!(a.body["permissions"], json!([]), "{a:?}");
}

/// A policy demanding a recent authentication: a stale session's request
/// is the 403 `step_up_required` problem naming what would do; a password
/// step-up on the session satisfies it and the same request is allowed.
async fn a_stale_session_is_told_to_step_up_and_then_allowed<S: ApiStore>(s: Server<S>) {
    let (_, admin) = s.admin("root@example.org").await;
    let body = json!({"schema": DOC_SCHEMA, "policies": FRESH_POLICY});
    ok(
        &put(&s, "/v1/admin/policies", Some(body), &admin).await,
        200,
    );
    let alice = s.user("alice@example.org").await;
    let token = s.session_for(&alice).await;

    let a = s.post("/v1/authorize", delete_doc(), Some(&token)).await;
    ok(&a, 200);
    assert_eq!(a.body["allowed"], true, "fresh: {a:?}");

    s.world.clock.advance(chrono::Duration::minutes(10));
    let a = s.post("/v1/authorize", delete_doc(), Some(&token)).await;
    a.assert_problem(403, "step_up_required");
    assert_eq!(
        a.body["step_up"],
        json!({"min_factors": 1, "any_of": [], "max_age_seconds": 299}),
        "{a:?}"
    );

    let a = s
        .post(
            "/v1/step-up",
            json!({"factors": ["password"]}),
            Some(&token),
        )
        .await;
    ok(&a, 200);
    let flow = a.str("flow");
    let a = s
        .post(
            "/v1/step-up/submit",
            json!({"flow": flow, "factor": "password", "response": PASSWORD}),
            Some(&token),
        )
        .await;
    ok(&a, 200);
    assert_eq!(a.body["status"], "authenticated", "{a:?}");
    assert!(a.body["stepped_up"].is_object(), "{a:?}");

    let a = s.post("/v1/authorize", delete_doc(), Some(&token)).await;
    ok(&a, 200);
    assert_eq!(a.body["allowed"], true, "{a:?}");
    assert_eq!(a.body["reasons"], json!(["delete-needs-fresh-auth"]));
}

/// What the admin endpoints hold, read by an administrator.
async fn state<S: ApiStore>(s: &Server<S>, admin: &str) -> (Value, Value) {
    let rbac = s.get("/v1/admin/rbac", Some(admin)).await;
    ok(&rbac, 200);
    let policies = s.get("/v1/admin/policies", Some(admin)).await;
    ok(&policies, 200);
    (rbac.body, policies.body)
}

/// Every administrative endpoint of this group refuses a signed-in user
/// who is not an administrator (403) and an anonymous caller (401), with
/// valid requests that an administrator's would carry out, and nothing
/// changes.
async fn non_admins_are_refused_by_every_admin_endpoint_and_nothing_changes<S: ApiStore>(
    s: Server<S>,
) {
    let (_, admin) = s.admin("root@example.org").await;
    let alice = s.user("alice@example.org").await;
    let token = s.session_for(&alice).await;
    docs_model(&s, &admin).await;
    let before = state(&s, &admin).await;

    let u = alice.id;
    let schema = json!({"schema": DOC_SCHEMA, "policies": OWNER_TEMPLATE, "expected_version": 1});
    let link = json!({"id": "alice-owns", "template": "owner",
        "principal": format!("Countersign::User::\"{u}\"")});
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            "/v1/admin/services".into(),
            Some(json!({"name": "wiki"})),
        ),
        (Method::GET, "/v1/admin/services".into(), None),
        (Method::DELETE, "/v1/admin/services/docs".into(), None),
        (
            Method::POST,
            "/v1/admin/roles".into(),
            Some(json!({"name": "editor"})),
        ),
        (Method::GET, "/v1/admin/roles".into(), None),
        (Method::DELETE, "/v1/admin/roles/reader".into(), None),
        (
            Method::POST,
            "/v1/admin/permissions".into(),
            Some(json!({"name": "admin"})),
        ),
        (Method::GET, "/v1/admin/permissions".into(), None),
        (Method::DELETE, "/v1/admin/permissions/read".into(), None),
        (
            Method::GET,
            "/v1/admin/roles/reader/permissions".into(),
            None,
        ),
        (
            Method::PUT,
            "/v1/admin/roles/reader/permissions/write".into(),
            None,
        ),
        (
            Method::DELETE,
            "/v1/admin/roles/reader/permissions/read".into(),
            None,
        ),
        (Method::GET, "/v1/admin/services/docs/roles".into(), None),
        (
            Method::GET,
            "/v1/admin/services/docs/roles/reader/permissions".into(),
            None,
        ),
        (
            Method::PUT,
            "/v1/admin/services/docs/roles/reader/permissions/write".into(),
            None,
        ),
        (
            Method::DELETE,
            "/v1/admin/services/docs/roles/reader/permissions/read".into(),
            None,
        ),
        (
            Method::GET,
            "/v1/admin/services/docs/roles/reader/users".into(),
            None,
        ),
        (Method::GET, "/v1/admin/rbac".into(), None),
        (Method::GET, format!("/v1/admin/users/{u}/roles"), None),
        (
            Method::PUT,
            format!("/v1/admin/users/{u}/roles/docs/reader"),
            None,
        ),
        (
            Method::DELETE,
            format!("/v1/admin/users/{u}/roles/docs/reader"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/admin/users/{u}/permissions?service=docs"),
            None,
        ),
        (
            Method::PUT,
            format!("/v1/admin/users/{u}/permissions/docs/write"),
            None,
        ),
        (
            Method::DELETE,
            format!("/v1/admin/users/{u}/permissions/docs/read"),
            None,
        ),
        (Method::GET, "/v1/admin/policies".into(), None),
        (Method::PUT, "/v1/admin/policies".into(), Some(schema)),
        (
            Method::POST,
            "/v1/admin/policies/validate".into(),
            Some(json!({"schema": DOC_SCHEMA, "policies": FRESH_POLICY})),
        ),
        (Method::POST, "/v1/admin/policies/links".into(), Some(link)),
        (
            Method::DELETE,
            "/v1/admin/policies/links/alice-owns".into(),
            None,
        ),
    ];
    for (method, path, body) in calls {
        let a = s
            .send(method.clone(), &path, body.clone(), Some(&token))
            .await;
        assert_eq!(a.body["code"], "forbidden", "{method} {path}: {a:?}");
        a.assert_problem(403, "forbidden");
        let a = s.send(method.clone(), &path, body, None).await;
        assert_eq!(a.status, 401, "{method} {path} anonymous: {a:?}");
    }
    assert_eq!(
        state(&s, &admin).await,
        before,
        "a refused request changed something"
    );
    // Alice may still ask about herself.
    ok(
        &s.post("/v1/authorize", read_docs(), Some(&token)).await,
        200,
    );
    ok(
        &s.get("/v1/permissions?service=docs", Some(&token)).await,
        200,
    );
}

/// A model that does not validate is a 400 whose detail carries Cedar's
/// diagnostics, and the stored version stays; a stale `expected_version`
/// is a 409 and changes nothing.
async fn invalid_policies_are_refused_with_diagnostics_and_the_old_version_stays<S: ApiStore>(
    s: Server<S>,
) {
    let (_, admin) = s.admin("root@example.org").await;
    let first = json!({"schema": DOC_SCHEMA, "policies": FRESH_POLICY});
    ok(
        &put(&s, "/v1/admin/policies", Some(first), &admin).await,
        200,
    );

    let bad = json!({"schema": DOC_SCHEMA, "policies": UNDECLARED_ACTION, "expected_version": 1});
    let a = put(&s, "/v1/admin/policies", Some(bad), &admin).await;
    a.assert_problem(400, "invalid_input");
    let detail = a.str("detail");
    assert!(
        detail.starts_with("policies do not validate against the schema: ")
            && detail.contains("nope"),
        "{detail}"
    );
    let unparsable = json!({"schema": "namespace {", "policies": "", "expected_version": 1});
    let a = put(&s, "/v1/admin/policies", Some(unparsable), &admin).await;
    a.assert_problem(400, "invalid_input");
    assert!(a.str("detail").starts_with("invalid schema: "), "{a:?}");

    // Stale: the tenant has version 1, not none, not 7.
    for stale in [json!(null), json!(7)] {
        let body = json!({"schema": DOC_SCHEMA, "policies": "", "expected_version": stale});
        put(&s, "/v1/admin/policies", Some(body), &admin)
            .await
            .assert_problem(409, "conflict");
    }

    let a = s.get("/v1/admin/policies", Some(&admin)).await;
    ok(&a, 200);
    assert_eq!(a.body["version"], 1, "{a:?}");
    assert_eq!(a.body["policies"], FRESH_POLICY);
    assert_eq!(a.body["schema"], DOC_SCHEMA);

    let next = json!({"schema": DOC_SCHEMA, "policies": "", "expected_version": 1});
    let a = put(&s, "/v1/admin/policies", Some(next), &admin).await;
    ok(&a, 200);
    assert_eq!(a.body["version"], 2);
}

/// The validate endpoint reports Cedar's diagnostics for a model that
/// would be refused, and accepts a valid one, saving neither.
async fn validate_reports_errors_without_saving<S: ApiStore>(s: Server<S>) {
    let (_, admin) = s.admin("root@example.org").await;
    let a = s
        .post(
            "/v1/admin/policies/validate",
            json!({"schema": DOC_SCHEMA, "policies": UNDECLARED_ACTION}),
            Some(&admin),
        )
        .await;
    ok(&a, 200);
    assert_eq!(a.body["valid"], false, "{a:?}");
    let errors = a.body["errors"].as_array().unwrap();
    assert!(
        !errors.is_empty() && errors.iter().any(|e| e.as_str().unwrap().contains("nope")),
        "{a:?}"
    );

    let a = s
        .post(
            "/v1/admin/policies/validate",
            json!({"schema": DOC_SCHEMA, "policies": FRESH_POLICY}),
            Some(&admin),
        )
        .await;
    ok(&a, 200);
    assert_eq!(a.body, json!({"valid": true, "errors": []}));

    let a = s.get("/v1/admin/policies", Some(&admin)).await;
    ok(&a, 200);
    assert!(a.body.get("version").is_none(), "nothing saved: {a:?}");
    assert_eq!(a.body["policies"], "");
}

/// A template link is a new version that allows its principal; saving
/// the policies again without `links` keeps it; unlinking removes it
/// (twice: 404).
async fn template_links_are_added_kept_across_saves_and_removed<S: ApiStore>(s: Server<S>) {
    let (_, admin) = s.admin("root@example.org").await;
    let alice = s.user("alice@example.org").await;
    let token = s.session_for(&alice).await;
    let body = json!({"schema": DOC_SCHEMA, "policies": OWNER_TEMPLATE});
    ok(
        &put(&s, "/v1/admin/policies", Some(body), &admin).await,
        200,
    );
    let allowed = |a: &Answer| a.body["allowed"].as_bool().unwrap();
    assert!(!allowed(
        &s.post("/v1/authorize", delete_doc(), Some(&token)).await
    ));

    let link = json!({"id": "alice-owns", "template": "owner",
        "principal": format!("Countersign::User::\"{}\"", alice.id)});
    let a = s.post("/v1/admin/policies/links", link, Some(&admin)).await;
    ok(&a, 200);
    assert_eq!(a.body["version"], 2);
    assert!(allowed(
        &s.post("/v1/authorize", delete_doc(), Some(&token)).await
    ));

    // Saved again without `links`: the link stays.
    let again = json!({"schema": DOC_SCHEMA, "policies": OWNER_TEMPLATE, "expected_version": 2});
    ok(
        &put(&s, "/v1/admin/policies", Some(again), &admin).await,
        200,
    );
    let a = s.get("/v1/admin/policies", Some(&admin)).await;
    assert_eq!(a.body["version"], 3);
    assert_eq!(a.body["links"][0]["id"], "alice-owns", "{a:?}");
    assert!(allowed(
        &s.post("/v1/authorize", delete_doc(), Some(&token)).await
    ));

    ok(
        &s.delete("/v1/admin/policies/links/alice-owns", Some(&admin))
            .await,
        204,
    );
    assert!(!allowed(
        &s.post("/v1/authorize", delete_doc(), Some(&token)).await
    ));
    s.delete("/v1/admin/policies/links/alice-owns", Some(&admin))
        .await
        .assert_problem(404, "not_found");
    // A link to a template that does not exist is refused with Cedar's
    // reason.
    let dangling = json!({"id": "x", "template": "nope", "principal": "Countersign::User::\"u\""});
    s.post("/v1/admin/policies/links", dangling, Some(&admin))
        .await
        .assert_problem(400, "invalid_input");
}

/// Uids that are not Cedar entity uids, and names that are not RBAC
/// names, are 400 problems that change nothing.
async fn malformed_uids_and_names_are_400_problems<S: ApiStore>(s: Server<S>) {
    let (_, admin) = s.admin("root@example.org").await;
    let alice = s.user("alice@example.org").await;
    let token = s.session_for(&alice).await;
    let before = state(&s, &admin).await;
    for body in [
        json!({"action": "read", "resource": "Countersign::Service::\"docs\""}),
        json!({"action": "App::Action::\"read\"", "resource": "Doc::"}),
        json!({"action": "App::Action::\"read\"", "resource": ""}),
        json!({"action": format!("App::Action::\"{}\"", "a".repeat(2000)), "resource": "Doc::\"1\""}),
    ] {
        let a = s.post("/v1/authorize", body.clone(), Some(&token)).await;
        assert_eq!(a.status, 400, "{body}: {a:?}");
        a.assert_problem(400, "invalid_input");
    }
    // A context must be an object.
    let a = s
        .post(
            "/v1/authorize",
            json!({"action": "App::Action::\"read\"", "resource": "Doc::\"1\"", "context": [1]}),
            Some(&token),
        )
        .await;
    assert!(a.status.is_client_error(), "{a:?}");

    for name in ["", "a/b", "tab\there", &"x".repeat(129)] {
        let a = s
            .post("/v1/admin/services", json!({"name": name}), Some(&admin))
            .await;
        a.assert_problem(400, "invalid_input");
    }
    s.delete("/v1/admin/services/a%2Fb", Some(&admin))
        .await
        .assert_problem(400, "invalid_input");
    s.get("/v1/permissions?service=a%2Fb", Some(&token))
        .await
        .assert_problem(400, "invalid_input");
    s.get("/v1/permissions", Some(&token))
        .await
        .assert_problem(400, "invalid_input");
    put(
        &s,
        "/v1/admin/users/not-a-uuid/roles/docs/reader",
        None,
        &admin,
    )
    .await
    .assert_problem(400, "invalid_input");
    assert_eq!(state(&s, &admin).await, before);
}

/// A user of another tenant answers exactly like an unknown user (404,
/// same body) on every per-user endpoint, and nothing is written;
/// unknown services, roles and grants are 404s too.
async fn another_tenants_user_and_unknown_names_are_404s<S: ApiStore>(s: Server<S>) {
    let (_, admin) = s.admin("root@example.org").await;
    docs_model(&s, &admin).await;
    let beta = s
        .world
        .svc
        .provision_tenant(NewTenant::password_only("beta", "Beta").unwrap())
        .await
        .unwrap();
    let bob = s
        .world
        .svc
        .register_user(
            beta.id,
            NewUser {
                identifier: "bob@example.org",
                password: Some(PASSWORD),
                state: Some(AccountState::Active),
                ..NewUser::default()
            },
            &s.world.client,
        )
        .await
        .unwrap();
    let unknown = "01890000-0000-7000-8000-000000000001";
    let before = state(&s, &admin).await;
    let calls = |u: String| -> Vec<(Method, String)> {
        vec![
            (Method::GET, format!("/v1/admin/users/{u}/roles")),
            (
                Method::PUT,
                format!("/v1/admin/users/{u}/roles/docs/reader"),
            ),
            (
                Method::DELETE,
                format!("/v1/admin/users/{u}/roles/docs/reader"),
            ),
            (
                Method::GET,
                format!("/v1/admin/users/{u}/permissions?service=docs"),
            ),
            (
                Method::PUT,
                format!("/v1/admin/users/{u}/permissions/docs/read"),
            ),
            (
                Method::DELETE,
                format!("/v1/admin/users/{u}/permissions/docs/read"),
            ),
        ]
    };
    for ((method, other), (_, nobody)) in calls(bob.id.to_string())
        .into_iter()
        .zip(calls(unknown.into()))
    {
        let a = s.send(method.clone(), &other, None, Some(&admin)).await;
        a.assert_problem(404, "not_found");
        let b = s.send(method.clone(), &nobody, None, Some(&admin)).await;
        assert_eq!(a.body, b.body, "{method} {other}");
    }
    assert_eq!(state(&s, &admin).await, before);

    for (method, path) in [
        (Method::DELETE, "/v1/admin/services/nope"),
        (Method::DELETE, "/v1/admin/roles/nope"),
        (Method::DELETE, "/v1/admin/permissions/nope"),
        (Method::GET, "/v1/admin/services/nope/roles"),
        (Method::GET, "/v1/admin/roles/nope/permissions"),
        (Method::GET, "/v1/admin/services/nope/roles/reader/users"),
        (
            Method::PUT,
            "/v1/admin/services/nope/roles/reader/permissions/read",
        ),
        (Method::PUT, "/v1/admin/roles/reader/permissions/nope"),
        (Method::DELETE, "/v1/admin/roles/reader/permissions/read"),
    ] {
        let a = s.send(method.clone(), path, None, Some(&admin)).await;
        assert_eq!(a.status, 404, "{method} {path}: {a:?}");
        a.assert_problem(404, "not_found");
    }
    assert_eq!(state(&s, &admin).await, before);
}
