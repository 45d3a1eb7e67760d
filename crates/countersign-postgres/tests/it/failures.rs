//! Failures and retries: what is transient, what is retried, and that a
//! retry never applies a write twice.

use std::time::{Duration, Instant};

use countersign_core::{
    AuditFilter, AuditKind, AuditQuery, AuditStatus, FactorStore, IdentityAdmin, IdentityAuthnLog,
    IdentityLookup, MethodScope, StoreError, StoreErrorKind,
};
use countersign_postgres::testing::{
    admin, fresh, new_schema, options, schema_options, small_pool,
};
use countersign_postgres::{PostgresOptions, PostgresStore, RetryPolicy};
use countersign_testkit::fixtures::Fx;
use sqlx::PgConnection;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::{count, run};

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
        assert!(
            store
                .methods(MethodScope::Tenant(id))
                .await
                .unwrap()
                .is_empty()
        );
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
