//! Deterministic builders for tenants, users, credentials and events.

use std::net::{IpAddr, Ipv4Addr};

use chrono::{DateTime, Duration, Utc};
use countersign_core::{
    AccountState, AuditEvent, AuditKind, AuditStatus, AuthMethod, ClientInfo, EmailAddress, Env,
    FactorKind, Identifier, ManualClock, PasswordCredential, PasswordSettings, Tenant,
    TenantFactor, TenantId, TenantPolicy, TenantProvision, TenantSlug, User, UserFactor, UserId,
};

/// A fixed starting instant: 2026-01-01T00:00:00Z.
pub fn t0() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_767_225_600, 0).expect("valid timestamp")
}

/// `t0()` plus `secs` seconds.
pub fn at(secs: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(secs)
}

/// A deterministic source of fixtures: ids come from a seeded environment,
/// so every run builds the same objects.
#[derive(Debug, Clone)]
pub struct Fx {
    /// The environment ids and events are drawn from.
    pub env: Env,
    /// Its clock.
    pub clock: ManualClock,
}

impl Default for Fx {
    fn default() -> Self {
        Self::new(1)
    }
}

impl Fx {
    /// Fixtures drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        let (env, clock) = Env::manual(seed);
        Self { env, clock }
    }

    /// A fresh tenant id.
    pub fn tenant_id(&self) -> TenantId {
        TenantId::generate(&self.env).expect("id")
    }

    /// A fresh user id.
    pub fn user_id(&self) -> UserId {
        UserId::generate(&self.env).expect("id")
    }

    /// A tenant row with `slug`.
    pub fn tenant_row(&self, slug: &str) -> Tenant {
        Tenant {
            id: self.tenant_id(),
            slug: TenantSlug::parse(slug).expect("slug"),
            name: format!("Tenant {slug}"),
            policy: TenantPolicy::default(),
            created_at: t0(),
        }
    }

    /// A password-only tenant with `slug`, ready to provision.
    pub fn tenant(&self, slug: &str) -> TenantProvision {
        Self::provision(self.tenant_row(slug))
    }

    /// Provisioning for an existing tenant row: password factor, one
    /// `password` method.
    pub fn provision(tenant: Tenant) -> TenantProvision {
        TenantProvision::new(
            tenant,
            vec![TenantFactor::Password(PasswordSettings::default())],
            vec![password_method()],
        )
        .expect("valid provisioning")
    }

    /// An active user of `tenant` with `identifier` and every optional
    /// field set.
    pub fn user(&self, tenant: TenantId, identifier: &str) -> User {
        User {
            id: self.user_id(),
            tenant_id: tenant,
            identifier: Identifier::parse(identifier).expect("identifier"),
            display_name: Some(format!("Name of {identifier}")),
            email: Some(EmailAddress::parse(&format!("{identifier}@example.org")).expect("email")),
            state: AccountState::Active,
            state_reason: None,
            created_at: at(1),
            updated_at: at(1),
            last_login_at: None,
        }
    }

    /// An audit event of `tenant` at `when`.
    pub fn event(
        &self,
        tenant: TenantId,
        user: Option<UserId>,
        kind: AuditKind,
        status: AuditStatus,
        when: DateTime<Utc>,
    ) -> AuditEvent {
        let client = ClientInfo::new(
            Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))),
            Some("testkit/1.0"),
        );
        let mut e = AuditEvent::new(&self.env, tenant, user, kind, status, &client).expect("event");
        e.at = when;
        e
    }
}

/// The `password` method: one required password step.
pub fn password_method() -> AuthMethod {
    AuthMethod::sequence("password", &[FactorKind::Password]).expect("method")
}

/// A method named `name` of one required password step.
pub fn method(name: &str) -> AuthMethod {
    AuthMethod::sequence(name, &[FactorKind::Password]).expect("method")
}

/// A password credential holding `phc` (any string: stores do not parse it).
pub fn password(phc: &str) -> UserFactor {
    UserFactor::Password(PasswordCredential {
        phc: phc.to_owned(),
        changed_at: t0(),
    })
}

/// A login flow record of `tenant` (and `user`), awaiting its first factor,
/// with a fresh key, alive from `t0()` for `ttl_secs`.
pub fn flow(
    fx: &Fx,
    tenant: TenantId,
    user: Option<UserId>,
    ttl_secs: i64,
) -> countersign_core::FlowRecord {
    use countersign_core::flow::Awaiting;
    use countersign_core::{FlowRecord, FlowState, LoginState, TokenKind};
    let (_, key) = TokenKind::FLOW.issue(&fx.env).expect("token");
    FlowRecord {
        key,
        tenant_id: tenant,
        user_id: user,
        state: FlowState::Login(LoginState::AwaitingFactor(Awaiting {
            user,
            discoverable: false,
            candidates: vec![password_method()],
            passed: Vec::new(),
            failures: 0,
            email_code: None,
            passkey: None,
        })),
        created_at: t0(),
        expires_at: t0() + Duration::seconds(ttl_secs),
    }
}

/// A one-factor (password) authentication of `user` at `at`.
pub fn authentication(
    tenant: TenantId,
    user: UserId,
    at: DateTime<Utc>,
) -> countersign_core::Authentication {
    use countersign_core::flow::PassedFactor;
    countersign_core::Authentication {
        tenant_id: tenant,
        user_id: user,
        method: countersign_core::MethodName::parse("password").expect("name"),
        factors: vec![PassedFactor {
            kind: FactorKind::Password,
            at,
        }],
        at,
    }
}

/// A session of `user` created at `t0()`: idle 30 minutes (renewed within
/// 15), absolute 12 hours, with a password authentication.
pub fn session(fx: &Fx, tenant: TenantId, user: UserId) -> countersign_core::SessionRecord {
    use countersign_core::session::SESSION_TOKEN;
    use countersign_core::{SessionId, SessionRecord};
    let (_, key) = SESSION_TOKEN.issue(&fx.env).expect("token");
    SessionRecord {
        id: SessionId::generate(&fx.env).expect("id"),
        key,
        tenant_id: tenant,
        user_id: user,
        auth: authentication(tenant, user, t0()),
        ip: Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9))),
        user_agent: Some("testkit/1.0".into()),
        created_at: t0(),
        last_seen_at: t0(),
        expires_at: t0() + Duration::minutes(30),
        absolute_expires_at: t0() + Duration::hours(12),
        idle_timeout: std::time::Duration::from_secs(30 * 60),
        renew_within: std::time::Duration::from_secs(15 * 60),
    }
}

/// A refresh family for `session`, expiring with it, strict reuse detection.
pub fn family(
    fx: &Fx,
    session: &countersign_core::SessionRecord,
) -> countersign_core::RefreshFamily {
    use countersign_core::session::REFRESH_TOKEN;
    use countersign_core::{FamilyId, RefreshFamily};
    let (_, current) = REFRESH_TOKEN.issue(&fx.env).expect("token");
    RefreshFamily {
        id: FamilyId::generate(&fx.env).expect("id"),
        tenant_id: session.tenant_id,
        user_id: session.user_id,
        session_id: session.id,
        current,
        previous: None,
        generation: 0,
        rotated_at: None,
        created_at: session.created_at,
        expires_at: session.absolute_expires_at,
        revoked_at: None,
        reuse_grace: std::time::Duration::ZERO,
    }
}

/// A fresh token hash (for a refresh rotation's new token).
pub fn token_hash(fx: &Fx) -> countersign_core::TokenHash {
    countersign_core::session::REFRESH_TOKEN
        .issue(&fx.env)
        .expect("token")
        .1
}

/// A signing key of `tenant` created at `when`.
pub fn signing_key(
    fx: &Fx,
    tenant: TenantId,
    when: DateTime<Utc>,
) -> countersign_core::SigningKeyRecord {
    let mut k = countersign_core::jwt::new_signing_key(&fx.env, tenant).expect("key");
    k.created_at = when;
    k
}
