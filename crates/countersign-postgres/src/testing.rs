//! Test support (feature `testing`): one schema per test in a live server,
//! shared by this crate's tests and benchmarks and usable by applications'
//! own tests (as sqlx-postgres's `testing` module is).
//!
//! The server is the one at `DATABASE_URL`, or [`DEFAULT_URL`]. Each call of
//! [`new_schema`] creates an empty schema named `cs_test_<pid>_<n>`; the
//! first call of a process drops the schemas earlier processes left behind
//! (those whose process is gone). A server that cannot be reached fails the
//! test with how to start one: these functions never skip.
//!
//! Every function here panics on failure: a test cannot go on without its
//! database.

#![expect(
    clippy::panic,
    clippy::expect_used,
    reason = "a test harness: a failed set-up is a test failure"
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tokio::sync::OnceCell;

use crate::{PostgresOptions, PostgresStore, SCHEMA_VERSION};

/// The server tests use when `DATABASE_URL` is not set: the local one.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The prefix of every schema [`new_schema`] creates.
const PREFIX: &str = "cs_test_";

/// `DATABASE_URL`, or [`DEFAULT_URL`].
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A direct connection to the test server. Panics (fails the test) with how
/// to start one if the server cannot be reached.
pub async fn admin() -> PgConnection {
    let url = database_url();
    match PgConnection::connect(&url).await {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot reach PostgreSQL at {url} ({e}). These tests need a running server: \
             start the local one with `pg_ctlcluster --skip-systemctl-redirect 15 main start` \
             (check with `pg_lsclusters`), or point DATABASE_URL at another."
        ),
    }
}

async fn exec(conn: &mut PgConnection, sql: String) {
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(conn)
        .await
        .expect("a test schema statement");
}

static CLEANED: OnceCell<()> = OnceCell::const_new();
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Drop the schemas earlier processes left behind (those whose process is
/// gone), once per process.
async fn clean_leftovers() {
    CLEANED
        .get_or_init(|| async {
            let mut conn = admin().await;
            let names: Vec<String> = sqlx::query_scalar(
                r"SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'cs\_test\_%'",
            )
            .fetch_all(&mut conn)
            .await
            .expect("listing test schemas");
            let me = std::process::id();
            for name in names {
                let pid = name
                    .strip_prefix(PREFIX)
                    .and_then(|rest| rest.split('_').next())
                    .and_then(|p| p.parse::<u32>().ok());
                let alive = pid.is_some_and(|p| {
                    p == me || std::path::Path::new(&format!("/proc/{p}")).exists()
                });
                let safe = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !alive && safe {
                    exec(&mut conn, format!("DROP SCHEMA IF EXISTS {name} CASCADE")).await;
                }
            }
        })
        .await;
}

/// A new, empty schema of this process; its name.
pub async fn new_schema() -> String {
    clean_leftovers().await;
    let name = format!(
        "{PREFIX}{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut conn = admin().await;
    exec(&mut conn, format!("CREATE SCHEMA {name}")).await;
    name
}

/// Connect options whose connections live in `schema` and show as
/// application `app` in `pg_stat_activity`.
pub fn schema_options(schema: &str, app: &str) -> PgConnectOptions {
    database_url()
        .parse::<PgConnectOptions>()
        .expect("a valid DATABASE_URL")
        .options([("search_path", schema)])
        .application_name(app)
}

/// A pool of at most `max` connections in `schema`, named `app`.
pub async fn small_pool(schema: &str, app: &str, max: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(schema_options(schema, app))
        .await
        .expect("a pool on the test server")
}

/// [`PostgresOptions`] for the public connect path in `schema`: 8
/// connections, a 30 s acquire timeout, the schema as application name.
pub fn options(schema: &str) -> PostgresOptions {
    let mut o = PostgresOptions::new(database_url());
    o.max_connections = 8;
    o.acquire_timeout = Duration::from_secs(30);
    o.search_path = Some(schema.to_owned());
    o.application_name = Some(schema.to_owned());
    // Tests of migrations call `migrate` themselves; `migrated` does too.
    o.migrate = false;
    o
}

/// A store connected with `options` and migrated to [`SCHEMA_VERSION`].
pub async fn migrated(options: PostgresOptions) -> PostgresStore {
    let store = PostgresStore::connect_with(options)
        .await
        .expect("connecting to the test server");
    let version = store.migrate().await.expect("migrating the test schema");
    assert_eq!(version, SCHEMA_VERSION);
    store
}

/// A migrated store in a fresh schema: the conformance suite's factory.
pub async fn fresh() -> PostgresStore {
    migrated(options(&new_schema().await)).await
}
