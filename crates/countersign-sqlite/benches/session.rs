//! Session validation on SQLite beside its floors: one indexed
//! primary-key SELECT on the same connection (through the same worker
//! thread, as every store call goes), and the same SELECT on a direct
//! connection to the same file (no thread hop). Each iteration validates
//! 1,000 sessions of 10,000; divan reports items/s.
//!
//! Run: `cargo xtask bench session`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs,
    reason = "benchmark"
)]

use std::sync::{Mutex, OnceLock};

use countersign_sqlite::SqliteStore;
use countersign_testkit::bench::SessionBench;
use divan::counter::ItemsCount;

const SESSIONS: usize = 10_000;
const BATCH: usize = 1_000;

fn main() {
    divan::main();
}

struct Fixture {
    bench: SessionBench<SqliteStore>,
    keys: Vec<String>,
    direct: Mutex<rusqlite::Connection>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let path =
            std::env::temp_dir().join(format!("countersign-bench-{}.db", std::process::id()));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let open = async || SqliteStore::open(&path).await.unwrap();
        let bench = SessionBench::new(open, 1, SESSIONS);
        Fixture {
            keys: bench.sessions.keys(),
            direct: Mutex::new(rusqlite::Connection::open(&path).unwrap()),
            bench,
        }
    })
}

/// Floor A: one primary-key SELECT per session on the store's connection,
/// through its worker thread (the path every store call takes).
#[divan::bench(counter = ItemsCount::new(BATCH))]
fn floor_pk_select_via_worker() {
    let f = fixture();
    f.bench.rt.block_on(async {
        for k in &f.keys[..BATCH] {
            let k = k.clone();
            let n: i64 = f
                .bench
                .sessions
                .store
                .with_connection(move |c| {
                    c.prepare_cached("SELECT expires_at FROM cs_sessions WHERE key = ?1")?
                        .query_row([k], |r| r.get(0))
                })
                .await
                .unwrap();
            divan::black_box(n);
        }
    });
}

/// Floor B: the same SELECT on a direct connection (no thread hop).
#[divan::bench(counter = ItemsCount::new(BATCH))]
fn floor_pk_select_direct() {
    let f = fixture();
    let c = f.direct.lock().unwrap();
    let mut stmt = c
        .prepare_cached("SELECT expires_at FROM cs_sessions WHERE key = ?1")
        .unwrap();
    for k in &f.keys[..BATCH] {
        let n: i64 = stmt.query_row([k], |r| r.get(0)).unwrap();
        divan::black_box(n);
    }
}

/// `SessionService::validate` on SQLite.
#[divan::bench(counter = ItemsCount::new(BATCH))]
fn service_validate_sqlite() {
    fixture().bench.validate_first(BATCH);
}
