#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::*;
use crate::factor::{FactorKind, MethodName};
use crate::flow::{AuthRecord, PassedFactor};
use crate::ids::{TenantId, UserId};
use crate::model::AccountState;
use crate::rbac::{DirectGrant, RbacName, RoleAssignment, RoleGrant};

const SCHEMA: &str = r#"
namespace App {
  entity Document in [Countersign::Service] { owner: Countersign::User, classification: String };
  type Ctx = { authentication: Countersign::Authentication, ip?: ipaddr, hour?: Long };
  action read, write, delete, export appliesTo {
    principal: Countersign::User,
    resource: [Document, Countersign::Service],
    context: Ctx
  };
}
"#;

const POLICIES: &str = r#"
@id("delete-needs-fresh-mfa")
forbid(principal, action == App::Action::"delete", resource)
  unless { context.authentication.mfa && context.authentication.age <= 300 };
@id("premium-export-office")
permit(principal, action == App::Action::"export", resource)
  when { principal has tier && principal.tier == "premium"
         && context has ip && context.ip.isInRange(ip("10.0.0.0/8"))
         && context has hour && context.hour >= 9 && context.hour < 17 };
@id("overflowing-forbid")
forbid(principal, action == App::Action::"write", resource)
  when { context has hour && context.hour * 9223372036854775807 > 0 };
"#;

fn tenant(n: u128) -> TenantId {
    TenantId::from_uuid(Uuid::from_u128(n))
}

fn user_id(n: u128) -> UserId {
    UserId::from_uuid(Uuid::from_u128(n))
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn auth(t: TenantId, u: UserId, kinds: &[FactorKind], age_secs: i64) -> AuthRecord {
    let at = now() - chrono::Duration::seconds(age_secs);
    AuthRecord {
        tenant_id: t,
        user_id: u,
        method: MethodName::parse("login").unwrap(),
        factors: kinds
            .iter()
            .map(|&kind| PassedFactor { kind, at })
            .collect(),
        at,
    }
}

fn uid(s: &str) -> EntityUid {
    EntityUid::from_str(s).unwrap()
}

fn action(a: &str) -> EntityUid {
    uid(&format!("App::Action::\"{a}\""))
}

fn facts(t: TenantId, u: UserId, tier: Option<&str>) -> UserFacts {
    UserFacts {
        id: u,
        tenant: t,
        state: AccountState::Active,
        tier: tier.map(str::to_owned),
        attributes: BTreeMap::from([("department".to_owned(), "eng".to_owned())]),
    }
}

fn n(s: &str) -> RbacName {
    RbacName::new(s).unwrap()
}

fn names(ns: &[&str]) -> Vec<RbacName> {
    ns.iter().map(|s| n(s)).collect()
}

fn document(id: &str, service: &str, owner: UserId) -> AppEntity {
    AppEntity {
        uid: uid(&format!("App::Document::\"{id}\"")),
        attributes: json!({
            "owner": { "__entity": { "type": "Countersign::User", "id": owner.to_string() } },
            "classification": "internal",
        })
        .as_object()
        .cloned()
        .unwrap(),
        parents: vec![uid(&format!("Countersign::Service::\"{service}\""))],
    }
}

const ALICE: u128 = 1;
const BOB: u128 = 2;
const CAROL: u128 = 3;

/// alice: editor in docs (read everywhere, write and delete in docs);
/// bob: editor in wiki only; carol: premium, direct grant of read in docs.
fn world() -> TenantAuthz {
    let t = tenant(100);
    let model = AuthzModel::new(t, 7, SCHEMA, POLICIES).unwrap();
    let data = AuthzData {
        users: vec![
            facts(t, user_id(ALICE), None),
            facts(t, user_id(BOB), Some("free")),
            facts(t, user_id(CAROL), Some("premium")),
        ],
        services: names(&["docs", "wiki"]),
        roles: names(&["editor"]),
        permissions: names(&["read", "write", "delete"]),
        role_grants: vec![
            RoleGrant {
                role: n("editor"),
                permission: n("read"),
                service: None,
            },
            RoleGrant {
                role: n("editor"),
                permission: n("write"),
                service: Some(n("docs")),
            },
            RoleGrant {
                role: n("editor"),
                permission: n("delete"),
                service: Some(n("docs")),
            },
        ],
        assignments: vec![
            RoleAssignment {
                user: user_id(ALICE),
                role: n("editor"),
                service: n("docs"),
            },
            RoleAssignment {
                user: user_id(BOB),
                role: n("editor"),
                service: n("wiki"),
            },
        ],
        direct_grants: vec![DirectGrant {
            user: user_id(CAROL),
            permission: n("read"),
            service: n("docs"),
        }],
        resources: vec![
            document("d1", "docs", user_id(ALICE)),
            document("w1", "wiki", user_id(BOB)),
        ],
    };
    TenantAuthz::build(Arc::new(model), 3, &data).unwrap()
}

fn doc(id: &str) -> Resource {
    Resource {
        tenant: tenant(100),
        uid: uid(&format!("App::Document::\"{id}\"")),
    }
}

fn ctx(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn decide(
    w: &TenantAuthz,
    who: u128,
    kinds: &[FactorKind],
    act: &str,
    r: &Resource,
    c: Value,
) -> Decision {
    w.decide(
        &auth(tenant(100), user_id(who), kinds, 10),
        &action(act),
        r,
        ctx(c),
        now(),
    )
}

const PWD: &[FactorKind] = &[FactorKind::Password];
const MFA: &[FactorKind] = &[FactorKind::Password, FactorKind::Totp];

#[test]
fn an_unparsable_policy_is_refused_with_cedars_diagnostics() {
    let err = AuthzModel::new(
        tenant(1),
        1,
        SCHEMA,
        "permit(principal, action, resource) when {",
    )
    .unwrap_err();
    let AuthzError::Parse { diagnostics } = err else {
        panic!("{err:?}")
    };
    assert!(!diagnostics.is_empty());
    assert!(diagnostics.iter().all(|d| !d.is_empty()), "{diagnostics:?}");
}

#[test]
fn a_policy_that_does_not_validate_is_refused_with_its_id() {
    let bad = r#"@id("typo") permit(principal, action == App::Action::"read", resource) when { principal.nickname == "x" };"#;
    let err = AuthzModel::new(tenant(1), 1, SCHEMA, bad).unwrap_err();
    let AuthzError::Validation { diagnostics } = err else {
        panic!("{err:?}")
    };
    assert!(
        diagnostics
            .iter()
            .any(|d| d.starts_with("typo:") && d.contains("nickname")),
        "{diagnostics:?}"
    );
    let unknown_action = r#"permit(principal, action == App::Action::"fly", resource);"#;
    assert!(matches!(
        AuthzModel::new(tenant(1), 1, SCHEMA, unknown_action),
        Err(AuthzError::Validation { .. })
    ));
}

#[test]
fn a_bad_schema_and_the_reserved_namespace_are_refused() {
    assert!(matches!(
        AuthzModel::new(tenant(1), 1, "entity {", ""),
        Err(AuthzError::Schema { .. })
    ));
    let reserved = "namespace Countersign { entity Sneaky; }";
    assert!(matches!(
        AuthzModel::new(tenant(1), 1, reserved, ""),
        Err(AuthzError::Schema { .. })
    ));
    let huge = " ".repeat(MAX_MODEL_TEXT_BYTES + 1);
    assert!(matches!(
        AuthzModel::new(tenant(1), 1, SCHEMA, &huge),
        Err(AuthzError::TooLarge { .. })
    ));
}

#[test]
fn rbac_allows_through_roles_and_direct_grants_within_their_service() {
    let w = world();
    assert!(w.is_current(7, 3) && !w.is_current(7, 4));
    let d = decide(&w, ALICE, PWD, "read", &doc("d1"), json!({}));
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.reasons, vec![RBAC_POLICY_ID.to_owned()]);
    assert!(decide(&w, ALICE, PWD, "write", &doc("d1"), json!({})).allowed);
    // bob is an editor in wiki only: nothing in docs.
    let d = decide(&w, BOB, PWD, "read", &doc("d1"), json!({}));
    assert!(
        !d.allowed && d.reasons.is_empty() && d.errors.is_empty(),
        "{d:?}"
    );
    // carol's direct grant is read in docs, not write.
    assert!(decide(&w, CAROL, PWD, "read", &doc("d1"), json!({})).allowed);
    assert!(!decide(&w, CAROL, PWD, "write", &doc("d1"), json!({})).allowed);
    // the service itself as a resource.
    let docs = Resource {
        tenant: tenant(100),
        uid: uid(r#"Countersign::Service::"docs""#),
    };
    assert!(decide(&w, ALICE, PWD, "read", &docs, json!({})).allowed);
}

#[test]
fn abac_on_tier_ip_and_hour() {
    let w = world();
    let ok = json!({ "ip": "10.1.2.3", "hour": 10 });
    let d = decide(&w, CAROL, PWD, "export", &doc("d1"), ok.clone());
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.reasons, vec!["premium-export-office".to_owned()]);
    assert!(
        !decide(
            &w,
            CAROL,
            PWD,
            "export",
            &doc("d1"),
            json!({ "ip": "192.168.1.1", "hour": 10 })
        )
        .allowed
    );
    assert!(
        !decide(
            &w,
            CAROL,
            PWD,
            "export",
            &doc("d1"),
            json!({ "ip": "10.1.2.3", "hour": 20 })
        )
        .allowed
    );
    // bob is on the free tier, alice has no tier.
    assert!(!decide(&w, BOB, PWD, "export", &doc("d1"), ok.clone()).allowed);
    assert!(!decide(&w, ALICE, PWD, "export", &doc("d1"), ok).allowed);
}

#[test]
fn an_evaluation_error_denies_even_when_cedar_would_allow() {
    let w = world();
    // hour 0: the forbid's condition is false, the RBAC permit applies.
    assert!(decide(&w, ALICE, PWD, "write", &doc("d1"), json!({ "hour": 0 })).allowed);
    // hour 2: the forbid's condition overflows; Cedar skips the forbid and
    // allows, the engine denies.
    let d = decide(&w, ALICE, PWD, "write", &doc("d1"), json!({ "hour": 2 }));
    assert!(!d.allowed, "{d:?}");
    assert!(
        d.errors.iter().any(|e| e.contains("overflowing-forbid")),
        "{d:?}"
    );
    // a context that does not match the schema denies too.
    let d = decide(
        &w,
        ALICE,
        PWD,
        "read",
        &doc("d1"),
        json!({ "hour": "noon" }),
    );
    assert!(!d.allowed && !d.errors.is_empty(), "{d:?}");
    // an action the schema does not declare, or one that does not apply
    // to this resource's type, denies with the reason.
    let d = decide(&w, ALICE, MFA, "fly", &doc("d1"), json!({}));
    assert!(
        !d.allowed && d.errors.iter().any(|e| e.contains("not an action")),
        "{d:?}"
    );
    let tenant_itself = Resource {
        tenant: tenant(100),
        uid: uid(r#"Countersign::Tenant::"x""#),
    };
    let d = decide(&w, ALICE, MFA, "read", &tenant_itself, json!({}));
    assert!(!d.allowed && !d.errors.is_empty(), "{d:?}");
    // and the caller may not forge the authentication.
    let d = decide(
        &w,
        ALICE,
        PWD,
        "read",
        &doc("d1"),
        json!({ "authentication": {} }),
    );
    assert!(!d.allowed && !d.errors.is_empty(), "{d:?}");
}

#[test]
fn a_policy_demanding_fresh_mfa_asks_for_step_up() {
    let w = world();
    let d = decide(&w, ALICE, PWD, "delete", &doc("d1"), json!({}));
    assert!(!d.allowed && d.step_up_required(), "{d:?}");
    assert_eq!(d.reasons, vec!["delete-needs-fresh-mfa".to_owned()]);
    let d = decide(&w, ALICE, MFA, "delete", &doc("d1"), json!({}));
    assert!(d.allowed && !d.step_up_required(), "{d:?}");
    // an MFA login too old for the policy.
    let old = auth(tenant(100), user_id(ALICE), MFA, 1_000);
    let d = w.decide(&old, &action("delete"), &doc("d1"), Map::new(), now());
    assert!(!d.allowed && d.step_up_required(), "{d:?}");
    // without the permission, no authentication helps.
    let d = decide(&w, BOB, PWD, "delete", &doc("d1"), json!({}));
    assert!(!d.allowed && !d.step_up_required(), "{d:?}");
}

#[test]
fn a_step_up_names_what_would_satisfy_the_policy() {
    use std::time::Duration;
    let w = world();
    // `mfa && age <= 300`: a password login needs a second factor, fresh.
    let d = decide(&w, ALICE, PWD, "delete", &doc("d1"), json!({}));
    assert_eq!(
        d.step_up,
        Some(crate::StepUp {
            max_age: Some(Duration::from_secs(300)),
            min_factors: 2,
            any_of: vec![],
        })
    );
    // an MFA login too old: freshness alone is missing.
    let old = auth(tenant(100), user_id(ALICE), MFA, 1_000);
    let d = w.decide(&old, &action("delete"), &doc("d1"), Map::new(), now());
    let need = d.step_up.clone().unwrap();
    assert_eq!(need, crate::StepUp::fresh(Duration::from_secs(300)));
    assert!(!old.satisfies(&need, now()));
    // the login merged with a TOTP step-up now satisfies it and is allowed.
    let stepped = old
        .clone()
        .merge(&auth(tenant(100), user_id(ALICE), &[FactorKind::Totp], 0))
        .unwrap();
    assert!(stepped.satisfies(&need, now()));
    let d = w.decide(&stepped, &action("delete"), &doc("d1"), Map::new(), now());
    assert!(d.allowed && d.step_up.is_none(), "{d:?}");
    // a fresh password login stepped up with TOTP meets the MFA demand.
    let pwd = auth(tenant(100), user_id(ALICE), PWD, 10);
    let need = decide(&w, ALICE, PWD, "delete", &doc("d1"), json!({}))
        .step_up
        .unwrap();
    let stepped = pwd
        .merge(&auth(tenant(100), user_id(ALICE), &[FactorKind::Totp], 0))
        .unwrap();
    assert!(stepped.satisfies(&need, now()));
    assert!(
        w.decide(&stepped, &action("delete"), &doc("d1"), Map::new(), now())
            .allowed
    );
    // a policy with no age condition: any two factor kinds, any age.
    let t = tenant(100);
    let model = AuthzModel::new(
        t,
        1,
        SCHEMA,
        r#"permit(principal, action == App::Action::"read", resource)
             when { context.authentication.mfa };"#,
    )
    .unwrap();
    let data = AuthzData {
        users: vec![facts(t, user_id(ALICE), None)],
        services: names(&["docs"]),
        ..AuthzData::default()
    };
    let w = TenantAuthz::build(Arc::new(model), 1, &data).unwrap();
    let docs = Resource {
        tenant: t,
        uid: uid("Countersign::Service::\"docs\""),
    };
    let d = w.decide(
        &auth(t, user_id(ALICE), PWD, 10),
        &action("read"),
        &docs,
        Map::new(),
        now(),
    );
    assert_eq!(
        d.step_up,
        Some(crate::StepUp {
            max_age: None,
            min_factors: 2,
            any_of: vec![],
        }),
        "{d:?}"
    );
}

#[test]
fn a_refused_model_or_bad_data_is_invalid_input() {
    use crate::error::{Error, ErrorKind};
    use std::error::Error as _;
    let refusals = [
        AuthzModel::new(tenant(1), 1, SCHEMA, "permit(").unwrap_err(),
        AuthzModel::new(tenant(1), 1, "entity {", "").unwrap_err(),
        AuthzModel::new(
            tenant(1),
            1,
            SCHEMA,
            r#"permit(principal, action == App::Action::"fly", resource);"#,
        )
        .unwrap_err(),
        AuthzModel::new(tenant(1), 1, SCHEMA, &" ".repeat(MAX_MODEL_TEXT_BYTES + 1)).unwrap_err(),
        AuthzError::Data("duplicate role \"editor\"".into()),
        AuthzError::Entities("x".into()),
    ];
    for refusal in refusals {
        assert_eq!(refusal.kind(), ErrorKind::InvalidInput);
        let err = Error::from(refusal.clone());
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
        let source = err.source().unwrap().downcast_ref::<AuthzError>();
        assert_eq!(source, Some(&refusal));
    }
}

#[test]
fn bad_data_is_refused() {
    let t = tenant(100);
    let model = Arc::new(AuthzModel::new(t, 1, SCHEMA, POLICIES).unwrap());
    let base = AuthzData {
        users: vec![facts(t, user_id(ALICE), None)],
        services: names(&["docs"]),
        roles: names(&["editor"]),
        permissions: names(&["read"]),
        ..AuthzData::default()
    };
    let mut d = base.clone();
    d.assignments.push(RoleAssignment {
        user: user_id(ALICE),
        role: n("ghost"),
        service: n("docs"),
    });
    assert!(matches!(
        TenantAuthz::build(model.clone(), 1, &d),
        Err(AuthzError::Data(_))
    ));
    let mut d = base.clone();
    d.users.push(facts(tenant(200), user_id(BOB), None));
    assert!(matches!(
        TenantAuthz::build(model.clone(), 1, &d),
        Err(AuthzError::Data(_))
    ));
    assert!(RbacName::new("a/b").is_err() && RbacName::new("").is_err());
    let mut d = base.clone();
    d.services.push(n("docs"));
    assert!(matches!(
        TenantAuthz::build(model.clone(), 1, &d),
        Err(AuthzError::Data(_))
    ));
    let mut d = base.clone();
    d.resources.push(document("d9", "nowhere", user_id(ALICE)));
    assert!(matches!(
        TenantAuthz::build(model.clone(), 1, &d),
        Err(AuthzError::Data(_))
    ));
    let mut d = base;
    let mut bad = document("d9", "docs", user_id(ALICE));
    bad.attributes.remove("classification");
    d.resources.push(bad);
    assert!(matches!(
        TenantAuthz::build(model, 1, &d),
        Err(AuthzError::Entities(_))
    ));
}

#[test]
fn another_tenants_principal_or_resource_is_denied_whatever_the_policies() {
    let (a, b) = (tenant(100), tenant(200));
    let model =
        Arc::new(AuthzModel::new(a, 1, SCHEMA, "permit(principal, action, resource);").unwrap());
    let data = AuthzData {
        users: vec![facts(a, user_id(ALICE), None)],
        ..AuthzData::default()
    };
    let w = TenantAuthz::build(model, 1, &data).unwrap();
    let mine = Resource {
        tenant: a,
        uid: uid(r#"App::Document::"x""#),
    };
    let theirs = Resource {
        tenant: b,
        uid: uid(r#"App::Document::"x""#),
    };
    let alice = auth(a, user_id(ALICE), PWD, 0);
    assert!(
        w.decide(&alice, &action("read"), &mine, Map::new(), now())
            .allowed
    );
    let d = w.decide(&alice, &action("read"), &theirs, Map::new(), now());
    assert!(!d.allowed && !d.errors.is_empty(), "{d:?}");
    let mallory = auth(b, user_id(ALICE), PWD, 0);
    assert!(
        !w.decide(&mallory, &action("read"), &mine, Map::new(), now())
            .allowed
    );
}

/// Policies any tenant might write, including ones that allow everything.
const POOL: &[&str] = &[
    "permit(principal, action, resource);",
    r#"permit(principal in Countersign::Permission::"s0/p0", action, resource);"#,
    r#"permit(principal in Countersign::Role::"s1/r1", action, resource in Countersign::Service::"s1");"#,
    r#"permit(principal, action, resource) when { resource is App::Document && resource.owner == principal };"#,
    r#"permit(principal, action == App::Action::"read", resource) unless { principal.state == "suspended" };"#,
    r#"permit(principal, action, resource) when { principal has tier && principal.tier == "premium" };"#,
    r#"forbid(principal, action == App::Action::"delete", resource) when { context has hour && context.hour * 9223372036854775807 > 0 };"#,
    r#"forbid(principal, action, resource) when { context.authentication.age > 100 };"#,
];

#[derive(Debug, Clone)]
struct TenantSpec {
    policies: Vec<usize>,
    tiers: Vec<bool>,
    assignments: Vec<(usize, usize, usize)>,
    grants: Vec<(usize, usize, Option<usize>)>,
    direct: Vec<(usize, usize, usize)>,
    owners: Vec<(usize, usize)>,
}

fn tenant_spec() -> impl Strategy<Value = TenantSpec> {
    (
        prop::collection::vec(0..POOL.len(), 0..5),
        prop::collection::vec(any::<bool>(), 3),
        prop::collection::vec((0..3usize, 0..2usize, 0..2usize), 0..5),
        prop::collection::vec((0..2usize, 0..2usize, prop::option::of(0..2usize)), 0..5),
        prop::collection::vec((0..3usize, 0..2usize, 0..2usize), 0..3),
        prop::collection::vec((0..3usize, 0..2usize), 2),
    )
        .prop_map(
            |(policies, tiers, assignments, grants, direct, owners)| TenantSpec {
                policies,
                tiers,
                assignments,
                grants,
                direct,
                owners,
            },
        )
}

/// Tenant `n`'s users are `n*10 + i`; both tenants use the same service,
/// role, permission and document names, so their entity uids collide.
fn build_tenant(tn: u128, spec: &TenantSpec) -> TenantAuthz {
    let t = tenant(tn);
    let user = |i: usize| user_id(tn * 10 + i as u128);
    let text: String = spec
        .policies
        .iter()
        .map(|&i| POOL[i])
        .collect::<Vec<_>>()
        .join("\n");
    let model = AuthzModel::new(t, 1, SCHEMA, &text).unwrap();
    let data = AuthzData {
        users: (0..3)
            .map(|i| facts(t, user(i), spec.tiers[i].then_some("premium")))
            .collect(),
        services: names(&["s0", "s1"]),
        roles: names(&["r0", "r1"]),
        permissions: names(&["p0", "p1"]),
        role_grants: spec
            .grants
            .iter()
            .map(|&(r, p, s)| RoleGrant {
                role: n(&format!("r{r}")),
                permission: n(&format!("p{p}")),
                service: s.map(|s| n(&format!("s{s}"))),
            })
            .collect(),
        assignments: spec
            .assignments
            .iter()
            .map(|&(u, r, s)| RoleAssignment {
                user: user(u),
                role: n(&format!("r{r}")),
                service: n(&format!("s{s}")),
            })
            .collect(),
        direct_grants: spec
            .direct
            .iter()
            .map(|&(u, p, s)| DirectGrant {
                user: user(u),
                permission: n(&format!("p{p}")),
                service: n(&format!("s{s}")),
            })
            .collect(),
        resources: spec
            .owners
            .iter()
            .enumerate()
            .map(|(d, &(owner, s))| document(&format!("d{d}"), &format!("s{s}"), user(owner)))
            .collect(),
    };
    TenantAuthz::build(Arc::new(model), 1, &data).unwrap()
}

const ACTIONS: &[&str] = &["read", "write", "delete", "export"];
const RESOURCES: &[&str] = &[
    r#"Countersign::Service::"s0""#,
    r#"Countersign::Service::"s1""#,
    r#"App::Document::"d0""#,
    r#"App::Document::"d1""#,
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_principal_of_one_tenant_is_never_allowed_on_another_tenants_resource(
        a in tenant_spec(),
        b in tenant_spec(),
        requests in prop::collection::vec(
            (0..2usize, 0..2u128, 0..3u128, 0..ACTIONS.len(), 0..2u128, 0..RESOURCES.len(), 0..3i64, 0..200i64, any::<bool>()),
            1..16,
        ),
    ) {
        let engines = [build_tenant(1, &a), build_tenant(2, &b)];
        for (engine, pt, pu, act, rt, res, hour, age, mfa) in requests {
            let (pt, rt) = (pt + 1, rt + 1);
            let kinds = if mfa { MFA } else { PWD };
            let who = AuthRecord { at: now() - chrono::Duration::seconds(age), ..auth(tenant(pt), user_id(pt * 10 + pu), kinds, age) };
            let resource = Resource { tenant: tenant(rt), uid: uid(RESOURCES[res]) };
            let e = &engines[engine];
            let d = e.decide(&who, &action(ACTIONS[act]), &resource, ctx(json!({ "hour": hour })), now());
            if d.allowed {
                prop_assert_eq!(pt, rt, "cross-tenant allow: {:?}", d);
                prop_assert_eq!(tenant(pt), e.model().tenant(), "allowed under another tenant's model: {:?}", d);
                prop_assert!(d.errors.is_empty());
            }
        }
    }
}

#[test]
fn a_schema_need_not_declare_countersigns_context() {
    let t = tenant(100);
    let schema = r#"
      namespace App {
        entity Doc in [Countersign::Service];
        action read appliesTo { principal: Countersign::User, resource: [Doc, Countersign::Service] };
      }"#;
    let policies = r#"@id("mfa-read") permit(principal, action == App::Action::"read", resource)
                        when { context.authentication.mfa };"#;
    let model = Arc::new(AuthzModel::new(t, 1, schema, policies).unwrap());
    let data = AuthzData {
        users: vec![facts(t, user_id(ALICE), None), facts(t, user_id(BOB), None)],
        services: names(&["docs"]),
        permissions: names(&["read"]),
        direct_grants: vec![DirectGrant {
            user: user_id(ALICE),
            permission: n("read"),
            service: n("docs"),
        }],
        ..AuthzData::default()
    };
    let w = TenantAuthz::build(model, 1, &data).unwrap();
    let docs = Resource {
        tenant: t,
        uid: uid(r#"Countersign::Service::"docs""#),
    };
    let read = uid(r#"App::Action::"read""#);
    let d = w.decide(
        &auth(t, user_id(ALICE), PWD, 0),
        &read,
        &docs,
        Map::new(),
        now(),
    );
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.reasons, vec![RBAC_POLICY_ID.to_owned()]);
    let d = w.decide(
        &auth(t, user_id(BOB), MFA, 0),
        &read,
        &docs,
        Map::new(),
        now(),
    );
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.reasons, vec!["mfa-read".to_owned()]);
    let d = w.decide(
        &auth(t, user_id(BOB), PWD, 0),
        &read,
        &docs,
        Map::new(),
        now(),
    );
    assert!(!d.allowed && d.step_up_required(), "{d:?}");
    // the caller may not name the grants itself.
    let forged = ctx(json!({ "grants": [] }));
    let d = w.decide(
        &auth(t, user_id(ALICE), PWD, 0),
        &read,
        &docs,
        forged,
        now(),
    );
    assert!(!d.allowed && !d.errors.is_empty(), "{d:?}");
}

#[test]
fn countersigns_policy_ids_are_reserved() {
    let own = r#"@id("countersign::rbac") forbid(principal, action, resource);"#;
    let err = AuthzModel::new(tenant(1), 1, SCHEMA, own).unwrap_err();
    assert!(matches!(err, AuthzError::Parse { .. }), "{err:?}");
}

#[test]
fn only_an_active_account_with_the_admin_permission_administers() {
    let t = tenant(100);
    let model = Arc::new(AuthzModel::new(t, 0, "", "").unwrap());
    let admin_grants = AdminAction::ALL
        .iter()
        .map(|a| RoleGrant {
            role: n(ADMIN_ROLE),
            permission: n(a.as_str()),
            service: None,
        })
        .collect();
    let assign = |u: u128| RoleAssignment {
        user: user_id(u),
        role: n(ADMIN_ROLE),
        service: n(ADMIN_SERVICE),
    };
    let mut suspended = facts(t, user_id(BOB), None);
    suspended.state = AccountState::Suspended;
    let data = AuthzData {
        users: vec![
            facts(t, user_id(ALICE), None),
            suspended,
            facts(t, user_id(CAROL), None),
        ],
        services: names(&[ADMIN_SERVICE]),
        roles: names(&[ADMIN_ROLE]),
        permissions: AdminAction::ALL.iter().map(|a| n(a.as_str())).collect(),
        role_grants: admin_grants,
        assignments: vec![assign(ALICE), assign(BOB)],
        ..AuthzData::default()
    };
    let w = TenantAuthz::build(model, 0, &data).unwrap();
    let service = Resource {
        tenant: t,
        uid: uid(r#"Countersign::Service::"countersign""#),
    };
    for action in AdminAction::ALL {
        let a = action.uid().unwrap();
        let d = w.decide(
            &auth(t, user_id(ALICE), PWD, 0),
            &a,
            &service,
            Map::new(),
            now(),
        );
        assert!(d.allowed, "{action}: {d:?}");
        let d = w.decide(
            &auth(t, user_id(BOB), PWD, 0),
            &a,
            &service,
            Map::new(),
            now(),
        );
        assert!(!d.allowed, "{action}: {d:?}");
        assert_eq!(
            d.reasons,
            vec!["countersign::admin::active-only".to_owned()]
        );
        let d = w.decide(
            &auth(t, user_id(CAROL), PWD, 0),
            &a,
            &service,
            Map::new(),
            now(),
        );
        assert!(!d.allowed && d.reasons.is_empty(), "{action}: {d:?}");
    }
}

/// The straightforward evaluation the engine must agree with: raw Cedar,
/// one policy per role grant (per service it applies in) and per direct
/// grant, users members of their roles only.
fn naive_allowed(spec: &DiffSpec, user: usize, action: &str, resource: &str) -> bool {
    use cedar_policy::{Authorizer, Context, Entities, PolicySet, Request};
    let mut text = String::new();
    for &(r, p, s) in &spec.grants {
        let services: Vec<usize> = s.map_or_else(|| (0..2).collect(), |s| vec![s]);
        for s in services {
            text.push_str(&format!(
                "permit(principal in Countersign::Role::\"s{s}/r{r}\", action == App::Action::\"{}\", resource in Countersign::Service::\"s{s}\");\n",
                DIFF_PERMS[p]
            ));
        }
    }
    for &(u, p, s) in &spec.direct {
        text.push_str(&format!(
            "permit(principal == Countersign::User::\"{}\", action == App::Action::\"{}\", resource in Countersign::Service::\"s{s}\");\n",
            user_id(u as u128),
            DIFF_PERMS[p]
        ));
    }
    let policies: PolicySet = text.parse().unwrap();
    let mut entities = vec![];
    for u in 0..DIFF_USERS {
        let parents: Vec<Value> = spec
            .assignments
            .iter()
            .filter(|a| a.0 == u)
            .map(|&(_, r, s)| json!({ "type": "Countersign::Role", "id": format!("s{s}/r{r}") }))
            .collect();
        entities.push(json!({ "uid": { "type": "Countersign::User", "id": user_id(u as u128).to_string() }, "attrs": {}, "parents": parents }));
    }
    for d in 0..2 {
        entities.push(json!({ "uid": { "type": "App::Document", "id": format!("d{d}") }, "attrs": {},
            "parents": [{ "type": "Countersign::Service", "id": format!("s{}", spec.doc_services[d]) }] }));
    }
    let entities = Entities::from_json_value(Value::Array(entities), None).unwrap();
    let request = Request::new(
        uid(&format!("Countersign::User::\"{}\"", user_id(user as u128))),
        action_uid(action),
        uid(resource),
        Context::empty(),
        None,
    )
    .unwrap();
    Authorizer::new()
        .is_authorized(&request, &policies, &entities)
        .decision()
        == cedar_policy::Decision::Allow
}

fn action_uid(a: &str) -> EntityUid {
    uid(&format!("App::Action::\"{a}\""))
}

const DIFF_USERS: usize = 4;
const DIFF_PERMS: &[&str] = &["read", "write", "delete"];

#[derive(Debug, Clone)]
struct DiffSpec {
    grants: Vec<(usize, usize, Option<usize>)>,
    assignments: Vec<(usize, usize, usize)>,
    direct: Vec<(usize, usize, usize)>,
    doc_services: Vec<usize>,
}

fn diff_spec() -> impl Strategy<Value = DiffSpec> {
    (
        prop::collection::btree_set((0..3usize, 0..3usize, prop::option::of(0..2usize)), 0..8),
        prop::collection::btree_set((0..DIFF_USERS, 0..3usize, 0..2usize), 0..8),
        prop::collection::btree_set((0..DIFF_USERS, 0..3usize, 0..2usize), 0..4),
        prop::collection::vec(0..2usize, 2),
    )
        .prop_map(|(grants, assignments, direct, doc_services)| DiffSpec {
            grants: grants.into_iter().collect(),
            assignments: assignments.into_iter().collect(),
            direct: direct.into_iter().collect(),
            doc_services,
        })
}

fn diff_engine(spec: &DiffSpec) -> (TenantAuthz, crate::rbac::RbacSnapshot) {
    let t = tenant(0);
    let snapshot = crate::rbac::RbacSnapshot {
        tenant_id: t,
        version: 1,
        services: names(&["s0", "s1"]),
        roles: names(&["r0", "r1", "r2"]),
        permissions: names(DIFF_PERMS),
        role_grants: spec
            .grants
            .iter()
            .map(|&(r, p, s)| RoleGrant {
                role: n(&format!("r{r}")),
                permission: n(DIFF_PERMS[p]),
                service: s.map(|s| n(&format!("s{s}"))),
            })
            .collect(),
        assignments: spec
            .assignments
            .iter()
            .map(|&(u, r, s)| RoleAssignment {
                user: user_id(u as u128),
                role: n(&format!("r{r}")),
                service: n(&format!("s{s}")),
            })
            .collect(),
        direct_grants: spec
            .direct
            .iter()
            .map(|&(u, p, s)| DirectGrant {
                user: user_id(u as u128),
                permission: n(DIFF_PERMS[p]),
                service: n(&format!("s{s}")),
            })
            .collect(),
    };
    let users = (0..DIFF_USERS)
        .map(|u| facts(t, user_id(u as u128), None))
        .collect();
    let resources = (0..2)
        .map(|d| {
            let mut doc = document(
                &format!("d{d}"),
                &format!("s{}", spec.doc_services[d]),
                user_id(0),
            );
            doc.parents = vec![uid(&format!(
                "Countersign::Service::\"s{}\"",
                spec.doc_services[d]
            ))];
            doc
        })
        .collect();
    let data = AuthzData::from_snapshot(&snapshot, users, resources);
    let model = AuthzModel::new(t, 1, SCHEMA, "").unwrap();
    (
        TenantAuthz::build(Arc::new(model), 1, &data).unwrap(),
        snapshot,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Grants as entity data decide exactly as one policy per grant does,
    /// and the effective permissions agree with the stores' reference.
    #[test]
    fn decisions_match_one_policy_per_grant(spec in diff_spec()) {
        let (engine, snapshot) = diff_engine(&spec);
        let t = tenant(0);
        let resources = [
            r#"Countersign::Service::"s0""#,
            r#"Countersign::Service::"s1""#,
            r#"App::Document::"d0""#,
            r#"App::Document::"d1""#,
        ];
        for u in 0..DIFF_USERS {
            for a in ["read", "write", "delete"] {
                for r in resources {
                    let ours = engine.decide(
                        &auth(t, user_id(u as u128), MFA, 0),
                        &action_uid(a),
                        &Resource { tenant: t, uid: uid(r) },
                        Map::new(),
                        now(),
                    );
                    prop_assert!(ours.errors.is_empty(), "{:?}", ours);
                    prop_assert_eq!(ours.allowed, naive_allowed(&spec, u, a, r), "user {} {} {}", u, a, r);
                }
            }
            for s in ["s0", "s1"] {
                prop_assert_eq!(
                    engine.effective_permissions(user_id(u as u128), &n(s)),
                    crate::rbac::effective_permissions(&snapshot, user_id(u as u128), &n(s))
                );
            }
        }
    }
}

#[test]
fn application_entities_given_per_request_decide_as_stored_ones() {
    let stored = world();
    // The same tenant without its documents: they come with each request.
    let t = tenant(100);
    let model = Arc::new(AuthzModel::new(t, 7, SCHEMA, POLICIES).unwrap());
    let mut data = AuthzData {
        users: vec![
            facts(t, user_id(ALICE), None),
            facts(t, user_id(BOB), Some("free")),
            facts(t, user_id(CAROL), Some("premium")),
        ],
        services: names(&["docs", "wiki"]),
        roles: names(&["editor"]),
        permissions: names(&["read", "write", "delete"]),
        ..AuthzData::default()
    };
    data.role_grants = vec![
        RoleGrant {
            role: n("editor"),
            permission: n("read"),
            service: None,
        },
        RoleGrant {
            role: n("editor"),
            permission: n("write"),
            service: Some(n("docs")),
        },
        RoleGrant {
            role: n("editor"),
            permission: n("delete"),
            service: Some(n("docs")),
        },
    ];
    data.assignments = vec![
        RoleAssignment {
            user: user_id(ALICE),
            role: n("editor"),
            service: n("docs"),
        },
        RoleAssignment {
            user: user_id(BOB),
            role: n("editor"),
            service: n("wiki"),
        },
    ];
    data.direct_grants = vec![DirectGrant {
        user: user_id(CAROL),
        permission: n("read"),
        service: n("docs"),
    }];
    let bare = TenantAuthz::build(model, 3, &data).unwrap();
    let docs = [
        ("d1", document("d1", "docs", user_id(ALICE))),
        ("w1", document("w1", "wiki", user_id(BOB))),
    ];
    for who in [ALICE, BOB, CAROL] {
        for kinds in [PWD, MFA] {
            for act in ["read", "write", "delete", "export"] {
                for (id, entity) in &docs {
                    let c = json!({ "ip": "10.1.2.3", "hour": 10 });
                    let a = auth(t, user_id(who), kinds, 10);
                    let want = stored.decide(&a, &action(act), &doc(id), ctx(c.clone()), now());
                    let got = bare.decide_with(
                        &a,
                        &action(act),
                        &doc(id),
                        ctx(c),
                        std::slice::from_ref(entity),
                        now(),
                    );
                    assert_eq!(
                        (got.allowed, &got.reasons, &got.step_up),
                        (want.allowed, &want.reasons, &want.step_up),
                        "{who} {act} {id}"
                    );
                }
            }
        }
    }
    // Refused: a countersign type, one of the tenant's data, an unknown
    // parent, the same entity twice, attributes the schema does not have.
    let a = auth(t, user_id(ALICE), PWD, 10);
    let refused = |given: Vec<AppEntity>| {
        let d = bare.decide_with(&a, &action("read"), &doc("d1"), Map::new(), &given, now());
        assert!(!d.allowed && !d.errors.is_empty(), "{d:?}");
    };
    let mut fake = document("d1", "docs", user_id(ALICE));
    fake.uid = uid(r#"Countersign::Service::"docs""#);
    refused(vec![fake]);
    refused(vec![document("d1", "nowhere", user_id(ALICE))]);
    refused(vec![docs[0].1.clone(), docs[0].1.clone()]);
    let mut bad = docs[0].1.clone();
    bad.attributes.remove("classification");
    refused(vec![bad]);
    // A policy on the resource's own attributes, decided per request.
    let owner_reads = format!(
        "{POLICIES}\n@id(\"owner-reads\") permit(principal, action == App::Action::\"read\", resource) when {{ resource is App::Document && resource.owner == principal }};"
    );
    let model = Arc::new(AuthzModel::new(t, 8, SCHEMA, &owner_reads).unwrap());
    let owned = TenantAuthz::build(model, 3, &data).unwrap();
    let wiki_doc = std::slice::from_ref(&docs[1].1);
    let d = owned.decide_with(
        &auth(t, user_id(BOB), PWD, 10),
        &action("read"),
        &doc("w1"),
        Map::new(),
        wiki_doc,
        now(),
    );
    assert!(
        d.allowed && d.reasons.contains(&"owner-reads".to_owned()),
        "{d:?}"
    );
    let d = owned.decide_with(
        &auth(t, user_id(CAROL), PWD, 10),
        &action("read"),
        &doc("w1"),
        Map::new(),
        wiki_doc,
        now(),
    );
    assert!(!d.allowed, "{d:?}");
    let d = stored.decide_with(
        &a,
        &action("read"),
        &doc("d1"),
        Map::new(),
        &[docs[0].1.clone()],
        now(),
    );
    assert!(!d.allowed && !d.errors.is_empty(), "already stored: {d:?}");
}

const SHARE: &str = r#"@id("share")
permit(principal == ?principal, action == App::Action::"read", resource in ?resource);"#;

fn link(id: &str, principal: Option<String>, resource: Option<&str>) -> crate::store::TemplateLink {
    crate::store::TemplateLink {
        id: id.to_owned(),
        template: "share".to_owned(),
        principal,
        resource: resource.map(str::to_owned),
    }
}

#[test]
fn template_links_are_policies_validated_with_the_model() {
    let t = tenant(100);
    let bob = Some(format!("Countersign::User::\"{}\"", user_id(BOB)));
    let linked = AuthzModel::with_links(
        t,
        1,
        SCHEMA,
        &format!("{POLICIES}\n{SHARE}"),
        &[link(
            "bob-reads-d1",
            bob.clone(),
            Some(r#"App::Document::"d1""#),
        )],
    )
    .unwrap();
    let data = AuthzData {
        users: vec![facts(t, user_id(BOB), None)],
        services: names(&["docs"]),
        resources: vec![
            document("d1", "docs", user_id(BOB)),
            document("d2", "docs", user_id(BOB)),
        ],
        ..AuthzData::default()
    };
    let w = TenantAuthz::build(Arc::new(linked), 1, &data).unwrap();
    let d = decide(&w, BOB, PWD, "read", &doc("d1"), json!({}));
    assert!(d.allowed && d.reasons == ["bob-reads-d1"], "{d:?}");
    assert!(!decide(&w, BOB, PWD, "read", &doc("d2"), json!({})).allowed);

    let policies = format!("{POLICIES}\n{SHARE}");
    let refused = |links: &[crate::store::TemplateLink]| {
        let err = AuthzModel::with_links(t, 1, SCHEMA, &policies, links).unwrap_err();
        assert!(
            matches!(
                err,
                AuthzError::Parse { .. } | AuthzError::Validation { .. }
            ),
            "{err:?}"
        );
    };
    let d1 = Some(r#"App::Document::"d1""#);
    refused(&[crate::store::TemplateLink {
        template: "nope".into(),
        ..link("x", bob.clone(), d1)
    }]);
    refused(&[link("x", None, d1)]);
    refused(&[link("x", Some("not a uid".into()), d1)]);
    refused(&[link("countersign::x", bob.clone(), d1)]);
    refused(&[link("x", bob.clone(), d1), link("x", bob.clone(), d1)]);
    refused(&[link("delete-needs-fresh-mfa", bob.clone(), d1)]);
    let too_many: Vec<_> = (0..=MAX_LINKS)
        .map(|i| link(&format!("l{i}"), bob.clone(), d1))
        .collect();
    assert!(matches!(
        AuthzModel::with_links(t, 1, SCHEMA, &policies, &too_many),
        Err(AuthzError::TooLarge { .. })
    ));
}
