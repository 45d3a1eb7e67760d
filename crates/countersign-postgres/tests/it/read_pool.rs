//! The read pool: it serves only what may be stale (the user listing and
//! audit queries); every read on the login, session or credential path
//! goes to the primary, so a lagging replica cannot let a suspended or
//! locked user in, or an old password work.

use countersign_core::{
    AccountState, AuditFilter, AuditKind, AuditQuery, AuditStatus, FactorCredential, FactorKind,
    FactorStore, IdentityAdmin, IdentityAuthnLog, IdentityLookup, LockoutPolicy, MethodScope,
    StoreError, StoreErrorKind, TenantPolicy,
};
use countersign_postgres::PostgresStore;
use countersign_postgres::testing::{new_schema, small_pool};
use countersign_testkit::fixtures::{Fx, at, password, t0};

use crate::run;

/// The only lookups the read pool serves: with the main pool closed they
/// still answer; every other read needs the primary.
#[test]
fn only_stale_tolerant_reads_use_the_read_pool() {
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
                t0(),
            ))
            .await
            .unwrap();

        // With the write pool closed, the listings still answer...
        write.close().await;
        assert_eq!(store.list_users(t.id, None, 10).await.unwrap().len(), 1);
        let events = store
            .query_events(t.id, &AuditFilter::default())
            .await
            .unwrap();
        assert_eq!(events.len(), 1);
        // ...and the security reads, which need the primary, fail.
        assert!(store.get_tenant(t.id).await.is_err());
        assert!(store.find_user(t.id, &u.identifier).await.is_err());
        assert!(store.get_user(t.id, u.id).await.is_err());
        assert!(store.failure_record(t.id, u.id).await.is_err());
        assert!(store.user_factors(t.id, u.id).await.is_err());
        assert!(store.available_methods(t.id, u.id).await.is_err());
        let err = store.record_last_login(t.id, u.id, t0()).await.unwrap_err();
        assert_ne!(err.kind(), StoreErrorKind::NotFound);
        read.close().await;
    });
}

/// A replica that lags: the read pool's schema holds an older copy of the
/// rows (the user active, unlocked, with the old password, under the old
/// policy). Every read the login path makes must see the primary's rows.
#[test]
fn a_lagging_replica_cannot_serve_login_path_reads() {
    run(async {
        let primary_schema = new_schema().await;
        let replica_schema = new_schema().await;
        let write = small_pool(&primary_schema, &format!("{primary_schema}_w"), 2).await;
        let read = small_pool(&replica_schema, &format!("{replica_schema}_r"), 2).await;
        let primary = PostgresStore::from_pool(write.clone());
        let replica = PostgresStore::from_pool(read.clone());
        primary.migrate().await.unwrap();
        replica.migrate().await.unwrap();

        // The same rows on both: what the replica has when it stops.
        let fx = Fx::new(105);
        let p = fx.tenant("acme");
        let t = p.tenant().clone();
        let u = fx.user(t.id, "alice");
        let old = password("$argon2id$old");
        for s in [&primary, &replica] {
            s.provision_tenant(&p).await.unwrap();
            s.create_user(&u, std::slice::from_ref(&old)).await.unwrap();
        }

        // What the primary has since: a stricter policy, the password
        // replaced, the account locked, then suspended.
        let policy = TenantPolicy {
            lockout: LockoutPolicy {
                max_attempts: 1,
                ..t.policy.lockout.clone()
            },
            ..t.policy.clone()
        };
        primary.update_tenant_policy(t.id, &policy).await.unwrap();
        let new = password("$argon2id$new");
        assert!(
            primary
                .compare_and_save_user_factor(t.id, u.id, Some(1), &new)
                .await
                .unwrap()
        );
        let locked = primary
            .record_failed_attempt(t.id, u.id, &policy.lockout, at(10))
            .await
            .unwrap();
        assert!(
            locked.locked_until.is_some(),
            "one failure locks: {locked:?}"
        );
        assert!(
            primary
                .set_user_state(
                    t.id,
                    u.id,
                    AccountState::Active,
                    AccountState::Suspended,
                    Some("abuse"),
                    at(20),
                )
                .await
                .unwrap()
        );

        let store = PostgresStore::from_pool(write.clone()).with_read_pool(read.clone());
        let by_id = store.get_user(t.id, u.id).await.unwrap().unwrap();
        assert_eq!(by_id.state, AccountState::Suspended, "get_user");
        let by_name = store.find_user(t.id, &u.identifier).await.unwrap().unwrap();
        assert_eq!(by_name.state, AccountState::Suspended, "find_user");
        let cross = store.get_user_cross_tenant(u.id).await.unwrap().unwrap();
        assert_eq!(
            cross.state,
            AccountState::Suspended,
            "get_user_cross_tenant"
        );
        let record = store.failure_record(t.id, u.id).await.unwrap();
        assert_eq!(record, Some(locked), "failure_record");
        let tenant = store.get_tenant(t.id).await.unwrap().unwrap();
        assert_eq!(tenant.policy, policy, "get_tenant");
        let tenant = store.find_tenant(&t.slug).await.unwrap().unwrap();
        assert_eq!(tenant.policy, policy, "find_tenant");
        let current = store
            .user_factor(t.id, u.id, FactorKind::Password)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((current.version, &current.value), (2, &new), "user_factor");
        let all: Vec<FactorCredential> = store
            .user_factors(t.id, u.id)
            .await
            .unwrap()
            .into_iter()
            .map(|v| v.value)
            .collect();
        assert_eq!(all, vec![new.clone()], "user_factors");

        // Methods: the primary adds one the replica does not have.
        let replacement = countersign_testkit::fixtures::method("sso");
        primary
            .save_method(MethodScope::Tenant(t.id), &replacement, true)
            .await
            .unwrap();
        let names: Vec<String> = store
            .methods(MethodScope::Tenant(t.id))
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.method.name.as_str().to_owned())
            .collect();
        assert!(names.iter().any(|n| n == "sso"), "methods: {names:?}");
        let available = store.available_methods(t.id, u.id).await.unwrap();
        assert_eq!(available.len(), 2, "available_methods");
        assert_eq!(store.tenant_factors(t.id).await.unwrap().len(), 1);

        // The listing may lag: it is served by the replica, as documented.
        let listed = store.list_users(t.id, None, 10).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].state, AccountState::Active, "list_users may lag");

        write.close().await;
        read.close().await;
    });
}
