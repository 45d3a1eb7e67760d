//! Sessions through `SessionService`: validation, renewal, expiry,
//! refresh rotation and reuse, revocation, cleanup.

use chrono::Duration;
use countersign_core::{AccountState, AuditKind, Error, RefreshRefusal, SessionPolicy};

use super::{AuditLog, NoAudit, api_tokens, mfa_alice, set_sessions};
use crate::ConformanceStore;
use crate::fixtures::{PASSWORD, World, sign_in};

/// A session validates, renews near its idle deadline, ends when idle,
/// and ends at its absolute lifetime however active.
pub async fn sessions_validate_renew_and_expire<S: ConformanceStore>(s: S) {
    let (w, alice) = mfa_alice(&s, 30).await;
    let auth = sign_in(&w, &alice).await;
    let issued = w.sessions.issue(&auth, &w.client).await.unwrap();
    let token = issued.session_token.expose().to_owned();
    assert!(token.starts_with("css_"));
    let got = w.sessions.validate(&token).await.unwrap();
    assert_eq!(
        (got.id, got.user_id, got.auth.clone()),
        (issued.session.id, alice.id, auth.record().clone())
    );
    w.clock.advance(Duration::minutes(20));
    let renewed = w.sessions.validate(&token).await.unwrap();
    assert_eq!(
        renewed.expires_at,
        w.svc.env().now() + Duration::minutes(30)
    );
    w.clock.advance(Duration::minutes(31));
    assert!(
        matches!(
            w.sessions.validate(&token).await,
            Err(Error::SessionInvalid)
        ),
        "idle too long"
    );
    // Active all day: still ends at the absolute lifetime (12 h).
    let busy = sign_in(&w, &alice).await;
    let busy = w.sessions.issue(&busy, &w.client).await.unwrap();
    let busy_token = busy.session_token.expose().to_owned();
    for _ in 0..(12 * 3 - 1) {
        w.clock.advance(Duration::minutes(20));
        w.sessions.validate(&busy_token).await.unwrap();
    }
    w.clock.advance(Duration::minutes(20));
    assert!(matches!(
        w.sessions.validate(&busy_token).await,
        Err(Error::SessionInvalid)
    ));
}

/// Refresh tokens rotate; presenting a spent one revokes the whole login
/// (family and session) and is audited.
pub async fn refresh_reuse_revokes_the_login<S: ConformanceStore>(s: S) {
    refresh_reuse(s, NoAudit).await;
}

/// [`refresh_reuse_revokes_the_login`], its audit checks made
/// through `audit`.
pub(crate) async fn refresh_reuse<S: ConformanceStore>(s: S, audit: impl AuditLog<S>) {
    let (w, alice) = mfa_alice(&s, 31).await;
    let auth = sign_in(&w, &alice).await;
    let issued = w.sessions.issue(&auth, &w.client).await.unwrap();
    let first = issued.refresh_token.unwrap();
    let second = w
        .sessions
        .refresh(first.expose(), &w.client)
        .await
        .unwrap()
        .refresh_token;
    let third = w
        .sessions
        .refresh(second.expose(), &w.client)
        .await
        .unwrap()
        .refresh_token;
    assert!(matches!(
        w.sessions.refresh(first.expose(), &w.client).await,
        Err(Error::RefreshRefused(RefreshRefusal::Reused))
    ));
    assert!(matches!(
        w.sessions.refresh(third.expose(), &w.client).await,
        Err(Error::RefreshRefused(RefreshRefusal::Revoked))
    ));
    assert!(matches!(
        w.sessions.validate(issued.session_token.expose()).await,
        Err(Error::SessionInvalid)
    ));
    if let Some(reuse) = audit.of_kind(&w, AuditKind::RefreshReuse).await {
        assert_eq!(reuse.len(), 1);
        assert_eq!(reuse[0].user_id, Some(alice.id));
    }
}

/// 32 concurrent uses of one refresh token yield exactly one new pair.
pub async fn concurrent_refreshes_yield_one_pair<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 32).await;
    set_sessions(
        &w,
        SessionPolicy {
            refresh_reuse_grace: std::time::Duration::from_secs(5),
            ..api_tokens()
        },
    )
    .await;
    let alice = w.user("alice").await;
    let auth = sign_in(&w, &alice).await;
    let token = w
        .sessions
        .issue(&auth, &w.client)
        .await
        .unwrap()
        .refresh_token
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (svc, t, c) = (
            w.sessions.clone(),
            token.expose().to_owned(),
            w.client.clone(),
        );
        tasks.push(tokio::spawn(async move { svc.refresh(&t, &c).await }));
    }
    let mut pairs = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(r) => pairs.push(r),
            Err(Error::RefreshRefused(RefreshRefusal::Superseded)) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(pairs.len(), 1, "exactly one new pair");
    assert!(pairs[0].access_token.is_some());
    // The winner's token works; the race revoked nothing.
    w.sessions
        .refresh(pairs[0].refresh_token.expose(), &w.client)
        .await
        .unwrap();
}

/// Logout, logout everywhere, admin revocation, suspension, password
/// change and deletion end sessions at once.
pub async fn revocation_ends_sessions_at_once<S: ConformanceStore>(s: S) {
    let (w, alice) = mfa_alice(&s, 35).await;
    // A proof of login is good for one session: sign in for each.
    let issue = || async {
        let auth = sign_in(&w, &alice).await;
        w.sessions.issue(&auth, &w.client).await.unwrap()
    };
    // Signed in before the password changes, used after reactivation.
    let auth = sign_in(&w, &alice).await;
    let sessions = &w.sessions;
    let valid = |t: String| async move { sessions.validate(&t).await.is_ok() };
    let a = issue().await;
    assert!(
        w.sessions
            .logout(a.session_token.expose(), &w.client)
            .await
            .unwrap()
    );
    assert!(!valid(a.session_token.expose().into()).await);
    assert!(matches!(
        w.sessions
            .refresh(a.refresh_token.unwrap().expose(), &w.client)
            .await,
        Err(Error::RefreshRefused(RefreshRefusal::Revoked))
    ));
    let (b, c, d) = (issue().await, issue().await, issue().await);
    assert_eq!(
        w.sessions
            .sessions(w.tenant.id, alice.id)
            .await
            .unwrap()
            .len(),
        3
    );
    assert!(
        w.sessions
            .revoke(w.tenant.id, b.session.id, &w.client)
            .await
            .unwrap()
    );
    assert!(!valid(b.session_token.expose().into()).await);
    assert_eq!(
        w.sessions
            .logout_everywhere(w.tenant.id, alice.id, Some(c.session.id), &w.client)
            .await
            .unwrap(),
        1
    );
    assert!(
        valid(c.session_token.expose().into()).await
            && !valid(d.session_token.expose().into()).await
    );
    // A password change ends every other session.
    let e = issue().await;
    w.svc
        .change_password(
            w.tenant.id,
            alice.id,
            PASSWORD,
            "a brand new passphrase here",
            Some(c.session.id),
            &w.client,
        )
        .await
        .unwrap();
    assert!(
        valid(c.session_token.expose().into()).await
            && !valid(e.session_token.expose().into()).await
    );
    // Suspension ends them all.
    w.transition(&alice, AccountState::Suspended).await.unwrap();
    assert!(!valid(c.session_token.expose().into()).await);
    w.transition(&alice, AccountState::Active).await.unwrap();
    let f = w.sessions.issue(&auth, &w.client).await.unwrap();
    w.transition(&alice, AccountState::Deleted).await.unwrap();
    assert!(!valid(f.session_token.expose().into()).await);
    let bob = w.user("bob").await;
    let bob_auth = sign_in(&w, &bob).await;
    let g = w.sessions.issue(&bob_auth, &w.client).await.unwrap();
    w.svc
        .erase_user(w.tenant.id, bob.id, &w.client)
        .await
        .unwrap();
    assert!(!valid(g.session_token.expose().into()).await);
}

/// The cleanup removes expired flows, ended sessions, expired
/// verifications and ended rate-limit windows, and is safe to run again
/// (and concurrently).
pub async fn cleanup_removes_expired_state<S: ConformanceStore>(s: S) {
    let (w, alice) = mfa_alice(&s, 37).await;
    let hour = std::time::Duration::from_secs(3600);
    let now = w.svc.env().now();
    s.hit("login:ip:192.0.2.1", 5, hour, now).await.unwrap();
    s.hit("login:ip:192.0.2.2", 5, hour * 24, now)
        .await
        .unwrap();
    let auth = sign_in(&w, &alice).await;
    w.sessions.issue(&auth, &w.client).await.unwrap();
    w.begin("alice", None).await;
    let registration = countersign_core::Registration {
        email: "zed@example.com",
        password: "zed's long passphrase 2024",
        display_name: None,
    };
    w.svc
        .register(w.tenant.id, registration, &w.client)
        .await
        .unwrap();
    w.clock.advance(Duration::hours(13));
    let (a, b) = tokio::join!(w.sessions.cleanup(), w.sessions.cleanup());
    let (a, b) = (a.unwrap(), b.unwrap());
    // The sign-in flow was spent by the issue; the begun one expired.
    assert!(a.flows + b.flows >= 1, "the begun flow");
    assert_eq!(a.sessions + b.sessions, 2, "one session, one family");
    assert_eq!(a.verifications + b.verifications, 1, "the address code");
    assert_eq!(a.rate_limits + b.rate_limits, 1, "the hour's window");
    let again = w.sessions.cleanup().await.unwrap();
    assert_eq!(
        (
            again.flows,
            again.sessions,
            again.verifications,
            again.rate_limits
        ),
        (0, 0, 0, 0)
    );
}

/// A proof of login starts one session: a second issue with it, or any
/// but one of many concurrent ones, is refused.
pub async fn a_proof_of_login_issues_one_session<S: ConformanceStore>(s: S) {
    let (w, alice) = mfa_alice(&s, 40).await;
    let auth = sign_in(&w, &alice).await;
    w.sessions.issue(&auth, &w.client).await.unwrap();
    assert!(matches!(
        w.sessions.issue(&auth, &w.client).await,
        Err(Error::FlowEnded)
    ));
    let auth = sign_in(&w, &alice).await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (svc, a, c) = (w.sessions.clone(), auth.clone(), w.client.clone());
        tasks.push(tokio::spawn(async move { svc.issue(&a, &c).await }));
    }
    let mut issued = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => issued += 1,
            Err(Error::FlowEnded) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(issued, 1, "exactly one session");
    assert_eq!(
        w.sessions
            .sessions(w.tenant.id, alice.id)
            .await
            .unwrap()
            .len(),
        2
    );
}

/// A user suspended between the end of the login and the issue gets no
/// session (and the proof is spent).
pub async fn a_user_suspended_before_issue_gets_no_session<S: ConformanceStore>(s: S) {
    let (w, alice) = mfa_alice(&s, 41).await;
    let auth = sign_in(&w, &alice).await;
    w.transition(&alice, AccountState::Suspended).await.unwrap();
    assert!(matches!(
        w.sessions.issue(&auth, &w.client).await,
        Err(Error::AccountInactive {
            state: AccountState::Suspended
        })
    ));
    assert!(
        w.sessions
            .sessions(w.tenant.id, alice.id)
            .await
            .unwrap()
            .is_empty()
    );
    w.transition(&alice, AccountState::Active).await.unwrap();
    assert!(
        w.sessions.issue(&auth, &w.client).await.is_err(),
        "a refused proof stays spent"
    );
}

/// A refresh token mints nothing once its session has idled out, nor
/// after the cleanup removed the session.
pub async fn refresh_needs_a_live_session<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 42).await;
    set_sessions(&w, api_tokens()).await;
    let alice = w.user("alice").await;
    let first = w
        .sessions
        .issue(&sign_in(&w, &alice).await, &w.client)
        .await
        .unwrap();
    let second = w
        .sessions
        .issue(&sign_in(&w, &alice).await, &w.client)
        .await
        .unwrap();
    w.clock.advance(Duration::minutes(31));
    assert!(matches!(
        w.sessions
            .refresh(first.refresh_token.unwrap().expose(), &w.client)
            .await,
        Err(Error::RefreshRefused(RefreshRefusal::Expired))
    ));
    w.sessions.cleanup().await.unwrap();
    assert!(matches!(
        w.sessions
            .refresh(second.refresh_token.unwrap().expose(), &w.client)
            .await,
        Err(Error::RefreshRefused(RefreshRefusal::Revoked))
    ));
}

/// Session lifetimes whose deadlines fall beyond the calendar (a policy
/// written before validation existed) are a typed error at issue, never a
/// panic.
pub async fn lifetimes_beyond_the_calendar_are_an_error<S: ConformanceStore>(s: S) {
    let (w, alice) = mfa_alice(&s, 43).await;
    let auth = sign_in(&w, &alice).await;
    let forever = std::time::Duration::from_secs(300_000 * 366 * 24 * 3600);
    let mut policy = w.tenant.policy.clone();
    policy.sessions = SessionPolicy {
        idle_timeout: forever,
        absolute_lifetime: forever,
        renew_within: forever,
        ..SessionPolicy::default()
    };
    // Straight to the store: the service would refuse such a policy.
    w.store
        .update_tenant_policy(w.tenant.id, &policy)
        .await
        .unwrap();
    assert!(matches!(
        w.sessions.issue(&auth, &w.client).await,
        Err(Error::InvalidInput(_))
    ));
}
