//! Session validation on SQLite (a file in WAL mode) beside its floors.
//! Each iteration validates (or looks up) the same 1,000 sessions of
//! 10,000, on the bench's thread inside the same 2-worker runtime's
//! `block_on`, so every bench below runs on the same thread with the same
//! warm-up; divan reports items/s.
//!
//! - `floor_pk_select_direct`: the floor, one primary-key SELECT of one
//!   column on a direct connection to the file (no thread hop, statement
//!   prepared once).
//! - `floor_validate_select_direct`: the statement the store's read path
//!   runs (every column of the live row), on the same direct connection,
//!   values left undecoded.
//! - `service_validate_sqlite`: `SessionService::validate` on a store with
//!   its pool of read-only connections (the default).
//! - `diag_store_validate_session`: the store's `validate_session` alone
//!   on that store (token hashes computed beforehand): the service's own
//!   share (token parsing, SHA-256) is the difference.
//! - `service_validate_sqlite_worker_only` and `floor_pk_select_via_worker`:
//!   the same on a store without readers, where every call goes through
//!   the worker thread (the path before the pool, and its own floor).
//!
//! Run: `cargo bench -p countersign-sqlite --bench session`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods,
    missing_docs,
    reason = "benchmark"
)]

use std::sync::{Mutex, OnceLock};

use countersign_core::{Env, SessionService, SessionStore, TokenHash};
use countersign_sqlite::{SqliteOptions, SqliteStore};
use countersign_testkit::bench::{ISSUER, SessionBench};
use divan::counter::ItemsCount;

const SESSIONS: usize = 10_000;
const BATCH: usize = 1_000;

/// The statement of the store's read path (`read_live` in
/// `src/store/sessions.rs`), with its column list spelled out.
const VALIDATE_SELECT: &str = "SELECT key, id, tenant_id, user_id, auth, ip, user_agent, \
     created_at, last_seen_at, expires_at, absolute_expires_at, idle_timeout, renew_within \
     FROM cs_sessions WHERE key = ?1 AND expires_at > ?2 AND absolute_expires_at > ?2";

fn main() {
    divan::main();
}

struct Fixture {
    /// The store with readers, its sessions and the runtime.
    bench: SessionBench<SqliteStore>,
    keys: Vec<String>,
    hashes: Vec<TokenHash>,
    /// A second store on the same file without readers, and its service.
    worker_only: SqliteStore,
    worker_only_service: SessionService<SqliteStore>,
    direct: Mutex<rusqlite::Connection>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        remove_leftovers();
        let path =
            std::env::temp_dir().join(format!("countersign-bench-{}.db", std::process::id()));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let open = async || SqliteStore::open(&path).await.unwrap();
        let bench = SessionBench::new(open, 1, SESSIONS);
        assert!(bench.sessions.store.readers() > 0, "a pool of readers");
        let worker_only = bench.rt.block_on(async {
            SqliteStore::open_with(&path, SqliteOptions::default().readers(0))
                .await
                .unwrap()
        });
        assert_eq!(worker_only.readers(), 0);
        // Move the provisioning's writes from the WAL into the file, so
        // every bench reads the same settled database.
        bench.rt.block_on(async {
            bench
                .sessions
                .store
                .with_connection(|c| c.execute_batch("PRAGMA wal_checkpoint(PASSIVE)"))
                .await
                .unwrap();
        });
        let keys = bench.sessions.keys();
        Fixture {
            hashes: keys
                .iter()
                .map(|k| TokenHash::from_hex(k).unwrap())
                .collect(),
            keys,
            worker_only_service: SessionService::new(worker_only.clone(), Env::system(), ISSUER),
            worker_only,
            direct: Mutex::new(rusqlite::Connection::open(&path).unwrap()),
            bench,
        }
    })
}

/// Remove the database files of earlier runs whose process is gone (the
/// fixture lives until the process exits, so no run removes its own).
fn remove_leftovers() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix("countersign-bench-"))
            .and_then(|n| n.split('.').next())
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The fixture, after one untimed pass of every bench's body (the first
/// call only), so none starts on colder caches than another.
fn warm() -> &'static Fixture {
    static WARM: OnceLock<()> = OnceLock::new();
    let f = fixture();
    WARM.get_or_init(|| {
        pk_select_direct(f);
        validate_select_direct(f);
        f.bench.validate_first(BATCH);
        store_validate(f);
        validate_worker_only(f);
        pk_select_via_worker(f);
    });
    f
}

/// The current time in the store's unit (microseconds since the epoch).
fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Floor: one primary-key SELECT of one column per session on a direct
/// connection (no thread hop, statement prepared once).
#[divan::bench(counter = ItemsCount::new(BATCH), sample_count = 400)]
fn floor_pk_select_direct() {
    pk_select_direct(warm());
}

fn pk_select_direct(f: &Fixture) {
    let c = f.direct.lock().unwrap();
    f.bench.rt.block_on(async {
        let mut stmt = c
            .prepare_cached("SELECT expires_at FROM cs_sessions WHERE key = ?1")
            .unwrap();
        for k in &f.keys[..BATCH] {
            let n: i64 = stmt.query_row([k], |r| r.get(0)).unwrap();
            divan::black_box(n);
        }
    });
}

/// Floor, full row: the store's validating SELECT (every column, the
/// liveness conditions) on the direct connection, values undecoded.
#[divan::bench(counter = ItemsCount::new(BATCH), sample_count = 400)]
fn floor_validate_select_direct() {
    validate_select_direct(warm());
}

fn validate_select_direct(f: &Fixture) {
    let c = f.direct.lock().unwrap();
    f.bench.rt.block_on(async {
        let mut stmt = c.prepare_cached(VALIDATE_SELECT).unwrap();
        for k in &f.keys[..BATCH] {
            let now = now_micros();
            let mut rows = stmt.query(rusqlite::params![k, now]).unwrap();
            let row = rows.next().unwrap().unwrap();
            divan::black_box(row.get_ref(0).unwrap());
        }
    });
}

/// `SessionService::validate` on the store with its read-only connections.
#[divan::bench(counter = ItemsCount::new(BATCH), sample_count = 400)]
fn service_validate_sqlite() {
    warm().bench.validate_first(BATCH);
}

/// Diagnostic: `SessionStore::validate_session` alone on the store with
/// readers.
#[divan::bench(counter = ItemsCount::new(BATCH), sample_count = 400)]
fn diag_store_validate_session() {
    store_validate(warm());
}

fn store_validate(f: &Fixture) {
    let store = &f.bench.sessions.store;
    f.bench.rt.block_on(async {
        for h in &f.hashes[..BATCH] {
            let s = store.validate_session(h, chrono::Utc::now()).await.unwrap();
            divan::black_box(s.unwrap());
        }
    });
}

/// `SessionService::validate` on the store without readers (every call
/// through the worker thread).
#[divan::bench(counter = ItemsCount::new(BATCH), sample_count = 400)]
fn service_validate_sqlite_worker_only() {
    validate_worker_only(warm());
}

fn validate_worker_only(f: &Fixture) {
    f.bench.rt.block_on(async {
        for t in f.bench.sessions.tokens.iter().take(BATCH) {
            let s = f.worker_only_service.validate(t.expose()).await.unwrap();
            divan::black_box(s);
        }
    });
}

/// The worker's floor: the one-column SELECT on the store's connection,
/// through its worker thread (the path every call of a store without
/// readers takes).
#[divan::bench(counter = ItemsCount::new(BATCH), sample_count = 400)]
fn floor_pk_select_via_worker() {
    pk_select_via_worker(warm());
}

fn pk_select_via_worker(f: &Fixture) {
    f.bench.rt.block_on(async {
        for k in &f.keys[..BATCH] {
            let k = k.clone();
            let n: i64 = f
                .worker_only
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
