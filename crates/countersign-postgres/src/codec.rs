//! Rows to domain values. Anything that does not decode is an error of
//! kind `Other` ([`PgError::Corrupt`]), never a panic.

use std::net::IpAddr;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use countersign_core::{
    AccountState, AuditEvent, AuditKind, AuditStatus, AuthMethod, EmailAddress, EventId,
    FactorKind, FailureRecord, Identifier, MethodRecord, Tenant, TenantFactor, TenantId,
    TenantPolicy, TenantSlug, User, UserFactor, UserId, Versioned,
};
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use uuid::Uuid;

use crate::error::PgError;

/// The columns [`user`] reads, in a form `concat!` accepts.
macro_rules! user_cols {
    () => {
        "id, tenant_id, identifier, display_name, email, state, state_reason, \
         created_at, updated_at, last_login_at"
    };
}
pub(crate) use user_cols;

/// The columns [`tenant`] reads.
macro_rules! tenant_cols {
    () => {
        "id, slug, name, policy, created_at"
    };
}
pub(crate) use tenant_cols;

/// The columns [`event`] reads.
macro_rules! event_cols {
    () => {
        "id, tenant_id, user_id, kind, status, factor, ip, user_agent, at, detail"
    };
}
pub(crate) use event_cols;

fn get<'r, T>(row: &'r PgRow, table: &'static str, col: &'static str) -> Result<T, PgError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(col)
        .map_err(|e| PgError::corrupt(table, format!("column {col}: {e}")))
}

fn parse<T>(table: &'static str, col: &'static str, s: &str) -> Result<T, PgError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    s.parse()
        .map_err(|e| PgError::corrupt(table, format!("column {col}: {e}")))
}

/// A non-negative count or version stored as `bigint`.
pub(crate) fn unsigned<T: TryFrom<i64>>(
    table: &'static str,
    col: &'static str,
    v: i64,
) -> Result<T, PgError> {
    T::try_from(v).map_err(|_| PgError::corrupt(table, format!("column {col}: {v} out of range")))
}

pub(crate) fn tenant(row: &PgRow) -> Result<Tenant, PgError> {
    const T: &str = "cs_tenants";
    let slug: String = get(row, T, "slug")?;
    Ok(Tenant {
        id: TenantId::from_uuid(get(row, T, "id")?),
        slug: TenantSlug::parse(&slug).map_err(|e| PgError::corrupt(T, e))?,
        name: get(row, T, "name")?,
        policy: get::<Json<TenantPolicy>>(row, T, "policy")?.0,
        created_at: get(row, T, "created_at")?,
    })
}

pub(crate) fn user(row: &PgRow) -> Result<User, PgError> {
    const T: &str = "cs_users";
    let identifier: String = get(row, T, "identifier")?;
    let email: Option<String> = get(row, T, "email")?;
    let state: String = get(row, T, "state")?;
    Ok(User {
        id: UserId::from_uuid(get(row, T, "id")?),
        tenant_id: TenantId::from_uuid(get(row, T, "tenant_id")?),
        identifier: Identifier::parse(&identifier).map_err(|e| PgError::corrupt(T, e))?,
        display_name: get(row, T, "display_name")?,
        email: email
            .map(|e| EmailAddress::parse(&e))
            .transpose()
            .map_err(|e| PgError::corrupt(T, e))?,
        state: parse::<AccountState>(T, "state", &state)?,
        state_reason: get(row, T, "state_reason")?,
        created_at: get(row, T, "created_at")?,
        updated_at: get(row, T, "updated_at")?,
        last_login_at: get(row, T, "last_login_at")?,
    })
}

pub(crate) fn failure(row: &PgRow) -> Result<FailureRecord, PgError> {
    const T: &str = "cs_failures";
    Ok(FailureRecord {
        count: unsigned(T, "count", get::<i64>(row, T, "count")?)?,
        window_start: get(row, T, "window_start")?,
        locked_until: get(row, T, "locked_until")?,
    })
}

pub(crate) fn event(row: &PgRow) -> Result<AuditEvent, PgError> {
    const T: &str = "cs_audit_events";
    let kind: String = get(row, T, "kind")?;
    let status: String = get(row, T, "status")?;
    let factor: Option<String> = get(row, T, "factor")?;
    let ip: Option<String> = get(row, T, "ip")?;
    let user_id: Option<Uuid> = get(row, T, "user_id")?;
    Ok(AuditEvent {
        id: EventId::from_uuid(get(row, T, "id")?),
        tenant_id: TenantId::from_uuid(get(row, T, "tenant_id")?),
        user_id: user_id.map(UserId::from_uuid),
        kind: parse::<AuditKind>(T, "kind", &kind)?,
        status: parse::<AuditStatus>(T, "status", &status)?,
        factor: factor
            .map(|f| parse::<FactorKind>(T, "factor", &f))
            .transpose()?,
        ip: ip.map(|i| parse::<IpAddr>(T, "ip", &i)).transpose()?,
        user_agent: get(row, T, "user_agent")?,
        at: get::<DateTime<Utc>>(row, T, "at")?,
        detail: get(row, T, "detail")?,
    })
}

pub(crate) fn tenant_factor(row: &PgRow) -> Result<TenantFactor, PgError> {
    Ok(get::<Json<TenantFactor>>(row, "cs_tenant_factors", "config")?.0)
}

pub(crate) fn user_factor(row: &PgRow) -> Result<Versioned<UserFactor>, PgError> {
    const T: &str = "cs_user_factors";
    Ok(Versioned {
        value: get::<Json<UserFactor>>(row, T, "config")?.0,
        version: unsigned(T, "version", get::<i64>(row, T, "version")?)?,
    })
}

pub(crate) fn method(row: &PgRow, table: &'static str) -> Result<MethodRecord, PgError> {
    Ok(MethodRecord {
        method: get::<Json<AuthMethod>>(row, table, "method")?.0,
        enabled: get(row, table, "enabled")?,
    })
}
