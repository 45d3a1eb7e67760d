//! The operator's tenants over HTTP: provisioning (with a first
//! administrator or without) and reading, only with `manage_tenants`.

use countersign_axum::ApiStore;
use serde_json::json;

use crate::admin::make_operator;
use crate::harness::Server;

crate::on_memory!(only_the_operator_provisions_and_reads_tenants);

/// The test run on every backend (its own module: `on_memory!` makes
/// another `memory`).
mod every_backend {
    use super::a_tenant_provisioned_with_an_admin_is_run_by_that_admin;

    crate::on_every_backend!(a_tenant_provisioned_with_an_admin_is_run_by_that_admin);
}

/// Tenants are provisioned and read only with `manage_tenants`, which a
/// tenant administrator does not hold until granted.
async fn only_the_operator_provisions_and_reads_tenants<S: ApiStore>(s: Server<S>) {
    let (_, admin) = s.admin("root@example.org").await;
    let body = json!({"slug": "globex", "name": "Globex Corp"});
    s.post("/v1/admin/tenants", body.clone(), Some(&admin))
        .await
        .assert_problem(403, "forbidden");
    assert!(s.world.svc.tenant_by_slug("globex").await.is_err());

    make_operator(&s).await;
    let a = s
        .post("/v1/admin/tenants", body.clone(), Some(&admin))
        .await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(a.body["slug"], "globex");
    assert_eq!(a.body["factors"], json!(["password"]));
    let id = a.str("id");
    let a = s.get("/v1/admin/tenants/globex", Some(&admin)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["id"], id.as_str());
    assert_eq!(a.body["name"], "Globex Corp");

    s.post("/v1/admin/tenants", body, Some(&admin))
        .await
        .assert_problem(409, "conflict");
    s.post(
        "/v1/admin/tenants",
        json!({"slug": "Not A Slug", "name": "X"}),
        Some(&admin),
    )
    .await
    .assert_problem(400, "invalid_input");
    s.get("/v1/admin/tenants/nobody", Some(&admin))
        .await
        .assert_problem(404, "not_found");
}

/// A tenant provisioned with a first administrator: the answer carries
/// their generated password once (and is not to be cached); with it they
/// sign in to the new tenant and administer it, and only it: they do not
/// provision tenants. A bad identifier provisions nothing.
async fn a_tenant_provisioned_with_an_admin_is_run_by_that_admin<S: ApiStore>(s: Server<S>) {
    let (_, operator) = s.admin("root@example.org").await;
    make_operator(&s).await;

    let bad = json!({"slug": "initech", "name": "Initech", "admin": {"identifier": " "}});
    s.post("/v1/admin/tenants", bad, Some(&operator))
        .await
        .assert_problem(400, "invalid_input");
    assert!(s.world.svc.tenant_by_slug("initech").await.is_err());

    let body =
        json!({"slug": "initech", "name": "Initech", "admin": {"identifier": "bill@initech.com"}});
    let a = s.post("/v1/admin/tenants", body, Some(&operator)).await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(a.headers["cache-control"], "no-store");
    assert_eq!(a.body["slug"], "initech");
    assert_eq!(a.body["admin"]["identifier"], "bill@initech.com");
    let password = a.body["admin"]["password"].as_str().unwrap().to_owned();
    assert_eq!(password.len(), 24);

    // The administrator signs in to their tenant with it.
    let login = json!({"identifier": "bill@initech.com", "password": password});
    let signed = s
        .post("/v1/tenants/initech/login/password", login, None)
        .await;
    assert_eq!(signed.status, 200, "{signed:?}");
    assert_eq!(signed.body["status"], "authenticated", "{signed:?}");
    let token = signed.body["session"]["session_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        s.get("/v1/session", Some(&token)).await.body["user_id"],
        a.body["admin"]["id"]
    );

    // They administer the new tenant: its settings and its users.
    let mine = s.get("/v1/admin/tenant", Some(&token)).await;
    assert_eq!(mine.status, 200, "{mine:?}");
    assert_eq!(mine.body["slug"], "initech");
    let peter = json!({"identifier": "peter@initech.com", "password": "a long enough passphrase"});
    let created = s.post("/v1/admin/users", peter, Some(&token)).await;
    assert_eq!(created.status, 201, "{created:?}");
    let listed = s.get("/v1/admin/users", Some(&token)).await;
    assert_eq!(listed.status, 200, "{listed:?}");
    assert!(!listed.body.to_string().contains("root@example.org"));

    // They are not the operator.
    s.post(
        "/v1/admin/tenants",
        json!({"slug": "evil", "name": "Evil"}),
        Some(&token),
    )
    .await
    .assert_problem(403, "forbidden");
    s.get("/v1/admin/tenants/acme", Some(&token))
        .await
        .assert_problem(403, "forbidden");
}
