//! Each tenant's RBAC model: the guarantees of `RbacLookup` and
//! `RbacStore` (names, grants, assignments, cascades, listings, versions).
//! The audit side of a change is in `conformance::audit`.

use countersign_core::{
    AuditKind, AuditStatus, AuthzVersions, DirectGrant, PolicyDocument, RbacChange, RbacKind,
    RbacName, RbacSnapshot, RoleAssignment, RoleGrant, StoreError, StoreErrorKind, TenantId, User,
    UserId,
};

use super::{acme, acme_alice, kind, tenant, user};
use crate::ConformanceStore;
use crate::fixtures::{Fx, at};

/// How many tasks the concurrency guarantees race.
pub(super) const RACERS: u64 = 16;

/// `s` as a name.
pub(super) fn n(s: &str) -> RbacName {
    RbacName::new(s).unwrap()
}

pub(super) fn create(kind: RbacKind, name: &str) -> RbacChange {
    RbacChange::Create {
        kind,
        name: n(name),
    }
}

pub(super) fn delete(kind: RbacKind, name: &str) -> RbacChange {
    RbacChange::Delete {
        kind,
        name: n(name),
    }
}

/// `role` granted `permission` in `service` (`None`: in every service).
pub(super) fn grant(role: &str, permission: &str, service: Option<&str>) -> RoleGrant {
    RoleGrant {
        role: n(role),
        permission: n(permission),
        service: service.map(n),
    }
}

/// `user` holds `role` in `service`.
pub(super) fn holds(user: UserId, role: &str, service: &str) -> RoleAssignment {
    RoleAssignment {
        user,
        role: n(role),
        service: n(service),
    }
}

/// `user` is granted `permission` directly in `service`.
pub(super) fn direct(user: UserId, permission: &str, service: &str) -> DirectGrant {
    DirectGrant {
        user,
        permission: n(permission),
        service: n(service),
    }
}

/// Apply `change` to `tenant` (no event); it must succeed. Returns the new
/// version.
pub(super) async fn apply<S: ConformanceStore>(s: &S, tenant: TenantId, change: RbacChange) -> u64 {
    let what = change.describe();
    s.apply_rbac_change(tenant, &change, None)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Create every name of `names` as a `kind` in `tenant`.
pub(super) async fn create_all<S: ConformanceStore>(
    s: &S,
    tenant: TenantId,
    kind: RbacKind,
    names: &[&str],
) {
    for name in names {
        apply(s, tenant, create(kind, name)).await;
    }
}

/// `change` is refused with `want` and writes nothing: the tenant's model
/// and version read the same before and after.
pub(super) async fn refused<S: ConformanceStore>(
    s: &S,
    tenant: TenantId,
    change: RbacChange,
    want: StoreErrorKind,
) {
    let before = s.rbac_snapshot(tenant).await.unwrap();
    let got = kind(s.apply_rbac_change(tenant, &change, None).await);
    assert_eq!(got, want, "{}", change.describe());
    assert_eq!(
        s.rbac_snapshot(tenant).await.unwrap(),
        before,
        "the refused `{}` wrote something",
        change.describe()
    );
}

/// The RBAC version of `tenant`.
pub(super) async fn version<S: ConformanceStore>(s: &S, tenant: TenantId) -> u64 {
    s.authz_versions(tenant).await.unwrap().rbac
}

pub(super) fn sorted<T: Ord + Clone>(v: &[T]) -> Vec<T> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// The users of the small world.
pub(super) struct People {
    pub(super) alice: User,
    pub(super) bob: User,
    pub(super) carol: User,
}

/// The small world the cascade, listing and isolation guarantees share,
/// built in `tenant` (names created out of order):
///
/// - services `wiki`, `docs`, `billing`; roles `viewer`, `editor`,
///   `auditor`; permissions `write`, `read`, `delete`, `export`;
/// - `editor` has `read` everywhere, `write` in `docs`, `delete` in
///   `wiki`; `viewer` has `read` everywhere; `auditor` has `export` in
///   `billing` (and nobody holds it);
/// - alice is `editor` in `docs` and `viewer` in `wiki`, and has `read` in
///   `docs` directly (also through `editor`); bob is `editor` in `wiki`
///   and `viewer` in `docs`, and has `write` in `billing` directly; carol
///   is `viewer` in `docs` and has `export` in `docs` directly.
pub(super) async fn small_world<S: ConformanceStore>(s: &S, fx: &Fx, tenant: TenantId) -> People {
    let alice = user(s, fx, tenant, "alice").await;
    let bob = user(s, fx, tenant, "bob").await;
    let carol = user(s, fx, tenant, "carol").await;
    create_all(s, tenant, RbacKind::Service, &["wiki", "docs", "billing"]).await;
    create_all(s, tenant, RbacKind::Role, &["viewer", "editor", "auditor"]).await;
    create_all(
        s,
        tenant,
        RbacKind::Permission,
        &["write", "read", "delete", "export"],
    )
    .await;
    for g in [
        grant("editor", "write", Some("docs")),
        grant("editor", "read", None),
        grant("editor", "delete", Some("wiki")),
        grant("viewer", "read", None),
        grant("auditor", "export", Some("billing")),
    ] {
        apply(s, tenant, RbacChange::Grant(g)).await;
    }
    for a in [
        holds(alice.id, "editor", "docs"),
        holds(alice.id, "viewer", "wiki"),
        holds(bob.id, "editor", "wiki"),
        holds(bob.id, "viewer", "docs"),
        holds(carol.id, "viewer", "docs"),
    ] {
        apply(s, tenant, RbacChange::Assign(a)).await;
    }
    for g in [
        direct(alice.id, "read", "docs"),
        direct(bob.id, "write", "billing"),
        direct(carol.id, "export", "docs"),
    ] {
        apply(s, tenant, RbacChange::GrantDirect(g)).await;
    }
    People { alice, bob, carol }
}

/// How many changes [`small_world`] applies: its version.
pub(super) const SMALL_WORLD_VERSION: u64 = 3 + 3 + 4 + 5 + 5 + 3;

/// `before` after deleting the `kind` named `name`: the name gone, every
/// grant and assignment naming it gone, one version up.
pub(super) fn cascaded(before: &RbacSnapshot, kind: RbacKind, name: &str) -> RbacSnapshot {
    let name = n(name);
    let mut want = before.clone();
    want.version += 1;
    match kind {
        RbacKind::Service => {
            want.services.retain(|s| *s != name);
            want.role_grants
                .retain(|g| g.service.as_ref() != Some(&name));
            want.assignments.retain(|a| a.service != name);
            want.direct_grants.retain(|g| g.service != name);
        }
        RbacKind::Role => {
            want.roles.retain(|r| *r != name);
            want.role_grants.retain(|g| g.role != name);
            want.assignments.retain(|a| a.role != name);
        }
        RbacKind::Permission => {
            want.permissions.retain(|p| *p != name);
            want.role_grants.retain(|g| g.permission != name);
            want.direct_grants.retain(|g| g.permission != name);
        }
    }
    want
}

/// Every list of the snapshot is sorted, and it is of `tenant`.
pub(super) fn assert_sorted_snapshot(snap: &RbacSnapshot, tenant: TenantId) {
    assert_eq!(snap.tenant_id, tenant);
    assert!(snap.services.is_sorted(), "{:?}", snap.services);
    assert!(snap.roles.is_sorted(), "{:?}", snap.roles);
    assert!(snap.permissions.is_sorted(), "{:?}", snap.permissions);
    assert!(snap.role_grants.is_sorted(), "{:?}", snap.role_grants);
    assert!(snap.assignments.is_sorted(), "{:?}", snap.assignments);
    assert!(snap.direct_grants.is_sorted(), "{:?}", snap.direct_grants);
}

/// Names of each kind are created and listed sorted, the same name may be
/// a service, a role and a permission at once, and the snapshot lists
/// the same names.
pub async fn rbac_names_are_created_and_listed_sorted_per_kind<S: ConformanceStore>(s: S) {
    let (_fx, t) = acme(&s, 100).await;
    for kind in [RbacKind::Service, RbacKind::Role, RbacKind::Permission] {
        assert!(s.rbac_names(t.id, kind).await.unwrap().is_empty());
    }
    create_all(
        &s,
        t.id,
        RbacKind::Service,
        &["wiki", "docs", "Zeta", "api"],
    )
    .await;
    create_all(&s, t.id, RbacKind::Role, &["viewer", "admin", "editor"]).await;
    create_all(&s, t.id, RbacKind::Permission, &["write", "admin", "read"]).await;
    // The same name in another kind is another name.
    apply(&s, t.id, create(RbacKind::Service, "admin")).await;
    let services = s.rbac_names(t.id, RbacKind::Service).await.unwrap();
    let roles = s.rbac_names(t.id, RbacKind::Role).await.unwrap();
    let permissions = s.rbac_names(t.id, RbacKind::Permission).await.unwrap();
    assert_eq!(
        services,
        [n("Zeta"), n("admin"), n("api"), n("docs"), n("wiki")]
    );
    assert_eq!(roles, [n("admin"), n("editor"), n("viewer")]);
    assert_eq!(permissions, [n("admin"), n("read"), n("write")]);
    let snap = s.rbac_snapshot(t.id).await.unwrap();
    assert_sorted_snapshot(&snap, t.id);
    assert_eq!(
        (snap.services, snap.roles, snap.permissions),
        (services, roles, permissions)
    );
    assert!(snap.role_grants.is_empty() && snap.assignments.is_empty());
    assert!(snap.direct_grants.is_empty());
}

/// Creating a name that exists in the tenant (of the same kind) is
/// `Conflict` and leaves the model and its version as they were.
pub async fn duplicate_rbac_name_conflicts_and_keeps_the_version<S: ConformanceStore>(s: S) {
    let (_fx, t) = acme(&s, 101).await;
    for kind in [RbacKind::Service, RbacKind::Role, RbacKind::Permission] {
        apply(&s, t.id, create(kind, "admin")).await;
        let v = version(&s, t.id).await;
        refused(&s, t.id, create(kind, "admin"), StoreErrorKind::Conflict).await;
        assert_eq!(version(&s, t.id).await, v);
    }
    assert_eq!(version(&s, t.id).await, 3);
}

/// The RBAC version starts at 0 and every applied change, of each of the
/// eight kinds, returns and stores exactly one more; `authz_versions`
/// reports it together with the policy document's version (`None` until
/// the tenant has a document), and neither save moves the other version.
pub async fn every_rbac_change_bumps_the_version_by_one<S: ConformanceStore>(s: S) {
    let (_fx, t, u) = acme_alice(&s, 102).await;
    assert_eq!(
        s.authz_versions(t.id).await.unwrap(),
        AuthzVersions::default()
    );
    assert_eq!(s.rbac_snapshot(t.id).await.unwrap().version, 0);
    let changes = [
        create(RbacKind::Service, "docs"),
        create(RbacKind::Role, "editor"),
        create(RbacKind::Permission, "read"),
        RbacChange::Grant(grant("editor", "read", None)),
        RbacChange::Assign(holds(u.id, "editor", "docs")),
        RbacChange::GrantDirect(direct(u.id, "read", "docs")),
        RbacChange::RevokeDirect(direct(u.id, "read", "docs")),
        RbacChange::Unassign(holds(u.id, "editor", "docs")),
        RbacChange::Revoke(grant("editor", "read", None)),
        delete(RbacKind::Permission, "read"),
    ];
    for (i, change) in changes.into_iter().enumerate() {
        let want = i as u64 + 1;
        let what = change.describe();
        assert_eq!(apply(&s, t.id, change).await, want, "{what}");
        assert_eq!(
            s.authz_versions(t.id).await.unwrap(),
            AuthzVersions {
                policies: None,
                rbac: want
            },
            "{what}"
        );
        assert_eq!(s.rbac_snapshot(t.id).await.unwrap().version, want);
    }
    let doc = PolicyDocument {
        tenant_id: t.id,
        schema: "entity User;".into(),
        policies: String::new(),
        links: Vec::new(),
        version: 0,
        updated_at: at(1),
    };
    assert!(
        s.compare_and_save_policy_document(&doc, None, None)
            .await
            .unwrap()
    );
    assert_eq!(
        s.authz_versions(t.id).await.unwrap(),
        AuthzVersions {
            policies: Some(1),
            rbac: 10
        }
    );
    assert!(
        s.compare_and_save_policy_document(&doc, Some(1), None)
            .await
            .unwrap()
    );
    assert_eq!(apply(&s, t.id, delete(RbacKind::Role, "editor")).await, 11);
    assert_eq!(
        s.authz_versions(t.id).await.unwrap(),
        AuthzVersions {
            policies: Some(2),
            rbac: 11
        }
    );
}

/// A grant, an assignment or a direct grant naming a role, permission or
/// service that does not exist, or a user that does not, is `NotFound`
/// and writes nothing.
pub async fn grants_and_assignments_need_existing_names<S: ConformanceStore>(s: S) {
    let (fx, t, u) = acme_alice(&s, 103).await;
    create_all(&s, t.id, RbacKind::Service, &["docs"]).await;
    create_all(&s, t.id, RbacKind::Role, &["editor"]).await;
    create_all(&s, t.id, RbacKind::Permission, &["read"]).await;
    let ghost = fx.user_id();
    let nf = StoreErrorKind::NotFound;
    for change in [
        RbacChange::Grant(grant("nobody", "read", None)),
        RbacChange::Grant(grant("editor", "nothing", None)),
        RbacChange::Grant(grant("editor", "read", Some("nowhere"))),
        RbacChange::Assign(holds(u.id, "nobody", "docs")),
        RbacChange::Assign(holds(u.id, "editor", "nowhere")),
        RbacChange::Assign(holds(ghost, "editor", "docs")),
        RbacChange::GrantDirect(direct(u.id, "nothing", "docs")),
        RbacChange::GrantDirect(direct(u.id, "read", "nowhere")),
        RbacChange::GrantDirect(direct(ghost, "read", "docs")),
        // A name of another kind is not this kind's name.
        RbacChange::Grant(grant("read", "editor", Some("docs"))),
        RbacChange::Assign(holds(u.id, "docs", "editor")),
    ] {
        refused(&s, t.id, change, nf).await;
    }
    assert_eq!(version(&s, t.id).await, 3);
    let snap = s.rbac_snapshot(t.id).await.unwrap();
    assert!(snap.role_grants.is_empty() && snap.assignments.is_empty());
    assert!(snap.direct_grants.is_empty());
}

/// Another tenant's role, permission, service or user is absent here: a
/// grant, assignment or direct grant naming one is `NotFound` and writes
/// nothing in either tenant.
pub async fn grants_and_assignments_refuse_another_tenants_names_and_users<S: ConformanceStore>(
    s: S,
) {
    let fx = Fx::new(104);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let alice = user(&s, &fx, a.id, "alice").await;
    let bob = user(&s, &fx, b.id, "bob").await;
    create_all(&s, a.id, RbacKind::Service, &["docs"]).await;
    create_all(&s, a.id, RbacKind::Role, &["editor"]).await;
    create_all(&s, a.id, RbacKind::Permission, &["read"]).await;
    create_all(&s, b.id, RbacKind::Service, &["docs", "b-only"]).await;
    create_all(&s, b.id, RbacKind::Role, &["editor", "b-role"]).await;
    create_all(&s, b.id, RbacKind::Permission, &["read", "b-perm"]).await;
    let b_before = s.rbac_snapshot(b.id).await.unwrap();
    let nf = StoreErrorKind::NotFound;
    for change in [
        RbacChange::Grant(grant("b-role", "read", None)),
        RbacChange::Grant(grant("editor", "b-perm", None)),
        RbacChange::Grant(grant("editor", "read", Some("b-only"))),
        RbacChange::Assign(holds(alice.id, "b-role", "docs")),
        RbacChange::Assign(holds(alice.id, "editor", "b-only")),
        RbacChange::Assign(holds(bob.id, "editor", "docs")),
        RbacChange::GrantDirect(direct(alice.id, "b-perm", "docs")),
        RbacChange::GrantDirect(direct(alice.id, "read", "b-only")),
        RbacChange::GrantDirect(direct(bob.id, "read", "docs")),
    ] {
        refused(&s, a.id, change, nf).await;
    }
    // And the other way round: A's user is nobody in B.
    refused(
        &s,
        b.id,
        RbacChange::Assign(holds(alice.id, "editor", "docs")),
        nf,
    )
    .await;
    refused(
        &s,
        b.id,
        RbacChange::GrantDirect(direct(alice.id, "read", "docs")),
        nf,
    )
    .await;
    assert_eq!(version(&s, a.id).await, 3);
    assert_eq!(s.rbac_snapshot(b.id).await.unwrap(), b_before);
    assert!(s.user_services(a.id, bob.id).await.unwrap().is_empty());
    assert!(s.user_services(b.id, alice.id).await.unwrap().is_empty());
}

/// A grant, an assignment or a direct grant that exists already is
/// `Conflict` and writes nothing; a grant limited to a service and the
/// same grant in every service are two grants.
pub async fn duplicate_grants_and_assignments_conflict<S: ConformanceStore>(s: S) {
    let (_fx, t, u) = acme_alice(&s, 105).await;
    create_all(&s, t.id, RbacKind::Service, &["docs", "wiki"]).await;
    create_all(&s, t.id, RbacKind::Role, &["editor"]).await;
    create_all(&s, t.id, RbacKind::Permission, &["read"]).await;
    let everywhere = grant("editor", "read", None);
    let in_docs = grant("editor", "read", Some("docs"));
    let in_wiki = grant("editor", "read", Some("wiki"));
    apply(&s, t.id, RbacChange::Grant(everywhere.clone())).await;
    apply(&s, t.id, RbacChange::Grant(in_docs.clone())).await;
    apply(&s, t.id, RbacChange::Grant(in_wiki.clone())).await;
    apply(&s, t.id, RbacChange::Assign(holds(u.id, "editor", "docs"))).await;
    apply(&s, t.id, RbacChange::Assign(holds(u.id, "editor", "wiki"))).await;
    apply(
        &s,
        t.id,
        RbacChange::GrantDirect(direct(u.id, "read", "docs")),
    )
    .await;
    let c = StoreErrorKind::Conflict;
    for change in [
        RbacChange::Grant(everywhere.clone()),
        RbacChange::Grant(in_docs.clone()),
        RbacChange::Assign(holds(u.id, "editor", "docs")),
        RbacChange::GrantDirect(direct(u.id, "read", "docs")),
    ] {
        refused(&s, t.id, change, c).await;
    }
    assert_eq!(version(&s, t.id).await, 10);
    assert_eq!(
        s.role_permissions(t.id, &n("editor")).await.unwrap(),
        sorted(&[everywhere.clone(), in_docs.clone(), in_wiki])
    );
    // Revoking the unlimited grant leaves the limited ones.
    apply(&s, t.id, RbacChange::Revoke(everywhere)).await;
    assert_eq!(
        s.role_permissions(t.id, &n("editor")).await.unwrap(),
        [in_docs, grant("editor", "read", Some("wiki"))]
    );
}

/// Deleting, revoking, unassigning or revoking directly what is not there
/// is `NotFound` and writes nothing.
pub async fn removing_what_is_absent_is_not_found<S: ConformanceStore>(s: S) {
    let (fx, t, u) = acme_alice(&s, 106).await;
    let other = user(&s, &fx, t.id, "bob").await;
    create_all(&s, t.id, RbacKind::Service, &["docs", "wiki"]).await;
    create_all(&s, t.id, RbacKind::Role, &["editor"]).await;
    create_all(&s, t.id, RbacKind::Permission, &["read"]).await;
    apply(&s, t.id, RbacChange::Grant(grant("editor", "read", None))).await;
    apply(&s, t.id, RbacChange::Assign(holds(u.id, "editor", "docs"))).await;
    apply(
        &s,
        t.id,
        RbacChange::GrantDirect(direct(u.id, "read", "docs")),
    )
    .await;
    let nf = StoreErrorKind::NotFound;
    for change in [
        delete(RbacKind::Service, "nowhere"),
        delete(RbacKind::Role, "nobody"),
        delete(RbacKind::Permission, "nothing"),
        // Names of another kind.
        delete(RbacKind::Service, "editor"),
        delete(RbacKind::Role, "read"),
        delete(RbacKind::Permission, "docs"),
        RbacChange::Revoke(grant("editor", "read", Some("docs"))),
        RbacChange::Revoke(grant("nobody", "read", None)),
        RbacChange::Unassign(holds(u.id, "editor", "wiki")),
        RbacChange::Unassign(holds(other.id, "editor", "docs")),
        RbacChange::Unassign(holds(fx.user_id(), "editor", "docs")),
        RbacChange::RevokeDirect(direct(u.id, "read", "wiki")),
        RbacChange::RevokeDirect(direct(other.id, "read", "docs")),
    ] {
        refused(&s, t.id, change, nf).await;
    }
    // Removing twice: the second finds nothing.
    apply(
        &s,
        t.id,
        RbacChange::Unassign(holds(u.id, "editor", "docs")),
    )
    .await;
    refused(
        &s,
        t.id,
        RbacChange::Unassign(holds(u.id, "editor", "docs")),
        nf,
    )
    .await;
    apply(&s, t.id, delete(RbacKind::Role, "editor")).await;
    refused(&s, t.id, delete(RbacKind::Role, "editor"), nf).await;
    assert_eq!(version(&s, t.id).await, 9);
}

/// A change to a tenant that does not exist is `NotFound` and writes
/// nothing; such a tenant reads as empty, at versions
/// `AuthzVersions::default()`.
pub async fn rbac_change_for_unknown_tenant_is_not_found<S: ConformanceStore>(s: S) {
    let (fx, t, u) = acme_alice(&s, 113).await;
    let ghost = fx.tenant_id();
    for change in [
        create(RbacKind::Role, "editor"),
        create(RbacKind::Service, "docs"),
        delete(RbacKind::Role, "editor"),
        RbacChange::Assign(holds(u.id, "editor", "docs")),
    ] {
        assert_eq!(
            kind(s.apply_rbac_change(ghost, &change, None).await),
            StoreErrorKind::NotFound,
            "{}",
            change.describe()
        );
    }
    assert_eq!(
        s.authz_versions(ghost).await.unwrap(),
        AuthzVersions::default()
    );
    let snap = s.rbac_snapshot(ghost).await.unwrap();
    assert_eq!((snap.tenant_id, snap.version), (ghost, 0));
    assert!(snap.roles.is_empty() && snap.services.is_empty());
    for kind in [RbacKind::Service, RbacKind::Role, RbacKind::Permission] {
        assert!(s.rbac_names(ghost, kind).await.unwrap().is_empty());
        assert!(s.rbac_names(t.id, kind).await.unwrap().is_empty());
    }
    assert!(s.user_services(ghost, u.id).await.unwrap().is_empty());
    assert_eq!(
        s.authz_versions(t.id).await.unwrap(),
        AuthzVersions::default()
    );
}

/// A change given an audit event whose id exists is `Conflict` and writes
/// nothing: no change (nor its cascade), no version.
pub async fn rbac_change_with_a_taken_event_id_writes_nothing<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 114).await;
    let p = small_world(&s, &fx, t.id).await;
    let taken = fx.event(
        t.id,
        None,
        AuditKind::TenantProvisioned,
        AuditStatus::Success,
        at(1),
    );
    s.record_event(&taken).await.unwrap();
    let before = s.rbac_snapshot(t.id).await.unwrap();
    for change in [
        create(RbacKind::Role, "fresh"),
        delete(RbacKind::Role, "editor"),
        delete(RbacKind::Service, "docs"),
        RbacChange::Revoke(grant("viewer", "read", None)),
        RbacChange::Unassign(holds(p.alice.id, "editor", "docs")),
        RbacChange::GrantDirect(direct(p.alice.id, "write", "wiki")),
    ] {
        let mut e = fx.event(
            t.id,
            None,
            AuditKind::RbacChanged,
            AuditStatus::Success,
            at(2),
        );
        e.id = taken.id;
        assert_eq!(
            kind(s.apply_rbac_change(t.id, &change, Some(&e)).await),
            StoreErrorKind::Conflict,
            "{}",
            change.describe()
        );
        assert_eq!(
            s.rbac_snapshot(t.id).await.unwrap(),
            before,
            "{}",
            change.describe()
        );
    }
    assert_eq!(version(&s, t.id).await, SMALL_WORLD_VERSION);
    // With a fresh event id the same change goes through.
    let e = fx.event(
        t.id,
        None,
        AuditKind::RbacChanged,
        AuditStatus::Success,
        at(3),
    );
    let v = s
        .apply_rbac_change(t.id, &create(RbacKind::Role, "fresh"), Some(&e))
        .await
        .unwrap();
    assert_eq!(v, SMALL_WORLD_VERSION + 1);
}

/// Erasing a user removes its assignments and direct grants (and nobody
/// else's) and bumps the RBAC version by exactly one; erasing a user who
/// has none leaves the version, and erasing in another tenant changes
/// nothing.
pub async fn erase_user_removes_its_rbac_rows_and_bumps_the_version<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 115).await;
    let p = small_world(&s, &fx, t.id).await;
    let other = tenant(&s, &fx, "other").await;
    let before = s.rbac_snapshot(t.id).await.unwrap();
    // Not a user of `other`: nothing happens.
    assert!(
        !s.erase_user(other.id, p.alice.id, fx.user_id())
            .await
            .unwrap()
    );
    assert_eq!(s.rbac_snapshot(t.id).await.unwrap(), before);
    assert!(s.erase_user(t.id, p.alice.id, fx.user_id()).await.unwrap());
    let after = s.rbac_snapshot(t.id).await.unwrap();
    let mut want = before.clone();
    want.version += 1;
    want.assignments.retain(|a| a.user != p.alice.id);
    want.direct_grants.retain(|g| g.user != p.alice.id);
    assert_eq!(after, want);
    assert_eq!(after.assignments.len(), 3);
    assert_eq!(after.direct_grants.len(), 2);
    assert_eq!(version(&s, t.id).await, SMALL_WORLD_VERSION + 1);
    assert!(s.user_services(t.id, p.alice.id).await.unwrap().is_empty());
    assert!(
        s.role_holders(t.id, &n("editor"), &n("docs"))
            .await
            .unwrap()
            .is_empty()
    );
    // A user without RBAC rows: no change, no version.
    let dave = user(&s, &fx, t.id, "dave").await;
    assert!(s.erase_user(t.id, dave.id, fx.user_id()).await.unwrap());
    assert_eq!(s.rbac_snapshot(t.id).await.unwrap(), after);
}

/// `N` concurrent changes of one tenant (creates of distinct names) are
/// applied one at a time: they return the versions `1..=N`, each once,
/// and every name is there.
pub async fn concurrent_rbac_changes_get_consecutive_versions<S: ConformanceStore>(s: S) {
    let (_fx, t) = acme(&s, 116).await;
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let change = create(RbacKind::Role, &format!("role-{i:02}"));
            s.apply_rbac_change(t.id, &change, None)
                .await
                .map_err(|e| e.kind())
        }));
    }
    let mut versions = Vec::new();
    for task in tasks {
        versions.push(task.await.unwrap().unwrap());
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=RACERS).collect::<Vec<u64>>());
    assert_eq!(version(&s, t.id).await, RACERS);
    let roles = s.rbac_names(t.id, RbacKind::Role).await.unwrap();
    let want: Vec<RbacName> = (0..RACERS).map(|i| n(&format!("role-{i:02}"))).collect();
    assert_eq!(roles, want);
}

/// Of `N` concurrent creates of one name exactly one succeeds (at version
/// 1); the others are `Conflict`, and the version is 1.
pub async fn concurrent_creates_of_one_name_have_one_winner<S: ConformanceStore>(s: S) {
    let (_fx, t) = acme(&s, 117).await;
    let mut tasks = Vec::new();
    for _ in 0..RACERS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.apply_rbac_change(t.id, &create(RbacKind::Service, "docs"), None)
                .await
                .map_err(|e| e.kind())
        }));
    }
    let mut won = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(v) => won.push(v),
            Err(k) => assert_eq!(k, StoreErrorKind::Conflict),
        }
    }
    assert_eq!(won, [1]);
    assert_eq!(version(&s, t.id).await, 1);
    assert_eq!(
        s.rbac_names(t.id, RbacKind::Service).await.unwrap(),
        [n("docs")]
    );
}
