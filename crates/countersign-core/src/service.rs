//! `AuthnService`: the entry point for provisioning, registration, account
//! lifecycle and password authentication, generic over the store traits.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::audit::{AuditEvent, AuditKind, AuditStatus};
use crate::email::{DynEmailSender, EmailSender};
use crate::env::Env;
use crate::error::{Error, InvalidInput, Result, StoreErrorKind};
use crate::factor::{AuthMethod, FactorKind, PasswordCredential, TenantFactor, UserFactor};
use crate::flow::FlowEvent;
use crate::ids::{SessionId, TenantId, UserId};
use crate::model::{
    AccountState, ClientInfo, EmailAddress, Identifier, Tenant, TenantPolicy, TenantSlug, User,
    parse_display_name,
};
use crate::password::{PasswordHasher, PasswordRules, PasswordViolation, normalize_password};
use crate::provision::TenantProvision;
use crate::store::{FactorStore, FlowStore, IdentityStore, SessionStore};

/// What a new tenant is made of.
#[derive(Debug, Clone)]
pub struct NewTenant {
    /// Its unique short name.
    pub slug: String,
    /// Its display name.
    pub name: String,
    /// Its security policy.
    pub policy: TenantPolicy,
    /// The factors it adopts, with their settings.
    pub factors: Vec<TenantFactor>,
    /// Its login methods (all enabled).
    pub methods: Vec<AuthMethod>,
}

impl NewTenant {
    /// A tenant whose users sign in with a password alone, at default rules
    /// and lockout policy.
    pub fn password_only(slug: &str, name: &str) -> Result<Self> {
        Ok(Self {
            slug: slug.to_owned(),
            name: name.to_owned(),
            policy: TenantPolicy::default(),
            factors: vec![TenantFactor::Password(Default::default())],
            methods: vec![AuthMethod::sequence("password", &[FactorKind::Password])?],
        })
    }
}

/// What a new user is made of. Strings are raw caller input: the service
/// normalises and validates them.
#[derive(Debug, Clone, Default)]
pub struct NewUser<'a> {
    /// Login identifier (username or email).
    pub identifier: &'a str,
    /// Initial password, if the user gets one.
    pub password: Option<&'a str>,
    /// Display name.
    pub display_name: Option<&'a str>,
    /// Email address.
    pub email: Option<&'a str>,
    /// Initial state: `Candidate`, `Pending` or `Active` (default `Candidate`).
    pub state: Option<AccountState>,
}

/// A successful password authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordLogin {
    /// The user, as of the login.
    pub user: User,
    /// When the password was verified.
    pub at: DateTime<Utc>,
}

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
}

impl<S: std::fmt::Debug> std::fmt::Debug for AuthnService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthnService")
            .field("store", &self.store)
            .field("config", &self.config)
            .field("mailer", &self.mailer.is_some())
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
}

impl Default for AuthnConfig {
    /// Flows live 5 minutes and tolerate 5 wrong factors.
    fn default() -> Self {
        Self {
            flow_ttl: Duration::from_secs(300),
            flow_max_failures: 5,
        }
    }
}

pub(crate) fn store_err<E: crate::error::StoreError>(e: E) -> Error {
    Error::store(e)
}

impl<S> AuthnService<S>
where
    S: IdentityStore + FactorStore + FlowStore + SessionStore,
{
    /// A service over `store`, with time and randomness from `env`, default
    /// [`AuthnConfig`] and no email sender.
    pub fn new(store: S, env: Env, hasher: PasswordHasher) -> Self {
        Self {
            store,
            env,
            hasher,
            config: AuthnConfig::default(),
            mailer: None,
        }
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

    pub(crate) fn event(
        &self,
        tenant: TenantId,
        user: Option<UserId>,
        kind: AuditKind,
        status: AuditStatus,
        client: &ClientInfo,
    ) -> Result<AuditEvent> {
        AuditEvent::new(&self.env, tenant, user, kind, status, client)
    }

    /// Provision a tenant with its factors and methods, atomically.
    pub async fn provision_tenant(&self, spec: NewTenant) -> Result<Tenant> {
        let slug = TenantSlug::parse(&spec.slug)?;
        let name = parse_display_name(&spec.name)?;
        let tenant = Tenant {
            id: TenantId::generate(&self.env)?,
            slug: slug.clone(),
            name,
            policy: spec.policy,
            created_at: self.env.now(),
        };
        let provision = TenantProvision::new(tenant, spec.factors, spec.methods)?;
        self.store.provision_tenant(&provision).await.map_err(|e| {
            match crate::error::StoreError::kind(&e) {
                StoreErrorKind::Conflict => Error::AlreadyExists(format!("tenant `{slug}`")),
                _ => store_err(e),
            }
        })?;
        let tenant = provision.tenant().clone();
        self.audit(self.event(
            tenant.id,
            None,
            AuditKind::TenantProvisioned,
            AuditStatus::Success,
            &ClientInfo::default(),
        ))
        .await?;
        Ok(tenant)
    }

    /// The tenant with this slug.
    pub async fn tenant_by_slug(&self, slug: &str) -> Result<Tenant> {
        let slug = TenantSlug::parse(slug)?;
        self.store
            .find_tenant(&slug)
            .await
            .map_err(store_err)?
            .ok_or(Error::TenantNotFound)
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

    /// Replace a tenant's policy after validating it.
    pub async fn update_tenant_policy(&self, tenant: TenantId, policy: TenantPolicy) -> Result<()> {
        policy.lockout.validate()?;
        self.tenant(tenant).await?;
        self.store
            .update_tenant_policy(tenant, &policy)
            .await
            .map_err(store_err)?;
        self.audit(self.event(
            tenant,
            None,
            AuditKind::TenantPolicyChanged,
            AuditStatus::Success,
            &ClientInfo::default(),
        ))
        .await
    }

    async fn password_rules(&self, tenant: TenantId) -> Result<PasswordRules> {
        match self
            .store
            .tenant_factor(tenant, FactorKind::Password)
            .await
            .map_err(store_err)?
        {
            Some(TenantFactor::Password(settings)) => Ok(settings.rules),
            _ => Err(InvalidInput::new("password", "this tenant does not offer passwords").into()),
        }
    }

    /// Check a new password against the tenant's rules, the user's context
    /// and (for an existing user) their password history. Returns the
    /// normalised password.
    async fn accept_new_password(
        &self,
        tenant: &Tenant,
        rules: &PasswordRules,
        password: &str,
        context: &[&str],
        history: &[String],
    ) -> Result<String> {
        let password = normalize_password(password)?;
        let mut words: Vec<&str> = context.to_vec();
        words.push(tenant.slug.as_str());
        words.push(&tenant.name);
        rules
            .check(&password, &words)
            .map_err(Error::PasswordRejected)?;
        for old in history {
            if self.hasher.verify(&password, old).await? {
                return Err(Error::PasswordRejected(PasswordViolation::Reused));
            }
        }
        Ok(password)
    }

    /// Register a user in `tenant`, with an optional first password,
    /// atomically (the user never exists without the password it was
    /// registered with).
    pub async fn register_user(
        &self,
        tenant: TenantId,
        new: NewUser<'_>,
        client: &ClientInfo,
    ) -> Result<User> {
        let tenant = self.tenant(tenant).await?;
        let identifier = Identifier::parse(new.identifier)?;
        let display_name = new.display_name.map(parse_display_name).transpose()?;
        let email = new.email.map(EmailAddress::parse).transpose()?;
        let state = new.state.unwrap_or(AccountState::Candidate);
        if !matches!(
            state,
            AccountState::Candidate | AccountState::Pending | AccountState::Active
        ) {
            return Err(InvalidInput::new(
                "state",
                "a new user starts as candidate, pending or active",
            )
            .into());
        }
        let now = self.env.now();
        let mut credentials = Vec::new();
        let mut phc = None;
        if let Some(password) = new.password {
            let rules = self.password_rules(tenant.id).await?;
            let mut context = vec![identifier.as_str()];
            if let Some(e) = &email {
                context.push(e.as_str());
            }
            if let Some(d) = &display_name {
                context.push(d);
            }
            let password = self
                .accept_new_password(&tenant, &rules, password, &context, &[])
                .await?;
            let hash = self.hasher.hash(&password, &self.env).await?;
            credentials.push(UserFactor::Password(PasswordCredential {
                phc: hash.clone(),
                changed_at: now,
            }));
            phc = Some((hash, rules.history));
        }
        let user = User {
            id: UserId::generate(&self.env)?,
            tenant_id: tenant.id,
            identifier,
            display_name,
            email,
            state,
            state_reason: None,
            created_at: now,
            updated_at: now,
            last_login_at: None,
        };
        self.store
            .create_user(&user, &credentials)
            .await
            .map_err(|e| match crate::error::StoreError::kind(&e) {
                StoreErrorKind::Conflict => Error::AlreadyExists("identifier".into()),
                StoreErrorKind::NotFound => Error::TenantNotFound,
                _ => store_err(e),
            })?;
        if let Some((hash, keep)) = phc
            && keep > 0
        {
            self.store
                .push_password_history(tenant.id, user.id, &hash, now, keep)
                .await
                .map_err(store_err)?;
        }
        self.audit(self.event(
            tenant.id,
            Some(user.id),
            AuditKind::UserRegistered,
            AuditStatus::Success,
            client,
        ))
        .await?;
        Ok(user)
    }

    /// The user with this id in `tenant`.
    pub async fn user(&self, tenant: TenantId, user: UserId) -> Result<User> {
        self.store
            .get_user(tenant, user)
            .await
            .map_err(store_err)?
            .ok_or(Error::UserNotFound)
    }

    /// Move a user along its lifecycle. Refuses transitions the lifecycle
    /// does not allow ([`AccountState::can_become`]); a concurrent change
    /// of state makes this fail with [`Error::Concurrent`] rather than
    /// overwrite it.
    pub async fn transition(
        &self,
        tenant: TenantId,
        user: UserId,
        to: AccountState,
        reason: Option<&str>,
        client: &ClientInfo,
    ) -> Result<User> {
        let reason = reason.map(parse_display_name).transpose()?;
        let current = self.user(tenant, user).await?;
        if !current.state.can_become(to) {
            return Err(Error::InvalidTransition {
                from: current.state,
                to,
            });
        }
        let moved = self
            .store
            .set_user_state(
                tenant,
                user,
                current.state,
                to,
                reason.as_deref(),
                self.env.now(),
            )
            .await
            .map_err(store_err)?;
        if !moved {
            return Err(Error::Concurrent("account state changed meanwhile"));
        }
        if matches!(to, AccountState::Suspended | AccountState::Deleted) {
            // Every session of the account ends with it.
            self.store
                .delete_user_sessions(tenant, user, None, self.env.now())
                .await
                .map_err(store_err)?;
        }
        let detail = format!("{}->{}", current.state, to);
        self.audit(
            self.event(
                tenant,
                Some(user),
                AuditKind::UserStateChanged,
                AuditStatus::Success,
                client,
            )
            .map(|e| e.with_detail(&detail)),
        )
        .await?;
        self.user(tenant, user).await
    }

    /// Erase a user and their personal data (GDPR art. 17). Audit events
    /// stay, pseudonymised under a fresh random id.
    pub async fn erase_user(
        &self,
        tenant: TenantId,
        user: UserId,
        client: &ClientInfo,
    ) -> Result<()> {
        let pseudonym = UserId::generate(&self.env)?;
        let existed = self
            .store
            .erase_user(tenant, user, pseudonym)
            .await
            .map_err(store_err)?;
        if !existed {
            return Err(Error::UserNotFound);
        }
        self.audit(self.event(
            tenant,
            Some(pseudonym),
            AuditKind::UserErased,
            AuditStatus::Success,
            client,
        ))
        .await
    }

    /// Verify a user's password in `tenant`.
    ///
    /// This checks one factor; whether it completes a login is the login
    /// flow's decision. Errors: [`Error::InvalidCredentials`] for an
    /// unknown identifier, a user with no password and a wrong password
    /// alike; [`Error::AccountInactive`] and [`Error::AccountLocked`] (the
    /// password is then not checked at all); [`Error::InvalidInput`] for a
    /// malformed identifier or an oversized password.
    pub async fn verify_password(
        &self,
        tenant: TenantId,
        identifier: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<PasswordLogin> {
        let tenant = self.tenant(tenant).await?;
        let identifier = Identifier::parse(identifier)?;
        let password = normalize_password(password)?;
        let user = self
            .store
            .find_user(tenant.id, &identifier)
            .await
            .map_err(store_err)?;
        if let Some(user) = &user {
            self.check_can_sign_in(&tenant, user, client).await?;
        }
        let outcome = self
            .password_matches(&tenant, user.as_ref(), &password, client)
            .await?;
        let user = match (outcome, user) {
            (Ok(()), Some(user)) => user,
            (Err(detail), user) => {
                if let Some(user) = &user {
                    self.count_failure(&tenant, user.id, FactorKind::Password, client)
                        .await?;
                }
                self.audit(
                    self.event(
                        tenant.id,
                        user.map(|u| u.id),
                        AuditKind::Authentication,
                        AuditStatus::Failure,
                        client,
                    )
                    .map(|e| e.with_factor(FactorKind::Password).with_detail(detail)),
                )
                .await?;
                return Err(Error::InvalidCredentials);
            }
            (Ok(()), None) => return Err(Error::InvalidCredentials),
        };

        // Re-check: a suspension or lock may have landed while we hashed.
        let user = self.user(tenant.id, user.id).await?;
        self.check_can_sign_in(&tenant, &user, client).await?;
        let now = self.complete_login(&tenant, &user).await?;
        self.audit(
            self.event(
                tenant.id,
                Some(user.id),
                AuditKind::Authentication,
                AuditStatus::Success,
                client,
            )
            .map(|e| e.with_factor(FactorKind::Password)),
        )
        .await?;
        Ok(PasswordLogin {
            user: User {
                last_login_at: Some(now),
                ..user
            },
            at: now,
        })
    }

    /// Forget failures and record the login time; returns the time.
    pub(crate) async fn complete_login(
        &self,
        tenant: &Tenant,
        user: &User,
    ) -> Result<DateTime<Utc>> {
        let now = self.env.now();
        self.store
            .reset_failed_attempts(tenant.id, user.id)
            .await
            .map_err(store_err)?;
        self.store
            .record_last_login(tenant.id, user.id, now)
            .await
            .map_err(store_err)?;
        Ok(now)
    }

    /// Check a normalised password for `user` (or for nobody: then a dummy
    /// verification does the same work). `Ok(Err(detail))` is a mismatch.
    /// A match upgrades a weaker stored hash.
    pub(crate) async fn password_matches(
        &self,
        tenant: &Tenant,
        user: Option<&User>,
        password: &str,
        client: &ClientInfo,
    ) -> Result<Result<(), &'static str>> {
        let Some(user) = user else {
            self.hasher.verify_dummy(password).await?;
            return Ok(Err("unknown_identifier"));
        };
        let credential = self
            .store
            .user_factor(tenant.id, user.id, FactorKind::Password)
            .await
            .map_err(store_err)?;
        let Some((phc, version)) = credential.and_then(|v| match v.value {
            UserFactor::Password(c) => Some((c.phc, v.version)),
            _ => None,
        }) else {
            self.hasher.verify_dummy(password).await?;
            return Ok(Err("no_credential"));
        };
        if !self.hasher.verify(password, &phc).await? {
            return Ok(Err("wrong_secret"));
        }
        if self.hasher.needs_rehash(&phc) {
            self.rehash(tenant, user, password, version, client).await?;
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
        client: &ClientInfo,
    ) -> Result<crate::lockout::FailureRecord> {
        let now = self.env.now();
        let policy = &tenant.policy.lockout;
        let record = self
            .store
            .record_failed_attempt(tenant.id, user, policy, now)
            .await
            .map_err(store_err)?;
        if record.locked_until == Some(now + policy.lock_delta()) {
            self.audit(
                self.event(
                    tenant.id,
                    Some(user),
                    AuditKind::AccountLocked,
                    AuditStatus::Success,
                    client,
                )
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
        client: &ClientInfo,
    ) -> Result<()> {
        let phc = self.hasher.hash(password, &self.env).await?;
        let upgraded = UserFactor::Password(PasswordCredential {
            phc,
            changed_at: self.env.now(),
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
                self.event(
                    tenant.id,
                    Some(user.id),
                    AuditKind::PasswordRehashed,
                    AuditStatus::Success,
                    client,
                )
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
            .and_then(|r| r.locked_at(self.env.now()))
            .map(|until| FlowEvent::Locked { until }))
    }

    /// Refuse a user who may not sign in now (inactive or locked), with an
    /// audit event.
    pub(crate) async fn check_can_sign_in(
        &self,
        tenant: &Tenant,
        user: &User,
        client: &ClientInfo,
    ) -> Result<()> {
        let (err, detail) = match self.account_block(tenant, user).await? {
            None => return Ok(()),
            Some(FlowEvent::Locked { until }) => (Error::AccountLocked { until }, "locked"),
            Some(_) => (Error::AccountInactive { state: user.state }, "inactive"),
        };
        self.audit(
            self.event(
                tenant.id,
                Some(user.id),
                AuditKind::Authentication,
                AuditStatus::Failure,
                client,
            )
            .map(|e| e.with_factor(FactorKind::Password).with_detail(detail)),
        )
        .await?;
        Err(err)
    }

    /// Change a password, proving the current one. A wrong current password
    /// counts toward lockout. The new one must meet the tenant's rules and
    /// not repeat the history.
    ///
    /// Every session of the user ends, except `keep` (the session making
    /// the change, if the caller wants it kept).
    pub async fn change_password(
        &self,
        tenant: TenantId,
        user: UserId,
        current: &str,
        new: &str,
        keep: Option<SessionId>,
        client: &ClientInfo,
    ) -> Result<()> {
        let account = self.user(tenant, user).await?;
        self.verify_password(tenant, account.identifier.as_str(), current, client)
            .await?;
        self.set_password(tenant, user, new, keep, client).await
    }

    /// Set a user's password without the current one (administrators,
    /// completed resets). Rules and history apply. Every session of the
    /// user ends, except `keep`.
    pub async fn set_password(
        &self,
        tenant: TenantId,
        user: UserId,
        new: &str,
        keep: Option<SessionId>,
        client: &ClientInfo,
    ) -> Result<()> {
        let tenant_row = self.tenant(tenant).await?;
        let account = self.user(tenant, user).await?;
        let rules = self.password_rules(tenant).await?;
        let existing = self
            .store
            .user_factor(tenant, user, FactorKind::Password)
            .await
            .map_err(store_err)?;
        let mut history = if rules.history > 0 {
            self.store
                .password_history(tenant, user, rules.history)
                .await
                .map_err(store_err)?
        } else {
            Vec::new()
        };
        let expected = match &existing {
            Some(v) => {
                if let UserFactor::Password(c) = &v.value
                    && rules.history > 0
                    && !history.contains(&c.phc)
                {
                    history.push(c.phc.clone());
                }
                Some(v.version)
            }
            None => None,
        };
        let mut context = vec![account.identifier.as_str()];
        if let Some(e) = &account.email {
            context.push(e.as_str());
        }
        let password = self
            .accept_new_password(&tenant_row, &rules, new, &context, &history)
            .await?;
        let now = self.env.now();
        let phc = self.hasher.hash(&password, &self.env).await?;
        let saved = self
            .store
            .compare_and_save_user_factor(
                tenant,
                user,
                expected,
                &UserFactor::Password(PasswordCredential {
                    phc: phc.clone(),
                    changed_at: now,
                }),
            )
            .await
            .map_err(store_err)?;
        if !saved {
            return Err(Error::Concurrent("password changed meanwhile"));
        }
        self.store
            .delete_user_sessions(tenant, user, keep, now)
            .await
            .map_err(store_err)?;
        if rules.history > 0 {
            self.store
                .push_password_history(tenant, user, &phc, now, rules.history)
                .await
                .map_err(store_err)?;
        }
        self.audit(
            self.event(
                tenant,
                Some(user),
                AuditKind::PasswordChanged,
                AuditStatus::Success,
                client,
            )
            .map(|e| e.with_factor(FactorKind::Password)),
        )
        .await
    }
}
