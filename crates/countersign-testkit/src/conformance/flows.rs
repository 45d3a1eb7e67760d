//! Login flows: the guarantees of `FlowStore`.

use countersign_core::{FlowState, LoginState, StoreErrorKind};

use super::{acme, acme_alice, kind, tenant, user};
use crate::ConformanceStore;
use crate::fixtures::{Fx, at, flow};

/// A flow reads back exactly, at version 1.
pub async fn flow_round_trips_at_version_one<S: ConformanceStore>(s: S) {
    let (fx, t, u) = acme_alice(&s, 46).await;
    for f in [flow(&fx, t.id, Some(u.id), 300), flow(&fx, t.id, None, 300)] {
        s.create_flow(&f).await.unwrap();
        let got = s.flow(t.id, &f.key).await.unwrap().unwrap();
        assert_eq!((got.value, got.version), (f, 1));
    }
}

/// Flows are read, saved and deleted only within their tenant.
pub async fn flows_are_tenant_scoped<S: ConformanceStore>(s: S) {
    let fx = Fx::new(47);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let f = flow(&fx, a.id, None, 300);
    s.create_flow(&f).await.unwrap();
    assert_eq!(s.flow(b.id, &f.key).await.unwrap(), None);
    assert!(!s.delete_flow(b.id, &f.key).await.unwrap());
    let mut foreign = f.clone();
    foreign.tenant_id = b.id;
    assert!(!s.compare_and_save_flow(1, &foreign).await.unwrap());
    assert_eq!(s.flow(a.id, &f.key).await.unwrap().unwrap().version, 1);
}

/// Creating a flow whose key exists is `Conflict`.
pub async fn duplicate_flow_keys_conflict<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 48).await;
    let f = flow(&fx, t.id, None, 300);
    s.create_flow(&f).await.unwrap();
    assert_eq!(kind(s.create_flow(&f).await), StoreErrorKind::Conflict);
}

/// A flow saves only against its current version, which then goes up by one.
pub async fn flow_compare_and_save_checks_the_version<S: ConformanceStore>(s: S) {
    let (fx, t, u) = acme_alice(&s, 49).await;
    let f = flow(&fx, t.id, None, 300);
    s.create_flow(&f).await.unwrap();
    let mut next = f.clone();
    next.state = FlowState::Login(LoginState::Expired);
    next.user_id = Some(u.id);
    assert!(!s.compare_and_save_flow(2, &next).await.unwrap());
    assert!(s.compare_and_save_flow(1, &next).await.unwrap());
    assert!(!s.compare_and_save_flow(1, &f).await.unwrap(), "stale");
    let got = s.flow(t.id, &f.key).await.unwrap().unwrap();
    assert_eq!((got.value, got.version), (next, 2));
}

/// Of 32 concurrent saves naming one version, exactly one wins.
pub async fn concurrent_flow_saves_have_one_winner<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 50).await;
    let f = flow(&fx, t.id, None, 300);
    s.create_flow(&f).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..32 {
        let (s, mut next) = (s.clone(), f.clone());
        next.expires_at = at(1000 + i);
        tasks.push(tokio::spawn(async move {
            s.compare_and_save_flow(1, &next).await.unwrap()
        }));
    }
    let mut wins = 0;
    for task in tasks {
        wins += usize::from(task.await.unwrap());
    }
    assert_eq!(wins, 1);
    assert_eq!(s.flow(t.id, &f.key).await.unwrap().unwrap().version, 2);
}

/// Deleting a flow reports whether it existed; it is gone after.
pub async fn delete_flow_reports_existence<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 51).await;
    let f = flow(&fx, t.id, None, 300);
    s.create_flow(&f).await.unwrap();
    assert!(s.delete_flow(t.id, &f.key).await.unwrap());
    assert!(!s.delete_flow(t.id, &f.key).await.unwrap());
    assert_eq!(s.flow(t.id, &f.key).await.unwrap(), None);
}

/// Expired flows (of every tenant) go at their expiry; live ones stay.
pub async fn expired_flows_are_deleted_at_their_time<S: ConformanceStore>(s: S) {
    let fx = Fx::new(52);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let short_a = flow(&fx, a.id, None, 60);
    let short_b = flow(&fx, b.id, None, 60);
    let long = flow(&fx, a.id, None, 600);
    for f in [&short_a, &short_b, &long] {
        s.create_flow(f).await.unwrap();
    }
    assert_eq!(s.delete_expired_flows(at(59)).await.unwrap(), 0);
    assert_eq!(
        s.delete_expired_flows(at(60)).await.unwrap(),
        2,
        "expiry is inclusive"
    );
    assert_eq!(s.flow(a.id, &short_a.key).await.unwrap(), None);
    assert!(s.flow(a.id, &long.key).await.unwrap().is_some());
}

/// Flows need their tenant (and named user, in that tenant) to exist.
pub async fn flows_need_an_existing_tenant_and_user<S: ConformanceStore>(s: S) {
    let fx = Fx::new(53);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let u = user(&s, &fx, a.id, "alice").await;
    assert_eq!(
        kind(s.create_flow(&flow(&fx, fx.tenant_id(), None, 60)).await),
        StoreErrorKind::NotFound
    );
    assert_eq!(
        kind(s.create_flow(&flow(&fx, b.id, Some(u.id), 60)).await),
        StoreErrorKind::NotFound
    );
}

/// Erasing a user removes their flows.
pub async fn erase_user_removes_their_flows<S: ConformanceStore>(s: S) {
    let (fx, t, u) = acme_alice(&s, 54).await;
    let theirs = flow(&fx, t.id, Some(u.id), 300);
    let anonymous = flow(&fx, t.id, None, 300);
    s.create_flow(&theirs).await.unwrap();
    s.create_flow(&anonymous).await.unwrap();
    s.erase_user(t.id, u.id, fx.user_id()).await.unwrap();
    assert_eq!(s.flow(t.id, &theirs.key).await.unwrap(), None);
    assert!(s.flow(t.id, &anonymous.key).await.unwrap().is_some());
}
