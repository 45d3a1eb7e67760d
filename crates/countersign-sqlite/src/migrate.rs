//! Versioned migrations: the SQL files in `migrations/`, applied in order
//! in one `IMMEDIATE` transaction and recorded in `cs_schema_migrations`.

use rusqlite::{Connection, TransactionBehavior};

use crate::{Result, SqliteError};

/// The migrations this build knows, in order. Version = position + 1.
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

/// Apply pending migrations in one transaction; idempotent. Returns the
/// schema version. Refuses, writing nothing, a newer schema.
pub(crate) fn migrate(c: &mut Connection) -> Result<u32> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS cs_schema_migrations (
            version INTEGER PRIMARY KEY NOT NULL,
            applied_at INTEGER NOT NULL
        ) STRICT;",
    )?;
    let current = current_version(&tx)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO cs_schema_migrations (version, applied_at)
             VALUES (?1, CAST(unixepoch('subsec') * 1000000 AS INTEGER))",
            [i as i64 + 1],
        )?;
    }
    tx.commit()?;
    Ok(SCHEMA_VERSION)
}

/// The database's schema version, refusing one newer than this build.
pub(crate) fn current_version(c: &Connection) -> Result<u32> {
    let exists: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'cs_schema_migrations')",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(0);
    }
    let found: i64 = c.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM cs_schema_migrations",
        [],
        |r| r.get(0),
    )?;
    let found = u32::try_from(found).map_err(|_| SqliteError::Corrupt("schema version".into()))?;
    if found > SCHEMA_VERSION {
        return Err(SqliteError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    Ok(found)
}
