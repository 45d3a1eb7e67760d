//! RBAC reads: the listings, the snapshot and tenant scoping, on the
//! model the changes in `rbac` build.

use countersign_core::rbac::effective_permissions;
use countersign_core::{RbacChange, RbacKind, RbacName, RbacSnapshot};

use super::rbac::*;
use super::{acme, tenant};
use crate::ConformanceStore;
use crate::fixtures::Fx;

/// Every listing agrees with the model, sorted: `role_permissions`,
/// `service_roles` (held there or granted something limited to it),
/// `user_roles`, `user_permissions` (through held roles, limited or
/// unlimited grants, and direct grants, deduplicated: equal to
/// `rbac::effective_permissions` on the snapshot for every user and
/// service), `role_holders` and `user_services`.
pub async fn rbac_listings_agree_with_the_model<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 110).await;
    let People { alice, bob, carol } = small_world(&s, &fx, t.id).await;
    let (docs, wiki, billing) = (n("docs"), n("wiki"), n("billing"));
    let none: Vec<RbacName> = Vec::new();

    assert_eq!(
        s.role_permissions(t.id, &n("editor")).await.unwrap(),
        [
            grant("editor", "delete", Some("wiki")),
            grant("editor", "read", None),
            grant("editor", "write", Some("docs")),
        ]
    );
    assert_eq!(
        s.role_permissions(t.id, &n("viewer")).await.unwrap(),
        [grant("viewer", "read", None)]
    );
    assert!(
        s.role_permissions(t.id, &n("nobody"))
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(
        s.service_roles(t.id, &docs).await.unwrap(),
        [n("editor"), n("viewer")]
    );
    assert_eq!(
        s.service_roles(t.id, &wiki).await.unwrap(),
        [n("editor"), n("viewer")]
    );
    // Nobody holds a role in billing: auditor is there by its grant, and a
    // direct grant names no role.
    assert_eq!(
        s.service_roles(t.id, &billing).await.unwrap(),
        [n("auditor")]
    );
    assert!(
        s.service_roles(t.id, &n("nowhere"))
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(
        s.user_roles(t.id, alice.id, &docs).await.unwrap(),
        [n("editor")]
    );
    assert_eq!(
        s.user_roles(t.id, alice.id, &wiki).await.unwrap(),
        [n("viewer")]
    );
    assert_eq!(s.user_roles(t.id, alice.id, &billing).await.unwrap(), none);
    assert_eq!(
        s.user_roles(t.id, bob.id, &docs).await.unwrap(),
        [n("viewer")]
    );

    let perms = [
        (&alice, &docs, vec![n("read"), n("write")]),
        (&alice, &wiki, vec![n("read")]),
        (&alice, &billing, vec![]),
        (&bob, &docs, vec![n("read")]),
        (&bob, &wiki, vec![n("delete"), n("read")]),
        (&bob, &billing, vec![n("write")]),
        (&carol, &docs, vec![n("export"), n("read")]),
        (&carol, &wiki, vec![]),
        (&carol, &billing, vec![]),
    ];
    let snap = s.rbac_snapshot(t.id).await.unwrap();
    for (u, service, want) in perms {
        let got = s.user_permissions(t.id, u.id, service).await.unwrap();
        assert_eq!(got, want, "{} in {service}", u.identifier.as_str());
        assert_eq!(
            got,
            effective_permissions(&snap, u.id, service),
            "{} in {service}",
            u.identifier.as_str()
        );
    }
    // A role held but never granted anything gives nothing.
    apply(&s, t.id, create(RbacKind::Role, "idle")).await;
    apply(
        &s,
        t.id,
        RbacChange::Assign(holds(carol.id, "idle", "wiki")),
    )
    .await;
    assert_eq!(
        s.user_permissions(t.id, carol.id, &wiki).await.unwrap(),
        none
    );

    assert_eq!(
        s.role_holders(t.id, &n("editor"), &docs).await.unwrap(),
        [alice.id]
    );
    assert_eq!(
        s.role_holders(t.id, &n("viewer"), &docs).await.unwrap(),
        sorted(&[bob.id, carol.id])
    );
    assert!(
        s.role_holders(t.id, &n("auditor"), &billing)
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(
        s.user_services(t.id, alice.id).await.unwrap(),
        [n("docs"), n("wiki")]
    );
    assert_eq!(
        s.user_services(t.id, bob.id).await.unwrap(),
        [n("billing"), n("docs"), n("wiki")]
    );
    assert_eq!(
        s.user_services(t.id, carol.id).await.unwrap(),
        [n("docs"), n("wiki")]
    );
}

/// The snapshot holds the whole model, each list sorted, at the version
/// `authz_versions` reports; a tenant never changed reads as empty at
/// version 0.
pub async fn rbac_snapshot_holds_the_whole_model_sorted<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 111).await;
    let empty = s.rbac_snapshot(t.id).await.unwrap();
    assert_eq!(
        empty,
        RbacSnapshot {
            tenant_id: t.id,
            version: 0,
            services: vec![],
            roles: vec![],
            permissions: vec![],
            role_grants: vec![],
            assignments: vec![],
            direct_grants: vec![],
        }
    );
    let p = small_world(&s, &fx, t.id).await;
    let snap = s.rbac_snapshot(t.id).await.unwrap();
    assert_sorted_snapshot(&snap, t.id);
    assert_eq!(snap.version, SMALL_WORLD_VERSION);
    assert_eq!(snap.version, version(&s, t.id).await);
    assert_eq!(snap.services, [n("billing"), n("docs"), n("wiki")]);
    assert_eq!(snap.roles, [n("auditor"), n("editor"), n("viewer")]);
    assert_eq!(
        snap.permissions,
        [n("delete"), n("export"), n("read"), n("write")]
    );
    assert_eq!(
        snap.role_grants,
        [
            grant("auditor", "export", Some("billing")),
            grant("editor", "delete", Some("wiki")),
            grant("editor", "read", None),
            grant("editor", "write", Some("docs")),
            grant("viewer", "read", None),
        ]
    );
    assert_eq!(
        snap.assignments,
        sorted(&[
            holds(p.alice.id, "editor", "docs"),
            holds(p.alice.id, "viewer", "wiki"),
            holds(p.bob.id, "editor", "wiki"),
            holds(p.bob.id, "viewer", "docs"),
            holds(p.carol.id, "viewer", "docs"),
        ])
    );
    assert_eq!(
        snap.direct_grants,
        sorted(&[
            direct(p.alice.id, "read", "docs"),
            direct(p.bob.id, "write", "billing"),
            direct(p.carol.id, "export", "docs"),
        ])
    );
}

/// Two tenants using the same names have independent models: B's names,
/// grants, assignments and versions never appear to A, B's changes and
/// deletes leave A as it was, and A's listings naming B's user are empty.
pub async fn rbac_models_are_tenant_scoped<S: ConformanceStore>(s: S) {
    let fx = Fx::new(112);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let pa = small_world(&s, &fx, a.id).await;
    let a_before = s.rbac_snapshot(a.id).await.unwrap();
    let pb = small_world(&s, &fx, b.id).await;
    // B goes further: more names and grants, under A's names too.
    create_all(&s, b.id, RbacKind::Role, &["intruder"]).await;
    apply(
        &s,
        b.id,
        RbacChange::Grant(grant("intruder", "delete", Some("docs"))),
    )
    .await;
    apply(&s, b.id, RbacChange::Grant(grant("viewer", "write", None))).await;
    apply(
        &s,
        b.id,
        RbacChange::Assign(holds(pb.alice.id, "intruder", "docs")),
    )
    .await;
    apply(
        &s,
        b.id,
        RbacChange::GrantDirect(direct(pb.alice.id, "delete", "wiki")),
    )
    .await;
    apply(&s, b.id, delete(RbacKind::Service, "billing")).await;
    apply(&s, b.id, delete(RbacKind::Role, "editor")).await;
    assert_eq!(s.rbac_snapshot(a.id).await.unwrap(), a_before);
    assert_eq!(version(&s, a.id).await, SMALL_WORLD_VERSION);
    assert_eq!(version(&s, b.id).await, SMALL_WORLD_VERSION + 7);

    let (docs, wiki) = (n("docs"), n("wiki"));
    assert_eq!(
        s.rbac_names(a.id, RbacKind::Role).await.unwrap(),
        [n("auditor"), n("editor"), n("viewer")]
    );
    assert_eq!(
        s.role_permissions(a.id, &n("viewer")).await.unwrap(),
        [grant("viewer", "read", None)]
    );
    assert!(
        s.role_permissions(a.id, &n("intruder"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.service_roles(a.id, &docs).await.unwrap(),
        [n("editor"), n("viewer")]
    );
    assert_eq!(
        s.role_holders(a.id, &n("editor"), &docs).await.unwrap(),
        [pa.alice.id]
    );
    assert_eq!(
        s.role_holders(a.id, &n("viewer"), &docs).await.unwrap(),
        sorted(&[pa.bob.id, pa.carol.id])
    );
    assert_eq!(
        s.user_roles(a.id, pa.alice.id, &docs).await.unwrap(),
        [n("editor")]
    );
    assert_eq!(
        s.user_permissions(a.id, pa.alice.id, &wiki).await.unwrap(),
        [n("read")]
    );
    assert_eq!(
        s.user_services(a.id, pa.bob.id).await.unwrap(),
        [n("billing"), n("docs"), n("wiki")]
    );
    // B's users are nobody in A.
    for u in [&pb.alice, &pb.bob, &pb.carol] {
        assert!(s.user_services(a.id, u.id).await.unwrap().is_empty());
        assert!(s.user_roles(a.id, u.id, &docs).await.unwrap().is_empty());
        assert!(
            s.user_permissions(a.id, u.id, &docs)
                .await
                .unwrap()
                .is_empty()
        );
    }
    // And B sees its own model only.
    let b_snap = s.rbac_snapshot(b.id).await.unwrap();
    assert_eq!(b_snap.tenant_id, b.id);
    assert!(
        b_snap
            .assignments
            .iter()
            .all(|x| x.user != pa.alice.id && x.user != pa.bob.id && x.user != pa.carol.id)
    );
    assert_eq!(
        s.role_holders(b.id, &n("intruder"), &docs).await.unwrap(),
        [pb.alice.id]
    );
    assert!(
        s.role_holders(b.id, &n("editor"), &docs)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.user_permissions(b.id, pb.alice.id, &wiki).await.unwrap(),
        [n("delete"), n("read"), n("write")]
    );
}
