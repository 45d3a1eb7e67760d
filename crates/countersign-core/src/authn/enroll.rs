//! Factor enrolment, confirmation and removal.

use crate::store::Store;
use webauthn_rs::prelude::CreationChallengeResponse;

use super::AuthnService;
use crate::audit::AuditKind;
use crate::env::Request;
use crate::error::{Error, InvalidInput, Result, store_err};
use crate::factor::email_code::SendLimits;
use crate::factor::{
    Credential, EmailOtpCredential, FactorCredential, FactorKind, FactorSettings, PasskeyEntry,
    PasskeyInfo, PasskeysCredential, PendingCode, TotpCheck, TotpCredential, TotpEnrollment,
    Versioned, check_digits, check_totp, credential, email_code, new_totp, passkey, recovery, save,
    totp_enrollment,
};
use crate::flow::{FlowState, PasskeyRegistrationState};
use crate::ids::{TenantId, UserId};
use crate::model::{ClientInfo, EmailAddress, User};
use crate::notice::{Notice, NoticeSecret, SecurityEvent};
use crate::token::{SecretToken, TokenKind};

/// What to enrol.
#[derive(Debug, Clone, Copy)]
pub enum Enroll<'a> {
    /// A new TOTP secret (replaces an unconfirmed one; a confirmed one must
    /// be removed first).
    Totp,
    /// A new set of recovery codes, replacing (and voiding) the old set.
    RecoveryCodes,
    /// An email address for codes; a confirmation code is sent to it.
    EmailOtp {
        /// The address.
        address: &'a str,
    },
    /// Begin registering a passkey with this name.
    Passkey {
        /// The user's name for it.
        name: &'a str,
    },
}

/// What enrolment hands back. `Debug` shows no secret: not the TOTP
/// secret, not the recovery codes (their count only), not the ceremony
/// token.
#[derive(Clone)]
pub enum Enrolled {
    /// Add this to an authenticator app, then confirm with a code.
    Totp(TotpEnrollment),
    /// Show these once; only their hashes are kept.
    RecoveryCodes(Vec<String>),
    /// A code went to the address; confirm with it.
    EmailOtp,
    /// Pass the challenge to the browser, then confirm with its answer and
    /// this ceremony token.
    Passkey {
        /// The registration ceremony token.
        ceremony: SecretToken,
        /// The challenge for `navigator.credentials.create`.
        challenge: Box<CreationChallengeResponse>,
    },
}

impl std::fmt::Debug for Enrolled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Enrolled::Totp(_) => f.write_str("Enrolled::Totp(<redacted>)"),
            Enrolled::RecoveryCodes(codes) => {
                write!(
                    f,
                    "Enrolled::RecoveryCodes(<{} codes redacted>)",
                    codes.len()
                )
            }
            Enrolled::EmailOtp => f.write_str("Enrolled::EmailOtp"),
            Enrolled::Passkey { ceremony, .. } => f
                .debug_struct("Enrolled::Passkey")
                .field("ceremony", ceremony)
                .finish_non_exhaustive(),
        }
    }
}

/// The proof that finishes an enrolment.
#[derive(Clone, Copy)]
pub enum Confirm<'a> {
    /// A first valid TOTP code.
    Totp {
        /// The code.
        code: &'a str,
    },
    /// The code sent to the address.
    EmailOtp {
        /// The code.
        code: &'a str,
    },
    /// The browser's registration answer.
    Passkey {
        /// The ceremony token from [`Enrolled::Passkey`].
        ceremony: &'a str,
        /// The `RegisterPublicKeyCredential` JSON.
        credential: &'a str,
    },
}

impl std::fmt::Debug for Confirm<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Confirm::Totp { .. } => "Confirm::Totp(<redacted>)",
            Confirm::EmailOtp { .. } => "Confirm::EmailOtp(<redacted>)",
            Confirm::Passkey { .. } => "Confirm::Passkey(<redacted>)",
        })
    }
}

impl<S> AuthnService<S>
where
    S: Store,
{
    async fn settings(&self, tenant: TenantId, kind: FactorKind) -> Result<FactorSettings> {
        self.tenant_settings(tenant, kind).await?.ok_or_else(|| {
            InvalidInput::new("factor", format!("this tenant does not offer `{kind}`")).into()
        })
    }

    async fn audit_factor(
        &self,
        (tenant, user): (TenantId, UserId),
        kind: AuditKind,
        factor: FactorKind,
        rq: Request<'_>,
    ) -> Result<()> {
        // Every enrolment and removal passes here: the password-only
        // methods follow the user's second factors first.
        self.sync_password_only(tenant, user).await?;
        let event = self.success(tenant, Some(user), kind, rq);
        self.audit(event.map(|e| e.with_factor(factor))).await?;
        // The owner hears of every factor added or removed (best effort).
        let notice = match kind {
            AuditKind::FactorEnrolled => SecurityEvent::FactorAdded(factor),
            AuditKind::FactorRemoved => SecurityEvent::FactorRemoved(factor),
            _ => return Ok(()),
        };
        if self.mailer.is_some() {
            let account = self.user(tenant, user).await?;
            if account.email.is_some() {
                let tenant = self.tenant(tenant).await?;
                self.notify_security(&tenant, &account, notice).await;
            }
        }
        Ok(())
    }

    /// `user`'s credential of kind `C` and its version; none is
    /// [`Error::FactorNotEnrolled`].
    async fn enrolled<C: Credential>(&self, tenant: TenantId, user: UserId) -> Result<(C, u64)> {
        match credential::<C, _>(&self.store, tenant, user).await? {
            Some(v) => Ok((v.value, v.version)),
            None => Err(Error::FactorNotEnrolled(C::KIND)),
        }
    }

    /// The version of `user`'s credential of `kind`, if there is one.
    async fn version_of(
        &self,
        tenant: TenantId,
        user: UserId,
        kind: FactorKind,
    ) -> Result<Option<u64>> {
        let current = self
            .store
            .user_factor(tenant, user, kind)
            .await
            .map_err(store_err)?;
        Ok(current.map(|v| v.version))
    }

    /// Enrol a factor for `user` (who must belong to `tenant`, which must
    /// offer the factor).
    pub async fn enroll(
        &self,
        tenant: TenantId,
        user: UserId,
        what: Enroll<'_>,
        client: &ClientInfo,
    ) -> Result<Enrolled> {
        let rq = self.env.request(client);
        let account = self.user(tenant, user).await?;
        let now = rq.now;
        match what {
            Enroll::Totp => {
                let FactorSettings::Totp(settings) =
                    self.settings(tenant, FactorKind::Totp).await?
                else {
                    return Err(Error::FactorNotExpected);
                };
                let existing = self
                    .store
                    .user_factor(tenant, user, FactorKind::Totp)
                    .await
                    .map_err(store_err)?;
                let expected = match &existing {
                    Some(Versioned {
                        value: FactorCredential::Totp(t),
                        ..
                    }) if t.confirmed => {
                        return Err(Error::AlreadyExists("a confirmed totp credential".into()));
                    }
                    Some(v) => Some(v.version),
                    None => None,
                };
                let cred = new_totp(&self.env, &settings, now)?;
                let material =
                    totp_enrollment(&cred, &settings.issuer, account.identifier.as_str())?;
                let cred = cred.seal(self.sealer.as_ref(), &self.env, tenant, user)?;
                save(&self.store, tenant, user, expected, cred).await?;
                Ok(Enrolled::Totp(material))
            }
            Enroll::RecoveryCodes => {
                let FactorSettings::RecoveryCodes(settings) =
                    self.settings(tenant, FactorKind::RecoveryCodes).await?
                else {
                    return Err(Error::FactorNotExpected);
                };
                let (codes, set) = recovery::new_set(&self.env, &settings, now)?;
                let expected = self
                    .version_of(tenant, user, FactorKind::RecoveryCodes)
                    .await?;
                save(&self.store, tenant, user, expected, set).await?;
                let factor = FactorKind::RecoveryCodes;
                self.audit_factor((tenant, user), AuditKind::FactorEnrolled, factor, rq)
                    .await?;
                Ok(Enrolled::RecoveryCodes(codes))
            }
            Enroll::EmailOtp { address } => {
                let FactorSettings::EmailOtp(settings) =
                    self.settings(tenant, FactorKind::EmailOtp).await?
                else {
                    return Err(Error::FactorNotExpected);
                };
                let address = EmailAddress::parse(address)?;
                let (per_address, window) = (
                    self.config.email_sends_per_address,
                    self.config.email_address_window,
                );
                if !self
                    .address_limiter
                    .allow(tenant, &address, now, per_address, window)
                {
                    return Err(InvalidInput::new(
                        "email",
                        "too many codes were sent to this address: try again later",
                    )
                    .into());
                }
                let limits = SendLimits {
                    per_flow: 1,
                    interval: std::time::Duration::ZERO,
                };
                let key = self.code_key()?;
                let (code, pending) =
                    PendingCode::issue(key, &self.env, &settings, now, None, limits)?;
                let expires_at = pending.expires_at;
                let cred = EmailOtpCredential {
                    address: address.clone(),
                    confirmed: false,
                    pending: Some(pending),
                    created_at: now,
                };
                let expected = self.version_of(tenant, user, FactorKind::EmailOtp).await?;
                save(&self.store, tenant, user, expected, cred).await?;
                let tenant_row = self.tenant(tenant).await?;
                let code = NoticeSecret::new(code);
                let notice = Notice::AddressConfirmation { code, expires_at };
                self.notify(&tenant_row, &address, notice).await?;
                Ok(Enrolled::EmailOtp)
            }
            Enroll::Passkey { name } => {
                let name = passkey::passkey_name(name)?;
                let webauthn = passkey::webauthn_for(&self.passkey_settings(tenant).await?)?;
                let existing =
                    credential::<PasskeysCredential, _>(&self.store, tenant, user).await?;
                let exclude: Vec<_> = existing
                    .iter()
                    .flat_map(|v| v.value.keys.iter().map(|k| k.passkey.cred_id().clone()))
                    .collect();
                let display = account
                    .display_name
                    .clone()
                    .unwrap_or_else(|| account.identifier.to_string());
                let (challenge, ceremony) = webauthn
                    .start_passkey_registration(
                        *user.as_uuid(),
                        account.identifier.as_str(),
                        &display,
                        Some(exclude),
                    )
                    .map_err(Error::Passkey)?;
                let state = FlowState::PasskeyRegistration(PasskeyRegistrationState {
                    user,
                    name,
                    ceremony,
                });
                let (token, _) = self.new_flow(tenant, Some(user), state, now).await?;
                Ok(Enrolled::Passkey {
                    ceremony: token,
                    challenge: Box::new(challenge),
                })
            }
        }
    }

    /// Finish an enrolment with its proof. A wrong (or expired) code is
    /// [`Error::InvalidInput`] (field `code`): the caller is signed in, the
    /// code is bad input, not a failed authentication. It changes nothing
    /// but the guess count.
    pub async fn confirm(
        &self,
        tenant: TenantId,
        user: UserId,
        proof: Confirm<'_>,
        client: &ClientInfo,
    ) -> Result<Option<PasskeyInfo>> {
        let rq = self.env.request(client);
        let account = self.user(tenant, user).await?;
        match proof {
            Confirm::Totp { code } => {
                self.settings(tenant, FactorKind::Totp).await?;
                let (cred, version) = self.enrolled::<TotpCredential>(tenant, user).await?;
                // The credential's own length: the tenant's may have changed.
                check_digits(code, cred.digits, "totp code")?;
                if cred.confirmed {
                    return Err(Error::AlreadyExists("a confirmed totp credential".into()));
                }
                let sealer = self.sealer.as_ref();
                let mut cred = cred.open(sealer, tenant, user)?;
                let skew = self.totp_skew(tenant).await?;
                let TotpCheck::Valid { step } = check_totp(&cred, code, rq.now, skew)? else {
                    return Err(wrong_code());
                };
                cred.last_step = Some(step);
                cred.confirmed = true;
                let cred = cred.seal(sealer, &self.env, tenant, user)?;
                save(&self.store, tenant, user, Some(version), cred).await?;
                let factor = FactorKind::Totp;
                self.audit_factor((tenant, user), AuditKind::FactorEnrolled, factor, rq)
                    .await?;
                Ok(None)
            }
            Confirm::EmailOtp { code } => {
                let FactorSettings::EmailOtp(settings) =
                    self.settings(tenant, FactorKind::EmailOtp).await?
                else {
                    return Err(Error::FactorNotExpected);
                };
                check_digits(code, settings.digits, "email code")?;
                let (mut cred, version) = self.enrolled::<EmailOtpCredential>(tenant, user).await?;
                let max = settings.max_attempts;
                let key = self.code_key()?;
                let right = email_code::confirm_code(key, &mut cred, code, rq.now, max)?;
                save(&self.store, tenant, user, Some(version), cred).await?;
                if !right {
                    return Err(wrong_code());
                }
                let factor = FactorKind::EmailOtp;
                self.audit_factor((tenant, user), AuditKind::FactorEnrolled, factor, rq)
                    .await?;
                Ok(None)
            }
            Confirm::Passkey {
                ceremony,
                credential,
            } => self
                .finish_passkey_registration(&account, ceremony, credential, rq)
                .await
                .map(Some),
        }
    }

    async fn finish_passkey_registration(
        &self,
        account: &User,
        ceremony: &str,
        credential: &str,
        rq: Request<'_>,
    ) -> Result<PasskeyInfo> {
        let (tenant, user) = (account.tenant_id, account.id);
        let key = TokenKind::FLOW.parse(ceremony)?;
        let reg = passkey::parse_registration(credential)?;
        let Some(found) = self.store.flow(tenant, &key).await.map_err(store_err)? else {
            return Err(Error::FlowNotFound);
        };
        let FlowState::PasskeyRegistration(state) = &found.value.state else {
            return Err(Error::FlowNotFound);
        };
        if state.user != user {
            return Err(Error::FlowNotFound);
        }
        // The ceremony is single-use, whatever happens next.
        if !self
            .store
            .delete_flow(tenant, &key)
            .await
            .map_err(store_err)?
        {
            return Err(Error::FlowNotFound);
        }
        if rq.now >= found.value.expires_at {
            return Err(Error::FlowExpired);
        }
        let webauthn = passkey::webauthn_for(&self.passkey_settings(tenant).await?)?;
        let passkey = webauthn
            .finish_passkey_registration(&reg, &state.ceremony)
            .map_err(Error::Passkey)?;
        let entry = PasskeyEntry {
            id: self.env.uuid_v7()?,
            name: state.name.clone(),
            passkey,
            created_at: rq.now,
            last_used_at: None,
        };
        let info = PasskeyInfo::from(&entry);
        passkey::add(&self.store, tenant, user, &entry).await?;
        let factor = FactorKind::Passkey;
        self.audit_factor((tenant, user), AuditKind::FactorEnrolled, factor, rq)
            .await?;
        Ok(info)
    }

    /// The user's passkeys.
    pub async fn passkeys(&self, tenant: TenantId, user: UserId) -> Result<Vec<PasskeyInfo>> {
        self.user(tenant, user).await?;
        Ok(
            credential::<PasskeysCredential, _>(&self.store, tenant, user)
                .await?
                .map(|v| v.value.keys.iter().map(PasskeyInfo::from).collect())
                .unwrap_or_default(),
        )
    }

    /// Rename one of the user's passkeys. Returns whether it exists.
    pub async fn rename_passkey(
        &self,
        tenant: TenantId,
        user: UserId,
        id: uuid::Uuid,
        name: &str,
    ) -> Result<bool> {
        let name = passkey::passkey_name(name)?;
        self.user(tenant, user).await?;
        passkey::edit(&self.store, tenant, user, |set| {
            set.keys
                .iter_mut()
                .find(|k| k.id == id)
                .map(|k| k.name = name.clone())
                .is_some()
        })
        .await
    }

    /// Delete one of the user's passkeys. Returns whether it existed.
    pub async fn delete_passkey(
        &self,
        tenant: TenantId,
        user: UserId,
        id: uuid::Uuid,
        client: &ClientInfo,
    ) -> Result<bool> {
        let rq = self.env.request(client);
        self.user(tenant, user).await?;
        let removed = passkey::edit(&self.store, tenant, user, |set| {
            let before = set.keys.len();
            set.keys.retain(|k| k.id != id);
            set.keys.len() != before
        })
        .await?;
        if removed {
            let factor = FactorKind::Passkey;
            self.audit_factor((tenant, user), AuditKind::FactorRemoved, factor, rq)
                .await?;
        }
        Ok(removed)
    }

    /// Remove a factor of the user. Returns whether one was enrolled.
    pub async fn remove_factor(
        &self,
        tenant: TenantId,
        user: UserId,
        kind: FactorKind,
        client: &ClientInfo,
    ) -> Result<bool> {
        let rq = self.env.request(client);
        self.user(tenant, user).await?;
        let removed = self
            .store
            .remove_user_factor(tenant, user, kind)
            .await
            .map_err(store_err)?;
        if removed {
            self.audit_factor((tenant, user), AuditKind::FactorRemoved, kind, rq)
                .await?;
        }
        Ok(removed)
    }
}

/// A confirmation code that does not match (or has expired).
fn wrong_code() -> Error {
    InvalidInput::new("code", "the code does not match (or has expired)").into()
}
