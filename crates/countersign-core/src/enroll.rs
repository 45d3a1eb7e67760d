//! Factor enrolment, confirmation and removal.

use chrono::{DateTime, Utc};
use webauthn_rs::prelude::{CreationChallengeResponse, RegisterPublicKeyCredential};

use crate::audit::{AuditKind, AuditStatus};
use crate::error::{Error, InvalidInput, Result};
use crate::factor::{
    EmailOtpCredential, FactorKind, PasskeyEntry, PasskeysCredential, PendingCode,
    RecoveryCodeSlot, RecoveryCodesCredential, TenantFactor, UserFactor, Versioned,
};
use crate::flow::{FlowState, PasskeyRegistrationState};
use crate::ids::{TenantId, UserId};
use crate::login::webauthn_for;
use crate::model::{ClientInfo, EmailAddress, User, parse_display_name};
use crate::otp::{self, TotpCheck, TotpEnrollment};
use crate::service::{AuthnService, store_err};
use crate::store::{FactorStore, FlowStore, IdentityStore, SessionStore};
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

/// What enrolment hands back.
#[derive(Debug, Clone)]
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

/// A registered passkey as listed to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyInfo {
    /// Its id.
    pub id: uuid::Uuid,
    /// Its name.
    pub name: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it last signed in.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<&PasskeyEntry> for PasskeyInfo {
    fn from(e: &PasskeyEntry) -> Self {
        Self {
            id: e.id,
            name: e.name.clone(),
            created_at: e.created_at,
            last_used_at: e.last_used_at,
        }
    }
}

fn passkey_name(name: &str) -> Result<String> {
    let name = parse_display_name(name).map_err(|e| InvalidInput::new("passkey name", e.reason))?;
    if name.is_empty() || name.chars().count() > 64 {
        return Err(InvalidInput::new("passkey name", "must be 1 to 64 characters").into());
    }
    Ok(name)
}

impl<S> AuthnService<S>
where
    S: IdentityStore + FactorStore + FlowStore + SessionStore,
{
    async fn settings(&self, tenant: TenantId, kind: FactorKind) -> Result<TenantFactor> {
        self.tenant_settings(tenant, kind).await?.ok_or_else(|| {
            InvalidInput::new("factor", format!("this tenant does not offer `{kind}`")).into()
        })
    }

    async fn audit_factor(
        &self,
        tenant: TenantId,
        user: UserId,
        kind: AuditKind,
        factor: FactorKind,
        client: &ClientInfo,
    ) -> Result<()> {
        self.audit(
            self.event(tenant, Some(user), kind, AuditStatus::Success, client)
                .map(|e| e.with_factor(factor)),
        )
        .await
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
        let account = self.user(tenant, user).await?;
        let now = self.env.now();
        match what {
            Enroll::Totp => {
                let TenantFactor::Totp(settings) = self.settings(tenant, FactorKind::Totp).await?
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
                        value: UserFactor::Totp(t),
                        ..
                    }) if t.confirmed => {
                        return Err(Error::AlreadyExists("a confirmed totp credential".into()));
                    }
                    Some(v) => Some(v.version),
                    None => None,
                };
                let cred = otp::new_totp(&self.env, &settings)?;
                let material =
                    otp::totp_enrollment(&cred, &settings.issuer, account.identifier.as_str())?;
                self.cas(tenant, user, expected, UserFactor::Totp(cred))
                    .await?;
                Ok(Enrolled::Totp(material))
            }
            Enroll::RecoveryCodes => {
                let TenantFactor::RecoveryCodes(settings) =
                    self.settings(tenant, FactorKind::RecoveryCodes).await?
                else {
                    return Err(Error::FactorNotExpected);
                };
                let mut codes = Vec::with_capacity(usize::from(settings.count));
                let mut slots = Vec::with_capacity(usize::from(settings.count));
                for _ in 0..settings.count {
                    let code = otp::new_recovery_code(&self.env)?;
                    let normal = otp::normalize_recovery_code(&code)?;
                    slots.push(RecoveryCodeSlot {
                        hash: otp::sha256_hex(normal.as_bytes()),
                        used_at: None,
                    });
                    codes.push(code);
                }
                let set = UserFactor::RecoveryCodes(RecoveryCodesCredential {
                    codes: slots,
                    generated_at: now,
                });
                let current = self
                    .store
                    .user_factor(tenant, user, FactorKind::RecoveryCodes)
                    .await
                    .map_err(store_err)?;
                self.cas(tenant, user, current.map(|v| v.version), set)
                    .await?;
                self.audit_factor(
                    tenant,
                    user,
                    AuditKind::FactorEnrolled,
                    FactorKind::RecoveryCodes,
                    client,
                )
                .await?;
                Ok(Enrolled::RecoveryCodes(codes))
            }
            Enroll::EmailOtp { address } => {
                let TenantFactor::EmailOtp(settings) =
                    self.settings(tenant, FactorKind::EmailOtp).await?
                else {
                    return Err(Error::FactorNotExpected);
                };
                let address = EmailAddress::parse(address)?;
                let code = otp::numeric_code(&self.env, settings.digits)?;
                let cred = UserFactor::EmailOtp(EmailOtpCredential {
                    address: address.clone(),
                    confirmed: false,
                    pending: Some(PendingCode {
                        hash: otp::sha256_hex(code.as_bytes()),
                        expires_at: now + chrono::Duration::seconds(i64::from(settings.ttl_secs)),
                        attempts: 0,
                    }),
                    created_at: now,
                });
                let current = self
                    .store
                    .user_factor(tenant, user, FactorKind::EmailOtp)
                    .await
                    .map_err(store_err)?;
                self.cas(tenant, user, current.map(|v| v.version), cred)
                    .await?;
                self.send_code(tenant, address, &code, "Confirm your email address")
                    .await?;
                Ok(Enrolled::EmailOtp)
            }
            Enroll::Passkey { name } => {
                let name = passkey_name(name)?;
                let webauthn = webauthn_for(&self.passkey_settings(tenant).await?)?;
                let existing = self.passkeys_of(tenant, user).await?;
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
                    .map_err(|e| Error::Passkey(e.to_string()))?;
                let (token, key) = TokenKind::FLOW.issue(&self.env)?;
                let ttl = chrono::Duration::from_std(self.config.flow_ttl)
                    .unwrap_or(chrono::Duration::minutes(5));
                let record = crate::flow::FlowRecord {
                    key,
                    tenant_id: tenant,
                    user_id: Some(user),
                    state: FlowState::PasskeyRegistration(PasskeyRegistrationState {
                        user,
                        name,
                        ceremony,
                    }),
                    created_at: now,
                    expires_at: now + ttl,
                };
                self.store.create_flow(&record).await.map_err(store_err)?;
                Ok(Enrolled::Passkey {
                    ceremony: token,
                    challenge: Box::new(challenge),
                })
            }
        }
    }

    async fn cas(
        &self,
        tenant: TenantId,
        user: UserId,
        expected: Option<u64>,
        factor: UserFactor,
    ) -> Result<()> {
        let saved = self
            .store
            .compare_and_save_user_factor(tenant, user, expected, &factor)
            .await
            .map_err(store_err)?;
        if saved {
            Ok(())
        } else {
            Err(Error::Concurrent("the credential changed meanwhile"))
        }
    }

    /// Finish an enrolment with its proof. A wrong code is
    /// [`Error::InvalidCredentials`] and changes nothing but the guess count.
    pub async fn confirm(
        &self,
        tenant: TenantId,
        user: UserId,
        proof: Confirm<'_>,
        client: &ClientInfo,
    ) -> Result<Option<PasskeyInfo>> {
        let account = self.user(tenant, user).await?;
        match proof {
            Confirm::Totp { code } => {
                let digits = match self.settings(tenant, FactorKind::Totp).await? {
                    TenantFactor::Totp(s) => s.digits,
                    _ => 6,
                };
                otp::check_digits(code, digits, "totp code")?;
                let Some(Versioned {
                    value: UserFactor::Totp(mut cred),
                    version,
                }) = self
                    .store
                    .user_factor(tenant, user, FactorKind::Totp)
                    .await
                    .map_err(store_err)?
                else {
                    return Err(Error::FactorNotEnrolled(FactorKind::Totp));
                };
                if cred.confirmed {
                    return Err(Error::AlreadyExists("a confirmed totp credential".into()));
                }
                let skew = match self.tenant_settings(tenant, FactorKind::Totp).await? {
                    Some(TenantFactor::Totp(s)) => s.skew_steps,
                    _ => 1,
                };
                match otp::check_totp(&cred, code, self.env.now(), skew)? {
                    TotpCheck::Valid { step } => {
                        cred.last_step = Some(step);
                        cred.confirmed = true;
                        self.cas(tenant, user, Some(version), UserFactor::Totp(cred))
                            .await?;
                        self.audit_factor(
                            tenant,
                            user,
                            AuditKind::FactorEnrolled,
                            FactorKind::Totp,
                            client,
                        )
                        .await?;
                        Ok(None)
                    }
                    _ => Err(Error::InvalidCredentials),
                }
            }
            Confirm::EmailOtp { code } => {
                let TenantFactor::EmailOtp(settings) =
                    self.settings(tenant, FactorKind::EmailOtp).await?
                else {
                    return Err(Error::FactorNotExpected);
                };
                otp::check_digits(code, settings.digits, "email code")?;
                let Some(Versioned {
                    value: UserFactor::EmailOtp(mut cred),
                    version,
                }) = self
                    .store
                    .user_factor(tenant, user, FactorKind::EmailOtp)
                    .await
                    .map_err(store_err)?
                else {
                    return Err(Error::FactorNotEnrolled(FactorKind::EmailOtp));
                };
                let Some(mut pending) = cred.pending.take() else {
                    return Err(Error::ChallengeMissing);
                };
                let right = otp::hashes_match(&pending.hash, &otp::sha256_hex(code.as_bytes()));
                let live = self.env.now() < pending.expires_at;
                if right && live {
                    cred.confirmed = true;
                    self.cas(tenant, user, Some(version), UserFactor::EmailOtp(cred))
                        .await?;
                    self.audit_factor(
                        tenant,
                        user,
                        AuditKind::FactorEnrolled,
                        FactorKind::EmailOtp,
                        client,
                    )
                    .await?;
                    return Ok(None);
                }
                pending.attempts = pending.attempts.saturating_add(1);
                if live && pending.attempts < settings.max_attempts {
                    cred.pending = Some(pending);
                }
                self.cas(tenant, user, Some(version), UserFactor::EmailOtp(cred))
                    .await?;
                Err(Error::InvalidCredentials)
            }
            Confirm::Passkey {
                ceremony,
                credential,
            } => self
                .finish_passkey_registration(&account, ceremony, credential, client)
                .await
                .map(Some),
        }
    }

    async fn finish_passkey_registration(
        &self,
        account: &User,
        ceremony: &str,
        credential: &str,
        client: &ClientInfo,
    ) -> Result<PasskeyInfo> {
        let (tenant, user) = (account.tenant_id, account.id);
        let key = TokenKind::FLOW.parse(ceremony)?;
        if credential.len() > 64 * 1024 {
            return Err(InvalidInput::new("passkey credential", "too large").into());
        }
        let reg: RegisterPublicKeyCredential = serde_json::from_str(credential)
            .map_err(|_| InvalidInput::new("passkey credential", "malformed JSON"))?;
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
        if self.env.now() >= found.value.expires_at {
            return Err(Error::FlowExpired);
        }
        let webauthn = webauthn_for(&self.passkey_settings(tenant).await?)?;
        let passkey = webauthn
            .finish_passkey_registration(&reg, &state.ceremony)
            .map_err(|e| Error::Passkey(e.to_string()))?;
        let entry = PasskeyEntry {
            id: self.env.uuid_v7()?,
            name: state.name.clone(),
            passkey,
            created_at: self.env.now(),
            last_used_at: None,
        };
        let info = PasskeyInfo::from(&entry);
        for _ in 0..4 {
            let current = self.passkeys_of(tenant, user).await?;
            let (mut set, expected) = match current {
                Some(v) => (v.value, Some(v.version)),
                None => (PasskeysCredential::default(), None),
            };
            if set
                .keys
                .iter()
                .any(|k| k.passkey.cred_id() == entry.passkey.cred_id())
            {
                return Err(Error::AlreadyExists("this passkey".into()));
            }
            set.keys.push(entry.clone());
            if self
                .store
                .compare_and_save_user_factor(tenant, user, expected, &UserFactor::Passkey(set))
                .await
                .map_err(store_err)?
            {
                self.audit_factor(
                    tenant,
                    user,
                    AuditKind::FactorEnrolled,
                    FactorKind::Passkey,
                    client,
                )
                .await?;
                return Ok(info);
            }
        }
        Err(Error::Concurrent("passkeys kept changing"))
    }

    /// The user's passkeys.
    pub async fn passkeys(&self, tenant: TenantId, user: UserId) -> Result<Vec<PasskeyInfo>> {
        self.user(tenant, user).await?;
        Ok(self
            .passkeys_of(tenant, user)
            .await?
            .map(|v| v.value.keys.iter().map(PasskeyInfo::from).collect())
            .unwrap_or_default())
    }

    /// Rename one of the user's passkeys. Returns whether it exists.
    pub async fn rename_passkey(
        &self,
        tenant: TenantId,
        user: UserId,
        id: uuid::Uuid,
        name: &str,
    ) -> Result<bool> {
        let name = passkey_name(name)?;
        self.edit_passkeys(tenant, user, |set| {
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
        let removed = self
            .edit_passkeys(tenant, user, |set| {
                let before = set.keys.len();
                set.keys.retain(|k| k.id != id);
                set.keys.len() != before
            })
            .await?;
        if removed {
            self.audit_factor(
                tenant,
                user,
                AuditKind::FactorRemoved,
                FactorKind::Passkey,
                client,
            )
            .await?;
        }
        Ok(removed)
    }

    async fn edit_passkeys(
        &self,
        tenant: TenantId,
        user: UserId,
        edit: impl Fn(&mut PasskeysCredential) -> bool,
    ) -> Result<bool> {
        self.user(tenant, user).await?;
        for _ in 0..4 {
            let Some(mut current) = self.passkeys_of(tenant, user).await? else {
                return Ok(false);
            };
            if !edit(&mut current.value) {
                return Ok(false);
            }
            if self
                .store
                .compare_and_save_user_factor(
                    tenant,
                    user,
                    Some(current.version),
                    &UserFactor::Passkey(current.value),
                )
                .await
                .map_err(store_err)?
            {
                return Ok(true);
            }
        }
        Err(Error::Concurrent("passkeys kept changing"))
    }

    /// Remove a factor of the user. Returns whether one was enrolled.
    pub async fn remove_factor(
        &self,
        tenant: TenantId,
        user: UserId,
        kind: FactorKind,
        client: &ClientInfo,
    ) -> Result<bool> {
        self.user(tenant, user).await?;
        let removed = self
            .store
            .remove_user_factor(tenant, user, kind)
            .await
            .map_err(store_err)?;
        if removed {
            self.audit_factor(tenant, user, AuditKind::FactorRemoved, kind, client)
                .await?;
        }
        Ok(removed)
    }
}
