//! Integration tests of the memory backend: both suites of the testkit
//! (audit included), the mock-store helpers, and core's services run on
//! this store (`core::`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    unreachable_pub,
    reason = "tests"
)]

use countersign_core::{IdentityAdmin, IdentityLookup, StoreError, StoreErrorKind};
use countersign_memory::{MemoryStore, StoreMethod};
use countersign_testkit::fixtures::Fx;

mod core;

async fn fresh() -> MemoryStore {
    MemoryStore::new()
}

countersign_testkit::conformance_suite!(fresh, audit);
countersign_testkit::engine_suite!(fresh, audit);

#[tokio::test]
async fn injected_failures_fail_the_next_calls_and_change_nothing() {
    let s = MemoryStore::new();
    let fx = Fx::new(99);
    let p = fx.tenant("acme");
    s.fail_next(2, StoreErrorKind::Transient);
    let e = s.provision_tenant(&p).await.unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::Transient);
    assert_eq!(s.snapshot().tenants, 0);
    assert!(s.get_tenant(p.tenant().id).await.is_err());
    // The third call goes through.
    s.provision_tenant(&p).await.unwrap();
    let snap = s.snapshot();
    assert_eq!((snap.tenants, snap.tenant_factors, snap.methods), (1, 1, 1));
    // Aimed at one method, typed or by name: the others go through.
    s.fail_next_on(StoreMethod::GetTenant, 1, StoreErrorKind::Other);
    assert!(s.find_tenant(&p.tenant().slug).await.unwrap().is_some());
    let e = s.get_tenant(p.tenant().id).await.unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::Other);
    assert!(s.get_tenant(p.tenant().id).await.unwrap().is_some());
    s.fail_next_on("find_tenant", 1, StoreErrorKind::Transient);
    assert!(s.get_tenant(p.tenant().id).await.unwrap().is_some());
    assert!(s.find_tenant(&p.tenant().slug).await.is_err());
    assert!(s.find_tenant(&p.tenant().slug).await.unwrap().is_some());
}

#[tokio::test]
async fn inspection_helpers_see_every_tenant() {
    let s = MemoryStore::new();
    let fx = Fx::new(98);
    let a = fx.tenant("a");
    let b = fx.tenant("b");
    s.provision_tenant(&a).await.unwrap();
    s.provision_tenant(&b).await.unwrap();
    s.create_user(&fx.user(a.tenant().id, "x"), &[])
        .await
        .unwrap();
    s.create_user(&fx.user(b.tenant().id, "x"), &[])
        .await
        .unwrap();
    assert_eq!(s.users().len(), 2);
    assert_eq!(s.snapshot().users, 2);
    assert!(s.events().is_empty());
}
