//! The conformance suite: one function per guarantee of the store traits.
//!
//! Each function takes an empty store and panics (fails the test) if the
//! store breaks the guarantee its name states. Run them all with
//! [`conformance_suite!`](crate::conformance_suite).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration as StdDuration;

use chrono::Duration;
use countersign_core::store::MAX_PAGE;
use countersign_core::{
    AccountState, AuditFilter, AuditKind, AuditStatus, AuthMethod, FactorKind, FactorStep,
    FailureRecord, Identifier, LockoutPolicy, MethodName, PasswordRules, PasswordSettings, Scope,
    StoreError, StoreErrorKind, Tenant, TenantFactor, TenantId, TenantPolicy, TenantSlug, User,
    UserId,
};

use crate::ConformanceStore;
use crate::fixtures::{Fx, at, method, password, password_method, t0};

/// Every guarantee, in the order the suite runs them.
pub const ALL: &[&str] = &[
    "provision_creates_tenant_with_factors_and_enabled_methods",
    "provision_with_taken_slug_conflicts_and_writes_nothing",
    "provision_with_taken_id_conflicts",
    "unknown_tenant_lookups_are_none",
    "update_tenant_policy_persists_and_unknown_tenant_is_not_found",
    "created_user_round_trips_exactly",
    "identifiers_are_unique_per_tenant_only",
    "duplicate_user_id_conflicts",
    "create_user_in_unknown_tenant_is_not_found",
    "create_user_refuses_reserved_ids",
    "create_user_with_credentials_is_atomic",
    "user_lookups_are_tenant_scoped",
    "list_users_pages_by_id_within_one_tenant",
    "set_user_state_is_compare_and_set",
    "concurrent_state_transitions_have_one_winner",
    "set_user_state_in_other_tenant_is_not_found",
    "last_login_is_recorded_and_tenant_scoped",
    "failed_attempts_lock_at_the_policy_limit",
    "concurrent_failed_attempts_are_counted_exactly",
    "lock_lifts_after_its_duration",
    "failure_window_expiry_restarts_the_count",
    "reset_failed_attempts_clears_the_record",
    "failure_records_are_tenant_scoped",
    "tenant_factor_settings_save_and_replace",
    "tenant_keeps_at_least_one_factor",
    "user_factor_insert_only_if_absent",
    "user_factor_compare_and_save_checks_the_version",
    "concurrent_compare_and_save_has_exactly_one_winner",
    "user_factors_are_tenant_scoped",
    "remove_user_factor_reports_existence",
    "methods_are_listed_per_exact_scope",
    "available_methods_resolve_user_overrides",
    "tenant_keeps_one_enabled_method",
    "unknown_methods_report_false",
    "methods_need_an_existing_scope",
    "password_history_is_newest_first_and_pruned",
    "password_history_is_tenant_scoped",
    "erase_user_removes_every_personal_row",
    "erase_user_pseudonymises_audit_events",
    "erase_user_in_other_tenant_changes_nothing",
    "audit_query_never_crosses_tenants",
    "audit_query_is_newest_first_with_id_tiebreak",
    "audit_filters_combine",
    "audit_limit_defaults_and_caps",
    "audit_events_round_trip_exactly",
    "flow_round_trips_at_version_one",
    "flows_are_tenant_scoped",
    "duplicate_flow_keys_conflict",
    "flow_compare_and_save_checks_the_version",
    "concurrent_flow_saves_have_one_winner",
    "delete_flow_reports_existence",
    "expired_flows_are_deleted_at_their_time",
    "flows_need_an_existing_tenant_and_user",
    "erase_user_removes_their_flows",
    "every_credential_kind_round_trips",
    "session_round_trips",
    "validation_renews_near_the_idle_deadline",
    "sessions_end_at_their_deadlines",
    "sessions_are_tenant_scoped",
    "ending_a_session_revokes_its_family",
    "ending_all_user_sessions_keeps_the_named_one",
    "user_sessions_list_live_ones_newest_first",
    "refresh_rotation_and_reuse_detection",
    "concurrent_refreshes_rotate_once",
    "refresh_reuse_grace_is_honoured",
    "expired_sessions_and_families_are_cleaned",
    "erase_user_removes_sessions_and_families",
    "signing_keys_rotate_with_overlap",
    "expired_signing_keys_are_deleted",
];

/// The kind of the error `r` holds; panics if `r` is `Ok`.
fn kind<T: std::fmt::Debug, E: StoreError>(r: Result<T, E>) -> StoreErrorKind {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e.kind(),
    }
}

async fn tenant<S: ConformanceStore>(s: &S, fx: &Fx, slug: &str) -> Tenant {
    let p = fx.tenant(slug);
    s.provision_tenant(&p).await.unwrap();
    p.tenant().clone()
}

async fn user<S: ConformanceStore>(s: &S, fx: &Fx, tenant: TenantId, identifier: &str) -> User {
    let u = fx.user(tenant, identifier);
    s.create_user(&u, &[]).await.unwrap();
    u
}

fn name(s: &str) -> MethodName {
    MethodName::parse(s).unwrap()
}

fn strict_password() -> TenantFactor {
    TenantFactor::Password(PasswordSettings {
        rules: PasswordRules {
            min_length: 12,
            ..PasswordRules::default()
        },
    })
}

// ── Tenants ──────────────────────────────────────────────────────────────

/// Provisioning creates the tenant, its factor settings and its methods,
/// all enabled, findable by id and by slug.
pub async fn provision_creates_tenant_with_factors_and_enabled_methods<S: ConformanceStore>(s: S) {
    let fx = Fx::new(1);
    let t = tenant(&s, &fx, "acme").await;
    assert_eq!(s.get_tenant(t.id).await.unwrap(), Some(t.clone()));
    assert_eq!(s.find_tenant(&t.slug).await.unwrap(), Some(t.clone()));
    assert_eq!(
        s.tenant_factors(t.id).await.unwrap(),
        vec![TenantFactor::Password(PasswordSettings::default())]
    );
    assert_eq!(
        s.tenant_factor(t.id, FactorKind::Password).await.unwrap(),
        Some(TenantFactor::Password(PasswordSettings::default()))
    );
    let methods = s.methods(Scope::Tenant(t.id)).await.unwrap();
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
    assert!(s.methods(Scope::Tenant(id)).await.unwrap().is_empty());
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
    let fx = Fx::new(5);
    let t = tenant(&s, &fx, "acme").await;
    let policy = TenantPolicy {
        lockout: LockoutPolicy {
            max_attempts: 3,
            window: StdDuration::from_secs(60),
            lock_duration: StdDuration::from_secs(3600),
        },
        sessions: countersign_core::SessionPolicy {
            idle_timeout: StdDuration::from_secs(600),
            refresh_reuse_grace: StdDuration::from_secs(3),
            access_tokens: Some(countersign_core::AccessTokenPolicy {
                audience: "api".into(),
                ttl: StdDuration::from_secs(300),
            }),
            ..Default::default()
        },
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
    let fx = Fx::new(6);
    let t = tenant(&s, &fx, "acme").await;
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
    let fx = Fx::new(8);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
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
    let fx = Fx::new(10);
    let t = tenant(&s, &fx, "acme").await;
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
    let fx = Fx::new(11);
    let t = tenant(&s, &fx, "acme").await;
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
    let fx = Fx::new(14);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
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
    let fx = Fx::new(15);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
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
    let fx = Fx::new(18);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
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
    let fx = Fx::new(19);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
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
    let fx = Fx::new(20);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
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
    let fx = Fx::new(21);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
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
    let fx = Fx::new(22);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
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

// ── Factors ──────────────────────────────────────────────────────────────

/// A tenant's factor settings are replaced by a save and read back.
pub async fn tenant_factor_settings_save_and_replace<S: ConformanceStore>(s: S) {
    let fx = Fx::new(24);
    let t = tenant(&s, &fx, "acme").await;
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
    let fx = Fx::new(25);
    let t = tenant(&s, &fx, "acme").await;
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
    let fx = Fx::new(26);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
    assert!(
        s.compare_and_save_user_factor(t.id, u.id, None, &password("one"))
            .await
            .unwrap()
    );
    assert!(
        !s.compare_and_save_user_factor(t.id, u.id, None, &password("two"))
            .await
            .unwrap()
    );
    let got = s
        .user_factor(t.id, u.id, FactorKind::Password)
        .await
        .unwrap()
        .unwrap();
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
    let fx = Fx::new(27);
    let t = tenant(&s, &fx, "acme").await;
    let u = fx.user(t.id, "alice");
    s.create_user(&u, &[password("v1")]).await.unwrap();
    assert!(
        s.compare_and_save_user_factor(t.id, u.id, Some(1), &password("v2"))
            .await
            .unwrap()
    );
    assert!(
        !s.compare_and_save_user_factor(t.id, u.id, Some(1), &password("stale"))
            .await
            .unwrap()
    );
    assert!(
        !s.compare_and_save_user_factor(t.id, u.id, Some(3), &password("ahead"))
            .await
            .unwrap()
    );
    let got = s
        .user_factor(t.id, u.id, FactorKind::Password)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((got.value, got.version), (password("v2"), 2));
}

/// Of 32 concurrent compare-and-saves naming the same version, exactly one
/// wins, and the stored value is the winner's.
pub async fn concurrent_compare_and_save_has_exactly_one_winner<S: ConformanceStore>(s: S) {
    let fx = Fx::new(28);
    let t = tenant(&s, &fx, "acme").await;
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
    let got = s
        .user_factor(t.id, u.id, FactorKind::Password)
        .await
        .unwrap()
        .unwrap();
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
    let fx = Fx::new(30);
    let t = tenant(&s, &fx, "acme").await;
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
    // Re-enrolling starts again at version 1.
    assert!(
        s.compare_and_save_user_factor(t.id, u.id, None, &password("h2"))
            .await
            .unwrap()
    );
    assert_eq!(
        s.user_factor(t.id, u.id, FactorKind::Password)
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
}

// ── Methods ──────────────────────────────────────────────────────────────

/// `methods` lists exactly one scope's methods, ordered by name.
pub async fn methods_are_listed_per_exact_scope<S: ConformanceStore>(s: S) {
    let fx = Fx::new(31);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
    s.save_method(Scope::Tenant(t.id), &method("a-first"), true)
        .await
        .unwrap();
    s.save_method(Scope::User(t.id, u.id), &method("zeta"), false)
        .await
        .unwrap();
    s.save_method(Scope::User(t.id, u.id), &method("beta"), true)
        .await
        .unwrap();
    let tenant_names: Vec<String> = s
        .methods(Scope::Tenant(t.id))
        .await
        .unwrap()
        .iter()
        .map(|r| r.method.name.to_string())
        .collect();
    assert_eq!(tenant_names, ["a-first", "password"]);
    let user_methods = s.methods(Scope::User(t.id, u.id)).await.unwrap();
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
    s.save_method(Scope::User(t.id, u.id), &mfa, true)
        .await
        .unwrap();
    let again = s.methods(Scope::User(t.id, u.id)).await.unwrap();
    assert_eq!(again.len(), 2);
    assert_eq!(again[0].method, mfa);
}

/// Available methods: enabled only, the user's method replaces the
/// tenant's of the same name (and hides it when disabled), ordered by name.
pub async fn available_methods_resolve_user_overrides<S: ConformanceStore>(s: S) {
    let fx = Fx::new(32);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
    let other = user(&s, &fx, t.id, "bob").await;
    s.save_method(Scope::Tenant(t.id), &method("backup"), false)
        .await
        .unwrap();
    s.save_method(Scope::Tenant(t.id), &method("corp"), true)
        .await
        .unwrap();
    let corp_mfa = AuthMethod::sequence("corp", &[FactorKind::Password, FactorKind::Totp]).unwrap();
    s.save_method(Scope::User(t.id, u.id), &corp_mfa, true)
        .await
        .unwrap();
    s.save_method(Scope::User(t.id, u.id), &method("password"), false)
        .await
        .unwrap();
    s.save_method(Scope::User(t.id, u.id), &method("personal"), true)
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
    let fx = Fx::new(33);
    let t = tenant(&s, &fx, "acme").await;
    let scope = Scope::Tenant(t.id);
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
    s.save_method(Scope::User(t.id, u.id), &method("mine"), true)
        .await
        .unwrap();
    assert!(
        s.remove_method(Scope::User(t.id, u.id), &name("mine"))
            .await
            .unwrap()
    );
}

/// Enabling or removing a method that does not exist reports `false`.
pub async fn unknown_methods_report_false<S: ConformanceStore>(s: S) {
    let fx = Fx::new(34);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
    let ghost = name("ghost");
    assert!(
        !s.set_method_enabled(Scope::Tenant(t.id), &ghost, true)
            .await
            .unwrap()
    );
    assert!(!s.remove_method(Scope::Tenant(t.id), &ghost).await.unwrap());
    assert!(
        !s.set_method_enabled(Scope::User(t.id, u.id), &ghost, false)
            .await
            .unwrap()
    );
    assert!(
        !s.remove_method(Scope::User(t.id, u.id), &ghost)
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
            s.save_method(Scope::Tenant(fx.tenant_id()), &method("m"), true)
                .await
        ),
        StoreErrorKind::NotFound
    );
    assert_eq!(
        kind(
            s.save_method(Scope::User(b.id, u.id), &method("m"), true)
                .await
        ),
        StoreErrorKind::NotFound
    );
    assert!(s.methods(Scope::User(b.id, u.id)).await.unwrap().is_empty());
    assert!(s.available_methods(b.id, u.id).await.unwrap().is_empty());
}

// ── Password history ─────────────────────────────────────────────────────

/// History returns the newest hashes first and keeps only the newest `keep`.
pub async fn password_history_is_newest_first_and_pruned<S: ConformanceStore>(s: S) {
    let fx = Fx::new(36);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
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
    let fx = Fx::new(38);
    let t = tenant(&s, &fx, "acme").await;
    let u = fx.user(t.id, "alice");
    s.create_user(&u, &[password("h")]).await.unwrap();
    let keep = user(&s, &fx, t.id, "bob").await;
    s.save_method(Scope::User(t.id, u.id), &method("mine"), true)
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
    assert!(s.methods(Scope::User(t.id, u.id)).await.unwrap().is_empty());
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

/// Erasure keeps the user's audit events but names a pseudonym instead,
/// with ip and user agent cleared; other users' events are untouched.
pub async fn erase_user_pseudonymises_audit_events<S: ConformanceStore>(s: S) {
    let fx = Fx::new(39);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
    let v = user(&s, &fx, t.id, "bob").await;
    for i in 0..3 {
        let e = fx.event(
            t.id,
            Some(u.id),
            AuditKind::Authentication,
            AuditStatus::Failure,
            at(i),
        );
        s.record_event(&e).await.unwrap();
    }
    let theirs = fx.event(
        t.id,
        Some(v.id),
        AuditKind::Authentication,
        AuditStatus::Success,
        at(5),
    );
    s.record_event(&theirs).await.unwrap();
    let pseudonym = fx.user_id();
    s.erase_user(t.id, u.id, pseudonym).await.unwrap();
    let by_old = AuditFilter {
        user_id: Some(u.id),
        ..AuditFilter::default()
    };
    assert!(s.query_events(t.id, &by_old).await.unwrap().is_empty());
    let by_new = AuditFilter {
        user_id: Some(pseudonym),
        ..AuditFilter::default()
    };
    let kept = s.query_events(t.id, &by_new).await.unwrap();
    assert_eq!(kept.len(), 3);
    assert!(
        kept.iter()
            .all(|e| e.ip.is_none() && e.user_agent.is_none())
    );
    assert!(
        kept.iter()
            .all(|e| e.kind == AuditKind::Authentication && e.status == AuditStatus::Failure)
    );
    let others = AuditFilter {
        user_id: Some(v.id),
        ..AuditFilter::default()
    };
    assert_eq!(s.query_events(t.id, &others).await.unwrap(), vec![theirs]);
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

// ── Audit ────────────────────────────────────────────────────────────────

/// A tenant's audit query never returns another tenant's events, whatever
/// the filter (even one naming the other tenant's user).
pub async fn audit_query_never_crosses_tenants<S: ConformanceStore>(s: S) {
    let fx = Fx::new(41);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let ub = user(&s, &fx, b.id, "bob").await;
    for i in 0..5 {
        s.record_event(&fx.event(
            a.id,
            None,
            AuditKind::TenantProvisioned,
            AuditStatus::Success,
            at(i),
        ))
        .await
        .unwrap();
        s.record_event(&fx.event(
            b.id,
            Some(ub.id),
            AuditKind::Authentication,
            AuditStatus::Failure,
            at(i),
        ))
        .await
        .unwrap();
    }
    let all_a = s.query_events(a.id, &AuditFilter::default()).await.unwrap();
    assert_eq!(all_a.len(), 5);
    assert!(all_a.iter().all(|e| e.tenant_id == a.id));
    let sneaky = AuditFilter {
        user_id: Some(ub.id),
        ..AuditFilter::default()
    };
    assert!(s.query_events(a.id, &sneaky).await.unwrap().is_empty());
    assert!(
        s.query_events(fx.tenant_id(), &AuditFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
}

/// Results are newest first; events at the same instant order by id,
/// newest id first.
pub async fn audit_query_is_newest_first_with_id_tiebreak<S: ConformanceStore>(s: S) {
    let fx = Fx::new(42);
    let t = tenant(&s, &fx, "acme").await;
    let mut recorded = Vec::new();
    for secs in [5, 1, 9, 9, 3] {
        let e = fx.event(
            t.id,
            None,
            AuditKind::Authentication,
            AuditStatus::Success,
            at(secs),
        );
        s.record_event(&e).await.unwrap();
        recorded.push(e);
    }
    recorded.sort_by(|x, y| y.at.cmp(&x.at).then(y.id.cmp(&x.id)));
    let got = s.query_events(t.id, &AuditFilter::default()).await.unwrap();
    assert_eq!(got, recorded);
}

/// Filters on user, kind, status and time range (from inclusive, until
/// exclusive) narrow the result and combine with AND.
pub async fn audit_filters_combine<S: ConformanceStore>(s: S) {
    let fx = Fx::new(43);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
    let v = user(&s, &fx, t.id, "bob").await;
    let mut all = Vec::new();
    for i in 0..12 {
        let who = if i % 2 == 0 { Some(u.id) } else { Some(v.id) };
        let kind = if i % 3 == 0 {
            AuditKind::PasswordChanged
        } else {
            AuditKind::Authentication
        };
        let status = if i % 4 == 0 {
            AuditStatus::Failure
        } else {
            AuditStatus::Success
        };
        let e = fx.event(t.id, who, kind, status, at(i));
        s.record_event(&e).await.unwrap();
        all.push(e);
    }
    let filters = [
        AuditFilter {
            user_id: Some(u.id),
            ..Default::default()
        },
        AuditFilter {
            kind: Some(AuditKind::PasswordChanged),
            ..Default::default()
        },
        AuditFilter {
            status: Some(AuditStatus::Failure),
            ..Default::default()
        },
        AuditFilter {
            from: Some(at(4)),
            until: Some(at(8)),
            ..Default::default()
        },
        AuditFilter {
            user_id: Some(u.id),
            kind: Some(AuditKind::Authentication),
            status: Some(AuditStatus::Success),
            from: Some(at(2)),
            until: Some(at(11)),
            limit: None,
        },
    ];
    for f in filters {
        let mut want: Vec<_> = all.iter().filter(|e| f.matches(e)).cloned().collect();
        want.sort_by(|x, y| y.at.cmp(&x.at).then(y.id.cmp(&x.id)));
        let got = s.query_events(t.id, &f).await.unwrap();
        assert_eq!(got, want, "filter {f:?}");
        assert!(!got.is_empty(), "each filter selects something: {f:?}");
    }
    let range = AuditFilter {
        from: Some(at(4)),
        until: Some(at(8)),
        ..Default::default()
    };
    let times: Vec<_> = s
        .query_events(t.id, &range)
        .await
        .unwrap()
        .iter()
        .map(|e| e.at)
        .collect();
    assert_eq!(times, [at(7), at(6), at(5), at(4)]);
}

/// No limit gives at most 100 events, a limit gives at most that many, and
/// no limit can exceed 1000.
pub async fn audit_limit_defaults_and_caps<S: ConformanceStore>(s: S) {
    let fx = Fx::new(44);
    let t = tenant(&s, &fx, "acme").await;
    for i in 0..1010 {
        let e = fx.event(
            t.id,
            None,
            AuditKind::Authentication,
            AuditStatus::Success,
            at(i),
        );
        s.record_event(&e).await.unwrap();
    }
    assert_eq!(
        s.query_events(t.id, &AuditFilter::default())
            .await
            .unwrap()
            .len(),
        100
    );
    let five = AuditFilter {
        limit: Some(5),
        ..Default::default()
    };
    let got = s.query_events(t.id, &five).await.unwrap();
    assert_eq!(got.len(), 5);
    assert_eq!(got[0].at, at(1009), "the newest five");
    let huge = AuditFilter {
        limit: Some(u32::MAX),
        ..Default::default()
    };
    assert_eq!(s.query_events(t.id, &huge).await.unwrap().len(), 1000);
    let zero = AuditFilter {
        limit: Some(0),
        ..Default::default()
    };
    assert!(s.query_events(t.id, &zero).await.unwrap().is_empty());
}

/// An event reads back exactly: every field, IPv6 and Unicode included.
pub async fn audit_events_round_trip_exactly<S: ConformanceStore>(s: S) {
    let fx = Fx::new(45);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
    let mut e = fx.event(
        t.id,
        Some(u.id),
        AuditKind::AccountLocked,
        AuditStatus::Failure,
        t0(),
    );
    e.at = t0() + Duration::microseconds(123_456);
    e.ip = Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)));
    e.user_agent = Some("Mozilla/5.0 (測試) ✓".into());
    e.factor = Some(FactorKind::Password);
    e.detail = Some("wrong_secret".into());
    s.record_event(&e).await.unwrap();
    let mut bare = fx.event(
        t.id,
        None,
        AuditKind::TenantProvisioned,
        AuditStatus::Success,
        at(1),
    );
    bare.ip = None;
    bare.user_agent = None;
    s.record_event(&bare).await.unwrap();
    let got = s.query_events(t.id, &AuditFilter::default()).await.unwrap();
    assert_eq!(got, vec![bare, e]);
}

// ── Flows and credential kinds ───────────────────────────────────────────

use countersign_core::factor::{
    EmailOtpCredential, PendingCode, RecoveryCodeSlot, RecoveryCodesCredential, TotpAlgorithm,
    TotpCredential,
};
use countersign_core::{EmailAddress, FlowState, LoginState, UserFactor};

use crate::fixtures::flow;

/// A flow reads back exactly, at version 1.
pub async fn flow_round_trips_at_version_one<S: ConformanceStore>(s: S) {
    let fx = Fx::new(46);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
    for f in [flow(&fx, t.id, Some(u.id), 300), flow(&fx, t.id, None, 300)] {
        s.create_flow(&f).await.unwrap();
        let got = s.flow(t.id, &f.key).await.unwrap().unwrap();
        assert_eq!((got.value, got.version), (f, 1));
    }
}

/// Flows are read, saved and deleted only within their tenant.
pub async fn flows_are_tenant_scoped<S: ConformanceStore>(s: S) {
    let fx = Fx::new(47);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let f = flow(&fx, a.id, None, 300);
    s.create_flow(&f).await.unwrap();
    assert_eq!(s.flow(b.id, &f.key).await.unwrap(), None);
    assert!(!s.delete_flow(b.id, &f.key).await.unwrap());
    let mut foreign = f.clone();
    foreign.tenant_id = b.id;
    assert!(!s.compare_and_save_flow(1, &foreign).await.unwrap());
    assert_eq!(s.flow(a.id, &f.key).await.unwrap().unwrap().version, 1);
}

/// Creating a flow whose key exists is `Conflict`.
pub async fn duplicate_flow_keys_conflict<S: ConformanceStore>(s: S) {
    let fx = Fx::new(48);
    let t = tenant(&s, &fx, "acme").await;
    let f = flow(&fx, t.id, None, 300);
    s.create_flow(&f).await.unwrap();
    assert_eq!(kind(s.create_flow(&f).await), StoreErrorKind::Conflict);
}

/// A flow saves only against its current version, which then goes up by one.
pub async fn flow_compare_and_save_checks_the_version<S: ConformanceStore>(s: S) {
    let fx = Fx::new(49);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
    let f = flow(&fx, t.id, None, 300);
    s.create_flow(&f).await.unwrap();
    let mut next = f.clone();
    next.state = FlowState::Login(LoginState::Expired);
    next.user_id = Some(u.id);
    assert!(!s.compare_and_save_flow(2, &next).await.unwrap());
    assert!(s.compare_and_save_flow(1, &next).await.unwrap());
    assert!(!s.compare_and_save_flow(1, &f).await.unwrap(), "stale");
    let got = s.flow(t.id, &f.key).await.unwrap().unwrap();
    assert_eq!((got.value, got.version), (next, 2));
}

/// Of 32 concurrent saves naming one version, exactly one wins.
pub async fn concurrent_flow_saves_have_one_winner<S: ConformanceStore>(s: S) {
    let fx = Fx::new(50);
    let t = tenant(&s, &fx, "acme").await;
    let f = flow(&fx, t.id, None, 300);
    s.create_flow(&f).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..32 {
        let (s, mut next) = (s.clone(), f.clone());
        next.expires_at = at(1000 + i);
        tasks.push(tokio::spawn(async move {
            s.compare_and_save_flow(1, &next).await.unwrap()
        }));
    }
    let mut wins = 0;
    for task in tasks {
        wins += usize::from(task.await.unwrap());
    }
    assert_eq!(wins, 1);
    assert_eq!(s.flow(t.id, &f.key).await.unwrap().unwrap().version, 2);
}

/// Deleting a flow reports whether it existed; it is gone after.
pub async fn delete_flow_reports_existence<S: ConformanceStore>(s: S) {
    let fx = Fx::new(51);
    let t = tenant(&s, &fx, "acme").await;
    let f = flow(&fx, t.id, None, 300);
    s.create_flow(&f).await.unwrap();
    assert!(s.delete_flow(t.id, &f.key).await.unwrap());
    assert!(!s.delete_flow(t.id, &f.key).await.unwrap());
    assert_eq!(s.flow(t.id, &f.key).await.unwrap(), None);
}

/// Expired flows (of every tenant) go at their expiry; live ones stay.
pub async fn expired_flows_are_deleted_at_their_time<S: ConformanceStore>(s: S) {
    let fx = Fx::new(52);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let short_a = flow(&fx, a.id, None, 60);
    let short_b = flow(&fx, b.id, None, 60);
    let long = flow(&fx, a.id, None, 600);
    for f in [&short_a, &short_b, &long] {
        s.create_flow(f).await.unwrap();
    }
    assert_eq!(s.delete_expired_flows(at(59)).await.unwrap(), 0);
    assert_eq!(
        s.delete_expired_flows(at(60)).await.unwrap(),
        2,
        "expiry is inclusive"
    );
    assert_eq!(s.flow(a.id, &short_a.key).await.unwrap(), None);
    assert!(s.flow(a.id, &long.key).await.unwrap().is_some());
}

/// Flows need their tenant (and named user, in that tenant) to exist.
pub async fn flows_need_an_existing_tenant_and_user<S: ConformanceStore>(s: S) {
    let fx = Fx::new(53);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let u = user(&s, &fx, a.id, "alice").await;
    assert_eq!(
        kind(s.create_flow(&flow(&fx, fx.tenant_id(), None, 60)).await),
        StoreErrorKind::NotFound
    );
    assert_eq!(
        kind(s.create_flow(&flow(&fx, b.id, Some(u.id), 60)).await),
        StoreErrorKind::NotFound
    );
}

/// Erasing a user removes their flows.
pub async fn erase_user_removes_their_flows<S: ConformanceStore>(s: S) {
    let fx = Fx::new(54);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
    let theirs = flow(&fx, t.id, Some(u.id), 300);
    let anonymous = flow(&fx, t.id, None, 300);
    s.create_flow(&theirs).await.unwrap();
    s.create_flow(&anonymous).await.unwrap();
    s.erase_user(t.id, u.id, fx.user_id()).await.unwrap();
    assert_eq!(s.flow(t.id, &theirs.key).await.unwrap(), None);
    assert!(s.flow(t.id, &anonymous.key).await.unwrap().is_some());
}

/// Every kind of credential reads back exactly.
pub async fn every_credential_kind_round_trips<S: ConformanceStore>(s: S) {
    let fx = Fx::new(55);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
    let creds = [
        UserFactor::Totp(TotpCredential {
            secret: vec![7; 20],
            digits: 8,
            step_secs: 30,
            algorithm: TotpAlgorithm::Sha256,
            last_step: Some(u64::from(u32::MAX) + 5),
            confirmed: true,
            created_at: at(3),
        }),
        UserFactor::RecoveryCodes(RecoveryCodesCredential {
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
        UserFactor::EmailOtp(EmailOtpCredential {
            address: EmailAddress::parse("alice@example.org").unwrap(),
            confirmed: false,
            pending: Some(PendingCode {
                hash: "ef".repeat(32),
                expires_at: at(600),
                attempts: 2,
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
    let got: Vec<UserFactor> = s
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

// ── Sessions, refresh families, signing keys ─────────────────────────────

use countersign_core::Rotation;

use crate::fixtures::{family, session, signing_key, token_hash};

/// A session reads back exactly, by token hash and by id.
pub async fn session_round_trips<S: ConformanceStore>(s: S) {
    let fx = Fx::new(60);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
    let sess = session(&fx, t.id, u.id);
    s.create_session(&sess, None).await.unwrap();
    assert_eq!(
        s.validate_session(&sess.key, at(1)).await.unwrap(),
        Some(std::sync::Arc::new(sess.clone())),
        "no renewal far from expiry"
    );
    assert_eq!(s.session(t.id, sess.id).await.unwrap(), Some(sess));
}

/// A check near the idle deadline renews the session (never past its
/// absolute end), exactly as `SessionRecord::renew` says.
pub async fn validation_renews_near_the_idle_deadline<S: ConformanceStore>(s: S) {
    let fx = Fx::new(61);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
    let sess = session(&fx, t.id, u.id);
    s.create_session(&sess, None).await.unwrap();
    let now = at(20 * 60);
    let mut want = sess.clone();
    assert!(want.renew(now));
    let got = s.validate_session(&sess.key, now).await.unwrap().unwrap();
    assert_eq!(*got, want);
    assert_eq!(got.expires_at, at(50 * 60));
    assert_eq!(s.session(t.id, sess.id).await.unwrap(), Some(want));
    // Near the absolute end, renewal stops at it.
    let mut late = session(&fx, t.id, u.id);
    late.absolute_expires_at = at(40 * 60);
    s.create_session(&late, None).await.unwrap();
    let got = s
        .validate_session(&late.key, at(20 * 60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.expires_at, at(40 * 60));
}

/// A session is not valid at or after its idle deadline or absolute end.
pub async fn sessions_end_at_their_deadlines<S: ConformanceStore>(s: S) {
    let fx = Fx::new(62);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
    let idle = session(&fx, t.id, u.id);
    s.create_session(&idle, None).await.unwrap();
    assert_eq!(
        s.validate_session(&idle.key, at(30 * 60)).await.unwrap(),
        None,
        "idle deadline is exclusive"
    );
    let mut abs = session(&fx, t.id, u.id);
    abs.expires_at = at(3600);
    abs.absolute_expires_at = at(60);
    s.create_session(&abs, None).await.unwrap();
    assert_eq!(s.validate_session(&abs.key, at(60)).await.unwrap(), None);
    assert!(
        s.validate_session(&token_hash(&fx), at(0))
            .await
            .unwrap()
            .is_none(),
        "unknown"
    );
}

/// Sessions are read and ended only within their tenant, and need their
/// user in it; keys and ids are unique.
pub async fn sessions_are_tenant_scoped<S: ConformanceStore>(s: S) {
    let fx = Fx::new(63);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let u = user(&s, &fx, a.id, "alice").await;
    let sess = session(&fx, a.id, u.id);
    s.create_session(&sess, None).await.unwrap();
    assert_eq!(s.session(b.id, sess.id).await.unwrap(), None);
    assert_eq!(s.delete_session(b.id, sess.id, at(1)).await.unwrap(), None);
    assert_eq!(
        s.delete_user_sessions(b.id, u.id, None, at(1))
            .await
            .unwrap(),
        0
    );
    assert!(s.user_sessions(b.id, u.id, at(1)).await.unwrap().is_empty());
    assert!(s.session(a.id, sess.id).await.unwrap().is_some());
    let mut foreign = session(&fx, b.id, u.id);
    foreign.auth.tenant_id = b.id;
    assert_eq!(
        kind(s.create_session(&foreign, None).await),
        StoreErrorKind::NotFound
    );
    assert_eq!(
        kind(s.create_session(&sess, None).await),
        StoreErrorKind::Conflict
    );
}

/// Ending a session revokes its refresh family.
pub async fn ending_a_session_revokes_its_family<S: ConformanceStore>(s: S) {
    let fx = Fx::new(64);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
    for by_key in [false, true] {
        let sess = session(&fx, t.id, u.id);
        let fam = family(&fx, &sess);
        s.create_session(&sess, Some(&fam)).await.unwrap();
        let ended = if by_key {
            s.delete_session_by_key(&sess.key, at(5)).await.unwrap()
        } else {
            s.delete_session(t.id, sess.id, at(5)).await.unwrap()
        };
        assert_eq!(ended.map(|e| e.id), Some(sess.id));
        assert_eq!(s.validate_session(&sess.key, at(6)).await.unwrap(), None);
        assert_eq!(
            s.refresh_family(t.id, fam.id)
                .await
                .unwrap()
                .unwrap()
                .revoked_at,
            Some(at(5))
        );
        assert_eq!(
            s.rotate_refresh(&fam.current, &token_hash(&fx), at(6))
                .await
                .unwrap(),
            Rotation::Revoked
        );
        assert_eq!(
            s.delete_session_by_key(&sess.key, at(7)).await.unwrap(),
            None,
            "already gone"
        );
    }
}

/// Logging out everywhere ends every session of the user but the one
/// kept, and no one else's.
pub async fn ending_all_user_sessions_keeps_the_named_one<S: ConformanceStore>(s: S) {
    let fx = Fx::new(65);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
    let v = user(&s, &fx, t.id, "bob").await;
    let mut mine = Vec::new();
    for _ in 0..3 {
        let sess = session(&fx, t.id, u.id);
        let fam = family(&fx, &sess);
        s.create_session(&sess, Some(&fam)).await.unwrap();
        mine.push((sess, fam));
    }
    let theirs = session(&fx, t.id, v.id);
    s.create_session(&theirs, None).await.unwrap();
    let keep = mine[0].0.id;
    assert_eq!(
        s.delete_user_sessions(t.id, u.id, Some(keep), at(9))
            .await
            .unwrap(),
        2
    );
    assert!(
        s.validate_session(&mine[0].0.key, at(10))
            .await
            .unwrap()
            .is_some()
    );
    for (sess, fam) in &mine[1..] {
        assert_eq!(s.validate_session(&sess.key, at(10)).await.unwrap(), None);
        assert_eq!(
            s.refresh_family(t.id, fam.id)
                .await
                .unwrap()
                .unwrap()
                .revoked_at,
            Some(at(9))
        );
    }
    assert!(
        s.validate_session(&theirs.key, at(10))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        s.delete_user_sessions(t.id, u.id, None, at(11))
            .await
            .unwrap(),
        1
    );
}

/// A user's live sessions list newest first; ended ones are left out.
pub async fn user_sessions_list_live_ones_newest_first<S: ConformanceStore>(s: S) {
    let fx = Fx::new(66);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut sess = session(&fx, t.id, u.id);
        sess.created_at = at(i);
        sess.last_seen_at = at(i);
        s.create_session(&sess, None).await.unwrap();
        ids.push(sess.id);
    }
    let mut old = session(&fx, t.id, u.id);
    old.expires_at = at(5);
    s.create_session(&old, None).await.unwrap();
    let listed: Vec<_> = s
        .user_sessions(t.id, u.id, at(10))
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(listed, [ids[2], ids[1], ids[0]]);
}

/// The current refresh token rotates; the new one rotates next; an older
/// one is reuse: the family is revoked and its session ended.
pub async fn refresh_rotation_and_reuse_detection<S: ConformanceStore>(s: S) {
    let fx = Fx::new(67);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
    let sess = session(&fx, t.id, u.id);
    let fam = family(&fx, &sess);
    s.create_session(&sess, Some(&fam)).await.unwrap();
    let second = token_hash(&fx);
    let Rotation::Rotated(r1) = s
        .rotate_refresh(&fam.current, &second, at(1))
        .await
        .unwrap()
    else {
        panic!("rotation")
    };
    assert_eq!(
        (r1.current, r1.previous, r1.generation, r1.rotated_at),
        (second, Some(fam.current), 1, Some(at(1)))
    );
    let third = token_hash(&fx);
    assert!(matches!(
        s.rotate_refresh(&second, &third, at(2)).await.unwrap(),
        Rotation::Rotated(_)
    ));
    let Rotation::Reused(revoked) = s
        .rotate_refresh(&fam.current, &token_hash(&fx), at(3))
        .await
        .unwrap()
    else {
        panic!("reuse")
    };
    assert_eq!(revoked.revoked_at, Some(at(3)));
    assert_eq!(
        s.validate_session(&sess.key, at(4)).await.unwrap(),
        None,
        "the login ends"
    );
    assert_eq!(
        s.rotate_refresh(&third, &token_hash(&fx), at(5))
            .await
            .unwrap(),
        Rotation::Revoked
    );
    assert_eq!(
        s.rotate_refresh(&token_hash(&fx), &token_hash(&fx), at(5))
            .await
            .unwrap(),
        Rotation::Unknown
    );
}

/// Of 32 concurrent presentations of one refresh token, exactly one rotates
/// (with a grace period the others are superseded; without, they are reuse).
pub async fn concurrent_refreshes_rotate_once<S: ConformanceStore>(s: S) {
    let fx = Fx::new(68);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
    let sess = session(&fx, t.id, u.id);
    let mut fam = family(&fx, &sess);
    fam.reuse_grace = std::time::Duration::from_secs(5);
    s.create_session(&sess, Some(&fam)).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (s, presented, next) = (s.clone(), fam.current, token_hash(&fx));
        tasks.push(tokio::spawn(async move {
            s.rotate_refresh(&presented, &next, at(1)).await.unwrap()
        }));
    }
    let mut rotated = 0;
    for task in tasks {
        match task.await.unwrap() {
            Rotation::Rotated(_) => rotated += 1,
            Rotation::Superseded => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(rotated, 1);
    let after = s.refresh_family(t.id, fam.id).await.unwrap().unwrap();
    assert_eq!(
        (after.generation, after.revoked_at),
        (1, None),
        "the race within grace revokes nothing"
    );
    // Strict (no grace): still exactly one rotation; every other
    // presentation is reuse, which revokes the family.
    let strict = session(&fx, t.id, u.id);
    let strict_fam = family(&fx, &strict);
    s.create_session(&strict, Some(&strict_fam)).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (s, presented, next) = (s.clone(), strict_fam.current, token_hash(&fx));
        tasks.push(tokio::spawn(async move {
            s.rotate_refresh(&presented, &next, at(2)).await.unwrap()
        }));
    }
    let (mut rotated, mut reused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Rotation::Rotated(_) => rotated += 1,
            Rotation::Reused(_) | Rotation::Revoked => reused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((rotated, reused), (1, 31));
    assert!(
        s.refresh_family(t.id, strict_fam.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
}

/// Within the grace period the token just rotated away is refused without
/// revoking; after it, presenting it is reuse.
pub async fn refresh_reuse_grace_is_honoured<S: ConformanceStore>(s: S) {
    let fx = Fx::new(69);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
    let sess = session(&fx, t.id, u.id);
    let mut fam = family(&fx, &sess);
    fam.reuse_grace = std::time::Duration::from_secs(10);
    s.create_session(&sess, Some(&fam)).await.unwrap();
    let next = token_hash(&fx);
    assert!(matches!(
        s.rotate_refresh(&fam.current, &next, at(100))
            .await
            .unwrap(),
        Rotation::Rotated(_)
    ));
    assert_eq!(
        s.rotate_refresh(&fam.current, &token_hash(&fx), at(109))
            .await
            .unwrap(),
        Rotation::Superseded
    );
    assert!(matches!(
        s.rotate_refresh(&fam.current, &token_hash(&fx), at(110))
            .await
            .unwrap(),
        Rotation::Reused(_)
    ));
}

/// A family past its end is refused as expired, and the cleanup removes
/// ended sessions and dead families.
pub async fn expired_sessions_and_families_are_cleaned<S: ConformanceStore>(s: S) {
    let fx = Fx::new(70);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
    let mut short = session(&fx, t.id, u.id);
    short.absolute_expires_at = at(60);
    short.expires_at = at(60);
    let fam = family(&fx, &short);
    s.create_session(&short, Some(&fam)).await.unwrap();
    let live = session(&fx, t.id, u.id);
    s.create_session(&live, None).await.unwrap();
    assert_eq!(
        s.rotate_refresh(&fam.current, &token_hash(&fx), at(60))
            .await
            .unwrap(),
        Rotation::Expired
    );
    assert_eq!(s.delete_expired_sessions(at(59)).await.unwrap(), 0);
    assert_eq!(
        s.delete_expired_sessions(at(61)).await.unwrap(),
        2,
        "one session, one family"
    );
    assert_eq!(s.session(t.id, short.id).await.unwrap(), None);
    assert_eq!(s.refresh_family(t.id, fam.id).await.unwrap(), None);
    assert!(s.session(t.id, live.id).await.unwrap().is_some());
    assert_eq!(
        s.rotate_refresh(&fam.current, &token_hash(&fx), at(62))
            .await
            .unwrap(),
        Rotation::Unknown
    );
}

/// Erasing a user removes their sessions and families.
pub async fn erase_user_removes_sessions_and_families<S: ConformanceStore>(s: S) {
    let fx = Fx::new(71);
    let t = tenant(&s, &fx, "acme").await;
    let u = user(&s, &fx, t.id, "alice").await;
    let sess = session(&fx, t.id, u.id);
    let fam = family(&fx, &sess);
    s.create_session(&sess, Some(&fam)).await.unwrap();
    s.erase_user(t.id, u.id, fx.user_id()).await.unwrap();
    assert_eq!(s.validate_session(&sess.key, at(1)).await.unwrap(), None);
    assert_eq!(s.refresh_family(t.id, fam.id).await.unwrap(), None);
    assert_eq!(
        s.rotate_refresh(&fam.current, &token_hash(&fx), at(1))
            .await
            .unwrap(),
        Rotation::Unknown
    );
}

/// A new signing key retires the active ones, which keep verifying until
/// their overlap ends; kids are unique per tenant; keys are per tenant.
pub async fn signing_keys_rotate_with_overlap<S: ConformanceStore>(s: S) {
    let fx = Fx::new(72);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let k1 = signing_key(&fx, a.id, at(0));
    s.rotate_signing_key(&k1, at(3600)).await.unwrap();
    let k2 = signing_key(&fx, a.id, at(100));
    s.rotate_signing_key(&k2, at(100 + 3600)).await.unwrap();
    let keys = s.signing_keys(a.id).await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].kid, k1.kid);
    assert_eq!(
        (keys[0].retired_at, keys[0].verify_until),
        (Some(at(100)), Some(at(3700)))
    );
    assert_eq!(keys[0].private_key, k1.private_key);
    assert_eq!(keys[1], k2, "the new key is active, exactly as given");
    assert!(s.signing_keys(b.id).await.unwrap().is_empty());
    assert_eq!(
        kind(s.rotate_signing_key(&k2, at(9)).await),
        StoreErrorKind::Conflict
    );
    let orphan = signing_key(&fx, fx.tenant_id(), at(0));
    assert_eq!(
        kind(s.rotate_signing_key(&orphan, at(9)).await),
        StoreErrorKind::NotFound
    );
}

/// Retired keys go once their overlap has ended; active keys stay.
pub async fn expired_signing_keys_are_deleted<S: ConformanceStore>(s: S) {
    let fx = Fx::new(73);
    let t = tenant(&s, &fx, "acme").await;
    let k1 = signing_key(&fx, t.id, at(0));
    s.rotate_signing_key(&k1, at(60)).await.unwrap();
    let k2 = signing_key(&fx, t.id, at(10));
    s.rotate_signing_key(&k2, at(70)).await.unwrap();
    assert_eq!(s.delete_expired_signing_keys(at(69)).await.unwrap(), 0);
    assert_eq!(s.delete_expired_signing_keys(at(70)).await.unwrap(), 1);
    let left = s.signing_keys(t.id).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].kid, k2.kid);
}
