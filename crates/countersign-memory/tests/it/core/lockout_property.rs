//! Property: no sequence of right and wrong password attempts, clock moves,
//! suspensions and reactivations ever signs in an account that is locked or
//! not active, and a lock always lifts once its duration has passed.
//!
//! The oracle below is written independently of the library's lockout code.

use chrono::{DateTime, Duration, Utc};
use countersign_core::{AccountState, Error};
use proptest::prelude::*;

use super::support::{PASSWORD, block_on, policy, world_with_policy};

const MAX: u32 = 3;
const WINDOW: i64 = 300;
const LOCK: i64 = 600;

#[derive(Debug, Clone)]
enum Op {
    Right,
    Wrong,
    Advance(i64),
    Suspend,
    Reactivate,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Wrong),
        3 => Just(Op::Right),
        3 => (1i64..900).prop_map(Op::Advance),
        1 => Just(Op::Suspend),
        1 => Just(Op::Reactivate),
    ]
}

#[derive(Debug, Default)]
struct Oracle {
    suspended: bool,
    count: u32,
    window_start: Option<DateTime<Utc>>,
    locked_until: Option<DateTime<Utc>>,
}

#[derive(Debug, PartialEq)]
enum Expect {
    SignedIn,
    /// Refused: a wrong password, or a locked or suspended account (one
    /// answer for all, so the account's state does not leak).
    Invalid,
}

impl Oracle {
    fn locked(&self, now: DateTime<Utc>) -> bool {
        self.locked_until.is_some_and(|u| now < u)
    }

    fn attempt(&mut self, right: bool, now: DateTime<Utc>) -> Expect {
        if self.suspended || self.locked(now) {
            return Expect::Invalid;
        }
        if right {
            *self = Oracle::default();
            return Expect::SignedIn;
        }
        let fresh = match (self.locked_until, self.window_start) {
            (Some(until), _) => now >= until,
            (None, Some(start)) => now >= start + Duration::seconds(WINDOW),
            (None, None) => true,
        };
        if fresh {
            self.count = 1;
            self.window_start = Some(now);
            self.locked_until = None;
        } else {
            self.count += 1;
        }
        if self.locked_until.is_none() && self.count >= MAX {
            self.locked_until = Some(now + Duration::seconds(LOCK));
        }
        Expect::Invalid
    }
}

fn observed(r: &Result<countersign_core::PasswordLogin, Error>) -> Expect {
    match r {
        Ok(_) => Expect::SignedIn,
        Err(Error::InvalidCredentials) => Expect::Invalid,
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

async fn run(ops: Vec<Op>) {
    let w = world_with_policy(77, policy(MAX, WINDOW as u64, LOCK as u64)).await;
    let alice = w.user("alice").await;
    let mut oracle = Oracle::default();
    for (i, op) in ops.into_iter().enumerate() {
        let now = w.svc.env().now();
        match op {
            Op::Right | Op::Wrong => {
                let right = matches!(op, Op::Right);
                let r = w
                    .login("alice", if right { PASSWORD } else { "a wrong guess" })
                    .await;
                let got = observed(&r);
                // The safety property, stated on its own before the exact check.
                if got == Expect::SignedIn {
                    assert!(!oracle.suspended, "step {i}: signed in while suspended");
                    assert!(!oracle.locked(now), "step {i}: signed in while locked");
                    assert!(right, "step {i}: signed in with a wrong password");
                }
                let want = oracle.attempt(right, now);
                assert_eq!(got, want, "step {i} ({op:?}) at {now}");
            }
            Op::Advance(secs) => w.clock.advance(Duration::seconds(secs)),
            Op::Suspend if !oracle.suspended => {
                w.transition(&alice, AccountState::Suspended).await.unwrap();
                oracle.suspended = true;
            }
            Op::Reactivate if oracle.suspended => {
                w.transition(&alice, AccountState::Active).await.unwrap();
                oracle.suspended = false;
            }
            Op::Suspend | Op::Reactivate => {}
        }
    }
    // Liveness: once active and past any lock, the right password works.
    if oracle.suspended {
        w.transition(&alice, AccountState::Active).await.unwrap();
    }
    w.clock.advance(Duration::seconds(LOCK));
    w.login("alice", PASSWORD)
        .await
        .expect("the lock lifts after its duration");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn locked_or_suspended_accounts_never_sign_in(ops in proptest::collection::vec(op(), 1..40)) {
        block_on(run(ops));
    }
}
