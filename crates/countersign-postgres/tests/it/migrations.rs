//! Migrations: idempotent, safe under concurrency, a newer schema is
//! refused before anything is written, and older schemas keep their rows.

use countersign_core::{IdentityAdmin, KeyStore, SigningAlgorithm, StoreError, StoreErrorKind};
use countersign_postgres::testing::{new_schema, options, small_pool};
use countersign_postgres::{PgError, PostgresStore, SCHEMA_VERSION};
use countersign_testkit::fixtures::{Fx, at, signing_key, signing_key_of};

use crate::{count, run};

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

/// `connect` migrates by default, as `SqliteStore::open` does: a fresh
/// schema is usable at once.
#[test]
fn connecting_migrates_by_default() {
    run(async {
        let schema = new_schema().await;
        let mut o = options(&schema);
        o.migrate = true;
        let store = PostgresStore::connect_with(o).await.unwrap();
        assert_eq!(store.schema_version().await.unwrap(), Some(SCHEMA_VERSION));
        let fx = Fx::new(101);
        store.provision_tenant(&fx.tenant("acme")).await.unwrap();
        assert!(countersign_postgres::PostgresOptions::new("postgres://x").migrate);
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

/// The migrations a schema-6 database had applied (before key algorithms).
const SCHEMA_6: [&str; 6] = [
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_flows.sql"),
    include_str!("../../migrations/0003_sessions.sql"),
    include_str!("../../migrations/0004_policies.sql"),
    include_str!("../../migrations/0005_rbac.sql"),
    include_str!("../../migrations/0006_policy_links.sql"),
];

/// A schema at version 6 holding signing keys (one retired, one active)
/// migrates keeping them byte for byte, and they read back as EdDSA keys;
/// keys of the other algorithms are written and read after it, and an
/// algorithm the schema does not know is refused.
#[test]
fn a_schema_6_database_with_signing_keys_migrates_to_key_algorithms() {
    run(async {
        let schema = new_schema().await;
        let pool = small_pool(&schema, &schema, 2).await;
        sqlx::query(
            "CREATE TABLE cs_schema_migrations (version integer PRIMARY KEY,
                                                applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .execute(&pool)
        .await
        .unwrap();
        for (version, sql) in (1i32..).zip(SCHEMA_6) {
            sqlx::raw_sql(sql).execute(&pool).await.unwrap();
            sqlx::query("INSERT INTO cs_schema_migrations (version) VALUES ($1)")
                .bind(version)
                .execute(&pool)
                .await
                .unwrap();
        }
        let store = PostgresStore::from_pool(pool.clone());
        assert_eq!(store.schema_version().await.unwrap(), Some(6));
        let fx = Fx::new(102);
        let p = fx.tenant("acme");
        let t = p.tenant().id;
        store.provision_tenant(&p).await.unwrap();
        let mut old = signing_key(&fx, t, at(0));
        old.retired_at = Some(at(10));
        old.verify_until = Some(at(370));
        let active = signing_key(&fx, t, at(10));
        // Keys as schema 6 stores them (no algorithm column yet).
        for k in [&old, &active] {
            sqlx::query(
                "INSERT INTO cs_signing_keys
                     (tenant_id, kid, private_key, public_key, created_at, retired_at, verify_until)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(t.as_uuid())
            .bind(k.kid.as_str())
            .bind(k.private_key.as_slice())
            .bind(k.public_key.as_slice())
            .bind(k.created_at)
            .bind(k.retired_at)
            .bind(k.verify_until)
            .execute(&pool)
            .await
            .unwrap();
        }
        assert_eq!(store.migrate().await.unwrap(), SCHEMA_VERSION);
        let keys = store.signing_keys(t).await.unwrap();
        assert_eq!(keys, [old.clone(), active.clone()]);
        assert!(keys.iter().all(|k| k.algorithm == SigningAlgorithm::EdDsa));
        let rs = signing_key_of(&fx, t, SigningAlgorithm::Rs256, at(20));
        store.rotate_signing_key(&rs, at(380)).await.unwrap();
        let keys = store.signing_keys(t).await.unwrap();
        assert_eq!(keys.last(), Some(&rs));
        assert_eq!(keys[1].verify_until, Some(at(380)), "the EdDSA key retired");
        let refused = sqlx::query("UPDATE cs_signing_keys SET algorithm = 'HS256' WHERE kid = $1")
            .bind(rs.kid.as_str())
            .execute(&pool)
            .await;
        assert!(refused.is_err(), "{refused:?}");
    });
}
