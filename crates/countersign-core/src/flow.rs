//! The login flow: a closed state machine, advanced by value, stored
//! server-side under the hash of an opaque flow token.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::factor::{AuthMethod, FactorKind, MethodName, PendingCode};
use crate::ids::{TenantId, UserId};
use crate::token::TokenHash;

/// One factor that passed, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassedFactor {
    /// The factor.
    pub kind: FactorKind,
    /// When it was verified.
    pub at: DateTime<Utc>,
}

/// How a login was authenticated, as recorded: who, by which method,
/// which factors and when. Sessions keep it (it answers step-up questions
/// and fills a JWT's `amr`, `acr` and `auth_time`); it is plain data, so a
/// backend can store and load it. It is *not* a proof of login: that is
/// [`Authentication`], which only a finished flow hands out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRecord {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The user.
    pub user_id: UserId,
    /// The method whose every step passed.
    pub method: MethodName,
    /// The factors, in the order they passed.
    pub factors: Vec<PassedFactor>,
    /// When the last step passed.
    pub at: DateTime<Utc>,
}

/// What an action demands of the authentication behind a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StepUp {
    /// Only factors verified this recently count (`None`: any age).
    pub max_age: Option<Duration>,
    /// At least this many distinct factor kinds must count.
    pub min_factors: usize,
    /// At least one counting factor must be of one of these kinds (empty:
    /// any kind).
    pub any_of: Vec<FactorKind>,
}

impl StepUp {
    /// Any factor verified within `max_age`.
    pub fn fresh(max_age: Duration) -> Self {
        Self {
            max_age: Some(max_age),
            min_factors: 1,
            any_of: Vec::new(),
        }
    }
}

impl AuthRecord {
    /// The factors verified no earlier than `now - max_age`.
    fn counting(&self, req: &StepUp, now: DateTime<Utc>) -> Vec<FactorKind> {
        let oldest = req
            .max_age
            .and_then(|a| chrono::Duration::from_std(a).ok())
            .map(|a| now - a);
        let mut kinds: Vec<FactorKind> = self
            .factors
            .iter()
            .filter(|f| oldest.is_none_or(|o| f.at >= o) && f.at <= now)
            .map(|f| f.kind)
            .collect();
        kinds.sort_by_key(|k| k.as_str());
        kinds.dedup();
        kinds
    }

    /// Whether this authentication meets `req` at `now`.
    pub fn satisfies(&self, req: &StepUp, now: DateTime<Utc>) -> bool {
        let kinds = self.counting(req, now);
        kinds.len() >= req.min_factors
            && (req.any_of.is_empty() || kinds.iter().any(|k| req.any_of.contains(k)))
    }

    /// This record with the factors of a later one (a step-up of the same
    /// user) added.
    pub fn merge(mut self, later: &AuthRecord) -> Result<Self> {
        if later.user_id != self.user_id || later.tenant_id != self.tenant_id {
            return Err(Error::Concurrent("a step-up must be for the same user"));
        }
        self.factors.extend(later.factors.iter().copied());
        self.at = self.at.max(later.at);
        Ok(self)
    }
}

/// Proof of a completed login: handed out only by a login flow that passed
/// every step of one method ([`LoginStatus::Authenticated`]), and the only
/// thing [`SessionService::issue`] (and [`SessionService::step_up`])
/// accepts.
///
/// It cannot be built, deserialized or edited outside countersign-core: its
/// fields are private and it implements no `Deserialize`. Read what it
/// proves through [`record`](Self::record). It is good **once**: it names
/// the flow that produced it, and the first `issue` (or `step_up`) deletes
/// that flow; every later use, concurrent ones included, is refused with
/// [`Error::FlowEnded`]. A login answered within one call
/// ([`AuthnService::login_with_password`]) stores no flow: its proof
/// carries a mark shared by all its clones, set by the first use, so it
/// too starts at most one session, and it lives no longer than the flow
/// would have. (Tests that need one without a flow enable the
/// `testing` feature for `Authentication::for_testing`; such proofs have no
/// flow to spend and may be used repeatedly.)
///
/// [`LoginStatus::Authenticated`]: crate::LoginStatus::Authenticated
/// [`AuthnService::login_with_password`]: crate::AuthnService::login_with_password
/// [`SessionService::issue`]: crate::SessionService::issue
/// [`SessionService::step_up`]: crate::SessionService::step_up
#[derive(Clone, PartialEq, Eq)]
pub struct Authentication {
    record: AuthRecord,
    origin: ProofOrigin,
}

/// Where a proof of login came from: what spending it consumes.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum ProofOrigin {
    /// The finished flow with this key, in the record's tenant: spending the
    /// proof deletes it.
    Flow(TokenHash),
    /// A login finished within one call, with no flow stored: spending
    /// the proof sets the mark its clones share.
    Unstored(SpentMark),
    /// `Authentication::for_testing`: nothing to spend.
    #[cfg(feature = "testing")]
    Testing,
}

/// What an [`Authentication`] with no stored flow spends: one flag shared
/// by the proof and its clones, and the end of its life.
#[derive(Clone)]
pub(crate) struct SpentMark {
    spent: std::sync::Arc<std::sync::atomic::AtomicBool>,
    expires_at: DateTime<Utc>,
}

impl SpentMark {
    /// Spend it at `now`: `Ok` for exactly one call over all clones, until
    /// it expires ([`Error::FlowExpired`]); [`Error::FlowEnded`] after.
    pub(crate) fn spend(&self, now: DateTime<Utc>) -> Result<()> {
        if now >= self.expires_at {
            return Err(Error::FlowExpired);
        }
        if self.spent.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::FlowEnded);
        }
        Ok(())
    }
}

/// Two marks are equal when they are the same mark (clones of one proof).
impl PartialEq for SpentMark {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.spent, &other.spent)
    }
}

impl Eq for SpentMark {}

impl std::fmt::Debug for Authentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let origin = match &self.origin {
            ProofOrigin::Flow(_) => "flow",
            ProofOrigin::Unstored(_) => "unstored",
            #[cfg(feature = "testing")]
            ProofOrigin::Testing => "testing",
        };
        f.debug_struct("Authentication")
            .field("record", &self.record)
            .field("origin", &origin)
            .finish()
    }
}

impl Authentication {
    /// The proof of the login the flow stored under `flow` (its key) just
    /// finished with `record`. Spending it deletes that flow.
    pub(crate) fn from_flow_key(record: AuthRecord, flow: TokenHash) -> Self {
        Self {
            record,
            origin: ProofOrigin::Flow(flow),
        }
    }

    /// The proof of a login that finished within one call with `record`
    /// and stored no flow: good once (its clones share the mark) until
    /// `expires_at`.
    pub(crate) fn unstored(record: AuthRecord, expires_at: DateTime<Utc>) -> Self {
        Self {
            record,
            origin: ProofOrigin::Unstored(SpentMark {
                spent: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
                expires_at,
            }),
        }
    }

    /// A proof built from a record, with no flow behind it. **For tests
    /// only**: it exists with the `testing` feature, which production code
    /// must not enable.
    #[cfg(feature = "testing")]
    pub fn for_testing(record: AuthRecord) -> Self {
        Self {
            record,
            origin: ProofOrigin::Testing,
        }
    }

    /// What spending this proof consumes.
    pub(crate) fn origin(&self) -> &ProofOrigin {
        &self.origin
    }

    /// What this login proves: who, by which method, which factors when.
    pub fn record(&self) -> &AuthRecord {
        &self.record
    }

    /// The tenant signed in to.
    pub fn tenant_id(&self) -> TenantId {
        self.record.tenant_id
    }

    /// The user signed in.
    pub fn user_id(&self) -> UserId {
        self.record.user_id
    }

    /// Whether this login meets `req` at `now`.
    pub fn satisfies(&self, req: &StepUp, now: DateTime<Utc>) -> bool {
        self.record.satisfies(req, now)
    }

    /// This login with the factors of a later one (a step-up of the same
    /// user, from [`AuthnService::begin_step_up`]) added. The result is
    /// spent as `self` is (the later proof's flow is left unspent); to
    /// attach a step-up to a running session, use
    /// [`SessionService::step_up`], which spends the step-up proof.
    ///
    /// [`AuthnService::begin_step_up`]: crate::AuthnService::begin_step_up
    /// [`SessionService::step_up`]: crate::SessionService::step_up
    pub fn merge(self, later: &Authentication) -> Result<Self> {
        Ok(Self {
            record: self.record.merge(&later.record)?,
            origin: self.origin,
        })
    }
}

/// Why a flow ended without a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// Too many wrong factors in this flow.
    TooManyAttempts,
    /// The account may not sign in (not active).
    AccountInactive,
}

/// A passkey assertion challenge waiting for its answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum PasskeyChallenge {
    /// For the user's registered passkeys.
    Known(webauthn_rs::prelude::PasskeyAuthentication),
    /// Username-less: any discoverable passkey of the tenant.
    Discoverable(webauthn_rs::prelude::DiscoverableAuthentication),
}

/// A flow waiting for its next factor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Awaiting {
    /// The user, or `None` for an identifier that matched nobody: such a
    /// flow looks and behaves like any other but can never pass a factor.
    /// Also `None` before a discoverable passkey has named the user.
    pub user: Option<UserId>,
    /// Whether the user is still to be named by a discoverable passkey.
    pub discoverable: bool,
    /// The methods still possible given the factors passed so far.
    pub candidates: Vec<AuthMethod>,
    /// The factors passed so far, in order.
    pub passed: Vec<PassedFactor>,
    /// Wrong factors so far in this flow.
    pub failures: u32,
    /// An email code sent for this flow, not yet used.
    pub email_code: Option<PendingCode>,
    /// A passkey challenge issued for this flow, not yet answered.
    pub passkey: Option<PasskeyChallenge>,
    /// For an identifier that matched nobody: the keyed tag of that
    /// identifier, so every flow for it is shown the same decoy passkey
    /// ids. `None` for a known user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoy_tag: Option<String>,
    /// For a sign-in at an issuer: the issuer asked and the nonce its ID
    /// token must carry. `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federated: Option<FederatedChallenge>,
}

/// What a flow that signs in at an issuer waits for: an ID token of
/// `issuer` carrying `nonce` (which binds the token to this flow, so a
/// token works in one flow only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederatedChallenge {
    /// The canonical issuer.
    pub issuer: String,
    /// The nonce sent in the authorization request.
    pub nonce: String,
}

impl Awaiting {
    /// A fresh flow's state: nothing passed, no failure, no challenge.
    pub(crate) fn start(user: Option<UserId>, candidates: Vec<AuthMethod>) -> Self {
        Self {
            user,
            discoverable: false,
            candidates,
            passed: Vec::new(),
            failures: 0,
            email_code: None,
            passkey: None,
            decoy_tag: None,
            federated: None,
        }
    }

    /// The index of the step now awaited.
    pub fn step(&self) -> usize {
        self.passed.len()
    }

    /// The factor kinds the current step accepts, over all candidates, in
    /// a stable order. A factor already passed in this flow is not accepted
    /// again.
    pub fn accepts(&self) -> Vec<FactorKind> {
        let i = self.step();
        let mut kinds: Vec<FactorKind> = self
            .candidates
            .iter()
            .filter_map(|m| m.steps.get(i))
            .flat_map(|s| s.kinds().iter().copied())
            .filter(|k| !self.passed.iter().any(|p| p.kind == *k))
            .collect();
        kinds.sort_by_key(|k| k.as_str());
        kinds.dedup();
        kinds
    }

    /// Whether the current step accepts `kind`.
    pub fn admits(&self, kind: FactorKind) -> bool {
        self.accepts().contains(&kind)
    }
}

/// What happened to a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowEvent {
    /// A factor of this kind was verified at this time.
    Passed {
        /// The factor.
        kind: FactorKind,
        /// When.
        at: DateTime<Utc>,
    },
    /// A submitted factor was wrong.
    Failed,
    /// The account is locked until then.
    Locked {
        /// When the lock lifts.
        until: DateTime<Utc>,
    },
    /// The account may not sign in.
    Inactive,
    /// The flow outlived its time.
    Expired,
}

/// A login in progress.
///
/// Transitions (terminal states never change):
///
/// ```text
/// AwaitingFactor --Passed, a candidate method complete--> Authenticated
/// AwaitingFactor --Passed, steps remain-----------------> AwaitingFactor (next step)
/// AwaitingFactor --Failed, under the cap----------------> AwaitingFactor (failures + 1)
/// AwaitingFactor --Failed, cap reached------------------> Denied(TooManyAttempts)
/// AwaitingFactor --Locked-------------------------------> Locked
/// AwaitingFactor --Inactive-----------------------------> Denied(AccountInactive)
/// AwaitingFactor --Expired------------------------------> Expired
/// ```
///
/// `Authenticated` is reachable only through `Passed` events that cover
/// every step of one candidate method, for a flow with a known user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum LoginState {
    /// Waiting for a factor.
    AwaitingFactor(Awaiting),
    /// Every step of a method passed.
    Authenticated(AuthRecord),
    /// Ended without a login.
    Denied(DenyReason),
    /// Ended: the account is locked.
    Locked {
        /// When the lock lifts.
        until: DateTime<Utc>,
    },
    /// Ended: too old.
    Expired,
}

impl LoginState {
    /// Whether the flow has ended.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, LoginState::AwaitingFactor(_))
    }

    /// Advance by one event. `Passed` for a kind the current step does not
    /// accept is refused with [`Error::FactorNotExpected`] (the state is
    /// returned to the caller unchanged only through that error path's
    /// absence: callers check [`Awaiting::admits`] first).
    pub fn advance(
        self,
        event: FlowEvent,
        tenant: TenantId,
        max_failures: u32,
    ) -> Result<LoginState> {
        let LoginState::AwaitingFactor(mut w) = self else {
            return Ok(self);
        };
        Ok(match event {
            FlowEvent::Expired => LoginState::Expired,
            FlowEvent::Locked { until } => LoginState::Locked { until },
            FlowEvent::Inactive => LoginState::Denied(DenyReason::AccountInactive),
            FlowEvent::Failed => {
                w.failures = w.failures.saturating_add(1);
                if w.failures >= max_failures {
                    LoginState::Denied(DenyReason::TooManyAttempts)
                } else {
                    LoginState::AwaitingFactor(w)
                }
            }
            FlowEvent::Passed { kind, at } => {
                let Some(user) = w.user else {
                    return Err(Error::FactorNotExpected);
                };
                if !w.admits(kind) {
                    return Err(Error::FactorNotExpected);
                }
                let i = w.step();
                w.candidates
                    .retain(|m| m.steps.get(i).is_some_and(|s| s.admits(kind)));
                w.passed.push(PassedFactor { kind, at });
                w.email_code = None;
                w.passkey = None;
                w.discoverable = false;
                match w
                    .candidates
                    .iter()
                    .find(|m| m.steps.len() == w.passed.len())
                {
                    Some(done) => LoginState::Authenticated(AuthRecord {
                        tenant_id: tenant,
                        user_id: user,
                        method: done.name.clone(),
                        factors: w.passed,
                        at,
                    }),
                    None => LoginState::AwaitingFactor(w),
                }
            }
        })
    }
}

/// A passkey registration in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasskeyRegistrationState {
    /// The user registering.
    pub user: UserId,
    /// The name the new passkey will get.
    pub name: String,
    /// The ceremony state.
    pub ceremony: webauthn_rs::prelude::PasskeyRegistration,
}

/// What a stored flow is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FlowState {
    /// A login.
    Login(LoginState),
    /// A passkey registration ceremony.
    PasskeyRegistration(PasskeyRegistrationState),
}

/// A flow as stored: keyed by the hash of its token, in one tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlowRecord {
    /// SHA-256 of the flow token.
    pub key: TokenHash,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The user, once known.
    pub user_id: Option<UserId>,
    /// The state.
    pub state: FlowState,
    /// When it began.
    pub created_at: DateTime<Utc>,
    /// When it stops being usable.
    pub expires_at: DateTime<Utc>,
}

impl PartialEq for FlowRecord {
    /// Records are equal when every field is; states compare by their
    /// serialised form (ceremony states have no equality of their own).
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
            && self.tenant_id == other.tenant_id
            && self.user_id == other.user_id
            && self.created_at == other.created_at
            && self.expires_at == other.expires_at
            && serde_json::to_value(&self.state).ok() == serde_json::to_value(&other.state).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::factor::FactorStep;

    fn awaiting(user: Option<UserId>, methods: Vec<AuthMethod>) -> LoginState {
        LoginState::AwaitingFactor(Awaiting {
            user,
            discoverable: false,
            candidates: methods,
            passed: Vec::new(),
            failures: 0,
            email_code: None,
            passkey: None,
            decoy_tag: None,
            federated: None,
        })
    }

    #[test]
    fn a_method_completes_only_when_every_step_passed() {
        let t = TenantId::from_uuid(uuid::Uuid::from_u128(1));
        let u = UserId::from_uuid(uuid::Uuid::from_u128(2));
        let mfa = AuthMethod::new(
            "mfa",
            vec![
                FactorStep::Required(FactorKind::Password),
                FactorStep::AnyOf(vec![FactorKind::Totp, FactorKind::RecoveryCodes]),
            ],
        )
        .unwrap();
        let pk = AuthMethod::sequence("passkey", &[FactorKind::Passkey]).unwrap();
        let at = DateTime::<Utc>::default();
        let s = awaiting(Some(u), vec![mfa, pk]);
        let LoginState::AwaitingFactor(w) = &s else {
            panic!()
        };
        assert_eq!(w.accepts(), vec![FactorKind::Passkey, FactorKind::Password]);
        assert!(matches!(
            s.clone().advance(
                FlowEvent::Passed {
                    kind: FactorKind::Totp,
                    at
                },
                t,
                5
            ),
            Err(Error::FactorNotExpected)
        ));
        let s = s
            .advance(
                FlowEvent::Passed {
                    kind: FactorKind::Password,
                    at,
                },
                t,
                5,
            )
            .unwrap();
        let LoginState::AwaitingFactor(w) = &s else {
            panic!("{s:?}")
        };
        assert_eq!(
            w.accepts(),
            vec![FactorKind::RecoveryCodes, FactorKind::Totp]
        );
        assert!(!w.admits(FactorKind::Password), "a factor counts once");
        let s = s.advance(FlowEvent::Failed, t, 5).unwrap();
        let done = s
            .advance(
                FlowEvent::Passed {
                    kind: FactorKind::RecoveryCodes,
                    at,
                },
                t,
                5,
            )
            .unwrap();
        let LoginState::Authenticated(a) = done else {
            panic!()
        };
        assert_eq!(a.method.as_str(), "mfa");
        assert_eq!(
            a.factors.iter().map(|f| f.kind).collect::<Vec<_>>(),
            [FactorKind::Password, FactorKind::RecoveryCodes]
        );
    }

    #[test]
    fn failures_locks_and_terminal_states() {
        let t = TenantId::from_uuid(uuid::Uuid::from_u128(1));
        let pw = AuthMethod::sequence("password", &[FactorKind::Password]).unwrap();
        let mut s = awaiting(None, vec![pw.clone()]);
        // A decoy flow never passes.
        assert!(matches!(
            s.clone().advance(
                FlowEvent::Passed {
                    kind: FactorKind::Password,
                    at: Default::default()
                },
                t,
                3
            ),
            Err(Error::FactorNotExpected)
        ));
        for _ in 0..3 {
            s = s.advance(FlowEvent::Failed, t, 3).unwrap();
        }
        assert!(matches!(s, LoginState::Denied(DenyReason::TooManyAttempts)));
        let s = s
            .advance(
                FlowEvent::Passed {
                    kind: FactorKind::Password,
                    at: Default::default(),
                },
                t,
                3,
            )
            .unwrap();
        assert!(matches!(s, LoginState::Denied(_)), "terminal");
        let u = UserId::from_uuid(uuid::Uuid::from_u128(2));
        let until = DateTime::<Utc>::default();
        assert!(matches!(
            awaiting(Some(u), vec![pw.clone()])
                .advance(FlowEvent::Locked { until }, t, 3)
                .unwrap(),
            LoginState::Locked { .. }
        ));
        assert!(matches!(
            awaiting(Some(u), vec![pw.clone()])
                .advance(FlowEvent::Inactive, t, 3)
                .unwrap(),
            LoginState::Denied(DenyReason::AccountInactive)
        ));
        assert!(matches!(
            awaiting(Some(u), vec![pw])
                .advance(FlowEvent::Expired, t, 3)
                .unwrap(),
            LoginState::Expired
        ));
    }

    #[test]
    fn step_up_requirements() {
        let now = DateTime::<Utc>::from_timestamp(10_000, 0).unwrap();
        let a = AuthRecord {
            tenant_id: TenantId::from_uuid(uuid::Uuid::from_u128(1)),
            user_id: UserId::from_uuid(uuid::Uuid::from_u128(2)),
            method: MethodName::parse("mfa").unwrap(),
            factors: vec![
                PassedFactor {
                    kind: FactorKind::Password,
                    at: now - chrono::Duration::seconds(3600),
                },
                PassedFactor {
                    kind: FactorKind::Totp,
                    at: now - chrono::Duration::seconds(60),
                },
            ],
            at: now - chrono::Duration::seconds(60),
        };
        assert!(a.satisfies(
            &StepUp {
                min_factors: 2,
                ..Default::default()
            },
            now
        ));
        assert!(a.satisfies(&StepUp::fresh(Duration::from_secs(300)), now));
        assert!(!a.satisfies(&StepUp::fresh(Duration::from_secs(30)), now));
        let two_fresh = StepUp {
            max_age: Some(Duration::from_secs(300)),
            min_factors: 2,
            any_of: vec![],
        };
        assert!(!a.satisfies(&two_fresh, now));
        let passkey = StepUp {
            any_of: vec![FactorKind::Passkey],
            min_factors: 1,
            max_age: None,
        };
        assert!(!a.satisfies(&passkey, now));
        let later = AuthRecord {
            factors: vec![PassedFactor {
                kind: FactorKind::Passkey,
                at: now,
            }],
            at: now,
            ..a.clone()
        };
        let merged = a.merge(&later).unwrap();
        assert!(merged.satisfies(&passkey, now));
    }
}
