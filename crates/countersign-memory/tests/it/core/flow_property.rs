//! Property: over random sequences of right, wrong and replayed factors,
//! expired flows, concurrent submissions, clock moves, suspensions and
//! lockouts, a flow reaches Authenticated only if every step of one of its
//! methods passed with a genuinely right factor, and never while the account
//! is locked or not active.

use std::collections::HashSet;

use chrono::Duration;
use countersign_core::otp::totp_code;
use countersign_core::{
    AccountState, Confirm, Enroll, Enrolled, Error, FactorCredential, FactorKind, FactorResponse,
    FactorStore, IdentityLookup, LoginStatus, SecretToken, Submission, User,
};
use proptest::prelude::*;

use super::support::{PASSWORD, World, block_on, mfa_world};

#[derive(Debug, Clone)]
enum Op {
    Begin(bool),
    Password(bool),
    Totp(TotpKind),
    Recovery(RecoveryKind),
    ConcurrentTotp,
    Advance(i64),
    Suspend,
    Reactivate,
}

#[derive(Debug, Clone, Copy)]
enum TotpKind {
    Right,
    Wrong,
    Replay,
}

#[derive(Debug, Clone, Copy)]
enum RecoveryKind {
    Fresh,
    Used,
    Wrong,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => any::<bool>().prop_map(Op::Begin),
        4 => prop_oneof![3 => Just(true), 1 => Just(false)].prop_map(Op::Password),
        3 => prop_oneof![Just(TotpKind::Right), Just(TotpKind::Wrong), Just(TotpKind::Replay)].prop_map(Op::Totp),
        2 => prop_oneof![Just(RecoveryKind::Fresh), Just(RecoveryKind::Used), Just(RecoveryKind::Wrong)].prop_map(Op::Recovery),
        1 => Just(Op::ConcurrentTotp),
        2 => prop_oneof![Just(1i64), Just(30), Just(61), Just(400)].prop_map(Op::Advance),
        1 => Just(Op::Suspend),
        1 => Just(Op::Reactivate),
    ]
}

struct Run {
    w: World,
    alice: User,
    flow: Option<SecretToken>,
    accepted: Vec<FactorKind>,
    codes: Vec<String>,
    used_codes: Vec<String>,
    used_steps: HashSet<u64>,
    last_code: Option<String>,
}

impl Run {
    async fn totp_now(&self) -> (String, u64) {
        let v = self
            .w
            .store
            .user_factor(self.w.tenant.id, self.alice.id, FactorKind::Totp)
            .await
            .unwrap()
            .unwrap();
        let FactorCredential::Totp(cred) = v.value else {
            panic!()
        };
        let now = self.w.svc.env().now().timestamp() as u64;
        (totp_code(&cred, now).unwrap(), now / 30)
    }

    /// Whether the account may sign in right now, read from the store.
    async fn may_sign_in(&self) -> bool {
        let u = self
            .w
            .store
            .get_user(self.w.tenant.id, self.alice.id)
            .await
            .unwrap()
            .unwrap();
        let locked = self
            .w
            .store
            .failure_record(self.w.tenant.id, self.alice.id)
            .await
            .unwrap()
            .and_then(|r| r.locked_at(self.w.svc.env().now()))
            .is_some();
        u.state == AccountState::Active && !locked
    }

    async fn submit(&self, response: FactorResponse<'_>) -> Option<Result<Submission, Error>> {
        let flow = self.flow.as_ref()?;
        Some(
            self.w
                .svc
                .submit(self.w.tenant.id, flow.expose(), response, &self.w.client)
                .await,
        )
    }

    /// Check one outcome; `genuine` says whether the factor was right and
    /// unspent, `may` whether the account could sign in before the call.
    fn observe(
        &mut self,
        kind: FactorKind,
        r: Option<Result<Submission, Error>>,
        genuine: bool,
        may: bool,
    ) {
        let Some(r) = r else { return };
        let s = match r {
            Ok(s) => s,
            Err(
                Error::FlowExpired
                | Error::FlowEnded
                | Error::FactorNotExpected
                | Error::ChallengeMissing,
            ) => return,
            Err(Error::Concurrent(_)) => return,
            Err(e) => panic!("unexpected error {e:?}"),
        };
        if s.accepted() {
            assert!(
                genuine,
                "a wrong, replayed or spent {kind} factor was accepted"
            );
            assert!(
                may,
                "a factor was accepted for a locked or inactive account"
            );
            self.accepted.push(kind);
        }
        if let LoginStatus::Authenticated(a) = &s.status {
            let kinds: Vec<FactorKind> = a.record().factors.iter().map(|f| f.kind).collect();
            assert_eq!(
                kinds, self.accepted,
                "the authentication lists exactly the accepted factors"
            );
            assert_eq!(kinds.len(), 2, "mfa has two steps");
            assert_eq!(kinds[0], FactorKind::Password);
            assert!(matches!(
                kinds[1],
                FactorKind::Totp | FactorKind::RecoveryCodes
            ));
            assert_eq!(a.record().method.as_str(), "mfa");
            assert_eq!(a.user_id(), self.alice.id);
        }
    }
}

async fn run(ops: Vec<Op>) {
    let w = mfa_world(91).await;
    let alice = w.user("alice").await;
    let Enrolled::Totp(_) = w
        .svc
        .enroll(w.tenant.id, alice.id, Enroll::Totp, &w.client)
        .await
        .unwrap()
    else {
        panic!()
    };
    let mut r = Run {
        w,
        alice,
        flow: None,
        accepted: Vec::new(),
        codes: Vec::new(),
        used_codes: Vec::new(),
        used_steps: HashSet::new(),
        last_code: None,
    };
    let (code, step) = r.totp_now().await;
    r.w.svc
        .confirm(
            r.w.tenant.id,
            r.alice.id,
            Confirm::Totp { code: &code },
            &r.w.client,
        )
        .await
        .unwrap();
    r.used_steps.insert(step);
    let Enrolled::RecoveryCodes(codes) =
        r.w.svc
            .enroll(
                r.w.tenant.id,
                r.alice.id,
                Enroll::RecoveryCodes,
                &r.w.client,
            )
            .await
            .unwrap()
    else {
        panic!()
    };
    r.codes = codes;

    for op in ops {
        let may = r.may_sign_in().await;
        match op {
            Op::Begin(choose) => {
                let method = choose.then_some("mfa");
                let (flow, _) =
                    r.w.svc
                        .begin_login(r.w.tenant.id, "alice", method, &r.w.client)
                        .await
                        .unwrap();
                r.flow = Some(flow);
                r.accepted.clear();
            }
            Op::Password(right) => {
                let pw = if right { PASSWORD } else { "definitely not it" };
                let out = r.submit(FactorResponse::Password(pw)).await;
                r.observe(FactorKind::Password, out, right, may);
            }
            Op::Totp(kind) => {
                let (now_code, step) = r.totp_now().await;
                let (code, genuine) = match kind {
                    TotpKind::Right => (
                        now_code.clone(),
                        !r.used_steps.contains(&step) && r.used_steps.iter().all(|s| *s < step),
                    ),
                    TotpKind::Wrong => (
                        if now_code == "000000" {
                            "000001".into()
                        } else {
                            "000000".into()
                        },
                        false,
                    ),
                    TotpKind::Replay => match &r.last_code {
                        Some(c) => (c.clone(), false),
                        None => continue,
                    },
                };
                let out = r.submit(FactorResponse::Totp(&code)).await;
                if matches!(&out, Some(Ok(s)) if s.accepted()) {
                    r.used_steps.insert(step);
                    r.last_code = Some(code.clone());
                }
                r.observe(FactorKind::Totp, out, genuine, may);
            }
            Op::ConcurrentTotp => {
                let Some(flow) = r.flow.clone() else { continue };
                let (code, step) = r.totp_now().await;
                let fresh = r.used_steps.iter().all(|s| *s < step);
                let mut tasks = Vec::new();
                for _ in 0..2 {
                    let (svc, t, c, client, f) = (
                        r.w.svc.clone(),
                        r.w.tenant.id,
                        code.clone(),
                        r.w.client.clone(),
                        flow.expose().to_owned(),
                    );
                    tasks.push(tokio::spawn(async move {
                        svc.submit(t, &f, FactorResponse::Totp(&c), &client).await
                    }));
                }
                let mut outs = Vec::new();
                for t in tasks {
                    outs.push(t.await.unwrap());
                }
                let accepted = outs
                    .iter()
                    .filter(|o| matches!(o, Ok(s) if s.accepted()))
                    .count();
                assert!(accepted <= 1, "one code, at most one acceptance");
                if accepted == 1 {
                    r.used_steps.insert(step);
                    r.last_code = Some(code);
                }
                for o in outs {
                    r.observe(FactorKind::Totp, Some(o), fresh, may);
                }
            }
            Op::Recovery(kind) => {
                let (code, genuine) = match kind {
                    RecoveryKind::Fresh => match r.codes.iter().find(|c| !r.used_codes.contains(c))
                    {
                        Some(c) => (c.clone(), true),
                        None => continue,
                    },
                    RecoveryKind::Used => match r.used_codes.first() {
                        Some(c) => (c.clone(), false),
                        None => continue,
                    },
                    RecoveryKind::Wrong => ("aaaa-bbbb-cccc-dddd".to_owned(), false),
                };
                let out = r.submit(FactorResponse::RecoveryCode(&code)).await;
                if matches!(&out, Some(Ok(s)) if s.accepted()) {
                    r.used_codes.push(code);
                }
                r.observe(FactorKind::RecoveryCodes, out, genuine, may);
            }
            Op::Advance(secs) => r.w.clock.advance(Duration::seconds(secs)),
            Op::Suspend => {
                let _ = r.w.transition(&r.alice, AccountState::Suspended).await;
            }
            Op::Reactivate => {
                let _ = r.w.transition(&r.alice, AccountState::Active).await;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn only_complete_genuine_factor_sequences_authenticate(ops in proptest::collection::vec(op(), 1..30)) {
        block_on(run(ops));
    }
}
