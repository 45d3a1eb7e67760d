//! Signing in: password then a second factor, bad input, unknown
//! identifiers, lockout across factors, suspension, chosen methods.

use chrono::Duration;
use countersign_core::{
    AccountState, AuditFilter, AuditKind, AuditReason, AuditStatus, Error, FactorKind,
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
    // Not 6 to 8 digits (the length that counts is the enrolled one's:
    // another valid length is a wrong code, not bad input).
    for bad in ["12345", "123456789", "12a456", "", "１２３４５６"] {
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
        assert!(
            audited >= 7,
            "every refusal of a factor is audited ({audited})"
        );
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

/// Wrong factors of every kind count toward the account lock; a locked
/// account then refuses even right factors, with the answer of a wrong one
/// (the lock shows only in the store and the audit log).
pub async fn failures_across_factors_lock_the_account_silently<S: ConformanceStore>(s: S) {
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
    for _ in 0..2 {
        let s = w.submit(&f2, FactorResponse::Totp(&wrong)).await.unwrap();
        assert_eq!(s.refused, Some(Refusal::Incorrect));
        assert!(
            matches!(s.status, LoginStatus::AwaitingFactor { .. }),
            "{s:?}"
        );
    }
    let record = w.store.failure_record(w.tenant.id, alice.id).await.unwrap();
    assert!(
        record
            .and_then(|r| r.locked_at(w.svc.env().now()))
            .is_some()
    );
    // A right password in the first flow is refused like a wrong one.
    let s = w
        .submit(&f1, FactorResponse::Password(PASSWORD))
        .await
        .unwrap();
    assert_eq!(s.refused, Some(Refusal::Incorrect));
    assert!(
        matches!(s.status, LoginStatus::AwaitingFactor { .. }),
        "{s:?}"
    );
}

/// A suspension between two steps: the right second factor is refused
/// like a wrong one, and the flow never completes.
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
    assert_eq!(s.refused, Some(Refusal::Incorrect));
    assert!(
        matches!(s.status, LoginStatus::AwaitingFactor { .. }),
        "{s:?}"
    );
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

/// What a caller sees of one submission: the submission itself (status and
/// refusal), with the hashing work it cost.
async fn observe<S: ConformanceStore>(
    w: &World<S>,
    flow: &countersign_core::SecretToken,
    response: FactorResponse<'_>,
) -> (Result<countersign_core::Submission, String>, u64) {
    let c = w.svc.hasher().computations();
    let r = w.submit(flow, response).await.map_err(|e| e.to_string());
    (r, w.svc.hasher().computations() - c)
}

/// An unknown identifier, an unverified (pending) account, a suspended
/// one, a locked one and one whose own methods do not take a password all
/// answer exactly as a known, active account with a wrong password does:
/// the same first step, the same submissions (refusal and status), the
/// same hashing work, and for a right password the answer of a wrong one.
pub async fn accounts_answer_alike_whatever_their_state_or_methods<S: ConformanceStore>(s: S) {
    use countersign_core::{AuthMethod, MethodScope, NewUser};
    let (w, _alice) = mfa_alice(&s, 30).await;
    let register = |identifier: &'static str, state: AccountState| {
        let w = &w;
        async move {
            let new = NewUser {
                identifier,
                password: Some(PASSWORD),
                state: Some(state),
                ..NewUser::default()
            };
            w.svc
                .register_user(w.tenant.id, new, &w.client)
                .await
                .unwrap()
        }
    };
    register("pending", AccountState::Pending).await;
    let suspended = register("suspended", AccountState::Active).await;
    w.transition(&suspended, AccountState::Suspended)
        .await
        .unwrap();
    let locked = register("locked", AccountState::Active).await;
    let passkey_only = register("passkey-only", AccountState::Active).await;
    // Its own methods: `mfa` disabled for it (a user-scope override).
    let mfa = AuthMethod::sequence("mfa", &[FactorKind::Password, FactorKind::Totp]).unwrap();
    w.store
        .save_method(MethodScope::User(w.tenant.id, passkey_only.id), &mfa, false)
        .await
        .unwrap();
    // Lock `locked` with wrong passwords.
    for _ in 0..5 {
        let (f, _) = w.begin("locked", None).await;
        w.submit(&f, FactorResponse::Password("not the password"))
            .await
            .unwrap();
    }
    assert!(
        w.store
            .failure_record(w.tenant.id, locked.id)
            .await
            .unwrap()
            .and_then(|r| r.locked_at(w.svc.env().now()))
            .is_some()
    );

    // The reference: a known, active account with a wrong password.
    let (flow, first) = w.begin("alice", None).await;
    let wrong = observe(&w, &flow, FactorResponse::Password("not the password")).await;
    let (flow2, _) = w.begin("alice", None).await;
    let out_of_step = observe(&w, &flow2, FactorResponse::Totp("123456")).await;
    assert_eq!(wrong.1, 1, "one argon2 computation");
    assert_eq!(wrong.0.as_ref().unwrap().refused, Some(Refusal::Incorrect));
    for who in ["mallory", "pending", "suspended", "locked", "passkey-only"] {
        let (flow, status) = w.begin(who, None).await;
        assert_eq!(status, first, "{who}: the same first step");
        assert_eq!(
            flow.expose().len(),
            w.begin("alice", None).await.0.expose().len()
        );
        for password in ["not the password", PASSWORD] {
            let got = observe(&w, &flow, FactorResponse::Password(password)).await;
            assert_eq!(got, wrong, "{who}: the answer of a wrong password");
        }
        let (flow, _) = w.begin(who, None).await;
        let got = observe(&w, &flow, FactorResponse::Totp("123456")).await;
        assert_eq!(got, out_of_step, "{who}: a factor out of step");
        // A chosen method too.
        let (_, chosen) = w.begin(who, Some("mfa")).await;
        assert_eq!(chosen, w.begin("alice", Some("mfa")).await.1, "{who}");
    }
    // Nothing was counted against accounts that were not really checked.
    for u in [&suspended, &passkey_only] {
        assert_eq!(
            w.store.failure_record(w.tenant.id, u.id).await.unwrap(),
            None
        );
    }
}

/// Malformed, unknown and foreign flow tokens are refused without an audit
/// row each: anyone can send them, so they must not fill the audit table.
pub async fn garbage_flow_tokens_write_no_audit_rows<S: ConformanceStore>(s: S) {
    garbage_flows(s, NoAudit).await;
}

/// [`garbage_flow_tokens_write_no_audit_rows`], its audit checks made
/// through `audit`.
pub(crate) async fn garbage_flows<S: ConformanceStore>(s: S, audit: impl AuditLog<S>) {
    let (w, _) = mfa_alice(&s, 31).await;
    let before = audit_count(&w, &audit).await;
    for i in 0..20 {
        let garbage = format!("csf_garbage{i}");
        assert!(matches!(
            w.svc
                .submit(
                    w.tenant.id,
                    &garbage,
                    FactorResponse::Password(PASSWORD),
                    &w.client
                )
                .await,
            Err(Error::InvalidInput(_))
        ));
        let (unknown, _) = TokenKind::FLOW.issue(w.svc.env()).unwrap();
        assert!(matches!(
            w.submit(&unknown, FactorResponse::Password(PASSWORD)).await,
            Err(Error::FlowNotFound)
        ));
        assert!(matches!(
            w.svc
                .passkey_challenge(w.tenant.id, unknown.expose(), &w.client)
                .await,
            Err(Error::FlowNotFound)
        ));
        assert!(matches!(
            w.send_email_code(&unknown).await,
            Err(Error::FlowNotFound)
        ));
    }
    if let (Some(before), Some(after)) = (before, audit_count(&w, &audit).await) {
        assert_eq!(after, before, "no audit row per garbage token");
    }
}

/// A TOTP code is checked against the length the user enrolled with: the
/// tenant moving to 8 digits does not lock out 6-digit authenticators.
pub async fn totp_length_is_the_enrolled_credentials<S: ConformanceStore>(s: S) {
    use countersign_core::{FactorSettings, TotpSettings};
    let (w, alice) = mfa_alice(&s, 32).await;
    enroll_totp(&w, &alice).await;
    let eight = TotpSettings {
        issuer: "Acme".into(),
        digits: 8,
        ..TotpSettings::default()
    };
    w.svc
        .adopt_factor(w.tenant.id, FactorSettings::Totp(eight), &w.client)
        .await
        .unwrap();
    let (flow, _) = w.begin("alice", None).await;
    w.submit(&flow, FactorResponse::Password(PASSWORD))
        .await
        .unwrap();
    let code = current_totp(&w, &alice).await;
    assert_eq!(code.len(), 6);
    let s = w.submit(&flow, FactorResponse::Totp(&code)).await.unwrap();
    assert!(matches!(s.status, LoginStatus::Authenticated(_)), "{s:?}");
}

/// One passed factor is not a login: neither a password check outside a
/// flow (`verify_password`, which is no login where a method needs more
/// than a password) nor a password change's proof resets the account's
/// lockout count. Only a completed login does.
pub async fn a_single_passed_factor_does_not_reset_the_lockout_count<S: ConformanceStore>(s: S) {
    let (w, alice) = mfa_alice(&s, 33).await;
    let (flow, _) = w.begin("alice", None).await;
    for _ in 0..4 {
        w.submit(&flow, FactorResponse::Password("not the password"))
            .await
            .unwrap();
    }
    let count = |w: &World<S>| {
        let (store, t, u) = (w.store.clone(), w.tenant.id, alice.id);
        async move { store.failure_record(t, u).await.unwrap().map(|r| r.count) }
    };
    assert_eq!(count(&w).await, Some(4));
    // Not a login where the tenant needs a second factor: a typed error.
    assert!(matches!(
        w.login("alice", PASSWORD).await,
        Err(Error::NoUsableMethod)
    ));
    assert_eq!(count(&w).await, Some(4), "verify_password reset nothing");
    w.svc
        .change_password(
            w.tenant.id,
            alice.id,
            PASSWORD,
            "purple elephant marching softly",
            None,
            &w.client,
        )
        .await
        .unwrap();
    assert_eq!(count(&w).await, Some(4), "a password change reset nothing");
    let (flow, _) = w.begin("alice", None).await;
    w.submit(&flow, FactorResponse::Password("not the password"))
        .await
        .unwrap();
    let record = w.store.failure_record(w.tenant.id, alice.id).await.unwrap();
    assert!(
        record
            .and_then(|r| r.locked_at(w.svc.env().now()))
            .is_some()
    );
}

/// A password that completes a method within one call stores no flow, and
/// its proof still starts exactly one session: of concurrent issues with
/// clones of it one wins, the others get `FlowEnded`; after the flow TTL it
/// is `FlowExpired`.
pub async fn a_one_call_password_login_starts_one_session<S: ConformanceStore>(s: S) {
    let w = World::password_only(s.clone(), 40, countersign_core::LockoutPolicy::default()).await;
    let alice = w.user("alice").await;
    let one_call = || {
        w.svc
            .login_with_password(w.tenant.id, "alice", None, PASSWORD, &w.client)
    };
    let (flow, sub) = one_call().await.unwrap();
    assert!(flow.is_none(), "no flow stored");
    assert!(sub.accepted());
    let LoginStatus::Authenticated(auth) = sub.status else {
        panic!("{sub:?}")
    };
    assert_eq!(auth.user_id(), alice.id);
    let issues: Vec<_> = (0..4)
        .map(|_| {
            let (sessions, auth, client) = (w.sessions.clone(), auth.clone(), w.client.clone());
            tokio::spawn(async move { sessions.issue(&auth, &client).await })
        })
        .collect();
    let mut won = 0;
    for t in issues {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(Error::FlowEnded) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(won, 1, "one proof, one session");
    assert!(matches!(
        w.sessions.issue(&auth, &w.client).await,
        Err(Error::FlowEnded)
    ));
    let (_, late) = one_call().await.unwrap();
    let LoginStatus::Authenticated(late) = late.status else {
        panic!("{late:?}")
    };
    w.clock.advance(chrono::Duration::seconds(301));
    assert!(matches!(
        w.sessions.issue(&late, &w.client).await,
        Err(Error::FlowExpired)
    ));
}

/// A one-call password login that does not finish stores its flow as the
/// password left it: awaiting the second factor (which then completes it),
/// or, for a wrong password or an unknown identifier, refused alike with
/// the failure counted, and the flow usable for another try.
pub async fn a_one_call_password_login_that_needs_more_keeps_its_flow<S: ConformanceStore>(s: S) {
    let (w, alice) = mfa_alice(&s, 41).await;
    enroll_totp(&w, &alice).await;
    let one_call = |who: &'static str, password: &'static str| {
        w.svc
            .login_with_password(w.tenant.id, who, Some("mfa"), password, &w.client)
    };
    let (flow, sub) = one_call("alice", PASSWORD).await.unwrap();
    let flow = flow.expect("a stored flow");
    assert!(sub.accepted());
    assert_eq!(
        accepts(&sub.status),
        [
            FactorKind::EmailOtp,
            FactorKind::RecoveryCodes,
            FactorKind::Totp
        ]
    );
    let code = current_totp(&w, &alice).await;
    let done = w.submit(&flow, FactorResponse::Totp(&code)).await.unwrap();
    let LoginStatus::Authenticated(auth) = done.status else {
        panic!("{done:?}")
    };
    w.sessions.issue(&auth, &w.client).await.unwrap();

    let (wrong, refused_known) = one_call("alice", "not the password").await.unwrap();
    let (_, refused_unknown) = one_call("mallory", PASSWORD).await.unwrap();
    assert_eq!(refused_known.refused, Some(Refusal::Incorrect));
    assert_eq!(refused_unknown.refused, Some(Refusal::Incorrect));
    assert_eq!(
        accepts(&refused_known.status),
        accepts(&refused_unknown.status)
    );
    let failures = w.store.failure_record(w.tenant.id, alice.id).await.unwrap();
    assert_eq!(failures.map(|f| f.count), Some(1));
    let wrong = wrong.expect("a refused login keeps its flow");
    let retried = w
        .submit(&wrong, FactorResponse::Password(PASSWORD))
        .await
        .unwrap();
    assert!(retried.accepted());
}
