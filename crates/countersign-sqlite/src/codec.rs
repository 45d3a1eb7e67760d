//! Conversions between domain values and SQLite columns.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::{Result, SqliteError};

/// A UUID as stored: lowercase hyphenated text (sorts like the bytes).
pub(crate) fn id(u: &Uuid) -> String {
    u.hyphenated().to_string()
}

/// Parse a stored UUID.
pub(crate) fn uuid(s: &str) -> Result<Uuid> {
    Uuid::try_parse(s).map_err(|_| SqliteError::Corrupt(format!("bad uuid `{s}`")))
}

/// A time as stored: microseconds since the epoch.
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Read back a stored time.
pub(crate) fn time(m: i64) -> Result<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_micros(m)
        .ok_or_else(|| SqliteError::Corrupt(format!("bad time {m}")))
}

/// A std duration in microseconds, saturating.
pub(crate) fn duration_micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Serialise to JSON text.
pub(crate) fn json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| SqliteError::Corrupt(e.to_string()))
}

/// Parse JSON text.
pub(crate) fn from_json<T: DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| SqliteError::Corrupt(e.to_string()))
}

/// Parse a stored code (`active`, `authn.factor`, ...).
pub(crate) fn code<T: FromStr>(s: &str) -> Result<T> {
    s.parse()
        .map_err(|_| SqliteError::Corrupt(format!("unknown code `{s}`")))
}
