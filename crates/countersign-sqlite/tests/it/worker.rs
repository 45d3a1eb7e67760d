//! The worker thread: it survives a panicking call, and its queue is
//! bounded without blocking the async threads that submit to it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use countersign_core::{IdentityAdmin, IdentityLookup};
use countersign_sqlite::{QUEUE_CAPACITY, SqliteError, SqliteStore};
use countersign_testkit::fixtures::Fx;

use crate::files::TempDb;

/// A call that panics answers `Panicked`; a transaction it left open is
/// rolled back (its write is gone, and another connection to the file can
/// write at once); later calls work.
#[tokio::test]
async fn a_panicking_call_leaves_the_store_usable() {
    let db = TempDb::new("panic");
    let store = SqliteStore::open(&db.0).await.unwrap();
    let fx = Fx::new(11);

    let err = store
        .with_connection(|_| -> rusqlite::Result<()> { panic!("a job that panics") })
        .await
        .unwrap_err();
    assert!(matches!(err, SqliteError::Panicked), "{err:?}");

    // A panic inside an open write transaction.
    let err = store
        .with_connection(|c| -> rusqlite::Result<()> {
            c.execute_batch(
                "BEGIN IMMEDIATE; CREATE TABLE scratch (x INTEGER); INSERT INTO scratch VALUES (1);",
            )?;
            panic!("a job that panics holding the write lock")
        })
        .await
        .unwrap_err();
    assert!(matches!(err, SqliteError::Panicked), "{err:?}");

    // The store goes on serving calls...
    let p = fx.tenant("acme");
    store.provision_tenant(&p).await.unwrap();
    assert!(store.get_tenant(p.tenant().id).await.unwrap().is_some());
    // ...the panicked transaction was rolled back...
    let scratch: i64 = store
        .with_connection(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'scratch'",
                [],
                |r| r.get(0),
            )
        })
        .await
        .unwrap();
    assert_eq!(scratch, 0);
    // ...and released its lock: another connection writes at once.
    let other = SqliteStore::open(&db.0).await.unwrap();
    other
        .with_connection(|c| c.busy_timeout(Duration::ZERO))
        .await
        .unwrap();
    other.provision_tenant(&fx.tenant("globex")).await.unwrap();
}

/// With the worker busy, at most `QUEUE_CAPACITY` calls enter its queue;
/// the others wait for a slot without blocking their thread (the test runs
/// on one thread, which keeps running timers and tasks), and a caller
/// cancelled while waiting queues nothing: only the queued calls run.
#[tokio::test(flavor = "current_thread")]
async fn the_queue_is_bounded_and_waiting_never_blocks_the_thread() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (started, running) = tokio::sync::oneshot::channel::<()>();
    let blocker = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .with_connection(move |_| {
                    let _ = started.send(());
                    let _ = released.recv();
                    Ok(())
                })
                .await
        })
    };
    running.await.unwrap();

    let ran = Arc::new(AtomicUsize::new(0));
    let callers: Vec<_> = (0..3 * QUEUE_CAPACITY)
        .map(|_| {
            let (store, ran) = (store.clone(), Arc::clone(&ran));
            tokio::spawn(async move {
                store
                    .with_connection(move |_| {
                        ran.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    })
                    .await
            })
        })
        .collect();
    // One thread runs every task and this timer: a submission that blocked
    // its thread would stall the test here.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(callers.iter().all(|c| !c.is_finished()));
    assert_eq!(ran.load(Ordering::SeqCst), 0);

    // Cancel every caller, then let the worker go on.
    for c in &callers {
        c.abort();
    }
    for c in callers {
        let _ = c.await;
    }
    release.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    // A last call runs after whatever was queued.
    store.with_connection(|_| Ok(())).await.unwrap();
    assert_eq!(
        ran.load(Ordering::SeqCst),
        QUEUE_CAPACITY,
        "only the calls that found a slot were queued"
    );
}
