//! Identities at other issuers linked to local accounts: the guarantees
//! of `FederatedStore`.
//!
//! Whether a refused call recorded its audit event is checked without
//! reading the log back (so every backend runs these): a link and a
//! linked-user creation are `Conflict` when their event id exists, so a
//! refused call's event id that a later link accepts was never written.

use countersign_core::{
    AuditEvent, AuditKind, AuditStatus, EmailAddress, LinkedIdentity, StoreError, StoreErrorKind,
    TenantId, User, UserId,
};

use super::{acme, acme_alice, kind, tenant, user};
use crate::ConformanceStore;
use crate::fixtures::{Fx, at};

const ISSUER: &str = "https://accounts.example.com";
const OTHER_ISSUER: &str = "https://login.example.net";

/// The link of `subject` at `issuer` to `user`, made at `at(when)`.
fn identity(
    tenant: TenantId,
    user: UserId,
    issuer: &str,
    subject: &str,
    when: i64,
) -> LinkedIdentity {
    LinkedIdentity {
        tenant_id: tenant,
        user_id: user,
        issuer: issuer.to_owned(),
        subject: subject.to_owned(),
        email: Some(EmailAddress::parse(&format!("{subject}@idp.example")).unwrap()),
        linked_at: at(when),
    }
}

/// The audit event recording `link`.
fn event(fx: &Fx, link: &LinkedIdentity) -> AuditEvent {
    fx.event(
        link.tenant_id,
        Some(link.user_id),
        AuditKind::FactorEnrolled,
        AuditStatus::Success,
        link.linked_at,
    )
}

/// Link `link` with a fresh event; panics unless it is linked.
async fn linked<S: ConformanceStore>(s: &S, fx: &Fx, link: &LinkedIdentity) {
    s.link_identity(link, &event(fx, link)).await.unwrap();
}

/// The link of (tenant, issuer, subject) of `link`.
async fn found<S: ConformanceStore>(s: &S, link: &LinkedIdentity) -> Option<LinkedIdentity> {
    s.find_linked_identity(link.tenant_id, &link.issuer, &link.subject)
        .await
        .unwrap()
}

/// Panics unless `e`'s id was never recorded: a fresh link of `user`
/// (named by `probe`, a subject used nowhere else) recorded with it is
/// accepted.
async fn assert_event_unwritten<S: ConformanceStore>(
    s: &S,
    tenant: TenantId,
    user: UserId,
    probe: &str,
    e: &AuditEvent,
) {
    let link = identity(tenant, user, "https://probe.example", probe, 0);
    if let Err(err) = s.link_identity(&link, e).await {
        panic!("the refused call's event was recorded: {:?}", err.kind());
    }
}

/// A link reads back exactly (with an address or without), by (tenant,
/// issuer, subject) and in its user's list; its event is recorded with
/// it, so that event id cannot be used again.
pub async fn linked_identity_round_trips<S: ConformanceStore>(s: S) {
    let (fx, t, u) = acme_alice(&s, 230).await;
    let first = identity(t.id, u.id, ISSUER, "sub-1", 1);
    let mut second = identity(t.id, u.id, OTHER_ISSUER, "sub-2", 2);
    second.email = None;
    let e = event(&fx, &first);
    s.link_identity(&first, &e).await.unwrap();
    linked(&s, &fx, &second).await;
    assert_eq!(found(&s, &first).await, Some(first.clone()));
    assert_eq!(found(&s, &second).await, Some(second.clone()));
    assert_eq!(
        s.linked_identities(t.id, u.id).await.unwrap(),
        [first, second]
    );
    let third = identity(t.id, u.id, ISSUER, "sub-3", 3);
    assert_eq!(
        kind(s.link_identity(&third, &e).await),
        StoreErrorKind::Conflict,
        "the first link's event exists"
    );
    assert_eq!(found(&s, &third).await, None);
}

/// One link per (tenant, issuer, subject): linking a linked identity
/// again, to another user or the same, is `Conflict` and writes nothing
/// (not the link, not its event).
pub async fn an_identity_links_to_one_account_only<S: ConformanceStore>(s: S) {
    let (fx, t, alice) = acme_alice(&s, 231).await;
    let bob = user(&s, &fx, t.id, "bob").await;
    let original = identity(t.id, alice.id, ISSUER, "sub-1", 1);
    linked(&s, &fx, &original).await;
    for (who, n) in [(bob.id, 1), (alice.id, 2)] {
        let again = identity(t.id, who, ISSUER, "sub-1", 5);
        let e = event(&fx, &again);
        assert_eq!(
            kind(s.link_identity(&again, &e).await),
            StoreErrorKind::Conflict
        );
        assert_event_unwritten(&s, t.id, bob.id, &format!("probe-{n}"), &e).await;
    }
    assert_eq!(found(&s, &original).await, Some(original.clone()));
    assert_eq!(
        s.linked_identities(t.id, alice.id).await.unwrap(),
        [original]
    );
    let bobs = s.linked_identities(t.id, bob.id).await.unwrap();
    assert!(bobs.iter().all(|l| l.subject != "sub-1"), "{bobs:?}");
}

/// A link whose event id exists is `Conflict` and writes no link.
pub async fn a_link_with_a_taken_event_id_writes_nothing<S: ConformanceStore>(s: S) {
    let (fx, t, u) = acme_alice(&s, 232).await;
    let taken = fx.event(
        t.id,
        None,
        AuditKind::TenantProvisioned,
        AuditStatus::Success,
        at(0),
    );
    s.record_event(&taken).await.unwrap();
    let link = identity(t.id, u.id, ISSUER, "sub-1", 1);
    let mut e = event(&fx, &link);
    e.id = taken.id;
    assert_eq!(
        kind(s.link_identity(&link, &e).await),
        StoreErrorKind::Conflict
    );
    assert_eq!(found(&s, &link).await, None);
    assert!(s.linked_identities(t.id, u.id).await.unwrap().is_empty());
    linked(&s, &fx, &link).await;
    assert_eq!(found(&s, &link).await, Some(link));
}

/// Creating a linked user creates the user (without credentials), its
/// link and its event together.
pub async fn create_linked_user_creates_the_user_and_its_link<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 233).await;
    let u = fx.user(t.id, "alice");
    let link = identity(t.id, u.id, ISSUER, "sub-1", 1);
    let e = event(&fx, &link);
    s.create_linked_user(&u, &link, &e).await.unwrap();
    assert_eq!(s.get_user(t.id, u.id).await.unwrap(), Some(u.clone()));
    assert_eq!(
        s.find_user(t.id, &u.identifier).await.unwrap(),
        Some(u.clone())
    );
    assert!(s.user_factors(t.id, u.id).await.unwrap().is_empty());
    assert_eq!(found(&s, &link).await, Some(link.clone()));
    assert_eq!(s.linked_identities(t.id, u.id).await.unwrap(), [link]);
    let another = identity(t.id, u.id, ISSUER, "sub-2", 2);
    assert_eq!(
        kind(s.link_identity(&another, &e).await),
        StoreErrorKind::Conflict,
        "the creation's event exists"
    );
}

/// Of 16 concurrent first sign-ins with one identity (each creating its
/// own user) exactly one succeeds, the others are `Conflict`: one user
/// row exists, linked, and no loser's user or event was written.
pub async fn concurrent_linked_user_creations_have_one_winner<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 234).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = s.clone();
        let u = fx.user(t.id, &format!("user-{i}"));
        let link = identity(t.id, u.id, ISSUER, "sub-1", i);
        let e = event(&fx, &link);
        tasks.push(tokio::spawn(async move {
            let r = s.create_linked_user(&u, &link, &e).await;
            (r.map_err(|err| err.kind()), u, e)
        }));
    }
    let (mut winners, mut losers) = (Vec::<User>::new(), Vec::new());
    for task in tasks {
        match task.await.unwrap() {
            (Ok(()), u, _) => winners.push(u),
            (Err(k), u, e) => {
                assert_eq!(k, StoreErrorKind::Conflict);
                losers.push((u, e));
            }
        }
    }
    assert_eq!(winners.len(), 1);
    let winner = &winners[0];
    assert_eq!(
        s.list_users(t.id, None, 100).await.unwrap(),
        std::slice::from_ref(winner)
    );
    let link = s.find_linked_identity(t.id, ISSUER, "sub-1").await.unwrap();
    assert_eq!(link.map(|l| l.user_id), Some(winner.id));
    for (i, (u, e)) in losers.iter().enumerate() {
        assert_eq!(s.get_user(t.id, u.id).await.unwrap(), None);
        assert!(s.linked_identities(t.id, u.id).await.unwrap().is_empty());
        assert_event_unwritten(&s, t.id, winner.id, &format!("probe-{i}"), e).await;
    }
}

/// A linked-user creation that cannot complete writes nothing (no user,
/// no link, no event): its identifier is taken, its identity is linked
/// already, or its event id exists.
pub async fn a_refused_linked_user_creation_writes_nothing<S: ConformanceStore>(s: S) {
    let (fx, t, alice) = acme_alice(&s, 235).await;
    let taken_link = identity(t.id, alice.id, ISSUER, "taken", 1);
    linked(&s, &fx, &taken_link).await;
    let taken_event = fx.event(
        t.id,
        None,
        AuditKind::TenantProvisioned,
        AuditStatus::Success,
        at(0),
    );
    s.record_event(&taken_event).await.unwrap();

    // The identifier is taken.
    let mut twin = fx.user(t.id, "alice");
    twin.identifier = alice.identifier.clone();
    // The identity is linked (to alice).
    let carol = fx.user(t.id, "carol");
    // The event id exists.
    let dave = fx.user(t.id, "dave");
    let cases = [
        (&twin, identity(t.id, twin.id, ISSUER, "twin-sub", 2), false),
        (&carol, identity(t.id, carol.id, ISSUER, "taken", 3), false),
        (&dave, identity(t.id, dave.id, ISSUER, "dave-sub", 4), true),
    ];
    for (i, (u, link, clash)) in cases.iter().enumerate() {
        let mut e = event(&fx, link);
        if *clash {
            e.id = taken_event.id;
        }
        assert_eq!(
            kind(s.create_linked_user(u, link, &e).await),
            StoreErrorKind::Conflict,
            "{}",
            u.identifier
        );
        assert_eq!(s.get_user(t.id, u.id).await.unwrap(), None);
        assert!(s.linked_identities(t.id, u.id).await.unwrap().is_empty());
        if !clash {
            let probe = format!("probe-{i}");
            assert_event_unwritten(&s, t.id, alice.id, &probe, &e).await;
        }
    }
    assert_eq!(s.find_user(t.id, &carol.identifier).await.unwrap(), None);
    assert_eq!(s.find_user(t.id, &dave.identifier).await.unwrap(), None);
    assert_eq!(found(&s, &cases[0].1).await, None);
    assert_eq!(found(&s, &cases[2].1).await, None);
    assert_eq!(found(&s, &taken_link).await, Some(taken_link));
    assert_eq!(s.list_users(t.id, None, 100).await.unwrap(), [alice]);
    // With a free identity and a fresh event, carol goes through.
    let fresh = identity(t.id, carol.id, ISSUER, "carol-sub", 5);
    s.create_linked_user(&carol, &fresh, &event(&fx, &fresh))
        .await
        .unwrap();
}

/// Creating a linked user in a tenant that does not exist is `NotFound`
/// and writes nothing.
pub async fn create_linked_user_in_an_unknown_tenant_is_not_found<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 236).await;
    let nowhere = fx.tenant_id();
    let u = fx.user(nowhere, "alice");
    let link = identity(nowhere, u.id, ISSUER, "sub-1", 1);
    assert_eq!(
        kind(s.create_linked_user(&u, &link, &event(&fx, &link)).await),
        StoreErrorKind::NotFound
    );
    assert_eq!(s.get_user_cross_tenant(u.id).await.unwrap(), None);
    assert_eq!(found(&s, &link).await, None);
    assert!(s.list_users(t.id, None, 100).await.unwrap().is_empty());
}

/// A subject is one identity per issuer and per tenant: the same subject
/// at another issuer, or at the same issuer in another tenant, links
/// independently.
pub async fn links_are_independent_across_issuers_and_tenants<S: ConformanceStore>(s: S) {
    let fx = Fx::new(237);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let alice = user(&s, &fx, a.id, "alice").await;
    let bob = user(&s, &fx, a.id, "bob").await;
    let carol = user(&s, &fx, b.id, "carol").await;
    let here = identity(a.id, alice.id, ISSUER, "sub-1", 1);
    let other_issuer = identity(a.id, bob.id, OTHER_ISSUER, "sub-1", 2);
    let other_tenant = identity(b.id, carol.id, ISSUER, "sub-1", 3);
    for link in [&here, &other_issuer, &other_tenant] {
        linked(&s, &fx, link).await;
    }
    for link in [&here, &other_issuer, &other_tenant] {
        assert_eq!(found(&s, link).await.as_ref(), Some(link));
    }
    assert_eq!(
        s.find_linked_identity(b.id, OTHER_ISSUER, "sub-1")
            .await
            .unwrap(),
        None
    );
    let theirs = s.linked_identities(b.id, carol.id).await.unwrap();
    assert_eq!(theirs, [other_tenant]);
}

/// A user's identities list oldest first, only that user's, only in its
/// tenant; another tenant's id sees neither the list nor the links.
pub async fn linked_identities_are_oldest_first_and_tenant_scoped<S: ConformanceStore>(s: S) {
    let fx = Fx::new(238);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let alice = user(&s, &fx, a.id, "alice").await;
    let bob = user(&s, &fx, a.id, "bob").await;
    let newest = identity(a.id, alice.id, ISSUER, "s-a", 30);
    let oldest = identity(a.id, alice.id, OTHER_ISSUER, "s-b", 10);
    let middle = identity(a.id, alice.id, ISSUER, "s-c", 20);
    let bobs = identity(a.id, bob.id, ISSUER, "s-d", 15);
    for link in [&newest, &oldest, &middle, &bobs] {
        linked(&s, &fx, link).await;
    }
    assert_eq!(
        s.linked_identities(a.id, alice.id).await.unwrap(),
        [oldest.clone(), middle, newest.clone()]
    );
    assert_eq!(s.linked_identities(a.id, bob.id).await.unwrap(), [bobs]);
    assert!(
        s.linked_identities(b.id, alice.id)
            .await
            .unwrap()
            .is_empty()
    );
    for link in [&newest, &oldest] {
        let there = s.find_linked_identity(b.id, &link.issuer, &link.subject);
        assert_eq!(there.await.unwrap(), None);
    }
}

/// A link is removed only by its owner in its tenant; a removed identity
/// can be linked again (to anyone).
pub async fn unlink_only_by_its_owner<S: ConformanceStore>(s: S) {
    let fx = Fx::new(239);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let alice = user(&s, &fx, a.id, "alice").await;
    let bob = user(&s, &fx, a.id, "bob").await;
    let link = identity(a.id, alice.id, ISSUER, "sub-1", 1);
    linked(&s, &fx, &link).await;
    let unlink = |t: TenantId, u: UserId, issuer: &'static str, subject: &'static str| {
        let s = s.clone();
        async move { s.unlink_identity(t, u, issuer, subject).await.unwrap() }
    };
    assert!(!unlink(a.id, bob.id, ISSUER, "sub-1").await, "not bob's");
    assert!(
        !unlink(b.id, alice.id, ISSUER, "sub-1").await,
        "other tenant"
    );
    assert!(!unlink(a.id, alice.id, OTHER_ISSUER, "sub-1").await);
    assert!(!unlink(a.id, alice.id, ISSUER, "sub-2").await);
    assert_eq!(found(&s, &link).await, Some(link.clone()));
    assert!(unlink(a.id, alice.id, ISSUER, "sub-1").await);
    assert!(!unlink(a.id, alice.id, ISSUER, "sub-1").await, "gone");
    assert_eq!(found(&s, &link).await, None);
    assert!(
        s.linked_identities(a.id, alice.id)
            .await
            .unwrap()
            .is_empty()
    );
    let relinked = identity(a.id, bob.id, ISSUER, "sub-1", 2);
    linked(&s, &fx, &relinked).await;
    assert_eq!(found(&s, &link).await, Some(relinked));
}

/// Linking to a user who is not in the identity's tenant (another
/// tenant's user, or nobody) is `NotFound` and writes nothing.
pub async fn link_for_a_user_of_another_tenant_is_not_found<S: ConformanceStore>(s: S) {
    let fx = Fx::new(240);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let alice = user(&s, &fx, a.id, "alice").await;
    let foreign = identity(b.id, alice.id, ISSUER, "sub-1", 1);
    let nobody = identity(a.id, fx.user_id(), ISSUER, "sub-2", 2);
    for (i, link) in [&foreign, &nobody].into_iter().enumerate() {
        let e = event(&fx, link);
        assert_eq!(
            kind(s.link_identity(link, &e).await),
            StoreErrorKind::NotFound
        );
        assert_eq!(found(&s, link).await, None);
        let probe = format!("probe-{i}");
        assert_event_unwritten(&s, a.id, alice.id, &probe, &e).await;
    }
    assert!(
        s.linked_identities(b.id, alice.id)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Erasing a user removes their linked identities (nobody else's), which
/// can then be linked to another account.
pub async fn erase_user_removes_their_linked_identities<S: ConformanceStore>(s: S) {
    let (fx, t, alice) = acme_alice(&s, 241).await;
    let bob = user(&s, &fx, t.id, "bob").await;
    let first = identity(t.id, alice.id, ISSUER, "sub-1", 1);
    let second = identity(t.id, alice.id, OTHER_ISSUER, "sub-2", 2);
    let bobs = identity(t.id, bob.id, ISSUER, "sub-3", 3);
    for link in [&first, &second, &bobs] {
        linked(&s, &fx, link).await;
    }
    assert!(s.erase_user(t.id, alice.id, fx.user_id()).await.unwrap());
    assert_eq!(found(&s, &first).await, None);
    assert_eq!(found(&s, &second).await, None);
    assert!(
        s.linked_identities(t.id, alice.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(found(&s, &bobs).await, Some(bobs.clone()));
    let moved = identity(t.id, bob.id, ISSUER, "sub-1", 4);
    linked(&s, &fx, &moved).await;
    assert_eq!(
        s.linked_identities(t.id, bob.id).await.unwrap(),
        [bobs, moved]
    );
}
