//! The audit log: the guarantees of `AuditQuery`, and the audit side of
//! erasure. Opt-in: `conformance_suite!(fresh, audit)`.

use std::net::{IpAddr, Ipv6Addr};

use chrono::Duration;
use countersign_core::{
    AuditDetail, AuditFilter, AuditKind, AuditReason, AuditStatus, FactorKind, HistoryEntry,
    RbacChange, RbacKind, RbacName, StoreErrorKind,
};

use super::{acme, acme_alice, tenant, user};
use crate::AuditedStore;
use crate::fixtures::{Fx, at, family, password, session, t0};

/// Erasure keeps the user's audit events but names a pseudonym instead,
/// with ip and user agent cleared; other users' events are untouched.
pub async fn erase_user_pseudonymises_audit_events<S: AuditedStore>(s: S) {
    let (fx, t, u) = acme_alice(&s, 39).await;
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

// ── Audit ────────────────────────────────────────────────────────────────

/// A tenant's audit query never returns another tenant's events, whatever
/// the filter (even one naming the other tenant's user).
pub async fn audit_query_never_crosses_tenants<S: AuditedStore>(s: S) {
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
pub async fn audit_query_is_newest_first_with_id_tiebreak<S: AuditedStore>(s: S) {
    let (fx, t) = acme(&s, 42).await;
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
pub async fn audit_filters_combine<S: AuditedStore>(s: S) {
    let (fx, t, u) = acme_alice(&s, 43).await;
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
pub async fn audit_limit_defaults_and_caps<S: AuditedStore>(s: S) {
    let (fx, t) = acme(&s, 44).await;
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
pub async fn audit_events_round_trip_exactly<S: AuditedStore>(s: S) {
    let (fx, t, u) = acme_alice(&s, 45).await;
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
    e.detail = Some(AuditReason::WrongSecret.into());
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

/// A registration writes the user, its first credential, its first
/// password-history entry and its audit event in one go: all are there
/// afterwards.
pub async fn registration_commits_user_history_and_event_together<S: AuditedStore>(s: S) {
    let (fx, t) = acme(&s, 60).await;
    let u = fx.user(t.id, "alice");
    let e = fx.event(
        t.id,
        Some(u.id),
        AuditKind::UserRegistered,
        AuditStatus::Success,
        at(1),
    );
    let h = HistoryEntry {
        phc: "$argon2id$history".into(),
        at: at(1),
        keep: 5,
    };
    s.register_user(&u, &[password("$argon2id$first")], Some(&h), &e)
        .await
        .unwrap();
    assert_eq!(s.get_user(t.id, u.id).await.unwrap(), Some(u.clone()));
    assert!(
        s.user_factor(t.id, u.id, FactorKind::Password)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        s.password_history(t.id, u.id, 10).await.unwrap(),
        ["$argon2id$history"]
    );
    let events = s.query_events(t.id, &AuditFilter::default()).await.unwrap();
    assert_eq!(events, [e]);
}

/// A registration that cannot complete writes nothing: neither a taken
/// identifier nor a clashing event id leaves a user, a history row or an
/// event behind.
pub async fn a_refused_registration_writes_nothing<S: AuditedStore>(s: S) {
    let (fx, t, alice) = acme_alice(&s, 61).await;
    let h = HistoryEntry {
        phc: "$argon2id$h".into(),
        at: at(2),
        keep: 5,
    };
    // The identifier is taken: refused, and its event is not recorded.
    let mut twin = fx.user(t.id, "alice");
    twin.identifier = alice.identifier.clone();
    let e1 = fx.event(
        t.id,
        Some(twin.id),
        AuditKind::UserRegistered,
        AuditStatus::Success,
        at(2),
    );
    let err = s
        .register_user(&twin, &[], Some(&h), &e1)
        .await
        .unwrap_err();
    assert_eq!(
        countersign_core::StoreError::kind(&err),
        StoreErrorKind::Conflict
    );
    // The event id is taken: refused after the user row would have been
    // written, and that row is rolled back with it.
    let taken = fx.event(
        t.id,
        None,
        AuditKind::TenantProvisioned,
        AuditStatus::Success,
        at(3),
    );
    s.record_event(&taken).await.unwrap();
    let bob = fx.user(t.id, "bob");
    let mut e2 = fx.event(
        t.id,
        Some(bob.id),
        AuditKind::UserRegistered,
        AuditStatus::Success,
        at(4),
    );
    e2.id = taken.id;
    let err = s
        .register_user(&bob, &[password("$argon2id$bob")], Some(&h), &e2)
        .await
        .unwrap_err();
    assert_eq!(
        countersign_core::StoreError::kind(&err),
        StoreErrorKind::Conflict
    );
    assert_eq!(s.get_user(t.id, twin.id).await.unwrap(), None);
    assert_eq!(s.get_user(t.id, bob.id).await.unwrap(), None);
    assert!(s.find_user(t.id, &bob.identifier).await.unwrap().is_none());
    assert!(
        s.password_history(t.id, bob.id, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.password_history(t.id, alice.id, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let events = s.query_events(t.id, &AuditFilter::default()).await.unwrap();
    assert_eq!(events, [taken]);
}

/// A login forgets the failures, records its time and appends its events
/// in one call: all of it is there afterwards.
pub async fn a_login_commits_its_time_failures_and_events_together<S: AuditedStore>(s: S) {
    let (fx, t, u) = acme_alice(&s, 65).await;
    let lockout = countersign_core::LockoutPolicy::default();
    s.record_failed_attempt(t.id, u.id, &lockout, at(1))
        .await
        .unwrap();
    let factor = fx.event(
        t.id,
        Some(u.id),
        AuditKind::Authentication,
        AuditStatus::Success,
        at(2),
    );
    let login = fx.event(
        t.id,
        Some(u.id),
        AuditKind::LoginSucceeded,
        AuditStatus::Success,
        at(3),
    );
    s.record_login(t.id, u.id, at(3), &[factor.clone(), login.clone()])
        .await
        .unwrap();
    assert_eq!(s.failure_record(t.id, u.id).await.unwrap(), None);
    let read = s.get_user(t.id, u.id).await.unwrap().unwrap();
    assert_eq!(read.last_login_at, Some(at(3)));
    let events = s.query_events(t.id, &AuditFilter::default()).await.unwrap();
    assert_eq!(events, [login, factor]);
}

/// A login recorded for a user the tenant lacks is `NotFound` and writes
/// nothing: no event, no login time, the failures (in the user's own
/// tenant) kept.
pub async fn a_login_of_a_user_the_tenant_lacks_writes_nothing<S: AuditedStore>(s: S) {
    let (fx, t, u) = acme_alice(&s, 66).await;
    let other = tenant(&s, &fx, "other").await;
    let lockout = countersign_core::LockoutPolicy::default();
    s.record_failed_attempt(t.id, u.id, &lockout, at(1))
        .await
        .unwrap();
    let e = fx.event(
        other.id,
        Some(u.id),
        AuditKind::LoginSucceeded,
        AuditStatus::Success,
        at(2),
    );
    let err = s
        .record_login(other.id, u.id, at(2), std::slice::from_ref(&e))
        .await
        .unwrap_err();
    assert_eq!(
        countersign_core::StoreError::kind(&err),
        StoreErrorKind::NotFound
    );
    let failures = s.failure_record(t.id, u.id).await.unwrap().unwrap();
    assert_eq!(failures.count, 1);
    let read = s.get_user(t.id, u.id).await.unwrap().unwrap();
    assert_eq!(read.last_login_at, None);
    for tenant in [t.id, other.id] {
        let events = s
            .query_events(tenant, &AuditFilter::default())
            .await
            .unwrap();
        assert!(events.iter().all(|x| x.id != e.id), "{events:?}");
    }
}

/// A refresh that rotates records its event in the same call, with the
/// family's tenant and user, only while the family's session is live; the
/// answer carries the session as it stands.
pub async fn a_refresh_records_its_event_only_for_a_live_session<S: AuditedStore>(s: S) {
    let (fx, t, u) = acme_alice(&s, 77).await;
    let sess = session(&fx, t.id, u.id);
    let fam = family(&fx, &sess);
    s.create_session(&sess, Some(&fam), None).await.unwrap();
    let stamp = |when| {
        fx.event(
            countersign_core::TenantId::SYSTEM,
            None,
            AuditKind::TokenRefreshed,
            AuditStatus::Success,
            when,
        )
    };
    let second = crate::fixtures::token_hash(&fx);
    let live = stamp(at(1));
    let first = s
        .rotate_refresh_recorded(&fam.current, &second, at(1), None, &live)
        .await
        .unwrap();
    assert!(matches!(
        first.rotation,
        countersign_core::Rotation::Rotated(_)
    ));
    assert_eq!(first.session.as_ref().map(|f| f.id), Some(sess.id));
    assert_eq!(first.tenant.map(|t| t.id), Some(t.id));
    let events = s.query_events(t.id, &AuditFilter::default()).await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let recorded = events.first().unwrap();
    assert_eq!(
        (
            recorded.id,
            recorded.tenant_id,
            recorded.user_id,
            recorded.kind
        ),
        (live.id, t.id, Some(u.id), AuditKind::TokenRefreshed)
    );
    // After the session's idle deadline the family still rotates, the
    // session comes back as it stands, and nothing is recorded.
    let late = sess.expires_at + Duration::seconds(1);
    let idle = stamp(late);
    let later = s
        .rotate_refresh_recorded(
            &second,
            &crate::fixtures::token_hash(&fx),
            late,
            None,
            &idle,
        )
        .await
        .unwrap();
    assert!(matches!(
        later.rotation,
        countersign_core::Rotation::Rotated(_)
    ));
    assert!(later.session.is_some_and(|f| !f.is_live(late)));
    let events = s.query_events(t.id, &AuditFilter::default()).await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
}

/// A session starts with its refresh family and the audit event of its
/// start in one go: all are there afterwards.
pub async fn a_session_start_commits_with_its_event<S: AuditedStore>(s: S) {
    let (fx, t, u) = acme_alice(&s, 63).await;
    let sess = session(&fx, t.id, u.id);
    let fam = family(&fx, &sess);
    let e = fx.event(
        t.id,
        Some(u.id),
        AuditKind::SessionStarted,
        AuditStatus::Success,
        at(1),
    );
    s.create_session(&sess, Some(&fam), Some(&e)).await.unwrap();
    assert!(s.session(t.id, sess.id).await.unwrap().is_some());
    assert!(s.refresh_family(t.id, fam.id).await.unwrap().is_some());
    let events = s.query_events(t.id, &AuditFilter::default()).await.unwrap();
    assert_eq!(events, [e]);
}

/// A session start whose event cannot be recorded (its id is taken)
/// writes nothing: no session, no family, no second event.
pub async fn a_refused_session_start_writes_nothing<S: AuditedStore>(s: S) {
    let (fx, t, u) = acme_alice(&s, 64).await;
    let taken = fx.event(
        t.id,
        None,
        AuditKind::TenantProvisioned,
        AuditStatus::Success,
        at(1),
    );
    s.record_event(&taken).await.unwrap();
    let sess = session(&fx, t.id, u.id);
    let fam = family(&fx, &sess);
    let mut e = fx.event(
        t.id,
        Some(u.id),
        AuditKind::SessionStarted,
        AuditStatus::Success,
        at(2),
    );
    e.id = taken.id;
    let err = s
        .create_session(&sess, Some(&fam), Some(&e))
        .await
        .unwrap_err();
    assert_eq!(
        countersign_core::StoreError::kind(&err),
        StoreErrorKind::Conflict
    );
    assert!(s.session(t.id, sess.id).await.unwrap().is_none());
    assert!(s.refresh_family(t.id, fam.id).await.unwrap().is_none());
    assert!(
        s.validate_session(&sess.key, at(3))
            .await
            .unwrap()
            .is_none()
    );
    let events = s.query_events(t.id, &AuditFilter::default()).await.unwrap();
    assert_eq!(events, [taken]);
}

/// A policy save commits with its audit event; one whose event cannot be
/// recorded (its id is taken) writes nothing.
pub async fn a_policy_save_commits_with_its_event<S: AuditedStore>(s: S) {
    let (fx, t) = acme(&s, 65).await;
    let doc = countersign_core::PolicyDocument {
        tenant_id: t.id,
        schema: "namespace App { entity Document; }".into(),
        policies: String::new(),
        links: Vec::new(),
        version: 0,
        updated_at: at(1),
    };
    let e = fx.event(
        t.id,
        None,
        AuditKind::TenantPoliciesChanged,
        AuditStatus::Success,
        at(1),
    );
    assert!(
        s.compare_and_save_policy_document(&doc, None, Some(&e))
            .await
            .unwrap()
    );
    assert_eq!(s.policy_document(t.id).await.unwrap().unwrap().version, 1);
    // The same event id again: refused, and version 1 stays.
    let next = countersign_core::PolicyDocument {
        policies: "permit(principal, action, resource);".into(),
        updated_at: at(2),
        ..doc.clone()
    };
    let err = s
        .compare_and_save_policy_document(&next, Some(1), Some(&e))
        .await
        .unwrap_err();
    assert_eq!(
        countersign_core::StoreError::kind(&err),
        StoreErrorKind::Conflict
    );
    let stored = s.policy_document(t.id).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.policies.as_str()), (1, ""));
    let events = s.query_events(t.id, &AuditFilter::default()).await.unwrap();
    assert_eq!(events, [e]);
}

/// An RBAC change commits with its audit event; a change that is refused
/// (a name that exists) or whose event id is taken records no event and
/// changes nothing (no version either).
pub async fn an_rbac_change_commits_with_its_event<S: AuditedStore>(s: S) {
    let (fx, t) = acme(&s, 66).await;
    let change = RbacChange::Create {
        kind: RbacKind::Role,
        name: RbacName::new("editor").unwrap(),
    };
    let e = fx
        .event(
            t.id,
            None,
            AuditKind::RbacChanged,
            AuditStatus::Success,
            at(1),
        )
        .with_detail(AuditDetail::Change(change.describe()));
    assert_eq!(
        s.apply_rbac_change(t.id, &change, Some(&e)).await.unwrap(),
        1
    );
    let events = s.query_events(t.id, &AuditFilter::default()).await.unwrap();
    assert_eq!(events, std::slice::from_ref(&e));
    // Refused: the role exists. Its event is not recorded.
    let refused = fx.event(
        t.id,
        None,
        AuditKind::RbacChanged,
        AuditStatus::Success,
        at(2),
    );
    let err = s
        .apply_rbac_change(t.id, &change, Some(&refused))
        .await
        .unwrap_err();
    assert_eq!(
        countersign_core::StoreError::kind(&err),
        StoreErrorKind::Conflict
    );
    // The event id is taken: a change that would succeed is refused whole.
    let docs = RbacChange::Create {
        kind: RbacKind::Service,
        name: RbacName::new("docs").unwrap(),
    };
    let mut clash = fx.event(
        t.id,
        None,
        AuditKind::RbacChanged,
        AuditStatus::Success,
        at(3),
    );
    clash.id = e.id;
    let err = s
        .apply_rbac_change(t.id, &docs, Some(&clash))
        .await
        .unwrap_err();
    assert_eq!(
        countersign_core::StoreError::kind(&err),
        StoreErrorKind::Conflict
    );
    assert!(
        s.rbac_names(t.id, RbacKind::Service)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.authz_versions(t.id).await.unwrap().rbac, 1);
    let events = s.query_events(t.id, &AuditFilter::default()).await.unwrap();
    assert_eq!(events, [e]);
}
