//! Versioned schema migrations, embedded in the binary.

use sqlx::postgres::PgPool;
use sqlx::{PgConnection, Postgres, Transaction};

use crate::error::{PgError, db};

/// The migrations this build knows, in order: version = position + 1.
/// Each runs once, in the migrating transaction; never edit a shipped one.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_flows.sql"),
    include_str!("../migrations/0003_sessions.sql"),
    include_str!("../migrations/0004_policies.sql"),
    include_str!("../migrations/0005_rbac.sql"),
    include_str!("../migrations/0006_policy_links.sql"),
    include_str!("../migrations/0007_key_algorithms.sql"),
    include_str!("../migrations/0008_verification_federated.sql"),
    include_str!("../migrations/0009_profiles.sql"),
    include_str!("../migrations/0010_rate_limits.sql"),
];

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// The advisory lock every migrating transaction holds ("cs-migr" in ASCII):
/// concurrent `migrate` calls run one after the other.
const MIGRATION_LOCK: i64 = 0x0063_732d_6d69_6772;

/// The recorded version, or `None` without a migrations table; refuses a
/// newer schema.
async fn current(conn: &mut PgConnection) -> Result<Option<i64>, PgError> {
    // A scan of the catalog under the statement's snapshot, not
    // `to_regclass`: that consults the session's catalog cache, which an
    // advisory lock wait does not refresh, so it could miss a table another
    // session created while this one waited for the lock.
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (
             SELECT 1 FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relname = 'cs_schema_migrations'
                AND n.nspname = ANY (current_schemas(false)))",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(db("reading the schema version"))?;
    if !exists {
        return Ok(None);
    }
    let found: Option<i64> =
        sqlx::query_scalar("SELECT max(version)::bigint FROM cs_schema_migrations")
            .fetch_one(&mut *conn)
            .await
            .map_err(db("reading the schema version"))?;
    let found = found.unwrap_or(0);
    if found > i64::from(SCHEMA_VERSION) {
        return Err(PgError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    Ok(Some(found))
}

/// The database's schema version, refusing a newer one.
pub(crate) async fn version(pool: &PgPool) -> Result<Option<u32>, PgError> {
    let mut conn = pool.acquire().await.map_err(db("acquiring a connection"))?;
    current(&mut conn)
        .await?
        .map(|v| crate::codec::unsigned("cs_schema_migrations", "version", v))
        .transpose()
}

/// One attempt at migrating: see [`PostgresStore::migrate`](crate::PostgresStore::migrate).
pub(crate) async fn migrate(pool: &PgPool) -> Result<u32, PgError> {
    let mut tx: Transaction<'static, Postgres> =
        pool.begin().await.map_err(db("beginning the migration"))?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(db("taking the migration lock"))?;
    // Checked under the lock and before any write: a newer schema is
    // refused with nothing written (the transaction rolls back on drop).
    let found = current(&mut tx).await?;
    // Migrations may rewrite large tables: no statement timeout from here.
    sqlx::query("SET LOCAL statement_timeout = 0")
        .execute(&mut *tx)
        .await
        .map_err(db("migrating"))?;
    let applied: Vec<i32> = if found.is_some() {
        sqlx::query_scalar("SELECT version FROM cs_schema_migrations")
            .fetch_all(&mut *tx)
            .await
            .map_err(db("reading the applied migrations"))?
    } else {
        sqlx::query(
            "CREATE TABLE cs_schema_migrations (
                 version    integer     PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .execute(&mut *tx)
        .await
        .map_err(db("creating the migrations table"))?;
        Vec::new()
    };
    for (version, sql) in (1i32..).zip(MIGRATIONS.iter().copied()) {
        if applied.contains(&version) {
            continue;
        }
        tracing::info!(version, "applying countersign schema migration");
        sqlx::raw_sql(sql)
            .execute(&mut *tx)
            .await
            .map_err(db("applying a migration"))?;
        sqlx::query("INSERT INTO cs_schema_migrations (version) VALUES ($1)")
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(db("recording a migration"))?;
    }
    crate::store::commit(tx, "committing the migration").await?;
    Ok(SCHEMA_VERSION)
}
