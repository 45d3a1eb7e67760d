//! Accounts: tenant provisioning and policy, user registration,
//! lifecycle and erasure, and passwords (verification, change, reset).

use crate::store::{HistoryEntry, Store};
use chrono::{DateTime, Utc};

use super::AuthnService;
use crate::audit::{AuditDetail, AuditKind, AuditReason};
use crate::env::Request;
use crate::error::{Error, InvalidInput, Result, StoreErrorKind, store_err};
use crate::factor::{
    AuthMethod, FactorCredential, FactorKind, FactorSettings, PasswordCredential, PasswordRules,
    PasswordViolation, normalize_password,
};
use crate::flow::FlowEvent;
use crate::ids::{SessionId, TenantId, UserId};
use crate::model::{
    AccountState, ClientInfo, EmailAddress, Identifier, Tenant, TenantPolicy, TenantSlug, User,
    parse_display_name,
};
use crate::notice::SecurityEvent;
use crate::provision::TenantProvision;

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
    pub factors: Vec<FactorSettings>,
    /// Its login methods (all enabled).
    pub methods: Vec<AuthMethod>,
}

impl NewTenant {
    /// A tenant with a name, default rules and lockout policy, and no factor
    /// or method yet: add them with [`adopt`](Self::adopt) and
    /// [`method`](Self::method). Provisioning refuses a tenant without at
    /// least one factor and one method, or with a method that uses a factor
    /// it has not adopted.
    ///
    /// ```
    /// # use countersign_core::{FactorKind, NewTenant, FactorSettings};
    /// let mfa = NewTenant::new("acme", "Acme Inc")
    ///     .adopt(FactorSettings::Password(Default::default()))
    ///     .adopt(FactorSettings::Totp(Default::default()))
    ///     .method("password-totp", &[FactorKind::Password, FactorKind::Totp])?;
    /// # Ok::<(), countersign_core::Error>(())
    /// ```
    pub fn new(slug: &str, name: &str) -> Self {
        Self {
            slug: slug.to_owned(),
            name: name.to_owned(),
            policy: TenantPolicy::default(),
            factors: Vec::new(),
            methods: Vec::new(),
        }
    }

    /// A tenant whose users sign in with a password alone, at default rules
    /// and lockout policy.
    pub fn password_only(slug: &str, name: &str) -> Result<Self> {
        Self::new(slug, name)
            .adopt(FactorSettings::Password(Default::default()))
            .method("password", &[FactorKind::Password])
    }

    /// Adopt a factor with its settings, replacing any earlier settings of
    /// the same kind.
    pub fn adopt(mut self, factor: FactorSettings) -> Self {
        self.factors.retain(|f| f.kind() != factor.kind());
        self.factors.push(factor);
        self
    }

    /// Add a method whose steps each require one factor, in order.
    pub fn method(self, name: &str, factors: &[FactorKind]) -> Result<Self> {
        let method = AuthMethod::sequence(name, factors)?;
        Ok(self.with_method(method))
    }

    /// Add a method of any steps (`Required` and `AnyOf`).
    pub fn with_method(mut self, method: AuthMethod) -> Self {
        self.methods.push(method);
        self
    }

    /// Replace the security policy (lockout, password rules, sessions).
    pub fn policy(mut self, policy: TenantPolicy) -> Self {
        self.policy = policy;
        self
    }
}

/// What a new user is made of. Strings are raw caller input: the service
/// normalises and validates them. `Debug` leaves the password out.
#[derive(Clone, Default)]
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
    /// The tier, one the tenant's profile schema allows (default: the
    /// tenant's default tier).
    pub tier: Option<&'a str>,
}

impl std::fmt::Debug for NewUser<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("identifier", &self.identifier)
            .field("password", &self.password.map(|_| "<redacted>"))
            .field("display_name", &self.display_name)
            .field("email", &self.email)
            .field("state", &self.state)
            .field("tier", &self.tier)
            .finish()
    }
}

/// A successful password authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordLogin {
    /// The user, as of the login.
    pub user: User,
    /// When the password was verified.
    pub at: DateTime<Utc>,
}

impl<S> AuthnService<S>
where
    S: Store,
{
    /// Provision a tenant with its factors and methods, atomically.
    pub async fn provision_tenant(&self, spec: NewTenant) -> Result<Tenant> {
        let anonymous = ClientInfo::default();
        let rq = self.env.request(&anonymous);
        let slug = TenantSlug::parse(&spec.slug)?;
        let name = parse_display_name(&spec.name)?;
        let tenant = Tenant {
            id: TenantId::generate(&self.env)?,
            slug: slug.clone(),
            name,
            policy: spec.policy,
            created_at: rq.now,
        };
        let provision = TenantProvision::new(tenant, spec.factors, spec.methods)?;
        self.store.provision_tenant(&provision).await.map_err(|e| {
            match crate::error::StoreError::kind(&e) {
                StoreErrorKind::Conflict => Error::AlreadyExists(format!("tenant `{slug}`")),
                _ => store_err(e),
            }
        })?;
        let tenant = provision.tenant().clone();
        self.audit(self.success(tenant.id, None, AuditKind::TenantProvisioned, rq))
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

    /// Replace a tenant's policy after validating all of it
    /// ([`TenantPolicy::validate`]: lockout, sessions, access tokens). A
    /// policy out of bounds is [`Error::InvalidInput`] and nothing changes.
    pub async fn update_tenant_policy(&self, tenant: TenantId, policy: TenantPolicy) -> Result<()> {
        let anonymous = ClientInfo::default();
        let rq = self.env.request(&anonymous);
        policy.validate()?;
        self.tenant(tenant).await?;
        self.store
            .update_tenant_policy(tenant, &policy)
            .await
            .map_err(store_err)?;
        self.audit(self.success(tenant, None, AuditKind::TenantPolicyChanged, rq))
            .await
    }

    pub(super) async fn password_rules(&self, tenant: TenantId) -> Result<PasswordRules> {
        match self
            .store
            .tenant_factor(tenant, FactorKind::Password)
            .await
            .map_err(store_err)?
        {
            Some(FactorSettings::Password(settings)) => Ok(settings.rules),
            _ => Err(InvalidInput::new("password", "this tenant does not offer passwords").into()),
        }
    }

    /// Check a new password against the tenant's rules, the user's context
    /// and (for an existing user) their password history. Returns the
    /// normalised password.
    pub(super) async fn accept_new_password(
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

    /// Register a user in `tenant`, with an optional first password and
    /// tier, atomically (the user never exists without the password and
    /// tier it was registered with). A tier the tenant's profile schema
    /// does not allow is [`Error::InvalidInput`], and nothing is written.
    pub async fn register_user(
        &self,
        tenant: TenantId,
        new: NewUser<'_>,
        client: &ClientInfo,
    ) -> Result<User> {
        let rq = self.env.request(client);
        let tenant = self.tenant(tenant).await?;
        let identifier = Identifier::parse(new.identifier)?;
        let display_name = new.display_name.map(parse_display_name).transpose()?;
        let email = new.email.map(EmailAddress::parse).transpose()?;
        let tier = match new.tier {
            Some(raw) => {
                let tier = crate::profile::Tier::parse(raw)?;
                if !tenant.policy.profile.allows_tier(&tier) {
                    return Err(InvalidInput::new("tier", "not a tier of this tenant").into());
                }
                Some(tier)
            }
            None => tenant.policy.profile.default_tier.clone(),
        };
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
        let now = rq.now;
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
            credentials.push(FactorCredential::Password(PasswordCredential {
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
            tier,
            attributes: Default::default(),
        };
        let history = phc
            .filter(|(_, keep)| *keep > 0)
            .map(|(phc, keep)| HistoryEntry { phc, at: now, keep });
        let event = self.success(tenant.id, Some(user.id), AuditKind::UserRegistered, rq)?;
        // The user, its first history row and its audit event commit
        // together: a crash cannot leave a user whose first password
        // escapes the reuse check, or one with no trace in the audit log.
        self.store
            .register_user(&user, &credentials, history.as_ref(), &event)
            .await
            .map_err(|e| match crate::error::StoreError::kind(&e) {
                StoreErrorKind::Conflict => Error::AlreadyExists("identifier".into()),
                StoreErrorKind::NotFound => Error::TenantNotFound,
                _ => store_err(e),
            })?;
        Ok(user)
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
        let rq = self.env.request(client);
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
            .set_user_state(tenant, user, current.state, to, reason.as_deref(), rq.now)
            .await
            .map_err(store_err)?;
        if !moved {
            return Err(Error::Concurrent("account state changed meanwhile"));
        }
        if matches!(to, AccountState::Suspended | AccountState::Deleted) {
            // Every session of the account ends with it.
            self.store
                .delete_user_sessions(tenant, user, None, rq.now)
                .await
                .map_err(store_err)?;
        }
        self.audit(
            self.success(tenant, Some(user), AuditKind::UserStateChanged, rq)
                .map(|e| {
                    e.with_detail(AuditDetail::Transition {
                        from: current.state,
                        to,
                    })
                }),
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
        let rq = self.env.request(client);
        let pseudonym = UserId::generate(&self.env)?;
        let existed = self
            .store
            .erase_user(tenant, user, pseudonym)
            .await
            .map_err(store_err)?;
        if !existed {
            return Err(Error::UserNotFound);
        }
        self.audit(self.success(tenant, Some(pseudonym), AuditKind::UserErased, rq))
            .await
    }

    /// Sign in with a password alone, in one call.
    ///
    /// It succeeds only for an account that has an enabled method which is
    /// a password alone (one step that a password satisfies): it is a
    /// complete login there, and never a way around a tenant's or user's
    /// second factor. Elsewhere a right password is
    /// [`Error::NoUsableMethod`] (use [`begin_login`](Self::begin_login));
    /// that answer comes only after the right password.
    ///
    /// Errors: [`Error::InvalidCredentials`] for an unknown identifier, a
    /// user with no password, a wrong password, and an account that is
    /// inactive (including unverified sign-ups) or locked, alike and after
    /// the same hashing work (one hash computation: argon2, or an imported
    /// user's own algorithm until their first login rehashes it); why is in
    /// the audit log only. Wrong passwords count toward lockout.
    /// [`Error::InvalidInput`] for a malformed identifier or an oversized
    /// password.
    pub async fn verify_password(
        &self,
        tenant: TenantId,
        identifier: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<PasswordLogin> {
        let rq = self.env.request(client);
        let user = self
            .check_password(tenant, identifier, password, rq)
            .await?;
        let tenant = self.tenant(tenant).await?;
        let methods = self
            .store
            .available_methods(tenant.id, user.id)
            .await
            .map_err(store_err)?;
        let password_alone = methods
            .iter()
            .any(|m| matches!(m.steps.as_slice(), [only] if only.admits(FactorKind::Password)));
        if !password_alone {
            self.audit(self.auth_failure(tenant.id, Some(user.id), rq).map(|e| {
                e.with_factor(FactorKind::Password)
                    .with_detail(AuditReason::MoreFactorsNeeded)
            }))
            .await?;
            return Err(Error::NoUsableMethod);
        }
        let events = [
            self.success(tenant.id, Some(user.id), AuditKind::Authentication, rq)?
                .with_factor(FactorKind::Password),
            self.success(tenant.id, Some(user.id), AuditKind::LoginSucceeded, rq)?
                .with_factor(FactorKind::Password),
        ];
        let now = self.complete_login(&tenant, user.id, &events, rq).await?;
        Ok(PasswordLogin {
            user: User {
                last_login_at: Some(now),
                ..user
            },
            at: now,
        })
    }

    /// Check `identifier`'s password: the account, who may sign in, and
    /// the password, with the same work and the same error for every kind
    /// of refusal (audited with why). A check, not a login: nothing is
    /// reset or recorded on success.
    async fn check_password(
        &self,
        tenant: TenantId,
        identifier: &str,
        password: &str,
        rq: Request<'_>,
    ) -> Result<User> {
        let tenant = self.tenant(tenant).await?;
        let identifier = Identifier::parse(identifier)?;
        let password = normalize_password(password)?;
        let user = self
            .store
            .find_user(tenant.id, &identifier)
            .await
            .map_err(store_err)?;
        let refuse = |user: Option<UserId>, why: AuditReason| async move {
            self.audit(
                self.auth_failure(tenant.id, user, rq)
                    .map(|e| e.with_factor(FactorKind::Password).with_detail(why)),
            )
            .await?;
            Err(Error::InvalidCredentials)
        };
        // An account that may not sign in is checked as nobody's: the same
        // hashing, the same answer.
        if let Some(u) = &user
            && let Some(event) = self.account_block(&tenant, u, rq.now).await?
        {
            self.hasher.verify_dummy(&password).await?;
            let why = match event {
                FlowEvent::Locked { .. } => AuditReason::Locked,
                _ => AuditReason::Inactive,
            };
            return refuse(Some(u.id), why).await;
        }
        let outcome = self
            .password_matches(&tenant, user.as_ref(), &password, rq)
            .await?;
        let user = match (outcome, user) {
            (Ok(()), Some(user)) => user,
            (Err(detail), user) => {
                if let Some(user) = &user {
                    self.count_failure(&tenant, user.id, FactorKind::Password, rq)
                        .await?;
                }
                return refuse(user.map(|u| u.id), detail).await;
            }
            (Ok(()), None) => return refuse(None, AuditReason::UnknownIdentifier).await,
        };
        // Re-check: a suspension or lock may have landed while we hashed.
        let user = self.user(tenant.id, user.id).await?;
        if self.account_block(&tenant, &user, rq.now).await?.is_some() {
            return refuse(Some(user.id), AuditReason::Blocked).await;
        }
        Ok(user)
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
        let rq = self.env.request(client);
        let account = self.user(tenant, user).await?;
        // A check of one factor, not a login: it resets no lockout count.
        self.check_password(tenant, account.identifier.as_str(), current, rq)
            .await?;
        self.audit(
            self.success(tenant, Some(user), AuditKind::Authentication, rq)
                .map(|e| e.with_factor(FactorKind::Password)),
        )
        .await?;
        self.replace_password(tenant, user, new, keep, rq).await
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
        let rq = self.env.request(client);
        self.replace_password(tenant, user, new, keep, rq).await
    }

    async fn replace_password(
        &self,
        tenant: TenantId,
        user: UserId,
        new: &str,
        keep: Option<SessionId>,
        rq: Request<'_>,
    ) -> Result<()> {
        let prepared = self.prepare_password(tenant, user, new).await?;
        self.commit_password(tenant, user, prepared, keep, AuditKind::PasswordChanged, rq)
            .await
    }

    /// Check a user's new password against the tenant's rules, the user's
    /// context and history, and hash it: nothing is written yet.
    pub(super) async fn prepare_password(
        &self,
        tenant: TenantId,
        user: UserId,
        new: &str,
    ) -> Result<PreparedPassword> {
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
                if let FactorCredential::Password(c) = &v.value
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
        let phc = self.hasher.hash(&password, &self.env).await?;
        Ok(PreparedPassword {
            tenant: tenant_row,
            account,
            phc,
            expected,
            history: rules.history,
        })
    }

    /// Save a prepared password (compare-and-save: a concurrent change
    /// wins and this fails with [`Error::Concurrent`]), end every session
    /// and refresh family of the user except `keep`, keep the history,
    /// audit `kind`, and tell the owner.
    pub(super) async fn commit_password(
        &self,
        tenant: TenantId,
        user: UserId,
        prepared: PreparedPassword,
        keep: Option<SessionId>,
        kind: AuditKind,
        rq: Request<'_>,
    ) -> Result<()> {
        let now = rq.now;
        let PreparedPassword {
            tenant: tenant_row,
            account,
            phc,
            expected,
            history,
        } = prepared;
        let saved = self
            .store
            .compare_and_save_user_factor(
                tenant,
                user,
                expected,
                &FactorCredential::Password(PasswordCredential {
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
        if history > 0 {
            self.store
                .push_password_history(tenant, user, &phc, now, history)
                .await
                .map_err(store_err)?;
        }
        self.audit(
            self.success(tenant, Some(user), kind, rq)
                .map(|e| e.with_factor(FactorKind::Password)),
        )
        .await?;
        self.notify_security(&tenant_row, &account, SecurityEvent::PasswordChanged)
            .await;
        Ok(())
    }
}

/// A new password that passed the rules and history, hashed, and the
/// version of the credential it replaces.
pub(super) struct PreparedPassword {
    tenant: Tenant,
    account: User,
    phc: String,
    expected: Option<u64>,
    history: u32,
}
