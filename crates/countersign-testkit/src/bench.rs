//! The provisioning every backend's session and authorization benchmarks
//! share.
//!
//! A session benchmark needs a runtime, a tenant, some users and many
//! issued sessions with their tokens; only the store differs. A backend's
//! bench opens its store in [`SessionBench::new`] and measures against the
//! floors only it knows:
//!
//! ```text
//! static F: OnceLock<SessionBench<MyStore>> = OnceLock::new();
//! let f = F.get_or_init(|| SessionBench::new(|| MyStore::open(..), 1, 10_000));
//! f.validate_first(1_000); // the service path
//! // f.sessions.keys(), f.sessions.store: for the backend's own floors
//! ```

use std::future::Future;

use countersign_core::authz::EntityUid;
use countersign_core::session::SESSION_TOKEN;
use countersign_core::{
    AccountState, Argon2Params, AuthRecord, AuthnService, AuthzService, ClientInfo, Env, NewTenant,
    NewUser, PasswordHasher, RbacChange, RbacKind, RbacName, RbacSnapshot, Resource,
    RoleAssignment, RoleGrant, SecretToken, SessionService, Store, TenantId, UserId,
};

/// The issuer the benchmarks' [`SessionService`] signs access tokens with.
pub const ISSUER: &str = "https://auth.example.com";

/// The runtime the benchmarks share: multi-threaded with 2 workers (the
/// cores a small deployment has), all drivers enabled.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("bench runtime")
}

/// A tenant, its users and the sessions issued to them, ready to measure.
pub struct BenchSessions<S> {
    /// The store everything lives in.
    pub store: S,
    /// The session service over the store ([`ISSUER`], system clock).
    pub service: SessionService<S>,
    /// The login service over the same store (test-strength password
    /// hashing), for benches that also sign users in.
    pub authn: AuthnService<S>,
    /// The tenant everything lives in (slug `bench`, password only).
    pub tenant: TenantId,
    /// The users, identifiers `user0`, `user1`, ... (active, no password).
    pub users: Vec<UserId>,
    /// Session `i`'s token; session `i` belongs to `users[i % users.len()]`.
    pub tokens: Vec<SecretToken>,
    /// Session `i`'s refresh token (the default policy issues them).
    pub refresh: Vec<SecretToken>,
}

impl<S> BenchSessions<S> {
    /// Each session token's store key in hex (the `key` column of the SQL
    /// backends), in the order of [`tokens`](Self::tokens), for floor
    /// benchmarks that look rows up directly.
    pub fn keys(&self) -> Vec<String> {
        self.tokens
            .iter()
            .map(|t| {
                SESSION_TOKEN
                    .parse(t.expose())
                    .expect("session token")
                    .to_hex()
            })
            .collect()
    }
}

/// A session benchmark's fixture: the [`runtime`] and the sessions
/// provisioned on it.
pub struct SessionBench<S> {
    /// The runtime every measured call runs on.
    pub rt: tokio::runtime::Runtime,
    /// The store, its tenant and the issued sessions.
    pub sessions: BenchSessions<S>,
}

impl<S> SessionBench<S>
where
    S: Store,
{
    /// Start the [`runtime`], open the store on it with `open`, and issue
    /// `sessions` sessions to `users` users as [`issue_sessions`] does.
    pub fn new<F>(open: impl FnOnce() -> F, users: usize, sessions: usize) -> Self
    where
        F: Future<Output = S>,
    {
        let rt = runtime();
        let sessions = rt.block_on(async { issue_sessions(open().await, users, sessions).await });
        Self { rt, sessions }
    }

    /// Validate the first `n` session tokens one after another through
    /// `SessionService::validate` on the runtime, each result kept from the
    /// optimiser: what every backend's `service_validate` bench measures.
    pub fn validate_first(&self, n: usize) {
        let s = &self.sessions;
        self.rt.block_on(async {
            for t in s.tokens.iter().take(n) {
                std::hint::black_box(s.service.validate(t.expose()).await.expect("valid"));
            }
        });
    }
}

/// Provision a password-only tenant with `users` active users on `store`
/// and issue `sessions` sessions round-robin over them, each with a
/// one-factor (password) authentication at the current time. Panics on any
/// store error (a benchmark cannot go on without its fixture).
pub async fn issue_sessions<S>(store: S, users: usize, sessions: usize) -> BenchSessions<S>
where
    S: Store,
{
    assert!(users > 0, "at least one user");
    let env = Env::system();
    let hasher = PasswordHasher::new(Argon2Params::INSECURE_TEST, 1).expect("hasher");
    let authn = AuthnService::new(store.clone(), env.clone(), hasher);
    let service = SessionService::new(store.clone(), env.clone(), ISSUER);
    let tenant = authn
        .provision_tenant(NewTenant::password_only("bench", "Bench").expect("tenant spec"))
        .await
        .expect("tenant")
        .id;
    let mut ids = Vec::with_capacity(users);
    for i in 0..users {
        let new = NewUser {
            identifier: &format!("user{i}"),
            state: Some(AccountState::Active),
            ..NewUser::default()
        };
        let user = authn
            .register_user(tenant, new, &ClientInfo::default())
            .await
            .expect("user");
        ids.push(user.id);
    }
    let auths: Vec<_> = ids
        .iter()
        .map(|&u| crate::fixtures::authentication(tenant, u, env.now()))
        .collect();
    let mut tokens = Vec::with_capacity(sessions);
    let mut refresh = Vec::with_capacity(sessions);
    for i in 0..sessions {
        let auth = auths.get(i % users).expect("an authentication per user");
        let issued = service
            .issue(auth, &ClientInfo::default())
            .await
            .expect("session");
        tokens.push(issued.session_token);
        refresh.push(
            issued
                .refresh_token
                .expect("the default policy issues refresh tokens"),
        );
    }
    BenchSessions {
        store,
        service,
        authn,
        tenant,
        users: ids,
        tokens,
        refresh,
    }
}

/// Provision a password-only tenant `slug` through `authn`, register an
/// active user `user` without a password, and return a one-factor
/// authentication of that user at the service's current time.
pub async fn provisioned_authentication<S>(
    authn: &AuthnService<S>,
    slug: &str,
) -> countersign_core::Authentication
where
    S: Store,
{
    let t = authn
        .provision_tenant(NewTenant::password_only(slug, slug).expect("tenant spec"))
        .await
        .expect("tenant");
    let new = NewUser {
        identifier: "user",
        state: Some(AccountState::Active),
        ..NewUser::default()
    };
    let u = authn
        .register_user(t.id, new, &ClientInfo::default())
        .await
        .expect("user");
    crate::fixtures::authentication(t.id, u.id, authn.env().now())
}

/// A tenant with RBAC grants in a store, an [`AuthzService`] over it and
/// one allowed request per user, ready to measure decisions.
pub struct AuthzBench<S> {
    /// The service, its cache warm for every user.
    pub authz: AuthzService<S>,
    /// The tenant.
    pub tenant: TenantId,
    /// One allowed request per user: who, the action, the service.
    pub requests: Vec<(AuthRecord, EntityUid, Resource)>,
    /// The tenant's data as stored, for a floor built from the same data.
    pub snapshot: RbacSnapshot,
}

/// The schema of [`provision_rbac`]'s tenants: ten actions `p0`..`p9` on
/// services.
pub const RBAC_BENCH_SCHEMA: &str = r#"
namespace App {
  action p0, p1, p2, p3, p4, p5, p6, p7, p8, p9
    appliesTo { principal: Countersign::User, resource: Countersign::Service };
}
"#;

/// Five ABAC policies beside the grants in [`provision_rbac`]'s tenants.
pub const RBAC_BENCH_POLICIES: &str = r#"
@id("suspended") forbid(principal, action, resource) when { principal.state == "suspended" };
@id("premium-p9") permit(principal, action == App::Action::"p9", resource)
  when { principal has tier && principal.tier == "premium" };
@id("fresh-p8") forbid(principal, action == App::Action::"p8", resource)
  unless { context.authentication.age < 3600 };
@id("mfa-p7") forbid(principal, action == App::Action::"p7", resource)
  unless { context.authentication.mfa };
@id("eng-p6") permit(principal, action == App::Action::"p6", resource)
  when { principal.hasTag("department") && principal.getTag("department") == "eng" };
"#;

/// Provision a tenant with `grants` RBAC grants on `store` through the
/// store's administration: ten services and ten permissions, `grants / 2`
/// role grants (five per role, in every service) and `grants / 2` users
/// holding one role each in one service. Every user's request (`p0` on the
/// service it holds its role in) is allowed; the service is warmed with
/// one decision per user. Panics on any error (a benchmark cannot go on
/// without its fixture).
pub async fn provision_rbac<S: Store>(store: S, grants: usize) -> AuthzBench<S> {
    const PER_ROLE: usize = 5;
    let env = Env::system();
    let hasher = PasswordHasher::new(Argon2Params::INSECURE_TEST, 1).expect("hasher");
    let authn = AuthnService::new(store.clone(), env.clone(), hasher);
    let tenant = authn
        .provision_tenant(NewTenant::password_only("rbac", "Rbac").expect("tenant spec"))
        .await
        .expect("tenant")
        .id;
    let authz = AuthzService::new(store.clone(), env.clone());
    let client = ClientInfo::default();
    authz
        .save_model(
            tenant,
            RBAC_BENCH_SCHEMA,
            RBAC_BENCH_POLICIES,
            None,
            &client,
        )
        .await
        .expect("model");
    let name = |s: String| RbacName::new(s).expect("name");
    let half = (grants / 2).max(1);
    let roles = (half / PER_ROLE).max(1);
    let mut changes = Vec::new();
    for (kind, prefix, n) in [
        (RbacKind::Service, "s", 10),
        (RbacKind::Permission, "p", 10),
        (RbacKind::Role, "r", roles),
    ] {
        changes.extend((0..n).map(|i| RbacChange::Create {
            kind,
            name: name(format!("{prefix}{i}")),
        }));
    }
    // Role r is granted p0 (its first grant) and then others, everywhere.
    changes.extend((0..half).map(|i| {
        RbacChange::Grant(RoleGrant {
            role: name(format!("r{}", i % roles)),
            permission: name(format!("p{}", (i / roles) % 10)),
            service: None,
        })
    }));
    let mut seen = std::collections::HashSet::new();
    changes.retain(|c| match c {
        RbacChange::Grant(g) => seen.insert(g.clone()),
        _ => true,
    });
    for c in &changes {
        store
            .apply_rbac_change(tenant, c, None)
            .await
            .expect("rbac change");
    }
    let mut requests = Vec::with_capacity(half);
    for u in 0..half {
        let new = NewUser {
            identifier: &format!("user{u}"),
            state: Some(AccountState::Active),
            ..NewUser::default()
        };
        let user = authn
            .register_user(tenant, new, &client)
            .await
            .expect("user");
        let service = name(format!("s{}", u % 10));
        let assign = RbacChange::Assign(RoleAssignment {
            user: user.id,
            role: name(format!("r{}", u % roles)),
            service: service.clone(),
        });
        store
            .apply_rbac_change(tenant, &assign, None)
            .await
            .expect("assignment");
        let auth = crate::fixtures::authentication(tenant, user.id, env.now());
        let resource = Resource {
            tenant,
            uid: format!("Countersign::Service::\"{service}\"")
                .parse()
                .expect("uid"),
        };
        let action = "App::Action::\"p0\"".parse().expect("uid");
        requests.push((auth.record().clone(), action, resource));
    }
    for (who, action, resource) in &requests {
        let d = authz
            .decide(who, action, resource, Default::default())
            .await
            .expect("decision");
        assert!(d.allowed, "{d:?}");
    }
    let snapshot = store.rbac_snapshot(tenant).await.expect("snapshot");
    AuthzBench {
        authz,
        tenant,
        requests,
        snapshot,
    }
}
