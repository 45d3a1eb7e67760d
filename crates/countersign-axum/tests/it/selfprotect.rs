//! countersign's administration protects itself over HTTP: an
//! administrator cannot delete the `countersign` service, the `admin`
//! role or an administrative permission, strip the role's grants, or take
//! their own `admin` role; another administrator can take it.

use countersign_axum::ApiStore;
use reqwest::Method;
use serde_json::json;

use crate::harness::Server;

crate::on_memory!(an_administrator_cannot_lock_the_tenant_out);

async fn an_administrator_cannot_lock_the_tenant_out<S: ApiStore>(s: Server<S>) {
    let (root, token) = s.admin("root@example.org").await;
    let mine = format!("/v1/admin/users/{}/roles/countersign/admin", root.id);
    for (method, path) in [
        (Method::DELETE, "/v1/admin/services/countersign".to_owned()),
        (Method::DELETE, "/v1/admin/roles/admin".to_owned()),
        (
            Method::DELETE,
            "/v1/admin/permissions/manage_rbac".to_owned(),
        ),
        (
            Method::DELETE,
            "/v1/admin/roles/admin/permissions/manage_users".to_owned(),
        ),
        (
            Method::DELETE,
            "/v1/admin/services/countersign/roles/admin/permissions/manage_rbac".to_owned(),
        ),
        (Method::DELETE, mine.clone()),
    ] {
        let a = s.send(method.clone(), &path, None, Some(&token)).await;
        a.assert_problem(409, "conflict");
    }
    // Still an administrator.
    assert_eq!(s.get("/v1/admin/users", Some(&token)).await.status, 200);

    // A second administrator may take root's role; root then may not administer.
    let (_, other) = s.admin("other@example.org").await;
    let a = s.send(Method::DELETE, &mine, None, Some(&other)).await;
    assert_eq!(a.status, 204, "{a:?}");
    s.get("/v1/admin/users", Some(&token))
        .await
        .assert_problem(403, "forbidden");
    // Ordinary RBAC changes are untouched by the rule.
    let a = s
        .post("/v1/admin/services", json!({"name": "docs"}), Some(&other))
        .await;
    assert_eq!(a.status, 201, "{a:?}");
    let a = s
        .send(
            Method::DELETE,
            "/v1/admin/services/docs",
            None,
            Some(&other),
        )
        .await;
    assert_eq!(a.status, 204, "{a:?}");
}
