//! Migrations: idempotent, safe under concurrency, and a newer schema is
//! refused before anything is written.

use countersign_core::{IdentityAdmin, StoreError, StoreErrorKind};
use countersign_postgres::testing::{new_schema, options, small_pool};
use countersign_postgres::{PgError, PostgresStore, SCHEMA_VERSION};
use countersign_testkit::fixtures::Fx;

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
