#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    unreachable_pub,
    reason = "tests"
)]

//! Integration tests: the conformance suite and the PostgreSQL-specific
//! guarantees (migrations, retries, connection loss, read pool), each on a
//! schema of its own in the server at `DATABASE_URL`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use countersign_core::{
    AuditFilter, AuditKind, AuditQuery, AuditStatus, FactorKind, FactorStore, IdentityAdmin,
    IdentityAuthnLog, IdentityLookup, MethodName, Scope, SessionStore, StoreError, StoreErrorKind,
};
use countersign_postgres::{PgError, PostgresOptions, PostgresStore, RetryPolicy, SCHEMA_VERSION};
use countersign_testkit::fixtures::Fx;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tokio::sync::OnceCell;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A direct connection to the test server; panics (fails the test) with
/// how to start one.
async fn admin() -> PgConnection {
    let url = url();
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
        .unwrap();
}

static CLEANED: OnceCell<()> = OnceCell::const_new();
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Drop the schemas earlier runs of this binary left behind (those whose
/// process is gone), once per run.
async fn clean_leftovers() {
    CLEANED
        .get_or_init(|| async {
            let mut conn = admin().await;
            let names: Vec<String> = sqlx::query_scalar(
                r"SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'cs\_test\_%'",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap();
            let me = std::process::id();
            for name in names {
                let pid = name
                    .strip_prefix("cs_test_")
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

/// A new, empty schema of this process.
async fn new_schema() -> String {
    clean_leftovers().await;
    let name = format!(
        "cs_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut conn = admin().await;
    exec(&mut conn, format!("CREATE SCHEMA {name}")).await;
    name
}

/// Connect options whose connections live in `schema`, named `app`.
fn schema_options(schema: &str, app: &str) -> PgConnectOptions {
    url()
        .parse::<PgConnectOptions>()
        .unwrap()
        .options([("search_path", schema)])
        .application_name(app)
}

async fn small_pool(schema: &str, app: &str, max: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(schema_options(schema, app))
        .await
        .unwrap()
}

/// Options for the public connect path, in `schema`.
fn options(schema: &str) -> PostgresOptions {
    let mut o = PostgresOptions::new(url());
    o.max_connections = 8;
    o.acquire_timeout = Duration::from_secs(30);
    o.search_path = Some(schema.to_owned());
    o.application_name = Some(schema.to_owned());
    o
}

/// A migrated store in a fresh schema: the conformance suite's factory.
async fn fresh() -> PostgresStore {
    let schema = new_schema().await;
    let store = PostgresStore::connect_with(options(&schema)).await.unwrap();
    assert_eq!(store.migrate().await.unwrap(), SCHEMA_VERSION);
    store
}

countersign_testkit::conformance_suite!(fresh);
countersign_testkit::engine_suite!(fresh);

fn run<F: std::future::Future<Output = ()>>(body: F) {
    countersign_testkit::run(body);
}

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

// ── Migrations ───────────────────────────────────────────────────────────

#[test]
fn migrate_is_idempotent() {
    run(async {
        let schema = new_schema().await;
        let store = PostgresStore::connect_with(options(&schema)).await.unwrap();
        assert_eq!(store.schema_version().await.unwrap(), None);
        assert_eq!(store.migrate().await.unwrap(), SCHEMA_VERSION);
        assert_eq!(store.migrate().await.unwrap(), SCHEMA_VERSION);
        assert_eq!(store.schema_version().await.unwrap(), Some(SCHEMA_VERSION));
        let rows = count(store.pool(), "SELECT count(*) FROM cs_schema_migrations").await;
        assert_eq!(rows, i64::from(SCHEMA_VERSION));
    });
}

#[test]
fn concurrent_migrations_all_succeed_once() {
    run(async {
        let schema = new_schema().await;
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let schema = schema.clone();
            tasks.push(tokio::spawn(async move {
                // Separate stores, as separate processes would have.
                let mut o = options(&schema);
                o.max_connections = 1;
                let store = PostgresStore::connect_with(o).await.unwrap();
                store.migrate().await.unwrap()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), SCHEMA_VERSION);
        }
        let store = PostgresStore::connect_with(options(&schema)).await.unwrap();
        let rows = count(store.pool(), "SELECT count(*) FROM cs_schema_migrations").await;
        assert_eq!(rows, i64::from(SCHEMA_VERSION));
        assert_eq!(store.schema_version().await.unwrap(), Some(SCHEMA_VERSION));
        // The schema works.
        let fx = Fx::new(100);
        store.provision_tenant(&fx.tenant("acme")).await.unwrap();
    });
}

fn assert_too_new(r: Result<impl std::fmt::Debug, PgError>, found: i64) {
    match r {
        Err(e @ PgError::SchemaTooNew { .. }) => {
            assert_eq!(e.kind(), StoreErrorKind::Other);
            assert_eq!(
                e.to_string(),
                format!(
                    "database schema version {found} is newer than this build knows ({SCHEMA_VERSION})"
                )
            );
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[test]
fn a_newer_schema_is_refused_and_nothing_is_written() {
    run(async {
        let newer = i64::from(SCHEMA_VERSION) + 1;
        // A migrated schema that a newer build has moved on.
        let schema = new_schema().await;
        let store = PostgresStore::connect_with(options(&schema)).await.unwrap();
        store.migrate().await.unwrap();
        sqlx::query("INSERT INTO cs_schema_migrations (version) VALUES ($1)")
            .bind(i32::try_from(newer).unwrap())
            .execute(store.pool())
            .await
            .unwrap();
        assert_too_new(store.migrate().await, newer);
        assert_too_new(PostgresStore::connect_with(options(&schema)).await, newer);
        assert_too_new(
            PostgresStore::open(small_pool(&schema, &schema, 1).await).await,
            newer,
        );
        let rows = count(store.pool(), "SELECT count(*) FROM cs_schema_migrations").await;
        assert_eq!(rows, i64::from(SCHEMA_VERSION) + 1);

        // A schema holding only a newer build's migrations table: migrate
        // must not create a single table of its own.
        let bare = new_schema().await;
        let pool = small_pool(&bare, &bare, 2).await;
        sqlx::query(
            "CREATE TABLE cs_schema_migrations (version integer PRIMARY KEY,
                                                applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query("INSERT INTO cs_schema_migrations (version) VALUES (99)")
            .execute(&pool)
            .await
            .unwrap();
        let store = PostgresStore::from_pool(pool.clone());
        assert_too_new(store.migrate().await, 99);
        let tables: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = $1")
                .bind(&bare)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(tables, 1, "only the migrations table");
        let rows = count(&pool, "SELECT count(*) FROM cs_schema_migrations").await;
        assert_eq!(rows, 1);
    });
}

// ── Failures and retries ─────────────────────────────────────────────────

/// Backends of application `app` (other than the caller's own connection).
async fn backends(admin: &mut PgConnection, app: &str, waiting_on_lock: bool) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity
          WHERE application_name = $1 AND pid <> pg_backend_pid()
            AND (NOT $2 OR wait_event_type = 'Lock')",
    )
    .bind(app)
    .bind(waiting_on_lock)
    .fetch_all(admin)
    .await
    .unwrap()
}

/// Terminate every backend of `app` and wait until they are gone. Waits
/// first until `pool` has taken all its connections back (a connection is
/// pinged as it returns: terminating it then would let the pool notice).
async fn terminate_all(admin: &mut PgConnection, pool: &PgPool, app: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.num_idle() < pool.size() as usize {
        assert!(Instant::now() < deadline, "the pool never settled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pids = backends(admin, app, false).await;
    for pid in &pids {
        let _: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .fetch_one(&mut *admin)
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !backends(admin, app, false).await.is_empty() {
        assert!(Instant::now() < deadline, "backends of {app} did not exit");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    pids.len()
}

#[test]
fn connection_loss_mid_transaction_is_transient_and_writes_nothing() {
    run(async {
        let schema = new_schema().await;
        let app = format!("{schema}_blocked");
        let store = PostgresStore::from_pool(small_pool(&schema, &app, 4).await)
            .with_retry(RetryPolicy::none());
        store.migrate().await.unwrap();
        // Another session holds the methods table, so provisioning stops
        // after writing the tenant and its factors.
        let holder_pool = small_pool(&schema, &format!("{schema}_holder"), 1).await;
        let mut holder = holder_pool.begin().await.unwrap();
        sqlx::query("LOCK TABLE cs_tenant_methods IN ACCESS EXCLUSIVE MODE")
            .execute(&mut *holder)
            .await
            .unwrap();
        let fx = Fx::new(101);
        let p = fx.tenant("acme");
        let id = p.tenant().id;
        let provisioning = {
            let store = store.clone();
            tokio::spawn(async move { store.provision_tenant(&p).await })
        };
        let mut admin = admin().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        let blocked = loop {
            let pids = backends(&mut admin, &app, true).await;
            if let Some(pid) = pids.first() {
                break *pid;
            }
            assert!(Instant::now() < deadline, "provisioning never blocked");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let _: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(blocked)
            .fetch_one(&mut admin)
            .await
            .unwrap();
        let err = provisioning.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Transient, "{err}");
        holder.rollback().await.unwrap();
        assert_eq!(store.get_tenant(id).await.unwrap(), None);
        assert!(store.tenant_factors(id).await.unwrap().is_empty());
        assert!(store.methods(Scope::Tenant(id)).await.unwrap().is_empty());
        let tenants = count(store.pool(), "SELECT count(*) FROM cs_tenants").await;
        let factors = count(store.pool(), "SELECT count(*) FROM cs_tenant_factors").await;
        assert_eq!((tenants, factors), (0, 0));
    });
}

/// A one-connection pool that hands out its idle connection untested, so a
/// terminated backend is noticed only by the call that uses it.
async fn fragile_store(schema: &str, app: &str, retry: RetryPolicy) -> PostgresStore {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect_with(schema_options(schema, app))
        .await
        .unwrap();
    PostgresStore::from_pool(pool).with_retry(retry)
}

#[test]
fn transient_failures_are_retried() {
    run(async {
        let schema = new_schema().await;
        let mut admin = admin().await;
        let fx = Fx::new(102);

        // Without retries, a dead pooled connection fails the call...
        let app = format!("{schema}_noretry");
        let store = fragile_store(&schema, &app, RetryPolicy::none()).await;
        store.migrate().await.unwrap();
        assert_eq!(terminate_all(&mut admin, store.pool(), &app).await, 1);
        let err = store.get_tenant(fx.tenant_id()).await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Transient, "{err}");

        // ...with them, reads and transactional writes go through.
        let app = format!("{schema}_retry");
        let store = fragile_store(&schema, &app, RetryPolicy::default()).await;
        store.get_tenant(fx.tenant_id()).await.unwrap();
        assert_eq!(terminate_all(&mut admin, store.pool(), &app).await, 1);
        assert_eq!(store.get_tenant(fx.tenant_id()).await.unwrap(), None);
        assert_eq!(terminate_all(&mut admin, store.pool(), &app).await, 1);
        let p = fx.tenant("acme");
        store.provision_tenant(&p).await.unwrap();
        assert_eq!(terminate_all(&mut admin, store.pool(), &app).await, 1);
        let e = fx.event(
            p.tenant().id,
            None,
            AuditKind::TenantProvisioned,
            AuditStatus::Success,
            countersign_testkit::fixtures::t0(),
        );
        store.record_event(&e).await.unwrap();
        assert_eq!(
            store
                .query_events(p.tenant().id, &AuditFilter::default())
                .await
                .unwrap(),
            vec![e]
        );
    });
}

#[test]
fn record_event_is_idempotent_on_the_event_id() {
    run(async {
        let store = fresh().await;
        let fx = Fx::new(103);
        let t = fx.tenant_id();
        let e = fx.event(
            t,
            None,
            AuditKind::Authentication,
            AuditStatus::Failure,
            countersign_testkit::fixtures::t0(),
        );
        store.record_event(&e).await.unwrap();
        store.record_event(&e).await.unwrap();
        let got = store
            .query_events(t, &AuditFilter::default())
            .await
            .unwrap();
        assert_eq!(got, vec![e]);
    });
}

#[test]
fn statement_timeouts_are_transient_and_not_retried() {
    run(async {
        let schema = new_schema().await;
        let mut o = options(&schema);
        o.statement_timeout = Some(Duration::from_millis(300));
        let store = PostgresStore::connect_with(o).await.unwrap();
        store.migrate().await.unwrap();
        // Another session holds the tenants table: a lookup waits for it
        // until the statement timeout cancels the lookup.
        let holder_pool = small_pool(&schema, &format!("{schema}_holder"), 1).await;
        let mut holder = holder_pool.begin().await.unwrap();
        sqlx::query("LOCK TABLE cs_tenants IN ACCESS EXCLUSIVE MODE")
            .execute(&mut *holder)
            .await
            .unwrap();
        let started = Instant::now();
        let err = store
            .get_tenant(Fx::new(105).tenant_id())
            .await
            .unwrap_err();
        let took = started.elapsed();
        holder.rollback().await.unwrap();
        assert_eq!(err.kind(), StoreErrorKind::Transient, "{err}");
        assert_eq!(err.sqlstate(), Some("57014"));
        // One attempt (~0.3 s), not four (>= 1.2 s plus backoff).
        assert!(took < Duration::from_millis(1100), "took {took:?}");
    });
}

// ── Invariants under concurrency ─────────────────────────────────────────

#[test]
fn concurrent_disables_and_removals_keep_one_enabled_method() {
    run(async {
        let store = fresh().await;
        let fx = Fx::new(106);
        let p = fx.tenant("acme");
        let t = p.tenant().id;
        store.provision_tenant(&p).await.unwrap();
        let mut names = vec![MethodName::parse("password").unwrap()];
        for i in 0..7 {
            let m = countersign_testkit::fixtures::method(&format!("m{i}"));
            store.save_method(Scope::Tenant(t), &m, true).await.unwrap();
            names.push(m.name);
        }
        let mut tasks = Vec::new();
        for (i, name) in names.into_iter().enumerate() {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    store.remove_method(Scope::Tenant(t), &name).await
                } else {
                    store
                        .set_method_enabled(Scope::Tenant(t), &name, false)
                        .await
                }
            }));
        }
        let mut refused = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(done) => assert!(done),
                Err(e) => {
                    assert_eq!(e.kind(), StoreErrorKind::Conflict, "{e}");
                    refused += 1;
                }
            }
        }
        assert_eq!(refused, 1);
        let enabled = store
            .methods(Scope::Tenant(t))
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.enabled)
            .count();
        assert_eq!(enabled, 1);
    });
}

// ── Sessions ─────────────────────────────────────────────────────────────

/// The row version (`xmin`) and position (`ctid`) of a session: both
/// change with any write to the row.
async fn session_row_version(pool: &PgPool, key: &countersign_core::TokenHash) -> (String, String) {
    sqlx::query_as("SELECT xmin::text, ctid::text FROM cs_sessions WHERE key = $1")
        .bind(key.to_hex())
        .fetch_one(pool)
        .await
        .unwrap()
}

#[test]
fn validation_without_renewal_writes_nothing() {
    run(async {
        use countersign_testkit::fixtures::{at, session};
        let store = fresh().await;
        let fx = Fx::new(107);
        let p = fx.tenant("acme");
        let t = p.tenant().id;
        store.provision_tenant(&p).await.unwrap();
        let u = fx.user(t, "alice");
        store.create_user(&u, &[]).await.unwrap();
        let sess = session(&fx, t, u.id);
        store.create_session(&sess, None).await.unwrap();
        let before = session_row_version(store.pool(), &sess.key).await;
        // Idle 30 min, renewed within its last 15: checks before minute 15
        // are pure reads, however many.
        for secs in [0, 60, 14 * 60, 15 * 60 - 1] {
            let got = store.validate_session(&sess.key, at(secs)).await.unwrap();
            assert_eq!(got, Some(std::sync::Arc::new(sess.clone())));
        }
        assert_eq!(
            session_row_version(store.pool(), &sess.key).await,
            before,
            "a check with idle time to spare must not write"
        );
        // From minute 15 a check renews: one write, then reads again.
        let renewed = store
            .validate_session(&sess.key, at(15 * 60 + 1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(renewed.expires_at, at(45 * 60 + 1));
        let after = session_row_version(store.pool(), &sess.key).await;
        assert_ne!(after, before, "the renewal wrote the row");
        let again = store
            .validate_session(&sess.key, at(16 * 60))
            .await
            .unwrap();
        assert_eq!(again, Some(renewed));
        assert_eq!(session_row_version(store.pool(), &sess.key).await, after);
    });
}

#[test]
fn concurrent_key_rotations_leave_one_active_key() {
    run(async {
        use countersign_core::KeyStore;
        use countersign_testkit::fixtures::{at, signing_key};
        let store = fresh().await;
        let fx = Fx::new(108);
        let p = fx.tenant("acme");
        let t = p.tenant().id;
        store.provision_tenant(&p).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..16 {
            let (store, key) = (store.clone(), signing_key(&fx, t, at(i)));
            tasks.push(tokio::spawn(async move {
                store.rotate_signing_key(&key, at(3600)).await.unwrap();
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let keys = store.signing_keys(t).await.unwrap();
        assert_eq!(keys.len(), 16);
        let active = keys.iter().filter(|k| k.is_active()).count();
        assert_eq!(active, 1, "rotations of one tenant are serialised");
    });
}

// ── Read pool ────────────────────────────────────────────────────────────

#[test]
fn lookups_use_the_read_pool() {
    run(async {
        let schema = new_schema().await;
        let write = small_pool(&schema, &format!("{schema}_w"), 2).await;
        let read = small_pool(&schema, &format!("{schema}_r"), 2).await;
        let store = PostgresStore::from_pool(write.clone()).with_read_pool(read.clone());
        store.migrate().await.unwrap();
        let fx = Fx::new(104);
        let p = fx.tenant("acme");
        let t = p.tenant().clone();
        store.provision_tenant(&p).await.unwrap();
        let u = fx.user(t.id, "alice");
        store.create_user(&u, &[]).await.unwrap();
        store
            .record_event(&fx.event(
                t.id,
                Some(u.id),
                AuditKind::UserRegistered,
                AuditStatus::Success,
                countersign_testkit::fixtures::t0(),
            ))
            .await
            .unwrap();

        // With the write pool closed, every lookup still answers...
        write.close().await;
        assert_eq!(store.get_tenant(t.id).await.unwrap(), Some(t.clone()));
        assert_eq!(store.find_tenant(&t.slug).await.unwrap().unwrap().id, t.id);
        assert_eq!(store.get_user(t.id, u.id).await.unwrap(), Some(u.clone()));
        assert_eq!(
            store.find_user(t.id, &u.identifier).await.unwrap(),
            Some(u.clone())
        );
        assert_eq!(store.list_users(t.id, None, 10).await.unwrap().len(), 1);
        assert_eq!(store.failure_record(t.id, u.id).await.unwrap(), None);
        assert_eq!(store.tenant_factors(t.id).await.unwrap().len(), 1);
        assert!(
            store
                .tenant_factor(t.id, FactorKind::Password)
                .await
                .unwrap()
                .is_some()
        );
        assert!(store.user_factors(t.id, u.id).await.unwrap().is_empty());
        assert_eq!(store.methods(Scope::Tenant(t.id)).await.unwrap().len(), 1);
        assert_eq!(store.available_methods(t.id, u.id).await.unwrap().len(), 1);
        let events = store
            .query_events(t.id, &AuditFilter::default())
            .await
            .unwrap();
        assert_eq!(events.len(), 1);
        // ...and writes, which need the primary, fail.
        let err = store
            .record_last_login(t.id, u.id, countersign_testkit::fixtures::t0())
            .await
            .unwrap_err();
        assert_ne!(err.kind(), StoreErrorKind::NotFound);
        read.close().await;
    });
}

#[test]
fn a_missing_server_is_a_transient_connect_error() {
    run(async {
        // A port nothing listens on (the discard port on loopback).
        let mut o = PostgresOptions::new("postgres://postgres@127.0.0.1:9/postgres");
        o.acquire_timeout = Duration::from_secs(2);
        let err = PostgresStore::connect_with(o).await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Transient, "{err}");
    });
}
