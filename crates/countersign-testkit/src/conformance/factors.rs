//! Tenant factor settings, user credentials, methods and their
//! resolution: the guarantees of `FactorStore`.

use countersign_core::factor::{
    EmailOtpCredential, PendingCode, RecoveryCodeSlot, RecoveryCodesCredential, TotpAlgorithm,
    TotpCredential,
};
use countersign_core::{
    AuthMethod, EmailAddress, FactorCredential, FactorKind, FactorStep, MethodScope,
    StoreErrorKind, Tenant, User, Versioned,
};

use super::{acme, acme_alice, kind, name, strict_password, tenant, user};
use crate::ConformanceStore;
use crate::fixtures::{Fx, at, method, password, password_method};

/// Compare-and-save `u`'s password credential `phc`, expecting `version`.
async fn save_password<S: ConformanceStore>(
    s: &S,
    t: &Tenant,
    u: &User,
    version: Option<u64>,
    phc: &str,
) -> bool {
    s.compare_and_save_user_factor(t.id, u.id, version, &password(phc))
        .await
        .unwrap()
}

/// `u`'s stored password credential; panics if there is none.
async fn stored_password<S: ConformanceStore>(
    s: &S,
    t: &Tenant,
    u: &User,
) -> Versioned<FactorCredential> {
    s.user_factor(t.id, u.id, FactorKind::Password)
        .await
        .unwrap()
        .expect("a password credential")
}

// ── Factors ──────────────────────────────────────────────────────────────

/// A tenant's factor settings are replaced by a save and read back.
pub async fn tenant_factor_settings_save_and_replace<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 24).await;
    s.save_tenant_factor(t.id, &strict_password())
        .await
        .unwrap();
    assert_eq!(
        s.tenant_factor(t.id, FactorKind::Password).await.unwrap(),
        Some(strict_password())
    );
    assert_eq!(
        s.tenant_factors(t.id).await.unwrap(),
        vec![strict_password()]
    );
    assert_eq!(s.tenant_factor(t.id, FactorKind::Totp).await.unwrap(), None);
    assert_eq!(
        kind(
            s.save_tenant_factor(fx.tenant_id(), &strict_password())
                .await
        ),
        StoreErrorKind::NotFound
    );
}

/// A tenant cannot drop its last factor (`Conflict`); dropping a factor it
/// never adopted reports `false`.
pub async fn tenant_keeps_at_least_one_factor<S: ConformanceStore>(s: S) {
    let (_, t) = acme(&s, 25).await;
    assert!(
        !s.remove_tenant_factor(t.id, FactorKind::Totp)
            .await
            .unwrap()
    );
    assert_eq!(
        kind(s.remove_tenant_factor(t.id, FactorKind::Password).await),
        StoreErrorKind::Conflict
    );
    assert_eq!(s.tenant_factors(t.id).await.unwrap().len(), 1);
}

/// Compare-and-save with no expected version inserts only when absent.
pub async fn user_factor_insert_only_if_absent<S: ConformanceStore>(s: S) {
    let (fx, t, u) = acme_alice(&s, 26).await;
    assert!(save_password(&s, &t, &u, None, "one").await);
    assert!(!save_password(&s, &t, &u, None, "two").await);
    let got = stored_password(&s, &t, &u).await;
    assert_eq!((got.value, got.version), (password("one"), 1));
    // Expecting a version of an absent factor fails too.
    let v = fx.user(t.id, "bob");
    s.create_user(&v, &[]).await.unwrap();
    assert!(
        !s.compare_and_save_user_factor(t.id, v.id, Some(1), &password("x"))
            .await
            .unwrap()
    );
    assert_eq!(
        s.user_factor(t.id, v.id, FactorKind::Password)
            .await
            .unwrap(),
        None
    );
}

/// Compare-and-save succeeds only against the current version, and bumps it.
pub async fn user_factor_compare_and_save_checks_the_version<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 27).await;
    let u = fx.user(t.id, "alice");
    s.create_user(&u, &[password("v1")]).await.unwrap();
    assert!(save_password(&s, &t, &u, Some(1), "v2").await);
    assert!(!save_password(&s, &t, &u, Some(1), "stale").await);
    assert!(!save_password(&s, &t, &u, Some(3), "ahead").await);
    let got = stored_password(&s, &t, &u).await;
    assert_eq!((got.value, got.version), (password("v2"), 2));
}

/// Of 32 concurrent compare-and-saves naming the same version, exactly one
/// wins, and the stored value is the winner's.
pub async fn concurrent_compare_and_save_has_exactly_one_winner<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 28).await;
    let u = fx.user(t.id, "alice");
    s.create_user(&u, &[password("start")]).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let won = s
                .compare_and_save_user_factor(
                    t.id,
                    u.id,
                    Some(1),
                    &password(&format!("writer-{i}")),
                )
                .await
                .unwrap();
            (i, won)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (i, won) = task.await.unwrap();
        if won {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let got = stored_password(&s, &t, &u).await;
    assert_eq!(got.version, 2);
    assert_eq!(got.value, password(&format!("writer-{}", winners[0])));
}

/// Credentials are read and written only within the user's tenant.
pub async fn user_factors_are_tenant_scoped<S: ConformanceStore>(s: S) {
    let fx = Fx::new(29);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let u = fx.user(a.id, "alice");
    s.create_user(&u, &[password("secret-hash")]).await.unwrap();
    assert_eq!(
        s.user_factor(b.id, u.id, FactorKind::Password)
            .await
            .unwrap(),
        None
    );
    assert!(s.user_factors(b.id, u.id).await.unwrap().is_empty());
    assert_eq!(
        kind(
            s.compare_and_save_user_factor(b.id, u.id, Some(1), &password("x"))
                .await
        ),
        StoreErrorKind::NotFound
    );
    assert!(
        !s.remove_user_factor(b.id, u.id, FactorKind::Password)
            .await
            .unwrap()
    );
    assert_eq!(s.user_factors(a.id, u.id).await.unwrap().len(), 1);
}

/// Removing a credential reports whether it existed, and it is gone after.
pub async fn remove_user_factor_reports_existence<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 30).await;
    let u = fx.user(t.id, "alice");
    s.create_user(&u, &[password("h")]).await.unwrap();
    assert!(
        s.remove_user_factor(t.id, u.id, FactorKind::Password)
            .await
            .unwrap()
    );
    assert!(
        !s.remove_user_factor(t.id, u.id, FactorKind::Password)
            .await
            .unwrap()
    );
    assert_eq!(
        s.user_factor(t.id, u.id, FactorKind::Password)
            .await
            .unwrap(),
        None
    );
    // Re-enrolling works, above the removed credential's version (see
    // `credential_versions_never_repeat_across_removal`).
    assert!(save_password(&s, &t, &u, None, "h2").await);
    assert!(
        s.user_factor(t.id, u.id, FactorKind::Password)
            .await
            .unwrap()
            .unwrap()
            .version
            > 1
    );
}

// ── Methods ──────────────────────────────────────────────────────────────

/// `methods` lists exactly one scope's methods, ordered by name.
pub async fn methods_are_listed_per_exact_scope<S: ConformanceStore>(s: S) {
    let (_, t, u) = acme_alice(&s, 31).await;
    s.save_method(MethodScope::Tenant(t.id), &method("a-first"), true)
        .await
        .unwrap();
    s.save_method(MethodScope::User(t.id, u.id), &method("zeta"), false)
        .await
        .unwrap();
    s.save_method(MethodScope::User(t.id, u.id), &method("beta"), true)
        .await
        .unwrap();
    let tenant_names: Vec<String> = s
        .methods(MethodScope::Tenant(t.id))
        .await
        .unwrap()
        .iter()
        .map(|r| r.method.name.to_string())
        .collect();
    assert_eq!(tenant_names, ["a-first", "password"]);
    let user_methods = s.methods(MethodScope::User(t.id, u.id)).await.unwrap();
    let user_names: Vec<(String, bool)> = user_methods
        .iter()
        .map(|r| (r.method.name.to_string(), r.enabled))
        .collect();
    assert_eq!(user_names, [("beta".into(), true), ("zeta".into(), false)]);
    // Saving again replaces by name, steps included.
    let mfa = AuthMethod::new(
        "beta",
        vec![
            FactorStep::Required(FactorKind::Password),
            FactorStep::AnyOf(vec![FactorKind::Totp, FactorKind::RecoveryCodes]),
        ],
    )
    .unwrap();
    s.save_method(MethodScope::User(t.id, u.id), &mfa, true)
        .await
        .unwrap();
    let again = s.methods(MethodScope::User(t.id, u.id)).await.unwrap();
    assert_eq!(again.len(), 2);
    assert_eq!(again[0].method, mfa);
}

/// Available methods: enabled only, the user's method replaces the
/// tenant's of the same name (and hides it when disabled), ordered by name.
pub async fn available_methods_resolve_user_overrides<S: ConformanceStore>(s: S) {
    let (fx, t, u) = acme_alice(&s, 32).await;
    let other = user(&s, &fx, t.id, "bob").await;
    s.save_method(MethodScope::Tenant(t.id), &method("backup"), false)
        .await
        .unwrap();
    s.save_method(MethodScope::Tenant(t.id), &method("corp"), true)
        .await
        .unwrap();
    let corp_mfa = AuthMethod::sequence("corp", &[FactorKind::Password, FactorKind::Totp]).unwrap();
    s.save_method(MethodScope::User(t.id, u.id), &corp_mfa, true)
        .await
        .unwrap();
    s.save_method(MethodScope::User(t.id, u.id), &method("password"), false)
        .await
        .unwrap();
    s.save_method(MethodScope::User(t.id, u.id), &method("personal"), true)
        .await
        .unwrap();
    let mine = s.available_methods(t.id, u.id).await.unwrap();
    assert_eq!(mine, vec![corp_mfa, method("personal")]);
    let theirs = s.available_methods(t.id, other.id).await.unwrap();
    assert_eq!(theirs, vec![method("corp"), password_method()]);
}

/// The tenant scope always keeps one enabled method: disabling, replacing
/// with a disabled one or removing the last is `Conflict`.
pub async fn tenant_keeps_one_enabled_method<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 33).await;
    let scope = MethodScope::Tenant(t.id);
    let pw = name("password");
    assert_eq!(
        kind(s.set_method_enabled(scope, &pw, false).await),
        StoreErrorKind::Conflict
    );
    assert_eq!(
        kind(s.remove_method(scope, &pw).await),
        StoreErrorKind::Conflict
    );
    assert_eq!(
        kind(s.save_method(scope, &password_method(), false).await),
        StoreErrorKind::Conflict
    );
    assert!(s.methods(scope).await.unwrap()[0].enabled);
    s.save_method(scope, &method("second"), true).await.unwrap();
    assert!(s.set_method_enabled(scope, &pw, false).await.unwrap());
    assert_eq!(
        kind(s.remove_method(scope, &name("second")).await),
        StoreErrorKind::Conflict
    );
    assert!(
        s.remove_method(scope, &pw).await.unwrap(),
        "a disabled method may go"
    );
    // A user scope has no such floor.
    let u = user(&s, &fx, t.id, "alice").await;
    s.save_method(MethodScope::User(t.id, u.id), &method("mine"), true)
        .await
        .unwrap();
    assert!(
        s.remove_method(MethodScope::User(t.id, u.id), &name("mine"))
            .await
            .unwrap()
    );
}

/// Enabling or removing a method that does not exist reports `false`.
pub async fn unknown_methods_report_false<S: ConformanceStore>(s: S) {
    let (_, t, u) = acme_alice(&s, 34).await;
    let ghost = name("ghost");
    assert!(
        !s.set_method_enabled(MethodScope::Tenant(t.id), &ghost, true)
            .await
            .unwrap()
    );
    assert!(
        !s.remove_method(MethodScope::Tenant(t.id), &ghost)
            .await
            .unwrap()
    );
    assert!(
        !s.set_method_enabled(MethodScope::User(t.id, u.id), &ghost, false)
            .await
            .unwrap()
    );
    assert!(
        !s.remove_method(MethodScope::User(t.id, u.id), &ghost)
            .await
            .unwrap()
    );
}

/// Saving a method needs its scope to exist: an unknown tenant, or a user
/// of another tenant, is `NotFound`; available methods of such a user are empty.
pub async fn methods_need_an_existing_scope<S: ConformanceStore>(s: S) {
    let fx = Fx::new(35);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let u = user(&s, &fx, a.id, "alice").await;
    assert_eq!(
        kind(
            s.save_method(MethodScope::Tenant(fx.tenant_id()), &method("m"), true)
                .await
        ),
        StoreErrorKind::NotFound
    );
    assert_eq!(
        kind(
            s.save_method(MethodScope::User(b.id, u.id), &method("m"), true)
                .await
        ),
        StoreErrorKind::NotFound
    );
    assert!(
        s.methods(MethodScope::User(b.id, u.id))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.available_methods(b.id, u.id).await.unwrap().is_empty());
}

/// Every kind of credential reads back exactly.
pub async fn every_credential_kind_round_trips<S: ConformanceStore>(s: S) {
    let (_, t, u) = acme_alice(&s, 55).await;
    let creds = [
        FactorCredential::Totp(TotpCredential {
            secret: vec![7; 20].into(),
            digits: 8,
            step_secs: 30,
            algorithm: TotpAlgorithm::Sha256,
            last_step: Some(u64::from(u32::MAX) + 5),
            confirmed: true,
            created_at: at(3),
        }),
        FactorCredential::RecoveryCodes(RecoveryCodesCredential {
            codes: vec![
                RecoveryCodeSlot {
                    hash: "ab".repeat(32),
                    used_at: None,
                },
                RecoveryCodeSlot {
                    hash: "cd".repeat(32),
                    used_at: Some(at(4)),
                },
            ],
            generated_at: at(2),
        }),
        FactorCredential::EmailOtp(EmailOtpCredential {
            address: EmailAddress::parse("alice@example.org").unwrap(),
            confirmed: false,
            pending: Some(PendingCode {
                hash: "ef".repeat(32),
                expires_at: at(600),
                attempts: 2,
                sends: 1,
                sent_at: Some(at(0)),
            }),
            created_at: at(1),
        }),
        password("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
    ];
    for c in &creds {
        assert!(
            s.compare_and_save_user_factor(t.id, u.id, None, c)
                .await
                .unwrap()
        );
    }
    let got: Vec<FactorCredential> = s
        .user_factors(t.id, u.id)
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.value)
        .collect();
    let mut want = creds.to_vec();
    want.sort_by_key(|c| c.kind().as_str());
    assert_eq!(got, want);
}

/// Credential versions never repeat: after a removal and a re-enrolment, a
/// compare-and-save naming a version from before the removal fails, and
/// the new credential's version is above every earlier one.
pub async fn credential_versions_never_repeat_across_removal<S: ConformanceStore>(s: S) {
    let (_fx, t, u) = acme_alice(&s, 62).await;
    let first = password("$argon2id$first");
    assert!(
        s.compare_and_save_user_factor(t.id, u.id, None, &first)
            .await
            .unwrap()
    );
    let second = password("$argon2id$second");
    assert!(
        s.compare_and_save_user_factor(t.id, u.id, Some(1), &second)
            .await
            .unwrap()
    );
    let stale = 2;
    assert!(
        s.remove_user_factor(t.id, u.id, FactorKind::Password)
            .await
            .unwrap()
    );
    assert!(
        !s.remove_user_factor(t.id, u.id, FactorKind::Password)
            .await
            .unwrap()
    );
    assert!(
        s.user_factor(t.id, u.id, FactorKind::Password)
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.user_factors(t.id, u.id).await.unwrap().is_empty());
    // Nothing to save over while it is absent.
    let stray = password("$argon2id$stray");
    assert!(
        !s.compare_and_save_user_factor(t.id, u.id, Some(stale), &stray)
            .await
            .unwrap()
    );
    // Re-enrolment: a fresh insert works, above the old versions.
    let again = password("$argon2id$again");
    assert!(
        s.compare_and_save_user_factor(t.id, u.id, None, &again)
            .await
            .unwrap()
    );
    let now = s
        .user_factor(t.id, u.id, FactorKind::Password)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.value, again);
    assert!(now.version > stale, "version {} repeats", now.version);
    // A writer that read version 1 or 2 before the removal cannot win.
    for old in 1..=stale {
        assert!(
            !s.compare_and_save_user_factor(t.id, u.id, Some(old), &stray)
                .await
                .unwrap()
        );
    }
    assert_eq!(
        s.user_factor(t.id, u.id, FactorKind::Password)
            .await
            .unwrap()
            .unwrap()
            .value,
        again
    );
    // An insert-if-absent while it exists still refuses.
    assert!(
        !s.compare_and_save_user_factor(t.id, u.id, None, &stray)
            .await
            .unwrap()
    );
}
