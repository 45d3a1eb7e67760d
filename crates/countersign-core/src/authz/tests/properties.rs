//! The property tests: tenant isolation over random policies and data,
//! and grants as entity data against one Cedar policy per grant.

use super::*;

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
