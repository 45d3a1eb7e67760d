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
use countersign_memory::MemoryStore;
use countersign_testkit::bench::SessionBench;
use divan::counter::ItemsCount;
use sha2::{Digest, Sha256};

const SESSIONS: usize = 100_000;
const BATCH: usize = 1_000;

fn main() {
    divan::main();
}

struct Fixture {
    bench: SessionBench<MemoryStore>,
    floor: Mutex<HashMap<[u8; 32], u64>>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let bench = SessionBench::new(async || MemoryStore::new(), 1, SESSIONS);
        let floor = bench.sessions.tokens.iter().enumerate();
        let floor = floor.map(|(i, t)| (Sha256::digest(t.expose().as_bytes()).into(), i as u64));
        Fixture {
            floor: Mutex::new(floor.collect()),
            bench,
        }
    })
}

/// Floor: SHA-256 of the token and a lookup in a locked map of 100k.
#[divan::bench(counter = ItemsCount::new(BATCH))]
fn floor_sha256_and_locked_map_lookup() {
    let f = fixture();
    for t in &f.bench.sessions.tokens[..BATCH] {
        let h: [u8; 32] = Sha256::digest(t.expose().as_bytes()).into();
        let hit = f.floor.lock().unwrap().get(&h).copied();
        divan::black_box(hit.unwrap());
    }
}

/// `SessionService::validate` on the memory backend (parse, hash, one
/// store call under its lock, clone of the session).
#[divan::bench(counter = ItemsCount::new(BATCH))]
fn service_validate_memory() {
    fixture().bench.validate_first(BATCH);
}

/// Token shape check and hash alone (what runs before any store access).
#[divan::bench(counter = ItemsCount::new(BATCH))]
fn parse_and_hash_only() {
    for t in &fixture().bench.sessions.tokens[..BATCH] {
        divan::black_box(SESSION_TOKEN.parse(t.expose()).unwrap());
    }
}
