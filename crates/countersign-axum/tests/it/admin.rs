//! Administration over HTTP: users, sessions, the audit trail, the
//! caller's tenant and the operator's tenants. Every endpoint asks the
//! Cedar engine first and acts only in the caller's tenant.

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use countersign_axum::ApiStore;
use countersign_core::authz::{EntityUid, Resource};
use countersign_core::{
    AccountState, AuditFilter, Clock, FactorResponse, LoginStatus, NewTenant, NewUser, RbacChange,
    RbacKind, RbacName, RoleGrant, Tenant, User,
};
use countersign_testkit::fixtures::PASSWORD;
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Answer, Server};

/// The one test run on every backend (its own module: `on_memory!` makes
/// another `memory`).
mod every_backend {
    use super::users_are_created_listed_suspended_reactivated_and_erased;

    crate::on_every_backend!(users_are_created_listed_suspended_reactivated_and_erased);
}

crate::on_memory!(
    non_admins_get_403_everywhere_and_nothing_is_written,
    another_tenants_users_and_sessions_are_not_found,
    a_stale_expected_updated_at_is_a_409_and_changes_nothing,
    the_audit_trail_is_the_tenants_own_newest_first,
    bad_query_parameters_and_bodies_are_400_problems_and_write_nothing,
    a_tier_change_is_seen_by_the_next_cedar_decision,
    admins_list_and_end_a_users_sessions_and_reset_passwords,
    the_export_holds_the_user_and_their_events_without_secrets,
    the_tenant_is_read_its_key_rotated_and_its_methods_toggled,
);

/// PATCH JSON.
async fn patch<S: ApiStore>(s: &Server<S>, path: &str, body: Value, token: &str) -> Answer {
    s.send(Method::PATCH, path, Some(body), Some(token)).await
}

/// Every audit event of the fixture tenant (at most 1000).
async fn all_events<S: ApiStore>(s: &Server<S>) -> usize {
    let filter = AuditFilter {
        limit: Some(AuditFilter::MAX_LIMIT),
        ..AuditFilter::default()
    };
    s.world
        .store
        .query_events(s.world.tenant.id, &filter)
        .await
        .unwrap()
        .len()
}

/// A second tenant, `globex` (password only), with the active user
/// `gus@globex.org`, and a live session token of his.
async fn globex<S: ApiStore>(s: &Server<S>) -> (Tenant, User, String) {
    let (w, c) = (&s.world, &s.world.client);
    let spec = NewTenant::password_only("globex", "Globex Corp").unwrap();
    let t = w.svc.provision_tenant(spec).await.unwrap();
    let new = NewUser {
        identifier: "gus@globex.org",
        password: Some(PASSWORD),
        state: Some(AccountState::Active),
        ..NewUser::default()
    };
    let gus = w.svc.register_user(t.id, new, c).await.unwrap();
    let (flow, _) = w
        .svc
        .begin_login(t.id, "gus@globex.org", None, c)
        .await
        .unwrap();
    let password = FactorResponse::Password(PASSWORD);
    let sub = w
        .svc
        .submit(t.id, flow.expose(), password, c)
        .await
        .unwrap();
    let LoginStatus::Authenticated(auth) = sub.status else {
        panic!("gus did not sign in: {:?}", sub.status)
    };
    let issued = w.sessions.issue(&auth, c).await.unwrap();
    let gus = w.svc.user(t.id, gus.id).await.unwrap();
    (t, gus, issued.session_token.expose().to_owned())
}

/// Gives the tenant's admin role the operator's `manage_tenants`.
pub(crate) async fn make_operator<S: ApiStore>(s: &Server<S>) {
    let name = |n: &str| RbacName::new(n).unwrap();
    let changes = [
        RbacChange::Create {
            kind: RbacKind::Permission,
            name: name("manage_tenants"),
        },
        RbacChange::Grant(RoleGrant {
            role: name("admin"),
            permission: name("manage_tenants"),
            service: Some(name("countersign")),
        }),
    ];
    for c in &changes {
        s.api
            .authz()
            .change_rbac(s.world.tenant.id, c, &s.world.client)
            .await
            .unwrap();
    }
}

/// A request: `"METHOD /path"` and an optional JSON body.
fn endpoint(spec: &str, body: Option<Value>) -> (Method, String, Option<Value>) {
    let (method, path) = spec.split_once(' ').unwrap();
    (Method::from_str(method).unwrap(), path.to_owned(), body)
}

/// Every endpoint about the user `id` (a PATCH from `updated_at`).
fn user_endpoints(id: &str, updated_at: DateTime<Utc>) -> Vec<(Method, String, Option<Value>)> {
    let u = format!("/v1/admin/users/{id}");
    let profile = json!({"expected_updated_at": updated_at, "display_name": "Pwned"});
    let password = json!({"password": "another long password 42"});
    [
        ("GET", "", None),
        ("PATCH", "", Some(profile)),
        ("DELETE", "", None),
        ("POST", "/suspend", Some(json!({}))),
        ("POST", "/reactivate", None),
        ("GET", "/export", None),
        ("GET", "/sessions", None),
        ("DELETE", "/sessions", None),
        ("POST", "/password", Some(password)),
    ]
    .into_iter()
    .map(|(m, tail, body)| endpoint(&format!("{m} {u}{tail}"), body))
    .collect()
}

/// The ids of a page of users.
fn ids(a: &Answer) -> Vec<String> {
    a.body["users"]
        .as_array()
        .unwrap_or_else(|| panic!("no users in {a:?}"))
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The guarantee on every backend: an account's whole administrative life
/// over HTTP: created, found by search across pages that follow `next`,
/// suspended (its live session stops working at once), reactivated,
/// erased (gone afterwards).
async fn users_are_created_listed_suspended_reactivated_and_erased<S: ApiStore>(s: Server<S>) {
    let (_, admin) = s.admin("root@example.org").await;
    let mut created = Vec::new();
    for n in 1..=3 {
        let a = s
            .post(
                "/v1/admin/users",
                json!({"identifier": format!("member-{n}@example.org"), "password": PASSWORD,
                       "state": "active", "display_name": format!("Member {n}")}),
                Some(&admin),
            )
            .await;
        assert_eq!(a.status, 201, "{a:?}");
        assert_eq!(a.body["state"], "active");
        assert!(a.body.get("password").is_none(), "{a:?}");
        created.push(a.str("id"));
    }
    // Three matches, pages of two: the second page is reached by `next`
    // and is the last.
    let first = s
        .get("/v1/admin/users?q=MEMBER-&limit=2", Some(&admin))
        .await;
    assert_eq!(first.status, 200, "{first:?}");
    let first_ids = ids(&first);
    assert_eq!(first_ids.len(), 2, "{first:?}");
    let next = first.str("next");
    assert_eq!(next, first_ids[1]);
    let second = s
        .get(
            &format!("/v1/admin/users?q=member-&limit=2&after={next}"),
            Some(&admin),
        )
        .await;
    assert_eq!(second.status, 200, "{second:?}");
    let second_ids = ids(&second);
    assert_eq!(second_ids.len(), 1, "{second:?}");
    assert!(second.body["next"].is_null(), "{second:?}");
    let mut seen: Vec<String> = first_ids.into_iter().chain(second_ids).collect();
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "ordered by id: {seen:?}"
    );
    seen.sort();
    created.sort();
    assert_eq!(seen, created);

    let id = s.world.user_by("member-1@example.org").await.id.to_string();
    let member = s.world.user_by("member-1@example.org").await;
    let token = s.session_for(&member).await;
    assert_eq!(s.get("/v1/session", Some(&token)).await.status, 200);

    let a = s
        .post(
            &format!("/v1/admin/users/{id}/suspend"),
            json!({"reason": "chargeback"}),
            Some(&admin),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["state"], "suspended");
    s.get("/v1/session", Some(&token))
        .await
        .assert_problem(401, "unauthenticated");
    let suspended = s.get("/v1/admin/users?state=suspended", Some(&admin)).await;
    assert_eq!(ids(&suspended), vec![id.clone()]);

    let a = s
        .post(
            &format!("/v1/admin/users/{id}/reactivate"),
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["state"], "active");
    assert_eq!(
        s.get(&format!("/v1/admin/users/{id}"), Some(&admin))
            .await
            .body["state"],
        "active"
    );

    let a = s
        .delete(&format!("/v1/admin/users/{id}"), Some(&admin))
        .await;
    assert_eq!(a.status, 204, "{a:?}");
    s.get(&format!("/v1/admin/users/{id}"), Some(&admin))
        .await
        .assert_problem(404, "not_found");
    assert!(s.world.user_opt("member-1@example.org").await.is_none());
    let rest = s.get("/v1/admin/users?q=member-", Some(&admin)).await;
    assert_eq!(ids(&rest).len(), 2, "{rest:?}");
}

/// Every administrative endpoint refuses a signed-in user without the
/// permission with 403 `forbidden`, before it reads or writes anything:
/// the audit trail (every change writes to it) is unchanged and the
/// targets are untouched.
async fn non_admins_get_403_everywhere_and_nothing_is_written<S: ApiStore>(s: Server<S>) {
    // An administrator exists, so the tenant has the admin role.
    s.admin("root@example.org").await;
    let alice = s.user("alice@example.org").await;
    let token = s.session_for(&alice).await;
    let bob = s.user("bob@example.org").await;
    let bob_token = s.session_for(&bob).await;
    let bob = s.world.user_by("bob@example.org").await;
    let bob_session = s.get("/v1/session", Some(&bob_token)).await.str("id");
    let before = all_events(&s).await;

    let mallory = json!({"identifier": "mallory@example.org", "password": PASSWORD});
    let mut cases = user_endpoints(&bob.id.to_string(), bob.updated_at);
    for (spec, body) in [
        ("GET /v1/admin/users", None),
        ("POST /v1/admin/users", Some(mallory)),
        (&*format!("DELETE /v1/admin/sessions/{bob_session}"), None),
        ("GET /v1/admin/audit", None),
        ("GET /v1/admin/tenant", None),
        ("POST /v1/admin/tenant/keys/rotate", None),
        (
            "PATCH /v1/admin/tenant/methods/passkey",
            Some(json!({"enabled": false})),
        ),
        (
            "POST /v1/admin/tenants",
            Some(json!({"slug": "evil", "name": "Evil"})),
        ),
        ("GET /v1/admin/tenants/acme", None),
    ] {
        cases.push(endpoint(spec, body));
    }
    for (method, path, body) in cases {
        let a = s.send(method.clone(), &path, body, Some(&token)).await;
        assert_eq!(a.status, 403, "{method} {path}: {a:?}");
        a.assert_problem(403, "forbidden");
    }

    assert_eq!(all_events(&s).await, before, "an audited write happened");
    assert!(s.world.user_opt("mallory@example.org").await.is_none());
    let bob_now = s.world.user_by("bob@example.org").await;
    assert_eq!(bob_now, bob);
    assert_eq!(s.get("/v1/session", Some(&bob_token)).await.status, 200);
    assert!(s.world.svc.tenant_by_slug("evil").await.is_err());
}

/// A user or session of another tenant answers exactly like an unknown
/// one (404, the same problem), and is left as it was.
async fn another_tenants_users_and_sessions_are_not_found<S: ApiStore>(s: Server<S>) {
    let (_, admin) = s.admin("root@example.org").await;
    let (_, gus, gus_token) = globex(&s).await;
    let gus_session = s.world.sessions.validate(&gus_token).await.unwrap().id;
    let unknown = "0190f0f0-0000-7000-8000-000000000001";
    let theirs = user_endpoints(&gus.id.to_string(), gus.updated_at);
    let nobodys = user_endpoints(unknown, gus.updated_at);
    for ((method, path, body), (_, unknown_path, unknown_body)) in theirs.into_iter().zip(nobodys) {
        let a = s.send(method.clone(), &path, body, Some(&admin)).await;
        a.assert_problem(404, "not_found");
        let b = s
            .send(method.clone(), &unknown_path, unknown_body, Some(&admin))
            .await;
        assert_eq!(a.body, b.body, "{method} {path}: not like an unknown id");
    }
    let a = s
        .delete(&format!("/v1/admin/sessions/{gus_session}"), Some(&admin))
        .await;
    a.assert_problem(404, "not_found");
    let b = s
        .delete(&format!("/v1/admin/sessions/{unknown}"), Some(&admin))
        .await;
    assert_eq!(a.body, b.body);

    // Gus and his session are as they were.
    let now = s.world.svc.user(gus.tenant_id, gus.id).await.unwrap();
    assert_eq!(now, gus);
    assert!(s.world.sessions.validate(&gus_token).await.is_ok());
    // And he is in no listing.
    let all = s.get("/v1/admin/users?limit=200", Some(&admin)).await;
    assert!(!ids(&all).contains(&gus.id.to_string()));
}

/// A profile change names the version it was made from; a change from an
/// older version is a 409 `conflict` and writes nothing.
async fn a_stale_expected_updated_at_is_a_409_and_changes_nothing<S: ApiStore>(s: Server<S>) {
    let (_, admin) = s.admin("root@example.org").await;
    let bob = s.user("bob@example.org").await;
    let path = format!("/v1/admin/users/{}", bob.id);
    let v1 = s.get(&path, Some(&admin)).await.body["updated_at"].clone();
    let a = patch(
        &s,
        &path,
        json!({"expected_updated_at": v1, "display_name": "Robert"}),
        &admin,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["display_name"], "Robert");
    let v2 = a.body["updated_at"].clone();
    assert_ne!(v1, v2);

    let before = all_events(&s).await;
    let stale = patch(
        &s,
        &path,
        json!({"expected_updated_at": v1, "display_name": "Bobby"}),
        &admin,
    )
    .await;
    stale.assert_problem(409, "conflict");
    assert_eq!(all_events(&s).await, before);
    let now = s.get(&path, Some(&admin)).await;
    assert_eq!(now.body["display_name"], "Robert");
    assert_eq!(now.body["updated_at"], v2);

    // The current version works, and `null` clears a field.
    let a = patch(
        &s,
        &path,
        json!({"expected_updated_at": v2, "display_name": null}),
        &admin,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.body.get("display_name").is_none(), "{a:?}");
}

/// The audit query answers the tenant's events, newest first, with the
/// actions just done among them; never another tenant's; no secret.
async fn the_audit_trail_is_the_tenants_own_newest_first<S: ApiStore>(s: Server<S>) {
    let (_, admin) = s.admin("root@example.org").await;
    s.world.clock.advance(Duration::seconds(10));
    let a = s
        .post(
            "/v1/admin/users",
            json!({"identifier": "carol@example.org", "password": PASSWORD}),
            Some(&admin),
        )
        .await;
    assert_eq!(a.status, 201, "{a:?}");
    let carol = a.str("id");
    s.world.clock.advance(Duration::seconds(10));
    let a = s
        .post(
            &format!("/v1/admin/users/{carol}/reactivate"),
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    s.world.clock.advance(Duration::seconds(10));
    // Activity in another tenant, at the newest instant.
    let (globex, gus, _) = globex(&s).await;

    let a = s
        .get(&format!("/v1/admin/audit?user={carol}"), Some(&admin))
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    let kinds: Vec<&str> = a.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["user.state_changed", "user.registered"], "{a:?}");
    assert_eq!(a.body["events"][0]["detail"], "state:candidate->active");

    let all = s.get("/v1/admin/audit?limit=1000", Some(&admin)).await;
    let events = all.body["events"].as_array().unwrap();
    assert!(events.len() > 2);
    let tenant = s.world.tenant.id.to_string();
    assert!(
        events.iter().all(|e| e["tenant_id"] == tenant.as_str()),
        "{all:?}"
    );
    let at: Vec<&str> = events.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] >= w[1]), "newest first: {at:?}");
    assert_eq!(events[0]["kind"], "user.state_changed");
    let text = all.body.to_string();
    assert!(!text.contains(PASSWORD) && !text.contains(&admin) && !text.contains("argon2"));

    // Filters: kind, since, limit; another tenant's user has nothing here.
    let a = s
        .get("/v1/admin/audit?kind=user.registered", Some(&admin))
        .await;
    let events = a.body["events"].as_array().unwrap();
    assert!(events.iter().all(|e| e["kind"] == "user.registered"));
    assert!(events.iter().any(|e| e["user_id"] == carol.as_str()));
    let since = (s.world.clock.now() - Duration::seconds(15))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let a = s
        .get(&format!("/v1/admin/audit?since={since}"), Some(&admin))
        .await;
    assert_eq!(a.body["events"].as_array().unwrap().len(), 1, "{a:?}");
    let a = s.get("/v1/admin/audit?limit=1", Some(&admin)).await;
    assert_eq!(a.body["events"].as_array().unwrap().len(), 1);
    let a = s
        .get(&format!("/v1/admin/audit?user={}", gus.id), Some(&admin))
        .await;
    assert_eq!(a.body["events"], json!([]), "{a:?}");
    assert_ne!(globex.id, s.world.tenant.id);
}

/// Malformed or out-of-range query parameters and refused bodies are 400
/// problems; a refused creation leaves no user behind.
async fn bad_query_parameters_and_bodies_are_400_problems_and_write_nothing<S: ApiStore>(
    s: Server<S>,
) {
    let (_, admin) = s.admin("root@example.org").await;
    let long = "x".repeat(300);
    for query in [
        "/v1/admin/users?state=bogus".to_owned(),
        "/v1/admin/users?tier=NOT%20A%20TIER".to_owned(),
        "/v1/admin/users?limit=0".to_owned(),
        "/v1/admin/users?limit=many".to_owned(),
        "/v1/admin/users?limit=-1".to_owned(),
        "/v1/admin/users?after=not-a-uuid".to_owned(),
        "/v1/admin/users?after=00000000-0000-0000-0000-000000000000".to_owned(),
        "/v1/admin/users?unknown=1".to_owned(),
        format!("/v1/admin/users?q={long}"),
        "/v1/admin/audit?kind=nope".to_owned(),
        "/v1/admin/audit?status=meh".to_owned(),
        "/v1/admin/audit?user=xyz".to_owned(),
        "/v1/admin/audit?since=yesterday".to_owned(),
        "/v1/admin/audit?limit=0".to_owned(),
        "/v1/admin/audit?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z".to_owned(),
        "/v1/admin/audit?unknown=1".to_owned(),
    ] {
        let a = s.get(&query, Some(&admin)).await;
        assert_eq!(a.status, 400, "{query}: {a:?}");
        a.assert_problem(400, "invalid_input");
    }
    // An oversized limit is refused, as the document's maximum says.
    s.get("/v1/admin/users?limit=201", Some(&admin))
        .await
        .assert_problem(400, "invalid_input");
    s.get("/v1/admin/audit?limit=1001", Some(&admin))
        .await
        .assert_problem(400, "invalid_input");

    let before = all_events(&s).await;
    for body in [
        json!({"identifier": "dave@example.org", "state": "suspended"}),
        json!({"identifier": "dave@example.org", "state": "nope"}),
        json!({"identifier": "dave@example.org", "tier": "NOT A TIER"}),
        json!({"identifier": "dave@example.org", "password": "short"}),
        json!({"identifier": "dave@example.org", "email": "not an address"}),
    ] {
        let a = s.post("/v1/admin/users", body.clone(), Some(&admin)).await;
        assert_eq!(a.status, 400, "{body}: {a:?}");
        assert_eq!(a.content_type, "application/problem+json");
    }
    let a = s
        .post(
            "/v1/admin/users",
            json!({"identifier": "dave@example.org", "admin": true}),
            Some(&admin),
        )
        .await;
    a.assert_problem(422, "invalid_body");
    assert!(s.world.user_opt("dave@example.org").await.is_none());
    assert_eq!(all_events(&s).await, before);

    // A duplicate identifier is a conflict.
    s.user("erin@example.org").await;
    s.post(
        "/v1/admin/users",
        json!({"identifier": "erin@example.org"}),
        Some(&admin),
    )
    .await
    .assert_problem(409, "conflict");
}

/// An administrator's tier change reaches the next Cedar decision for that
/// user at once: the engine's cached facts about them are dropped.
async fn a_tier_change_is_seen_by_the_next_cedar_decision<S: ApiStore>(s: Server<S>) {
    let (_, admin) = s.admin("root@example.org").await;
    let t = s.world.tenant.id;
    let schema = r#"
        namespace App {
          entity Feature;
          action use appliesTo { principal: Countersign::User, resource: Feature };
        }
    "#;
    let policies = r#"
        permit(principal, action == App::Action::"use", resource)
          when { principal has tier && principal.tier == "premium" };
    "#;
    s.api
        .authz()
        .save_model(t, schema, policies, None, &s.world.client)
        .await
        .unwrap();
    let alice = s.user("alice@example.org").await;
    let token = s.session_for(&alice).await;
    let auth = s
        .world
        .sessions
        .validate(&token)
        .await
        .unwrap()
        .auth
        .clone();
    let action = EntityUid::from_str(r#"App::Action::"use""#).unwrap();
    let resource = Resource {
        tenant: t,
        uid: EntityUid::from_str(r#"App::Feature::"reports""#).unwrap(),
    };
    let (api, auth, action, resource) = (&s.api, &auth, &action, &resource);
    let decide = move || async move {
        api.authz()
            .decide(auth, action, resource, Default::default())
            .await
            .unwrap()
            .allowed
    };
    assert!(!decide().await, "no tier yet");

    let path = format!("/v1/admin/users/{}", alice.id);
    let v = s.get(&path, Some(&admin)).await.body["updated_at"].clone();
    let a = patch(
        &s,
        &path,
        json!({"expected_updated_at": v, "tier": "premium"}),
        &admin,
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["tier"], "premium");
    assert!(decide().await, "the new tier is seen at once");
}

/// Administrators list a user's sessions, end one by id or all of them,
/// and set a password (which ends the user's sessions too), but never
/// suspend or erase themselves.
async fn admins_list_and_end_a_users_sessions_and_reset_passwords<S: ApiStore>(s: Server<S>) {
    let (_, admin) = s.admin("root@example.org").await;
    let bob = s.user("bob@example.org").await;
    let one = s.session_for(&bob).await;
    let two = s.session_for(&bob).await;
    let three = s.session_for(&bob).await;
    let list = s
        .get(
            &format!("/v1/admin/users/{}/sessions", bob.id),
            Some(&admin),
        )
        .await;
    assert_eq!(list.status, 200, "{list:?}");
    let sessions = list.body.as_array().unwrap();
    assert_eq!(sessions.len(), 3);
    assert!(
        !list.body.to_string().contains("css_"),
        "no token in a listing"
    );

    let first = s.get("/v1/session", Some(&one)).await.str("id");
    let a = s
        .delete(&format!("/v1/admin/sessions/{first}"), Some(&admin))
        .await;
    assert_eq!(a.status, 204, "{a:?}");
    s.get("/v1/session", Some(&one))
        .await
        .assert_problem(401, "unauthenticated");
    s.delete(&format!("/v1/admin/sessions/{first}"), Some(&admin))
        .await
        .assert_problem(404, "not_found");

    let a = s
        .delete(
            &format!("/v1/admin/users/{}/sessions", bob.id),
            Some(&admin),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["ended"], 2);
    s.get("/v1/session", Some(&two))
        .await
        .assert_problem(401, "unauthenticated");

    let four = s.session_for(&bob).await;
    let path = format!("/v1/admin/users/{}/password", bob.id);
    s.post(&path, json!({"password": "short"}), Some(&admin))
        .await
        .assert_problem(400, "invalid_input");
    assert_eq!(s.get("/v1/session", Some(&four)).await.status, 200);
    let a = s
        .post(
            &path,
            json!({"password": "a brand new passphrase 7"}),
            Some(&admin),
        )
        .await;
    assert_eq!(a.status, 204, "{a:?}");
    s.get("/v1/session", Some(&four))
        .await
        .assert_problem(401, "unauthenticated");
    s.get("/v1/session", Some(&three))
        .await
        .assert_problem(401, "unauthenticated");
    // The old password is refused, the new one accepted.
    for (password, refused) in [(PASSWORD, true), ("a brand new passphrase 7", false)] {
        let (flow, _) = s.world.begin("bob@example.org", Some("mfa")).await;
        let sub = s
            .world
            .submit(&flow, FactorResponse::Password(password))
            .await
            .unwrap();
        assert_eq!(sub.refused.is_some(), refused, "{password}: {sub:?}");
    }
    // An administrator cannot suspend or erase their own account here
    // (it could leave the tenant without one).
    let root = s.world.user_by("root@example.org").await.id;
    s.post(
        &format!("/v1/admin/users/{root}/suspend"),
        json!({}),
        Some(&admin),
    )
    .await
    .assert_problem(409, "conflict");
    s.delete(&format!("/v1/admin/users/{root}"), Some(&admin))
        .await
        .assert_problem(409, "conflict");
    // The administrator's own session is untouched throughout.
    assert_eq!(s.get("/v1/session", Some(&admin)).await.status, 200);
}

/// The export is the user's data with their audit events, no secret.
async fn the_export_holds_the_user_and_their_events_without_secrets<S: ApiStore>(s: Server<S>) {
    let (_, admin) = s.admin("root@example.org").await;
    let bob = s.user("bob@example.org").await;
    let token = s.session_for(&bob).await;
    let a = s
        .get(&format!("/v1/admin/users/{}/export", bob.id), Some(&admin))
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["user"]["id"], bob.id.to_string());
    assert!(!a.body["audit_events"].as_array().unwrap().is_empty());
    assert_eq!(a.body["sessions"].as_array().unwrap().len(), 1);
    let text = a.body.to_string();
    for secret in [PASSWORD, "$argon2", token.as_str()] {
        assert!(!text.contains(secret), "the export leaks `{secret}`");
    }
}

/// The caller's tenant: read with its factors and methods, its signing
/// key rotated (the new key is published), its methods toggled (never
/// the last enabled one).
async fn the_tenant_is_read_its_key_rotated_and_its_methods_toggled<S: ApiStore>(s: Server<S>) {
    let (_, admin) = s.admin("root@example.org").await;
    let a = s.get("/v1/admin/tenant", Some(&admin)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["slug"], "acme");
    assert_eq!(a.body["id"], s.world.tenant.id.to_string());
    assert!(
        a.body["factors"]
            .as_array()
            .unwrap()
            .contains(&json!("totp"))
    );
    assert_eq!(a.body["policy"]["lockout"]["max_attempts"], 5);
    let methods = a.body["methods"].as_array().unwrap();
    assert!(
        methods
            .iter()
            .any(|m| m["name"] == "passkey" && m["enabled"] == true)
    );

    let a = s
        .post("/v1/admin/tenant/keys/rotate", json!({}), Some(&admin))
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    let kid = a.str("kid");
    let jwks = s.get(&s.t("/jwks.json"), None).await;
    assert!(jwks.body.to_string().contains(&kid), "{jwks:?}");

    let a = patch(
        &s,
        "/v1/admin/tenant/methods/passkey",
        json!({"enabled": false}),
        &admin,
    )
    .await;
    assert_eq!(a.status, 204, "{a:?}");
    let a = s.get("/v1/admin/tenant", Some(&admin)).await;
    let methods = a.body["methods"].as_array().unwrap();
    assert!(
        methods
            .iter()
            .any(|m| m["name"] == "passkey" && m["enabled"] == false)
    );
    patch(
        &s,
        "/v1/admin/tenant/methods/nothing",
        json!({"enabled": true}),
        &admin,
    )
    .await
    .assert_problem(404, "not_found");
    // `mfa` is now the last enabled method.
    patch(
        &s,
        "/v1/admin/tenant/methods/mfa",
        json!({"enabled": false}),
        &admin,
    )
    .await
    .assert_problem(400, "invalid_input");
}
