//! Conversions between domain values and SQLite columns: the column lists
//! and every row decoder of the store.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use countersign_core::{
    AuditEvent, AuthzVersions, DirectGrant, EmailAddress, EventId, FactorCredential, FailureRecord,
    FamilyId, FlowRecord, Identifier, LinkedIdentity, MethodRecord, PolicyDocument,
    RateLimitWindow, RbacName, RefreshFamily, RoleAssignment, RoleGrant, SessionId, SessionRecord,
    SigningAlgorithm, SigningKeyRecord, Tenant, TenantId, TenantSlug, TokenHash, User, UserId,
    Verification, Versioned,
};
use rusqlite::Row;
use rusqlite::types::FromSql;
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
pub(crate) fn duration_micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// A compare-and-save version as a statement parameter.
pub(crate) fn version_param(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| SqliteError::Conflict("version out of range"))
}

/// Serialise to JSON text.
pub(crate) fn json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| SqliteError::Corrupt(e.to_string()))
}

/// A `LIKE` pattern matching `text` anywhere, literally: `%`, `_` and
/// `\` in it are escaped (with `ESCAPE '\'`), and ASCII letters lowered
/// (compare it with `lower(column)`).
pub(crate) fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c.to_ascii_lowercase());
    }
    p.push('%');
    p
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

/// A token hash as stored: lowercase hex, 64 characters (what
/// [`TokenHash::to_hex`] writes, without its allocation per byte: this is
/// on the session check's path).
pub(crate) fn hex(h: &TokenHash) -> String {
    let digit = |n: u8| if n < 10 { b'0' + n } else { b'a' + n - 10 };
    let mut out = [0u8; 64];
    for (pair, b) in out.chunks_exact_mut(2).zip(h.as_bytes()) {
        if let [hi, lo] = pair {
            *hi = digit(b >> 4);
            *lo = digit(b & 0x0f);
        }
    }
    // Every byte is an ASCII digit or letter, so this never falls back.
    String::from_utf8(out.to_vec()).unwrap_or_default()
}

/// The value of a hex digit (either case, as [`TokenHash::from_hex`]
/// accepts), or `0xff`; written to compile without a branch per digit.
fn hex_value(c: u8) -> u8 {
    let digit = c.wrapping_sub(b'0');
    let letter = (c | 0x20).wrapping_sub(b'a');
    if digit < 10 {
        digit
    } else if letter < 6 {
        letter + 10
    } else {
        0xff
    }
}

/// Parse a stored token hash (64 hex digits).
fn hash(s: &str) -> Result<TokenHash> {
    let digits = s.as_bytes();
    let mut out = [0u8; 32];
    let mut bad = digits.len() != 64;
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let value = |i: usize| pair.get(i).copied().map_or(0xff, hex_value);
        let (hi, lo) = (value(0), value(1));
        bad |= (hi | lo) > 0x0f;
        *byte = (hi << 4) | (lo & 0x0f);
    }
    if bad {
        return Err(SqliteError::Corrupt("bad token hash".into()));
    }
    Ok(TokenHash::from_bytes(out))
}

/// Column readers shared by every decoder: one column, one stored shape.
trait Col {
    /// The column as stored.
    fn col<T: FromSql>(&self, i: usize) -> Result<T>;

    /// A text column, borrowed from the row (no allocation).
    fn text(&self, i: usize) -> Result<&str>;

    /// A nullable text column, borrowed from the row.
    fn opt_text(&self, i: usize) -> Result<Option<&str>>;

    /// A UUID column as a typed id.
    fn id_col<T>(&self, i: usize, to: fn(Uuid) -> T) -> Result<T> {
        Ok(to(uuid(self.text(i)?)?))
    }

    /// A nullable UUID column as a typed id.
    fn opt_id_col<T>(&self, i: usize, to: fn(Uuid) -> T) -> Result<Option<T>> {
        self.opt_text(i)?.map(|s| uuid(s).map(to)).transpose()
    }

    /// A time column.
    fn time_col(&self, i: usize) -> Result<DateTime<Utc>> {
        time(self.col(i)?)
    }

    /// A nullable time column.
    fn opt_time_col(&self, i: usize) -> Result<Option<DateTime<Utc>>> {
        self.col::<Option<i64>>(i)?.map(time).transpose()
    }

    /// A JSON column.
    fn json_col<T: DeserializeOwned>(&self, i: usize) -> Result<T> {
        from_json(self.text(i)?)
    }

    /// A code column (`active`, `authn.factor`, an IP address, ...).
    fn code_col<T: FromStr>(&self, i: usize) -> Result<T> {
        code(self.text(i)?)
    }

    /// A nullable code column.
    fn opt_code_col<T: FromStr>(&self, i: usize) -> Result<Option<T>> {
        self.opt_text(i)?.map(code).transpose()
    }

    /// A token hash column.
    fn hash_col(&self, i: usize) -> Result<TokenHash> {
        hash(self.text(i)?)
    }

    /// A service, role or permission name column.
    fn name_col(&self, i: usize) -> Result<RbacName> {
        RbacName::new(self.col::<String>(i)?).map_err(|e| SqliteError::Corrupt(e.to_string()))
    }

    /// A nullable name column.
    fn opt_name_col(&self, i: usize) -> Result<Option<RbacName>> {
        self.col::<Option<String>>(i)?
            .map(|s| RbacName::new(s).map_err(|e| SqliteError::Corrupt(e.to_string())))
            .transpose()
    }

    /// A nullable email address column.
    fn opt_email_col(&self, i: usize) -> Result<Option<EmailAddress>> {
        self.col::<Option<String>>(i)?
            .map(|e| EmailAddress::parse(&e).map_err(|e| SqliteError::Corrupt(e.to_string())))
            .transpose()
    }

    /// A count column that fits a `u32`; `what` names it in the error.
    fn u32_col(&self, i: usize, what: &str) -> Result<u32> {
        u32::try_from(self.col::<i64>(i)?).map_err(|_| SqliteError::Corrupt(what.into()))
    }

    /// A non-negative integer column; `what` names it in the error.
    fn u64_col(&self, i: usize, what: &str) -> Result<u64> {
        u64::try_from(self.col::<i64>(i)?).map_err(|_| SqliteError::Corrupt(what.into()))
    }

    /// A duration column in microseconds (negative reads as zero).
    fn duration_col(&self, i: usize) -> Result<Duration> {
        Ok(Duration::from_micros(
            u64::try_from(self.col::<i64>(i)?).unwrap_or(0),
        ))
    }
}

impl Col for Row<'_> {
    fn col<T: FromSql>(&self, i: usize) -> Result<T> {
        Ok(self.get(i)?)
    }

    fn text(&self, i: usize) -> Result<&str> {
        self.get_ref(i)?
            .as_str()
            .map_err(|e| SqliteError::Corrupt(format!("column {i}: {e}")))
    }

    fn opt_text(&self, i: usize) -> Result<Option<&str>> {
        self.get_ref(i)?
            .as_str_or_null()
            .map_err(|e| SqliteError::Corrupt(format!("column {i}: {e}")))
    }
}

pub(crate) const TENANT_COLS: &str = "id, slug, name, policy, created_at";

pub(crate) fn read_tenant(r: &Row<'_>) -> Result<Tenant> {
    Ok(Tenant {
        id: r.id_col(0, TenantId::from_uuid)?,
        slug: TenantSlug::parse(&r.col::<String>(1)?)
            .map_err(|e| SqliteError::Corrupt(e.to_string()))?,
        name: r.col(2)?,
        policy: r.json_col(3)?,
        created_at: r.time_col(4)?,
    })
}

pub(crate) const USER_COLS: &str = "id, tenant_id, identifier, display_name, email, state, \
                                    state_reason, created_at, updated_at, last_login_at, tier, \
                                    attributes";

pub(crate) fn read_user(r: &Row<'_>) -> Result<User> {
    let corrupt = |e: countersign_core::InvalidInput| SqliteError::Corrupt(e.to_string());
    Ok(User {
        id: r.id_col(0, UserId::from_uuid)?,
        tenant_id: r.id_col(1, TenantId::from_uuid)?,
        identifier: Identifier::parse(&r.col::<String>(2)?).map_err(corrupt)?,
        display_name: r.col(3)?,
        email: r
            .col::<Option<String>>(4)?
            .map(|e| EmailAddress::parse(&e))
            .transpose()
            .map_err(corrupt)?,
        state: r.code_col(5)?,
        state_reason: r.col(6)?,
        created_at: r.time_col(7)?,
        updated_at: r.time_col(8)?,
        last_login_at: r.opt_time_col(9)?,
        tier: r.opt_code_col(10)?,
        attributes: r.json_col(11)?,
    })
}

/// Columns of `cs_failures` that [`read_failure`] decodes.
pub(crate) const FAILURE_COLS: &str = "count, window_start, locked_until";

pub(crate) fn read_failure(r: &Row<'_>) -> Result<FailureRecord> {
    Ok(FailureRecord {
        count: u32::try_from(r.col::<i64>(0)?).unwrap_or(u32::MAX),
        window_start: r.time_col(1)?,
        locked_until: r.opt_time_col(2)?,
    })
}

pub(crate) const EVENT_COLS: &str =
    "id, tenant_id, user_id, kind, status, factor, ip, user_agent, at, detail";

pub(crate) fn read_event(r: &Row<'_>) -> Result<AuditEvent> {
    Ok(AuditEvent {
        id: r.id_col(0, EventId::from_uuid)?,
        tenant_id: r.id_col(1, TenantId::from_uuid)?,
        user_id: r.opt_id_col(2, UserId::from_uuid)?,
        kind: r.code_col(3)?,
        status: r.code_col(4)?,
        factor: r.opt_code_col(5)?,
        ip: r.opt_code_col(6)?,
        user_agent: r.col(7)?,
        at: r.time_col(8)?,
        detail: r.opt_code_col(9)?,
    })
}

/// Columns of `cs_user_factors` that [`read_versioned_factor`] decodes.
pub(crate) const USER_FACTOR_COLS: &str = "config, version";

pub(crate) fn read_versioned_factor(r: &Row<'_>) -> Result<Versioned<FactorCredential>> {
    Ok(Versioned {
        value: r.json_col(0)?,
        version: r.u64_col(1, "negative version")?,
    })
}

/// Decode a JSON configuration in the first column (tenant factors).
pub(crate) fn read_json<T: DeserializeOwned>(r: &Row<'_>) -> Result<T> {
    r.json_col(0)
}

/// Columns of the method tables that [`read_method`] decodes.
pub(crate) const METHOD_COLS: &str = "method, enabled";

pub(crate) fn read_method(r: &Row<'_>) -> Result<MethodRecord> {
    Ok(MethodRecord {
        method: r.json_col(0)?,
        enabled: r.col(1)?,
    })
}

pub(crate) const FLOW_COLS: &str =
    "state, version, key, tenant_id, user_id, created_at, expires_at";

pub(crate) fn read_flow(r: &Row<'_>) -> Result<Versioned<FlowRecord>> {
    let key: String = r.col(2)?;
    Ok(Versioned {
        value: FlowRecord {
            key: TokenHash::from_hex(&key)
                .ok_or_else(|| SqliteError::Corrupt("bad flow key".into()))?,
            tenant_id: r.id_col(3, TenantId::from_uuid)?,
            user_id: r.opt_id_col(4, UserId::from_uuid)?,
            state: r.json_col(0)?,
            created_at: r.time_col(5)?,
            expires_at: r.time_col(6)?,
        },
        version: r.u64_col(1, "negative version")?,
    })
}

pub(crate) const SESSION_COLS: &str = "key, id, tenant_id, user_id, auth, ip, user_agent, \
                                       created_at, last_seen_at, expires_at, absolute_expires_at, \
                                       idle_timeout, renew_within";

pub(crate) fn read_session(r: &Row<'_>) -> Result<SessionRecord> {
    Ok(SessionRecord {
        key: r.hash_col(0)?,
        id: r.id_col(1, SessionId::from_uuid)?,
        tenant_id: r.id_col(2, TenantId::from_uuid)?,
        user_id: r.id_col(3, UserId::from_uuid)?,
        auth: r.json_col(4)?,
        ip: r.opt_code_col(5)?,
        user_agent: r.col(6)?,
        created_at: r.time_col(7)?,
        last_seen_at: r.time_col(8)?,
        expires_at: r.time_col(9)?,
        absolute_expires_at: r.time_col(10)?,
        idle_timeout: r.duration_col(11)?,
        renew_within: r.duration_col(12)?,
    })
}

pub(crate) const FAMILY_COLS: &str = "id, tenant_id, user_id, session_id, current, previous, \
                                      generation, rotated_at, created_at, expires_at, revoked_at, \
                                      reuse_grace";

pub(crate) fn read_family(r: &Row<'_>) -> Result<RefreshFamily> {
    Ok(RefreshFamily {
        id: r.id_col(0, FamilyId::from_uuid)?,
        tenant_id: r.id_col(1, TenantId::from_uuid)?,
        user_id: r.id_col(2, UserId::from_uuid)?,
        session_id: r.id_col(3, SessionId::from_uuid)?,
        current: r.hash_col(4)?,
        previous: r.col::<Option<String>>(5)?.map(|s| hash(&s)).transpose()?,
        generation: r.u64_col(6, "generation")?,
        rotated_at: r.opt_time_col(7)?,
        created_at: r.time_col(8)?,
        expires_at: r.time_col(9)?,
        revoked_at: r.opt_time_col(10)?,
        reuse_grace: r.duration_col(11)?,
    })
}

pub(crate) const KEY_COLS: &str =
    "tenant_id, kid, private_key, public_key, created_at, retired_at, verify_until, algorithm";

pub(crate) fn read_key(r: &Row<'_>) -> Result<SigningKeyRecord> {
    let algorithm: String = r.col(7)?;
    Ok(SigningKeyRecord {
        tenant_id: r.id_col(0, TenantId::from_uuid)?,
        kid: r.col(1)?,
        algorithm: algorithm
            .parse::<SigningAlgorithm>()
            .map_err(|e| SqliteError::Corrupt(format!("signing key algorithm: {e}")))?,
        private_key: r.col(2)?,
        public_key: r.col(3)?,
        created_at: r.time_col(4)?,
        retired_at: r.opt_time_col(5)?,
        verify_until: r.opt_time_col(6)?,
    })
}

pub(crate) const POLICY_COLS: &str = "tenant_id, schema, policies, version, updated_at, links";

pub(crate) fn read_policy(r: &Row<'_>) -> Result<PolicyDocument> {
    Ok(PolicyDocument {
        tenant_id: r.id_col(0, TenantId::from_uuid)?,
        schema: r.col(1)?,
        policies: r.col(2)?,
        version: r.u64_col(3, "negative version")?,
        updated_at: r.time_col(4)?,
        links: serde_json::from_str(&r.col::<String>(5)?)
            .map_err(|e| SqliteError::Corrupt(format!("policy links: {e}")))?,
    })
}

/// The JSON text of a document's template links.
pub(crate) fn links_json(doc: &PolicyDocument) -> Result<String> {
    serde_json::to_string(&doc.links)
        .map_err(|e| SqliteError::Corrupt(format!("policy links: {e}")))
}

/// Decode a service, role or permission name in the first column.
pub(crate) fn read_name(r: &Row<'_>) -> Result<RbacName> {
    r.name_col(0)
}

/// Decode a user id in the first column.
pub(crate) fn read_user_id(r: &Row<'_>) -> Result<UserId> {
    r.id_col(0, UserId::from_uuid)
}

/// Columns of `cs_rbac_role_grants` that [`read_role_grant`] decodes.
pub(crate) const ROLE_GRANT_COLS: &str = "role, permission, service";

pub(crate) fn read_role_grant(r: &Row<'_>) -> Result<RoleGrant> {
    Ok(RoleGrant {
        role: r.name_col(0)?,
        permission: r.name_col(1)?,
        service: r.opt_name_col(2)?,
    })
}

/// Columns of `cs_rbac_assignments` that [`read_assignment`] decodes.
pub(crate) const ASSIGNMENT_COLS: &str = "user_id, role, service";

pub(crate) fn read_assignment(r: &Row<'_>) -> Result<RoleAssignment> {
    Ok(RoleAssignment {
        user: r.id_col(0, UserId::from_uuid)?,
        role: r.name_col(1)?,
        service: r.name_col(2)?,
    })
}

/// Columns of `cs_rbac_direct_grants` that [`read_direct_grant`] decodes.
pub(crate) const DIRECT_GRANT_COLS: &str = "user_id, permission, service";

pub(crate) fn read_direct_grant(r: &Row<'_>) -> Result<DirectGrant> {
    Ok(DirectGrant {
        user: r.id_col(0, UserId::from_uuid)?,
        permission: r.name_col(1)?,
        service: r.name_col(2)?,
    })
}

/// Decode a version (RBAC) in the first column.
pub(crate) fn read_version(r: &Row<'_>) -> Result<u64> {
    r.u64_col(0, "negative version")
}

/// Decode the policy document version (NULL: no document) and the RBAC
/// version (NULL: never changed, 0).
pub(crate) fn read_authz_versions(r: &Row<'_>) -> Result<AuthzVersions> {
    let policies = r
        .col::<Option<i64>>(0)?
        .map(|v| u64::try_from(v).map_err(|_| SqliteError::Corrupt("negative version".into())))
        .transpose()?;
    let rbac = match r.col::<Option<i64>>(1)? {
        Some(v) => u64::try_from(v).map_err(|_| SqliteError::Corrupt("negative version".into()))?,
        None => 0,
    };
    Ok(AuthzVersions { policies, rbac })
}

/// Columns of `cs_verifications` that [`read_verification`] decodes.
pub(crate) const VERIFICATION_COLS: &str = "tenant_id, user_id, purpose, secret_hash, payload, \
                                            created_at, expires_at, sends, failures";

pub(crate) fn read_verification(r: &Row<'_>) -> Result<Verification> {
    Ok(Verification {
        tenant_id: r.id_col(0, TenantId::from_uuid)?,
        user_id: r.id_col(1, UserId::from_uuid)?,
        purpose: r.code_col(2)?,
        secret_hash: r.col(3)?,
        payload: r.col(4)?,
        created_at: r.time_col(5)?,
        expires_at: r.time_col(6)?,
        sends: r.u32_col(7, "verification sends")?,
        failures: r.u32_col(8, "verification failures")?,
    })
}

/// Columns of `cs_linked_identities` that [`read_linked_identity`] decodes.
pub(crate) const LINK_COLS: &str = "tenant_id, user_id, issuer, subject, email, linked_at";

pub(crate) fn read_linked_identity(r: &Row<'_>) -> Result<LinkedIdentity> {
    Ok(LinkedIdentity {
        tenant_id: r.id_col(0, TenantId::from_uuid)?,
        user_id: r.id_col(1, UserId::from_uuid)?,
        issuer: r.col(2)?,
        subject: r.col(3)?,
        email: r.opt_email_col(4)?,
        linked_at: r.time_col(5)?,
    })
}

/// Columns of `cs_rate_limits` that [`read_rate_limit`] decodes.
pub(crate) const RATE_LIMIT_COLS: &str = "window_start, window_end, hits";

pub(crate) fn read_rate_limit(r: &Row<'_>) -> Result<RateLimitWindow> {
    Ok(RateLimitWindow {
        start: r.time_col(0)?,
        end: r.time_col(1)?,
        count: r.u32_col(2, "rate limit hits")?,
    })
}

#[cfg(test)]
mod tests {
    use countersign_core::TokenHash;

    use super::{hash, hex};

    /// The fast hex codec agrees with `TokenHash`'s own, both ways, and
    /// refuses what `from_hex` refuses.
    #[test]
    fn hex_agrees_with_token_hash() {
        for seed in 0..=255u8 {
            let mut bytes = [0u8; 32];
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = seed
                    .wrapping_mul(31)
                    .wrapping_add(u8::try_from(i).unwrap_or(0) * 7);
            }
            let h = TokenHash::from_bytes(bytes);
            assert_eq!(hex(&h), h.to_hex());
            assert_eq!(hash(&h.to_hex()).ok(), Some(h));
            assert_eq!(hash(&h.to_hex().to_uppercase()).ok(), Some(h));
        }
        for bad in ["", "0", &"g".repeat(64), &"0".repeat(63), &"0".repeat(65)] {
            assert!(hash(bad).is_err(), "{bad}");
            assert!(TokenHash::from_hex(bad).is_none(), "{bad}");
        }
    }
}
