//! Postgres hot paths beside their floors, on a server reached over
//! loopback (`DATABASE_URL`, default the local one):
//!
//! - session validation (`SessionService::validate`: one statement, one
//!   round trip) against a bare primary-key SELECT on the same pool; each
//!   iteration is one call, so the median is the p50 latency;
//! - refresh rotation throughput: each iteration rotates 256 refresh tokens
//!   of distinct families from 16 concurrent tasks over a 16-connection
//!   pool; items/s is rotations per second.
//!
//! Run: `cargo xtask bench` (or `cargo bench -p countersign-postgres`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods,
    missing_docs,
    reason = "benchmark"
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use countersign_core::{ClientInfo, SecretToken, SessionService};
use countersign_postgres::PostgresStore;
use countersign_postgres::testing;
use countersign_testkit::bench;
use divan::counter::ItemsCount;

const SESSIONS: usize = 20_000;
const ROTATIONS: usize = 256;

fn main() {
    divan::main();
}

struct Fixture {
    rt: tokio::runtime::Runtime,
    store: PostgresStore,
    svc: SessionService<PostgresStore>,
    tokens: Vec<SecretToken>,
    keys: Vec<String>,
    refresh: Mutex<Vec<SecretToken>>,
    next: AtomicUsize,
}

/// A migrated store in a fresh schema (16 connections) holding one user's
/// `SESSIONS` sessions.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rt = bench::runtime();
        let (store, sessions) = rt.block_on(async {
            let mut options = testing::options(&testing::new_schema().await);
            options.max_connections = 16;
            let store = testing::migrated(options).await;
            let sessions = bench::issue_sessions(store.clone(), 1, SESSIONS).await;
            (store, sessions)
        });
        Fixture {
            rt,
            store,
            keys: sessions.keys(),
            svc: sessions.service,
            tokens: sessions.tokens,
            refresh: Mutex::new(sessions.refresh),
            next: AtomicUsize::new(0),
        }
    })
}

fn pick() -> usize {
    fixture().next.fetch_add(7919, Ordering::Relaxed) % SESSIONS
}

/// Floor: one bare primary-key SELECT of the live session row (the same
/// columns validation returns) over the same pool, rows left undecoded.
#[divan::bench(sample_count = 300)]
fn floor_pk_select() {
    let f = fixture();
    let k = &f.keys[pick()];
    f.rt.block_on(async {
        let row = sqlx::query(
            "SELECT key, id, tenant_id, user_id, auth, ip, user_agent, created_at, last_seen_at,
                    expires_at, absolute_expires_at, idle_timeout_us, renew_within_us
               FROM cs_sessions WHERE key = $1 AND $2::timestamptz < expires_at AND $2::timestamptz < absolute_expires_at",
        )
        .bind(k)
        .bind(chrono::Utc::now())
        .fetch_one(f.store.pool())
        .await
        .unwrap();
        divan::black_box(row);
    });
}

/// Diagnostic: the validating statement itself, rows left undecoded.
#[divan::bench(sample_count = 300)]
fn diag_validating_statement_raw() {
    let f = fixture();
    let k = &f.keys[pick()];
    f.rt.block_on(async {
        let row = sqlx::query(
            "WITH renewed AS (
                 UPDATE cs_sessions
                    SET expires_at = LEAST($2::timestamptz + idle_timeout_us * interval '1 microsecond', absolute_expires_at),
                        last_seen_at = $2::timestamptz
                  WHERE key = $1 AND $2::timestamptz < expires_at AND $2::timestamptz < absolute_expires_at
                    AND expires_at < $2::timestamptz + renew_within_us * interval '1 microsecond'
                 RETURNING key, id, tenant_id, user_id, auth, ip, user_agent, created_at, last_seen_at,
                    expires_at, absolute_expires_at, idle_timeout_us, renew_within_us)
             SELECT * FROM renewed
             UNION ALL
             SELECT key, id, tenant_id, user_id, auth, ip, user_agent, created_at, last_seen_at,
                    expires_at, absolute_expires_at, idle_timeout_us, renew_within_us
               FROM cs_sessions WHERE key = $1 AND $2::timestamptz < expires_at AND $2::timestamptz < absolute_expires_at
                AND NOT EXISTS (SELECT 1 FROM renewed)",
        )
        .bind(k)
        .bind(chrono::Utc::now())
        .fetch_optional(f.store.pool())
        .await
        .unwrap();
        divan::black_box(row);
    });
}

/// Floor, narrow: one primary-key SELECT of a single column.
#[divan::bench(sample_count = 300)]
fn floor_pk_select_one_column() {
    let f = fixture();
    let k = &f.keys[pick()];
    f.rt.block_on(async {
        let e: chrono::DateTime<chrono::Utc> =
            sqlx::query_scalar("SELECT expires_at FROM cs_sessions WHERE key = $1")
                .bind(k)
                .fetch_one(f.store.pool())
                .await
                .unwrap();
        divan::black_box(e);
    });
}

/// `SessionService::validate`: parse, hash, one statement.
#[divan::bench(sample_count = 300)]
fn service_validate_postgres() {
    let f = fixture();
    let t = &f.tokens[pick()];
    f.rt.block_on(async {
        divan::black_box(f.svc.validate(t.expose()).await.unwrap());
    });
}

/// 256 refresh rotations from 16 concurrent tasks (distinct families).
#[divan::bench(counter = ItemsCount::new(ROTATIONS), sample_count = 30, sample_size = 1)]
fn throughput_refresh_rotations_16_concurrent() {
    let f = fixture();
    let batch: Vec<(usize, SecretToken)> = {
        let tokens = f.refresh.lock().unwrap();
        (0..ROTATIONS)
            .map(|_| pick())
            .map(|i| (i, tokens[i].clone()))
            .collect()
    };
    let out = f.rt.block_on(async {
        let mut tasks = Vec::new();
        for chunk in batch.chunks(ROTATIONS / 16) {
            let (svc, chunk) = (f.svc.clone(), chunk.to_vec());
            tasks.push(tokio::spawn(async move {
                let mut next = Vec::with_capacity(chunk.len());
                for (i, t) in chunk {
                    let r = svc.refresh(t.expose(), &ClientInfo::default()).await;
                    // Two picks of one family in a batch: the second is reuse.
                    if let Ok(r) = r {
                        next.push((i, r.refresh_token));
                    }
                }
                next
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let mut tokens = f.refresh.lock().unwrap();
    for (i, t) in out {
        tokens[i] = t;
    }
}
