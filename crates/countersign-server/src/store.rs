//! Picking the backend: SQLite in the data directory, or PostgreSQL.
//! Everything after the pick is generic over the store
//! ([`with_store!`](crate::with_store)).

use countersign_postgres::{PostgresOptions, PostgresStore};
use countersign_sqlite::{SqliteOptions, SqliteStore};

use crate::config::{Database, Settings};
use crate::error::{Context, Failure};
use crate::files;

/// An opened store.
#[derive(Debug, Clone)]
pub enum Backend {
    /// SQLite.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PostgresStore),
}

/// Run `$body` with `$s` bound to the store inside `$backend`, whichever
/// it is: the one two-armed match every command goes through.
#[macro_export]
macro_rules! with_store {
    ($backend:expr, $s:ident => $body:expr) => {
        match $backend {
            $crate::store::Backend::Sqlite($s) => $body,
            $crate::store::Backend::Postgres($s) => $body,
        }
    };
}

/// Create the data directory (mode `0700`) if missing.
pub fn data_dir(settings: &Settings) -> Result<(), Failure> {
    files::private_dir(&settings.data_dir).context(&format!(
        "creating the data directory {}",
        settings.data_dir.display()
    ))
}

/// How long the SQLite store keeps a validated session in memory. The
/// server is the one process serving its sessions: every change it makes
/// is seen at once whatever this is; it bounds only how long a change made
/// by another process on the same file could go unseen.
pub const SQLITE_SESSION_CACHE: std::time::Duration = std::time::Duration::from_secs(1);

/// Open the configured store; with `migrate`, apply pending migrations.
pub async fn open(settings: &Settings, migrate: bool) -> Result<Backend, Failure> {
    data_dir(settings)?;
    match &settings.database {
        Database::Sqlite(path) => {
            let what = format!("opening the SQLite database {}", path.display());
            let options = SqliteOptions::default()
                .migrate(migrate)
                .session_cache(SQLITE_SESSION_CACHE);
            let store = SqliteStore::open_with(path, options).await.context(&what)?;
            Ok(Backend::Sqlite(store))
        }
        Database::Postgres {
            url,
            max_connections,
            schema,
        } => {
            let mut options = PostgresOptions::new(url.clone());
            options.max_connections = *max_connections;
            options.search_path.clone_from(schema);
            options.migrate = migrate;
            let store = PostgresStore::connect_with(options)
                .await
                .context("connecting to Postgres")?;
            Ok(Backend::Postgres(store))
        }
    }
}

/// Apply pending migrations; the schema version before and after.
pub async fn migrate(backend: &Backend) -> Result<(u32, u32), Failure> {
    match backend {
        Backend::Sqlite(s) => {
            let before = s
                .schema_version()
                .await
                .context("reading the schema version")?;
            let after = s.migrate().await.context("migrating")?;
            Ok((before, after))
        }
        Backend::Postgres(s) => {
            let before = s
                .schema_version()
                .await
                .context("reading the schema version")?
                .unwrap_or(0);
            let after = s.migrate().await.context("migrating")?;
            Ok((before, after))
        }
    }
}
