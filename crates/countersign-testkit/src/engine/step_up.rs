//! Step-up: proving a fresh factor within a session.

use chrono::Duration;
use countersign_core::{
    AuthMethod, Authentication, Enroll, Enrolled, Error, FactorKind, FactorResponse, LockoutPolicy,
    LoginStatus, StepUp, StepUpRequired, User,
};

use super::{
    accepts, api_tokens, current_totp, enroll_totp, mfa_alice, password_alone, set_sessions,
    weak_login_alice,
};
use crate::ConformanceStore;
use crate::fixtures::{PASSWORD, World, mfa_tenant};

/// A step-up flow proves a fresh factor that makes a stale authentication fresh again.
pub async fn step_up_proves_a_fresh_factor<S: ConformanceStore>(s: S) {
    let (w, alice) = mfa_alice(&s, 14).await;
    enroll_totp(&w, &alice).await;
    let first = password_then_totp(&w, &alice).await;
    let fresh = StepUp::fresh(std::time::Duration::from_secs(300));
    assert!(first.satisfies(&fresh, w.svc.env().now()));
    w.clock.advance(Duration::seconds(3600));
    assert!(
        !first.satisfies(&fresh, w.svc.env().now()),
        "an hour later it is stale"
    );
    let again = totp_step_up(&w, &alice).await;
    let merged = first.merge(&again).unwrap();
    assert!(merged.satisfies(&fresh, w.svc.env().now()));
}

/// A step-up attaches to the running session: its factors join the
/// session's, so a recent-authentication gate passes and access tokens
/// minted afterwards carry the new `amr`, `acr` and `auth_time`. The
/// step-up proof is spent.
pub async fn step_up_attaches_to_the_session<S: ConformanceStore>(s: S) {
    let (w, alice) = weak_login_alice(&s, 15).await;
    set_sessions(&w, api_tokens()).await;
    let login = password_alone(&w, "alice").await;
    let issued = w.sessions.issue(&login, &w.client).await.unwrap();
    let token = issued.session_token.expose();
    let c = w
        .sessions
        .verify_access_token(&issued.access_token.unwrap())
        .await
        .unwrap();
    assert_eq!(
        (c.amr.clone(), c.acr.as_str()),
        (vec!["pwd".to_owned()], "sfa")
    );

    // Ten minutes on (the session idles for 30): the password is stale.
    w.clock.advance(Duration::minutes(10));
    let fresh_mfa = StepUp {
        max_age: Some(std::time::Duration::from_secs(300)),
        min_factors: 1,
        any_of: vec![FactorKind::Totp],
    };
    let session = w.sessions.validate(token).await.unwrap();
    assert_eq!(
        w.sessions.require_recent(&session, &fresh_mfa),
        Err(StepUpRequired {
            required: fresh_mfa.clone()
        })
    );
    let proof = totp_step_up(&w, &alice).await;
    let stepped = w.sessions.step_up(token, &proof, &w.client).await.unwrap();
    assert_eq!(stepped.id, issued.session.id);
    assert!(matches!(
        w.sessions.step_up(token, &proof, &w.client).await,
        Err(Error::FlowEnded)
    ));
    let session = w.sessions.validate(token).await.unwrap();
    assert_eq!(session.auth, stepped.auth);
    w.sessions.require_recent(&session, &fresh_mfa).unwrap();
    // A JWT minted after (by a refresh) shows the step-up.
    let jwt = w
        .sessions
        .refresh(issued.refresh_token.unwrap().expose(), &w.client)
        .await
        .unwrap()
        .access_token
        .unwrap();
    let c = w.sessions.verify_access_token(&jwt).await.unwrap();
    assert_eq!(c.amr, ["otp", "pwd", "mfa"]);
    assert_eq!(c.acr, "mfa");
    assert_eq!(c.auth_time, w.svc.env().now().timestamp());
    let i = w.sessions.introspect(token).await.unwrap();
    assert_eq!(i.acr.as_deref(), Some("mfa"));
}

/// Two step-ups of one session at once (a TOTP code and a recovery code)
/// both count: whichever writes second merges into the first one's record
/// instead of overwriting it. On a backend with real I/O the two calls
/// interleave (each store call yields), so both read the session before
/// either writes.
pub async fn concurrent_step_ups_keep_every_factor<S: ConformanceStore>(s: S) {
    let (w, alice) = weak_login_alice(&s, 16).await;
    let Enrolled::RecoveryCodes(codes) = w.enroll(&alice, Enroll::RecoveryCodes).await.unwrap()
    else {
        panic!("no recovery codes")
    };
    let login = password_alone(&w, "alice").await;
    let issued = w.sessions.issue(&login, &w.client).await.unwrap();
    let token = issued.session_token.expose();
    w.clock.advance(Duration::minutes(1));

    let by_totp = totp_step_up(&w, &alice).await;
    let (step, _) = w
        .svc
        .begin_step_up(
            w.tenant.id,
            alice.id,
            &[FactorKind::RecoveryCodes],
            &w.client,
        )
        .await
        .unwrap();
    let by_code = match w
        .submit(&step, FactorResponse::RecoveryCode(&codes[0]))
        .await
        .unwrap()
        .status
    {
        LoginStatus::Authenticated(a) => a,
        other => panic!("no step-up: {other:?}"),
    };
    let (a, b) = tokio::join!(
        w.sessions.step_up(token, &by_totp, &w.client),
        w.sessions.step_up(token, &by_code, &w.client),
    );
    a.unwrap();
    b.unwrap();
    let kinds: Vec<FactorKind> = w
        .sessions
        .validate(token)
        .await
        .unwrap()
        .auth
        .factors
        .iter()
        .map(|f| f.kind)
        .collect();
    assert!(kinds.contains(&FactorKind::Totp), "{kinds:?}");
    assert!(kinds.contains(&FactorKind::RecoveryCodes), "{kinds:?}");
}

/// Sensitive self-service operations need a recent authentication (ASVS
/// 3.7.1): fresh after login, refused with `StepUpRequired` once it is
/// stale (enrolment, factor removal, password change), and allowed again
/// after a step-up attaches to the session.
pub async fn sensitive_self_service_needs_a_recent_authentication<S: ConformanceStore>(s: S) {
    let (w, alice) = mfa_alice(&s, 16).await;
    enroll_totp(&w, &alice).await;
    let login = password_then_totp(&w, &alice).await;
    let issued = w.sessions.issue(&login, &w.client).await.unwrap();
    let token = issued.session_token.expose();
    let session = w.sessions.validate(token).await.unwrap();
    // Just signed in: allowed.
    w.svc
        .self_service(&session)
        .enroll(Enroll::RecoveryCodes, &w.client)
        .await
        .unwrap();

    // Ten minutes on: every sensitive operation is refused, and changes
    // nothing.
    w.clock.advance(Duration::minutes(10));
    let session = w.sessions.validate(token).await.unwrap();
    let me = w.svc.self_service(&session);
    fn stale<T>(r: Result<T, Error>) -> bool {
        matches!(r, Err(Error::StepUpRequired(_)))
    }
    assert!(stale(me.enroll(Enroll::RecoveryCodes, &w.client).await));
    assert!(stale(me.remove_factor(FactorKind::Totp, &w.client).await));
    assert!(stale(
        me.change_password(None, "another long passphrase 42", &w.client)
            .await
    ));
    assert!(
        w.store
            .user_factor(w.tenant.id, alice.id, FactorKind::Totp)
            .await
            .unwrap()
            .is_some(),
        "a refused removal removes nothing"
    );

    // A step-up with TOTP makes them possible again.
    w.clock.advance(Duration::seconds(30));
    let proof = totp_step_up(&w, &alice).await;
    w.sessions.step_up(token, &proof, &w.client).await.unwrap();
    let session = w.sessions.validate(token).await.unwrap();
    let me = w.svc.self_service(&session);
    me.change_password(None, "another long passphrase 42", &w.client)
        .await
        .unwrap();
    assert!(me.remove_factor(FactorKind::Totp, &w.client).await.unwrap());
    // Proving the current password stands in for a recent authentication.
    w.clock.advance(Duration::minutes(10));
    let session = w.sessions.validate(token).await.unwrap();
    let me = w.svc.self_service(&session);
    assert!(stale(me.remove_factor(FactorKind::Totp, &w.client).await));
    me.change_password(
        Some("another long passphrase 42"),
        "a third long passphrase 43",
        &w.client,
    )
    .await
    .unwrap();
    // The session making the change survives it.
    assert!(w.sessions.validate(token).await.is_ok());
}

/// A step-up proves one fresh factor of a signed-in user: it attaches to a
/// session and never starts one (else a TOTP-only step-up would be a
/// login that skips the password); and no tenant may name a method
/// `step-up`.
pub async fn a_step_up_never_starts_a_session<S: ConformanceStore>(s: S) {
    let (w, alice) = mfa_alice(&s, 17).await;
    enroll_totp(&w, &alice).await;
    let proof = totp_step_up(&w, &alice).await;
    assert!(matches!(
        w.sessions.issue(&proof, &w.client).await,
        Err(Error::InvalidInput(_))
    ));
    let mut spec = mfa_tenant(LockoutPolicy::default());
    spec.slug = "other".into();
    spec.methods
        .push(AuthMethod::sequence("step-up", &[FactorKind::Totp]).unwrap());
    assert!(matches!(
        w.svc.provision_tenant(spec).await,
        Err(Error::Reserved(_))
    ));
}

/// Alice's login through the `mfa` method: her password, then a current
/// TOTP code.
async fn password_then_totp<S: ConformanceStore>(w: &World<S>, alice: &User) -> Authentication {
    let (flow, _) = w.begin(alice.identifier.as_str(), None).await;
    w.submit(&flow, FactorResponse::Password(PASSWORD))
        .await
        .unwrap();
    let code = current_totp(w, alice).await;
    match w
        .submit(&flow, FactorResponse::Totp(&code))
        .await
        .unwrap()
        .status
    {
        LoginStatus::Authenticated(a) => a,
        other => panic!("not signed in: {other:?}"),
    }
}

/// A step-up of `user` proving a current TOTP code (the step-up flow only
/// accepts TOTP).
async fn totp_step_up<S: ConformanceStore>(w: &World<S>, user: &User) -> Authentication {
    let (step, status) = w
        .svc
        .begin_step_up(w.tenant.id, user.id, &[FactorKind::Totp], &w.client)
        .await
        .unwrap();
    assert_eq!(accepts(&status), [FactorKind::Totp]);
    let code = current_totp(w, user).await;
    match w
        .submit(&step, FactorResponse::Totp(&code))
        .await
        .unwrap()
        .status
    {
        LoginStatus::Authenticated(a) => a,
        other => panic!("no step-up: {other:?}"),
    }
}
