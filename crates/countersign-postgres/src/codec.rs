//! Rows to domain values, and the column lists the decoders read. Anything
//! that does not decode is an error of kind `Other` ([`PgError::Corrupt`]),
//! never a panic.

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use countersign_core::rbac::{
    AuthzVersions, DirectGrant, RbacName, RbacSnapshot, RoleAssignment, RoleGrant,
};
use countersign_core::{
    AccountState, Attributes, AuditDetail, AuditEvent, AuditKind, AuditStatus, AuthMethod,
    EmailAddress, EventId, FactorCredential, FactorKind, FactorSettings, FailureRecord, FamilyId,
    FlowRecord, Identifier, LinkedIdentity, MethodRecord, PolicyDocument, RateLimitWindow,
    RefreshFamily, SessionId, SessionRecord, SigningKeyRecord, StoreErrorKind, Tenant, TenantId,
    TenantPolicy, TenantSlug, Tier, TokenHash, User, UserId, Verification, VerificationPurpose,
    Versioned,
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
         created_at, updated_at, last_login_at, tier, attributes"
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

/// The columns [`flow`] reads.
macro_rules! flow_cols {
    () => {
        "key, tenant_id, user_id, state, version, created_at, expires_at"
    };
}
pub(crate) use flow_cols;

/// The columns [`session`] reads.
macro_rules! session_cols {
    () => {
        "key, id, tenant_id, user_id, auth, ip, user_agent, created_at, last_seen_at, \
         expires_at, absolute_expires_at, idle_timeout_us, renew_within_us"
    };
}
pub(crate) use session_cols;

/// The columns [`family`] reads.
macro_rules! family_cols {
    () => {
        "id, tenant_id, user_id, session_id, current_hash, previous_hash, generation, \
         rotated_at, created_at, expires_at, revoked_at, reuse_grace_us"
    };
}
pub(crate) use family_cols;

/// The columns [`signing_key`] reads.
macro_rules! key_cols {
    () => {
        "tenant_id, kid, algorithm, private_key, public_key, created_at, retired_at, verify_until"
    };
}
pub(crate) use key_cols;

/// The columns [`policy_document`] reads.
macro_rules! policy_cols {
    () => {
        "tenant_id, schema, policies, version, updated_at, links"
    };
}
pub(crate) use policy_cols;

/// The columns [`verification`] reads.
macro_rules! verification_cols {
    () => {
        "tenant_id, user_id, purpose, secret_hash, payload, created_at, expires_at, sends, \
         failures"
    };
}
pub(crate) use verification_cols;

/// The columns [`linked_identity`] reads.
macro_rules! link_cols {
    () => {
        "tenant_id, user_id, issuer, subject, email, linked_at"
    };
}
pub(crate) use link_cols;

/// The columns [`rate_limit`] reads.
macro_rules! rate_limit_cols {
    () => {
        "window_start, window_end, hits"
    };
}
pub(crate) use rate_limit_cols;

pub(crate) fn get<'r, T>(
    row: &'r PgRow,
    table: &'static str,
    col: &'static str,
) -> Result<T, PgError>
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
    tenant_named(row, &TenantNames::PLAIN)
}

/// The names a tenant's columns have in a row: their own, or with a
/// prefix where the row also holds another table's columns.
pub(crate) struct TenantNames {
    id: &'static str,
    slug: &'static str,
    name: &'static str,
    policy: &'static str,
    created_at: &'static str,
}

macro_rules! tenant_names {
    ($prefix:literal) => {
        TenantNames {
            id: concat!($prefix, "id"),
            slug: concat!($prefix, "slug"),
            name: concat!($prefix, "name"),
            policy: concat!($prefix, "policy"),
            created_at: concat!($prefix, "created_at"),
        }
    };
}

impl TenantNames {
    /// The columns of `cs_tenants` as they are.
    pub(crate) const PLAIN: TenantNames = tenant_names!("");
    /// The columns of `cs_tenants` prefixed `t_`.
    pub(crate) const PREFIXED: TenantNames = tenant_names!("t_");
}

/// A tenant read from the columns `n` names.
pub(crate) fn tenant_named(row: &PgRow, n: &TenantNames) -> Result<Tenant, PgError> {
    const T: &str = "cs_tenants";
    let slug: String = get(row, T, n.slug)?;
    Ok(Tenant {
        id: TenantId::from_uuid(get(row, T, n.id)?),
        slug: TenantSlug::parse(&slug).map_err(|e| PgError::corrupt(T, e))?,
        name: get(row, T, n.name)?,
        policy: get::<Json<TenantPolicy>>(row, T, n.policy)?.0,
        created_at: get(row, T, n.created_at)?,
    })
}

/// An `ILIKE` pattern matching `text` anywhere, literally: `%`, `_` and
/// `\` in it are escaped (with `ESCAPE '\'`).
pub(crate) fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

pub(crate) fn user(row: &PgRow) -> Result<User, PgError> {
    const T: &str = "cs_users";
    let identifier: String = get(row, T, "identifier")?;
    let email: Option<String> = get(row, T, "email")?;
    let state: String = get(row, T, "state")?;
    let tier: Option<String> = get(row, T, "tier")?;
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
        tier: tier.map(|t| parse::<Tier>(T, "tier", &t)).transpose()?,
        attributes: get::<Json<Attributes>>(row, T, "attributes")?.0,
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
        detail: get::<Option<String>>(row, T, "detail")?
            .map(|d| parse::<AuditDetail>(T, "detail", &d))
            .transpose()?,
    })
}

pub(crate) fn tenant_factor(row: &PgRow) -> Result<FactorSettings, PgError> {
    Ok(get::<Json<FactorSettings>>(row, "cs_tenant_factors", "config")?.0)
}

pub(crate) fn user_factor(row: &PgRow) -> Result<Versioned<FactorCredential>, PgError> {
    const T: &str = "cs_user_factors";
    Ok(Versioned {
        value: get::<Json<FactorCredential>>(row, T, "config")?.0,
        version: unsigned(T, "version", get::<i64>(row, T, "version")?)?,
    })
}

pub(crate) fn method(row: &PgRow, table: &'static str) -> Result<MethodRecord, PgError> {
    Ok(MethodRecord {
        method: get::<Json<AuthMethod>>(row, table, "method")?.0,
        enabled: get(row, table, "enabled")?,
    })
}

pub(crate) fn flow(row: &PgRow) -> Result<Versioned<FlowRecord>, PgError> {
    const T: &str = "cs_flows";
    let key: String = get(row, T, "key")?;
    let user_id: Option<Uuid> = get(row, T, "user_id")?;
    Ok(Versioned {
        value: FlowRecord {
            key: hash(T, "key", &key)?,
            tenant_id: TenantId::from_uuid(get(row, T, "tenant_id")?),
            user_id: user_id.map(UserId::from_uuid),
            state: get::<Json<_>>(row, T, "state")?.0,
            created_at: get(row, T, "created_at")?,
            expires_at: get(row, T, "expires_at")?,
        },
        version: unsigned(T, "version", get::<i64>(row, T, "version")?)?,
    })
}

pub(crate) fn signing_key(row: &PgRow) -> Result<SigningKeyRecord, PgError> {
    const T: &str = "cs_signing_keys";
    Ok(SigningKeyRecord {
        tenant_id: TenantId::from_uuid(get(row, T, "tenant_id")?),
        kid: get(row, T, "kid")?,
        algorithm: parse(T, "algorithm", &get::<String>(row, T, "algorithm")?)?,
        private_key: get(row, T, "private_key")?,
        public_key: get(row, T, "public_key")?,
        created_at: get(row, T, "created_at")?,
        retired_at: get(row, T, "retired_at")?,
        verify_until: get(row, T, "verify_until")?,
    })
}

pub(crate) fn policy_document(row: &PgRow) -> Result<PolicyDocument, PgError> {
    const T: &str = "cs_policy_documents";
    Ok(PolicyDocument {
        tenant_id: TenantId::from_uuid(get(row, T, "tenant_id")?),
        schema: get(row, T, "schema")?,
        policies: get(row, T, "policies")?,
        version: unsigned(T, "version", get::<i64>(row, T, "version")?)?,
        updated_at: get(row, T, "updated_at")?,
        links: serde_json::from_str(&get::<String>(row, T, "links")?)
            .map_err(|e| PgError::corrupt(T, format!("column links: {e}")))?,
    })
}

pub(crate) fn session(row: &PgRow) -> Result<SessionRecord, PgError> {
    session_named(row, &SessionNames::PLAIN)
}

/// The names a session's columns have in a row: their own, or with a
/// prefix where the row also holds another table's columns.
pub(crate) struct SessionNames {
    key: &'static str,
    id: &'static str,
    tenant_id: &'static str,
    user_id: &'static str,
    auth: &'static str,
    ip: &'static str,
    user_agent: &'static str,
    created_at: &'static str,
    last_seen_at: &'static str,
    expires_at: &'static str,
    absolute_expires_at: &'static str,
    idle_timeout_us: &'static str,
    renew_within_us: &'static str,
}

macro_rules! session_names {
    ($prefix:literal) => {
        SessionNames {
            key: concat!($prefix, "key"),
            id: concat!($prefix, "id"),
            tenant_id: concat!($prefix, "tenant_id"),
            user_id: concat!($prefix, "user_id"),
            auth: concat!($prefix, "auth"),
            ip: concat!($prefix, "ip"),
            user_agent: concat!($prefix, "user_agent"),
            created_at: concat!($prefix, "created_at"),
            last_seen_at: concat!($prefix, "last_seen_at"),
            expires_at: concat!($prefix, "expires_at"),
            absolute_expires_at: concat!($prefix, "absolute_expires_at"),
            idle_timeout_us: concat!($prefix, "idle_timeout_us"),
            renew_within_us: concat!($prefix, "renew_within_us"),
        }
    };
}

impl SessionNames {
    /// The columns of `cs_sessions` as they are.
    pub(crate) const PLAIN: SessionNames = session_names!("");
    /// The columns of `cs_sessions` prefixed `s_`.
    pub(crate) const PREFIXED: SessionNames = session_names!("s_");
}

/// A session read from the columns `n` names.
pub(crate) fn session_named(row: &PgRow, n: &SessionNames) -> Result<SessionRecord, PgError> {
    const T: &str = "cs_sessions";
    let key: String = get(row, T, n.key)?;
    let ip: Option<String> = get(row, T, n.ip)?;
    Ok(SessionRecord {
        id: SessionId::from_uuid(get(row, T, n.id)?),
        key: hash(T, n.key, &key)?,
        tenant_id: TenantId::from_uuid(get(row, T, n.tenant_id)?),
        user_id: UserId::from_uuid(get(row, T, n.user_id)?),
        auth: get::<Json<_>>(row, T, n.auth)?.0,
        ip: ip.map(|i| parse::<IpAddr>(T, n.ip, &i)).transpose()?,
        user_agent: get(row, T, n.user_agent)?,
        created_at: get(row, T, n.created_at)?,
        last_seen_at: get(row, T, n.last_seen_at)?,
        expires_at: get(row, T, n.expires_at)?,
        absolute_expires_at: get(row, T, n.absolute_expires_at)?,
        idle_timeout: duration(T, n.idle_timeout_us, get(row, T, n.idle_timeout_us)?)?,
        renew_within: duration(T, n.renew_within_us, get(row, T, n.renew_within_us)?)?,
    })
}

pub(crate) fn family(row: &PgRow) -> Result<RefreshFamily, PgError> {
    const T: &str = "cs_refresh_families";
    let current: String = get(row, T, "current_hash")?;
    let previous: Option<String> = get(row, T, "previous_hash")?;
    Ok(RefreshFamily {
        id: FamilyId::from_uuid(get(row, T, "id")?),
        tenant_id: TenantId::from_uuid(get(row, T, "tenant_id")?),
        user_id: UserId::from_uuid(get(row, T, "user_id")?),
        session_id: SessionId::from_uuid(get(row, T, "session_id")?),
        current: hash(T, "current_hash", &current)?,
        previous: previous.map(|p| hash(T, "previous_hash", &p)).transpose()?,
        generation: unsigned(T, "generation", get::<i64>(row, T, "generation")?)?,
        rotated_at: get(row, T, "rotated_at")?,
        created_at: get(row, T, "created_at")?,
        expires_at: get(row, T, "expires_at")?,
        revoked_at: get(row, T, "revoked_at")?,
        reuse_grace: duration(T, "reuse_grace_us", get(row, T, "reuse_grace_us")?)?,
    })
}

pub(crate) fn verification(row: &PgRow) -> Result<Verification, PgError> {
    const T: &str = "cs_verifications";
    let purpose: String = get(row, T, "purpose")?;
    Ok(Verification {
        tenant_id: TenantId::from_uuid(get(row, T, "tenant_id")?),
        user_id: UserId::from_uuid(get(row, T, "user_id")?),
        purpose: parse::<VerificationPurpose>(T, "purpose", &purpose)?,
        secret_hash: get(row, T, "secret_hash")?,
        payload: get(row, T, "payload")?,
        created_at: get(row, T, "created_at")?,
        expires_at: get(row, T, "expires_at")?,
        sends: unsigned(T, "sends", get::<i64>(row, T, "sends")?)?,
        failures: unsigned(T, "failures", get::<i64>(row, T, "failures")?)?,
    })
}

pub(crate) fn linked_identity(row: &PgRow) -> Result<LinkedIdentity, PgError> {
    const T: &str = "cs_linked_identities";
    let email: Option<String> = get(row, T, "email")?;
    Ok(LinkedIdentity {
        tenant_id: TenantId::from_uuid(get(row, T, "tenant_id")?),
        user_id: UserId::from_uuid(get(row, T, "user_id")?),
        issuer: get(row, T, "issuer")?,
        subject: get(row, T, "subject")?,
        email: email
            .map(|e| EmailAddress::parse(&e))
            .transpose()
            .map_err(|e| PgError::corrupt(T, e))?,
        linked_at: get(row, T, "linked_at")?,
    })
}

/// A service, role or permission name read back from `table`: one that is
/// not a valid [`RbacName`] is corrupt.
fn name(table: &'static str, col: &'static str, s: String) -> Result<RbacName, PgError> {
    RbacName::new(s).map_err(|e| PgError::corrupt(table, format!("column {col}: {e}")))
}

/// The name in column `col` of a row of `table`.
pub(crate) fn rbac_name(
    row: &PgRow,
    table: &'static str,
    col: &'static str,
) -> Result<RbacName, PgError> {
    name(table, col, get(row, table, col)?)
}

/// The user id in column `user_id` of a row of `table`.
pub(crate) fn user_id(row: &PgRow, table: &'static str) -> Result<UserId, PgError> {
    Ok(UserId::from_uuid(get(row, table, "user_id")?))
}

/// A row of `cs_rbac_role_grants` (`role, permission, service`).
pub(crate) fn role_grant(row: &PgRow) -> Result<RoleGrant, PgError> {
    const T: &str = "cs_rbac_role_grants";
    let service: Option<String> = get(row, T, "service")?;
    Ok(RoleGrant {
        role: rbac_name(row, T, "role")?,
        permission: rbac_name(row, T, "permission")?,
        service: service.map(|s| name(T, "service", s)).transpose()?,
    })
}

/// The row of the versions statement: `policies` (the policy document's
/// version, `NULL` without one) and `rbac` (0 without a row).
pub(crate) fn authz_versions(row: &PgRow) -> Result<AuthzVersions, PgError> {
    const T: &str = "cs_rbac_versions";
    let policies: Option<i64> = get(row, T, "policies")?;
    Ok(AuthzVersions {
        policies: policies.map(|v| unsigned(T, "policies", v)).transpose()?,
        rbac: unsigned(T, "rbac", get::<i64>(row, T, "rbac")?)?,
    })
}

/// The row of the snapshot statement: `version`, the name arrays
/// `services`, `roles` and `permissions`, and the JSON arrays of rows
/// `role_grants` (`[role, permission, service]`), `assignments`
/// (`[user_id, role, service]`) and `direct_grants`
/// (`[user_id, permission, service]`). Every list comes out sorted.
pub(crate) fn rbac_snapshot(row: &PgRow, tenant_id: TenantId) -> Result<RbacSnapshot, PgError> {
    const T: &str = "cs_rbac_versions";
    let names = |table: &'static str, col: &'static str| -> Result<Vec<RbacName>, PgError> {
        let mut out = get::<Vec<String>>(row, table, col)?
            .into_iter()
            .map(|s| name(table, col, s))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort();
        Ok(out)
    };
    const G: &str = "cs_rbac_role_grants";
    let mut role_grants =
        get::<Json<Vec<(String, String, Option<String>)>>>(row, G, "role_grants")?
            .0
            .into_iter()
            .map(|(role, permission, service)| {
                Ok(RoleGrant {
                    role: name(G, "role", role)?,
                    permission: name(G, "permission", permission)?,
                    service: service.map(|s| name(G, "service", s)).transpose()?,
                })
            })
            .collect::<Result<Vec<_>, PgError>>()?;
    role_grants.sort();
    const A: &str = "cs_rbac_assignments";
    let mut assignments = get::<Json<Vec<(Uuid, String, String)>>>(row, A, "assignments")?
        .0
        .into_iter()
        .map(|(user, role, service)| {
            Ok(RoleAssignment {
                user: UserId::from_uuid(user),
                role: name(A, "role", role)?,
                service: name(A, "service", service)?,
            })
        })
        .collect::<Result<Vec<_>, PgError>>()?;
    assignments.sort();
    const D: &str = "cs_rbac_direct_grants";
    let mut direct_grants = get::<Json<Vec<(Uuid, String, String)>>>(row, D, "direct_grants")?
        .0
        .into_iter()
        .map(|(user, permission, service)| {
            Ok(DirectGrant {
                user: UserId::from_uuid(user),
                permission: name(D, "permission", permission)?,
                service: name(D, "service", service)?,
            })
        })
        .collect::<Result<Vec<_>, PgError>>()?;
    direct_grants.sort();
    Ok(RbacSnapshot {
        tenant_id,
        version: unsigned(T, "version", get::<i64>(row, T, "version")?)?,
        services: names("cs_rbac_services", "services")?,
        roles: names("cs_rbac_roles", "roles")?,
        permissions: names("cs_rbac_permissions", "permissions")?,
        role_grants,
        assignments,
        direct_grants,
    })
}

fn hash(table: &'static str, col: &'static str, hex: &str) -> Result<TokenHash, PgError> {
    TokenHash::from_hex(hex)
        .ok_or_else(|| PgError::corrupt(table, format!("column {col}: not a token hash")))
}

fn duration(table: &'static str, col: &'static str, us: i64) -> Result<Duration, PgError> {
    u64::try_from(us)
        .map(Duration::from_micros)
        .map_err(|_| PgError::corrupt(table, format!("column {col}: negative duration {us}")))
}

/// A duration as the microseconds stored in a `bigint`; one out of range
/// is refused (`Rejected`) before anything is written.
pub(crate) fn micros(what: &'static str, d: Duration) -> Result<i64, PgError> {
    i64::try_from(d.as_micros())
        .map_err(|_| PgError::refused(StoreErrorKind::Rejected, format!("{what} is out of range")))
}

/// A version as the `bigint` it is compared with: one beyond `i64` cannot
/// be stored, so it becomes -1, which matches nothing.
pub(crate) fn version(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(-1)
}

pub(crate) fn rate_limit(row: &PgRow) -> Result<RateLimitWindow, PgError> {
    const T: &str = "cs_rate_limits";
    Ok(RateLimitWindow {
        start: get(row, T, "window_start")?,
        end: get(row, T, "window_end")?,
        count: unsigned(T, "hits", get::<i64>(row, T, "hits")?)?,
    })
}
