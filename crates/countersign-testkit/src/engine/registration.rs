//! Self-registration with address verification, password reset by an
//! emailed token, and password change notices.

use chrono::Duration;
use countersign_core::{
    AccountState, AuditKind, AuditStatus, AuthnConfig, Error, Notice, Registration, SecurityEvent,
    User, VerificationPurpose,
};

use super::{AuditLog, NoAudit};
use crate::ConformanceStore;
use crate::fixtures::{PASSWORD, World, sign_in};

const ALICE: &str = "alice@example.com";
const NEW_PASSWORD: &str = "a brand new passphrase 2024";

fn registration(password: &str) -> Registration<'_> {
    Registration {
        email: ALICE,
        password,
        display_name: Some("Alice"),
    }
}

/// The newest address code mailed to `to`, if the newest mail is one.
fn last_code<S>(w: &World<S>, to: &str) -> Option<String> {
    match w.outbox.last_to(to)?.notice {
        Notice::AddressConfirmation { code, .. } => Some(code.expose().to_owned()),
        _ => None,
    }
}

/// The newest reset token mailed to `to`, if the newest mail is one.
fn last_reset<S>(w: &World<S>, to: &str) -> Option<String> {
    match w.outbox.last_to(to)?.notice {
        Notice::PasswordReset { token, .. } => Some(token.expose().to_owned()),
        _ => None,
    }
}

fn failed<T: std::fmt::Debug>(r: Result<T, Error>) -> bool {
    matches!(r, Err(Error::VerificationFailed))
}

/// A code that is not `code` (same length).
fn other_code(code: &str) -> String {
    code.chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect()
}

/// An active user with an address and [`PASSWORD`].
async fn alice<S: ConformanceStore>(w: &World<S>) -> User {
    w.user_with_address(ALICE, ALICE).await
}

/// A registration creates a pending account that cannot sign in, mails
/// an 8-digit code (stored only as a keyed hash), and the code activates
/// the account with the password chosen, once.
pub async fn registration_mails_a_code_that_activates_the_account<S: ConformanceStore>(s: S) {
    register_and_verify(s, NoAudit).await;
}

/// [`registration_mails_a_code_that_activates_the_account`], its audit
/// checks made through `audit`.
pub(crate) async fn register_and_verify<S: ConformanceStore>(s: S, audit: impl AuditLog<S>) {
    let w = World::mfa(s.clone(), 60).await;
    let receipt = w
        .svc
        .register(w.tenant.id, registration(PASSWORD), &w.client)
        .await
        .unwrap();
    assert_eq!(receipt.expires_at, w.svc.env().now() + Duration::hours(1));
    let pending = w.user_by(ALICE).await;
    assert_eq!(pending.state, AccountState::Pending);
    assert!(matches!(
        w.login(ALICE, PASSWORD).await,
        Err(Error::InvalidCredentials)
    ));
    let code = last_code(&w, ALICE).expect("a code was mailed");
    assert_eq!(code.len(), 8);
    let stored = s
        .verification(w.tenant.id, pending.id, VerificationPurpose::Address)
        .await
        .unwrap()
        .expect("stored");
    assert!(!stored.secret_hash.contains(&code), "stored as a hash");
    assert!(!format!("{stored:?}").contains(&stored.secret_hash));

    assert!(failed(
        w.svc
            .verify_address(w.tenant.id, ALICE, &other_code(&code), &w.client)
            .await
    ));
    let active = w
        .svc
        .verify_address(w.tenant.id, ALICE, &code, &w.client)
        .await
        .unwrap();
    assert_eq!(active.state, AccountState::Active);
    w.login(ALICE, PASSWORD).await.unwrap_err(); // mfa needs a second factor
    assert!(matches!(
        w.login(ALICE, "a wrong password entirely").await,
        Err(Error::InvalidCredentials)
    ));
    // The password works as the first factor of a login.
    let user = w.user_by(ALICE).await;
    sign_in(&w, &user).await;
    // Once only.
    assert!(failed(
        w.svc
            .verify_address(w.tenant.id, ALICE, &code, &w.client)
            .await
    ));
    assert!(
        s.verification(w.tenant.id, user.id, VerificationPurpose::Address)
            .await
            .unwrap()
            .is_none()
    );
    // Bad input is typed.
    assert!(matches!(
        w.svc
            .verify_address(w.tenant.id, ALICE, "12ab", &w.client)
            .await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        w.svc
            .register(
                w.tenant.id,
                Registration {
                    email: "not an address",
                    password: PASSWORD,
                    display_name: None
                },
                &w.client
            )
            .await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        w.svc
            .register(
                w.tenant.id,
                Registration {
                    email: "bob@example.com",
                    password: "short",
                    display_name: None
                },
                &w.client
            )
            .await,
        Err(Error::PasswordRejected(_))
    ));
    assert!(w.user_opt("bob@example.com").await.is_none());
    let failures = |events: Vec<countersign_core::AuditEvent>| {
        events
            .iter()
            .filter(|e| e.status == AuditStatus::Failure)
            .count()
    };
    if let Some(events) = audit.of_kind(&w, AuditKind::UserRegistered).await {
        assert_eq!(failures(events), 2, "each refused registration is audited");
    }
    if let Some(events) = audit.of_kind(&w, AuditKind::AddressVerified).await {
        assert_eq!(
            events.len() - failures(events.clone()),
            1,
            "one verification"
        );
        assert_eq!(failures(events), 2, "the wrong code and the replay");
    }
}

/// Registering an address that has an account answers exactly as for a
/// new one; nothing changes, and the owner is told instead of being sent
/// a code.
pub async fn registering_an_existing_address_answers_alike_and_tells_the_owner<
    S: ConformanceStore,
>(
    s: S,
) {
    let w = World::mfa(s.clone(), 61).await;
    let existing = alice(&w).await;
    let fresh = w
        .svc
        .register(
            w.tenant.id,
            Registration {
                email: "carol@example.com",
                ..registration(NEW_PASSWORD)
            },
            &w.client,
        )
        .await
        .unwrap();
    let again = w
        .svc
        .register(w.tenant.id, registration(NEW_PASSWORD), &w.client)
        .await
        .unwrap();
    assert_eq!(again, fresh, "the same answer");
    let after = w.user_by(ALICE).await;
    assert_eq!(after, existing, "the account is unchanged");
    let mail = w.outbox.last_to(ALICE).expect("the owner is told");
    assert_eq!(
        mail.notice,
        Notice::Security(SecurityEvent::RegistrationAttempted)
    );
    sign_in(&w, &after).await; // still the old password
    assert!(
        s.verification(w.tenant.id, existing.id, VerificationPurpose::Address)
            .await
            .unwrap()
            .is_none(),
        "no code for an existing account"
    );
}

/// The password of a pending account travels with its code: a later
/// registration of the same address replaces both, so a stranger who
/// registered someone's address first cannot choose their password.
pub async fn a_later_registration_replaces_the_pending_code_and_password<S: ConformanceStore>(
    s: S,
) {
    let w = World::mfa(s.clone(), 62).await;
    let squatter = "a squatter's own passphrase 99";
    w.svc
        .register(w.tenant.id, registration(squatter), &w.client)
        .await
        .unwrap();
    let first = last_code(&w, ALICE).unwrap();
    w.clock.advance(Duration::minutes(2));
    w.svc
        .register(w.tenant.id, registration(PASSWORD), &w.client)
        .await
        .unwrap();
    let second = last_code(&w, ALICE).unwrap();
    assert_ne!(first, second);
    assert!(failed(
        w.svc
            .verify_address(w.tenant.id, ALICE, &first, &w.client)
            .await
    ));
    w.svc
        .verify_address(w.tenant.id, ALICE, &second, &w.client)
        .await
        .unwrap();
    let user = w.user_by(ALICE).await;
    sign_in(&w, &user).await; // PASSWORD, not the squatter's
    assert!(matches!(
        w.login(ALICE, squatter).await,
        Err(Error::InvalidCredentials)
    ));
}

/// Codes expire, tolerate a bounded number of wrong guesses, and resends
/// are limited in count and interval; past a limit the answer is the same
/// and nothing is sent.
pub async fn address_codes_expire_cap_guesses_and_limit_resends<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 63).await;
    let cfg = AuthnConfig::default();
    w.svc
        .register(w.tenant.id, registration(PASSWORD), &w.client)
        .await
        .unwrap();
    let code = last_code(&w, ALICE).unwrap();
    for _ in 0..cfg.verification_max_failures {
        assert!(failed(
            w.svc
                .verify_address(w.tenant.id, ALICE, &other_code(&code), &w.client)
                .await
        ));
    }
    assert!(
        failed(
            w.svc
                .verify_address(w.tenant.id, ALICE, &code, &w.client)
                .await
        ),
        "out of guesses, even the right code fails"
    );

    // A resend too soon sends nothing; later it sends a new code.
    let sent = w.outbox.messages().len();
    w.svc
        .resend_address_code(w.tenant.id, ALICE, &w.client)
        .await
        .unwrap();
    assert_eq!(w.outbox.messages().len(), sent, "too soon");
    w.clock.advance(Duration::seconds(61));
    w.svc
        .resend_address_code(w.tenant.id, ALICE, &w.client)
        .await
        .unwrap();
    let fresh = last_code(&w, ALICE).unwrap();
    assert_eq!(w.outbox.messages().len(), sent + 1);

    // It expires.
    w.clock.advance(Duration::hours(1));
    assert!(failed(
        w.svc
            .verify_address(w.tenant.id, ALICE, &fresh, &w.client)
            .await
    ));

    // An account is sent at most `verification_sends` while one is live.
    let mut sends = 0;
    for _ in 0..cfg.verification_sends + 3 {
        w.clock.advance(Duration::seconds(61));
        let before = w.outbox.messages().len();
        w.svc
            .resend_address_code(w.tenant.id, ALICE, &w.client)
            .await
            .unwrap();
        sends += w.outbox.messages().len() - before;
    }
    assert_eq!(sends, cfg.verification_sends as usize);
    let last = last_code(&w, ALICE).unwrap();
    w.svc
        .verify_address(w.tenant.id, ALICE, &last, &w.client)
        .await
        .unwrap();
    // Unknown and active addresses answer alike and send nothing.
    let before = w.outbox.messages().len();
    for who in [ALICE, "nobody@example.com"] {
        w.svc
            .resend_address_code(w.tenant.id, who, &w.client)
            .await
            .unwrap();
    }
    assert_eq!(w.outbox.messages().len(), before);
}

/// A reset request answers the same for every identifier; the mailed
/// token sets a new password (after the rules, which leave the token
/// usable when they refuse), ends every session and refresh family, tells
/// the owner, and works once.
pub async fn password_reset_ends_every_session_and_works_once<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 64).await;
    let user = alice(&w).await;
    let login = sign_in(&w, &user).await;
    let issued = w.sessions.issue(&login, &w.client).await.unwrap();

    let before = w.outbox.messages().len();
    for nobody in ["nobody@example.com", "bob"] {
        w.svc
            .request_password_reset(w.tenant.id, nobody, &w.client)
            .await
            .unwrap();
    }
    assert_eq!(w.outbox.messages().len(), before, "no mail for nobody");
    w.svc
        .request_password_reset(w.tenant.id, ALICE, &w.client)
        .await
        .unwrap();
    let token = last_reset(&w, ALICE).expect("a token was mailed");
    assert!(token.starts_with("cspr_"));
    // The export names the pending reset, never its token or hash.
    let export = w.svc.export_user(w.tenant.id, user.id).await.unwrap();
    assert_eq!(
        export
            .pending_verifications
            .iter()
            .map(|v| v.purpose)
            .collect::<Vec<_>>(),
        [VerificationPurpose::PasswordReset]
    );
    let json = serde_json::to_string(&export).unwrap();
    let hash = countersign_core::RESET_TOKEN
        .parse(&token)
        .unwrap()
        .to_hex();
    assert!(!json.contains(&token) && !json.contains(&hash), "{json}");

    assert!(matches!(
        w.svc
            .reset_password(w.tenant.id, &token, "short", &w.client)
            .await,
        Err(Error::PasswordRejected(_))
    ));
    w.svc
        .reset_password(w.tenant.id, &token, NEW_PASSWORD, &w.client)
        .await
        .unwrap();
    assert!(matches!(
        w.sessions.validate(issued.session_token.expose()).await,
        Err(Error::SessionInvalid)
    ));
    if let Some(refresh) = &issued.refresh_token {
        assert!(
            w.sessions
                .refresh(refresh.expose(), &w.client)
                .await
                .is_err()
        );
    }
    assert_eq!(
        w.outbox.last_to(ALICE).unwrap().notice,
        Notice::Security(SecurityEvent::PasswordChanged)
    );
    assert!(matches!(
        w.login(ALICE, PASSWORD).await,
        Err(Error::InvalidCredentials)
    ));
    assert!(failed(
        w.svc
            .reset_password(w.tenant.id, &token, "yet another passphrase 7", &w.client)
            .await
    ));
    assert!(matches!(
        w.svc
            .reset_password(w.tenant.id, "cspr_garbage", NEW_PASSWORD, &w.client)
            .await,
        Err(Error::InvalidInput(_))
    ));
}

/// Two concurrent resets with one token: exactly one succeeds.
pub async fn concurrent_resets_with_one_token_have_one_winner<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 65).await;
    let user = alice(&w).await;
    w.svc
        .request_password_reset(w.tenant.id, ALICE, &w.client)
        .await
        .unwrap();
    let token = last_reset(&w, ALICE).unwrap();
    let mut tasks = Vec::new();
    for i in 0..4 {
        let (svc, client, tenant, token) =
            (w.svc.clone(), w.client.clone(), w.tenant.id, token.clone());
        let password = format!("concurrent passphrase {i} x");
        tasks.push(tokio::spawn(async move {
            svc.reset_password(tenant, &token, &password, &client).await
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(Error::VerificationFailed))),
        "{results:?}"
    );
    assert!(
        s.verification(w.tenant.id, user.id, VerificationPurpose::PasswordReset)
            .await
            .unwrap()
            .is_none()
    );
}

/// A reset token expires, works only in its own tenant, and only for an
/// account still active; a newer request supersedes an older token.
pub async fn reset_tokens_expire_stay_in_their_tenant_and_need_an_active_account<
    S: ConformanceStore,
>(
    s: S,
) {
    let w = World::mfa(s.clone(), 66).await;
    let other = World::with_tenant(s.clone(), 67, {
        let mut t = crate::fixtures::mfa_tenant(Default::default());
        t.slug = "globex".into();
        t
    })
    .await;
    let user = alice(&w).await;
    w.svc
        .request_password_reset(w.tenant.id, ALICE, &w.client)
        .await
        .unwrap();
    let first = last_reset(&w, ALICE).unwrap();
    assert!(failed(
        other
            .svc
            .reset_password(other.tenant.id, &first, NEW_PASSWORD, &w.client)
            .await
    ));
    w.clock.advance(Duration::minutes(2));
    w.svc
        .request_password_reset(w.tenant.id, ALICE, &w.client)
        .await
        .unwrap();
    let second = last_reset(&w, ALICE).unwrap();
    assert!(failed(
        w.svc
            .reset_password(w.tenant.id, &first, NEW_PASSWORD, &w.client)
            .await
    ));
    w.clock.advance(Duration::minutes(31));
    assert!(failed(
        w.svc
            .reset_password(w.tenant.id, &second, NEW_PASSWORD, &w.client)
            .await
    ));
    w.svc
        .request_password_reset(w.tenant.id, ALICE, &w.client)
        .await
        .unwrap();
    let third = last_reset(&w, ALICE).unwrap();
    w.transition(&user, AccountState::Suspended).await.unwrap();
    assert!(failed(
        w.svc
            .reset_password(w.tenant.id, &third, NEW_PASSWORD, &w.client)
            .await
    ));
    // A suspended account is sent nothing.
    let before = w.outbox.messages().len();
    w.svc
        .request_password_reset(w.tenant.id, ALICE, &w.client)
        .await
        .unwrap();
    assert_eq!(w.outbox.messages().len(), before);
}

/// A password change ends the user's other sessions, keeps the one making
/// it, and tells the owner.
pub async fn a_password_change_ends_other_sessions_and_tells_the_owner<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 68).await;
    let user = alice(&w).await;
    let mine = w
        .sessions
        .issue(&sign_in(&w, &user).await, &w.client)
        .await
        .unwrap();
    let other = w
        .sessions
        .issue(&sign_in(&w, &user).await, &w.client)
        .await
        .unwrap();
    let session = w
        .sessions
        .validate(mine.session_token.expose())
        .await
        .unwrap();
    w.svc
        .self_service(&session)
        .change_password(Some(PASSWORD), NEW_PASSWORD, &w.client)
        .await
        .unwrap();
    assert!(
        w.sessions
            .validate(mine.session_token.expose())
            .await
            .is_ok()
    );
    assert!(matches!(
        w.sessions.validate(other.session_token.expose()).await,
        Err(Error::SessionInvalid)
    ));
    assert_eq!(
        w.outbox.last_to(ALICE).unwrap().notice,
        Notice::Security(SecurityEvent::PasswordChanged)
    );
}

/// Every factor added to or removed from an account with an address is
/// told to its owner by mail.
pub async fn factor_changes_are_told_to_the_owner<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 69).await;
    let user = alice(&w).await;
    let notice = |w: &World<S>| w.outbox.last_to(ALICE).map(|m| m.notice);
    w.enroll(&user, countersign_core::Enroll::RecoveryCodes)
        .await
        .unwrap();
    assert_eq!(
        notice(&w),
        Some(Notice::Security(SecurityEvent::FactorAdded(
            countersign_core::FactorKind::RecoveryCodes
        )))
    );
    assert!(
        w.svc
            .remove_factor(
                w.tenant.id,
                user.id,
                countersign_core::FactorKind::RecoveryCodes,
                &w.client
            )
            .await
            .unwrap()
    );
    assert_eq!(
        notice(&w),
        Some(Notice::Security(SecurityEvent::FactorRemoved(
            countersign_core::FactorKind::RecoveryCodes
        )))
    );
}
