//! The login engine: begin a flow, answer challenges, submit factors.

use crate::store::Store;
use chrono::{DateTime, Utc};
use webauthn_rs::prelude::{PublicKeyCredential, RequestChallengeResponse};

use super::AuthnService;
use crate::audit::{AuditDetail, AuditKind, AuditReason};
use crate::env::Request;
use crate::error::{Error, InvalidInput, Result, store_err};
use crate::factor::{
    AuthMethod, Check, EmailOtpCredential, FactorKind, FactorSettings, FactorStep, MethodName,
    MethodScope, PasskeysCredential, PendingCode, Versioned, check_digits, credential, email_code,
    normalize_password, passkey, recovery, totp,
};
use crate::flow::{
    Authentication, Awaiting, DenyReason, FlowEvent, FlowRecord, FlowState, LoginState,
    PasskeyChallenge,
};
use crate::ids::{TenantId, UserId};
use crate::model::{ClientInfo, Identifier, Tenant, User};
use crate::notice::{Notice, NoticeSecret};
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
    fn of(state: &LoginState, expires_at: DateTime<Utc>) -> Self {
        match state {
            LoginState::AwaitingFactor(w) => LoginStatus::AwaitingFactor {
                step: w.step(),
                accepts: w.accepts(),
                expires_at,
            },
            LoginState::Authenticated(a) => {
                LoginStatus::Authenticated(Authentication::from_flow(a.clone()))
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

impl<S> AuthnService<S>
where
    S: Store,
{
    async fn tenant_methods(&self, tenant: TenantId) -> Result<Vec<AuthMethod>> {
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
        let (token, key) = TokenKind::FLOW.issue(&self.env)?;
        let ttl = chrono::Duration::from_std(self.config.flow_ttl)
            .unwrap_or(chrono::Duration::minutes(5));
        let record = FlowRecord {
            key,
            tenant_id: tenant,
            user_id: user,
            state,
            created_at: now,
            expires_at: now + ttl,
        };
        self.store.create_flow(&record).await.map_err(store_err)?;
        Ok((token, record))
    }

    /// Store a new login flow awaiting its first factor.
    async fn start_login(
        &self,
        tenant: TenantId,
        w: Awaiting,
        now: DateTime<Utc>,
    ) -> Result<(SecretToken, LoginStatus)> {
        let user = w.user;
        let state = LoginState::AwaitingFactor(w);
        let login = FlowState::Login(state.clone());
        let (token, record) = self.new_flow(tenant, user, login, now).await?;
        Ok((token, LoginStatus::of(&state, record.expires_at)))
    }

    /// Begin a login for `identifier` in `tenant`, with a chosen method or
    /// (`None`) with every method the user may use: the factors submitted
    /// then decide which method completes.
    ///
    /// An unknown identifier still gets a flow, which looks like any other
    /// and never succeeds. Returns the flow token (give it to the client)
    /// and the first step.
    pub async fn begin_login(
        &self,
        tenant: TenantId,
        identifier: &str,
        method: Option<&str>,
        client: &ClientInfo,
    ) -> Result<(SecretToken, LoginStatus)> {
        let rq = self.env.request(client);
        let tenant = self.tenant(tenant).await?;
        let identifier = Identifier::parse(identifier)?;
        let method = method.map(MethodName::parse).transpose()?;
        let user = self
            .store
            .find_user(tenant.id, &identifier)
            .await
            .map_err(store_err)?;
        let mut candidates = match &user {
            Some(u) => self
                .store
                .available_methods(tenant.id, u.id)
                .await
                .map_err(store_err)?,
            None => self.tenant_methods(tenant.id).await?,
        };
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
        let w = Awaiting::start(user.map(|u| u.id), candidates);
        self.start_login(tenant.id, w, rq.now).await
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
        let method = AuthMethod::new("step-up", vec![FactorStep::AnyOf(kinds.to_vec())])?;
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
    /// so). Bad input is audited.
    async fn open_flow(
        &self,
        tenant: &Tenant,
        token: &str,
        rq: Request<'_>,
    ) -> Result<(Versioned<FlowRecord>, Awaiting)> {
        let refuse = |detail: AuditReason, err: Error| async move {
            self.audit(
                self.auth_failure(tenant.id, None, rq)
                    .map(|e| e.with_detail(detail)),
            )
            .await?;
            Err(err)
        };
        let key: TokenHash = match TokenKind::FLOW.parse(token) {
            Ok(k) => k,
            Err(e) => return refuse(AuditReason::MalformedFlow, e.into()).await,
        };
        let Some(found) = self.store.flow(tenant.id, &key).await.map_err(store_err)? else {
            return refuse(AuditReason::UnknownFlow, Error::FlowNotFound).await;
        };
        let FlowState::Login(state) = &found.value.state else {
            return refuse(AuditReason::UnknownFlow, Error::FlowNotFound).await;
        };
        let LoginState::AwaitingFactor(w) = state.clone() else {
            return refuse(AuditReason::FlowEnded, Error::FlowEnded).await;
        };
        if rq.now >= found.value.expires_at {
            let mut expired = found.value.clone();
            expired.state = FlowState::Login(LoginState::Expired);
            // Losing this race changes nothing: the flow is over either way.
            let _ = self
                .store
                .compare_and_save_flow(found.version, &expired)
                .await
                .map_err(store_err)?;
            return refuse(AuditReason::ExpiredFlow, Error::FlowExpired).await;
        }
        Ok((found, w))
    }

    async fn save_flow(
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

    /// Issue a passkey challenge for the current step of a flow (for a
    /// user who named themselves). The challenge is kept in the flow and is
    /// good for one answer.
    pub async fn passkey_challenge(
        &self,
        tenant: TenantId,
        flow: &str,
        client: &ClientInfo,
    ) -> Result<RequestChallengeResponse> {
        let rq = self.env.request(client);
        let tenant = self.tenant(tenant).await?;
        let (found, mut w) = self.open_flow(&tenant, flow, rq).await?;
        if !w.admits(FactorKind::Passkey) || w.discoverable {
            return Err(Error::FactorNotExpected);
        }
        let webauthn = passkey::webauthn_for(&self.passkey_settings(tenant.id).await?)?;
        let keys = match w.user {
            Some(user) => credential::<PasskeysCredential, _>(&self.store, tenant.id, user)
                .await?
                .map(|v| v.value.keys)
                .unwrap_or_default(),
            None => Vec::new(),
        };
        if keys.is_empty() {
            return Err(Error::FactorNotEnrolled(FactorKind::Passkey));
        }
        let passkeys: Vec<_> = keys.into_iter().map(|k| k.passkey).collect();
        let (challenge, ceremony) = webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(Error::Passkey)?;
        w.passkey = Some(PasskeyChallenge::Known(ceremony));
        let user = w.user;
        self.save_flow(&found, LoginState::AwaitingFactor(w), user)
            .await?;
        Ok(challenge)
    }

    /// Send a one-time code by email for the current step of a flow. A new
    /// code replaces any earlier one. For an unknown identifier or a user
    /// without a confirmed address nothing is sent, and the answer is the
    /// same.
    pub async fn send_email_code(
        &self,
        tenant: TenantId,
        flow: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        let rq = self.env.request(client);
        let tenant = self.tenant(tenant).await?;
        let (found, mut w) = self.open_flow(&tenant, flow, rq).await?;
        if !w.admits(FactorKind::EmailOtp) {
            return Err(Error::FactorNotExpected);
        }
        let settings = match self
            .tenant_settings(tenant.id, FactorKind::EmailOtp)
            .await?
        {
            Some(FactorSettings::EmailOtp(s)) => s,
            _ => {
                return Err(
                    InvalidInput::new("factor", "this tenant does not offer email codes").into(),
                );
            }
        };
        let address = match w.user {
            Some(user) => credential::<EmailOtpCredential, _>(&self.store, tenant.id, user)
                .await?
                .filter(|v| v.value.confirmed)
                .map(|v| v.value.address),
            None => None,
        };
        let (code, pending) = PendingCode::issue(&self.env, &settings, rq.now)?;
        let expires_at = pending.expires_at;
        w.email_code = Some(pending);
        let user = w.user;
        self.save_flow(&found, LoginState::AwaitingFactor(w), user)
            .await?;
        if let Some(to) = address {
            let code = NoticeSecret::new(code);
            self.notify(&tenant, &to, Notice::LoginCode { code, expires_at })
                .await?;
        }
        Ok(())
    }

    /// Submit one factor to a flow.
    ///
    /// Errors, with no change to the flow or the account and an audit
    /// event: a malformed, unknown, foreign, ended or expired flow
    /// ([`Error::FlowNotFound`], [`Error::FlowEnded`], [`Error::FlowExpired`]);
    /// a malformed answer (wrong-length or non-digit code, bad JSON:
    /// [`Error::InvalidInput`]).
    ///
    /// Every other refusal is an `Ok` [`Submission`] whose
    /// [`refused`](Submission::refused) says why: a factor the current
    /// step does not accept ([`Refusal::NotExpected`]) or whose challenge
    /// was never issued ([`Refusal::ChallengeMissing`]) leaves the flow
    /// unchanged; otherwise the account is checked (inactive or locked ends
    /// the flow), the factor is verified, a wrong one
    /// ([`Refusal::Incorrect`]) counts toward both the flow's and the
    /// account's limits, and a right one advances the flow, which yields
    /// [`LoginStatus::Authenticated`] only when every step of one method
    /// has passed.
    pub async fn submit(
        &self,
        tenant: TenantId,
        flow: &str,
        response: FactorResponse<'_>,
        client: &ClientInfo,
    ) -> Result<Submission> {
        let rq = self.env.request(client);
        let tenant = self.tenant(tenant).await?;
        let (found, mut w) = self.open_flow(&tenant, flow, rq).await?;
        let kind = response.kind();
        let flow_user = found.value.user_id;
        let audit_refusal = |detail: AuditReason| async move {
            self.audit(
                self.auth_failure(tenant.id, flow_user, rq)
                    .map(|e| e.with_factor(kind).with_detail(detail)),
            )
            .await
        };
        let expires_at = found.value.expires_at;
        let unchanged = |w: Awaiting, why: Refusal| Submission {
            status: LoginStatus::of(&LoginState::AwaitingFactor(w), expires_at),
            refused: Some(why),
        };
        if !w.admits(kind) {
            audit_refusal(AuditReason::OutOfOrder).await?;
            return Ok(unchanged(w, Refusal::NotExpected));
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
            Parsed::Email(_) => w.email_code.is_none(),
            _ => false,
        };
        if no_challenge {
            audit_refusal(AuditReason::NoChallenge).await?;
            return Ok(unchanged(w, Refusal::ChallengeMissing));
        }

        // A discoverable passkey names its user.
        let mut user = match w.user {
            Some(id) => self
                .store
                .get_user(tenant.id, id)
                .await
                .map_err(store_err)?,
            None => None,
        };
        if w.discoverable
            && let Parsed::Passkey(cred) = &parsed
            && let Some(named) = self.identify_passkey_user(&tenant, cred).await?
        {
            let mut methods = self
                .store
                .available_methods(tenant.id, named.id)
                .await
                .map_err(store_err)?;
            methods.retain(|m| {
                m.steps
                    .first()
                    .is_some_and(|s| s.admits(FactorKind::Passkey))
            });
            w.user = Some(named.id);
            w.candidates = methods;
            user = Some(named);
        }
        if let Some(u) = &user
            && let Some(event) = self.account_block(&tenant, u, rq.now).await?
        {
            let why = if matches!(event, FlowEvent::Locked { .. }) {
                AuditReason::Locked
            } else {
                AuditReason::Inactive
            };
            return self
                .finish_submit(&tenant, &found, w, event, kind, Some(why), rq)
                .await;
        }

        let check = self
            .check_factor(&tenant, user.as_ref(), &mut w, parsed, rq)
            .await?;
        match check {
            Check::Failed(detail) => {
                let mut event = FlowEvent::Failed;
                if let Some(u) = &user {
                    let record = self.count_failure(&tenant, u.id, kind, rq).await?;
                    if let Some(until) = record.locked_at(rq.now) {
                        event = FlowEvent::Locked { until };
                    }
                }
                self.finish_submit(&tenant, &found, w, event, kind, Some(detail), rq)
                    .await
            }
            Check::Passed => {
                // Re-check: a suspension or lock may have landed meanwhile.
                let Some(u) = user else {
                    let why = Some(AuditReason::UnknownIdentifier);
                    return self
                        .finish_submit(&tenant, &found, w, FlowEvent::Failed, kind, why, rq)
                        .await;
                };
                let fresh = self.user(tenant.id, u.id).await?;
                if let Some(event) = self.account_block(&tenant, &fresh, rq.now).await? {
                    return self
                        .finish_submit(
                            &tenant,
                            &found,
                            w,
                            event,
                            kind,
                            Some(AuditReason::Blocked),
                            rq,
                        )
                        .await;
                }
                let event = FlowEvent::Passed { kind, at: rq.now };
                self.finish_submit(&tenant, &found, w, event, kind, None, rq)
                    .await
            }
        }
    }

    #[expect(clippy::too_many_arguments, reason = "one private step of submit")]
    async fn finish_submit(
        &self,
        tenant: &Tenant,
        found: &Versioned<FlowRecord>,
        w: Awaiting,
        event: FlowEvent,
        kind: FactorKind,
        refusal: Option<AuditReason>,
        rq: Request<'_>,
    ) -> Result<Submission> {
        let user = w.user;
        let state = LoginState::AwaitingFactor(w).advance(
            event,
            tenant.id,
            self.config.flow_max_failures,
        )?;
        self.save_flow(found, state.clone(), user).await?;
        let event = match refusal {
            None => self.success(tenant.id, user, AuditKind::Authentication, rq),
            Some(why) => self
                .auth_failure(tenant.id, user, rq)
                .map(|e| e.with_detail(why)),
        };
        self.audit(event.map(|e| e.with_factor(kind))).await?;
        if let LoginState::Authenticated(a) = &state {
            let u = self.user(tenant.id, a.user_id).await?;
            self.complete_login(tenant, &u, rq).await?;
            self.audit(
                self.success(tenant.id, Some(a.user_id), AuditKind::LoginSucceeded, rq)
                    .map(|e| e.with_detail(AuditDetail::Method(a.method.clone()))),
            )
            .await?;
        }
        Ok(Submission {
            status: LoginStatus::of(&state, found.value.expires_at),
            refused: refusal.map(|_| Refusal::Incorrect),
        })
    }

    async fn identify_passkey_user(
        &self,
        tenant: &Tenant,
        cred: &PublicKeyCredential,
    ) -> Result<Option<User>> {
        let webauthn = passkey::webauthn_for(&self.passkey_settings(tenant.id).await?)?;
        let Ok((handle, _)) = webauthn.identify_discoverable_authentication(cred) else {
            return Ok(None);
        };
        self.store
            .get_user(tenant.id, UserId::from_uuid(handle))
            .await
            .map_err(store_err)
    }

    async fn parse_response(
        &self,
        tenant: TenantId,
        response: FactorResponse<'_>,
    ) -> Result<Parsed> {
        Ok(match response {
            FactorResponse::Password(p) => Parsed::Password(normalize_password(p)?),
            FactorResponse::Totp(code) => {
                let digits = self.code_digits(tenant, FactorKind::Totp).await?;
                check_digits(code, digits, "totp code")?;
                Parsed::Totp(code.to_owned())
            }
            FactorResponse::RecoveryCode(code) => {
                Parsed::Recovery(recovery::normalize_recovery_code(code)?)
            }
            FactorResponse::EmailCode(code) => {
                let digits = self.code_digits(tenant, FactorKind::EmailOtp).await?;
                check_digits(code, digits, "email code")?;
                Parsed::Email(code.to_owned())
            }
            FactorResponse::Passkey(json) => {
                Parsed::Passkey(Box::new(passkey::parse_assertion(json)?))
            }
        })
    }

    async fn check_factor(
        &self,
        tenant: &Tenant,
        user: Option<&User>,
        w: &mut Awaiting,
        parsed: Parsed,
        rq: Request<'_>,
    ) -> Result<Check> {
        match parsed {
            Parsed::Password(p) => Ok(match self.password_matches(tenant, user, &p, rq).await? {
                Ok(()) => Check::Passed,
                Err(detail) => Check::Failed(detail),
            }),
            Parsed::Totp(code) => match user {
                Some(u) => {
                    let skew = self.totp_skew(tenant.id).await?;
                    totp::verify(&self.store, rq.now, tenant.id, u.id, &code, skew).await
                }
                None => Ok(Check::Failed(AuditReason::UnknownIdentifier)),
            },
            Parsed::Recovery(code) => match user {
                Some(u) => recovery::spend_code(&self.store, rq.now, tenant.id, u.id, &code).await,
                None => Ok(Check::Failed(AuditReason::UnknownIdentifier)),
            },
            Parsed::Email(code) => Ok(email_code::check_flow_code(
                &mut w.email_code,
                w.user.is_some(),
                &code,
                rq.now,
                self.email_max_attempts(tenant.id).await?,
            )),
            Parsed::Passkey(cred) => match (user, w.passkey.take()) {
                (Some(u), Some(challenge)) => {
                    let settings = self.passkey_settings(tenant.id).await?;
                    let webauthn = passkey::webauthn_for(&settings)?;
                    let (now, store) = (rq.now, &self.store);
                    passkey::verify(store, now, &webauthn, tenant.id, u.id, &cred, challenge).await
                }
                _ => Ok(Check::Failed(AuditReason::UnknownIdentifier)),
            },
        }
    }

    /// The length of the tenant's codes of `kind` (TOTP or email), 6 when
    /// the tenant has no settings for it.
    async fn code_digits(&self, tenant: TenantId, kind: FactorKind) -> Result<u8> {
        Ok(match self.tenant_settings(tenant, kind).await? {
            Some(FactorSettings::Totp(s)) => s.digits,
            Some(FactorSettings::EmailOtp(s)) => s.digits,
            _ => 6,
        })
    }

    async fn email_max_attempts(&self, tenant: TenantId) -> Result<u32> {
        Ok(
            match self.tenant_settings(tenant, FactorKind::EmailOtp).await? {
                Some(FactorSettings::EmailOtp(s)) => s.max_attempts,
                _ => 1,
            },
        )
    }

    pub(super) async fn totp_skew(&self, tenant: TenantId) -> Result<u8> {
        Ok(
            match self.tenant_settings(tenant, FactorKind::Totp).await? {
                Some(FactorSettings::Totp(s)) => s.skew_steps,
                _ => 1,
            },
        )
    }
}

enum Parsed {
    Password(String),
    Totp(String),
    Recovery(String),
    Email(String),
    Passkey(Box<PublicKeyCredential>),
}
