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

use countersign_core::{
    Argon2Params, AuthnService, ClientInfo, Env, PasswordHasher, SecretToken, SessionService,
};
use countersign_sqlite::SqliteStore;
use divan::counter::ItemsCount;

const SESSIONS: usize = 10_000;
const BATCH: usize = 1_000;

fn main() {
    divan::main();
}

struct Fixture {
    rt: tokio::runtime::Runtime,
    store: SqliteStore,
    svc: SessionService<SqliteStore>,
    tokens: Vec<SecretToken>,
    keys: Vec<String>,
    direct: Mutex<rusqlite::Connection>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let path =
            std::env::temp_dir().join(format!("countersign-bench-{}.db", std::process::id()));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let (store, svc, tokens) = rt.block_on(async {
            let store = SqliteStore::open(&path).await.unwrap();
            let env = Env::system();
            let hasher = PasswordHasher::new(Argon2Params::INSECURE_TEST, 1).unwrap();
            let authn = AuthnService::new(store.clone(), env.clone(), hasher);
            let svc = SessionService::new(store.clone(), env.clone(), "https://auth.example.com");
            let auth =
                countersign_testkit::engine::provisioned_authentication(&authn, "bench").await;
            let mut tokens = Vec::with_capacity(SESSIONS);
            for _ in 0..SESSIONS {
                tokens.push(
                    svc.issue(&auth, &ClientInfo::default())
                        .await
                        .unwrap()
                        .session_token,
                );
            }
            (store, svc, tokens)
        });
        let keys = tokens
            .iter()
            .map(|t| {
                countersign_core::session::SESSION_TOKEN
                    .parse(t.expose())
                    .unwrap()
                    .to_hex()
            })
            .collect();
        let direct = rusqlite::Connection::open(&path).unwrap();
        Fixture {
            rt,
            store,
            svc,
            tokens,
            keys,
            direct: Mutex::new(direct),
        }
    })
}

/// Floor A: one primary-key SELECT per session on the store's connection,
/// through its worker thread (the path every store call takes).
#[divan::bench(counter = ItemsCount::new(BATCH))]
fn floor_pk_select_via_worker() {
    let f = fixture();
    f.rt.block_on(async {
        for k in &f.keys[..BATCH] {
            let k = k.clone();
            let n: i64 = f
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
    let f = fixture();
    f.rt.block_on(async {
        for t in &f.tokens[..BATCH] {
            divan::black_box(f.svc.validate(t.expose()).await.unwrap());
        }
    });
}
