//! Refresh-token rotation on Postgres beside its floor, at the same
//! concurrency on the same pool and runtime (`DATABASE_URL`, default the
//! local server, over loopback):
//!
//! - `floor_bare_update_8_concurrent`: a bare one-row
//!   `UPDATE bench_counters SET n = n + 1 WHERE id = $1` on a table of one
//!   row per task, each of 8 concurrent tasks updating its own row;
//! - `rotate_refresh_8_concurrent`: `SessionService::refresh` from 8
//!   concurrent tasks, each rotating its own refresh family (presenting
//!   the token the previous rotation returned, so every call rotates).
//!
//! Each iteration is `TASKS` x `PER_TASK` operations on an 8-connection
//! pool on the 2-worker bench runtime; items/s is operations per second.
//! The target is rotation at no less than half the floor's rate.
//!
//! Run: `cargo bench -p countersign-postgres --bench refresh`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs,
    reason = "benchmark"
)]

use std::sync::{Mutex, OnceLock};

use countersign_core::{ClientInfo, SecretToken, SessionService};
use countersign_postgres::PostgresStore;
use countersign_postgres::testing;
use countersign_testkit::bench;
use divan::counter::ItemsCount;

/// Concurrent tasks, and connections in the pool.
const TASKS: usize = 8;
/// Operations each task runs one after another per iteration.
const PER_TASK: usize = 32;
/// Operations per iteration.
const OPS: usize = TASKS * PER_TASK;

fn main() {
    divan::main();
}

struct Fixture {
    rt: tokio::runtime::Runtime,
    store: PostgresStore,
    svc: SessionService<PostgresStore>,
    /// Each task's current refresh token (task `i` owns family `i`).
    refresh: Mutex<Vec<SecretToken>>,
}

/// A migrated store in a fresh schema (`TASKS` connections) with one
/// session (and refresh family) per task and the floor's table of one row
/// per task; both benches' bodies run once, untimed, before either is
/// measured.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    let f = F.get_or_init(|| {
        let rt = bench::runtime();
        let (store, sessions) = rt.block_on(async {
            let mut options = testing::options(&testing::new_schema().await);
            options.max_connections = u32::try_from(TASKS).unwrap();
            let store = testing::migrated(options).await;
            sqlx::raw_sql(
                "CREATE TABLE bench_counters (id integer PRIMARY KEY, n bigint NOT NULL);
                 INSERT INTO bench_counters SELECT g, 0 FROM generate_series(0, 7) AS g;",
            )
            .execute(store.pool())
            .await
            .unwrap();
            let sessions = bench::issue_sessions(store.clone(), 1, TASKS).await;
            (store, sessions)
        });
        Fixture {
            rt,
            store,
            svc: sessions.service,
            refresh: Mutex::new(sessions.refresh),
        }
    });
    static WARM: OnceLock<()> = OnceLock::new();
    WARM.get_or_init(|| {
        bare_updates(f);
        rotations(f);
    });
    f
}

/// `PER_TASK` bare one-row UPDATEs from each of `TASKS` concurrent tasks,
/// each on its own row.
fn bare_updates(f: &Fixture) {
    f.rt.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let pool = f.store.pool().clone();
                let id = i32::try_from(i).unwrap();
                tokio::spawn(async move {
                    for _ in 0..PER_TASK {
                        let done = sqlx::query("UPDATE bench_counters SET n = n + 1 WHERE id = $1")
                            .bind(id)
                            .execute(&pool)
                            .await
                            .unwrap();
                        assert_eq!(done.rows_affected(), 1);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}

/// `PER_TASK` refresh rotations from each of `TASKS` concurrent tasks,
/// each on its own family.
fn rotations(f: &Fixture) {
    let tokens = f.refresh.lock().unwrap().clone();
    let next = f.rt.block_on(async {
        let tasks: Vec<_> = tokens
            .into_iter()
            .map(|mut token| {
                let svc = f.svc.clone();
                tokio::spawn(async move {
                    for _ in 0..PER_TASK {
                        let r = svc
                            .refresh(token.expose(), &ClientInfo::default())
                            .await
                            .unwrap();
                        token = r.refresh_token;
                    }
                    token
                })
            })
            .collect();
        let mut next = Vec::with_capacity(TASKS);
        for t in tasks {
            next.push(t.await.unwrap());
        }
        next
    });
    *f.refresh.lock().unwrap() = next;
}

/// Floor: the bare one-row UPDATE, 8 concurrent tasks.
#[divan::bench(counter = ItemsCount::new(OPS), sample_count = 60, sample_size = 1)]
fn floor_bare_update_8_concurrent() {
    bare_updates(fixture());
}

/// `SessionService::refresh`, 8 concurrent tasks, one family each.
#[divan::bench(counter = ItemsCount::new(OPS), sample_count = 60, sample_size = 1)]
fn rotate_refresh_8_concurrent() {
    rotations(fixture());
}
