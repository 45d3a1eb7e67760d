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

mod base;
mod properties;

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
