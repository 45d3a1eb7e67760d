//! Authorization decisions beside their floor: raw cedar-policy
//! `is_authorized` on the same policy set and entities, with the request
//! built beforehand (so the floor does strictly less work than a
//! decision). Tenants hold 10, 1,000 and 10,000 RBAC grants (half
//! role-permission grants, half role assignments); the naive
//! one-policy-per-grant evaluation of the same tenants shows what grants
//! as entity data avoid. `rebuild` is the time to apply one grant change:
//! the tenant's entities built again from its data.
//!
//! Run: `cargo xtask bench authz`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs,
    reason = "benchmark"
)]

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use cedar_policy::{Authorizer, Context, Entities, EntityUid, PolicySet, Request};
use chrono::{DateTime, TimeZone, Utc};
use countersign_core::authz::{AuthzData, AuthzModel, Resource, TenantAuthz, UserFacts};
use countersign_core::{
    AccountState, AuthRecord, FactorKind, MethodName, PassedFactor, RbacName, RoleAssignment,
    RoleGrant, TenantId, UserId,
};
use serde_json::{Map, json};
use uuid::Uuid;

fn main() {
    divan::main();
}

const SIZES: &[usize] = &[10, 1_000, 10_000];
const SERVICES: usize = 10;
const PERMISSIONS: usize = 10;
/// Role-permission grants per role.
const PER_ROLE: usize = 5;

const SCHEMA: &str = r#"
namespace App {
  action p0, p1, p2, p3, p4, p5, p6, p7, p8, p9
    appliesTo { principal: Countersign::User, resource: Countersign::Service };
}
"#;

/// Five ABAC policies every tenant has, beside the grants.
const POLICIES: &str = r#"
@id("suspended") forbid(principal, action, resource) when { principal.state == "suspended" };
@id("premium-p9") permit(principal, action == App::Action::"p9", resource)
  when { principal has tier && principal.tier == "premium" };
@id("fresh-p8") forbid(principal, action == App::Action::"p8", resource)
  unless { context.authentication.age < 3600 };
@id("mfa-p7") forbid(principal, action == App::Action::"p7", resource)
  unless { context.authentication.mfa };
@id("eng-p6") permit(principal, action == App::Action::"p6", resource)
  when { principal.hasTag("department") && principal.getTag("department") == "eng" };
"#;

fn n(s: String) -> RbacName {
    RbacName::new(s).unwrap()
}

fn tenant() -> TenantId {
    TenantId::from_uuid(Uuid::from_u128(7))
}

fn user(i: usize) -> UserId {
    UserId::from_uuid(Uuid::from_u128(1_000 + i as u128))
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// A tenant of `grants` grants: `grants / 2` role grants over
/// `grants / 2 / PER_ROLE` roles, and `grants / 2` users holding one role
/// each, in one of the services.
struct Tenant {
    data: AuthzData,
    model: Arc<AuthzModel>,
    ours: TenantAuthz,
    /// Raw Cedar on our policy set and entities, request prebuilt.
    floor: (Request, PolicySet, Entities),
    /// Raw Cedar with one policy per role grant.
    naive: (Request, PolicySet, Entities),
    /// The request: user 0 doing the permission its role grants first,
    /// on the service it holds the role in.
    who: AuthRecord,
    principal: EntityUid,
    action: EntityUid,
    resource: Resource,
    grant: EntityUid,
}

fn build(grants: usize) -> Tenant {
    let t = tenant();
    let half = (grants / 2).max(1);
    let roles = (half / PER_ROLE).max(1);
    let role = |r: usize| n(format!("r{r}"));
    let service = |s: usize| n(format!("s{s}"));
    let permission = |p: usize| n(format!("p{p}"));
    let role_grants: Vec<RoleGrant> = (0..half)
        .map(|i| RoleGrant {
            role: role(i % roles),
            permission: permission((i / roles) % PERMISSIONS),
            service: Some(service(i % SERVICES)),
        })
        .collect();
    let assignments: Vec<RoleAssignment> = (0..half)
        .map(|u| RoleAssignment {
            user: user(u),
            role: role(u % roles),
            service: service(u % SERVICES),
        })
        .collect();
    let users: Vec<UserFacts> = (0..half)
        .map(|u| UserFacts {
            id: user(u),
            tenant: t,
            state: AccountState::Active,
            tier: (u % 3 == 0).then(|| "premium".to_owned()),
            attributes: BTreeMap::from([("department".to_owned(), "eng".to_owned())]),
        })
        .collect();
    let data = AuthzData {
        users,
        services: (0..SERVICES).map(service).collect(),
        roles: (0..roles).map(role).collect(),
        permissions: (0..PERMISSIONS).map(permission).collect(),
        role_grants,
        assignments,
        ..AuthzData::default()
    };
    let model = Arc::new(AuthzModel::new(t, 1, SCHEMA, POLICIES).unwrap());
    let ours = TenantAuthz::build(model.clone(), 1, &data).unwrap();

    // User 0 holds r0 in s0; r0's first grant is p0 in s0.
    let action = EntityUid::from_str(r#"App::Action::"p0""#).unwrap();
    let resource = Resource {
        tenant: t,
        uid: EntityUid::from_str(r#"Countersign::Service::"s0""#).unwrap(),
    };
    let at = now() - chrono::Duration::seconds(60);
    let who = AuthRecord {
        tenant_id: t,
        user_id: user(0),
        method: MethodName::parse("pwd").unwrap(),
        factors: vec![PassedFactor {
            kind: FactorKind::Password,
            at,
        }],
        at,
    };
    let decision = ours.decide(&who, &action, &resource, Map::new(), now());
    assert!(decision.allowed, "{decision:?}");

    let principal = EntityUid::from_str(&format!("Countersign::User::\"{}\"", user(0))).unwrap();
    let context = json!({
        "authentication": { "method": "pwd", "factors": ["password"], "acr": "sfa", "mfa": false,
                            "auth_time": at.timestamp(), "age": 60 },
        "grants": [{ "__entity": { "type": "Countersign::Permission", "id": "s0/p0" } }],
    });
    let request = |ctx: serde_json::Value, schema: Option<&cedar_policy::Schema>| {
        let ctx = Context::from_json_value(ctx, schema.map(|s| (s, &action))).unwrap();
        Request::new(
            principal.clone(),
            action.clone(),
            resource.uid.clone(),
            ctx,
            schema,
        )
        .unwrap()
    };
    let floor_request = request(context, Some(model.schema()));
    let floor = (
        floor_request,
        model.policies().clone(),
        ours.entities().clone(),
    );
    assert_eq!(
        Authorizer::new()
            .is_authorized(&floor.0, &floor.1, &floor.2)
            .decision(),
        cedar_policy::Decision::Allow
    );

    // Naive: one policy per role grant, users members of their roles.
    let mut text = String::from(POLICIES);
    for g in &data.role_grants {
        let s = g.service.as_ref().unwrap();
        text.push_str(&format!(
            "permit(principal in Countersign::Role::\"{s}/{}\", action == App::Action::\"{}\", resource in Countersign::Service::\"{s}\");\n",
            g.role, g.permission
        ));
    }
    let naive_policies: PolicySet = text.parse().unwrap();
    let mut entities = vec![];
    for u in &data.users {
        let parents: Vec<_> = data
            .assignments
            .iter()
            .filter(|a| a.user == u.id)
            .map(|a| json!({ "type": "Countersign::Role", "id": format!("{}/{}", a.service, a.role) }))
            .collect();
        entities.push(json!({
            "uid": { "type": "Countersign::User", "id": u.id.to_string() },
            "attrs": { "state": "active" },
            "tags": { "department": "eng" },
            "parents": parents,
        }));
    }
    for s in &data.services {
        entities.push(json!({ "uid": { "type": "Countersign::Service", "id": s.as_str() }, "attrs": {}, "parents": [] }));
    }
    let naive_entities =
        Entities::from_json_value(serde_json::Value::Array(entities), None).unwrap();
    let naive_context = json!({
        "authentication": { "method": "pwd", "factors": ["password"], "acr": "sfa", "mfa": false,
                            "auth_time": at.timestamp(), "age": 60 },
    });
    let naive = (request(naive_context, None), naive_policies, naive_entities);
    assert_eq!(
        Authorizer::new()
            .is_authorized(&naive.0, &naive.1, &naive.2)
            .decision(),
        cedar_policy::Decision::Allow
    );
    Tenant {
        data,
        model,
        ours,
        floor,
        naive,
        who,
        principal,
        action,
        resource,
        grant: EntityUid::from_str(r#"Countersign::Permission::"s0/p0""#).unwrap(),
    }
}

fn tenant_of(grants: usize) -> &'static Tenant {
    static T: OnceLock<Vec<Tenant>> = OnceLock::new();
    let all = T.get_or_init(|| SIZES.iter().map(|&g| build(g)).collect());
    &all[SIZES.iter().position(|&g| g == grants).unwrap()]
}

/// Floor: what a raw cedar-policy caller does per decision at least, on
/// the same policy set and entities: build the same context (the
/// authentication record and the grant) as Cedar values, the request
/// without a schema pass, and `is_authorized`.
#[divan::bench(args = SIZES)]
fn floor_raw_cedar(grants: usize) {
    use cedar_policy::RestrictedExpression as R;
    let t = tenant_of(grants);
    let (_, policies, entities) = &t.floor;
    let s = |v: &str| R::new_string(v.to_owned());
    let auth = R::new_record([
        ("method".to_owned(), s("pwd")),
        ("factors".to_owned(), R::new_set([s("password")])),
        ("acr".to_owned(), s("sfa")),
        ("mfa".to_owned(), R::new_bool(false)),
        ("auth_time".to_owned(), R::new_long(t.who.at.timestamp())),
        ("age".to_owned(), R::new_long(60)),
    ])
    .unwrap();
    let grants = R::new_set([R::new_entity_uid(t.grant.clone())]);
    let context = Context::from_pairs([
        ("authentication".to_owned(), auth),
        ("grants".to_owned(), grants),
    ])
    .unwrap();
    let request = Request::new(
        t.principal.clone(),
        t.action.clone(),
        t.resource.uid.clone(),
        context,
        None,
    )
    .unwrap();
    let response = Authorizer::new().is_authorized(&request, policies, entities);
    assert_eq!(response.decision(), cedar_policy::Decision::Allow);
    divan::black_box(response);
}

/// `TenantAuthz::decide`: isolation checks, the context (authentication
/// and the grants the request needs) built and checked against the
/// schema, then `is_authorized`.
#[divan::bench(args = SIZES)]
fn decide(grants: usize) {
    let t = tenant_of(grants);
    let d = t
        .ours
        .decide(&t.who, &t.action, &t.resource, Map::new(), now());
    assert!(d.allowed);
    divan::black_box(d);
}

/// Raw Cedar with one policy per role grant (the straightforward model).
#[divan::bench(args = SIZES)]
fn naive_one_policy_per_grant(grants: usize) {
    let t = tenant_of(grants);
    let (request, policies, entities) = &t.naive;
    divan::black_box(Authorizer::new().is_authorized(request, policies, entities));
}

/// Applying one grant change: the tenant's entities built again from its
/// data (what a cache does at the next decision after a change).
#[divan::bench(args = SIZES, sample_count = 20)]
fn rebuild_after_one_change(grants: usize) {
    let t = tenant_of(grants);
    divan::black_box(TenantAuthz::build(t.model.clone(), 2, &t.data).unwrap());
}
