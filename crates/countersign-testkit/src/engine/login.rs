//! Signing in: password then a second factor, bad input, unknown
//! identifiers, lockout across factors, suspension, chosen methods.

use chrono::Duration;
use countersign_core::{
    AccountState, AuditFilter, AuditKind, AuditReason, AuditStatus, DenyReason, Error, FactorKind,
    FactorResponse, LoginStatus, Refusal, TokenKind,
};

use super::{
    AuditLog, NoAudit, accepts, audit_count, current_totp, enroll_totp, mfa_alice, refused,
};
use crate::ConformanceStore;
use crate::fixtures::{PASSWORD, World};

/// Password then TOTP completes the two-step method; the ended flow takes no more factors.
pub async fn password_then_totp_completes_the_mfa_method<S: ConformanceStore>(s: S) {
    mfa_login(s, NoAudit).await;
}

/// [`password_then_totp_completes_the_mfa_method`], its audit checks made
/// through `audit`.
pub(crate) async fn mfa_login<S: ConformanceStore>(s: S, audit: impl AuditLog<S>) {
    let (w, alice) = mfa_alice(&s, 1).await;
    enroll_totp(&w, &alice).await;
    let (flow, status) = w.begin("alice", None).await;
    assert_eq!(
        accepts(&status),
        [FactorKind::Passkey, FactorKind::Password]
    );
    let s = w
        .submit(&flow, FactorResponse::Password(PASSWORD))
        .await
        .unwrap();
    assert!(s.accepted());
    assert_eq!(
        accepts(&s.status),
        [
            FactorKind::EmailOtp,
            FactorKind::RecoveryCodes,
            FactorKind::Totp
        ]
    );
    let code = current_totp(&w, &alice).await;
    let s = w.submit(&flow, FactorResponse::Totp(&code)).await.unwrap();
    let LoginStatus::Authenticated(auth) = s.status else {
        panic!("{s:?}")
    };
    assert_eq!(auth.user_id(), alice.id);
    assert_eq!(auth.record().method.as_str(), "mfa");
    assert_eq!(
        auth.record()
            .factors
            .iter()
            .map(|f| f.kind)
            .collect::<Vec<_>>(),
        [FactorKind::Password, FactorKind::Totp]
    );
    if let Some(logins) = audit.of_kind(&w, AuditKind::LoginSucceeded).await {
        assert_eq!(logins.len(), 1);
    }
    // The ended flow takes no more factors.
    assert!(matches!(
        w.submit(&flow, FactorResponse::Totp(&code)).await,
        Err(Error::FlowEnded)
    ));
}

/// One TOTP code signs in once, even submitted to four flows at the same instant.
pub async fn a_totp_code_works_once_even_under_concurrent_submission<S: ConformanceStore>(s: S) {
    totp_race(s, NoAudit).await;
}

/// [`a_totp_code_works_once_even_under_concurrent_submission`], its audit checks made
/// through `audit`.
pub(crate) async fn totp_race<S: ConformanceStore>(s: S, audit: impl AuditLog<S>) {
    let (w, alice) = mfa_alice(&s, 2).await;
    enroll_totp(&w, &alice).await;
    let mut flows = Vec::new();
    // Four racers: their three refused replays stay under the lockout
    // threshold (5), so the one winner is not locked out by them.
    for _ in 0..4 {
        let (flow, _) = w.begin("alice", Some("mfa")).await;
        let s = w
            .submit(&flow, FactorResponse::Password(PASSWORD))
            .await
            .unwrap();
        assert!(s.accepted());
        flows.push(flow);
    }
    let code = current_totp(&w, &alice).await;
    let mut tasks = Vec::new();
    for flow in flows {
        let (svc, client, tenant, code) =
            (w.svc.clone(), w.client.clone(), w.tenant.id, code.clone());
        tasks.push(tokio::spawn(async move {
            svc.submit(tenant, flow.expose(), FactorResponse::Totp(&code), &client)
                .await
                .unwrap()
                .accepted()
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        accepted += usize::from(t.await.unwrap());
    }
    assert_eq!(accepted, 1, "one code, one login");
    if let Some(replays) = audit
        .events(
            &w.store,
            w.tenant.id,
            AuditFilter {
                status: Some(AuditStatus::Failure),
                kind: Some(AuditKind::Authentication),
                ..Default::default()
            },
        )
        .await
    {
        assert!(
            replays
                .iter()
                .filter(|e| e.detail == Some(AuditReason::ReplayedCode.into()))
                .count()
                >= 1
        );
    }
}

/// Out-of-order factors, malformed codes and foreign, unknown or expired flows are typed errors, audited, with no state change.
pub async fn bad_input_is_typed_audited_and_changes_nothing<S: ConformanceStore>(s: S) {
    bad_input(s, NoAudit).await;
}

/// [`bad_input_is_typed_audited_and_changes_nothing`], its audit checks made
/// through `audit`.
pub(crate) async fn bad_input<S: ConformanceStore>(s: S, audit: impl AuditLog<S>) {
    let (w, alice) = mfa_alice(&s, 7).await;
    enroll_totp(&w, &alice).await;
    let (flow, _) = w.begin("alice", Some("mfa")).await;
    let key = TokenKind::FLOW.parse(flow.expose()).unwrap();
    let version = |w: &World<S>| {
        let store = w.store.clone();
        let tenant = w.tenant.id;
        async move { store.flow(tenant, &key).await.unwrap().unwrap().version }
    };
    let v0 = version(&w).await;
    let events0 = audit_count(&w, &audit).await;
    // A factor out of order.
    assert!(refused(
        &w.submit(&flow, FactorResponse::Totp("123456")).await,
        Refusal::NotExpected
    ));
    w.submit(&flow, FactorResponse::Password(PASSWORD))
        .await
        .unwrap();
    let v1 = version(&w).await;
    for bad in ["12345", "1234567", "12a456", "", "１２３４５６"] {
        let r = w.submit(&flow, FactorResponse::Totp(bad)).await;
        assert!(matches!(r, Err(Error::InvalidInput(_))), "{bad:?}: {r:?}");
    }
    assert!(matches!(
        w.submit(&flow, FactorResponse::RecoveryCode("nope")).await,
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(version(&w).await, v1, "no state change");
    assert_eq!(
        w.store.failure_record(w.tenant.id, alice.id).await.unwrap(),
        None,
        "nothing counted"
    );
    // Unknown, malformed, foreign flows.
    let (other_flow, _) = TokenKind::FLOW.issue(w.svc.env()).unwrap();
    assert!(matches!(
        w.submit(&other_flow, FactorResponse::Password(PASSWORD))
            .await,
        Err(Error::FlowNotFound)
    ));
    assert!(matches!(
        w.svc
            .submit(
                w.tenant.id,
                "csf_garbage",
                FactorResponse::Password(PASSWORD),
                &w.client
            )
            .await,
        Err(Error::InvalidInput(_))
    ));
    let other = w
        .svc
        .provision_tenant(countersign_core::NewTenant::password_only("other", "Other").unwrap())
        .await
        .unwrap();
    assert!(matches!(
        w.svc
            .submit(
                other.id,
                flow.expose(),
                FactorResponse::Totp("123456"),
                &w.client
            )
            .await,
        Err(Error::FlowNotFound)
    ));
    if let (Some(events0), Some(events1)) = (events0, audit_count(&w, &audit).await) {
        let audited = events1 - events0;
        assert!(audited >= 9, "every refusal is audited ({audited})");
    }
    assert!(v0 < v1);
    // Expiry.
    w.clock.advance(Duration::seconds(301));
    let code = current_totp(&w, &alice).await;
    assert!(matches!(
        w.submit(&flow, FactorResponse::Totp(&code)).await,
        Err(Error::FlowExpired)
    ));
    assert!(matches!(
        w.submit(&flow, FactorResponse::Totp(&code)).await,
        Err(Error::FlowEnded)
    ));
}

/// An unknown identifier gets a flow of the same shape that never succeeds and costs the same hashing.
pub async fn unknown_identifiers_get_a_flow_that_never_succeeds<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 8).await;
    w.user("alice").await;
    let (real, real_status) = w.begin("alice", None).await;
    let (fake, fake_status) = w.begin("mallory", None).await;
    assert_eq!(accepts(&real_status), accepts(&fake_status), "same shape");
    assert_eq!(real.expose().len(), fake.expose().len());
    let c = w.svc.hasher().computations();
    let s = w
        .submit(&fake, FactorResponse::Password(PASSWORD))
        .await
        .unwrap();
    assert!(!s.accepted());
    assert_eq!(
        w.svc.hasher().computations() - c,
        1,
        "the same hashing work"
    );
    for _ in 0..4 {
        w.submit(&fake, FactorResponse::Password(PASSWORD))
            .await
            .unwrap();
    }
    assert!(matches!(
        w.submit(&fake, FactorResponse::Password(PASSWORD)).await,
        Err(Error::FlowEnded)
    ));
}

/// Wrong factors of every kind count toward the account lock, which ends every flow of the account.
pub async fn failures_across_factors_lock_the_account_and_flows_end_locked<S: ConformanceStore>(
    s: S,
) {
    let (w, alice) = mfa_alice(&s, 9).await;
    enroll_totp(&w, &alice).await;
    // Default policy: 5 failures lock. Mix factors across two flows.
    let (f1, _) = w.begin("alice", None).await;
    for _ in 0..3 {
        assert!(
            !w.submit(&f1, FactorResponse::Password("wrong password!"))
                .await
                .unwrap()
                .accepted()
        );
    }
    let (f2, _) = w.begin("alice", None).await;
    w.submit(&f2, FactorResponse::Password(PASSWORD))
        .await
        .unwrap();
    let code = current_totp(&w, &alice).await;
    let wrong: String = code
        .chars()
        .map(|c| {
            if c == '9' {
                '0'
            } else {
                char::from(c as u8 + 1)
            }
        })
        .collect();
    assert!(
        !w.submit(&f2, FactorResponse::Totp(&wrong))
            .await
            .unwrap()
            .accepted()
    );
    let s = w.submit(&f2, FactorResponse::Totp(&wrong)).await.unwrap();
    assert!(matches!(s.status, LoginStatus::Locked { .. }), "{s:?}");
    // A right password in the first flow is refused: the account is locked.
    let s = w
        .submit(&f1, FactorResponse::Password(PASSWORD))
        .await
        .unwrap();
    assert!(!s.accepted() && matches!(s.status, LoginStatus::Locked { .. }));
}

/// A suspension between two steps denies the flow.
pub async fn suspension_mid_flow_denies_it<S: ConformanceStore>(s: S) {
    let (w, alice) = mfa_alice(&s, 10).await;
    enroll_totp(&w, &alice).await;
    let (flow, _) = w.begin("alice", None).await;
    w.submit(&flow, FactorResponse::Password(PASSWORD))
        .await
        .unwrap();
    w.transition(&alice, AccountState::Suspended).await.unwrap();
    let code = current_totp(&w, &alice).await;
    let s = w.submit(&flow, FactorResponse::Totp(&code)).await.unwrap();
    assert_eq!(s.status, LoginStatus::Denied(DenyReason::AccountInactive));
    assert!(!s.accepted());
}

/// Choosing a method limits the flow to that method's factors.
pub async fn a_chosen_method_limits_the_flow<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 11).await;
    w.user("alice").await;
    let (_, s) = w.begin("alice", Some("passkey")).await;
    assert_eq!(accepts(&s), [FactorKind::Passkey]);
    assert!(matches!(
        w.svc
            .begin_login(w.tenant.id, "alice", Some("nope"), &w.client)
            .await,
        Err(Error::InvalidInput(_))
    ));
    let (flow, _) = w.begin("alice", Some("passkey")).await;
    assert!(refused(
        &w.submit(&flow, FactorResponse::Password(PASSWORD)).await,
        Refusal::NotExpected
    ));
}
