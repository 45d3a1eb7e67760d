//! Enrolling and using factors: recovery codes, email codes, removal and
//! erasure.

use chrono::Duration;
use countersign_core::{
    AuditKind, Confirm, Enroll, Enrolled, Error, FactorKind, FactorResponse, FactorSettings,
    LoginStatus, NewTenant, NewUser, Refusal, TokenKind, User,
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
    let stored = w
        .store
        .user_factor(w.tenant.id, alice.id, FactorKind::RecoveryCodes)
        .await
        .unwrap()
        .unwrap();
    let rows = format!(
        "{:?} {}",
        stored,
        serde_json::to_string(&stored.value).unwrap()
    )
    .to_lowercase();
    for c in &codes {
        for form in leak_forms(c) {
            assert!(!rows.contains(&form), "only hashes are stored: {form}");
        }
    }
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

/// Every form of a plaintext code that, found in a stored row, would leak
/// it: as shown, without separators, and normalised (lowercase).
fn leak_forms(code: &str) -> Vec<String> {
    let bare: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    vec![code.to_lowercase(), bare.to_lowercase()]
}

/// The stored rows of a flow and of a user's credentials, as text (serde
/// and `Debug`), lowercased.
async fn stored_rows<S: ConformanceStore>(
    w: &World<S>,
    flow: &countersign_core::SecretToken,
    user: &User,
) -> String {
    let key = TokenKind::FLOW.parse(flow.expose()).unwrap();
    let flow = w.store.flow(w.tenant.id, &key).await.unwrap();
    let creds = w.store.user_factors(w.tenant.id, user.id).await.unwrap();
    let json: Vec<String> = creds
        .iter()
        .map(|v| serde_json::to_string(&v.value).unwrap())
        .collect();
    format!(
        "{} {flow:?} {creds:?} {json:?}",
        flow.as_ref()
            .map(|f| serde_json::to_string(&f.value).unwrap())
            .unwrap_or_default()
    )
    .to_lowercase()
}

/// Begin enrolling `user`'s email factor at `alice@example.org`; the code
/// mailed to confirm it.
async fn enroll_email<S: ConformanceStore>(w: &World<S>, user: &User) -> String {
    let address = "alice@example.org";
    w.enroll(user, Enroll::EmailOtp { address }).await.unwrap();
    last_code(w, address)
}

/// Enrol and confirm `alice@example.org` as `user`'s email factor.
async fn confirmed_email<S: ConformanceStore>(w: &World<S>, user: &User) {
    let code = enroll_email(w, user).await;
    w.confirm(user, Confirm::EmailOtp { code: &code })
        .await
        .unwrap();
}

/// Email codes are confirmed at enrolment, needed before submission, hashed in the flow, and work once.
pub async fn email_codes_are_hashed_expire_cap_guesses_and_work_once<S: ConformanceStore>(s: S) {
    let (w, alice) = mfa_alice(&s, 4).await;
    let code = enroll_email(&w, &alice).await;
    assert!(matches!(
        w.confirm(&alice, Confirm::EmailOtp { code: "000000" })
            .await,
        Err(Error::InvalidInput(ref e)) if e.field == "code"
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
    // Neither the code nor its unkeyed hash (which is as good as the code:
    // a million candidates) is stored.
    let rows = stored_rows(&w, &flow, &alice).await;
    for form in [
        code.clone(),
        countersign_core::factor::sha256_hex(code.as_bytes()),
    ] {
        assert!(!rows.contains(&form), "a keyed hash at rest, not {form}");
    }
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
    w.clock.advance(Duration::seconds(200));
    // The flow (5 min) is still alive, the code (10 min) too: it works.
    let s = w
        .submit(&flow, FactorResponse::EmailCode(&code))
        .await
        .unwrap();
    assert!(matches!(s.status, LoginStatus::Authenticated(_)), "{s:?}");
}

/// A login code past its ttl is refused, even right, while its flow lives;
/// a new code then works.
pub async fn email_codes_expire_within_a_live_flow<S: ConformanceStore>(s: S) {
    let (w, alice) = mfa_alice(&s, 18).await;
    confirmed_email(&w, &alice).await;
    // A flow that outlives the code (10 min).
    let mut cfg = w.svc.config().clone();
    cfg.flow_ttl = std::time::Duration::from_secs(3600);
    let long = World {
        svc: w.svc.clone().with_config(cfg),
        ..w
    };
    let (flow, _) = long.begin("alice", None).await;
    long.submit(&flow, FactorResponse::Password(PASSWORD))
        .await
        .unwrap();
    long.send_email_code(&flow).await.unwrap();
    let code = last_code(&long, "alice@example.org");
    long.clock.advance(Duration::seconds(600));
    let s = long
        .submit(&flow, FactorResponse::EmailCode(&code))
        .await
        .unwrap();
    assert_eq!(s.refused, Some(Refusal::Incorrect), "expired: {s:?}");
    assert!(matches!(s.status, LoginStatus::AwaitingFactor { .. }));
    // The expired code is gone: a new one is needed, and works.
    assert!(refused(
        &long.submit(&flow, FactorResponse::EmailCode(&code)).await,
        Refusal::ChallengeMissing
    ));
    long.send_email_code(&flow).await.unwrap();
    let fresh = last_code(&long, "alice@example.org");
    let s = long
        .submit(&flow, FactorResponse::EmailCode(&fresh))
        .await
        .unwrap();
    assert!(matches!(s.status, LoginStatus::Authenticated(_)), "{s:?}");
}

/// An email code takes wrong guesses up to its cap (3 here, under the
/// flow's 5 and the lockout's 5): then it is void, and even the right code
/// is refused until a new one is sent.
pub async fn email_code_guesses_are_capped<S: ConformanceStore>(s: S) {
    use countersign_core::EmailOtpSettings;
    let (w, alice) = mfa_alice(&s, 5).await;
    let three = EmailOtpSettings {
        max_attempts: 3,
        ..EmailOtpSettings::default()
    };
    w.svc
        .adopt_factor(w.tenant.id, FactorSettings::EmailOtp(three), &w.client)
        .await
        .unwrap();
    confirmed_email(&w, &alice).await;
    let (flow, _) = w.begin("alice", None).await;
    w.submit(&flow, FactorResponse::Password(PASSWORD))
        .await
        .unwrap();
    w.send_email_code(&flow).await.unwrap();
    let code = last_code(&w, "alice@example.org");
    let wrong = wrong_code(&code);
    for _ in 0..3 {
        let s = w
            .submit(&flow, FactorResponse::EmailCode(wrong))
            .await
            .unwrap();
        assert_eq!(s.refused, Some(Refusal::Incorrect));
    }
    // The cap is reached: the right code no longer works.
    assert!(refused(
        &w.submit(&flow, FactorResponse::EmailCode(&code)).await,
        Refusal::ChallengeMissing
    ));
    w.clock.advance(Duration::seconds(30));
    w.send_email_code(&flow).await.unwrap();
    let fresh = last_code(&w, "alice@example.org");
    let s = w
        .submit(&flow, FactorResponse::EmailCode(&fresh))
        .await
        .unwrap();
    assert!(matches!(s.status, LoginStatus::Authenticated(_)), "{s:?}");
}

/// Email codes are sent at a bounded rate: per flow (3 codes, 30 s apart:
/// past that a typed error, kept in the flow, so alike for every account)
/// and per address (10 an hour: past that nothing is sent, and the answer does
/// not change).
pub async fn email_code_sends_are_throttled<S: ConformanceStore>(s: S) {
    let (w, alice) = mfa_alice(&s, 19).await;
    confirmed_email(&w, &alice).await;
    let to_step_two = |who: &'static str| {
        let w = &w;
        async move {
            let (flow, _) = w.begin(who, Some("mfa")).await;
            w.submit(&flow, FactorResponse::Password(PASSWORD))
                .await
                .unwrap();
            flow
        }
    };
    let flow = to_step_two("alice").await;
    w.send_email_code(&flow).await.unwrap();
    assert!(
        matches!(w.send_email_code(&flow).await, Err(Error::InvalidInput(_))),
        "too soon"
    );
    for _ in 0..2 {
        w.clock.advance(Duration::seconds(30));
        w.send_email_code(&flow).await.unwrap();
    }
    w.clock.advance(Duration::seconds(30));
    assert!(
        matches!(w.send_email_code(&flow).await, Err(Error::InvalidInput(_))),
        "three per flow"
    );
    // Per address: 10 an hour (the enrolment's and these three counted),
    // then silently nothing.
    let sent = |w: &World<S>| w.outbox.messages().len();
    for _ in 0..6 {
        let flow = to_step_two("alice").await;
        w.send_email_code(&flow).await.unwrap();
    }
    let before = sent(&w);
    let flow = to_step_two("alice").await;
    w.send_email_code(&flow).await.unwrap();
    assert_eq!(sent(&w), before, "the address had its 10 codes this hour");
    w.clock.advance(Duration::seconds(3600));
    let flow = to_step_two("alice").await;
    w.send_email_code(&flow).await.unwrap();
    assert_eq!(sent(&w), before + 1, "a new hour");
}

/// An email code past its time is refused and discarded.
pub async fn expired_email_codes_are_refused<S: ConformanceStore>(s: S) {
    let (w, alice) = mfa_alice(&s, 6).await;
    let code = enroll_email(&w, &alice).await;
    w.clock.advance(Duration::seconds(601));
    assert!(matches!(
        w.confirm(&alice, Confirm::EmailOtp { code: &code }).await,
        Err(Error::InvalidInput(ref e)) if e.field == "code"
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

/// A tenant's factors and methods change after provisioning only through
/// checked, audited service calls: a factor an enabled method uses cannot
/// be dropped, a method cannot use a factor the tenant lacks, and the
/// tenant always keeps an enabled method.
pub async fn tenant_factors_and_methods_change_only_through_checked_audited_calls<
    S: ConformanceStore,
>(
    s: S,
) {
    administration(s, NoAudit).await;
}

/// [`tenant_factors_and_methods_change_only_through_checked_audited_calls`],
/// its audit checks made through `audit`.
pub(crate) async fn administration<S: ConformanceStore>(s: S, audit: impl AuditLog<S>) {
    use countersign_core::{AuthMethod, TotpSettings};
    let w = World::mfa(s.clone(), 20).await;
    let (t, c) = (w.tenant.id, &w.client);
    assert!(
        matches!(
            w.svc.remove_tenant_factor(t, FactorKind::Totp, c).await,
            Err(Error::Provisioning(_))
        ),
        "mfa uses totp"
    );
    assert!(w.svc.set_method_enabled(t, "mfa", false, c).await.unwrap());
    assert!(
        w.svc
            .remove_tenant_factor(t, FactorKind::Totp, c)
            .await
            .unwrap()
    );
    assert!(
        matches!(
            w.svc.set_method_enabled(t, "mfa", true, c).await,
            Err(Error::Provisioning(_))
        ),
        "mfa needs totp back"
    );
    let totp_mfa =
        AuthMethod::sequence("totp-mfa", &[FactorKind::Password, FactorKind::Totp]).unwrap();
    assert!(matches!(
        w.svc.add_method(t, totp_mfa.clone(), c).await,
        Err(Error::Provisioning(_))
    ));
    let bad = FactorSettings::Totp(TotpSettings {
        digits: 12,
        ..TotpSettings::default()
    });
    assert!(matches!(
        w.svc.adopt_factor(t, bad, c).await,
        Err(Error::InvalidInput(_))
    ));
    w.svc
        .adopt_factor(t, FactorSettings::Totp(TotpSettings::default()), c)
        .await
        .unwrap();
    assert!(w.svc.set_method_enabled(t, "mfa", true, c).await.unwrap());
    w.svc.add_method(t, totp_mfa.clone(), c).await.unwrap();
    assert!(matches!(
        w.svc.add_method(t, totp_mfa, c).await,
        Err(Error::AlreadyExists(_))
    ));
    assert!(w.svc.remove_method(t, "totp-mfa", c).await.unwrap());
    assert!(w.svc.remove_method(t, "passkey", c).await.unwrap());
    assert!(
        matches!(
            w.svc.set_method_enabled(t, "mfa", false, c).await,
            Err(Error::Provisioning(_))
        ),
        "the last enabled method"
    );
    assert!(matches!(
        w.svc.remove_method(t, "mfa", c).await,
        Err(Error::Provisioning(_))
    ));
    assert!(!w.svc.remove_method(t, "nope", c).await.unwrap());
    let enabled: Vec<_> = w
        .store
        .methods(countersign_core::MethodScope::Tenant(t))
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.enabled)
        .map(|r| r.method.name.to_string())
        .collect();
    assert_eq!(enabled, ["mfa"]);
    let kinds = [
        (AuditKind::TenantFactorChanged, 1),
        (AuditKind::TenantFactorRemoved, 1),
        (AuditKind::TenantMethodChanged, 3),
        (AuditKind::TenantMethodRemoved, 2),
    ];
    for (kind, n) in kinds {
        if let Some(events) = audit.of_kind(&w, kind).await {
            assert_eq!(events.len(), n, "{kind}");
        }
    }
}

/// A second factor protects the account: once a TOTP app (or an email-code
/// address, or a passkey) is confirmed,
/// the tenant's password-only method no longer signs the user in (the
/// password is only the first step of `mfa`); removing the app restores
/// it; a tenant that keeps password-only methods is not changed.
pub async fn a_second_factor_retires_password_only_methods_until_removed<S: ConformanceStore>(
    s: S,
) {
    for keep in [false, true] {
        let mut spec = crate::fixtures::mfa_tenant(countersign_core::LockoutPolicy::default());
        if keep {
            spec.slug = "keeps".into();
            spec.name = "Keeps Inc".into();
        }
        spec.policy.keep_password_only_after_mfa = keep;
        spec.methods.push(
            countersign_core::AuthMethod::sequence("password", &[FactorKind::Password]).unwrap(),
        );
        let w = World::with_tenant(s.clone(), 41 + u64::from(keep), spec).await;
        let alice = w.user("alice").await;
        let password_alone = || {
            let w = &w;
            async move {
                let (flow, _) = w.begin("alice", None).await;
                let s = w
                    .submit(&flow, FactorResponse::Password(PASSWORD))
                    .await
                    .unwrap();
                matches!(s.status, LoginStatus::Authenticated(_))
            }
        };
        assert!(password_alone().await, "no second factor yet");
        enroll_totp(&w, &alice).await;
        assert_eq!(password_alone().await, keep, "keep = {keep}");
        // The method's name still exists for the tenant; only alice lost it.
        let bob = w.user("bob").await;
        let (flow, _) = w.begin("bob", None).await;
        let s = w
            .submit(&flow, FactorResponse::Password(PASSWORD))
            .await
            .unwrap();
        assert!(matches!(s.status, LoginStatus::Authenticated(_)), "{bob:?}");
        assert!(
            w.svc
                .remove_factor(w.tenant.id, alice.id, FactorKind::Totp, &w.client)
                .await
                .unwrap()
        );
        assert!(
            password_alone().await,
            "the app removed, the password alone works again"
        );
        // A confirmed email-code address protects the account the same way.
        confirmed_email(&w, &alice).await;
        assert_eq!(password_alone().await, keep, "email code, keep = {keep}");
        assert!(
            w.svc
                .remove_factor(w.tenant.id, alice.id, FactorKind::EmailOtp, &w.client)
                .await
                .unwrap()
        );
        assert!(password_alone().await, "the address removed");
        // And so does a passkey, until its deletion.
        let mut pk = webauthn_authenticator_rs::softpasskey::SoftPasskey::new(true);
        super::passkeys::register_passkey(&w, &alice, &mut pk, "laptop").await;
        assert_eq!(password_alone().await, keep, "passkey, keep = {keep}");
        let passkey = w.svc.passkeys(w.tenant.id, alice.id).await.unwrap()[0].id;
        assert!(
            w.svc
                .delete_passkey(w.tenant.id, alice.id, passkey, &w.client)
                .await
                .unwrap()
        );
        assert!(password_alone().await, "the passkey deleted");
    }
}
