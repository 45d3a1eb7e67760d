//! Durability under crashes: a writer that registers users, signs them in
//! and refreshes their sessions until it is killed, and the invariants that
//! a torn write would break.
//!
//! A backend's crash test runs [`write`](fn@write) (unbounded) in a child process
//! (its own test binary, re-executed), kills it with SIGKILL at random
//! moments, and then checks [`durability_violations`] on the store the
//! child wrote: what belongs together (a user and its `user.registered`
//! event and first password-history row; a session and its
//! `session.started` event) must have committed together.
//!
//! ```text
//! // in the backend's integration tests
//! #[test]
//! fn writer_child() {          // a short bounded run, or the child itself
//!     countersign_testkit::crash::child_or_bounded(|| open_store(), CRASH_ENV);
//! }
//! #[test]
//! fn crashes_tear_nothing_apart() {
//!     countersign_testkit::crash::kill_repeatedly("crash::writer_child", CRASH_ENV, &db, 20);
//!     // then open the store and assert durability_violations(..).is_empty()
//! }
//! ```

use std::collections::HashMap;
use std::time::Duration;

use countersign_core::{
    AccountState, Argon2Params, AuditFilter, AuditKind, AuditQuery, AuthnService, ClientInfo, Env,
    FactorKind, FactorResponse, LoginStatus, NewTenant, NewUser, PasswordHasher, SessionService,
    Store, TenantId, TenantSlug,
};

/// How many writers the child runs at once.
const WRITERS: usize = 8;

/// The tenant the writer works in.
pub const TENANT: &str = "crash";
const PASSWORD: &str = "correct horse battery staple";

/// The writer's tenant, provisioned on first use (provisioning is atomic,
/// so a kill mid-way leaves either no tenant or the whole tenant).
async fn tenant<S: Store>(authn: &AuthnService<S>) -> TenantId {
    let slug = TenantSlug::parse(TENANT).expect("slug");
    if let Some(t) = authn.store().find_tenant(&slug).await.expect("find tenant") {
        return t.id;
    }
    let spec = NewTenant::password_only(TENANT, "Crash test").expect("tenant spec");
    match authn.provision_tenant(spec).await {
        Ok(t) => t.id,
        // Another writer won the race (or a killed one got this far).
        Err(_) => {
            authn
                .store()
                .find_tenant(&slug)
                .await
                .expect("find tenant")
                .expect("tenant exists")
                .id
        }
    }
}

/// Register, sign in, issue a session and refresh it, `rounds` times
/// (`None`: until the process is killed). Each round uses a fresh user.
pub async fn write<S: Store>(store: S, rounds: Option<u64>) {
    let env = Env::system();
    let hasher = PasswordHasher::new(Argon2Params::INSECURE_TEST, 2).expect("hasher");
    let authn = AuthnService::new(store.clone(), env.clone(), hasher);
    let sessions = SessionService::new(store, env.clone(), "https://crash.example");
    let t = tenant(&authn).await;
    let client = ClientInfo::default();
    let run: [u8; 6] = env.random_bytes().expect("random");
    let run: String = run.iter().map(|b| format!("{b:02x}")).collect();
    let mut i = 0u64;
    while rounds.is_none_or(|n| i < n) {
        let identifier = format!("u{run}-{i}");
        let user = NewUser {
            identifier: &identifier,
            password: Some(PASSWORD),
            state: Some(AccountState::Active),
            ..NewUser::default()
        };
        authn
            .register_user(t, user, &client)
            .await
            .expect("register");
        let (flow, _) = authn
            .begin_login(t, &identifier, None, &client)
            .await
            .expect("begin");
        let step = authn
            .submit(
                t,
                flow.expose(),
                FactorResponse::Password(PASSWORD),
                &client,
            )
            .await
            .expect("submit");
        let LoginStatus::Authenticated(auth) = step.status else {
            panic!("password-only login did not complete: {:?}", step.status);
        };
        let issued = sessions.issue(&auth, &client).await.expect("issue");
        if let Some(r) = issued.refresh_token {
            sessions
                .refresh(r.expose(), &client)
                .await
                .expect("refresh");
        }
        i += 1;
    }
}

/// What a torn write left behind in the writer's tenant, one line per
/// violation (empty: every change is whole).
pub async fn durability_violations<S: Store + AuditQuery>(store: &S) -> Vec<String> {
    let slug = TenantSlug::parse(TENANT).expect("slug");
    let Some(t) = store.find_tenant(&slug).await.expect("find tenant") else {
        return vec!["the writer never provisioned its tenant".into()];
    };
    // Every event of the tenant, by kind and user (paged by time).
    let mut registered: HashMap<_, u64> = HashMap::new();
    let mut started: HashMap<_, u64> = HashMap::new();
    let mut until = None;
    loop {
        let filter = AuditFilter {
            until,
            limit: Some(AuditFilter::MAX_LIMIT),
            ..AuditFilter::default()
        };
        let page = store.query_events(t.id, &filter).await.expect("events");
        let Some(last) = page.last() else { break };
        until = Some(last.at);
        let full = page.len() == AuditFilter::MAX_LIMIT as usize;
        for e in &page {
            let Some(u) = e.user_id else { continue };
            match e.kind {
                AuditKind::UserRegistered => *registered.entry(u).or_default() += 1,
                AuditKind::SessionStarted => *started.entry(u).or_default() += 1,
                _ => {}
            }
        }
        if !full {
            break;
        }
    }
    let mut out = Vec::new();
    let mut after = None;
    let now = Env::system().now();
    loop {
        let users = store.list_users(t.id, after, 500).await.expect("users");
        let Some(last) = users.last() else { break };
        after = Some(last.id);
        for u in &users {
            if registered.get(&u.id).copied().unwrap_or(0) == 0 {
                out.push(format!("user {} has no user.registered event", u.id));
            }
            let has_password = store
                .user_factor(t.id, u.id, FactorKind::Password)
                .await
                .expect("credential")
                .is_some();
            let history = store
                .password_history(t.id, u.id, 10)
                .await
                .expect("history");
            if has_password && history.is_empty() {
                out.push(format!("user {} has a password but no history row", u.id));
            }
            let live = store
                .user_sessions(t.id, u.id, now)
                .await
                .expect("sessions")
                .len() as u64;
            let events = started.get(&u.id).copied().unwrap_or(0);
            if live > events {
                out.push(format!(
                    "user {} has {live} sessions but {events} session.started events",
                    u.id
                ));
            }
        }
    }
    out
}

/// In the child (the environment variable `env_var` is set): write until
/// killed. Otherwise a short bounded run on a store from `open`, checked
/// for durability violations: the writer itself works and leaves nothing
/// torn when nobody kills it.
pub fn child_or_bounded<S, F, Fut>(open: F, env_var: &str)
where
    S: Store + AuditQuery,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = S>,
{
    let child = std::env::var_os(env_var).is_some();
    crate::run(async move {
        let store = open().await;
        if child {
            // Several writers at once: at any kill, several changes are in
            // flight, so a torn one is likely to be caught mid-way.
            let writers: Vec<_> = (0..WRITERS)
                .map(|_| tokio::spawn(write(store.clone(), None)))
                .collect();
            for w in writers {
                let _ = w.await;
            }
        } else {
            write(store.clone(), Some(3)).await;
            let violations = durability_violations(&store).await;
            assert!(violations.is_empty(), "{violations:#?}");
        }
    });
}

/// Start the current test binary as a writer child (`test_name`, with
/// `env_var` = `env_value`) `kills` times, each time killing it with
/// SIGKILL after a pseudo-random 150 to 750 ms (seeded: reproducible).
/// Returns how many children were killed while still running.
pub fn kill_repeatedly(test_name: &str, env_var: &str, env_value: &str, kills: u32) -> u32 {
    let exe = std::env::current_exe().expect("test binary");
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut killed = 0;
    for _ in 0..kills {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(150 + seed % 600);
        let mut child = std::process::Command::new(&exe)
            .args([test_name, "--exact", "--test-threads=1", "--nocapture"])
            .env(env_var, env_value)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn writer");
        std::thread::sleep(delay);
        if child.try_wait().expect("child status").is_none() {
            killed += 1;
        }
        // SIGKILL on Unix: no destructor, no flush, no commit.
        let _ = child.kill();
        let _ = child.wait();
    }
    killed
}
