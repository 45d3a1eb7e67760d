//! Tenants, users, lockout counting, password history and erasure:
//! the guarantees of `IdentityStore`.

use std::collections::HashSet;
use std::time::Duration as StdDuration;

use chrono::Duration;
use countersign_core::store::MAX_PAGE;
use countersign_core::{
    AccountState, FactorKind, FactorSettings, FailureRecord, Identifier, LockoutPolicy,
    MethodScope, PasswordSettings, StoreErrorKind, TenantId, TenantPolicy, TenantSlug, UserId,
};

use super::{acme, acme_alice, kind, tenant, user};
use crate::ConformanceStore;
use crate::fixtures::{Fx, at, method, password, password_method};

// ── Tenants ──────────────────────────────────────────────────────────────

/// Provisioning creates the tenant, its factor settings and its methods,
/// all enabled, findable by id and by slug.
pub async fn provision_creates_tenant_with_factors_and_enabled_methods<S: ConformanceStore>(s: S) {
    let (_, t) = acme(&s, 1).await;
    assert_eq!(s.get_tenant(t.id).await.unwrap(), Some(t.clone()));
    assert_eq!(s.find_tenant(&t.slug).await.unwrap(), Some(t.clone()));
    assert_eq!(
        s.tenant_factors(t.id).await.unwrap(),
        vec![FactorSettings::Password(PasswordSettings::default())]
    );
    assert_eq!(
        s.tenant_factor(t.id, FactorKind::Password).await.unwrap(),
        Some(FactorSettings::Password(PasswordSettings::default()))
    );
    let methods = s.methods(MethodScope::Tenant(t.id)).await.unwrap();
    assert_eq!(methods.len(), 1);
    assert!(methods[0].enabled);
    assert_eq!(methods[0].method, password_method());
}

/// A second tenant with a taken slug is refused with `Conflict`, and none
/// of its factors or methods are written.
pub async fn provision_with_taken_slug_conflicts_and_writes_nothing<S: ConformanceStore>(s: S) {
    let fx = Fx::new(2);
    let first = tenant(&s, &fx, "acme").await;
    let again = fx.tenant("acme");
    assert_eq!(
        kind(s.provision_tenant(&again).await),
        StoreErrorKind::Conflict
    );
    let id = again.tenant().id;
    assert_eq!(s.get_tenant(id).await.unwrap(), None);
    assert!(s.tenant_factors(id).await.unwrap().is_empty());
    assert!(s.methods(MethodScope::Tenant(id)).await.unwrap().is_empty());
    assert_eq!(
        s.find_tenant(&first.slug).await.unwrap().unwrap().id,
        first.id
    );
}

/// A tenant whose id exists is refused with `Conflict`.
pub async fn provision_with_taken_id_conflicts<S: ConformanceStore>(s: S) {
    let fx = Fx::new(3);
    let first = tenant(&s, &fx, "acme").await;
    let mut row = first.clone();
    row.slug = TenantSlug::parse("other").unwrap();
    let again = Fx::provision(row);
    assert_eq!(
        kind(s.provision_tenant(&again).await),
        StoreErrorKind::Conflict
    );
    assert_eq!(
        s.find_tenant(&TenantSlug::parse("other").unwrap())
            .await
            .unwrap(),
        None
    );
}

/// Lookups of tenants that do not exist answer `None`, not an error.
pub async fn unknown_tenant_lookups_are_none<S: ConformanceStore>(s: S) {
    let fx = Fx::new(4);
    assert_eq!(s.get_tenant(fx.tenant_id()).await.unwrap(), None);
    assert_eq!(s.get_tenant(TenantId::SYSTEM).await.unwrap(), None);
    assert_eq!(
        s.find_tenant(&TenantSlug::parse("nobody").unwrap())
            .await
            .unwrap(),
        None
    );
    assert!(s.tenant_factors(fx.tenant_id()).await.unwrap().is_empty());
}

/// A tenant's policy can be replaced; an unknown tenant is `NotFound`.
pub async fn update_tenant_policy_persists_and_unknown_tenant_is_not_found<S: ConformanceStore>(
    s: S,
) {
    let (fx, t) = acme(&s, 5).await;
    let policy = TenantPolicy {
        lockout: LockoutPolicy {
            max_attempts: 3,
            window: StdDuration::from_secs(60),
            lock_duration: StdDuration::from_secs(3600),
        },
        sessions: countersign_core::SessionPolicy {
            idle_timeout: StdDuration::from_secs(600),
            refresh_reuse_grace: StdDuration::from_secs(3),
            // Not the defaults: the algorithm and the optional claims
            // round-trip too.
            access_tokens: Some(countersign_core::AccessTokenPolicy {
                algorithm: countersign_core::SigningAlgorithm::Rs256,
                claims: countersign_core::AccessTokenClaims {
                    tenant: true,
                    roles_in: Some(countersign_core::RbacName::new("docs").unwrap()),
                    tier: true,
                },
                ..countersign_core::AccessTokenPolicy::new("api", StdDuration::from_secs(300))
            }),
            ..Default::default()
        },
        // The profile schema is part of the policy (a whole schema
        // round-trips in `profiles`).
        profile: countersign_core::ProfileSchema {
            default_tier: Some(countersign_core::Tier::premium()),
            ..Default::default()
        },
        // Not the default either.
        keep_password_only_after_mfa: true,
    };
    s.update_tenant_policy(t.id, &policy).await.unwrap();
    assert_eq!(s.get_tenant(t.id).await.unwrap().unwrap().policy, policy);
    assert_eq!(
        kind(s.update_tenant_policy(fx.tenant_id(), &policy).await),
        StoreErrorKind::NotFound
    );
}

// ── Users ────────────────────────────────────────────────────────────────

/// A created user reads back field for field, by id and by identifier.
pub async fn created_user_round_trips_exactly<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 6).await;
    let mut u = fx.user(t.id, "alice");
    u.state = AccountState::Pending;
    u.state_reason = Some("awaiting verification ✉".into());
    u.created_at = at(1) + Duration::milliseconds(123);
    u.last_login_at = Some(at(2) + Duration::microseconds(456_789));
    s.create_user(&u, &[]).await.unwrap();
    assert_eq!(s.get_user(t.id, u.id).await.unwrap(), Some(u.clone()));
    assert_eq!(
        s.find_user(t.id, &u.identifier).await.unwrap(),
        Some(u.clone())
    );
    let mut bare = fx.user(t.id, "bob");
    bare.display_name = None;
    bare.email = None;
    s.create_user(&bare, &[]).await.unwrap();
    assert_eq!(s.get_user(t.id, bare.id).await.unwrap(), Some(bare));
}

/// An identifier is unique within its tenant (`Conflict`), and free in
/// every other tenant.
pub async fn identifiers_are_unique_per_tenant_only<S: ConformanceStore>(s: S) {
    let fx = Fx::new(7);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let first = user(&s, &fx, a.id, "alice").await;
    let dup = fx.user(a.id, "alice");
    assert_eq!(
        kind(s.create_user(&dup, &[]).await),
        StoreErrorKind::Conflict
    );
    assert_eq!(s.get_user(a.id, dup.id).await.unwrap(), None);
    let other = user(&s, &fx, b.id, "alice").await;
    let ident = Identifier::parse("alice").unwrap();
    assert_eq!(
        s.find_user(a.id, &ident).await.unwrap().unwrap().id,
        first.id
    );
    assert_eq!(
        s.find_user(b.id, &ident).await.unwrap().unwrap().id,
        other.id
    );
}

/// A user id that exists is refused with `Conflict`, whatever the identifier.
pub async fn duplicate_user_id_conflicts<S: ConformanceStore>(s: S) {
    let (fx, t, u) = acme_alice(&s, 8).await;
    let mut dup = fx.user(t.id, "bob");
    dup.id = u.id;
    assert_eq!(
        kind(s.create_user(&dup, &[]).await),
        StoreErrorKind::Conflict
    );
    assert_eq!(s.find_user(t.id, &dup.identifier).await.unwrap(), None);
}

/// Creating a user in a tenant that does not exist is `NotFound`.
pub async fn create_user_in_unknown_tenant_is_not_found<S: ConformanceStore>(s: S) {
    let fx = Fx::new(9);
    let u = fx.user(fx.tenant_id(), "alice");
    assert_eq!(kind(s.create_user(&u, &[]).await), StoreErrorKind::NotFound);
    assert_eq!(s.get_user_cross_tenant(u.id).await.unwrap(), None);
}

/// The system tenant and the nil user id cannot be claimed (`Rejected`).
pub async fn create_user_refuses_reserved_ids<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 10).await;
    let in_system = fx.user(TenantId::SYSTEM, "root");
    assert_eq!(
        kind(s.create_user(&in_system, &[]).await),
        StoreErrorKind::Rejected
    );
    let mut nil = fx.user(t.id, "nil");
    nil.id = UserId::from_uuid(Default::default());
    assert_eq!(
        kind(s.create_user(&nil, &[]).await),
        StoreErrorKind::Rejected
    );
    assert!(s.list_users(t.id, None, 10).await.unwrap().is_empty());
}

/// A user is created with its credentials (each at version 1) or not at
/// all: a refused user leaves no credential behind.
pub async fn create_user_with_credentials_is_atomic<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 11).await;
    let u = fx.user(t.id, "alice");
    s.create_user(&u, &[password("phc-1")]).await.unwrap();
    let got = s
        .user_factor(t.id, u.id, FactorKind::Password)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((got.value, got.version), (password("phc-1"), 1));
    let dup = fx.user(t.id, "alice");
    assert_eq!(
        kind(s.create_user(&dup, &[password("phc-2")]).await),
        StoreErrorKind::Conflict
    );
    assert!(s.user_factors(t.id, dup.id).await.unwrap().is_empty());
    // A repeated credential kind is refused before anything is written.
    let twice = fx.user(t.id, "carol");
    assert!(
        s.create_user(&twice, &[password("a"), password("b")])
            .await
            .is_err()
    );
    assert_eq!(s.get_user(t.id, twice.id).await.unwrap(), None);
}

/// Every user lookup is scoped to its tenant: a user of tenant A is `None`
/// in tenant B, except through the explicitly cross-tenant lookup.
pub async fn user_lookups_are_tenant_scoped<S: ConformanceStore>(s: S) {
    let fx = Fx::new(12);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let u = user(&s, &fx, a.id, "alice").await;
    assert_eq!(s.get_user(b.id, u.id).await.unwrap(), None);
    assert_eq!(s.find_user(b.id, &u.identifier).await.unwrap(), None);
    assert!(s.list_users(b.id, None, 100).await.unwrap().is_empty());
    assert_eq!(
        s.get_user_cross_tenant(u.id).await.unwrap(),
        Some(u.clone())
    );
    assert_eq!(s.get_user(a.id, u.id).await.unwrap(), Some(u));
}

/// Users list in id order, after a cursor, at most `limit` (capped at
/// [`MAX_PAGE`]), and
/// only from the tenant asked for.
pub async fn list_users_pages_by_id_within_one_tenant<S: ConformanceStore>(s: S) {
    let fx = Fx::new(13);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(user(&s, &fx, a.id, &format!("user{i}")).await.id);
        user(&s, &fx, b.id, &format!("user{i}")).await;
    }
    ids.sort();
    let page1: Vec<UserId> = s
        .list_users(a.id, None, 3)
        .await
        .unwrap()
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(page1, ids[..3]);
    let page2: Vec<UserId> = s
        .list_users(a.id, Some(ids[2]), 3)
        .await
        .unwrap()
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(page2, ids[3..6]);
    let rest = s.list_users(a.id, Some(ids[5]), 3).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert!(rest.iter().all(|u| u.tenant_id == a.id));
    assert_eq!(s.list_users(a.id, None, u32::MAX).await.unwrap().len(), 7);
    assert!(s.list_users(a.id, None, 0).await.unwrap().is_empty());
    // No limit reads more than MAX_PAGE users at once.
    for i in 7..=MAX_PAGE {
        user(&s, &fx, a.id, &format!("user{i}")).await;
    }
    let capped = s.list_users(a.id, None, u32::MAX).await.unwrap();
    assert_eq!(capped.len(), MAX_PAGE as usize);
}

/// A state change happens only from the expected state; the reason and
/// time are kept.
pub async fn set_user_state_is_compare_and_set<S: ConformanceStore>(s: S) {
    let (_, t, u) = acme_alice(&s, 14).await;
    let moved = s
        .set_user_state(
            t.id,
            u.id,
            AccountState::Pending,
            AccountState::Suspended,
            None,
            at(5),
        )
        .await
        .unwrap();
    assert!(!moved, "the user is active, not pending");
    assert_eq!(
        s.get_user(t.id, u.id).await.unwrap().unwrap().state,
        AccountState::Active
    );
    let moved = s
        .set_user_state(
            t.id,
            u.id,
            AccountState::Active,
            AccountState::Suspended,
            Some("abuse"),
            at(6),
        )
        .await
        .unwrap();
    assert!(moved);
    let now = s.get_user(t.id, u.id).await.unwrap().unwrap();
    assert_eq!(now.state, AccountState::Suspended);
    assert_eq!(now.state_reason.as_deref(), Some("abuse"));
    assert_eq!(now.updated_at, at(6));
}

/// Of many concurrent transitions from the same state, exactly one wins.
pub async fn concurrent_state_transitions_have_one_winner<S: ConformanceStore>(s: S) {
    let (_, t, u) = acme_alice(&s, 15).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = s.clone();
        let to = if i % 2 == 0 {
            AccountState::Suspended
        } else {
            AccountState::Deleted
        };
        tasks.push(tokio::spawn(async move {
            s.set_user_state(t.id, u.id, AccountState::Active, to, None, at(7))
                .await
                .unwrap()
        }));
    }
    let mut wins = 0;
    for task in tasks {
        if task.await.unwrap() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
}

/// A state change naming the wrong tenant is `NotFound` and changes nothing.
pub async fn set_user_state_in_other_tenant_is_not_found<S: ConformanceStore>(s: S) {
    let fx = Fx::new(16);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let u = user(&s, &fx, a.id, "alice").await;
    let r = s
        .set_user_state(
            b.id,
            u.id,
            AccountState::Active,
            AccountState::Suspended,
            None,
            at(3),
        )
        .await;
    assert_eq!(kind(r), StoreErrorKind::NotFound);
    assert_eq!(
        s.get_user(a.id, u.id).await.unwrap().unwrap().state,
        AccountState::Active
    );
}

/// The last login time is stored; naming the wrong tenant is `NotFound`.
pub async fn last_login_is_recorded_and_tenant_scoped<S: ConformanceStore>(s: S) {
    let fx = Fx::new(17);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let u = user(&s, &fx, a.id, "alice").await;
    s.record_last_login(a.id, u.id, at(42)).await.unwrap();
    assert_eq!(
        s.get_user(a.id, u.id).await.unwrap().unwrap().last_login_at,
        Some(at(42))
    );
    assert_eq!(
        kind(s.record_last_login(b.id, u.id, at(43)).await),
        StoreErrorKind::NotFound
    );
    assert_eq!(
        s.get_user(a.id, u.id).await.unwrap().unwrap().last_login_at,
        Some(at(42))
    );
}

// ── Lockout ──────────────────────────────────────────────────────────────

fn policy(max: u32, window_secs: u64, lock_secs: u64) -> LockoutPolicy {
    LockoutPolicy {
        max_attempts: max,
        window: StdDuration::from_secs(window_secs),
        lock_duration: StdDuration::from_secs(lock_secs),
    }
}

/// Failures count up and lock the account at the policy's limit, exactly
/// as [`LockoutPolicy::next_failure`] says.
pub async fn failed_attempts_lock_at_the_policy_limit<S: ConformanceStore>(s: S) {
    let (_, t, u) = acme_alice(&s, 18).await;
    let p = policy(3, 600, 900);
    let mut expected: Option<FailureRecord> = None;
    for i in 0..5 {
        let now = at(10 + i);
        let got = s.record_failed_attempt(t.id, u.id, &p, now).await.unwrap();
        let want = p.next_failure(expected.as_ref(), now);
        assert_eq!(got, want, "attempt {i}");
        expected = Some(want);
    }
    let rec = s.failure_record(t.id, u.id).await.unwrap().unwrap();
    assert_eq!(rec.count, 5);
    assert_eq!(rec.locked_until, Some(at(12) + Duration::seconds(900)));
    assert_eq!(rec.window_start, at(10));
}

/// `N` concurrent failures raise the count by exactly `N`.
pub async fn concurrent_failed_attempts_are_counted_exactly<S: ConformanceStore>(s: S) {
    let (_, t, u) = acme_alice(&s, 19).await;
    let p = LockoutPolicy::default();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (s, p) = (s.clone(), p.clone());
        tasks.push(tokio::spawn(async move {
            s.record_failed_attempt(t.id, u.id, &p, at(100))
                .await
                .unwrap()
                .count
        }));
    }
    let mut counts = HashSet::new();
    for task in tasks {
        counts.insert(task.await.unwrap());
    }
    assert_eq!(
        counts,
        (1..=32).collect::<HashSet<u32>>(),
        "every increment seen once"
    );
    let rec = s.failure_record(t.id, u.id).await.unwrap().unwrap();
    assert_eq!(rec.count, 32);
    assert_eq!(rec.locked_until, Some(at(100) + p.lock_delta()));
}

/// After the lock's duration, the next failure starts a fresh count and
/// the account is no longer locked.
pub async fn lock_lifts_after_its_duration<S: ConformanceStore>(s: S) {
    let (_, t, u) = acme_alice(&s, 20).await;
    let p = policy(2, 60, 300);
    s.record_failed_attempt(t.id, u.id, &p, at(0))
        .await
        .unwrap();
    let locked = s
        .record_failed_attempt(t.id, u.id, &p, at(1))
        .await
        .unwrap();
    assert_eq!(locked.locked_at(at(2)), Some(at(301)));
    assert_eq!(locked.locked_at(at(301)), None, "the lock lifts at its end");
    // A failure during the lock counts but does not extend it.
    let during = s
        .record_failed_attempt(t.id, u.id, &p, at(200))
        .await
        .unwrap();
    assert_eq!((during.count, during.locked_until), (3, Some(at(301))));
    let after = s
        .record_failed_attempt(t.id, u.id, &p, at(301))
        .await
        .unwrap();
    assert_eq!(
        (after.count, after.locked_until, after.window_start),
        (1, None, at(301))
    );
}

/// Without a lock, a failure after the window has closed starts a new count.
pub async fn failure_window_expiry_restarts_the_count<S: ConformanceStore>(s: S) {
    let (_, t, u) = acme_alice(&s, 21).await;
    let p = policy(3, 60, 300);
    s.record_failed_attempt(t.id, u.id, &p, at(0))
        .await
        .unwrap();
    let second = s
        .record_failed_attempt(t.id, u.id, &p, at(59))
        .await
        .unwrap();
    assert_eq!(second.count, 2);
    let late = s
        .record_failed_attempt(t.id, u.id, &p, at(60))
        .await
        .unwrap();
    assert_eq!(
        (late.count, late.window_start, late.locked_until),
        (1, at(60), None)
    );
}

/// Resetting forgets every failure (and any lock).
pub async fn reset_failed_attempts_clears_the_record<S: ConformanceStore>(s: S) {
    let (_, t, u) = acme_alice(&s, 22).await;
    let p = policy(1, 60, 300);
    let rec = s
        .record_failed_attempt(t.id, u.id, &p, at(0))
        .await
        .unwrap();
    assert!(rec.locked_until.is_some());
    s.reset_failed_attempts(t.id, u.id).await.unwrap();
    assert_eq!(s.failure_record(t.id, u.id).await.unwrap(), None);
    let fresh = s
        .record_failed_attempt(t.id, u.id, &policy(5, 60, 300), at(1))
        .await
        .unwrap();
    assert_eq!((fresh.count, fresh.locked_until), (1, None));
}

/// Failure records are read and written only within the user's tenant.
pub async fn failure_records_are_tenant_scoped<S: ConformanceStore>(s: S) {
    let fx = Fx::new(23);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let u = user(&s, &fx, a.id, "alice").await;
    let p = LockoutPolicy::default();
    assert_eq!(
        kind(s.record_failed_attempt(b.id, u.id, &p, at(0)).await),
        StoreErrorKind::NotFound
    );
    assert_eq!(s.failure_record(a.id, u.id).await.unwrap(), None);
    s.record_failed_attempt(a.id, u.id, &p, at(0))
        .await
        .unwrap();
    assert_eq!(s.failure_record(b.id, u.id).await.unwrap(), None);
    s.reset_failed_attempts(b.id, u.id).await.unwrap();
    assert_eq!(
        s.failure_record(a.id, u.id).await.unwrap().unwrap().count,
        1
    );
}

// ── Password history ─────────────────────────────────────────────────────

/// History returns the newest hashes first and keeps only the newest `keep`.
pub async fn password_history_is_newest_first_and_pruned<S: ConformanceStore>(s: S) {
    let (_, t, u) = acme_alice(&s, 36).await;
    for i in 1..=5 {
        s.push_password_history(t.id, u.id, &format!("h{i}"), at(i), 3)
            .await
            .unwrap();
    }
    assert_eq!(
        s.password_history(t.id, u.id, 10).await.unwrap(),
        ["h5", "h4", "h3"]
    );
    assert_eq!(
        s.password_history(t.id, u.id, 2).await.unwrap(),
        ["h5", "h4"]
    );
    assert!(s.password_history(t.id, u.id, 0).await.unwrap().is_empty());
}

/// History is read and written only within the user's tenant.
pub async fn password_history_is_tenant_scoped<S: ConformanceStore>(s: S) {
    let fx = Fx::new(37);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let u = user(&s, &fx, a.id, "alice").await;
    s.push_password_history(a.id, u.id, "h1", at(1), 5)
        .await
        .unwrap();
    assert!(s.password_history(b.id, u.id, 5).await.unwrap().is_empty());
    assert_eq!(
        kind(s.push_password_history(b.id, u.id, "h2", at(2), 5).await),
        StoreErrorKind::NotFound
    );
    assert_eq!(s.password_history(a.id, u.id, 5).await.unwrap(), ["h1"]);
}

// ── Erasure ──────────────────────────────────────────────────────────────

/// Erasure removes the user, its credentials, user methods, lockout
/// record and history; the identifier becomes free again.
pub async fn erase_user_removes_every_personal_row<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 38).await;
    let u = fx.user(t.id, "alice");
    s.create_user(&u, &[password("h")]).await.unwrap();
    let keep = user(&s, &fx, t.id, "bob").await;
    s.save_method(MethodScope::User(t.id, u.id), &method("mine"), true)
        .await
        .unwrap();
    s.push_password_history(t.id, u.id, "h", at(1), 5)
        .await
        .unwrap();
    s.record_failed_attempt(t.id, u.id, &LockoutPolicy::default(), at(2))
        .await
        .unwrap();
    assert!(s.erase_user(t.id, u.id, fx.user_id()).await.unwrap());
    assert_eq!(s.get_user(t.id, u.id).await.unwrap(), None);
    assert_eq!(s.get_user_cross_tenant(u.id).await.unwrap(), None);
    assert_eq!(s.find_user(t.id, &u.identifier).await.unwrap(), None);
    assert!(s.user_factors(t.id, u.id).await.unwrap().is_empty());
    assert!(
        s.methods(MethodScope::User(t.id, u.id))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.password_history(t.id, u.id, 5).await.unwrap().is_empty());
    assert_eq!(s.failure_record(t.id, u.id).await.unwrap(), None);
    assert!(
        !s.erase_user(t.id, u.id, fx.user_id()).await.unwrap(),
        "already gone"
    );
    assert_eq!(s.get_user(t.id, keep.id).await.unwrap(), Some(keep));
    // The identifier can be registered again.
    user(&s, &fx, t.id, "alice").await;
}

/// Erasing with the wrong tenant reports `false` and changes nothing.
pub async fn erase_user_in_other_tenant_changes_nothing<S: ConformanceStore>(s: S) {
    let fx = Fx::new(40);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let u = fx.user(a.id, "alice");
    s.create_user(&u, &[password("h")]).await.unwrap();
    assert!(!s.erase_user(b.id, u.id, fx.user_id()).await.unwrap());
    assert_eq!(s.get_user(a.id, u.id).await.unwrap(), Some(u.clone()));
    assert_eq!(s.user_factors(a.id, u.id).await.unwrap().len(), 1);
}
