//! Session validation on the memory backend beside its floor: SHA-256 of
//! the token plus a lookup in a locked HashMap of 100k entries. Each
//! iteration validates 1,000 tokens; divan reports time per iteration and
//! items/s.
//!
//! Run: `cargo xtask bench session`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs,
    reason = "benchmark"
)]

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use countersign_core::session::SESSION_TOKEN;
use countersign_core::{
    Argon2Params, AuthnService, ClientInfo, Env, PasswordHasher, SecretToken, SessionService,
};
use countersign_memory::MemoryStore;
use divan::counter::ItemsCount;
use sha2::{Digest, Sha256};

const SESSIONS: usize = 100_000;
const BATCH: usize = 1_000;

fn main() {
    divan::main();
}

struct Fixture {
    rt: tokio::runtime::Runtime,
    svc: SessionService<MemoryStore>,
    tokens: Vec<SecretToken>,
    floor: Mutex<HashMap<[u8; 32], u64>>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = MemoryStore::new();
        let env = Env::system();
        let authn = AuthnService::new(
            store.clone(),
            env.clone(),
            PasswordHasher::new(Argon2Params::INSECURE_TEST, 1).unwrap(),
        );
        let svc = SessionService::new(store, env.clone(), "https://auth.example.com");
        let tokens = rt.block_on(async {
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
            tokens
        });
        let mut floor = HashMap::with_capacity(SESSIONS);
        for (i, t) in tokens.iter().enumerate() {
            floor.insert(Sha256::digest(t.expose().as_bytes()).into(), i as u64);
        }
        Fixture {
            rt,
            svc,
            tokens,
            floor: Mutex::new(floor),
        }
    })
}

/// Floor: SHA-256 of the token and a lookup in a locked map of 100k.
#[divan::bench(counter = ItemsCount::new(BATCH))]
fn floor_sha256_and_locked_map_lookup() {
    let f = fixture();
    for t in &f.tokens[..BATCH] {
        let h: [u8; 32] = Sha256::digest(t.expose().as_bytes()).into();
        let hit = f.floor.lock().unwrap().get(&h).copied();
        divan::black_box(hit.unwrap());
    }
}

/// `SessionService::validate` on the memory backend (parse, hash, one
/// store call under its lock, clone of the session).
#[divan::bench(counter = ItemsCount::new(BATCH))]
fn service_validate_memory() {
    let f = fixture();
    f.rt.block_on(async {
        for t in &f.tokens[..BATCH] {
            divan::black_box(f.svc.validate(t.expose()).await.unwrap());
        }
    });
}

/// Token shape check and hash alone (what runs before any store access).
#[divan::bench(counter = ItemsCount::new(BATCH))]
fn parse_and_hash_only() {
    let f = fixture();
    for t in &f.tokens[..BATCH] {
        divan::black_box(SESSION_TOKEN.parse(t.expose()).unwrap());
    }
}
