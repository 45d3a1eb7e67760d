//! countersign's base model: its context keys, reserved ids and
//! administrative policy, per-request application entities, template links.

use super::*;

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
