//! RBAC cascades: deleting a role, a service or a permission removes, in
//! the same change, everything that names it, and nothing else.

use countersign_core::{RbacKind, RbacName};

use super::acme;
use super::rbac::*;
use crate::ConformanceStore;

/// Deleting a role removes, in the same change, its grants and its
/// assignments, and nothing else; the listings stop naming it, and a role
/// created again under the name starts empty.
pub async fn deleting_a_role_cascades_to_its_grants_and_assignments<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 107).await;
    let p = small_world(&s, &fx, t.id).await;
    let before = s.rbac_snapshot(t.id).await.unwrap();
    assert_eq!(before.version, SMALL_WORLD_VERSION);
    let v = apply(&s, t.id, delete(RbacKind::Role, "editor")).await;
    assert_eq!(v, SMALL_WORLD_VERSION + 1);
    let after = s.rbac_snapshot(t.id).await.unwrap();
    assert_eq!(after, cascaded(&before, RbacKind::Role, "editor"));
    assert_eq!(after.direct_grants, before.direct_grants);
    assert_eq!(after.assignments.len(), 3);
    assert_eq!(after.role_grants.len(), 2);
    let editor = n("editor");
    let (docs, wiki) = (n("docs"), n("wiki"));
    assert!(s.role_permissions(t.id, &editor).await.unwrap().is_empty());
    assert!(
        s.role_holders(t.id, &editor, &docs)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.role_holders(t.id, &editor, &wiki)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.service_roles(t.id, &docs).await.unwrap(), [n("viewer")]);
    assert_eq!(s.service_roles(t.id, &wiki).await.unwrap(), [n("viewer")]);
    assert!(
        s.user_roles(t.id, p.alice.id, &docs)
            .await
            .unwrap()
            .is_empty()
    );
    // alice keeps `read` in docs through her direct grant only.
    assert_eq!(
        s.user_permissions(t.id, p.alice.id, &docs).await.unwrap(),
        [n("read")]
    );
    assert_eq!(
        s.user_permissions(t.id, p.bob.id, &wiki).await.unwrap(),
        Vec::<RbacName>::new()
    );
    assert_eq!(
        s.rbac_names(t.id, RbacKind::Role).await.unwrap(),
        [n("auditor"), n("viewer")]
    );
    apply(&s, t.id, create(RbacKind::Role, "editor")).await;
    assert!(s.role_permissions(t.id, &editor).await.unwrap().is_empty());
    assert!(
        s.role_holders(t.id, &editor, &docs)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Deleting a service removes, in the same change, the role grants limited
/// to it, the assignments in it and the direct grants in it, and nothing
/// else (grants in every service stay).
pub async fn deleting_a_service_cascades_to_its_grants_assignments_and_direct_grants<
    S: ConformanceStore,
>(
    s: S,
) {
    let (fx, t) = acme(&s, 108).await;
    let p = small_world(&s, &fx, t.id).await;
    let before = s.rbac_snapshot(t.id).await.unwrap();
    let v = apply(&s, t.id, delete(RbacKind::Service, "docs")).await;
    assert_eq!(v, SMALL_WORLD_VERSION + 1);
    let after = s.rbac_snapshot(t.id).await.unwrap();
    assert_eq!(after, cascaded(&before, RbacKind::Service, "docs"));
    assert_eq!(after.roles, before.roles);
    assert_eq!(after.permissions, before.permissions);
    assert_eq!(
        after.role_grants,
        [
            grant("auditor", "export", Some("billing")),
            grant("editor", "delete", Some("wiki")),
            grant("editor", "read", None),
            grant("viewer", "read", None),
        ]
    );
    assert_eq!(after.assignments.len(), 2);
    assert_eq!(after.direct_grants, [direct(p.bob.id, "write", "billing")]);
    let docs = n("docs");
    assert!(s.service_roles(t.id, &docs).await.unwrap().is_empty());
    assert!(
        s.role_holders(t.id, &n("viewer"), &docs)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.user_permissions(t.id, p.carol.id, &docs)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.user_services(t.id, p.carol.id).await.unwrap().is_empty());
    assert_eq!(
        s.user_services(t.id, p.alice.id).await.unwrap(),
        [n("wiki")]
    );
    assert_eq!(
        s.user_services(t.id, p.bob.id).await.unwrap(),
        [n("billing"), n("wiki")]
    );
    assert_eq!(
        s.role_permissions(t.id, &n("editor")).await.unwrap(),
        [
            grant("editor", "delete", Some("wiki")),
            grant("editor", "read", None)
        ]
    );
}

/// Deleting a permission removes, in the same change, the role grants and
/// direct grants of it, and nothing else (assignments stay).
pub async fn deleting_a_permission_cascades_to_its_role_and_direct_grants<S: ConformanceStore>(
    s: S,
) {
    let (fx, t) = acme(&s, 109).await;
    let p = small_world(&s, &fx, t.id).await;
    let before = s.rbac_snapshot(t.id).await.unwrap();
    let v = apply(&s, t.id, delete(RbacKind::Permission, "read")).await;
    assert_eq!(v, SMALL_WORLD_VERSION + 1);
    let after = s.rbac_snapshot(t.id).await.unwrap();
    assert_eq!(after, cascaded(&before, RbacKind::Permission, "read"));
    assert_eq!(after.assignments, before.assignments);
    assert_eq!(
        after.role_grants,
        [
            grant("auditor", "export", Some("billing")),
            grant("editor", "delete", Some("wiki")),
            grant("editor", "write", Some("docs")),
        ]
    );
    assert_eq!(after.direct_grants.len(), 2);
    let (docs, wiki) = (n("docs"), n("wiki"));
    assert_eq!(
        s.user_permissions(t.id, p.alice.id, &docs).await.unwrap(),
        [n("write")]
    );
    assert!(
        s.user_permissions(t.id, p.alice.id, &wiki)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.user_permissions(t.id, p.carol.id, &docs).await.unwrap(),
        [n("export")]
    );
    assert!(
        s.role_permissions(t.id, &n("viewer"))
            .await
            .unwrap()
            .is_empty()
    );
    // Holding a role does not depend on its grants.
    assert_eq!(
        s.user_roles(t.id, p.carol.id, &docs).await.unwrap(),
        [n("viewer")]
    );
}
