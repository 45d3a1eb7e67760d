//! Self-registration with address verification, and password reset by an
//! emailed single-use token.
//!
//! Guarantees:
//! - Registration does not reveal accounts: an address that has an
//!   account gets the same answer, after the same hashing work, as a new
//!   one; its owner is told by mail instead, and nothing is created.
//! - A registration creates a `Pending` account with no usable password.
//!   The password chosen travels, as its argon2id hash, with the code sent
//!   for that registration, and is set only when that code is verified: a
//!   later registration of the same pending address replaces the code and
//!   the password together, so whoever proves the address sets the
//!   password (no pre-registration takeover).
//! - Codes and tokens are stored only as hashes (a keyed HMAC bound to
//!   tenant, user and purpose for codes; SHA-256 for reset tokens),
//!   compared in constant time, expire, tolerate a bounded number of wrong
//!   guesses, and are consumed at most once, also under concurrency.
//! - A reset request answers the same whether or not the account exists.
//!   A reset checks the new password's rules and history before it spends
//!   the token, then ends every session and refresh family of the account.
//! - Sends are limited per account and purpose (count and interval); past
//!   the limit a request is answered as usual and nothing is sent.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::AuthnService;
use super::accounts::PreparedPassword;
use crate::audit::{AuditKind, AuditReason};
use crate::env::Request;
use crate::error::{Error, Result, StoreErrorKind, store_err};
use crate::factor::{FactorCredential, FactorKind, PasswordCredential};
use crate::factor::{check_digits, hashes_match, numeric_code};
use crate::ids::{TenantId, UserId};
use crate::model::{
    AccountState, ClientInfo, EmailAddress, Identifier, Tenant, User, parse_display_name,
};
use crate::notice::{Notice, NoticeSecret, SecurityEvent};
use crate::store::{Store, Verification, VerificationPurpose};
use crate::token::TokenKind;

/// Password reset tokens (`cspr_…`).
pub const RESET_TOKEN: TokenKind = TokenKind::new("cspr", "reset token");

/// Digits of an address confirmation code.
const ADDRESS_CODE_DIGITS: u8 = 8;

/// A self-registration. Strings are raw caller input. The address is the
/// account's login identifier. `Debug` leaves the password out.
#[derive(Clone, Copy, Default)]
pub struct Registration<'a> {
    /// The email address: the identifier, and where the code goes.
    pub email: &'a str,
    /// The password, checked against the tenant's rules.
    pub password: &'a str,
    /// An optional display name.
    pub display_name: Option<&'a str>,
}

impl std::fmt::Debug for Registration<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("email", &self.email)
            .field("display_name", &self.display_name)
            .finish_non_exhaustive()
    }
}

/// The answer to a registration: the same whether the address was new or
/// already had an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrationReceipt {
    /// When a code sent for this registration stops working.
    pub expires_at: DateTime<Utc>,
}

/// Why nothing was sent for `user`: nobody by that identifier, or an
/// account the request does not apply to.
fn not_applicable(user: Option<UserId>) -> AuditReason {
    match user {
        None => AuditReason::UnknownIdentifier,
        Some(_) => AuditReason::NotApplicable,
    }
}

fn add(now: DateTime<Utc>, d: Duration) -> Result<DateTime<Utc>> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .ok_or_else(|| Error::internal("verification lifetime out of range"))
}

impl<S> AuthnService<S>
where
    S: Store,
{
    /// Register an account with an address and a password and send the
    /// address a confirmation code ([`verify_address`](Self::verify_address)
    /// activates the account).
    ///
    /// The answer does not tell whether the address already had an
    /// account: for an existing one, its owner is sent a
    /// [`SecurityEvent::RegistrationAttempted`] notice and nothing changes;
    /// for one still pending verification, a new code is sent (replacing
    /// the old one, with the new password bound to it). Either way the
    /// same hashing is done.
    ///
    /// Errors: [`Error::InvalidInput`] for a malformed address or display
    /// name; [`Error::PasswordRejected`] when the password breaks the
    /// tenant's rules (checked before the address is looked up);
    /// [`Error::NoEmailSender`] when the service cannot send mail.
    pub async fn register(
        &self,
        tenant: TenantId,
        reg: Registration<'_>,
        client: &ClientInfo,
    ) -> Result<RegistrationReceipt> {
        let rq = self.env.request(client);
        if self.mailer.is_none() {
            return Err(Error::NoEmailSender);
        }
        let tenant = self.tenant(tenant).await?;
        let checked = self.check_registration(&tenant, &reg).await;
        let (email, identifier, display_name, password) = match checked {
            Ok(parts) => parts,
            Err(e) => {
                // Refused input is audited (no account named) and writes
                // nothing else.
                let event = self.failure(tenant.id, None, AuditKind::UserRegistered, rq);
                self.audit(event.map(|e| e.with_detail(AuditReason::Malformed)))
                    .await?;
                return Err(e);
            }
        };
        // Hashed on every path: the answer takes the same time whether or
        // not the address has an account.
        let phc = self.hasher.hash(&password, &self.env).await?;
        let receipt = RegistrationReceipt {
            expires_at: add(rq.now, self.config.address_code_ttl)?,
        };
        let existing = self
            .store
            .find_user(tenant.id, &identifier)
            .await
            .map_err(store_err)?;
        let user = match existing {
            Some(user) => user,
            None => {
                let user = User {
                    id: UserId::generate(&self.env)?,
                    tenant_id: tenant.id,
                    identifier: identifier.clone(),
                    display_name,
                    email: Some(email.clone()),
                    state: AccountState::Pending,
                    state_reason: None,
                    created_at: rq.now,
                    updated_at: rq.now,
                    last_login_at: None,
                    tier: tenant.policy.profile.default_tier.clone(),
                    attributes: Default::default(),
                };
                let event =
                    self.success(tenant.id, Some(user.id), AuditKind::UserRegistered, rq)?;
                match self.store.register_user(&user, &[], None, &event).await {
                    Ok(()) => user,
                    // A concurrent registration of the address won: this
                    // one is a registration of an existing account.
                    Err(e) if crate::error::StoreError::kind(&e) == StoreErrorKind::Conflict => {
                        self.store
                            .find_user(tenant.id, &identifier)
                            .await
                            .map_err(store_err)?
                            .ok_or(Error::Concurrent("registration raced an erasure"))?
                    }
                    Err(e) => return Err(store_err(e)),
                }
            }
        };
        if user.state == AccountState::Pending {
            let to = user.email.clone().unwrap_or(email);
            self.send_address_code(&tenant, &user, &to, phc, rq).await?;
        } else {
            // Told to the owner, at the address on the account, and
            // limited like codes so that registrations cannot flood it.
            let event = self.success(
                tenant.id,
                Some(user.id),
                AuditKind::RegistrationDuplicate,
                rq,
            );
            self.audit(event).await?;
            if let Some(to) = &user.email
                && self.address_limiter.allow(
                    tenant.id,
                    to,
                    rq.now,
                    self.config.email_sends_per_address,
                    self.config.email_address_window,
                )
            {
                self.notify_security(&tenant, &user, SecurityEvent::RegistrationAttempted)
                    .await;
            }
        }
        Ok(receipt)
    }

    /// The parts of a registration, checked: the address, the identifier
    /// it is, the display name and the password (the tenant's rules).
    async fn check_registration(
        &self,
        tenant: &Tenant,
        reg: &Registration<'_>,
    ) -> Result<(EmailAddress, Identifier, Option<String>, String)> {
        let email = EmailAddress::parse(reg.email)?;
        let identifier = Identifier::parse(email.as_str())?;
        let display_name = reg.display_name.map(parse_display_name).transpose()?;
        let rules = self.password_rules(tenant.id).await?;
        let mut context = vec![identifier.as_str(), email.as_str()];
        if let Some(d) = &display_name {
            context.push(d);
        }
        let password = self
            .accept_new_password(tenant, &rules, reg.password, &context, &[])
            .await?;
        Ok((email, identifier, display_name, password))
    }

    /// Send a new address confirmation code to a pending account, as a
    /// registration would (with the password chosen at registration).
    /// Answers `Ok` whatever the address: unknown, not pending and over
    /// the send limit are recorded in the audit log only.
    pub async fn resend_address_code(
        &self,
        tenant: TenantId,
        email: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        let rq = self.env.request(client);
        let tenant = self.tenant(tenant).await?;
        let identifier = Identifier::parse(email)?;
        let user = self
            .store
            .find_user(tenant.id, &identifier)
            .await
            .map_err(store_err)?;
        let pending = match &user {
            Some(u) if u.state == AccountState::Pending => u,
            _ => {
                let id = user.map(|u| u.id);
                return self.nothing_sent(&tenant, id, not_applicable(id), rq).await;
            }
        };
        let current = self
            .store
            .verification(tenant.id, pending.id, VerificationPurpose::Address)
            .await
            .map_err(store_err)?;
        // The password travels with the code; without one there is nothing
        // to resend (the account must register again).
        let (Some(phc), Some(to)) = (current.and_then(|v| v.payload), pending.email.clone()) else {
            return self
                .nothing_sent(&tenant, Some(pending.id), AuditReason::NotApplicable, rq)
                .await;
        };
        self.send_address_code(&tenant, pending, &to, phc, rq).await
    }

    /// Verify a pending account's address with the code it was sent, set
    /// the password chosen with that code, and activate the account.
    ///
    /// Errors: [`Error::VerificationFailed`], alike, for an unknown or
    /// non-pending account, a wrong, expired, used or superseded code, and
    /// a code out of guesses (each wrong guess counts;
    /// [`AuthnConfig::verification_max_failures`](crate::AuthnConfig::verification_max_failures)
    /// of them void it); [`Error::InvalidInput`] for a malformed address
    /// or a code that is not 8 digits.
    pub async fn verify_address(
        &self,
        tenant: TenantId,
        email: &str,
        code: &str,
        client: &ClientInfo,
    ) -> Result<User> {
        let rq = self.env.request(client);
        let tenant = self.tenant(tenant).await?;
        let identifier = Identifier::parse(email)?;
        check_digits(code, ADDRESS_CODE_DIGITS, "code")?;
        let user = self
            .store
            .find_user(tenant.id, &identifier)
            .await
            .map_err(store_err)?;
        let Some(user) = user.filter(|u| u.state == AccountState::Pending) else {
            return self
                .proof_refused(
                    &tenant,
                    AuditKind::AddressVerified,
                    None,
                    AuditReason::NotApplicable,
                    rq,
                )
                .await;
        };
        let purpose = VerificationPurpose::Address;
        let hash = self.address_code_hash(&tenant, &user, code)?;
        let pending = self
            .store
            .verification(tenant.id, user.id, purpose)
            .await
            .map_err(store_err)?;
        let Some(pending) = pending else {
            return self
                .proof_refused(
                    &tenant,
                    AuditKind::AddressVerified,
                    Some(user.id),
                    AuditReason::NoCode,
                    rq,
                )
                .await;
        };
        if !hashes_match(&pending.secret_hash, &hash) {
            self.store
                .record_verification_failure(tenant.id, user.id, purpose)
                .await
                .map_err(store_err)?;
            return self
                .proof_refused(
                    &tenant,
                    AuditKind::AddressVerified,
                    Some(user.id),
                    AuditReason::WrongCode,
                    rq,
                )
                .await;
        }
        let consumed = self
            .store
            .consume_verification(
                tenant.id,
                user.id,
                purpose,
                &hash,
                self.config.verification_max_failures,
                rq.now,
            )
            .await
            .map_err(store_err)?;
        let Some(consumed) = consumed else {
            // Expired, out of guesses, or spent by a concurrent call.
            return self
                .proof_refused(
                    &tenant,
                    AuditKind::AddressVerified,
                    Some(user.id),
                    AuditReason::ExpiredCode,
                    rq,
                )
                .await;
        };
        // The password bound to this code, then the account: a crash in
        // between leaves a pending account that registers again.
        if let Some(phc) = consumed.payload {
            self.set_registered_password(&tenant, user.id, phc, rq)
                .await?;
        }
        let moved = self
            .store
            .set_user_state(
                tenant.id,
                user.id,
                AccountState::Pending,
                AccountState::Active,
                None,
                rq.now,
            )
            .await
            .map_err(store_err)?;
        if !moved {
            return Err(Error::Concurrent("account state changed meanwhile"));
        }
        self.audit(self.success(tenant.id, Some(user.id), AuditKind::AddressVerified, rq))
            .await?;
        self.user(tenant.id, user.id).await
    }

    /// Start a password reset: send the account's address a single-use
    /// token ([`reset_password`](Self::reset_password) spends it).
    ///
    /// Answers `Ok` whether or not `identifier` names an active account
    /// with an address, and past the send limit; why nothing was sent is in
    /// the audit log only. [`Error::InvalidInput`] only for a malformed
    /// identifier. (The send itself takes time only when there is
    /// something to send: an HTTP edge should answer before delivery, or
    /// hand sending to a queue such as countersign-mail's `QueuedSender`,
    /// as the reference server does, to keep the timing uniform.)
    pub async fn request_password_reset(
        &self,
        tenant: TenantId,
        identifier: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        let rq = self.env.request(client);
        let tenant = self.tenant(tenant).await?;
        let identifier = Identifier::parse(identifier)?;
        let user = self
            .store
            .find_user(tenant.id, &identifier)
            .await
            .map_err(store_err)?;
        let (user, to) = match user {
            Some(u) if u.state == AccountState::Active && u.email.is_some() => {
                let to = u.email.clone().ok_or(Error::internal("checked above"))?;
                (u, to)
            }
            other => {
                let id = other.map(|u| u.id);
                return self.nothing_sent(&tenant, id, not_applicable(id), rq).await;
            }
        };
        let (token, hash) = RESET_TOKEN.issue(&self.env)?;
        let expires_at = add(rq.now, self.config.reset_token_ttl)?;
        let notice = Notice::PasswordReset {
            token: NoticeSecret::new(token.expose()),
            expires_at,
        };
        let v = |sends| Verification {
            tenant_id: tenant.id,
            user_id: user.id,
            purpose: VerificationPurpose::PasswordReset,
            secret_hash: hash.to_hex(),
            payload: None,
            created_at: rq.now,
            expires_at,
            sends,
            failures: 0,
        };
        self.send_verification(&tenant, &user, &to, v, notice, rq)
            .await
    }

    /// Choose a new password with a reset token: the token is checked, then
    /// the password (rules and history, before the token is spent, so a
    /// refused password leaves the token usable), then the token is spent
    /// (of concurrent resets with one token exactly one succeeds), the
    /// password saved, every session and refresh family of the account
    /// ended, its failed attempts forgotten, and its owner told.
    ///
    /// Errors: [`Error::VerificationFailed`], alike, for an unknown,
    /// expired, used, superseded or another tenant's token and for an
    /// account no longer active; [`Error::InvalidInput`] for a malformed
    /// token; [`Error::PasswordRejected`] for a password the rules refuse.
    pub async fn reset_password(
        &self,
        tenant: TenantId,
        token: &str,
        new_password: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        let rq = self.env.request(client);
        let tenant = self.tenant(tenant).await?;
        let hash = RESET_TOKEN.parse(token)?.to_hex();
        let purpose = VerificationPurpose::PasswordReset;
        let found = self
            .store
            .find_verification(tenant.id, purpose, &hash)
            .await
            .map_err(store_err)?;
        let Some(found) = found.filter(|v| rq.now < v.expires_at) else {
            return self
                .proof_refused(
                    &tenant,
                    AuditKind::PasswordReset,
                    None,
                    AuditReason::ExpiredCode,
                    rq,
                )
                .await;
        };
        let user = self.user(tenant.id, found.user_id).await?;
        if user.state != AccountState::Active {
            return self
                .proof_refused(
                    &tenant,
                    AuditKind::PasswordReset,
                    Some(user.id),
                    AuditReason::Inactive,
                    rq,
                )
                .await;
        }
        let prepared: PreparedPassword = self
            .prepare_password(tenant.id, user.id, new_password)
            .await?;
        let spent = self
            .store
            .consume_verification(tenant.id, user.id, purpose, &hash, u32::MAX, rq.now)
            .await
            .map_err(store_err)?;
        if spent.is_none() {
            return self
                .proof_refused(
                    &tenant,
                    AuditKind::PasswordReset,
                    Some(user.id),
                    AuditReason::ReplayedCode,
                    rq,
                )
                .await;
        }
        self.commit_password(
            tenant.id,
            user.id,
            prepared,
            None,
            AuditKind::PasswordReset,
            rq,
        )
        .await?;
        // Proving the address lifts a lock from wrong guesses.
        self.store
            .reset_failed_attempts(tenant.id, user.id)
            .await
            .map_err(store_err)
    }

    /// Send an address confirmation code to a pending account, with `phc`
    /// bound to it.
    async fn send_address_code(
        &self,
        tenant: &Tenant,
        user: &User,
        to: &EmailAddress,
        phc: String,
        rq: Request<'_>,
    ) -> Result<()> {
        let purpose = VerificationPurpose::Address;
        let code = numeric_code(&self.env, ADDRESS_CODE_DIGITS)?;
        let hash = self.address_code_hash(tenant, user, &code)?;
        let expires_at = add(rq.now, self.config.address_code_ttl)?;
        let notice = Notice::AddressConfirmation {
            code: NoticeSecret::new(code),
            expires_at,
        };
        let v = |sends| Verification {
            tenant_id: tenant.id,
            user_id: user.id,
            purpose,
            secret_hash: hash.clone(),
            payload: Some(phc.clone()),
            created_at: rq.now,
            expires_at,
            sends,
            failures: 0,
        };
        self.send_verification(tenant, user, to, v, notice, rq)
            .await
    }

    /// Save a verification (replacing the account's pending one of its
    /// purpose) within the send limits, then mail it. Over the limits, or
    /// when a concurrent send won, nothing is sent and the answer is `Ok`.
    async fn send_verification(
        &self,
        tenant: &Tenant,
        user: &User,
        to: &EmailAddress,
        make: impl Fn(u32) -> Verification,
        notice: Notice,
        rq: Request<'_>,
    ) -> Result<()> {
        let purpose = make(0).purpose;
        let current = self
            .store
            .verification(tenant.id, user.id, purpose)
            .await
            .map_err(store_err)?;
        let (expected, sends) = match &current {
            None => (None, 1),
            Some(c) if c.expires_at <= rq.now => (Some(c.sends), 1),
            Some(c) => {
                let too_soon =
                    add(c.created_at, self.config.verification_resend_interval)? > rq.now;
                if c.sends >= self.config.verification_sends || too_soon {
                    return self
                        .nothing_sent(tenant, Some(user.id), AuditReason::SendLimit, rq)
                        .await;
                }
                (Some(c.sends), c.sends.saturating_add(1))
            }
        };
        let saved = self
            .store
            .save_verification(&make(sends), expected)
            .await
            .map_err(store_err)?;
        if !saved {
            return self
                .nothing_sent(tenant, Some(user.id), AuditReason::SendLimit, rq)
                .await;
        }
        self.notify(tenant, to, notice).await?;
        self.audit(self.success(tenant.id, Some(user.id), AuditKind::VerificationSent, rq))
            .await
    }

    /// Save the password a registration chose, as the account's first.
    async fn set_registered_password(
        &self,
        tenant: &Tenant,
        user: UserId,
        phc: String,
        rq: Request<'_>,
    ) -> Result<()> {
        let current = self
            .store
            .user_factor(tenant.id, user, FactorKind::Password)
            .await
            .map_err(store_err)?;
        let credential = FactorCredential::Password(PasswordCredential {
            phc: phc.clone(),
            changed_at: rq.now,
        });
        let saved = self
            .store
            .compare_and_save_user_factor(tenant.id, user, current.map(|c| c.version), &credential)
            .await
            .map_err(store_err)?;
        if !saved {
            return Err(Error::Concurrent("password changed meanwhile"));
        }
        let rules = self.password_rules(tenant.id).await?;
        if rules.history > 0 {
            self.store
                .push_password_history(tenant.id, user, &phc, rq.now, rules.history)
                .await
                .map_err(store_err)?;
        }
        Ok(())
    }

    /// Record a request that sends nothing (`why`); the caller's answer
    /// is `Ok`.
    async fn nothing_sent(
        &self,
        tenant: &Tenant,
        user: Option<UserId>,
        why: AuditReason,
        rq: Request<'_>,
    ) -> Result<()> {
        let event = self.failure(tenant.id, user, AuditKind::VerificationSent, rq);
        self.audit(event.map(|e| e.with_detail(why))).await
    }

    /// Record a refused proof (`kind`: an address code or a reset token)
    /// and answer [`Error::VerificationFailed`], whatever `why` was.
    async fn proof_refused<T>(
        &self,
        tenant: &Tenant,
        kind: AuditKind,
        user: Option<UserId>,
        why: AuditReason,
        rq: Request<'_>,
    ) -> Result<T> {
        let event = self.failure(tenant.id, user, kind, rq);
        self.audit(event.map(|e| e.with_detail(why))).await?;
        Err(Error::VerificationFailed)
    }

    /// The stored form of an address code sent to `user`.
    fn address_code_hash(&self, tenant: &Tenant, user: &User, code: &str) -> Result<String> {
        Ok(self.code_key()?.verification_hash(
            VerificationPurpose::Address.as_str(),
            tenant.id.as_uuid().as_bytes(),
            user.id.as_uuid().as_bytes(),
            code,
        ))
    }
}
