//! Pending one-time proofs: the guarantees of `VerificationStore`.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use countersign_core::{
    StoreErrorKind, TenantId, UserId, Verification, VerificationPurpose as Purpose,
};

use super::{acme, acme_alice, kind, tenant, user};
use crate::ConformanceStore;
use crate::fixtures::{Fx, at};

/// A hex secret hash made of `n` (64 characters, as a SHA-256 is).
fn hash(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

/// A first send (`sends` 1, no failures) of `purpose` to `user`, with
/// secret hash `hash(n)`, sent at `at(0)` and expiring at `at(600)`.
fn first(tenant: TenantId, user: UserId, purpose: Purpose, n: u8) -> Verification {
    Verification {
        tenant_id: tenant,
        user_id: user,
        purpose,
        secret_hash: hash(n),
        payload: Some(format!("$argon2id$payload-{n}")),
        created_at: at(0),
        expires_at: at(600),
        sends: 1,
        failures: 0,
    }
}

/// The resend of `v`: a new secret `hash(n)`, one more send, sent at
/// `at(10)`.
fn resend(v: &Verification, n: u8) -> Verification {
    Verification {
        secret_hash: hash(n),
        created_at: at(10),
        sends: v.sends + 1,
        ..v.clone()
    }
}

/// Save `v` as the first of its kind; panics unless it is saved.
async fn saved<S: ConformanceStore>(s: &S, v: &Verification) {
    assert!(s.save_verification(v, None).await.unwrap(), "{v:?}");
}

/// The stored verification of `v`'s (tenant, user, purpose).
async fn stored<S: ConformanceStore>(s: &S, v: &Verification) -> Option<Verification> {
    s.verification(v.tenant_id, v.user_id, v.purpose)
        .await
        .unwrap()
}

/// Consume `v`'s verification with `secret` at `now`, allowing 5 failures.
async fn consume<S: ConformanceStore>(
    s: &S,
    v: &Verification,
    secret: &str,
    now: DateTime<Utc>,
) -> Option<Verification> {
    s.consume_verification(v.tenant_id, v.user_id, v.purpose, secret, 5, now)
        .await
        .unwrap()
}

/// A verification reads back exactly (payload or none, expired or not),
/// one per purpose.
pub async fn verification_round_trips_exactly<S: ConformanceStore>(s: S) {
    let (_, t, u) = acme_alice(&s, 200).await;
    let address = first(t.id, u.id, Purpose::Address, 1);
    let mut reset = first(t.id, u.id, Purpose::PasswordReset, 2);
    reset.payload = None;
    reset.expires_at = at(-1);
    saved(&s, &address).await;
    saved(&s, &reset).await;
    assert_eq!(stored(&s, &address).await, Some(address));
    assert_eq!(stored(&s, &reset).await, Some(reset), "expired or not");
}

/// A save expecting none refuses (`false`, nothing changed) when one
/// exists, expired or not.
pub async fn save_expecting_none_refuses_when_one_exists<S: ConformanceStore>(s: S) {
    let (_, t, u) = acme_alice(&s, 201).await;
    let mut v = first(t.id, u.id, Purpose::Address, 1);
    v.expires_at = at(5);
    saved(&s, &v).await;
    let other = first(t.id, u.id, Purpose::Address, 2);
    assert!(!s.save_verification(&other, None).await.unwrap());
    assert_eq!(stored(&s, &v).await, Some(v));
}

/// A save naming a send count saves only over a verification with that
/// count: not over another count, and not where there is none.
pub async fn save_checks_the_expected_send_count<S: ConformanceStore>(s: S) {
    let (_, t, u) = acme_alice(&s, 202).await;
    let v = first(t.id, u.id, Purpose::Address, 1);
    assert!(!s.save_verification(&v, Some(1)).await.unwrap(), "none yet");
    assert_eq!(stored(&s, &v).await, None);
    saved(&s, &v).await;
    let next = resend(&v, 2);
    for wrong in [0, 2, 7] {
        assert!(!s.save_verification(&next, Some(wrong)).await.unwrap());
    }
    assert_eq!(stored(&s, &v).await, Some(v.clone()));
    assert!(s.save_verification(&next, Some(1)).await.unwrap());
    assert_eq!(stored(&s, &v).await, Some(next));
}

/// A resend (a save expecting the current send count) replaces the
/// secret: the old hash no longer finds or consumes it, the new one does.
pub async fn a_resend_replaces_the_secret<S: ConformanceStore>(s: S) {
    let (_, t, u) = acme_alice(&s, 203).await;
    let v = first(t.id, u.id, Purpose::PasswordReset, 1);
    saved(&s, &v).await;
    let next = resend(&v, 2);
    assert!(s.save_verification(&next, Some(1)).await.unwrap());
    let old = hash(1);
    assert_eq!(
        s.find_verification(t.id, v.purpose, &old).await.unwrap(),
        None
    );
    assert_eq!(consume(&s, &v, &old, at(20)).await, None);
    assert_eq!(stored(&s, &v).await, Some(next.clone()), "still pending");
    assert_eq!(consume(&s, &v, &hash(2), at(20)).await, Some(next));
}

/// Of 16 concurrent saves naming one expectation exactly one succeeds,
/// whether the expectation is a send count or none; the stored one is
/// the winner's.
pub async fn concurrent_saves_with_one_expectation_have_one_winner<S: ConformanceStore>(s: S) {
    let (_, t, u) = acme_alice(&s, 204).await;
    let v = first(t.id, u.id, Purpose::Address, 1);
    saved(&s, &v).await;
    let reset = first(t.id, u.id, Purpose::PasswordReset, 100);
    for (base, expected) in [(&v, Some(1)), (&reset, None)] {
        let mut tasks = Vec::new();
        for i in 0..16u8 {
            let s = s.clone();
            let mine = match expected {
                Some(_) => resend(base, 10 + i),
                None => first(t.id, u.id, base.purpose, 10 + i),
            };
            tasks.push(tokio::spawn(async move {
                let won = s.save_verification(&mine, expected).await.unwrap();
                (won, mine)
            }));
        }
        let mut winners = Vec::new();
        for task in tasks {
            let (won, mine) = task.await.unwrap();
            if won {
                winners.push(mine);
            }
        }
        assert_eq!(winners.len(), 1, "{expected:?}");
        assert_eq!(stored(&s, base).await.as_ref(), winners.first());
    }
}

/// Consuming returns the verification and deletes it: a second consume
/// with the same secret finds nothing.
pub async fn consume_is_single_use<S: ConformanceStore>(s: S) {
    let (_, t, u) = acme_alice(&s, 205).await;
    let v = first(t.id, u.id, Purpose::Address, 1);
    saved(&s, &v).await;
    assert_eq!(consume(&s, &v, &hash(1), at(1)).await, Some(v.clone()));
    assert_eq!(consume(&s, &v, &hash(1), at(1)).await, None);
    assert_eq!(stored(&s, &v).await, None);
    assert_eq!(
        s.find_verification(t.id, v.purpose, &hash(1))
            .await
            .unwrap(),
        None
    );
}

/// Of 16 concurrent consumes of one verification exactly one gets it.
pub async fn concurrent_consumes_have_one_winner<S: ConformanceStore>(s: S) {
    let (_, t, u) = acme_alice(&s, 206).await;
    let v = first(t.id, u.id, Purpose::PasswordReset, 1);
    saved(&s, &v).await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (s, v) = (s.clone(), v.clone());
        tasks.push(tokio::spawn(async move {
            consume(&s, &v, &hash(1), at(1)).await
        }));
    }
    let mut got = Vec::new();
    for task in tasks {
        got.extend(task.await.unwrap());
    }
    assert_eq!(got, std::slice::from_ref(&v));
    assert_eq!(stored(&s, &v).await, None);
}

/// A wrong secret consumes nothing and leaves the verification in place
/// (its failures unchanged: counting them is the caller's call).
pub async fn consume_refuses_a_wrong_secret_and_keeps_it<S: ConformanceStore>(s: S) {
    let (_, t, u) = acme_alice(&s, 207).await;
    let v = first(t.id, u.id, Purpose::Address, 0xab);
    saved(&s, &v).await;
    for wrong in [hash(2), hash(0xab).to_uppercase(), String::new()] {
        assert_eq!(consume(&s, &v, &wrong, at(1)).await, None);
    }
    assert_eq!(stored(&s, &v).await, Some(v.clone()));
    assert_eq!(consume(&s, &v, &hash(0xab), at(1)).await, Some(v));
}

/// A verification no longer consumes at its expiry (`now == expires_at`)
/// or after, and stays in place; just before, it does.
pub async fn consume_refuses_from_expiry_on_and_keeps_it<S: ConformanceStore>(s: S) {
    let (_, t, u) = acme_alice(&s, 208).await;
    let v = first(t.id, u.id, Purpose::Address, 1);
    saved(&s, &v).await;
    for late in [
        v.expires_at,
        v.expires_at + Duration::microseconds(1),
        at(9999),
    ] {
        assert_eq!(consume(&s, &v, &hash(1), late).await, None, "{late}");
    }
    assert_eq!(stored(&s, &v).await, Some(v.clone()));
    let just_before = v.expires_at - Duration::microseconds(1);
    assert_eq!(consume(&s, &v, &hash(1), just_before).await, Some(v));
}

/// A verification with `max_failures` failures or more no longer
/// consumes, even with the right secret, and stays in place; with fewer
/// it does.
pub async fn consume_refuses_after_max_failures_and_keeps_it<S: ConformanceStore>(s: S) {
    let (_, t, u) = acme_alice(&s, 209).await;
    let v = first(t.id, u.id, Purpose::PasswordReset, 1);
    saved(&s, &v).await;
    for _ in 0..3 {
        s.record_verification_failure(t.id, u.id, v.purpose)
            .await
            .unwrap();
    }
    let h = hash(1);
    let with = |max| s.consume_verification(t.id, u.id, v.purpose, &h, max, at(1));
    assert_eq!(with(3).await.unwrap(), None, "failures == max");
    assert_eq!(with(2).await.unwrap(), None, "failures > max");
    assert_eq!(with(0).await.unwrap(), None);
    let kept = stored(&s, &v).await.unwrap();
    assert_eq!(kept.failures, 3);
    assert_eq!(with(4).await.unwrap(), Some(kept));
}

/// Wrong guesses are counted atomically: 16 concurrent calls count 16,
/// each returning a distinct count; with no verification the answer is
/// `None` and nothing is created.
pub async fn verification_failures_are_counted_exactly<S: ConformanceStore>(s: S) {
    let (_, t, u) = acme_alice(&s, 210).await;
    let v = first(t.id, u.id, Purpose::Address, 1);
    assert_eq!(
        s.record_verification_failure(t.id, u.id, v.purpose)
            .await
            .unwrap(),
        None
    );
    assert_eq!(stored(&s, &v).await, None);
    saved(&s, &v).await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.record_verification_failure(t.id, u.id, Purpose::Address)
                .await
                .unwrap()
        }));
    }
    let mut counts = HashSet::new();
    for task in tasks {
        counts.insert(task.await.unwrap().unwrap());
    }
    assert_eq!(counts, (1..=16).collect::<HashSet<u32>>());
    assert_eq!(stored(&s, &v).await.unwrap().failures, 16);
    let other = Purpose::PasswordReset;
    assert_eq!(
        s.record_verification_failure(t.id, u.id, other)
            .await
            .unwrap(),
        None,
        "another purpose is another verification"
    );
}

/// Every read and write names the tenant: with another tenant's id a
/// verification is not seen, found, counted, consumed or deleted.
pub async fn verifications_are_tenant_scoped<S: ConformanceStore>(s: S) {
    let fx = Fx::new(211);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let u = user(&s, &fx, a.id, "alice").await;
    let v = first(a.id, u.id, Purpose::Address, 1);
    saved(&s, &v).await;
    let (p, h) = (v.purpose, hash(1));
    assert_eq!(s.verification(b.id, u.id, p).await.unwrap(), None);
    assert_eq!(s.find_verification(b.id, p, &h).await.unwrap(), None);
    assert_eq!(
        s.record_verification_failure(b.id, u.id, p).await.unwrap(),
        None
    );
    assert_eq!(
        s.consume_verification(b.id, u.id, p, &h, 5, at(1))
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.delete_verifications(b.id, u.id, None).await.unwrap(), 0);
    assert_eq!(
        s.delete_verifications(b.id, u.id, Some(p)).await.unwrap(),
        0
    );
    assert_eq!(stored(&s, &v).await, Some(v.clone()), "untouched");
    assert_eq!(s.find_verification(a.id, p, &h).await.unwrap(), Some(v));
}

/// A verification is found by its secret hash within its tenant and
/// purpose, expired or not; another hash or purpose finds nothing.
pub async fn find_verification_by_its_secret_hash<S: ConformanceStore>(s: S) {
    let (fx, t, alice) = acme_alice(&s, 212).await;
    let bob = user(&s, &fx, t.id, "bob").await;
    let va = first(t.id, alice.id, Purpose::PasswordReset, 1);
    let mut vb = first(t.id, bob.id, Purpose::PasswordReset, 2);
    vb.expires_at = at(-10);
    let vc = first(t.id, bob.id, Purpose::Address, 3);
    for v in [&va, &vb, &vc] {
        saved(&s, v).await;
    }
    let find = |p, n| {
        let h = hash(n);
        let s = s.clone();
        async move { s.find_verification(t.id, p, &h).await.unwrap() }
    };
    assert_eq!(find(Purpose::PasswordReset, 1).await, Some(va));
    assert_eq!(find(Purpose::PasswordReset, 2).await, Some(vb), "expired");
    assert_eq!(find(Purpose::Address, 3).await, Some(vc));
    assert_eq!(find(Purpose::Address, 1).await, None, "another purpose");
    assert_eq!(find(Purpose::PasswordReset, 3).await, None);
    assert_eq!(find(Purpose::PasswordReset, 9).await, None, "unknown");
}

/// The user's verifications are deleted by purpose or all at once, with
/// how many went; other users' stay.
pub async fn delete_verifications_by_purpose_or_all<S: ConformanceStore>(s: S) {
    let (fx, t, alice) = acme_alice(&s, 213).await;
    let bob = user(&s, &fx, t.id, "bob").await;
    let address = first(t.id, alice.id, Purpose::Address, 1);
    let reset = first(t.id, alice.id, Purpose::PasswordReset, 2);
    let other = first(t.id, bob.id, Purpose::Address, 3);
    let again = first(t.id, alice.id, Purpose::Address, 4);
    for v in [&address, &reset, &other] {
        saved(&s, v).await;
    }
    let del = |p| s.delete_verifications(t.id, alice.id, p);
    assert_eq!(del(Some(Purpose::Address)).await.unwrap(), 1);
    assert_eq!(stored(&s, &address).await, None);
    assert_eq!(stored(&s, &reset).await, Some(reset.clone()));
    assert_eq!(del(Some(Purpose::Address)).await.unwrap(), 0);
    saved(&s, &again).await;
    assert_eq!(del(None).await.unwrap(), 2);
    assert_eq!(stored(&s, &again).await, None);
    assert_eq!(stored(&s, &reset).await, None);
    assert_eq!(del(None).await.unwrap(), 0);
    assert_eq!(stored(&s, &other).await, Some(other), "bob's stays");
}

/// Expired verifications go (every tenant's) at their expiry, inclusive;
/// live ones stay.
pub async fn expired_verifications_are_deleted_at_their_time<S: ConformanceStore>(s: S) {
    let fx = Fx::new(214);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let ua = user(&s, &fx, a.id, "alice").await;
    let ub = user(&s, &fx, b.id, "bob").await;
    let mut short_a = first(a.id, ua.id, Purpose::Address, 1);
    short_a.expires_at = at(60);
    let mut short_b = first(b.id, ub.id, Purpose::PasswordReset, 2);
    short_b.expires_at = at(60);
    let long = first(a.id, ua.id, Purpose::PasswordReset, 3);
    for v in [&short_a, &short_b, &long] {
        saved(&s, v).await;
    }
    assert_eq!(s.delete_expired_verifications(at(59)).await.unwrap(), 0);
    assert_eq!(
        s.delete_expired_verifications(at(60)).await.unwrap(),
        2,
        "expiry is inclusive"
    );
    assert_eq!(stored(&s, &short_a).await, None);
    assert_eq!(stored(&s, &short_b).await, None);
    assert_eq!(stored(&s, &long).await, Some(long));
    assert_eq!(s.delete_expired_verifications(at(60)).await.unwrap(), 0);
}

/// Erasing a user removes their pending verifications (and nobody
/// else's); saving one for the erased user is `NotFound`.
pub async fn erase_user_removes_their_verifications<S: ConformanceStore>(s: S) {
    let (fx, t, alice) = acme_alice(&s, 215).await;
    let bob = user(&s, &fx, t.id, "bob").await;
    let address = first(t.id, alice.id, Purpose::Address, 1);
    let reset = first(t.id, alice.id, Purpose::PasswordReset, 2);
    let theirs = first(t.id, bob.id, Purpose::Address, 3);
    for v in [&address, &reset, &theirs] {
        saved(&s, v).await;
    }
    assert!(s.erase_user(t.id, alice.id, fx.user_id()).await.unwrap());
    assert_eq!(stored(&s, &address).await, None);
    assert_eq!(stored(&s, &reset).await, None);
    let h = hash(2);
    let found = s.find_verification(t.id, Purpose::PasswordReset, &h);
    assert_eq!(found.await.unwrap(), None);
    assert_eq!(stored(&s, &theirs).await, Some(theirs));
    assert_eq!(
        kind(s.save_verification(&address, None).await),
        StoreErrorKind::NotFound
    );
}

/// Saving a verification for a user who is not in its tenant (another
/// tenant's user, or nobody) is `NotFound` and writes nothing.
pub async fn save_verification_for_a_user_of_another_tenant_is_not_found<S: ConformanceStore>(
    s: S,
) {
    let (fx, a) = acme(&s, 216).await;
    let b = tenant(&s, &fx, "b").await;
    let u = user(&s, &fx, a.id, "alice").await;
    let foreign = first(b.id, u.id, Purpose::Address, 1);
    let nobody = first(a.id, fx.user_id(), Purpose::Address, 2);
    for v in [&foreign, &nobody] {
        assert_eq!(
            kind(s.save_verification(v, None).await),
            StoreErrorKind::NotFound
        );
        assert_eq!(
            kind(s.save_verification(v, Some(1)).await),
            StoreErrorKind::NotFound
        );
        assert_eq!(stored(&s, v).await, None);
    }
    let mine = first(a.id, u.id, Purpose::Address, 1);
    assert_eq!(stored(&s, &mine).await, None);
    assert_eq!(
        s.find_verification(b.id, Purpose::Address, &hash(1))
            .await
            .unwrap(),
        None
    );
}
