//! Races across connections: several stores on one file (as several
//! processes would have), each with its own connection and worker thread,
//! so their calls really interleave in SQLite. The conformance suite's
//! concurrency tests run on one in-memory connection, where calls
//! serialise on the worker and cannot race.

use std::sync::Arc;

use countersign_core::{
    FlowStore, IdentityAdmin, RateLimitStore, RbacChange, RbacKind, RbacLookup, RbacName,
    RbacStore, RefreshFamily, Rotation, SessionRecord, SessionStore, StoreError, StoreErrorKind,
    TenantId, UserId,
};
use countersign_sqlite::SqliteStore;
use countersign_testkit::fixtures::{Fx, at, family, flow, session, token_hash};
use tokio::sync::Barrier;

use crate::files::TempDb;

/// Stores sharing the file.
const STORES: usize = 4;
/// Racers per round.
const RACERS: usize = 8;
/// Rounds per test.
const ROUNDS: usize = 40;

/// `STORES` stores on one fresh file with a tenant and a user.
async fn shared(name: &str, seed: u64) -> (TempDb, Vec<SqliteStore>, Fx, TenantId, UserId) {
    let db = TempDb::new(name);
    let fx = Fx::new(seed);
    let first = SqliteStore::open(&db.0).await.unwrap();
    let p = fx.tenant("acme");
    first.provision_tenant(&p).await.unwrap();
    let t = p.tenant().id;
    let u = fx.user(t, "alice");
    first.create_user(&u, &[]).await.unwrap();
    let mut stores = vec![first];
    for _ in 1..STORES {
        stores.push(SqliteStore::open(&db.0).await.unwrap());
    }
    (db, stores, fx, t, u.id)
}

/// Run `RACERS` calls of `f` at once, spread over the stores, released
/// together by a barrier; their results in racer order.
async fn race<T, F, Fut>(stores: &[SqliteStore], f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize, SqliteStore) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let call = f(i, stores[i % stores.len()].clone());
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                call.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(RACERS);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// A session and its refresh family, created through the first store.
async fn session_with_family(
    stores: &[SqliteStore],
    fx: &Fx,
    t: TenantId,
    u: UserId,
    grace: std::time::Duration,
) -> (SessionRecord, RefreshFamily) {
    let s = session(fx, t, u);
    let f = RefreshFamily {
        reuse_grace: grace,
        ..family(fx, &s)
    };
    stores[0].create_session(&s, Some(&f), None).await.unwrap();
    (s, f)
}

/// One refresh token presented at once through several connections, with
/// a reuse grace: exactly one rotates, every other is told `Superseded`,
/// and the family holds the winner's token at generation 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn one_refresh_token_rotates_once_across_connections() {
    let (_db, stores, fx, t, u) = shared("race-rotate", 21).await;
    for round in 0..ROUNDS {
        let (_, f) =
            session_with_family(&stores, &fx, t, u, std::time::Duration::from_secs(30)).await;
        let news: Vec<_> = (0..RACERS).map(|_| token_hash(&fx)).collect();
        let presented = f.current;
        let outcomes = race(&stores, |i, s| {
            let new = news[i];
            async move { s.rotate_refresh(&presented, &new, at(60)).await.unwrap() }
        })
        .await;
        let winners: Vec<&RefreshFamily> = outcomes
            .iter()
            .filter_map(|o| match o {
                Rotation::Rotated(f) => Some(f),
                _ => None,
            })
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
        let superseded = outcomes
            .iter()
            .filter(|o| matches!(o, Rotation::Superseded))
            .count();
        assert_eq!(superseded, RACERS - 1, "round {round}: {outcomes:?}");
        let stored = stores[1].refresh_family(t, f.id).await.unwrap().unwrap();
        assert_eq!(stored.generation, 1, "round {round}");
        assert_eq!(stored.current, winners[0].current, "round {round}");
        assert!(news.contains(&stored.current), "round {round}");
        assert_eq!(stored.previous, Some(presented), "round {round}");
    }
}

/// The same race with no reuse grace: exactly one rotates; a loser is
/// reuse, which revokes the family and ends the session, so every other
/// loser finds it revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_strict_family_rotates_once_and_the_reuse_revokes_it_across_connections() {
    let (_db, stores, fx, t, u) = shared("race-reuse", 22).await;
    for round in 0..ROUNDS {
        let (s, f) = session_with_family(&stores, &fx, t, u, std::time::Duration::ZERO).await;
        let news: Vec<_> = (0..RACERS).map(|_| token_hash(&fx)).collect();
        let presented = f.current;
        let outcomes = race(&stores, |i, s| {
            let new = news[i];
            async move { s.rotate_refresh(&presented, &new, at(60)).await.unwrap() }
        })
        .await;
        let count = |p: fn(&Rotation) -> bool| outcomes.iter().filter(|o| p(o)).count();
        assert_eq!(
            count(|o| matches!(o, Rotation::Rotated(_))),
            1,
            "round {round}: {outcomes:?}"
        );
        assert_eq!(
            count(|o| matches!(o, Rotation::Reused(_))),
            1,
            "round {round}: {outcomes:?}"
        );
        assert_eq!(
            count(|o| matches!(o, Rotation::Revoked)),
            RACERS - 2,
            "round {round}: {outcomes:?}"
        );
        let stored = stores[2].refresh_family(t, f.id).await.unwrap().unwrap();
        assert!(stored.revoked_at.is_some(), "round {round}");
        assert_eq!(stored.generation, 1, "round {round}");
        assert!(
            stores[3].session(t, s.id).await.unwrap().is_none(),
            "round {round}"
        );
    }
}

/// One flow version saved at once through several connections: exactly one
/// save wins, and the stored flow is the winner's at version 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn one_flow_version_is_saved_once_across_connections() {
    let (_db, stores, fx, t, u) = shared("race-flow", 23).await;
    for round in 0..ROUNDS {
        let f = flow(&fx, t, Some(u), 600);
        stores[0].create_flow(&f).await.unwrap();
        let outcomes = race(&stores, |i, s| {
            // Each racer's version is told apart by its expiry.
            let mut mine = f.clone();
            mine.expires_at = at(600 + i64::try_from(i).unwrap());
            async move {
                let won = s.compare_and_save_flow(1, &mine).await.unwrap();
                (won, mine.expires_at)
            }
        })
        .await;
        let winners: Vec<_> = outcomes.iter().filter(|(won, _)| *won).collect();
        assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
        let stored = stores[1].flow(t, &f.key).await.unwrap().unwrap();
        assert_eq!(stored.version, 2, "round {round}");
        assert_eq!(stored.value.expires_at, winners[0].1, "round {round}");
    }
}

/// One session validated at once through several connections when it is
/// due for renewal, each check reading its own clock (a few milliseconds
/// apart): every check sees it valid, one renewal is applied (the first
/// renews; for the others it is no longer due), and every check sees that
/// same renewal, which is what is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_due_renewal_is_applied_once_and_seen_by_every_check_across_connections() {
    let (_db, stores, fx, t, u) = shared("race-renew", 24).await;
    let idle = chrono::Duration::minutes(30);
    for round in 0..ROUNDS {
        let s = session(&fx, t, u);
        stores[0].create_session(&s, None, None).await.unwrap();
        // 20 minutes in: 10 of 30 idle minutes left, renewal due (within 15).
        let nows: Vec<_> = (0..RACERS)
            .map(|i| at(20 * 60) + chrono::Duration::milliseconds(i64::try_from(i).unwrap()))
            .collect();
        assert!(nows.iter().all(|now| s.renewal_due(*now)));
        let key = s.key;
        let outcomes = race(&stores, |i, st| {
            let now = nows[i];
            async move { st.validate_session(&key, now).await.unwrap() }
        })
        .await;
        let stored = stores[2].session(t, s.id).await.unwrap().unwrap();
        assert!(nows.contains(&stored.last_seen_at), "round {round}");
        assert_eq!(
            stored.expires_at,
            stored.last_seen_at + idle,
            "round {round}"
        );
        assert_eq!(
            stored.absolute_expires_at, s.absolute_expires_at,
            "round {round}"
        );
        for seen in &outcomes {
            let seen = seen
                .as_ref()
                .unwrap_or_else(|| panic!("round {round}: not valid"));
            assert_eq!(seen.id, s.id, "round {round}");
            assert_eq!(
                (seen.last_seen_at, seen.expires_at),
                (stored.last_seen_at, stored.expires_at),
                "round {round}: one renewal, seen by all"
            );
        }
    }
}

/// A name of the RBAC model.
fn rbac_name(s: &str) -> RbacName {
    RbacName::new(s).unwrap()
}

/// RBAC changes through several connections at once: each gets its own
/// version (together 1..=N, no two alike), and of the creates of one name
/// exactly one wins, the others `Conflict` without a bump.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn rbac_versions_are_consecutive_across_connections() {
    let (_db, stores, _fx, t, _u) = shared("race-rbac", 25).await;
    let mut versions = race(&stores, |i, s| async move {
        let change = RbacChange::Create {
            kind: RbacKind::Role,
            name: rbac_name(&format!("role-{i}")),
        };
        s.apply_rbac_change(t, &change, None).await.unwrap()
    })
    .await;
    versions.sort_unstable();
    assert_eq!(versions, (1..=RACERS as u64).collect::<Vec<_>>());
    let outcomes = race(&stores, |_, s| async move {
        let change = RbacChange::Create {
            kind: RbacKind::Service,
            name: rbac_name("docs"),
        };
        s.apply_rbac_change(t, &change, None)
            .await
            .map_err(|e| e.kind())
    })
    .await;
    let won: Vec<u64> = outcomes.iter().filter_map(|o| o.ok()).collect();
    assert_eq!(won, [RACERS as u64 + 1], "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|o| o.is_ok() || *o == Err(StoreErrorKind::Conflict)),
        "{outcomes:?}"
    );
    for s in &stores {
        assert_eq!(s.authz_versions(t).await.unwrap().rbac, RACERS as u64 + 1);
    }
}

/// Snapshots read through other connections while changes commit are
/// each of one version: every change adds one role, so a snapshot holds
/// exactly as many roles as its version.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn rbac_snapshots_are_consistent_across_connections() {
    let (_db, stores, _fx, t, _u) = shared("race-snapshot", 26).await;
    for round in 0..ROUNDS {
        let outcomes = race(&stores, |i, s| async move {
            if i % 2 == 0 {
                let change = RbacChange::Create {
                    kind: RbacKind::Role,
                    name: rbac_name(&format!("role-{round}-{i}")),
                };
                s.apply_rbac_change(t, &change, None).await.unwrap();
                Vec::new()
            } else {
                let mut snaps = Vec::new();
                for _ in 0..4 {
                    snaps.push(s.rbac_snapshot(t).await.unwrap());
                }
                snaps
            }
        })
        .await;
        for snap in outcomes.into_iter().flatten() {
            assert_eq!(
                snap.roles.len() as u64,
                snap.version,
                "round {round}: {snap:?}"
            );
        }
    }
}

/// Hits on one rate-limit key through several connections at once are
/// counted exactly: each round's racers (16 hits each, back to back, so
/// the connections keep interleaving) get the counts `1..=N`, each once,
/// on a new key and on one whose window ended (where the statement must
/// open one new window, not several).
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn rate_limit_hits_are_counted_exactly_across_connections() {
    const HITS: u32 = 16;
    const LIMIT: u32 = 20;
    let (_db, stores, _fx, _t, _u) = shared("race-ratelimit", 27).await;
    let window = std::time::Duration::from_secs(60);
    for round in 0..ROUNDS {
        let key = format!("login:ip:192.0.2.{}", round % 4);
        let now = at(i64::try_from(round).unwrap() * 60);
        let decisions = race(&stores, |_, s| {
            let key = key.clone();
            async move {
                let mut out = Vec::new();
                for _ in 0..HITS {
                    out.push(s.hit(&key, LIMIT, window, now).await.unwrap());
                }
                out
            }
        })
        .await;
        let decisions: Vec<_> = decisions.into_iter().flatten().collect();
        let mut counts: Vec<u32> = decisions.iter().map(|d| d.count).collect();
        counts.sort_unstable();
        let total = RACERS as u32 * HITS;
        assert_eq!(counts, (1..=total).collect::<Vec<_>>(), "round {round}");
        let allowed = decisions.iter().filter(|d| d.allowed).count();
        assert_eq!(allowed, LIMIT as usize, "round {round}");
        let end = now + chrono::Duration::seconds(60);
        assert!(decisions.iter().all(|d| d.reset_at == end), "round {round}");
    }
}
