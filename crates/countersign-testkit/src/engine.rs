//! The login engine end to end, generic over the store: every factor
//! (password, TOTP, recovery codes, email codes, passkeys), enrolment,
//! bad input, lockout across factors, step-up and erasure. Every backend
//! runs it with [`engine_suite!`](crate::engine_suite), so each factor is
//! proven on each store.

use chrono::Duration;
use countersign_core::otp::totp_code;
use countersign_core::{
    AccountState, Argon2Params, AuditFilter, AuditKind, AuditStatus, AuthMethod, AuthnService,
    ClientInfo, Confirm, DenyReason, EmailOtpSettings, Enroll, Enrolled, Env, Error, FactorKind,
    FactorResponse, FactorStep, LockoutPolicy, LoginStatus, ManualClock, NewTenant, NewUser,
    Outbox, PasskeySettings, PasswordHasher, PasswordSettings, RecoveryCodeSettings, SecretToken,
    SessionService, StepUp, Submission, Tenant, TenantFactor, TenantPolicy, TokenKind,
    TotpSettings, User, UserFactor,
};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::ConformanceStore;

/// Every scenario, in the order the suite runs them.
pub const ALL: &[&str] = &[
    "password_then_totp_completes_the_mfa_method",
    "a_totp_code_works_once_even_under_concurrent_submission",
    "recovery_codes_are_single_use_and_regeneration_voids_the_old_set",
    "email_codes_are_hashed_expire_cap_guesses_and_work_once",
    "email_code_guesses_are_capped",
    "expired_email_codes_are_refused",
    "bad_input_is_typed_audited_and_changes_nothing",
    "unknown_identifiers_get_a_flow_that_never_succeeds",
    "failures_across_factors_lock_the_account_and_flows_end_locked",
    "suspension_mid_flow_denies_it",
    "a_chosen_method_limits_the_flow",
    "passkeys_register_sign_in_and_are_managed",
    "discoverable_passkeys_sign_in_without_a_username",
    "step_up_proves_a_fresh_factor",
    "factors_are_removed_and_enrolment_needs_the_tenant_to_offer_them",
    "erasure_ends_flows_and_credentials",
    "sessions_validate_renew_and_expire",
    "refresh_reuse_revokes_the_login",
    "concurrent_refreshes_yield_one_pair",
    "access_tokens_verify_and_keys_rotate_with_overlap",
    "bad_access_tokens_are_refused_with_a_reason",
    "revocation_ends_sessions_at_once",
    "introspection_answers_for_both_token_kinds",
    "cleanup_removes_expired_state",
];

/// The password every fixture user has.
pub const PASSWORD: &str = "correct horse battery staple";
/// The web origin of the fixture tenant's passkeys.
pub const ORIGIN: &str = "https://login.example.com";

/// A service over a store, with a tenant, a manual clock and an outbox.
pub struct World<S> {
    /// The service.
    pub svc: AuthnService<S>,
    /// The store under test.
    pub store: S,
    /// The clock the service reads.
    pub clock: ManualClock,
    /// The tenant (`acme`).
    pub tenant: Tenant,
    /// The client every call reports.
    pub client: ClientInfo,
    /// Where email goes.
    pub outbox: Outbox,
    /// Sessions and tokens over the same store.
    pub sessions: SessionService<S>,
}

/// The issuer of the fixture's access tokens.
pub const ISSUER: &str = "https://auth.example.com";

/// A tenant adopting every factor, with methods `mfa` (password, then one
/// of TOTP, recovery code, email code) and `passkey` (a passkey alone).
pub fn mfa_tenant(lockout: LockoutPolicy) -> NewTenant {
    NewTenant {
        slug: "acme".into(),
        name: "Acme Inc".into(),
        policy: TenantPolicy {
            lockout,
            ..TenantPolicy::default()
        },
        factors: vec![
            TenantFactor::Password(PasswordSettings::default()),
            TenantFactor::Totp(TotpSettings {
                issuer: "Acme".into(),
                ..TotpSettings::default()
            }),
            TenantFactor::RecoveryCodes(RecoveryCodeSettings::default()),
            TenantFactor::EmailOtp(EmailOtpSettings::default()),
            TenantFactor::Passkey(PasskeySettings {
                rp_id: "example.com".into(),
                rp_name: "Acme".into(),
                origin: ORIGIN.into(),
            }),
        ],
        methods: vec![
            AuthMethod::new(
                "mfa",
                vec![
                    FactorStep::Required(FactorKind::Password),
                    FactorStep::AnyOf(vec![
                        FactorKind::Totp,
                        FactorKind::RecoveryCodes,
                        FactorKind::EmailOtp,
                    ]),
                ],
            )
            .expect("method"),
            AuthMethod::sequence("passkey", &[FactorKind::Passkey]).expect("method"),
        ],
    }
}

impl<S: ConformanceStore> World<S> {
    /// The `acme` tenant of [`mfa_tenant`] on `store`, cheap hashing, a
    /// manual clock and randomness seeded with `seed`.
    pub async fn mfa(store: S, seed: u64) -> Self {
        let (env, clock) = Env::manual(seed);
        let outbox = Outbox::new();
        let hasher = PasswordHasher::new(Argon2Params::INSECURE_TEST, 2).expect("hasher");
        let svc = AuthnService::new(store.clone(), env, hasher).with_email_sender(outbox.clone());
        let tenant = svc
            .provision_tenant(mfa_tenant(LockoutPolicy::default()))
            .await
            .expect("tenant");
        let client = ClientInfo::new(Some([198, 51, 100, 4].into()), Some("testkit/1"));
        let sessions = SessionService::new(store.clone(), svc.env().clone(), ISSUER);
        Self {
            svc,
            store,
            clock,
            tenant,
            client,
            outbox,
            sessions,
        }
    }

    /// Begin a login in the fixture tenant.
    pub async fn begin(
        &self,
        identifier: &str,
        method: Option<&str>,
    ) -> (SecretToken, LoginStatus) {
        self.svc
            .begin_login(self.tenant.id, identifier, method, &self.client)
            .await
            .expect("begin login")
    }

    /// Submit a factor to a flow of the fixture tenant.
    pub async fn submit(
        &self,
        flow: &SecretToken,
        response: FactorResponse<'_>,
    ) -> Result<Submission, Error> {
        self.svc
            .submit(self.tenant.id, flow.expose(), response, &self.client)
            .await
    }

    /// An active user with [`PASSWORD`].
    pub async fn user(&self, identifier: &str) -> User {
        let new = NewUser {
            identifier,
            password: Some(PASSWORD),
            state: Some(AccountState::Active),
            ..NewUser::default()
        };
        self.svc
            .register_user(self.tenant.id, new, &self.client)
            .await
            .expect("user")
    }
}

async fn audit_count<S: ConformanceStore>(w: &World<S>) -> usize {
    w.store
        .query_events(
            w.tenant.id,
            &AuditFilter {
                limit: Some(1000),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .len()
}

async fn current_totp<S: ConformanceStore>(w: &World<S>, user: &User) -> String {
    let Some(v) = w
        .store
        .user_factor(w.tenant.id, user.id, FactorKind::Totp)
        .await
        .unwrap()
    else {
        panic!("no totp")
    };
    let UserFactor::Totp(cred) = v.value else {
        panic!()
    };
    totp_code(&cred, w.svc.env().now().timestamp() as u64).unwrap()
}

async fn enroll_totp<S: ConformanceStore>(w: &World<S>, user: &User) {
    let Enrolled::Totp(material) = w
        .svc
        .enroll(w.tenant.id, user.id, Enroll::Totp, &w.client)
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(material.uri.starts_with("otpauth://totp/Acme:"));
    assert!(material.qr_svg.contains("<svg"));
    let code = current_totp(w, user).await;
    w.svc
        .confirm(
            w.tenant.id,
            user.id,
            Confirm::Totp { code: &code },
            &w.client,
        )
        .await
        .unwrap();
    // The confirming code spent this step; log in on the next one.
    w.clock.advance(Duration::seconds(30));
}

fn last_code<S: ConformanceStore>(w: &World<S>, to: &str) -> String {
    let m = w.outbox.last_to(to).expect("an email");
    m.text
        .split_whitespace()
        .find(|t| t.len() == 6 && t.bytes().all(|b| b.is_ascii_digit()))
        .unwrap()
        .to_owned()
}

fn accepts(s: &LoginStatus) -> Vec<FactorKind> {
    match s {
        LoginStatus::AwaitingFactor { accepts, .. } => accepts.clone(),
        other => panic!("not awaiting: {other:?}"),
    }
}

/// Password then TOTP completes the two-step method; the ended flow takes no more factors.
pub async fn password_then_totp_completes_the_mfa_method<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 1).await;
    let alice = w.user("alice").await;
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
    assert!(s.accepted);
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
    assert_eq!(auth.user_id, alice.id);
    assert_eq!(auth.method.as_str(), "mfa");
    assert_eq!(
        auth.factors.iter().map(|f| f.kind).collect::<Vec<_>>(),
        [FactorKind::Password, FactorKind::Totp]
    );
    let logins = w
        .store
        .query_events(
            w.tenant.id,
            &AuditFilter {
                kind: Some(AuditKind::LoginSucceeded),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(logins.len(), 1);
    // The ended flow takes no more factors.
    assert!(matches!(
        w.submit(&flow, FactorResponse::Totp(&code)).await,
        Err(Error::FlowEnded)
    ));
}

/// One TOTP code signs in once, even submitted to four flows at the same instant.
pub async fn a_totp_code_works_once_even_under_concurrent_submission<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 2).await;
    let alice = w.user("alice").await;
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
        assert!(s.accepted);
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
                .accepted
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        accepted += usize::from(t.await.unwrap());
    }
    assert_eq!(accepted, 1, "one code, one login");
    let replays = w
        .store
        .query_events(
            w.tenant.id,
            &AuditFilter {
                status: Some(AuditStatus::Failure),
                kind: Some(AuditKind::Authentication),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        replays
            .iter()
            .filter(|e| e.detail.as_deref() == Some("replayed_code"))
            .count()
            >= 1
    );
}

/// Recovery codes are stored hashed, work once each, and a new set voids the old one.
pub async fn recovery_codes_are_single_use_and_regeneration_voids_the_old_set<
    S: ConformanceStore,
>(
    s: S,
) {
    let w = World::mfa(s.clone(), 3).await;
    let alice = w.user("alice").await;
    let Enrolled::RecoveryCodes(codes) = w
        .svc
        .enroll(w.tenant.id, alice.id, Enroll::RecoveryCodes, &w.client)
        .await
        .unwrap()
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
    assert!(!again.accepted, "a used code is refused");
    let Enrolled::RecoveryCodes(fresh) = w
        .svc
        .enroll(w.tenant.id, alice.id, Enroll::RecoveryCodes, &w.client)
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(
        !login_with(codes[1].clone()).await.accepted,
        "the old set is void"
    );
    assert!(login_with(fresh[1].clone()).await.accepted);
}

/// Email codes are confirmed at enrolment, needed before submission, hashed in the flow, and work once.
pub async fn email_codes_are_hashed_expire_cap_guesses_and_work_once<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 4).await;
    let alice = w.user("alice").await;
    w.svc
        .enroll(
            w.tenant.id,
            alice.id,
            Enroll::EmailOtp {
                address: "alice@example.org",
            },
            &w.client,
        )
        .await
        .unwrap();
    let code = last_code(&w, "alice@example.org");
    assert!(matches!(
        w.svc
            .confirm(
                w.tenant.id,
                alice.id,
                Confirm::EmailOtp { code: "000000" },
                &w.client
            )
            .await,
        Err(Error::InvalidCredentials)
    ));
    w.svc
        .confirm(
            w.tenant.id,
            alice.id,
            Confirm::EmailOtp { code: &code },
            &w.client,
        )
        .await
        .unwrap();

    let (flow, _) = w.begin("alice", None).await;
    w.submit(&flow, FactorResponse::Password(PASSWORD))
        .await
        .unwrap();
    // No code sent yet: a typed error, nothing counted.
    assert!(matches!(
        w.submit(&flow, FactorResponse::EmailCode("123456")).await,
        Err(Error::ChallengeMissing)
    ));
    w.svc
        .send_email_code(w.tenant.id, flow.expose(), &w.client)
        .await
        .unwrap();
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
    let wrong = if code == "111111" { "222222" } else { "111111" };
    assert!(
        !w.submit(&flow, FactorResponse::EmailCode(wrong))
            .await
            .unwrap()
            .accepted
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
    w.svc
        .send_email_code(w.tenant.id, flow.expose(), &w.client)
        .await
        .unwrap();
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
        .accepted
    );
}

/// An email code survives wrong guesses up to its cap and then still works once.
pub async fn email_code_guesses_are_capped<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 5).await;
    let alice = w.user("alice").await;
    w.svc
        .enroll(
            w.tenant.id,
            alice.id,
            Enroll::EmailOtp {
                address: "alice@example.org",
            },
            &w.client,
        )
        .await
        .unwrap();
    let code = last_code(&w, "alice@example.org");
    w.svc
        .confirm(
            w.tenant.id,
            alice.id,
            Confirm::EmailOtp { code: &code },
            &w.client,
        )
        .await
        .unwrap();
    let (flow, _) = w.begin("alice", None).await;
    w.submit(&flow, FactorResponse::Password(PASSWORD))
        .await
        .unwrap();
    w.svc
        .send_email_code(w.tenant.id, flow.expose(), &w.client)
        .await
        .unwrap();
    let code = last_code(&w, "alice@example.org");
    let wrong = if code == "111111" { "222222" } else { "111111" };
    // The flow tolerates 5 failures; the code tolerates 5 guesses: after 4
    // wrong guesses the right code still works once.
    for _ in 0..4 {
        assert!(
            !w.submit(&flow, FactorResponse::EmailCode(wrong))
                .await
                .unwrap()
                .accepted
        );
    }
    let s = w
        .submit(&flow, FactorResponse::EmailCode(&code))
        .await
        .unwrap();
    assert!(s.accepted);
}

/// An email code past its time is refused and discarded.
pub async fn expired_email_codes_are_refused<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 6).await;
    let alice = w.user("alice").await;
    w.svc
        .enroll(
            w.tenant.id,
            alice.id,
            Enroll::EmailOtp {
                address: "alice@example.org",
            },
            &w.client,
        )
        .await
        .unwrap();
    let code = last_code(&w, "alice@example.org");
    w.clock.advance(Duration::seconds(601));
    assert!(matches!(
        w.svc
            .confirm(
                w.tenant.id,
                alice.id,
                Confirm::EmailOtp { code: &code },
                &w.client
            )
            .await,
        Err(Error::InvalidCredentials)
    ));
    // The expired code is gone: confirming again needs a new one.
    assert!(matches!(
        w.svc
            .confirm(
                w.tenant.id,
                alice.id,
                Confirm::EmailOtp { code: &code },
                &w.client
            )
            .await,
        Err(Error::ChallengeMissing)
    ));
}

/// Out-of-order factors, malformed codes and foreign, unknown or expired flows are typed errors, audited, with no state change.
pub async fn bad_input_is_typed_audited_and_changes_nothing<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 7).await;
    let alice = w.user("alice").await;
    enroll_totp(&w, &alice).await;
    let (flow, _) = w.begin("alice", Some("mfa")).await;
    let key = TokenKind::FLOW.parse(flow.expose()).unwrap();
    let version = |w: &World<S>| {
        let store = w.store.clone();
        let tenant = w.tenant.id;
        async move { store.flow(tenant, &key).await.unwrap().unwrap().version }
    };
    let v0 = version(&w).await;
    let events0 = audit_count(&w).await;
    // A factor out of order.
    assert!(matches!(
        w.submit(&flow, FactorResponse::Totp("123456")).await,
        Err(Error::FactorNotExpected)
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
    let audited = audit_count(&w).await - events0;
    assert!(audited >= 9, "every refusal is audited ({audited})");
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
    assert!(!s.accepted);
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
    let w = World::mfa(s.clone(), 9).await;
    let alice = w.user("alice").await;
    enroll_totp(&w, &alice).await;
    // Default policy: 5 failures lock. Mix factors across two flows.
    let (f1, _) = w.begin("alice", None).await;
    for _ in 0..3 {
        assert!(
            !w.submit(&f1, FactorResponse::Password("wrong password!"))
                .await
                .unwrap()
                .accepted
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
            .accepted
    );
    let s = w.submit(&f2, FactorResponse::Totp(&wrong)).await.unwrap();
    assert!(matches!(s.status, LoginStatus::Locked { .. }), "{s:?}");
    // A right password in the first flow is refused: the account is locked.
    let s = w
        .submit(&f1, FactorResponse::Password(PASSWORD))
        .await
        .unwrap();
    assert!(!s.accepted && matches!(s.status, LoginStatus::Locked { .. }));
}

/// A suspension between two steps denies the flow.
pub async fn suspension_mid_flow_denies_it<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 10).await;
    let alice = w.user("alice").await;
    enroll_totp(&w, &alice).await;
    let (flow, _) = w.begin("alice", None).await;
    w.submit(&flow, FactorResponse::Password(PASSWORD))
        .await
        .unwrap();
    w.svc
        .transition(
            w.tenant.id,
            alice.id,
            AccountState::Suspended,
            None,
            &w.client,
        )
        .await
        .unwrap();
    let code = current_totp(&w, &alice).await;
    let s = w.submit(&flow, FactorResponse::Totp(&code)).await.unwrap();
    assert_eq!(s.status, LoginStatus::Denied(DenyReason::AccountInactive));
    assert!(!s.accepted);
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
    assert!(matches!(
        w.submit(&flow, FactorResponse::Password(PASSWORD)).await,
        Err(Error::FactorNotExpected)
    ));
}

fn soft_register(
    pk: &mut SoftPasskey,
    challenge: webauthn_rs::prelude::CreationChallengeResponse,
) -> String {
    let reg = pk
        .do_registration(Url::parse(ORIGIN).unwrap(), challenge)
        .unwrap();
    serde_json::to_string(&reg).unwrap()
}

fn soft_login(
    pk: &mut SoftPasskey,
    challenge: webauthn_rs::prelude::RequestChallengeResponse,
) -> String {
    let cred = pk
        .do_authentication(Url::parse(ORIGIN).unwrap(), challenge)
        .unwrap();
    serde_json::to_string(&cred).unwrap()
}

async fn register_passkey<S: ConformanceStore>(
    w: &World<S>,
    user: &User,
    pk: &mut SoftPasskey,
    name: &str,
) {
    let Enrolled::Passkey {
        ceremony,
        challenge,
    } = w
        .svc
        .enroll(w.tenant.id, user.id, Enroll::Passkey { name }, &w.client)
        .await
        .unwrap()
    else {
        panic!()
    };
    let json = soft_register(pk, *challenge);
    let info = w
        .svc
        .confirm(
            w.tenant.id,
            user.id,
            Confirm::Passkey {
                ceremony: ceremony.expose(),
                credential: &json,
            },
            &w.client,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.name, name);
    // The ceremony is single use.
    assert!(
        w.svc
            .confirm(
                w.tenant.id,
                user.id,
                Confirm::Passkey {
                    ceremony: ceremony.expose(),
                    credential: &json
                },
                &w.client
            )
            .await
            .is_err()
    );
}

/// Passkeys register, sign in (use recorded), resist replayed assertions, and can be renamed and deleted.
pub async fn passkeys_register_sign_in_and_are_managed<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 12).await;
    let alice = w.user("alice").await;
    let mut pk = SoftPasskey::new(true);
    register_passkey(&w, &alice, &mut pk, "laptop").await;

    let (flow, _) = w.begin("alice", Some("passkey")).await;
    // No challenge yet: a typed error.
    assert!(matches!(
        w.submit(&flow, FactorResponse::Passkey("{}")).await,
        Err(Error::InvalidInput(_)) | Err(Error::ChallengeMissing)
    ));
    let challenge = w
        .svc
        .passkey_challenge(w.tenant.id, flow.expose(), &w.client)
        .await
        .unwrap();
    assert!(matches!(
        w.submit(&flow, FactorResponse::Passkey("{not json")).await,
        Err(Error::InvalidInput(_))
    ));
    let answer = soft_login(&mut pk, challenge);
    let s = w
        .submit(&flow, FactorResponse::Passkey(&answer))
        .await
        .unwrap();
    let LoginStatus::Authenticated(auth) = s.status else {
        panic!("{s:?}")
    };
    assert_eq!(auth.factors[0].kind, FactorKind::Passkey);
    let listed = w.svc.passkeys(w.tenant.id, alice.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used_at.is_some(), "use is recorded");

    // Replaying the same assertion in a new flow fails (new challenge).
    let (flow2, _) = w.begin("alice", Some("passkey")).await;
    w.svc
        .passkey_challenge(w.tenant.id, flow2.expose(), &w.client)
        .await
        .unwrap();
    assert!(
        !w.submit(&flow2, FactorResponse::Passkey(&answer))
            .await
            .unwrap()
            .accepted
    );

    assert!(
        w.svc
            .rename_passkey(w.tenant.id, alice.id, listed[0].id, "work laptop")
            .await
            .unwrap()
    );
    assert_eq!(
        w.svc.passkeys(w.tenant.id, alice.id).await.unwrap()[0].name,
        "work laptop"
    );
    assert!(
        w.svc
            .delete_passkey(w.tenant.id, alice.id, listed[0].id, &w.client)
            .await
            .unwrap()
    );
    assert!(
        w.svc
            .passkeys(w.tenant.id, alice.id)
            .await
            .unwrap()
            .is_empty()
    );
    let (flow3, _) = w.begin("alice", Some("passkey")).await;
    assert!(matches!(
        w.svc
            .passkey_challenge(w.tenant.id, flow3.expose(), &w.client)
            .await,
        Err(Error::FactorNotEnrolled(FactorKind::Passkey))
    ));
}

/// A discoverable passkey signs in without a username.
pub async fn discoverable_passkeys_sign_in_without_a_username<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 13).await;
    let alice = w.user("alice").await;
    let mut pk = SoftPasskey::new(true);
    register_passkey(&w, &alice, &mut pk, "phone").await;
    let cred_id = {
        let v = w
            .store
            .user_factor(w.tenant.id, alice.id, FactorKind::Passkey)
            .await
            .unwrap()
            .unwrap();
        let UserFactor::Passkey(set) = v.value else {
            panic!()
        };
        set.keys[0].passkey.cred_id().clone()
    };
    let (flow, status, mut challenge) = w
        .svc
        .begin_passkey_login(w.tenant.id, &w.client)
        .await
        .unwrap();
    assert_eq!(accepts(&status), [FactorKind::Passkey]);
    assert!(
        challenge.public_key.allow_credentials.is_empty(),
        "username-less"
    );
    // The soft authenticator has no resident keys: point it at the
    // credential, and add the user handle a resident key would return
    // (the handle is not covered by the signature).
    challenge.public_key.allow_credentials = vec![webauthn_rs_proto::AllowCredentials {
        type_: "public-key".into(),
        id: cred_id,
        transports: None,
    }];
    let answer = soft_login(&mut pk, challenge);
    let mut value: serde_json::Value = serde_json::from_str(&answer).unwrap();
    use base64::Engine;
    value["response"]["userHandle"] = serde_json::Value::String(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(alice.id.as_uuid().as_bytes()),
    );
    let answer = value.to_string();
    let s = w
        .submit(&flow, FactorResponse::Passkey(&answer))
        .await
        .unwrap();
    let LoginStatus::Authenticated(auth) = s.status else {
        panic!("{s:?}")
    };
    assert_eq!(auth.user_id, alice.id);
}

/// A step-up flow proves a fresh factor that makes a stale authentication fresh again.
pub async fn step_up_proves_a_fresh_factor<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 14).await;
    let alice = w.user("alice").await;
    enroll_totp(&w, &alice).await;
    let (flow, _) = w.begin("alice", None).await;
    w.submit(&flow, FactorResponse::Password(PASSWORD))
        .await
        .unwrap();
    let code = current_totp(&w, &alice).await;
    let LoginStatus::Authenticated(first) = w
        .submit(&flow, FactorResponse::Totp(&code))
        .await
        .unwrap()
        .status
    else {
        panic!()
    };
    let fresh = StepUp::fresh(std::time::Duration::from_secs(300));
    assert!(first.satisfies(&fresh, w.svc.env().now()));
    w.clock.advance(Duration::seconds(3600));
    assert!(
        !first.satisfies(&fresh, w.svc.env().now()),
        "an hour later it is stale"
    );
    let (step, status) = w
        .svc
        .begin_step_up(w.tenant.id, alice.id, &[FactorKind::Totp], &w.client)
        .await
        .unwrap();
    assert_eq!(accepts(&status), [FactorKind::Totp]);
    let code = current_totp(&w, &alice).await;
    let LoginStatus::Authenticated(again) = w
        .submit(&step, FactorResponse::Totp(&code))
        .await
        .unwrap()
        .status
    else {
        panic!()
    };
    let merged = first.merge(&again).unwrap();
    assert!(merged.satisfies(&fresh, w.svc.env().now()));
}

/// Enrolment needs the tenant to offer the factor; removal is audited and reports existence.
pub async fn factors_are_removed_and_enrolment_needs_the_tenant_to_offer_them<
    S: ConformanceStore,
>(
    s: S,
) {
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
        m.svc
            .enroll(m.tenant.id, bob.id, Enroll::Totp, &m.client)
            .await,
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
    let removed = m
        .store
        .query_events(
            m.tenant.id,
            &AuditFilter {
                kind: Some(AuditKind::FactorRemoved),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(removed.len(), 1);
}

/// Erasure takes the user's credentials and flows: a flow begun before
/// erasure is gone, and the identifier no longer signs in.
pub async fn erasure_ends_flows_and_credentials<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 17).await;
    let alice = w.user("alice").await;
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
            .accepted
    );
}

// ── Sessions and tokens ──────────────────────────────────────────────────

use countersign_core::jwt::JwtError;
use countersign_core::{AccessTokenPolicy, Authentication, RefreshRefusal, SessionPolicy};

/// Sign `user` in through the `mfa` method (password, then a fresh
/// recovery code) and return the proof.
pub async fn sign_in<S: ConformanceStore>(w: &World<S>, user: &User) -> Authentication {
    let Enrolled::RecoveryCodes(codes) = w
        .svc
        .enroll(w.tenant.id, user.id, Enroll::RecoveryCodes, &w.client)
        .await
        .expect("codes")
    else {
        panic!("recovery codes")
    };
    let (flow, _) = w
        .svc
        .begin_login(
            w.tenant.id,
            user.identifier.as_str(),
            Some("mfa"),
            &w.client,
        )
        .await
        .expect("flow");
    w.submit(&flow, FactorResponse::Password(PASSWORD))
        .await
        .expect("password");
    let s = w
        .submit(&flow, FactorResponse::RecoveryCode(&codes[0]))
        .await
        .expect("code");
    match s.status {
        LoginStatus::Authenticated(a) => a,
        other => panic!("not signed in: {other:?}"),
    }
}

async fn set_sessions<S: ConformanceStore>(w: &World<S>, sessions: SessionPolicy) {
    let mut policy = w.tenant.policy.clone();
    policy.sessions = sessions;
    w.svc
        .update_tenant_policy(w.tenant.id, policy)
        .await
        .unwrap();
}

fn api_tokens() -> SessionPolicy {
    SessionPolicy {
        access_tokens: Some(AccessTokenPolicy {
            audience: "api".into(),
            ttl: std::time::Duration::from_secs(300),
        }),
        ..SessionPolicy::default()
    }
}

/// A session validates, renews near its idle deadline, ends when idle,
/// and ends at its absolute lifetime however active.
pub async fn sessions_validate_renew_and_expire<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 30).await;
    let alice = w.user("alice").await;
    let auth = sign_in(&w, &alice).await;
    let issued = w.sessions.issue(&auth, &w.client).await.unwrap();
    let token = issued.session_token.expose().to_owned();
    assert!(token.starts_with("css_"));
    let got = w.sessions.validate(&token).await.unwrap();
    assert_eq!(
        (got.id, got.user_id, got.auth.clone()),
        (issued.session.id, alice.id, auth.clone())
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
    let busy = w.sessions.issue(&auth, &w.client).await.unwrap();
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
    let w = World::mfa(s.clone(), 31).await;
    let alice = w.user("alice").await;
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
    let reuse = w
        .store
        .query_events(
            w.tenant.id,
            &AuditFilter {
                kind: Some(AuditKind::RefreshReuse),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(reuse.len(), 1);
    assert_eq!(reuse[0].user_id, Some(alice.id));
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

/// Access tokens are EdDSA JWTs with standard claims; after a key rotation
/// the old key verifies until its tokens expire, then leaves the JWKS.
pub async fn access_tokens_verify_and_keys_rotate_with_overlap<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 33).await;
    set_sessions(&w, api_tokens()).await;
    let alice = w.user("alice").await;
    let auth = sign_in(&w, &alice).await;
    let issued = w.sessions.issue(&auth, &w.client).await.unwrap();
    let jwt = issued.access_token.unwrap();
    let header = jwt.split('.').next().unwrap();
    use base64::Engine;
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "EdDSA");
    let old_kid = header["kid"].as_str().unwrap().to_owned();
    let c = w.sessions.verify_access_token(&jwt).await.unwrap();
    assert_eq!(
        (c.iss.as_str(), c.aud.as_str(), c.sub.clone(), c.tid.clone()),
        (ISSUER, "api", alice.id.to_string(), w.tenant.id.to_string())
    );
    assert_eq!(c.sid, issued.session.id.to_string());
    assert_eq!(c.amr, ["otp", "pwd", "mfa"]);
    assert_eq!(c.acr, "mfa");
    assert_eq!(c.exp - c.iat, 300);
    assert_eq!(w.sessions.jwks(w.tenant.id).await.unwrap().keys.len(), 1);

    w.clock.advance(Duration::seconds(10));
    let new_kid = w.sessions.rotate_signing_key(w.tenant.id).await.unwrap();
    assert_ne!(new_kid, old_kid);
    let jwks = w.sessions.jwks(w.tenant.id).await.unwrap();
    assert_eq!(
        jwks.keys.iter().map(|k| k.kid.clone()).collect::<Vec<_>>(),
        [old_kid.clone(), new_kid.clone()]
    );
    assert!(
        jwks.keys
            .iter()
            .all(|k| k.kty == "OKP" && k.crv == "Ed25519" && k.alg == "EdDSA")
    );
    w.sessions
        .verify_access_token(&jwt)
        .await
        .expect("the retired key still verifies");
    let refreshed = w
        .sessions
        .refresh(issued.refresh_token.unwrap().expose(), &w.client)
        .await
        .unwrap();
    let fresh = refreshed.access_token.unwrap();
    assert!(
        fresh.split('.').next() != jwt.split('.').next(),
        "signed with the new kid"
    );
    w.clock.advance(Duration::seconds(290));
    assert!(matches!(
        w.sessions.verify_access_token(&jwt).await,
        Err(Error::AccessToken(JwtError::Expired))
    ));
    w.clock.advance(Duration::seconds(71));
    let jwks = w.sessions.jwks(w.tenant.id).await.unwrap();
    assert_eq!(jwks.keys.len(), 1, "the old key's overlap is over");
    assert_eq!(w.sessions.cleanup().await.unwrap().keys, 1);
    // Private keys never show in Debug output.
    let keys = format!(
        "{:?}",
        countersign_core::KeyStore::signing_keys(&w.store, w.tenant.id)
            .await
            .unwrap()
    );
    assert!(keys.contains("<redacted>"));
}

/// Tampered, unsigned, foreign and malformed access tokens are refused
/// with a typed reason.
pub async fn bad_access_tokens_are_refused_with_a_reason<S: ConformanceStore>(s: S) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let w = World::mfa(s.clone(), 34).await;
    set_sessions(&w, api_tokens()).await;
    let alice = w.user("alice").await;
    let auth = sign_in(&w, &alice).await;
    let jwt = w
        .sessions
        .issue(&auth, &w.client)
        .await
        .unwrap()
        .access_token
        .unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    let reason = |r: Result<countersign_core::jwt::AccessClaims, Error>| match r {
        Err(Error::AccessToken(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let none = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    assert_eq!(
        reason(w.sessions.verify_access_token(&none).await),
        JwtError::Algorithm
    );
    let mut sig = b64.decode(parts[2]).unwrap();
    sig[0] ^= 1;
    let tampered = format!("{}.{}.{}", parts[0], parts[1], b64.encode(&sig));
    assert_eq!(
        reason(w.sessions.verify_access_token(&tampered).await),
        JwtError::Signature
    );
    let mut claims: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = serde_json::Value::String("someone-else".into());
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(claims.to_string()),
        parts[2]
    );
    assert_eq!(
        reason(w.sessions.verify_access_token(&forged).await),
        JwtError::Signature
    );
    let header = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": "nope"});
    let unknown = format!(
        "{}.{}.{}",
        b64.encode(header.to_string()),
        parts[1],
        parts[2]
    );
    assert_eq!(
        reason(w.sessions.verify_access_token(&unknown).await),
        JwtError::UnknownKey
    );
    let other_issuer =
        SessionService::new(w.store.clone(), w.svc.env().clone(), "https://evil.example");
    assert_eq!(
        reason(other_issuer.verify_access_token(&jwt).await),
        JwtError::Issuer
    );
    set_sessions(
        &w,
        SessionPolicy {
            access_tokens: Some(AccessTokenPolicy {
                audience: "other".into(),
                ttl: std::time::Duration::from_secs(300),
            }),
            ..SessionPolicy::default()
        },
    )
    .await;
    assert_eq!(
        reason(w.sessions.verify_access_token(&jwt).await),
        JwtError::Audience
    );
    for garbage in ["", "a.b.c", "not a jwt", &"x".repeat(100_000)] {
        assert_eq!(
            reason(w.sessions.verify_access_token(garbage).await),
            JwtError::Malformed,
            "{garbage:.20}"
        );
    }
}

/// Logout, logout everywhere, admin revocation, suspension, password
/// change and deletion end sessions at once.
pub async fn revocation_ends_sessions_at_once<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 35).await;
    let alice = w.user("alice").await;
    let auth = sign_in(&w, &alice).await;
    let issue = || async { w.sessions.issue(&auth, &w.client).await.unwrap() };
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
    w.svc
        .transition(
            w.tenant.id,
            alice.id,
            AccountState::Suspended,
            None,
            &w.client,
        )
        .await
        .unwrap();
    assert!(!valid(c.session_token.expose().into()).await);
    w.svc
        .transition(w.tenant.id, alice.id, AccountState::Active, None, &w.client)
        .await
        .unwrap();
    let f = w.sessions.issue(&auth, &w.client).await.unwrap();
    w.svc
        .transition(
            w.tenant.id,
            alice.id,
            AccountState::Deleted,
            None,
            &w.client,
        )
        .await
        .unwrap();
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

/// Introspection answers RFC 7662-style for sessions and access tokens,
/// and says only `active: false` for anything invalid.
pub async fn introspection_answers_for_both_token_kinds<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 36).await;
    set_sessions(&w, api_tokens()).await;
    let alice = w.user("alice").await;
    let auth = sign_in(&w, &alice).await;
    let issued = w.sessions.issue(&auth, &w.client).await.unwrap();
    for token in [
        issued.session_token.expose().to_owned(),
        issued.access_token.clone().unwrap(),
    ] {
        let i = w.sessions.introspect(&token).await.unwrap();
        assert!(i.active);
        assert_eq!(
            (i.tenant_id, i.sub, i.sid),
            (Some(w.tenant.id), Some(alice.id), Some(issued.session.id))
        );
        assert_eq!(i.acr.as_deref(), Some("mfa"));
        assert!(i.amr.contains(&"pwd".to_owned()));
        assert_eq!(i.auth_time, Some(auth.at.timestamp()));
    }
    w.sessions
        .logout(issued.session_token.expose(), &w.client)
        .await
        .unwrap();
    for dead in [issued.session_token.expose(), "css_short", "garbage", ""] {
        let i = w.sessions.introspect(dead).await.unwrap();
        assert!(
            !i.active && i.sub.is_none() && i.tenant_id.is_none(),
            "{dead:.12}"
        );
        assert_eq!(
            serde_json::to_value(&i).unwrap(),
            serde_json::json!({"active": false})
        );
    }
}

/// The cleanup removes expired flows and ended sessions, and is safe to
/// run again (and concurrently).
pub async fn cleanup_removes_expired_state<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 37).await;
    let alice = w.user("alice").await;
    let auth = sign_in(&w, &alice).await;
    w.sessions.issue(&auth, &w.client).await.unwrap();
    w.begin("alice", None).await;
    w.clock.advance(Duration::hours(13));
    let (a, b) = tokio::join!(w.sessions.cleanup(), w.sessions.cleanup());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.flows + b.flows >= 2, "the sign-in flow and the begun one");
    assert_eq!(a.sessions + b.sessions, 2, "one session, one family");
    let again = w.sessions.cleanup().await.unwrap();
    assert_eq!((again.flows, again.sessions), (0, 0));
}

/// Provision a password-only tenant `slug` through `authn`, register an
/// active user `user` without a password, and return a one-factor
/// authentication of that user at the service's current time (for
/// benchmarks and session fixtures that need a real user row).
pub async fn provisioned_authentication<S>(authn: &AuthnService<S>, slug: &str) -> Authentication
where
    S: countersign_core::IdentityStore
        + countersign_core::FactorStore
        + countersign_core::FlowStore
        + countersign_core::SessionStore,
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
