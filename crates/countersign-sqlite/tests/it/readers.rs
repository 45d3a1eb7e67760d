//! The pool of read-only connections: which stores have one, that a
//! validation it answers never serves an ended, expired or stale session,
//! and that a renewal still goes through the worker (the writer).

use std::time::Duration;

use countersign_core::{IdentityAdmin, SessionRecord, SessionStore, TenantId, UserId};
use countersign_sqlite::{SqliteOptions, SqliteStore};
use countersign_testkit::fixtures::{Fx, at, session};

use crate::files::TempDb;

/// Validations per check: enough that every reader of the pool serves some.
const CHECKS: usize = 200;

/// A file store with `readers` read-only connections, a tenant and a user.
async fn store_with(db: &TempDb, readers: usize, fx: &Fx) -> (SqliteStore, TenantId, UserId) {
    let store = SqliteStore::open_with(&db.0, SqliteOptions::default().readers(readers))
        .await
        .unwrap();
    assert_eq!(store.readers(), readers);
    let p = fx.tenant("acme");
    store.provision_tenant(&p).await.unwrap();
    let t = p.tenant().id;
    let u = fx.user(t, "alice");
    store.create_user(&u, &[]).await.unwrap();
    (store, t, u.id)
}

/// Block the store's worker thread until the returned sender is used (or
/// dropped); returns once the worker is blocked.
async fn block_worker(store: &SqliteStore) -> std::sync::mpsc::Sender<()> {
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (started, running) = tokio::sync::oneshot::channel::<()>();
    let store = store.clone();
    tokio::spawn(async move {
        store
            .with_connection(move |_| {
                let _ = started.send(());
                let _ = released.recv();
                Ok(())
            })
            .await
    });
    running.await.unwrap();
    release
}

#[tokio::test]
async fn file_stores_have_readers_and_in_memory_ones_do_not() {
    let db = TempDb::new("readers-count");
    assert!(SqliteStore::open(&db.0).await.unwrap().readers() >= 1);
    assert!(SqliteStore::open_unmigrated(&db.0).await.unwrap().readers() >= 1);
    let none = SqliteOptions::default().readers(0);
    assert_eq!(
        SqliteStore::open_with(&db.0, none).await.unwrap().readers(),
        0
    );
    assert_eq!(SqliteStore::open_in_memory().await.unwrap().readers(), 0);
    assert_eq!(SqliteStore::open(":memory:").await.unwrap().readers(), 0);
    let uri = format!("file:{}", db.0.display());
    assert_eq!(SqliteStore::open(&uri).await.unwrap().readers(), 0);
    let d = SqliteOptions::default();
    assert!((1..=countersign_sqlite::MAX_DEFAULT_READERS).contains(&d.readers));
    assert!(d.migrate);
}

/// A live session far from its deadline is answered by a reader: with the
/// worker blocked, validations and the lookup by id still answer. One due
/// for renewal waits for the worker (the writer renews it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_answer_without_the_worker_but_a_renewal_waits_for_it() {
    let db = TempDb::new("readers-path");
    let fx = Fx::new(41);
    let (store, t, u) = store_with(&db, 2, &fx).await;
    let s = session(&fx, t, u);
    store.create_session(&s, None, None).await.unwrap();

    let release = block_worker(&store).await;
    // A call that waited for the worker would wait forever: fail instead.
    let answered = tokio::time::timeout(Duration::from_secs(10), async {
        for _ in 0..CHECKS {
            let seen = store.validate_session(&s.key, at(60)).await.unwrap();
            assert_eq!(seen.as_deref(), Some(&s));
            assert_eq!(store.session(t, s.id).await.unwrap().as_ref(), Some(&s));
        }
    })
    .await;
    assert!(answered.is_ok(), "a pooled read waited for the worker");
    // 20 minutes in, 10 of 30 idle minutes left: due (within 15).
    assert!(s.renewal_due(at(20 * 60)));
    let due = {
        let (store, key) = (store.clone(), s.key);
        tokio::spawn(async move { store.validate_session(&key, at(20 * 60)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!due.is_finished(), "a due renewal must go to the worker");
    release.send(()).unwrap();
    let renewed = due.await.unwrap().unwrap().unwrap();
    assert_eq!(renewed.last_seen_at, at(20 * 60));
    assert_eq!(renewed.expires_at, at(50 * 60));
}

/// A session due for renewal is renewed (through the writer) and the
/// renewal is what later checks, on readers, see; checks after its idle
/// deadline or its absolute deadline are refused every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_session_is_renewed_and_expired_ones_are_refused() {
    let db = TempDb::new("readers-renew");
    let fx = Fx::new(42);
    let (store, t, u) = store_with(&db, 2, &fx).await;
    let s = session(&fx, t, u);
    store.create_session(&s, None, None).await.unwrap();

    let renewed = store
        .validate_session(&s.key, at(20 * 60))
        .await
        .unwrap()
        .unwrap();
    let expected = SessionRecord {
        last_seen_at: at(20 * 60),
        expires_at: at(50 * 60),
        ..s.clone()
    };
    assert_eq!(*renewed, expected);
    assert_eq!(
        store.session(t, s.id).await.unwrap(),
        Some(expected.clone())
    );
    for _ in 0..CHECKS {
        // Not due again yet (20 of 30 minutes left): the stored renewal.
        let seen = store.validate_session(&s.key, at(30 * 60)).await.unwrap();
        assert_eq!(seen.as_deref(), Some(&expected));
    }
    // Past the renewed idle deadline: refused, every time.
    for _ in 0..CHECKS {
        let seen = store.validate_session(&s.key, at(50 * 60)).await.unwrap();
        assert!(seen.is_none(), "an idle-expired session was served");
    }

    // A session far from its idle deadline but past its absolute one.
    let late = SessionRecord {
        expires_at: at(13 * 3600),
        ..session(&fx, t, u)
    };
    store.create_session(&late, None, None).await.unwrap();
    assert!(
        store
            .validate_session(&late.key, at(11 * 3600))
            .await
            .unwrap()
            .is_some()
    );
    for _ in 0..CHECKS {
        let seen = store
            .validate_session(&late.key, at(12 * 3600))
            .await
            .unwrap();
        assert!(seen.is_none(), "an absolutely expired session was served");
    }
}

/// Read-your-writes: a session validated (so every reader has read it),
/// then ended through the store, by key, by id or with all the user's
/// sessions, or through another connection to the file (as another
/// process would), is refused by every later check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_session_is_never_served_by_a_reader() {
    let db = TempDb::new("readers-revoke");
    let fx = Fx::new(43);
    let (store, t, u) = store_with(&db, 2, &fx).await;
    let other = SqliteStore::open(&db.0).await.unwrap();
    for round in 0..4 {
        let s = session(&fx, t, u);
        store.create_session(&s, None, None).await.unwrap();
        // Concurrent checks, so both readers hold the row in their cache.
        let checks: Vec<_> = (0..8)
            .map(|_| {
                let (store, key) = (store.clone(), s.key);
                tokio::spawn(async move {
                    for _ in 0..CHECKS / 8 {
                        assert!(
                            store
                                .validate_session(&key, at(60))
                                .await
                                .unwrap()
                                .is_some()
                        );
                    }
                })
            })
            .collect();
        for c in checks {
            c.await.unwrap();
        }
        match round {
            0 => assert!(
                store
                    .delete_session_by_key(&s.key, at(60))
                    .await
                    .unwrap()
                    .is_some()
            ),
            1 => assert!(
                store
                    .delete_session(t, s.id, at(60))
                    .await
                    .unwrap()
                    .is_some()
            ),
            2 => assert_eq!(
                store
                    .delete_user_sessions(t, u, None, at(60))
                    .await
                    .unwrap(),
                1
            ),
            _ => assert!(
                other
                    .delete_session(t, s.id, at(60))
                    .await
                    .unwrap()
                    .is_some()
            ),
        }
        for _ in 0..CHECKS {
            let seen = store.validate_session(&s.key, at(61)).await.unwrap();
            assert!(seen.is_none(), "round {round}: an ended session was served");
            assert!(
                store.session(t, s.id).await.unwrap().is_none(),
                "round {round}"
            );
        }
    }
}
