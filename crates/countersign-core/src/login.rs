//! The login engine: begin a flow, answer challenges, submit factors.

use chrono::{DateTime, Utc};
use webauthn_rs::prelude::{
    DiscoverableKey, PublicKeyCredential, RequestChallengeResponse, Webauthn,
};

use crate::audit::{AuditKind, AuditStatus};
use crate::error::{Error, InvalidInput, Result};
use crate::factor::{
    AuthMethod, FactorKind, MethodName, PasskeysCredential, PendingCode, Scope, TenantFactor,
    UserFactor, Versioned,
};
use crate::flow::{
    Authentication, Awaiting, DenyReason, FlowEvent, FlowRecord, FlowState, LoginState,
    PasskeyChallenge,
};
use crate::ids::{TenantId, UserId};
use crate::model::{ClientInfo, Identifier, Tenant, User};
use crate::otp::{self, TotpCheck};
use crate::password::normalize_password;
use crate::service::{AuthnService, store_err};
use crate::store::{FactorStore, FlowStore, IdentityStore, SessionStore};
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
            LoginState::Authenticated(a) => LoginStatus::Authenticated(a.clone()),
            LoginState::Denied(r) => LoginStatus::Denied(*r),
            LoginState::Locked { until } => LoginStatus::Locked { until: *until },
            LoginState::Expired => LoginStatus::Expired,
        }
    }
}

/// The result of submitting one factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// Whether the factor was right. A wrong one says nothing more.
    pub accepted: bool,
    /// The flow after it.
    pub status: LoginStatus,
}

/// The outcome of checking one factor.
enum Check {
    Passed,
    Failed(&'static str),
}

/// Build the WebAuthn relying party of a tenant.
pub(crate) fn webauthn_for(settings: &crate::factor::PasskeySettings) -> Result<Webauthn> {
    let origin = url::Url::parse(&settings.origin)
        .map_err(|_| InvalidInput::new("passkey settings", "bad origin"))?;
    webauthn_rs::prelude::WebauthnBuilder::new(&settings.rp_id, &origin)
        .and_then(|b| b.rp_name(&settings.rp_name).build())
        .map_err(|e| Error::Passkey(e.to_string()))
}

fn parse_credential(json: &str) -> Result<PublicKeyCredential> {
    if json.len() > 64 * 1024 {
        return Err(InvalidInput::new("passkey credential", "too large").into());
    }
    serde_json::from_str(json)
        .map_err(|_| InvalidInput::new("passkey credential", "malformed JSON").into())
}

impl<S> AuthnService<S>
where
    S: IdentityStore + FactorStore + FlowStore + SessionStore,
{
    pub(crate) async fn tenant_settings(
        &self,
        tenant: TenantId,
        kind: FactorKind,
    ) -> Result<Option<TenantFactor>> {
        self.store
            .tenant_factor(tenant, kind)
            .await
            .map_err(store_err)
    }

    pub(crate) async fn passkey_settings(
        &self,
        tenant: TenantId,
    ) -> Result<crate::factor::PasskeySettings> {
        match self.tenant_settings(tenant, FactorKind::Passkey).await? {
            Some(TenantFactor::Passkey(p)) => Ok(p),
            _ => Err(InvalidInput::new("factor", "this tenant does not offer passkeys").into()),
        }
    }

    async fn tenant_methods(&self, tenant: TenantId) -> Result<Vec<AuthMethod>> {
        Ok(self
            .store
            .methods(Scope::Tenant(tenant))
            .await
            .map_err(store_err)?
            .into_iter()
            .filter(|r| r.enabled)
            .map(|r| r.method)
            .collect())
    }

    async fn new_flow(
        &self,
        tenant: TenantId,
        user: Option<UserId>,
        state: FlowState,
    ) -> Result<(SecretToken, FlowRecord)> {
        let (token, key) = TokenKind::FLOW.issue(&self.env)?;
        let now = self.env.now();
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
        _client: &ClientInfo,
    ) -> Result<(SecretToken, LoginStatus)> {
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
        let user_id = user.map(|u| u.id);
        let state = LoginState::AwaitingFactor(Awaiting {
            user: user_id,
            discoverable: false,
            candidates,
            passed: Vec::new(),
            failures: 0,
            email_code: None,
            passkey: None,
        });
        let (token, record) = self
            .new_flow(tenant.id, user_id, FlowState::Login(state.clone()))
            .await?;
        Ok((token, LoginStatus::of(&state, record.expires_at)))
    }

    /// Begin a step-up for a signed-in user: a flow whose one step accepts
    /// any of `kinds`. Its [`Authentication`] proves fresh factors; merge it
    /// into the earlier one with [`Authentication::merge`].
    pub async fn begin_step_up(
        &self,
        tenant: TenantId,
        user: UserId,
        kinds: &[FactorKind],
        _client: &ClientInfo,
    ) -> Result<(SecretToken, LoginStatus)> {
        let tenant = self.tenant(tenant).await?;
        self.user(tenant.id, user).await?;
        let method = AuthMethod::new(
            "step-up",
            vec![crate::factor::FactorStep::AnyOf(kinds.to_vec())],
        )?;
        let state = LoginState::AwaitingFactor(Awaiting {
            user: Some(user),
            discoverable: false,
            candidates: vec![method],
            passed: Vec::new(),
            failures: 0,
            email_code: None,
            passkey: None,
        });
        let (token, record) = self
            .new_flow(tenant.id, Some(user), FlowState::Login(state.clone()))
            .await?;
        Ok((token, LoginStatus::of(&state, record.expires_at)))
    }

    /// Begin a username-less login with a discoverable passkey. Returns
    /// the flow token, the first step and the challenge for the browser.
    pub async fn begin_passkey_login(
        &self,
        tenant: TenantId,
        _client: &ClientInfo,
    ) -> Result<(SecretToken, LoginStatus, RequestChallengeResponse)> {
        let tenant = self.tenant(tenant).await?;
        let webauthn = webauthn_for(&self.passkey_settings(tenant.id).await?)?;
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
            .map_err(|e| Error::Passkey(e.to_string()))?;
        let state = LoginState::AwaitingFactor(Awaiting {
            user: None,
            discoverable: true,
            candidates,
            passed: Vec::new(),
            failures: 0,
            email_code: None,
            passkey: Some(PasskeyChallenge::Discoverable(ceremony)),
        });
        let (token, record) = self
            .new_flow(tenant.id, None, FlowState::Login(state.clone()))
            .await?;
        Ok((token, LoginStatus::of(&state, record.expires_at), challenge))
    }

    /// Load a login flow that is still awaiting a factor, refusing malformed,
    /// unknown, foreign, ended and expired flows (an expired one is marked
    /// so). Bad input is audited.
    async fn open_flow(
        &self,
        tenant: &Tenant,
        token: &str,
        client: &ClientInfo,
    ) -> Result<(Versioned<FlowRecord>, Awaiting)> {
        let refuse = |detail: &'static str, err: Error| async move {
            self.audit(
                self.event(
                    tenant.id,
                    None,
                    AuditKind::Authentication,
                    AuditStatus::Failure,
                    client,
                )
                .map(|e| e.with_detail(detail)),
            )
            .await?;
            Err(err)
        };
        let key: TokenHash = match TokenKind::FLOW.parse(token) {
            Ok(k) => k,
            Err(e) => return refuse("malformed_flow", e.into()).await,
        };
        let Some(found) = self.store.flow(tenant.id, &key).await.map_err(store_err)? else {
            return refuse("unknown_flow", Error::FlowNotFound).await;
        };
        let FlowState::Login(state) = &found.value.state else {
            return refuse("unknown_flow", Error::FlowNotFound).await;
        };
        let LoginState::AwaitingFactor(w) = state.clone() else {
            return refuse("flow_ended", Error::FlowEnded).await;
        };
        if self.env.now() >= found.value.expires_at {
            let mut expired = found.value.clone();
            expired.state = FlowState::Login(LoginState::Expired);
            // Losing this race changes nothing: the flow is over either way.
            let _ = self
                .store
                .compare_and_save_flow(found.version, &expired)
                .await
                .map_err(store_err)?;
            return refuse("expired_flow", Error::FlowExpired).await;
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
        if saved {
            Ok(())
        } else {
            Err(Error::Concurrent("the login flow changed meanwhile"))
        }
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
        let tenant = self.tenant(tenant).await?;
        let (found, mut w) = self.open_flow(&tenant, flow, client).await?;
        if !w.admits(FactorKind::Passkey) || w.discoverable {
            return Err(Error::FactorNotExpected);
        }
        let webauthn = webauthn_for(&self.passkey_settings(tenant.id).await?)?;
        let keys = match w.user {
            Some(user) => self
                .passkeys_of(tenant.id, user)
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
            .map_err(|e| Error::Passkey(e.to_string()))?;
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
        let tenant = self.tenant(tenant).await?;
        let (found, mut w) = self.open_flow(&tenant, flow, client).await?;
        if !w.admits(FactorKind::EmailOtp) {
            return Err(Error::FactorNotExpected);
        }
        let settings = match self
            .tenant_settings(tenant.id, FactorKind::EmailOtp)
            .await?
        {
            Some(TenantFactor::EmailOtp(s)) => s,
            _ => {
                return Err(
                    InvalidInput::new("factor", "this tenant does not offer email codes").into(),
                );
            }
        };
        let address = match w.user {
            Some(user) => match self
                .store
                .user_factor(tenant.id, user, FactorKind::EmailOtp)
                .await
                .map_err(store_err)?
            {
                Some(Versioned {
                    value: UserFactor::EmailOtp(e),
                    ..
                }) if e.confirmed => Some(e.address),
                _ => None,
            },
            None => None,
        };
        let code = otp::numeric_code(&self.env, settings.digits)?;
        w.email_code = Some(PendingCode {
            hash: otp::sha256_hex(code.as_bytes()),
            expires_at: self.env.now() + chrono::Duration::seconds(i64::from(settings.ttl_secs)),
            attempts: 0,
        });
        let user = w.user;
        self.save_flow(&found, LoginState::AwaitingFactor(w), user)
            .await?;
        if let Some(to) = address {
            self.send_code(tenant.id, to, &code, "Your sign-in code")
                .await?;
        }
        Ok(())
    }

    pub(crate) async fn send_code(
        &self,
        tenant: TenantId,
        to: crate::model::EmailAddress,
        code: &str,
        subject: &str,
    ) -> Result<()> {
        let Some(mailer) = &self.mailer else {
            return Err(Error::Email("no email sender is configured".into()));
        };
        let message = crate::email::EmailMessage {
            tenant_id: tenant,
            to,
            subject: subject.to_owned(),
            text: format!(
                "Your code:\n\n    {code}\n\nIt works once and expires soon. If you did not ask for it, ignore this message.\n"
            ),
        };
        mailer
            .send_dyn(&message)
            .await
            .map_err(|e| Error::Email(e.to_string()))
    }

    pub(crate) async fn passkeys_of(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<Versioned<PasskeysCredential>>> {
        Ok(
            match self
                .store
                .user_factor(tenant, user, FactorKind::Passkey)
                .await
                .map_err(store_err)?
            {
                Some(Versioned {
                    value: UserFactor::Passkey(p),
                    version,
                }) => Some(Versioned { value: p, version }),
                _ => None,
            },
        )
    }

    /// Submit one factor to a flow.
    ///
    /// Refused without any change to the flow or the account, with a typed
    /// error and an audit event: a malformed, unknown, foreign, ended or
    /// expired flow; a factor the current step does not accept; a
    /// malformed answer (wrong-length or non-digit code, bad JSON); a
    /// factor whose challenge was never issued.
    ///
    /// Otherwise the account is checked (inactive or locked ends the flow),
    /// the factor is verified, a wrong one counts toward both the flow's
    /// and the account's limits, and a right one advances the flow, which
    /// yields [`LoginStatus::Authenticated`] only when every step of one
    /// method has passed.
    pub async fn submit(
        &self,
        tenant: TenantId,
        flow: &str,
        response: FactorResponse<'_>,
        client: &ClientInfo,
    ) -> Result<Submission> {
        let tenant = self.tenant(tenant).await?;
        let (found, mut w) = self.open_flow(&tenant, flow, client).await?;
        let kind = response.kind();
        let flow_user = found.value.user_id;
        let bad_input = |detail: &'static str, err: Error| async move {
            self.audit(
                self.event(
                    tenant.id,
                    flow_user,
                    AuditKind::Authentication,
                    AuditStatus::Failure,
                    client,
                )
                .map(|e| e.with_factor(kind).with_detail(detail)),
            )
            .await?;
            Err(err)
        };
        if !w.admits(kind) {
            return bad_input("out_of_order", Error::FactorNotExpected).await;
        }
        let parsed = match self.parse_response(tenant.id, response).await {
            Ok(p) => p,
            Err(e) => return bad_input("malformed", e).await,
        };
        if matches!(parsed, Parsed::Passkey(_)) && w.passkey.is_none() {
            return bad_input("no_challenge", Error::ChallengeMissing).await;
        }
        if matches!(parsed, Parsed::Email(_)) && w.email_code.is_none() {
            return bad_input("no_challenge", Error::ChallengeMissing).await;
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
            && let Some(event) = self.account_block(&tenant, u).await?
        {
            let detail = if matches!(event, FlowEvent::Locked { .. }) {
                "locked"
            } else {
                "inactive"
            };
            return self
                .finish_submit(&tenant, &found, w, event, false, kind, detail, client)
                .await;
        }

        let check = self
            .check_factor(&tenant, user.as_ref(), &mut w, parsed, client)
            .await?;
        match check {
            Check::Failed(detail) => {
                let mut event = FlowEvent::Failed;
                if let Some(u) = &user {
                    let record = self.count_failure(&tenant, u.id, kind, client).await?;
                    if let Some(until) = record.locked_at(self.env.now()) {
                        event = FlowEvent::Locked { until };
                    }
                }
                self.finish_submit(&tenant, &found, w, event, false, kind, detail, client)
                    .await
            }
            Check::Passed => {
                // Re-check: a suspension or lock may have landed meanwhile.
                let Some(u) = user else {
                    return self
                        .finish_submit(
                            &tenant,
                            &found,
                            w,
                            FlowEvent::Failed,
                            false,
                            kind,
                            "unknown_identifier",
                            client,
                        )
                        .await;
                };
                let fresh = self.user(tenant.id, u.id).await?;
                if let Some(event) = self.account_block(&tenant, &fresh).await? {
                    return self
                        .finish_submit(&tenant, &found, w, event, false, kind, "blocked", client)
                        .await;
                }
                let event = FlowEvent::Passed {
                    kind,
                    at: self.env.now(),
                };
                self.finish_submit(&tenant, &found, w, event, true, kind, "", client)
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
        accepted: bool,
        kind: FactorKind,
        detail: &'static str,
        client: &ClientInfo,
    ) -> Result<Submission> {
        let user = w.user;
        let state = LoginState::AwaitingFactor(w).advance(
            event,
            tenant.id,
            self.config.flow_max_failures,
        )?;
        self.save_flow(found, state.clone(), user).await?;
        let status = if accepted {
            AuditStatus::Success
        } else {
            AuditStatus::Failure
        };
        self.audit(
            self.event(tenant.id, user, AuditKind::Authentication, status, client)
                .map(|e| e.with_factor(kind))
                .map(|e| {
                    if detail.is_empty() {
                        e
                    } else {
                        e.with_detail(detail)
                    }
                }),
        )
        .await?;
        if let LoginState::Authenticated(a) = &state {
            let u = self.user(tenant.id, a.user_id).await?;
            self.complete_login(tenant, &u).await?;
            self.audit(
                self.event(
                    tenant.id,
                    Some(a.user_id),
                    AuditKind::LoginSucceeded,
                    AuditStatus::Success,
                    client,
                )
                .map(|e| e.with_detail(a.method.as_str())),
            )
            .await?;
        }
        Ok(Submission {
            accepted,
            status: LoginStatus::of(&state, found.value.expires_at),
        })
    }

    async fn identify_passkey_user(
        &self,
        tenant: &Tenant,
        cred: &PublicKeyCredential,
    ) -> Result<Option<User>> {
        let webauthn = webauthn_for(&self.passkey_settings(tenant.id).await?)?;
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
                let digits = match self.tenant_settings(tenant, FactorKind::Totp).await? {
                    Some(TenantFactor::Totp(s)) => s.digits,
                    _ => 6,
                };
                otp::check_digits(code, digits, "totp code")?;
                Parsed::Totp(code.to_owned())
            }
            FactorResponse::RecoveryCode(code) => {
                Parsed::Recovery(otp::normalize_recovery_code(code)?)
            }
            FactorResponse::EmailCode(code) => {
                let digits = match self.tenant_settings(tenant, FactorKind::EmailOtp).await? {
                    Some(TenantFactor::EmailOtp(s)) => s.digits,
                    _ => 6,
                };
                otp::check_digits(code, digits, "email code")?;
                Parsed::Email(code.to_owned())
            }
            FactorResponse::Passkey(json) => Parsed::Passkey(Box::new(parse_credential(json)?)),
        })
    }

    async fn check_factor(
        &self,
        tenant: &Tenant,
        user: Option<&User>,
        w: &mut Awaiting,
        parsed: Parsed,
        client: &ClientInfo,
    ) -> Result<Check> {
        match parsed {
            Parsed::Password(p) => Ok(
                match self.password_matches(tenant, user, &p, client).await? {
                    Ok(()) => Check::Passed,
                    Err(detail) => Check::Failed(detail),
                },
            ),
            Parsed::Totp(code) => match user {
                Some(u) => self.check_totp(tenant, u, &code).await,
                None => Ok(Check::Failed("unknown_identifier")),
            },
            Parsed::Recovery(code) => match user {
                Some(u) => self.spend_recovery_code(tenant, u, &code).await,
                None => Ok(Check::Failed("unknown_identifier")),
            },
            Parsed::Email(code) => Ok(check_email_code(
                w,
                &code,
                self.env.now(),
                self.email_max_attempts(tenant.id).await?,
            )),
            Parsed::Passkey(cred) => match (user, w.passkey.take()) {
                (Some(u), Some(challenge)) => self.check_passkey(tenant, u, &cred, challenge).await,
                _ => Ok(Check::Failed("unknown_identifier")),
            },
        }
    }

    async fn email_max_attempts(&self, tenant: TenantId) -> Result<u32> {
        Ok(
            match self.tenant_settings(tenant, FactorKind::EmailOtp).await? {
                Some(TenantFactor::EmailOtp(s)) => s.max_attempts,
                _ => 1,
            },
        )
    }

    /// Verify a TOTP code and spend its step with a compare-and-save, so a
    /// code works once even when submitted twice at the same instant.
    async fn check_totp(&self, tenant: &Tenant, user: &User, code: &str) -> Result<Check> {
        let skew = match self.tenant_settings(tenant.id, FactorKind::Totp).await? {
            Some(TenantFactor::Totp(s)) => s.skew_steps,
            _ => 1,
        };
        for _ in 0..4 {
            let Some(Versioned {
                value: UserFactor::Totp(mut cred),
                version,
            }) = self
                .store
                .user_factor(tenant.id, user.id, FactorKind::Totp)
                .await
                .map_err(store_err)?
            else {
                return Ok(Check::Failed("no_credential"));
            };
            if !cred.confirmed {
                return Ok(Check::Failed("no_credential"));
            }
            match otp::check_totp(&cred, code, self.env.now(), skew)? {
                TotpCheck::Invalid => return Ok(Check::Failed("wrong_code")),
                TotpCheck::Replayed => return Ok(Check::Failed("replayed_code")),
                TotpCheck::Valid { step } => {
                    cred.last_step = Some(step);
                    let spent = self
                        .store
                        .compare_and_save_user_factor(
                            tenant.id,
                            user.id,
                            Some(version),
                            &UserFactor::Totp(cred),
                        )
                        .await
                        .map_err(store_err)?;
                    if spent {
                        return Ok(Check::Passed);
                    }
                    // Someone else saved first: look again (it may have been this code).
                }
            }
        }
        Err(Error::Concurrent("totp credential kept changing"))
    }

    /// Find an unused recovery code and mark it used with a
    /// compare-and-save: each code works once.
    async fn spend_recovery_code(&self, tenant: &Tenant, user: &User, code: &str) -> Result<Check> {
        let hash = otp::sha256_hex(code.as_bytes());
        for _ in 0..4 {
            let Some(Versioned {
                value: UserFactor::RecoveryCodes(mut set),
                version,
            }) = self
                .store
                .user_factor(tenant.id, user.id, FactorKind::RecoveryCodes)
                .await
                .map_err(store_err)?
            else {
                return Ok(Check::Failed("no_credential"));
            };
            // Compare against every slot, so timing does not tell which matched.
            let mut hit = None;
            for (i, slot) in set.codes.iter().enumerate() {
                if otp::hashes_match(&slot.hash, &hash) && slot.used_at.is_none() && hit.is_none() {
                    hit = Some(i);
                }
            }
            let Some(slot) = hit.and_then(|i| set.codes.get_mut(i)) else {
                return Ok(Check::Failed("wrong_code"));
            };
            slot.used_at = Some(self.env.now());
            let spent = self
                .store
                .compare_and_save_user_factor(
                    tenant.id,
                    user.id,
                    Some(version),
                    &UserFactor::RecoveryCodes(set),
                )
                .await
                .map_err(store_err)?;
            if spent {
                return Ok(Check::Passed);
            }
        }
        Err(Error::Concurrent("recovery codes kept changing"))
    }

    async fn check_passkey(
        &self,
        tenant: &Tenant,
        user: &User,
        cred: &PublicKeyCredential,
        challenge: PasskeyChallenge,
    ) -> Result<Check> {
        let webauthn = webauthn_for(&self.passkey_settings(tenant.id).await?)?;
        let Some(mut stored) = self.passkeys_of(tenant.id, user.id).await? else {
            return Ok(Check::Failed("no_credential"));
        };
        let result = match challenge {
            PasskeyChallenge::Known(state) => webauthn.finish_passkey_authentication(cred, &state),
            PasskeyChallenge::Discoverable(state) => {
                let keys: Vec<DiscoverableKey> = stored
                    .value
                    .keys
                    .iter()
                    .map(|k| DiscoverableKey::from(&k.passkey))
                    .collect();
                #[expect(
                    deprecated,
                    reason = "the v2 call needs credential internals; this one checks the same"
                )]
                webauthn.finish_discoverable_authentication(cred, state, &keys)
            }
        };
        let Ok(result) = result else {
            return Ok(Check::Failed("bad_assertion"));
        };
        // Keep the signature counter and backup state current.
        for _ in 0..4 {
            let now = self.env.now();
            let mut known = false;
            for entry in &mut stored.value.keys {
                if entry.passkey.update_credential(&result).is_some() {
                    entry.last_used_at = Some(now);
                    known = true;
                }
            }
            if !known {
                return Ok(Check::Failed("unknown_passkey"));
            }
            let saved = self
                .store
                .compare_and_save_user_factor(
                    tenant.id,
                    user.id,
                    Some(stored.version),
                    &UserFactor::Passkey(stored.value.clone()),
                )
                .await
                .map_err(store_err)?;
            if saved {
                return Ok(Check::Passed);
            }
            match self.passkeys_of(tenant.id, user.id).await? {
                Some(again) => stored = again,
                None => return Ok(Check::Failed("no_credential")),
            }
        }
        Err(Error::Concurrent("passkeys kept changing"))
    }
}

/// Check an email code held in the flow: expiry, guesses, single use.
fn check_email_code(w: &mut Awaiting, code: &str, now: DateTime<Utc>, max_attempts: u32) -> Check {
    let Some(pending) = w.email_code.as_mut() else {
        return Check::Failed("no_code");
    };
    if now >= pending.expires_at {
        w.email_code = None;
        return Check::Failed("expired_code");
    }
    if otp::hashes_match(&pending.hash, &otp::sha256_hex(code.as_bytes())) && w.user.is_some() {
        return Check::Passed;
    }
    pending.attempts = pending.attempts.saturating_add(1);
    if pending.attempts >= max_attempts {
        w.email_code = None;
    }
    Check::Failed("wrong_code")
}

enum Parsed {
    Password(String),
    Totp(String),
    Recovery(String),
    Email(String),
    Passkey(Box<PublicKeyCredential>),
}
