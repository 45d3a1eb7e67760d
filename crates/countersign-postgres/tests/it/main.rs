#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    unreachable_pub,
    reason = "tests"
)]

//! Integration tests: the conformance suite and the PostgreSQL-specific
//! guarantees (migrations, retries, connection loss, read pool, several
//! nodes on one database), each on a schema of its own in the server at
//! `DATABASE_URL` ([`countersign_postgres::testing`]).

mod crash;
mod failures;
mod invariants;
mod migrations;
mod nodes;
mod read_pool;

use countersign_postgres::testing::fresh;
use sqlx::postgres::PgPool;

countersign_testkit::conformance_suite!(fresh, audit);
countersign_testkit::engine_suite!(fresh, audit);

fn run<F: std::future::Future<Output = ()>>(body: F) {
    countersign_testkit::run(body);
}

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}
