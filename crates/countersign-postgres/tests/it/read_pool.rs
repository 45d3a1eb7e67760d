//! The read pool: every pure lookup uses it; writes need the primary.

use countersign_core::{
    AuditFilter, AuditKind, AuditQuery, AuditStatus, FactorKind, FactorStore, IdentityAdmin,
    IdentityAuthnLog, IdentityLookup, MethodScope, StoreError, StoreErrorKind,
};
use countersign_postgres::PostgresStore;
use countersign_postgres::testing::{new_schema, small_pool};
use countersign_testkit::fixtures::Fx;

use crate::run;

#[test]
fn lookups_use_the_read_pool() {
    run(async {
        let schema = new_schema().await;
        let write = small_pool(&schema, &format!("{schema}_w"), 2).await;
        let read = small_pool(&schema, &format!("{schema}_r"), 2).await;
        let store = PostgresStore::from_pool(write.clone()).with_read_pool(read.clone());
        store.migrate().await.unwrap();
        let fx = Fx::new(104);
        let p = fx.tenant("acme");
        let t = p.tenant().clone();
        store.provision_tenant(&p).await.unwrap();
        let u = fx.user(t.id, "alice");
        store.create_user(&u, &[]).await.unwrap();
        store
            .record_event(&fx.event(
                t.id,
                Some(u.id),
                AuditKind::UserRegistered,
                AuditStatus::Success,
                countersign_testkit::fixtures::t0(),
            ))
            .await
            .unwrap();

        // With the write pool closed, every lookup still answers...
        write.close().await;
        assert_eq!(store.get_tenant(t.id).await.unwrap(), Some(t.clone()));
        assert_eq!(store.find_tenant(&t.slug).await.unwrap().unwrap().id, t.id);
        assert_eq!(store.get_user(t.id, u.id).await.unwrap(), Some(u.clone()));
        assert_eq!(
            store.find_user(t.id, &u.identifier).await.unwrap(),
            Some(u.clone())
        );
        assert_eq!(store.list_users(t.id, None, 10).await.unwrap().len(), 1);
        assert_eq!(store.failure_record(t.id, u.id).await.unwrap(), None);
        assert_eq!(store.tenant_factors(t.id).await.unwrap().len(), 1);
        assert!(
            store
                .tenant_factor(t.id, FactorKind::Password)
                .await
                .unwrap()
                .is_some()
        );
        assert!(store.user_factors(t.id, u.id).await.unwrap().is_empty());
        assert_eq!(
            store
                .methods(MethodScope::Tenant(t.id))
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(store.available_methods(t.id, u.id).await.unwrap().len(), 1);
        let events = store
            .query_events(t.id, &AuditFilter::default())
            .await
            .unwrap();
        assert_eq!(events.len(), 1);
        // ...and writes, which need the primary, fail.
        let err = store
            .record_last_login(t.id, u.id, countersign_testkit::fixtures::t0())
            .await
            .unwrap_err();
        assert_ne!(err.kind(), StoreErrorKind::NotFound);
        read.close().await;
    });
}
