use chrono::Duration;
use countersign_core::{
    AccountState, Argon2Params, AuditFilter, AuditKind, AuditQuery, AuditStatus, AuthnService,
    Error, FactorCredential, FactorKind, FactorStore, IdentityLookup, NewUser, PasswordHasher,
    PasswordViolation,
};

use super::support::{PASSWORD, policy, world, world_with_policy};

fn phc_of(f: &FactorCredential) -> String {
    match f {
        FactorCredential::Password(c) => c.phc.clone(),
        other => panic!("not a password: {other:?}"),
    }
}

#[tokio::test]
async fn a_registered_user_logs_in_with_the_right_password_only() {
    let w = world(1).await;
    let alice = w.user("Alice@Example.org").await;
    assert_eq!(alice.identifier.as_str(), "alice@example.org");
    let ok = w.login("  ALICE@example.org", PASSWORD).await.unwrap();
    assert_eq!(ok.user.id, alice.id);
    assert_eq!(ok.user.last_login_at, Some(ok.at));
    assert!(matches!(
        w.login("alice@example.org", "wrong horse battery staple")
            .await,
        Err(Error::InvalidCredentials)
    ));
    let events = w
        .store
        .query_events(
            w.tenant.id,
            &AuditFilter {
                kind: Some(AuditKind::Authentication),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let outcomes: Vec<_> = events
        .iter()
        .map(|e| (e.status, e.detail.clone(), e.factor))
        .collect();
    assert_eq!(
        outcomes,
        [
            (
                AuditStatus::Failure,
                Some(countersign_core::AuditReason::WrongSecret.into()),
                Some(FactorKind::Password)
            ),
            (AuditStatus::Success, None, Some(FactorKind::Password)),
        ]
    );
    // No secret reaches the audit log.
    for e in w.store.events() {
        let text = format!("{e:?}");
        assert!(!text.contains("horse"), "{text}");
    }
}

#[tokio::test]
async fn unknown_identifier_and_wrong_password_are_indistinguishable() {
    let w = world(2).await;
    w.user("alice").await;
    let hasher = w.svc.hasher().clone();
    let before = hasher.computations();
    let unknown = w.login("mallory", "whatever password").await.unwrap_err();
    let after_unknown = hasher.computations();
    let wrong = w.login("alice", "whatever password").await.unwrap_err();
    let after_wrong = hasher.computations();
    assert!(matches!(unknown, Error::InvalidCredentials));
    assert!(matches!(wrong, Error::InvalidCredentials));
    assert_eq!(unknown.to_string(), wrong.to_string());
    // Same work: exactly one argon2 computation each.
    assert_eq!(after_unknown - before, 1);
    assert_eq!(after_wrong - after_unknown, 1);
    // A user without a password behaves the same.
    w.svc
        .register_user(
            w.tenant.id,
            NewUser {
                identifier: "nopass",
                state: Some(AccountState::Active),
                ..Default::default()
            },
            &w.client,
        )
        .await
        .unwrap();
    let c = hasher.computations();
    assert!(matches!(
        w.login("nopass", "whatever password").await,
        Err(Error::InvalidCredentials)
    ));
    assert_eq!(hasher.computations() - c, 1);
}

#[tokio::test]
async fn lockout_engages_at_the_limit_and_lifts_after_its_duration() {
    let w = world_with_policy(3, policy(3, 300, 600)).await;
    let alice = w.user("alice").await;
    for _ in 0..3 {
        assert!(matches!(
            w.login("alice", "nope nope nope").await,
            Err(Error::InvalidCredentials)
        ));
    }
    // Locked: the right password gets the answer a wrong one gets, after
    // the same hashing work; the lock shows only in the store and the log.
    let c = w.svc.hasher().computations();
    assert!(matches!(
        w.login("alice", PASSWORD).await,
        Err(Error::InvalidCredentials)
    ));
    assert_eq!(
        w.svc.hasher().computations() - c,
        1,
        "one hash, as for a wrong password"
    );
    let locked_until = w
        .store
        .failure_record(w.tenant.id, alice.id)
        .await
        .unwrap()
        .unwrap()
        .locked_until
        .unwrap();
    assert_eq!(locked_until, w.svc.env().now() + Duration::seconds(600));
    w.clock.advance(Duration::seconds(599));
    assert!(matches!(
        w.login("alice", PASSWORD).await,
        Err(Error::InvalidCredentials)
    ));
    w.clock.advance(Duration::seconds(1));
    w.login("alice", PASSWORD).await.unwrap();
    let locks = w
        .store
        .query_events(
            w.tenant.id,
            &AuditFilter {
                kind: Some(AuditKind::AccountLocked),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(locks.len(), 1);
    // Success resets the count.
    let u = w
        .store
        .find_user(
            w.tenant.id,
            &"alice"
                .parse::<String>()
                .map(|s| countersign_core::Identifier::parse(&s).unwrap())
                .unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        w.store.failure_record(w.tenant.id, u.id).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn suspended_accounts_cannot_sign_in_and_reactivation_restores_access() {
    let w = world(4).await;
    let alice = w.user("alice").await;
    w.svc
        .transition(
            w.tenant.id,
            alice.id,
            AccountState::Suspended,
            Some("fraud review"),
            &w.client,
        )
        .await
        .unwrap();
    assert!(matches!(
        w.login("alice", PASSWORD).await,
        Err(Error::InvalidCredentials)
    ));
    assert_eq!(
        w.store.failure_record(w.tenant.id, alice.id).await.unwrap(),
        None,
        "not a failed attempt"
    );
    w.transition(&alice, AccountState::Active).await.unwrap();
    w.login("alice", PASSWORD).await.unwrap();
    // Deleted is terminal.
    w.transition(&alice, AccountState::Deleted).await.unwrap();
    assert!(matches!(
        w.transition(&alice, AccountState::Active).await,
        Err(Error::InvalidTransition {
            from: AccountState::Deleted,
            to: AccountState::Active
        })
    ));
    assert!(matches!(
        w.login("alice", PASSWORD).await,
        Err(Error::InvalidCredentials)
    ));
}

#[tokio::test]
async fn candidates_and_pending_accounts_cannot_sign_in() {
    let w = world(5).await;
    for (ident, state) in [
        ("cand", AccountState::Candidate),
        ("pend", AccountState::Pending),
    ] {
        w.svc
            .register_user(
                w.tenant.id,
                NewUser {
                    identifier: ident,
                    password: Some(PASSWORD),
                    state: Some(state),
                    ..Default::default()
                },
                &w.client,
            )
            .await
            .unwrap();
        let c = w.svc.hasher().computations();
        assert!(
            matches!(
                w.login(ident, PASSWORD).await,
                Err(Error::InvalidCredentials)
            ),
            "{state:?}: the answer of a wrong password"
        );
        assert_eq!(
            w.svc.hasher().computations() - c,
            1,
            "{state:?}: the same work"
        );
    }
    assert!(matches!(
        w.svc
            .register_user(
                w.tenant.id,
                NewUser {
                    identifier: "x",
                    state: Some(AccountState::Suspended),
                    ..Default::default()
                },
                &w.client
            )
            .await,
        Err(Error::InvalidInput(_))
    ));
}

#[tokio::test]
async fn weaker_stored_hashes_are_upgraded_on_the_next_login() {
    let w = world(6).await;
    let alice = w.user("alice").await;
    let old = phc_of(
        &w.store
            .user_factor(w.tenant.id, alice.id, FactorKind::Password)
            .await
            .unwrap()
            .unwrap()
            .value,
    );
    assert!(old.contains("m=64,t=1"));
    let stronger = PasswordHasher::new(
        Argon2Params {
            m_cost_kib: 256,
            t_cost: 2,
            p_cost: 1,
        },
        2,
    )
    .unwrap();
    let svc2 = AuthnService::new(w.store.clone(), w.svc.env().clone(), stronger);
    svc2.verify_password(w.tenant.id, "alice", PASSWORD, &w.client)
        .await
        .unwrap();
    let stored = w
        .store
        .user_factor(w.tenant.id, alice.id, FactorKind::Password)
        .await
        .unwrap()
        .unwrap();
    assert!(phc_of(&stored.value).contains("m=256,t=2"), "upgraded");
    assert_eq!(stored.version, 2);
    // The upgraded hash still verifies, and is not upgraded again.
    svc2.verify_password(w.tenant.id, "alice", PASSWORD, &w.client)
        .await
        .unwrap();
    assert_eq!(
        w.store
            .user_factor(w.tenant.id, alice.id, FactorKind::Password)
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    let rehashes = w
        .store
        .query_events(
            w.tenant.id,
            &AuditFilter {
                kind: Some(AuditKind::PasswordRehashed),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(rehashes.len(), 1);
}

#[tokio::test]
async fn password_changes_prove_the_current_password_and_respect_rules_and_history() {
    let w = world(7).await;
    let alice = w.user("alice").await;
    let new_pw = "purple elephant marching softly";
    assert!(matches!(
        w.svc
            .change_password(
                w.tenant.id,
                alice.id,
                "not my password",
                new_pw,
                None,
                &w.client
            )
            .await,
        Err(Error::InvalidCredentials)
    ));
    assert_eq!(
        w.store
            .failure_record(w.tenant.id, alice.id)
            .await
            .unwrap()
            .unwrap()
            .count,
        1
    );
    assert!(matches!(
        w.svc
            .change_password(
                w.tenant.id,
                alice.id,
                PASSWORD,
                "password1",
                None,
                &w.client
            )
            .await,
        Err(Error::PasswordRejected(PasswordViolation::TooWeak { .. }))
    ));
    assert!(matches!(
        w.svc
            .change_password(w.tenant.id, alice.id, PASSWORD, PASSWORD, None, &w.client)
            .await,
        Err(Error::PasswordRejected(PasswordViolation::Reused))
    ));
    w.svc
        .change_password(w.tenant.id, alice.id, PASSWORD, new_pw, None, &w.client)
        .await
        .unwrap();
    assert!(matches!(
        w.login("alice", PASSWORD).await,
        Err(Error::InvalidCredentials)
    ));
    w.login("alice", new_pw).await.unwrap();
    // Going back to the first password is refused while it is in history.
    assert!(matches!(
        w.svc
            .set_password(w.tenant.id, alice.id, PASSWORD, None, &w.client)
            .await,
        Err(Error::PasswordRejected(PasswordViolation::Reused))
    ));
    let changes = w
        .store
        .query_events(
            w.tenant.id,
            &AuditFilter {
                kind: Some(AuditKind::PasswordChanged),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(changes.len(), 1);
}

#[tokio::test]
async fn bad_input_is_a_typed_error_and_writes_nothing() {
    let w = world(8).await;
    let alice = w.user("alice").await;
    let before = w.store.snapshot();
    let huge = "a".repeat(1_000_000);
    assert!(matches!(
        w.login("alice", &huge).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        w.login("alice", "").await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        w.login("al\u{0}ice", PASSWORD).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        w.login(&"x".repeat(100_000), PASSWORD).await,
        Err(Error::InvalidInput(_))
    ));
    for (ident, pw) in [
        ("bob", huge.as_str()),
        ("bo\u{1b}b", PASSWORD),
        ("", PASSWORD),
        ("bob", ""),
    ] {
        let r = w
            .svc
            .register_user(
                w.tenant.id,
                NewUser {
                    identifier: ident,
                    password: Some(pw),
                    ..Default::default()
                },
                &w.client,
            )
            .await;
        assert!(matches!(r, Err(Error::InvalidInput(_))), "{ident:?}: {r:?}");
    }
    let r = w
        .svc
        .register_user(
            w.tenant.id,
            NewUser {
                identifier: "bob",
                password: Some("short"),
                ..Default::default()
            },
            &w.client,
        )
        .await;
    assert!(matches!(
        r,
        Err(Error::PasswordRejected(PasswordViolation::TooShort {
            min: 8
        }))
    ));
    let r = w
        .svc
        .register_user(
            w.tenant.id,
            NewUser {
                identifier: "ALICE",
                password: Some(PASSWORD),
                ..Default::default()
            },
            &w.client,
        )
        .await;
    assert!(matches!(r, Err(Error::AlreadyExists(_))), "{r:?}");
    assert!(matches!(
        w.svc
            .set_password(w.tenant.id, alice.id, &huge, None, &w.client)
            .await,
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(w.store.snapshot(), before, "nothing written");
}

#[tokio::test]
async fn ids_from_another_tenant_are_not_found() {
    let w = world(9).await;
    let other = w
        .svc
        .provision_tenant(countersign_core::NewTenant::password_only("other", "Other").unwrap())
        .await
        .unwrap();
    let alice = w.user("alice").await;
    assert!(matches!(
        w.svc.user(other.id, alice.id).await,
        Err(Error::UserNotFound)
    ));
    assert!(matches!(
        w.svc
            .transition(other.id, alice.id, AccountState::Suspended, None, &w.client)
            .await,
        Err(Error::UserNotFound)
    ));
    assert!(matches!(
        w.svc
            .change_password(
                other.id,
                alice.id,
                PASSWORD,
                "purple elephant marching",
                None,
                &w.client
            )
            .await,
        Err(Error::UserNotFound)
    ));
    assert!(matches!(
        w.svc.erase_user(other.id, alice.id, &w.client).await,
        Err(Error::UserNotFound)
    ));
    // Logging in to the other tenant with alice's identifier finds nobody.
    assert!(matches!(
        w.svc
            .verify_password(other.id, "alice", PASSWORD, &w.client)
            .await,
        Err(Error::InvalidCredentials)
    ));
    assert!(matches!(
        w.svc
            .verify_password(
                countersign_core::TenantId::SYSTEM,
                "alice",
                PASSWORD,
                &w.client
            )
            .await,
        Err(Error::Reserved(_))
    ));
    assert_eq!(
        w.svc.user(w.tenant.id, alice.id).await.unwrap().state,
        AccountState::Active
    );
}

#[tokio::test]
async fn erasure_removes_the_user_and_pseudonymises_the_trail() {
    let w = world(10).await;
    let alice = w.user("alice").await;
    w.login("alice", PASSWORD).await.unwrap();
    w.svc
        .erase_user(w.tenant.id, alice.id, &w.client)
        .await
        .unwrap();
    assert!(matches!(
        w.login("alice", PASSWORD).await,
        Err(Error::InvalidCredentials)
    ));
    let mine = w
        .store
        .query_events(
            w.tenant.id,
            &AuditFilter {
                user_id: Some(alice.id),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(mine.is_empty());
    let erased = w
        .store
        .query_events(
            w.tenant.id,
            &AuditFilter {
                kind: Some(AuditKind::UserErased),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let pseudonym = erased[0].user_id.unwrap();
    let trail = w
        .store
        .query_events(
            w.tenant.id,
            &AuditFilter {
                user_id: Some(pseudonym),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        trail.len() >= 3,
        "registration, login and erasure stay: {trail:?}"
    );
}

#[tokio::test]
async fn a_failed_audit_write_fails_the_login_closed() {
    let w = world(11).await;
    w.user("alice").await;
    for kind in [
        countersign_core::StoreErrorKind::Transient,
        countersign_core::StoreErrorKind::Other,
    ] {
        // A right password's events are written with the login itself.
        w.store.fail_next_on("record_login", 1, kind);
        let r = w.login("alice", PASSWORD).await;
        assert!(
            matches!(r, Err(Error::Store { kind: k, .. }) if k == kind),
            "{r:?}"
        );
    }
    // Wrong passwords too: the failure is still counted, the caller gets the store error.
    w.store.fail_next_on(
        "record_event",
        1,
        countersign_core::StoreErrorKind::Transient,
    );
    assert!(matches!(
        w.login("alice", "bad password here").await,
        Err(Error::Store { .. })
    ));
    // And a failing credential read never turns into a success.
    w.store.fail_next_on(
        "user_factor",
        1,
        countersign_core::StoreErrorKind::Transient,
    );
    assert!(matches!(
        w.login("alice", PASSWORD).await,
        Err(Error::Store { .. })
    ));
    w.login("alice", PASSWORD).await.unwrap();
}
