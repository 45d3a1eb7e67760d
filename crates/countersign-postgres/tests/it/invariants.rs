//! Invariants under concurrency, and the session statements' economy.

use countersign_core::{
    FactorStore, IdentityAdmin, MethodName, MethodScope, RateLimitStore, SessionStore, StoreError,
    StoreErrorKind,
};
use countersign_postgres::testing::fresh;
use countersign_testkit::fixtures::{Fx, at};
use sqlx::postgres::PgPool;

use crate::{count, run};

#[test]
fn concurrent_disables_and_removals_keep_one_enabled_method() {
    run(async {
        let store = fresh().await;
        let fx = Fx::new(106);
        let p = fx.tenant("acme");
        let t = p.tenant().id;
        store.provision_tenant(&p).await.unwrap();
        let mut names = vec![MethodName::parse("password").unwrap()];
        for i in 0..7 {
            let m = countersign_testkit::fixtures::method(&format!("m{i}"));
            store
                .save_method(MethodScope::Tenant(t), &m, true)
                .await
                .unwrap();
            names.push(m.name);
        }
        let mut tasks = Vec::new();
        for (i, name) in names.into_iter().enumerate() {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    store.remove_method(MethodScope::Tenant(t), &name).await
                } else {
                    store
                        .set_method_enabled(MethodScope::Tenant(t), &name, false)
                        .await
                }
            }));
        }
        let mut refused = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(done) => assert!(done),
                Err(e) => {
                    assert_eq!(e.kind(), StoreErrorKind::Conflict, "{e}");
                    refused += 1;
                }
            }
        }
        assert_eq!(refused, 1);
        let enabled = store
            .methods(MethodScope::Tenant(t))
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.enabled)
            .count();
        assert_eq!(enabled, 1);
    });
}

/// The row version (`xmin`) and position (`ctid`) of a session: both
/// change with any write to the row.
async fn session_row_version(pool: &PgPool, key: &countersign_core::TokenHash) -> (String, String) {
    sqlx::query_as("SELECT xmin::text, ctid::text FROM cs_sessions WHERE key = $1")
        .bind(key.to_hex())
        .fetch_one(pool)
        .await
        .unwrap()
}

#[test]
fn validation_without_renewal_writes_nothing() {
    run(async {
        use countersign_testkit::fixtures::{at, session};
        let store = fresh().await;
        let fx = Fx::new(107);
        let p = fx.tenant("acme");
        let t = p.tenant().id;
        store.provision_tenant(&p).await.unwrap();
        let u = fx.user(t, "alice");
        store.create_user(&u, &[]).await.unwrap();
        let sess = session(&fx, t, u.id);
        store.create_session(&sess, None, None).await.unwrap();
        let before = session_row_version(store.pool(), &sess.key).await;
        // Idle 30 min, renewed within its last 15: checks before minute 15
        // are pure reads, however many.
        for secs in [0, 60, 14 * 60, 15 * 60 - 1] {
            let got = store.validate_session(&sess.key, at(secs)).await.unwrap();
            assert_eq!(got, Some(std::sync::Arc::new(sess.clone())));
        }
        assert_eq!(
            session_row_version(store.pool(), &sess.key).await,
            before,
            "a check with idle time to spare must not write"
        );
        // From minute 15 a check renews: one write, then reads again.
        let renewed = store
            .validate_session(&sess.key, at(15 * 60 + 1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(renewed.expires_at, at(45 * 60 + 1));
        let after = session_row_version(store.pool(), &sess.key).await;
        assert_ne!(after, before, "the renewal wrote the row");
        let again = store
            .validate_session(&sess.key, at(16 * 60))
            .await
            .unwrap();
        assert_eq!(again, Some(renewed));
        assert_eq!(session_row_version(store.pool(), &sess.key).await, after);
    });
}

#[test]
fn concurrent_key_rotations_leave_one_active_key() {
    run(async {
        use countersign_core::KeyStore;
        use countersign_testkit::fixtures::{at, signing_key};
        let store = fresh().await;
        let fx = Fx::new(108);
        let p = fx.tenant("acme");
        let t = p.tenant().id;
        store.provision_tenant(&p).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..16 {
            let (store, key) = (store.clone(), signing_key(&fx, t, at(i)));
            tasks.push(tokio::spawn(async move {
                store.rotate_signing_key(&key, at(3600)).await.unwrap();
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let keys = store.signing_keys(t).await.unwrap();
        assert_eq!(keys.len(), 16);
        let active = keys.iter().filter(|k| k.is_active()).count();
        assert_eq!(active, 1, "rotations of one tenant are serialised");
    });
}

/// Assignments to a user racing that user's erasure: erasing takes the
/// tenant's RBAC version lock before the user's row, as every change does,
/// so nothing deadlocks (no retries here to hide one), no assignment
/// outlives its user, and the version counts every applied change once.
#[test]
fn assignments_racing_an_erasure_neither_deadlock_nor_survive() {
    run(async {
        use countersign_core::{
            RbacChange, RbacKind, RbacLookup, RbacName, RbacStore, RoleAssignment,
        };
        use countersign_postgres::RetryPolicy;
        let store = fresh().await.with_retry(RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        });
        let fx = Fx::new(109);
        let p = fx.tenant("acme");
        let t = p.tenant().id;
        store.provision_tenant(&p).await.unwrap();
        let alice = fx.user(t, "alice");
        store.create_user(&alice, &[]).await.unwrap();
        let name = |s: &str| RbacName::new(s).unwrap();
        let create = |kind, s: &str| RbacChange::Create {
            kind,
            name: name(s),
        };
        store
            .apply_rbac_change(t, &create(RbacKind::Service, "docs"), None)
            .await
            .unwrap();
        for i in 0..16 {
            let role = create(RbacKind::Role, &format!("r{i:02}"));
            store.apply_rbac_change(t, &role, None).await.unwrap();
        }
        let mut tasks = Vec::new();
        for i in 0..16 {
            let store = store.clone();
            let assign = RbacChange::Assign(RoleAssignment {
                user: alice.id,
                role: name(&format!("r{i:02}")),
                service: name("docs"),
            });
            tasks.push(tokio::spawn(async move {
                store.apply_rbac_change(t, &assign, None).await
            }));
        }
        let erase = {
            let (store, pseudonym) = (store.clone(), fx.user_id());
            tokio::spawn(async move { store.erase_user(t, alice.id, pseudonym).await })
        };
        let mut applied = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(v) => applied.push(v),
                Err(e) => assert_eq!(e.kind(), StoreErrorKind::NotFound, "{e}"),
            }
        }
        assert!(erase.await.unwrap().unwrap());
        let left = count(store.pool(), "SELECT count(*) FROM cs_rbac_assignments").await;
        assert_eq!(left, 0, "no assignment outlives its user");
        // 17 creates, the applied assignments, and the erasure if it
        // removed any of them.
        let erased = u64::from(!applied.is_empty());
        let want = 17 + applied.len() as u64 + erased;
        assert_eq!(store.authz_versions(t).await.unwrap().rbac, want);
        applied.sort_unstable();
        let n = applied.len();
        applied.dedup();
        assert_eq!(applied.len(), n, "each version once");
        assert!(
            applied.iter().all(|v| (18..=want).contains(v)),
            "{applied:?}"
        );
    });
}

/// A rate-limit count saturates at `u32::MAX` (seeded: the trait cannot
/// get there in a test's time), and the table refuses a count beyond it
/// or a key longer than 256 bytes even from outside the store.
#[test]
fn rate_limit_counts_saturate() {
    run(async {
        let store = fresh().await;
        let minute = std::time::Duration::from_secs(60);
        assert_eq!(store.hit("k", 5, minute, at(0)).await.unwrap().count, 1);
        let max = i64::from(u32::MAX);
        sqlx::query("UPDATE cs_rate_limits SET hits = $1 - 1")
            .bind(max)
            .execute(store.pool())
            .await
            .unwrap();
        for _ in 0..2 {
            let d = store.hit("k", u32::MAX, minute, at(1)).await.unwrap();
            assert_eq!((d.count, d.allowed, d.remaining), (u32::MAX, true, 0));
        }
        assert!(!store.hit("k", 5, minute, at(2)).await.unwrap().allowed);
        let over = sqlx::query("UPDATE cs_rate_limits SET hits = $1 + 1")
            .bind(max)
            .execute(store.pool())
            .await;
        assert!(over.is_err(), "{over:?}");
        let long = sqlx::query("INSERT INTO cs_rate_limits VALUES ($1, now(), now(), 1)")
            .bind("é".repeat(129))
            .execute(store.pool())
            .await;
        assert!(long.is_err(), "{long:?}");
    });
}
