//! Checking one submitted factor: parsing the caller's input, then
//! verifying it for the flow's account (or for nobody, with the same work).

use webauthn_rs::prelude::PublicKeyCredential;

use crate::audit::AuditReason;
use crate::env::Request;
use crate::error::{InvalidInput, Result};
use crate::factor::{
    Check, FactorKind, FactorSettings, check_digits, email_code, normalize_password, passkey,
    recovery, totp,
};
use crate::flow::Awaiting;
use crate::ids::TenantId;
use crate::model::{Tenant, User};
use crate::store::Store;

use super::AuthnService;
use super::login::FactorResponse;

impl<S> AuthnService<S>
where
    S: Store,
{
    pub(super) async fn parse_response(
        &self,
        tenant: TenantId,
        response: FactorResponse<'_>,
    ) -> Result<Parsed> {
        Ok(match response {
            FactorResponse::Password(p) => Parsed::Password(normalize_password(p)?),
            FactorResponse::Totp(code) => {
                // The shape only: the length that counts is the enrolled
                // credential's, checked with it (the tenant's may differ).
                let digits = code.len().clamp(6, 8);
                check_digits(code, u8::try_from(digits).unwrap_or(6), "totp code")?;
                Parsed::Totp(code.to_owned())
            }
            FactorResponse::RecoveryCode(code) => {
                Parsed::Recovery(recovery::normalize_recovery_code(code)?)
            }
            FactorResponse::EmailCode(code) => {
                let digits = match self.tenant_settings(tenant, FactorKind::EmailOtp).await? {
                    Some(FactorSettings::EmailOtp(s)) => s.digits,
                    _ => 6,
                };
                check_digits(code, digits, "email code")?;
                Parsed::Email(code.to_owned())
            }
            FactorResponse::Passkey(json) => {
                Parsed::Passkey(Box::new(passkey::parse_assertion(json)?))
            }
            // Submitted to federated flows only, before parsing.
            FactorResponse::IdToken(_) => {
                return Err(
                    InvalidInput::new("factor", "an ID token needs a federated flow").into(),
                );
            }
        })
    }

    /// Check a parsed factor for `user` (`None`: nobody, the same work and
    /// a failure).
    pub(super) async fn check_factor(
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
                    let sealing = (&self.env, self.sealer.as_ref());
                    totp::verify(&self.store, sealing, rq.now, (tenant.id, u.id), &code, skew).await
                }
                None => Ok(Check::Failed(AuditReason::UnknownIdentifier)),
            },
            Parsed::Recovery(code) => match user {
                Some(u) => recovery::spend_code(&self.store, rq.now, tenant.id, u.id, &code).await,
                None => Ok(Check::Failed(AuditReason::UnknownIdentifier)),
            },
            Parsed::Email(code) => Ok(email_code::check_flow_code(
                self.code_key()?,
                &mut w.email_code,
                user.is_some(),
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

    pub(super) async fn email_max_attempts(&self, tenant: TenantId) -> Result<u32> {
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

/// A factor as parsed from the caller's input.
pub(super) enum Parsed {
    Password(String),
    Totp(String),
    Recovery(String),
    Email(String),
    Passkey(Box<PublicKeyCredential>),
}
