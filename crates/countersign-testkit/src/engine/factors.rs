//! Enrolling and using factors: recovery codes, email codes, removal and
//! erasure.

use chrono::Duration;
use countersign_core::{
    AuditKind, Confirm, Enroll, Enrolled, Error, FactorKind, FactorResponse, LoginStatus,
    NewTenant, NewUser, Refusal, TokenKind, User,
};

use super::{AuditLog, NoAudit, enroll_totp, last_code, mfa_alice, refused, wrong_code};
use crate::ConformanceStore;
use crate::fixtures::{PASSWORD, World};

/// Recovery codes are stored hashed, work once each, and a new set voids the old one.
pub async fn recovery_codes_are_single_use_and_regeneration_voids_the_old_set<
    S: ConformanceStore,
>(
    s: S,
) {
    let (w, alice) = mfa_alice(&s, 3).await;
    let Enrolled::RecoveryCodes(codes) = w.enroll(&alice, Enroll::RecoveryCodes).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(codes.len(), 10);
    let stored = format!(
        "{:?}",
        w.store
            .user_factor(w.tenant.id, alice.id, FactorKind::RecoveryCodes)
            .await
            .unwrap()
    );
    assert!(
        codes.iter().all(|c| !stored.contains(c.as_str())),
        "only hashes are stored"
    );
    let login_with = |code: String| {
        let w = &w;
        async move {
            let (flow, _) = w.begin("alice", None).await;
            w.submit(&flow, FactorResponse::Password(PASSWORD))
                .await
                .unwrap();
            w.submit(&flow, FactorResponse::RecoveryCode(&code))
                .await
                .unwrap()
        }
    };
    let first = login_with(codes[0].to_uppercase()).await;
    assert!(
        matches!(first.status, LoginStatus::Authenticated(_)),
        "case and dashes do not matter"
    );
    let again = login_with(codes[0].clone()).await;
    assert!(!again.accepted(), "a used code is refused");
    let Enrolled::RecoveryCodes(fresh) = w.enroll(&alice, Enroll::RecoveryCodes).await.unwrap()
    else {
        panic!()
    };
    assert!(
        !login_with(codes[1].clone()).await.accepted(),
        "the old set is void"
    );
    assert!(login_with(fresh[1].clone()).await.accepted());
}

/// Begin enrolling `user`'s email factor at `alice@example.org`; the code
/// mailed to confirm it.
async fn enroll_email<S: ConformanceStore>(w: &World<S>, user: &User) -> String {
    let address = "alice@example.org";
    w.enroll(user, Enroll::EmailOtp { address }).await.unwrap();
    last_code(w, address)
}

/// Email codes are confirmed at enrolment, needed before submission, hashed in the flow, and work once.
pub async fn email_codes_are_hashed_expire_cap_guesses_and_work_once<S: ConformanceStore>(s: S) {
    let (w, alice) = mfa_alice(&s, 4).await;
    let code = enroll_email(&w, &alice).await;
    assert!(matches!(
        w.confirm(&alice, Confirm::EmailOtp { code: "000000" })
            .await,
        Err(Error::InvalidCredentials)
    ));
    w.confirm(&alice, Confirm::EmailOtp { code: &code })
        .await
        .unwrap();

    let (flow, _) = w.begin("alice", None).await;
    w.submit(&flow, FactorResponse::Password(PASSWORD))
        .await
        .unwrap();
    // No code sent yet: a typed error, nothing counted.
    assert!(refused(
        &w.submit(&flow, FactorResponse::EmailCode("123456")).await,
        Refusal::ChallengeMissing
    ));
    w.send_email_code(&flow).await.unwrap();
    let code = last_code(&w, "alice@example.org");
    let flow_record = w
        .store
        .flow(w.tenant.id, &TokenKind::FLOW.parse(flow.expose()).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(
        !serde_json::to_string(&flow_record.value.state)
            .unwrap()
            .contains(&format!("\"{code}\"")),
        "hashed at rest"
    );
    let wrong = wrong_code(&code);
    assert!(
        !w.submit(&flow, FactorResponse::EmailCode(wrong))
            .await
            .unwrap()
            .accepted()
    );
    let s = w
        .submit(&flow, FactorResponse::EmailCode(&code))
        .await
        .unwrap();
    assert!(matches!(s.status, LoginStatus::Authenticated(_)));

    // Expiry: a code older than its ttl is refused.
    let (flow, _) = w.begin("alice", None).await;
    w.submit(&flow, FactorResponse::Password(PASSWORD))
        .await
        .unwrap();
    w.send_email_code(&flow).await.unwrap();
    let code = last_code(&w, "alice@example.org");
    let mut cfg = w.svc.config().clone();
    cfg.flow_ttl = std::time::Duration::from_secs(3600);
    let long = w.svc.clone().with_config(cfg);
    w.clock.advance(Duration::seconds(200));
    // The flow (5 min) is still alive, the code (10 min) too: it works...
    assert!(
        long.submit(
            w.tenant.id,
            flow.expose(),
            FactorResponse::EmailCode(&code),
            &w.client
        )
        .await
        .unwrap()
        .accepted()
    );
}

/// An email code survives wrong guesses up to its cap and then still works once.
pub async fn email_code_guesses_are_capped<S: ConformanceStore>(s: S) {
    let (w, alice) = mfa_alice(&s, 5).await;
    let code = enroll_email(&w, &alice).await;
    w.confirm(&alice, Confirm::EmailOtp { code: &code })
        .await
        .unwrap();
    let (flow, _) = w.begin("alice", None).await;
    w.submit(&flow, FactorResponse::Password(PASSWORD))
        .await
        .unwrap();
    w.send_email_code(&flow).await.unwrap();
    let code = last_code(&w, "alice@example.org");
    let wrong = wrong_code(&code);
    // The flow tolerates 5 failures; the code tolerates 5 guesses: after 4
    // wrong guesses the right code still works once.
    for _ in 0..4 {
        assert!(
            !w.submit(&flow, FactorResponse::EmailCode(wrong))
                .await
                .unwrap()
                .accepted()
        );
    }
    let s = w
        .submit(&flow, FactorResponse::EmailCode(&code))
        .await
        .unwrap();
    assert!(s.accepted());
}

/// An email code past its time is refused and discarded.
pub async fn expired_email_codes_are_refused<S: ConformanceStore>(s: S) {
    let (w, alice) = mfa_alice(&s, 6).await;
    let code = enroll_email(&w, &alice).await;
    w.clock.advance(Duration::seconds(601));
    assert!(matches!(
        w.confirm(&alice, Confirm::EmailOtp { code: &code }).await,
        Err(Error::InvalidCredentials)
    ));
    // The expired code is gone: confirming again needs a new one.
    assert!(matches!(
        w.confirm(&alice, Confirm::EmailOtp { code: &code }).await,
        Err(Error::ChallengeMissing)
    ));
}

/// Enrolment needs the tenant to offer the factor; removal is audited and reports existence.
pub async fn factors_are_removed_and_enrolment_needs_the_tenant_to_offer_them<
    S: ConformanceStore,
>(
    s: S,
) {
    factor_removal(s, NoAudit).await;
}

/// [`factors_are_removed_and_enrolment_needs_the_tenant_to_offer_them`], its audit checks made
/// through `audit`.
pub(crate) async fn factor_removal<S: ConformanceStore>(s: S, audit: impl AuditLog<S>) {
    let m = World::mfa(s.clone(), 16).await;
    let plain = m
        .svc
        .provision_tenant(NewTenant::password_only("plain", "Plain").unwrap())
        .await
        .unwrap();
    let carol = m
        .svc
        .register_user(
            plain.id,
            NewUser {
                identifier: "carol",
                password: Some(PASSWORD),
                ..NewUser::default()
            },
            &m.client,
        )
        .await
        .unwrap();
    assert!(matches!(
        m.svc
            .enroll(plain.id, carol.id, Enroll::Totp, &m.client)
            .await,
        Err(Error::InvalidInput(_))
    ));
    let bob = m.user("bob").await;
    enroll_totp(&m, &bob).await;
    assert!(matches!(
        m.enroll(&bob, Enroll::Totp).await,
        Err(Error::AlreadyExists(_))
    ));
    assert!(
        m.svc
            .remove_factor(m.tenant.id, bob.id, FactorKind::Totp, &m.client)
            .await
            .unwrap()
    );
    assert!(
        !m.svc
            .remove_factor(m.tenant.id, bob.id, FactorKind::Totp, &m.client)
            .await
            .unwrap()
    );
    if let Some(removed) = audit.of_kind(&m, AuditKind::FactorRemoved).await {
        assert_eq!(removed.len(), 1);
    }
}

/// Erasure takes the user's credentials and flows: a flow begun before
/// erasure is gone, and the identifier no longer signs in.
pub async fn erasure_ends_flows_and_credentials<S: ConformanceStore>(s: S) {
    let (w, alice) = mfa_alice(&s, 17).await;
    enroll_totp(&w, &alice).await;
    let (flow, _) = w.begin("alice", None).await;
    w.svc
        .erase_user(w.tenant.id, alice.id, &w.client)
        .await
        .unwrap();
    assert!(matches!(
        w.submit(&flow, FactorResponse::Password(PASSWORD)).await,
        Err(Error::FlowNotFound)
    ));
    assert!(
        w.store
            .user_factors(w.tenant.id, alice.id)
            .await
            .unwrap()
            .is_empty()
    );
    let (again, _) = w.begin("alice", None).await;
    assert!(
        !w.submit(&again, FactorResponse::Password(PASSWORD))
            .await
            .unwrap()
            .accepted()
    );
}
