//! The login engine: begin a flow, answer challenges, submit factors.

use crate::store::Store;
use chrono::{DateTime, Utc};
use webauthn_rs::prelude::RequestChallengeResponse;

use super::AuthnService;
use super::check::Parsed;
use crate::audit::{AuditDetail, AuditKind, AuditReason};
use crate::env::Request;
use crate::error::{Error, InvalidInput, Result, store_err};
use crate::factor::{
    AuthMethod, Check, FactorKind, FactorStep, MethodName, MethodScope, Versioned, passkey,
};
use crate::flow::{
    Authentication, Awaiting, DenyReason, FlowEvent, FlowRecord, FlowState, LoginState,
    PasskeyChallenge,
};
use crate::ids::{TenantId, UserId};
use crate::model::{ClientInfo, Identifier, Tenant, User};
use crate::token::{SecretToken, TokenHash, TokenKind};

/// A factor as the user submits it. Strings are raw input.
#[derive(Clone, Copy)]
pub enum FactorResponse<'a> {
    /// A password.
    Password(&'a str),
    /// A TOTP code.
    Totp(&'a str),
    /// A recovery code.
    RecoveryCode(&'a str),
    /// The code from the email sent for this flow.
    EmailCode(&'a str),
    /// The browser's `PublicKeyCredential`, as JSON.
    Passkey(&'a str),
    /// An ID token from the issuer a flow begun with
    /// [`AuthnService::begin_federated_login`] signs in at (a compact JWS).
    IdToken(&'a str),
}

impl std::fmt::Debug for FactorResponse<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FactorResponse::{}(<redacted>)", self.kind())
    }
}

impl FactorResponse<'_> {
    /// The factor this answers.
    pub fn kind(&self) -> FactorKind {
        match self {
            FactorResponse::Password(_) => FactorKind::Password,
            FactorResponse::Totp(_) => FactorKind::Totp,
            FactorResponse::RecoveryCode(_) => FactorKind::RecoveryCodes,
            FactorResponse::EmailCode(_) => FactorKind::EmailOtp,
            FactorResponse::Passkey(_) => FactorKind::Passkey,
            FactorResponse::IdToken(_) => FactorKind::OidcIdToken,
        }
    }
}

/// Where a login flow stands, as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginStatus {
    /// Waiting for a factor.
    AwaitingFactor {
        /// The index of the step awaited (0 for the first).
        step: usize,
        /// The factors that step accepts.
        accepts: Vec<FactorKind>,
        /// When the flow stops being usable.
        expires_at: DateTime<Utc>,
    },
    /// Signed in: every step of a method passed.
    Authenticated(Authentication),
    /// Ended without a login.
    Denied(DenyReason),
    /// Ended: the account is locked until then.
    Locked {
        /// When the lock lifts.
        until: DateTime<Utc>,
    },
    /// Ended: the flow is too old.
    Expired,
}

impl LoginStatus {
    /// The status of a flow (stored under `flow`) in `state`.
    fn of(state: &LoginState, expires_at: DateTime<Utc>, flow: &TokenHash) -> Self {
        match state {
            LoginState::AwaitingFactor(w) => LoginStatus::AwaitingFactor {
                step: w.step(),
                accepts: w.accepts(),
                expires_at,
            },
            LoginState::Authenticated(a) => {
                LoginStatus::Authenticated(Authentication::from_flow_key(a.clone(), *flow))
            }
            LoginState::Denied(r) => LoginStatus::Denied(*r),
            LoginState::Locked { until } => LoginStatus::Locked { until: *until },
            LoginState::Expired => LoginStatus::Expired,
        }
    }
}

/// The result of submitting one factor: the flow after it and, when the
/// factor was refused, why. Every refusal of a well-formed submission has
/// this one shape (malformed input is an [`Error::InvalidInput`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The flow after it.
    pub status: LoginStatus,
    /// Why the factor was refused (`None`: it was accepted).
    pub refused: Option<Refusal>,
}

impl Submission {
    /// Whether the factor was accepted.
    pub fn accepted(&self) -> bool {
        self.refused.is_none()
    }
}

/// Why a submitted factor was refused: a reason a caller may show. None
/// of them tells an unknown account from a known one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The secret is wrong, already used or expired; or the account is
    /// unknown, locked or inactive (the flow's status says whether it
    /// ended). Counts toward the flow's and the account's limits.
    Incorrect,
    /// The current step does not accept this factor (or it already passed
    /// in this flow). The flow is unchanged and nothing is counted.
    NotExpected,
    /// The factor needs a challenge first (a passkey challenge, an emailed
    /// code) and none is pending. The flow is unchanged.
    ChallengeMissing,
}

impl Refusal {
    /// A stable snake_case code for APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Incorrect => "incorrect",
            Refusal::NotExpected => "not_expected",
            Refusal::ChallengeMissing => "challenge_missing",
        }
    }
}

/// What one submission did, for [`AuthnService::finish_submit`]: the event
/// for the flow, the factor, why it was refused (for the audit log only),
/// and whom the audit event names.
pub(super) struct Outcome {
    pub(super) event: FlowEvent,
    pub(super) kind: FactorKind,
    pub(super) refusal: Option<AuditReason>,
    /// The user the audit event names: the flow's, or one a verified
    /// passkey named; never one taken from unverified input.
    pub(super) audit_user: Option<UserId>,
}

impl<S> AuthnService<S>
where
    S: Store,
{
    pub(super) async fn tenant_methods(&self, tenant: TenantId) -> Result<Vec<AuthMethod>> {
        Ok(self
            .store
            .methods(MethodScope::Tenant(tenant))
            .await
            .map_err(store_err)?
            .into_iter()
            .filter(|r| r.enabled)
            .map(|r| r.method)
            .collect())
    }

    /// Create a flow in `state`, created `now`, alive for the configured
    /// TTL. Returns its token (for the client) and the record.
    pub(super) async fn new_flow(
        &self,
        tenant: TenantId,
        user: Option<UserId>,
        state: FlowState,
        now: DateTime<Utc>,
    ) -> Result<(SecretToken, FlowRecord)> {
        let (token, record) = self.draft_flow(tenant, user, state, now)?;
        self.store.create_flow(&record).await.map_err(store_err)?;
        Ok((token, record))
    }

    /// A flow as [`new_flow`](Self::new_flow) makes it, not stored yet.
    fn draft_flow(
        &self,
        tenant: TenantId,
        user: Option<UserId>,
        state: FlowState,
        now: DateTime<Utc>,
    ) -> Result<(SecretToken, FlowRecord)> {
        let (token, key) = TokenKind::FLOW.issue(&self.env)?;
        let ttl = chrono::Duration::from_std(self.config.flow_ttl)
            .map_err(|_| InvalidInput::new("flow ttl", "out of range"))?;
        let expires_at = now
            .checked_add_signed(ttl)
            .ok_or(InvalidInput::new("flow ttl", "out of range"))?;
        let record = FlowRecord {
            key,
            tenant_id: tenant,
            user_id: user,
            state,
            created_at: now,
            expires_at,
        };
        Ok((token, record))
    }

    /// Store a new login flow awaiting its first factor.
    pub(super) async fn start_login(
        &self,
        tenant: TenantId,
        w: Awaiting,
        now: DateTime<Utc>,
    ) -> Result<(SecretToken, LoginStatus)> {
        let user = w.user;
        let state = LoginState::AwaitingFactor(w);
        let login = FlowState::Login(state.clone());
        let (token, record) = self.new_flow(tenant, user, login, now).await?;
        Ok((
            token,
            LoginStatus::of(&state, record.expires_at, &record.key),
        ))
    }

    /// Begin a login for `identifier` in `tenant`, with a chosen method or
    /// (`None`) with every method: the factors submitted then decide which
    /// method completes.
    ///
    /// The answer does not depend on the account: known, unknown, inactive
    /// or locked, and whatever its own methods, the first step shown is the
    /// tenant's (the first-step factors of its enabled methods, or of the
    /// chosen one), and a method is chosen by a name the tenant has. A
    /// user's own methods ([`MethodScope::User`]) apply from the first
    /// submission on: a factor the tenant's first step accepts but none of
    /// the user's methods does is refused as incorrect, like a wrong one. A
    /// user-only method (a name the tenant lacks) is usable when no method
    /// is chosen and its first step accepts a factor the tenant's does.
    ///
    /// An unknown identifier gets a flow that looks like any other and
    /// never succeeds. Returns the flow token (give it to the client) and
    /// the first step.
    pub async fn begin_login(
        &self,
        tenant: TenantId,
        identifier: &str,
        method: Option<&str>,
        client: &ClientInfo,
    ) -> Result<(SecretToken, LoginStatus)> {
        let rq = self.env.request(client);
        let tenant = self.tenant(tenant).await?;
        let (w, _) = self.prepare_login(&tenant, identifier, method).await?;
        self.start_login(tenant.id, w, rq.now).await
    }

    /// Begin a login and submit its password, in one call: the answers,
    /// audit events, counts and timing of [`begin_login`](Self::begin_login)
    /// then [`submit`](Self::submit) with [`FactorResponse::Password`], for
    /// known and unknown identifiers alike, with fewer writes.
    ///
    /// When the password completes a method, no flow is stored: the proof
    /// in [`LoginStatus::Authenticated`] is good once, like any other (its
    /// clones share one mark, set by the first
    /// [`SessionService::issue`](crate::SessionService::issue)), within the
    /// flow TTL, and in this process only. Otherwise the flow is stored as
    /// the password left it (awaiting the next factor, or ended) and its
    /// token returned: `None` exactly when no flow was stored.
    pub async fn login_with_password(
        &self,
        tenant: TenantId,
        identifier: &str,
        method: Option<&str>,
        password: &str,
        client: &ClientInfo,
    ) -> Result<(Option<SecretToken>, Submission)> {
        let rq = self.env.request(client);
        let tenant = self.tenant(tenant).await?;
        let (w, user) = self.prepare_login(&tenant, identifier, method).await?;
        let state = FlowState::Login(LoginState::AwaitingFactor(w.clone()));
        let (token, record) = self.draft_flow(tenant.id, w.user, state, rq.now)?;
        let mut slot = FlowSlot::Unstored(record);
        let response = FactorResponse::Password(password);
        let submission = self
            .submit_to(&tenant, &mut slot, w, response, user, rq)
            .await?;
        let stored = matches!(slot, FlowSlot::Stored(_));
        Ok((stored.then_some(token), submission))
    }

    /// The first step of a login for `identifier` (with the chosen method,
    /// if any) and the account it names, if any.
    async fn prepare_login(
        &self,
        tenant: &Tenant,
        identifier: &str,
        method: Option<&str>,
    ) -> Result<(Awaiting, Option<User>)> {
        let identifier = Identifier::parse(identifier)?;
        let method = method.map(MethodName::parse).transpose()?;
        let mut candidates = self.tenant_methods(tenant.id).await?;
        if let Some(name) = &method {
            candidates.retain(|m| &m.name == name);
            if candidates.is_empty() {
                return Err(
                    InvalidInput::new("method", format!("no enabled method `{name}`")).into(),
                );
            }
        }
        if candidates.is_empty() {
            return Err(Error::NoUsableMethod);
        }
        let user = self
            .store
            .find_user(tenant.id, &identifier)
            .await
            .map_err(store_err)?;
        let decoy_tag = match &user {
            Some(_) => None,
            None => Some(self.identifier_tag(tenant, &identifier)?),
        };
        let w = Awaiting {
            decoy_tag,
            ..Awaiting::start(user.as_ref().map(|u| u.id), candidates)
        };
        Ok((w, user))
    }

    /// Begin a step-up for a signed-in user: a flow whose one step accepts
    /// any of `kinds`. Its [`Authentication`] proves fresh factors; merge it
    /// into the earlier one with [`Authentication::merge`].
    pub async fn begin_step_up(
        &self,
        tenant: TenantId,
        user: UserId,
        kinds: &[FactorKind],
        client: &ClientInfo,
    ) -> Result<(SecretToken, LoginStatus)> {
        let rq = self.env.request(client);
        let tenant = self.tenant(tenant).await?;
        self.user(tenant.id, user).await?;
        let method = AuthMethod::new(MethodName::STEP_UP, vec![FactorStep::AnyOf(kinds.to_vec())])?;
        let w = Awaiting::start(Some(user), vec![method]);
        self.start_login(tenant.id, w, rq.now).await
    }

    /// Begin a username-less login with a discoverable passkey. Returns
    /// the flow token, the first step and the challenge for the browser.
    pub async fn begin_passkey_login(
        &self,
        tenant: TenantId,
        client: &ClientInfo,
    ) -> Result<(SecretToken, LoginStatus, RequestChallengeResponse)> {
        let rq = self.env.request(client);
        let tenant = self.tenant(tenant).await?;
        let webauthn = passkey::webauthn_for(&self.passkey_settings(tenant.id).await?)?;
        let mut candidates = self.tenant_methods(tenant.id).await?;
        candidates.retain(|m| {
            m.steps
                .first()
                .is_some_and(|s| s.admits(FactorKind::Passkey))
        });
        if candidates.is_empty() {
            return Err(Error::NoUsableMethod);
        }
        let (challenge, ceremony) = webauthn
            .start_discoverable_authentication()
            .map_err(Error::Passkey)?;
        let w = Awaiting {
            discoverable: true,
            passkey: Some(PasskeyChallenge::Discoverable(ceremony)),
            ..Awaiting::start(None, candidates)
        };
        let (token, status) = self.start_login(tenant.id, w, rq.now).await?;
        Ok((token, status, challenge))
    }

    /// Load a login flow that is still awaiting a factor, refusing malformed,
    /// unknown, foreign, ended and expired flows (an expired one is marked
    /// so, and that is audited once). A token that names no flow of the
    /// tenant (malformed, unknown, foreign) or an ended one writes no audit
    /// row: anyone can send those, and each must not cost a row.
    pub(super) async fn open_flow(
        &self,
        tenant: &Tenant,
        token: &str,
        rq: Request<'_>,
    ) -> Result<(Versioned<FlowRecord>, Awaiting)> {
        let key: TokenHash = TokenKind::FLOW.parse(token)?;
        let Some(found) = self.store.flow(tenant.id, &key).await.map_err(store_err)? else {
            return Err(Error::FlowNotFound);
        };
        let FlowState::Login(state) = &found.value.state else {
            return Err(Error::FlowNotFound);
        };
        let LoginState::AwaitingFactor(w) = state.clone() else {
            return Err(Error::FlowEnded);
        };
        if rq.now >= found.value.expires_at {
            let mut expired = found.value.clone();
            expired.state = FlowState::Login(LoginState::Expired);
            // Losing this race changes nothing: the flow is over either way
            // (and the winner audits it).
            let ended = self
                .store
                .compare_and_save_flow(found.version, &expired)
                .await
                .map_err(store_err)?;
            if ended {
                self.audit(
                    self.auth_failure(tenant.id, found.value.user_id, rq)
                        .map(|e| e.with_detail(AuditReason::ExpiredFlow)),
                )
                .await?;
            }
            return Err(Error::FlowExpired);
        }
        Ok((found, w))
    }

    pub(super) async fn save_flow(
        &self,
        found: &Versioned<FlowRecord>,
        state: LoginState,
        user: Option<UserId>,
    ) -> Result<()> {
        let mut record = found.value.clone();
        record.state = FlowState::Login(state);
        record.user_id = user.or(record.user_id);
        let saved = self
            .store
            .compare_and_save_flow(found.version, &record)
            .await
            .map_err(store_err)?;
        Error::unless_lost(saved, "the login flow changed meanwhile")
    }

    /// Submit one factor to a flow.
    ///
    /// Errors, with no change to the flow or the account: a malformed,
    /// unknown, foreign, ended or expired flow ([`Error::FlowNotFound`],
    /// [`Error::FlowEnded`], [`Error::FlowExpired`]); a malformed answer
    /// (a code that is not 6 to 8 digits, or not the length of the tenant's
    /// email codes; bad JSON: [`Error::InvalidInput`], audited).
    ///
    /// Every other refusal is an `Ok` [`Submission`] whose
    /// [`refused`](Submission::refused) says why: a factor the current
    /// step does not accept ([`Refusal::NotExpected`]) or whose challenge
    /// was never issued ([`Refusal::ChallengeMissing`]) leaves the flow
    /// unchanged; otherwise the factor is checked and a wrong one
    /// ([`Refusal::Incorrect`]) counts toward the flow's limit and the
    /// account's lockout. A right one advances the flow, which yields
    /// [`LoginStatus::Authenticated`] only when every step of one method
    /// has passed.
    ///
    /// The answer never tells an unknown, inactive or locked account from
    /// a known one with a wrong factor: all three are [`Refusal::Incorrect`]
    /// with the flow still awaiting (until its own failure limit), after
    /// the same hashing work (one argon2 computation for a password). Why
    /// is in the audit log only ([`AuditReason::Inactive`],
    /// [`AuditReason::Locked`], [`AuditReason::Blocked`], ...).
    pub async fn submit(
        &self,
        tenant: TenantId,
        flow: &str,
        response: FactorResponse<'_>,
        client: &ClientInfo,
    ) -> Result<Submission> {
        let rq = self.env.request(client);
        let tenant = self.tenant(tenant).await?;
        let (found, w) = self.open_flow(&tenant, flow, rq).await?;
        let mut slot = FlowSlot::Stored(found);
        self.submit_to(&tenant, &mut slot, w, response, None, rq)
            .await
    }

    /// Submit `response` to the flow in `found`, awaiting `w`; `known` is
    /// the flow's account when the caller has just read it. An unstored
    /// flow is stored (and `found` becomes its stored version) unless the
    /// response completes a method.
    async fn submit_to(
        &self,
        tenant: &Tenant,
        found: &mut FlowSlot,
        mut w: Awaiting,
        response: FactorResponse<'_>,
        known: Option<User>,
        rq: Request<'_>,
    ) -> Result<Submission> {
        let kind = response.kind();
        let flow_user = found.record().user_id;
        let audit_refusal = |detail: AuditReason| async move {
            self.audit(
                self.auth_failure(tenant.id, flow_user, rq)
                    .map(|e| e.with_factor(kind).with_detail(detail)),
            )
            .await
        };
        let (expires_at, flow_key) = (found.record().expires_at, found.record().key);
        let unchanged = |w: Awaiting, why: Refusal| Submission {
            status: LoginStatus::of(&LoginState::AwaitingFactor(w), expires_at, &flow_key),
            refused: Some(why),
        };
        if !w.admits(kind) {
            self.store_unstored(found).await?;
            audit_refusal(AuditReason::OutOfOrder).await?;
            return Ok(unchanged(w, Refusal::NotExpected));
        }
        if let FactorResponse::IdToken(token) = response {
            if w.federated.is_none() {
                self.store_unstored(found).await?;
                audit_refusal(AuditReason::NoChallenge).await?;
                return Ok(unchanged(w, Refusal::ChallengeMissing));
            }
            return self.submit_federated(tenant, found, w, token, rq).await;
        }
        let parsed = match self.parse_response(tenant.id, response).await {
            Ok(p) => p,
            Err(e) => {
                audit_refusal(AuditReason::Malformed).await?;
                return Err(e);
            }
        };
        let no_challenge = match &parsed {
            Parsed::Passkey(_) => w.passkey.is_none(),
            Parsed::Email(_) => w.email_code.as_ref().is_none_or(|p| !p.is_live()),
            _ => false,
        };
        if no_challenge {
            self.store_unstored(found).await?;
            audit_refusal(AuditReason::NoChallenge).await?;
            return Ok(unchanged(w, Refusal::ChallengeMissing));
        }
        if w.discoverable
            && let Parsed::Passkey(cred) = parsed
        {
            return self.submit_discoverable(tenant, found, w, *cred, rq).await;
        }

        let named = match (w.user, known) {
            (Some(id), Some(u)) if u.id == id => Some(u),
            (Some(id), _) => self
                .store
                .get_user(tenant.id, id)
                .await
                .map_err(store_err)?,
            (None, _) => None,
        };
        // Why the factor is checked as for nobody, though the account is
        // known: it may not sign in, or none of its methods takes the factor.
        let mut hidden = None;
        let mut own_methods = None;
        if let Some(u) = &named {
            if let Some(event) = self.account_block(tenant, u, rq.now).await? {
                hidden = Some(match event {
                    FlowEvent::Locked { .. } => AuditReason::Locked,
                    _ => AuditReason::Inactive,
                });
            } else if w.passed.is_empty() {
                let mine = self.own_first_methods(tenant, u, &w, kind).await?;
                if mine.is_empty() {
                    hidden = Some(AuditReason::OutOfOrder);
                } else {
                    own_methods = Some(mine);
                }
            }
        }
        let checked = named.as_ref().filter(|_| hidden.is_none());
        let check = self
            .check_factor(tenant, checked, &mut w, parsed, rq)
            .await?;
        let audit_user = w.user;
        let outcome = |event, refusal| Outcome {
            event,
            kind,
            refusal,
            audit_user,
        };
        match check {
            Check::Failed(detail) => {
                // Only a factor really checked for a known account counts
                // toward its lockout; the lock itself is not shown.
                if let Some(u) = checked {
                    self.count_failure(tenant, u.id, kind, rq).await?;
                }
                let why = hidden.unwrap_or(detail);
                let done = outcome(FlowEvent::Failed, Some(why));
                self.finish_submit(tenant, found, w, done, rq).await
            }
            Check::Passed => {
                let Some(u) = checked else {
                    let why = Some(AuditReason::UnknownIdentifier);
                    let done = outcome(FlowEvent::Failed, why);
                    return self.finish_submit(tenant, found, w, done, rq).await;
                };
                // Re-check: a suspension or lock may have landed meanwhile.
                let fresh = self.user(tenant.id, u.id).await?;
                if self.account_block(tenant, &fresh, rq.now).await?.is_some() {
                    let done = outcome(FlowEvent::Failed, Some(AuditReason::Blocked));
                    return self.finish_submit(tenant, found, w, done, rq).await;
                }
                if let Some(mine) = own_methods {
                    // From the first passed step on, the user's own methods.
                    w.candidates = mine;
                }
                let done = outcome(FlowEvent::Passed { kind, at: rq.now }, None);
                self.finish_submit(tenant, found, w, done, rq).await
            }
        }
    }

    /// The methods of `user` whose first step accepts `kind`, among those
    /// the flow offers: the user's own version of each tenant method the
    /// flow names; when the flow offers every enabled tenant method (none
    /// was chosen), the user's own methods the tenant lacks; and the flow's
    /// methods that are no tenant's (a step-up's), as they are.
    async fn own_first_methods(
        &self,
        tenant: &Tenant,
        user: &User,
        w: &Awaiting,
        kind: FactorKind,
    ) -> Result<Vec<AuthMethod>> {
        let records = self
            .store
            .methods(MethodScope::Tenant(tenant.id))
            .await
            .map_err(store_err)?;
        let is_tenants = |n: &MethodName| records.iter().any(|r| &r.method.name == n);
        let offered = |n: &MethodName| w.candidates.iter().any(|m| &m.name == n);
        let unchosen = records
            .iter()
            .filter(|r| r.enabled)
            .all(|r| offered(&r.method.name));
        let mut mine = self
            .store
            .available_methods(tenant.id, user.id)
            .await
            .map_err(store_err)?;
        mine.retain(|m| offered(&m.name) || (unchosen && !is_tenants(&m.name)));
        mine.extend(
            w.candidates
                .iter()
                .filter(|m| !is_tenants(&m.name) && !mine.iter().any(|o| o.name == m.name))
                .cloned()
                .collect::<Vec<_>>(),
        );
        mine.retain(|m| m.steps.first().is_some_and(|s| s.admits(kind)));
        Ok(mine)
    }

    pub(super) async fn finish_submit(
        &self,
        tenant: &Tenant,
        found: &mut FlowSlot,
        w: Awaiting,
        done: Outcome,
        rq: Request<'_>,
    ) -> Result<Submission> {
        let user = w.user;
        let state = LoginState::AwaitingFactor(w).advance(
            done.event,
            tenant.id,
            self.config.flow_max_failures,
        )?;
        let unstored_proof = match (&*found, &state) {
            // Finished within one call: nothing to store, the proof is its own.
            (FlowSlot::Unstored(r), LoginState::Authenticated(a)) => {
                Some(Authentication::unstored(a.clone(), r.expires_at))
            }
            _ => None,
        };
        if unstored_proof.is_none() {
            match found {
                FlowSlot::Unstored(record) => {
                    record.state = FlowState::Login(state.clone());
                    record.user_id = user.or(record.user_id);
                    self.store_unstored(found).await?;
                }
                FlowSlot::Stored(v) => self.save_flow(v, state.clone(), user).await?,
            }
        }
        let event = match done.refusal {
            None => self.success(tenant.id, done.audit_user, AuditKind::Authentication, rq),
            Some(why) => self
                .auth_failure(tenant.id, done.audit_user, rq)
                .map(|e| e.with_detail(why)),
        }?
        .with_factor(done.kind);
        if let LoginState::Authenticated(a) = &state {
            // The factor's event, the login's, the forgotten failures and
            // the login time: one write.
            let login = self
                .success(tenant.id, Some(a.user_id), AuditKind::LoginSucceeded, rq)?
                .with_detail(AuditDetail::Method(a.method.clone()));
            self.complete_login(tenant, a.user_id, &[event, login], rq)
                .await?;
        } else {
            self.store.record_event(&event).await.map_err(store_err)?;
        }
        let record = found.record();
        let status = match unstored_proof {
            Some(proof) => LoginStatus::Authenticated(proof),
            None => LoginStatus::of(&state, record.expires_at, &record.key),
        };
        Ok(Submission {
            status,
            refused: done.refusal.map(|_| Refusal::Incorrect),
        })
    }

    /// Store a flow not stored yet (it becomes [`FlowSlot::Stored`] at its
    /// first version); a stored one is left as it is.
    async fn store_unstored(&self, found: &mut FlowSlot) -> Result<()> {
        if let FlowSlot::Unstored(record) = found {
            self.store.create_flow(record).await.map_err(store_err)?;
            // A new flow is stored at version 1 (the FlowStore contract).
            let stored = Versioned {
                value: record.clone(),
                version: 1,
            };
            *found = FlowSlot::Stored(stored);
        }
        Ok(())
    }
}

/// A login flow being answered: stored (at a version, for the
/// compare-and-save that advances it), or begun in this very call and not
/// stored yet ([`AuthnService::login_with_password`]).
pub(super) enum FlowSlot {
    Stored(Versioned<FlowRecord>),
    Unstored(FlowRecord),
}

impl FlowSlot {
    pub(super) fn record(&self) -> &FlowRecord {
        match self {
            FlowSlot::Stored(v) => &v.value,
            FlowSlot::Unstored(r) => r,
        }
    }
}
