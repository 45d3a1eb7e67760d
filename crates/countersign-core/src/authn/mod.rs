//! [`AuthnService`]: the authentication entry point, generic over the store
//! traits. Its methods are spread by concern: `accounts` (provisioning,
//! registration, lifecycle, erasure, passwords), `login` (flows and factor
//! submission) and `enroll` (enrolment and removal of factors); this file
//! holds the service, its tunables and the checks they share.

use crate::audit::AuditReason;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::audit::{AuditEvent, AuditKind, AuditStatus};
use crate::email::{DynEmailSender, EmailSender};
use crate::env::{Env, Request};
use crate::error::{Error, InvalidInput, Result, store_err};
use crate::factor::email_code::AddressLimiter;
use crate::factor::{
    CodeKey, FactorCredential, FactorKind, FactorSettings, PasskeySettings, PasswordCredential,
    PasswordHasher, Versioned, credential,
};
use crate::flow::{FlowEvent, StepUp};
use crate::ids::{TenantId, UserId};
use crate::lockout::FailureRecord;
use crate::model::{AccountState, Tenant, User};
use crate::notice::{Notice, NoticeRenderer, PlainText, SecurityEvent};
use crate::seal::Sealer;

mod accounts;
mod admin;
mod challenge;
mod check;
mod enroll;
mod export;
mod federated;
mod import;
mod lifecycle;
mod login;
mod mfa;
mod profiles;
mod self_service;

pub use accounts::{NewTenant, NewUser, PasswordLogin};
pub use enroll::{Confirm, Enroll, Enrolled};
pub use export::{FactorExport, SessionExport, UserExport, VerificationExport};
pub use federated::FederatedStart;
pub use import::{ImportOutcome, ImportUser};
pub use lifecycle::{RESET_TOKEN, Registration, RegistrationReceipt};
pub use login::{FactorResponse, LoginStatus, Refusal, Submission};
pub use self_service::{DEACTIVATED_BY_USER, SelfService};

/// Provisioning, registration, lifecycle and password authentication.
///
/// Guarantees:
/// - an unknown identifier and a wrong password give the same error
///   ([`Error::InvalidCredentials`]) after the same hashing work;
/// - account state and lockout are checked before the password and again
///   after it, so a login never completes for an account that is not
///   active or is locked, even when the lock lands mid-verification;
/// - every attempt writes an audit event (with no secret in it), and a
///   failed audit write fails the operation (fail closed);
/// - wrong passwords count toward the tenant's lockout policy;
/// - stored hashes weaker than current parameters are upgraded on the next
///   successful login.
#[derive(Clone)]
pub struct AuthnService<S> {
    pub(crate) store: S,
    pub(crate) env: Env,
    pub(crate) hasher: PasswordHasher,
    pub(crate) config: AuthnConfig,
    pub(crate) mailer: Option<Arc<dyn DynEmailSender>>,
    pub(crate) renderer: Arc<dyn NoticeRenderer>,
    /// `None` only if the random source failed when the service was built:
    /// every use of the key then fails (closed).
    pub(crate) code_key: Option<CodeKey>,
    pub(crate) address_limiter: Arc<AddressLimiter>,
    /// Seals TOTP secrets at rest; `None`: stored in the clear.
    pub(crate) sealer: Option<Sealer>,
    /// Verifiers of the issuers tenants trust for ID tokens.
    pub(crate) federation: Arc<federated::Federation>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for AuthnService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthnService")
            .field("store", &self.store)
            .field("config", &self.config)
            .field("mailer", &self.mailer.is_some())
            .field("code_key", &self.code_key)
            .field("sealer", &self.sealer)
            .finish_non_exhaustive()
    }
}

/// Tunables of the login engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthnConfig {
    /// How long a login flow stays usable.
    pub flow_ttl: Duration,
    /// Wrong factors one flow tolerates before it is denied.
    pub flow_max_failures: u32,
    /// Email codes one login flow may be sent (the first included).
    pub email_sends_per_flow: u32,
    /// The least time between two email codes for one flow.
    pub email_resend_interval: Duration,
    /// Email codes (login and enrolment) one address may be sent per
    /// [`email_address_window`](Self::email_address_window), counted in
    /// this process. Past it, login sends are skipped silently (the answer
    /// does not change, so it tells nothing about the account) and
    /// enrolment sends are refused.
    pub email_sends_per_address: u32,
    /// The window of [`email_sends_per_address`](Self::email_sends_per_address).
    pub email_address_window: Duration,
    /// How recent a session's authentication must be for the sensitive
    /// operations of [`SelfService`] (ASVS 3.7.1).
    pub recent_auth: StepUp,
    /// How long an address confirmation code works.
    pub address_code_ttl: Duration,
    /// How long a password reset token works.
    pub reset_token_ttl: Duration,
    /// Verifications (codes, reset tokens) one account may be sent for one
    /// purpose while the last one sent is still live; each send extends
    /// the window by its lifetime.
    pub verification_sends: u32,
    /// The least time between two verifications of one purpose to one account.
    pub verification_resend_interval: Duration,
    /// Wrong guesses an address confirmation code tolerates.
    pub verification_max_failures: u32,
}

impl Default for AuthnConfig {
    /// Flows live 5 minutes and tolerate 5 wrong factors; a flow is sent
    /// at most 3 email codes, 30 seconds apart; an address at most 10 per
    /// hour; sensitive self-service needs a factor verified in the last 5
    /// minutes; address codes work 1 hour and tolerate 5 wrong guesses,
    /// reset tokens 30 minutes; an account is sent at most 5 of each, 60
    /// seconds apart.
    fn default() -> Self {
        Self {
            flow_ttl: Duration::from_secs(300),
            flow_max_failures: 5,
            email_sends_per_flow: 3,
            email_resend_interval: Duration::from_secs(30),
            email_sends_per_address: 10,
            email_address_window: Duration::from_secs(3600),
            recent_auth: StepUp::fresh(Duration::from_secs(300)),
            address_code_ttl: Duration::from_secs(3600),
            reset_token_ttl: Duration::from_secs(1800),
            verification_sends: 5,
            verification_resend_interval: Duration::from_secs(60),
            verification_max_failures: 5,
        }
    }
}

impl<S> AuthnService<S>
where
    S: Store,
{
    /// A service over `store`, with time and randomness from `env`, default
    /// [`AuthnConfig`], no email sender, and a random per-process
    /// [`CodeKey`] (set a lasting one with [`with_code_key`](Self::with_code_key)).
    pub fn new(store: S, env: Env, hasher: PasswordHasher) -> Self {
        let code_key = CodeKey::random(&env).ok();
        Self {
            store,
            env,
            hasher,
            config: AuthnConfig::default(),
            mailer: None,
            renderer: Arc::new(PlainText),
            code_key,
            address_limiter: Arc::new(AddressLimiter::default()),
            sealer: None,
            federation: Arc::new(federated::Federation::offline()),
        }
    }

    /// The same service sealing TOTP secrets at rest with `sealer` (a key
    /// the database does not hold; give the [`SessionService`] the same).
    /// Without one, **TOTP secrets are stored in the clear**, readable by
    /// anyone who reads the database; secrets sealed by another service
    /// then fail closed. See [`seal`](crate::seal).
    ///
    /// [`SessionService`]: crate::SessionService
    pub fn with_sealer(mut self, sealer: Sealer) -> Self {
        self.sealer = Some(sealer);
        self
    }

    /// The same service keying code hashes and decoys with `key`: a server
    /// secret kept outside the database, the same on every node. Without
    /// it the key is random per process, so emailed codes pending at a
    /// restart stop working and the decoy passkey ids shown for unknown
    /// accounts change at a restart (while real ones do not).
    pub fn with_code_key(mut self, key: CodeKey) -> Self {
        self.code_key = Some(key);
        self
    }

    /// The key of code hashes and decoys.
    pub(crate) fn code_key(&self) -> Result<&CodeKey> {
        self.code_key
            .as_ref()
            .ok_or(Error::internal("no code key: the random source failed"))
    }

    /// The same service with other tunables.
    pub fn with_config(mut self, config: AuthnConfig) -> Self {
        self.config = config;
        self
    }

    /// The same service sending email (codes) through `sender`.
    pub fn with_email_sender<M: EmailSender>(mut self, sender: M) -> Self {
        self.mailer = Some(Arc::new(sender));
        self
    }

    /// The same service wording its mail with `renderer` instead of the
    /// built-in [`PlainText`].
    pub fn with_notice_renderer<R: NoticeRenderer>(mut self, renderer: R) -> Self {
        self.renderer = Arc::new(renderer);
        self
    }

    /// Tell `to`, a user of `tenant`, about `notice`: rendered by the
    /// service's renderer, delivered by its sender. Fails with
    /// [`Error::NoEmailSender`] when no sender is configured.
    pub(crate) async fn notify(
        &self,
        tenant: &Tenant,
        to: &crate::model::EmailAddress,
        notice: Notice,
    ) -> Result<()> {
        let Some(mailer) = &self.mailer else {
            return Err(Error::NoEmailSender);
        };
        let message = self.renderer.render(tenant, to, &notice);
        mailer.send_dyn(&message).await.map_err(Error::Email)
    }

    /// Tell `user` about a change to their account, if they have an
    /// address and the service a sender. Best effort: the change it reports
    /// has happened, so a failed delivery is logged (without the message)
    /// rather than undoing or failing it.
    pub(crate) async fn notify_security(&self, tenant: &Tenant, user: &User, event: SecurityEvent) {
        let (Some(to), Some(_)) = (&user.email, &self.mailer) else {
            return;
        };
        if let Err(e) = self.notify(tenant, to, Notice::Security(event)).await {
            tracing::warn!(
                tenant = %tenant.id,
                user = %user.id,
                notice = event.code(),
                error = %e,
                "security notice not delivered"
            );
        }
    }

    /// The tunables.
    pub fn config(&self) -> &AuthnConfig {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The environment (clock and random source).
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// The password hasher.
    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// Append an audit event (fail closed: a failed write is an error).
    pub(crate) async fn audit(&self, event: Result<AuditEvent>) -> Result<()> {
        self.store.record_event(&event?).await.map_err(store_err)
    }

    /// A success event of `kind`, stamped with the request's time.
    pub(crate) fn success(
        &self,
        tenant: TenantId,
        user: Option<UserId>,
        kind: AuditKind,
        rq: Request<'_>,
    ) -> Result<AuditEvent> {
        let status = AuditStatus::Success;
        AuditEvent::new(&self.env, rq.now, tenant, user, kind, status, rq.client)
    }

    /// A failure event of `kind`, stamped with the request's time.
    pub(crate) fn failure(
        &self,
        tenant: TenantId,
        user: Option<UserId>,
        kind: AuditKind,
        rq: Request<'_>,
    ) -> Result<AuditEvent> {
        let status = AuditStatus::Failure;
        AuditEvent::new(&self.env, rq.now, tenant, user, kind, status, rq.client)
    }

    /// A failed authentication (a refused flow or factor), stamped with the
    /// request's time.
    pub(crate) fn auth_failure(
        &self,
        tenant: TenantId,
        user: Option<UserId>,
        rq: Request<'_>,
    ) -> Result<AuditEvent> {
        self.failure(tenant, user, AuditKind::Authentication, rq)
    }

    pub(crate) async fn tenant(&self, tenant: TenantId) -> Result<Tenant> {
        if tenant.is_system() {
            return Err(Error::Reserved("system tenant".into()));
        }
        self.store
            .get_tenant(tenant)
            .await
            .map_err(store_err)?
            .ok_or(Error::TenantNotFound)
    }

    /// The user with this id in `tenant`.
    pub async fn user(&self, tenant: TenantId, user: UserId) -> Result<User> {
        self.store
            .get_user(tenant, user)
            .await
            .map_err(store_err)?
            .ok_or(Error::UserNotFound)
    }

    /// The tenant's settings for `kind`, if it offers the factor.
    pub(crate) async fn tenant_settings(
        &self,
        tenant: TenantId,
        kind: FactorKind,
    ) -> Result<Option<FactorSettings>> {
        self.store
            .tenant_factor(tenant, kind)
            .await
            .map_err(store_err)
    }

    /// The tenant's passkey settings; a tenant without passkeys is bad input.
    pub(crate) async fn passkey_settings(&self, tenant: TenantId) -> Result<PasskeySettings> {
        match self.tenant_settings(tenant, FactorKind::Passkey).await? {
            Some(FactorSettings::Passkey(p)) => Ok(p),
            _ => Err(InvalidInput::new("factor", "this tenant does not offer passkeys").into()),
        }
    }

    /// Forget failures, record the login time and append the login's
    /// audit `events`, in one store call; returns the time.
    pub(crate) async fn complete_login(
        &self,
        tenant: &Tenant,
        user: UserId,
        events: &[AuditEvent],
        rq: Request<'_>,
    ) -> Result<DateTime<Utc>> {
        self.store
            .record_login(tenant.id, user, rq.now, events)
            .await
            .map_err(store_err)?;
        Ok(rq.now)
    }

    /// Check a normalised password for `user` (or for nobody: then a dummy
    /// verification does the same work). `Ok(Err(detail))` is a mismatch.
    /// A match upgrades a weaker stored hash.
    pub(crate) async fn password_matches(
        &self,
        tenant: &Tenant,
        user: Option<&User>,
        password: &str,
        rq: Request<'_>,
    ) -> Result<Result<(), AuditReason>> {
        let Some(user) = user else {
            self.hasher.verify_dummy(password).await?;
            return Ok(Err(AuditReason::UnknownIdentifier));
        };
        let stored = credential::<PasswordCredential, _>(&self.store, tenant.id, user.id).await?;
        let Some(Versioned {
            value: PasswordCredential { phc, .. },
            version,
        }) = stored
        else {
            self.hasher.verify_dummy(password).await?;
            return Ok(Err(AuditReason::NoCredential));
        };
        if !self.hasher.verify(password, &phc).await? {
            return Ok(Err(AuditReason::WrongSecret));
        }
        if self.hasher.needs_rehash(&phc) {
            self.rehash(tenant, user, password, version, rq).await?;
        }
        Ok(Ok(()))
    }

    /// Count a failed factor toward the tenant's lockout policy, auditing
    /// the lock if this failure caused it. Returns the new record.
    pub(crate) async fn count_failure(
        &self,
        tenant: &Tenant,
        user: UserId,
        factor: FactorKind,
        rq: Request<'_>,
    ) -> Result<FailureRecord> {
        let now = rq.now;
        let policy = &tenant.policy.lockout;
        let record = self
            .store
            .record_failed_attempt(tenant.id, user, policy, now)
            .await
            .map_err(store_err)?;
        if record.locked_until == Some(now + policy.lock_delta()) {
            self.audit(
                self.success(tenant.id, Some(user), AuditKind::AccountLocked, rq)
                    .map(|e| e.with_factor(factor)),
            )
            .await?;
        }
        Ok(record)
    }

    pub(crate) async fn rehash(
        &self,
        tenant: &Tenant,
        user: &User,
        password: &str,
        version: u64,
        rq: Request<'_>,
    ) -> Result<()> {
        let phc = self.hasher.hash(password, &self.env).await?;
        let upgraded = FactorCredential::Password(PasswordCredential {
            phc,
            changed_at: rq.now,
        });
        // Losing the race to a concurrent password change is fine: the
        // newer credential wins and is at current parameters anyway.
        let saved = self
            .store
            .compare_and_save_user_factor(tenant.id, user.id, Some(version), &upgraded)
            .await
            .map_err(store_err)?;
        if saved {
            self.audit(
                self.success(tenant.id, Some(user.id), AuditKind::PasswordRehashed, rq)
                    .map(|e| e.with_factor(FactorKind::Password)),
            )
            .await?;
        }
        Ok(())
    }

    /// Why `user` may not sign in now, if they may not: inactive, or locked.
    pub(crate) async fn account_block(
        &self,
        tenant: &Tenant,
        user: &User,
        now: DateTime<Utc>,
    ) -> Result<Option<FlowEvent>> {
        if user.state != AccountState::Active {
            return Ok(Some(FlowEvent::Inactive));
        }
        let record = self
            .store
            .failure_record(tenant.id, user.id)
            .await
            .map_err(store_err)?;
        Ok(record
            .and_then(|r| r.locked_at(now))
            .map(|until| FlowEvent::Locked { until }))
    }
}
