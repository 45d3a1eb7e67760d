//! Sessions and refresh families: the session half of `SessionStore`.

use countersign_core::{
    RecordedRotation, RefreshFamily, Rotation, SessionRecord, StoreErrorKind, Tenant, User,
};

use super::{acme_alice, kind, tenant, user};
use crate::ConformanceStore;
use crate::fixtures::{Fx, at, family, session, token_hash};

/// A session of `u` with its refresh family, both stored.
async fn stored_session<S: ConformanceStore>(
    s: &S,
    fx: &Fx,
    t: &Tenant,
    u: &User,
) -> (SessionRecord, RefreshFamily) {
    let sess = session(fx, t.id, u.id);
    let fam = family(fx, &sess);
    s.create_session(&sess, Some(&fam), None).await.unwrap();
    (sess, fam)
}

/// A session reads back exactly, by token hash and by id.
pub async fn session_round_trips<S: ConformanceStore>(s: S) {
    let (fx, t, u) = acme_alice(&s, 60).await;
    let sess = session(&fx, t.id, u.id);
    s.create_session(&sess, None, None).await.unwrap();
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
    let (fx, t, u) = acme_alice(&s, 61).await;
    let sess = session(&fx, t.id, u.id);
    s.create_session(&sess, None, None).await.unwrap();
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
    s.create_session(&late, None, None).await.unwrap();
    let got = s
        .validate_session(&late.key, at(20 * 60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.expires_at, at(40 * 60));
}

/// A session is not valid at or after its idle deadline or absolute end.
pub async fn sessions_end_at_their_deadlines<S: ConformanceStore>(s: S) {
    let (fx, t, u) = acme_alice(&s, 62).await;
    let idle = session(&fx, t.id, u.id);
    s.create_session(&idle, None, None).await.unwrap();
    assert_eq!(
        s.validate_session(&idle.key, at(30 * 60)).await.unwrap(),
        None,
        "idle deadline is exclusive"
    );
    let mut abs = session(&fx, t.id, u.id);
    abs.expires_at = at(3600);
    abs.absolute_expires_at = at(60);
    s.create_session(&abs, None, None).await.unwrap();
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
    s.create_session(&sess, None, None).await.unwrap();
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
        kind(s.create_session(&foreign, None, None).await),
        StoreErrorKind::NotFound
    );
    assert_eq!(
        kind(s.create_session(&sess, None, None).await),
        StoreErrorKind::Conflict
    );
}

/// Ending a session revokes its refresh family.
pub async fn ending_a_session_revokes_its_family<S: ConformanceStore>(s: S) {
    let (fx, t, u) = acme_alice(&s, 64).await;
    for by_key in [false, true] {
        let (sess, fam) = stored_session(&s, &fx, &t, &u).await;
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
    let (fx, t, u) = acme_alice(&s, 65).await;
    let v = user(&s, &fx, t.id, "bob").await;
    let mut mine = Vec::new();
    for _ in 0..3 {
        let (sess, fam) = stored_session(&s, &fx, &t, &u).await;
        mine.push((sess, fam));
    }
    let theirs = session(&fx, t.id, v.id);
    s.create_session(&theirs, None, None).await.unwrap();
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
    let (fx, t, u) = acme_alice(&s, 66).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut sess = session(&fx, t.id, u.id);
        sess.created_at = at(i);
        sess.last_seen_at = at(i);
        s.create_session(&sess, None, None).await.unwrap();
        ids.push(sess.id);
    }
    let mut old = session(&fx, t.id, u.id);
    old.expires_at = at(5);
    s.create_session(&old, None, None).await.unwrap();
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
    let (fx, t, u) = acme_alice(&s, 67).await;
    let (sess, fam) = stored_session(&s, &fx, &t, &u).await;
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
    let (fx, t, u) = acme_alice(&s, 68).await;
    let sess = session(&fx, t.id, u.id);
    let mut fam = family(&fx, &sess);
    fam.reuse_grace = std::time::Duration::from_secs(5);
    s.create_session(&sess, Some(&fam), None).await.unwrap();
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
    s.create_session(&strict, Some(&strict_fam), None)
        .await
        .unwrap();
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
    let (fx, t, u) = acme_alice(&s, 69).await;
    let sess = session(&fx, t.id, u.id);
    let mut fam = family(&fx, &sess);
    fam.reuse_grace = std::time::Duration::from_secs(10);
    s.create_session(&sess, Some(&fam), None).await.unwrap();
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
    let (fx, t, u) = acme_alice(&s, 70).await;
    let mut short = session(&fx, t.id, u.id);
    short.absolute_expires_at = at(60);
    short.expires_at = at(60);
    let fam = family(&fx, &short);
    s.create_session(&short, Some(&fam), None).await.unwrap();
    let live = session(&fx, t.id, u.id);
    s.create_session(&live, None, None).await.unwrap();
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
    let (fx, t, u) = acme_alice(&s, 71).await;
    let (sess, fam) = stored_session(&s, &fx, &t, &u).await;
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

/// A step-up replaces the stored authentication record of a live session
/// of the tenant, and of nothing else: not another tenant's session, not
/// an ended one, not an unknown id, and only while the record is still the
/// one the step-up read (of two step-ups merged into one record, the
/// second is refused). Key, deadlines and family stay.
pub async fn session_auth_is_replaced_by_a_step_up<S: ConformanceStore>(s: S) {
    use countersign_core::FactorKind;
    use countersign_core::flow::PassedFactor;
    let fx = Fx::new(74);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let u = user(&s, &fx, a.id, "alice").await;
    let (sess, fam) = stored_session(&s, &fx, &a, &u).await;
    let mut stepped = sess.auth.clone();
    stepped.factors.push(PassedFactor {
        kind: FactorKind::Totp,
        at: at(60),
    });
    stepped.at = at(60);
    assert!(
        !s.set_session_auth(b.id, sess.id, &sess.auth, &stepped, at(60))
            .await
            .unwrap(),
        "another tenant's"
    );
    let unknown = session(&fx, a.id, u.id);
    assert!(
        !s.set_session_auth(a.id, unknown.id, &unknown.auth, &stepped, at(60))
            .await
            .unwrap()
    );
    assert_eq!(s.session(a.id, sess.id).await.unwrap(), Some(sess.clone()));
    // A record that is no longer the session's is not replaced.
    let mut other = sess.auth.clone();
    other.factors.push(PassedFactor {
        kind: FactorKind::RecoveryCodes,
        at: at(59),
    });
    assert!(
        !s.set_session_auth(a.id, sess.id, &other, &stepped, at(60))
            .await
            .unwrap(),
        "a stale expected record"
    );
    assert_eq!(s.session(a.id, sess.id).await.unwrap(), Some(sess.clone()));
    assert!(
        s.set_session_auth(a.id, sess.id, &sess.auth, &stepped, at(60))
            .await
            .unwrap()
    );
    // The first step-up wrote: a second merged into the record it read
    // before that write is refused, and the first one's factor stays.
    assert!(
        !s.set_session_auth(a.id, sess.id, &sess.auth, &other, at(60))
            .await
            .unwrap(),
        "the loser of two step-ups"
    );
    let want = SessionRecord {
        auth: stepped.clone(),
        ..sess.clone()
    };
    assert_eq!(s.session(a.id, sess.id).await.unwrap(), Some(want.clone()));
    assert_eq!(
        s.validate_session(&sess.key, at(61))
            .await
            .unwrap()
            .as_deref(),
        Some(&want)
    );
    assert_eq!(s.refresh_family(a.id, fam.id).await.unwrap(), Some(fam));
    assert!(
        !s.set_session_auth(a.id, sess.id, &stepped, &sess.auth, sess.expires_at)
            .await
            .unwrap(),
        "an ended session is not stepped up"
    );
}

/// Live sessions of every tenant are counted; one past either deadline is
/// not, before any cleanup deletes it; an ended one is not.
pub async fn live_sessions_are_counted<S: ConformanceStore>(s: S) {
    let fx = Fx::new(75);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let alice = user(&s, &fx, a.id, "alice").await;
    let bob = user(&s, &fx, b.id, "bob").await;
    assert_eq!(s.count_live_sessions(at(0)).await.unwrap(), 0);
    let idle = session(&fx, a.id, alice.id);
    s.create_session(&idle, None, None).await.unwrap();
    let mut short = session(&fx, a.id, alice.id);
    short.expires_at = at(3600);
    short.absolute_expires_at = at(60);
    s.create_session(&short, None, None).await.unwrap();
    let other = session(&fx, b.id, bob.id);
    s.create_session(&other, None, None).await.unwrap();
    assert_eq!(s.count_live_sessions(at(1)).await.unwrap(), 3);
    assert_eq!(
        s.count_live_sessions(at(60)).await.unwrap(),
        2,
        "past its absolute end"
    );
    assert!(
        s.delete_session(b.id, other.id, at(2))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(s.count_live_sessions(at(2)).await.unwrap(), 2, "ended");
    assert_eq!(
        s.count_live_sessions(at(30 * 60)).await.unwrap(),
        0,
        "past the idle deadline"
    );
}

/// A session validated before (which a store may remember) is refused,
/// or answered as changed, by the first validation after any change:
/// ended by its key, by its id, with its user's other sessions, by the
/// reuse of its refresh token, by erasing its user; its authentication
/// replaced by a step-up.
pub async fn validated_sessions_see_every_change_at_once<S: ConformanceStore>(s: S) {
    use countersign_core::FactorKind;
    use countersign_core::flow::PassedFactor;
    let (fx, t, u) = acme_alice(&s, 76).await;
    let now = at(1);
    let live = |sess: SessionRecord| {
        let s = s.clone();
        async move {
            for _ in 0..2 {
                let got = s.validate_session(&sess.key, now).await.unwrap();
                assert_eq!(got.as_deref(), Some(&sess));
            }
        }
    };
    let gone = |sess: SessionRecord, why: &'static str| {
        let s = s.clone();
        async move {
            let got = s.validate_session(&sess.key, now).await.unwrap();
            assert_eq!(got, None, "{why}");
        }
    };

    let (a, _) = stored_session(&s, &fx, &t, &u).await;
    live(a.clone()).await;
    s.delete_session_by_key(&a.key, now).await.unwrap();
    gone(a, "ended by its key").await;

    let (b, _) = stored_session(&s, &fx, &t, &u).await;
    live(b.clone()).await;
    s.delete_session(t.id, b.id, now).await.unwrap();
    gone(b, "ended by its id").await;

    let (c, _) = stored_session(&s, &fx, &t, &u).await;
    live(c.clone()).await;
    s.delete_user_sessions(t.id, u.id, None, now).await.unwrap();
    gone(c, "ended with the user's sessions").await;

    let (d, _) = stored_session(&s, &fx, &t, &u).await;
    live(d.clone()).await;
    let mut stepped = d.auth.clone();
    stepped.factors.push(PassedFactor {
        kind: FactorKind::Totp,
        at: now,
    });
    assert!(
        s.set_session_auth(t.id, d.id, &d.auth, &stepped, now)
            .await
            .unwrap()
    );
    let got = s.validate_session(&d.key, now).await.unwrap();
    assert_eq!(got.map(|g| g.auth.clone()), Some(stepped), "stepped up");

    let (e, fam) = stored_session(&s, &fx, &t, &u).await;
    live(e.clone()).await;
    let next = token_hash(&fx);
    assert!(matches!(
        s.rotate_refresh(&fam.current, &next, now).await.unwrap(),
        Rotation::Rotated(_)
    ));
    live(e.clone()).await;
    assert!(matches!(
        s.rotate_refresh(&fam.current, &token_hash(&fx), at(3600))
            .await
            .unwrap(),
        Rotation::Reused(_)
    ));
    gone(e, "ended by the reuse of its refresh token").await;

    let (f, _) = stored_session(&s, &fx, &t, &u).await;
    live(f.clone()).await;
    s.erase_user(t.id, u.id, fx.user_id()).await.unwrap();
    gone(f, "ended by erasing its user").await;
}

/// A refresh scoped to another tenant is `Unknown` and changes nothing:
/// the token stays current and rotates in its own tenant, and a spent one
/// presented there revokes nothing.
pub async fn a_refresh_scoped_to_another_tenant_changes_nothing<S: ConformanceStore>(s: S) {
    let (fx, t, u) = acme_alice(&s, 75).await;
    let other = tenant(&s, &fx, "other").await;
    let (sess, fam) = stored_session(&s, &fx, &t, &u).await;
    let e = fx.event(
        other.id,
        None,
        countersign_core::AuditKind::TokenRefreshed,
        countersign_core::AuditStatus::Success,
        at(1),
    );
    let second = token_hash(&fx);
    let foreign = s
        .rotate_refresh_recorded(&fam.current, &second, at(1), Some(other.id), &e)
        .await
        .unwrap();
    assert_eq!(foreign, RecordedRotation::refused(Rotation::Unknown));
    let rotated = s
        .rotate_refresh_recorded(&fam.current, &second, at(2), Some(t.id), &e)
        .await
        .unwrap();
    assert!(
        matches!(rotated.rotation, Rotation::Rotated(_)),
        "{rotated:?}"
    );
    assert_eq!(rotated.session.map(|l| l.id), Some(sess.id));
    // The family's tenant comes back with it, as stored.
    assert_eq!(rotated.tenant.as_ref(), Some(&t));
    // The spent token, presented in the other tenant: unknown, no reuse.
    let spent = s
        .rotate_refresh_recorded(&fam.current, &token_hash(&fx), at(3), Some(other.id), &e)
        .await
        .unwrap();
    assert_eq!(spent, RecordedRotation::refused(Rotation::Unknown));
    assert!(s.session(t.id, sess.id).await.unwrap().is_some());
    assert!(matches!(
        s.rotate_refresh(&second, &token_hash(&fx), at(4))
            .await
            .unwrap(),
        Rotation::Rotated(_)
    ));
}
