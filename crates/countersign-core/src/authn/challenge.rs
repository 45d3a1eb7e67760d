//! Challenges a login flow issues (passkey assertions, emailed codes), the
//! username-less passkey submission, and the decoys that make an unknown
//! account's flow answer like a known one's.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use webauthn_rs::fake::{FakePasskeyDistribution, WebauthnFakeCredentialGenerator};
use webauthn_rs::prelude::{PublicKeyCredential, RequestChallengeResponse};

use super::AuthnService;
use super::login::FlowSlot;
use super::login::Outcome;
use crate::audit::AuditReason;
use crate::env::Request;
use crate::error::{Error, InvalidInput, Result, store_err};
use crate::factor::email_code::SendLimits;
use crate::factor::{
    Check, EmailOtpCredential, FactorKind, FactorSettings, PasskeysCredential, PendingCode,
    credential, passkey,
};
use crate::flow::{Awaiting, FlowEvent, LoginState, PasskeyChallenge};
use crate::ids::UserId;
use crate::model::{ClientInfo, Identifier, Tenant, User};
use crate::notice::{Notice, NoticeSecret};
use crate::store::Store;
use crate::{Submission, TenantId};

impl<S> AuthnService<S>
where
    S: Store,
{
    /// The stable keyed tag of an identifier in a tenant: 16 bytes of
    /// HMAC-SHA256 under the service's [`CodeKey`](crate::CodeKey), hex.
    pub(super) fn identifier_tag(
        &self,
        tenant: &Tenant,
        identifier: &Identifier,
    ) -> Result<String> {
        let tag = self.code_key()?.tag(
            "countersign/identifier-tag/v1",
            &[
                tenant.id.as_uuid().as_bytes(),
                identifier.as_str().as_bytes(),
            ],
        );
        Ok(tag.iter().take(16).map(|b| format!("{b:02x}")).collect())
    }

    /// Decoy credential ids for the identifier whose keyed tag is `tag`:
    /// as many and as long as real accounts' tend to be (webauthn-rs's
    /// fake credential distribution), the same for every flow of the
    /// identifier while the [`CodeKey`](crate::CodeKey) stays.
    fn decoy_credential_ids(&self, tag: &str) -> Result<Vec<Vec<u8>>> {
        let seed = self.code_key()?.tag("countersign/passkey-decoy/v1", &[]);
        let generator = WebauthnFakeCredentialGenerator::<FakePasskeyDistribution>::new(&seed)
            .map_err(Error::Passkey)?;
        generator.generate(tag.as_bytes()).map_err(Error::Passkey)
    }

    /// Issue a passkey challenge for the current step of a flow (for a
    /// user who named themselves). The challenge is kept in the flow and is
    /// good for one answer.
    ///
    /// The answer does not tell whether the account exists or has
    /// passkeys: an account with passkeys gets their ids; an unknown
    /// identifier, or an account without passkeys, gets decoy ids derived
    /// from the identifier under the service's [`CodeKey`](crate::CodeKey)
    /// (the same in every flow for that identifier, of the count and
    /// lengths real accounts have). When the decoys are none, as for some
    /// real accounts, the answer is [`Error::FactorNotEnrolled`] for both.
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
        let account = match w.user {
            Some(id) => self
                .store
                .get_user(tenant.id, id)
                .await
                .map_err(store_err)?,
            None => None,
        };
        let keys = match &account {
            Some(u) => credential::<PasskeysCredential, _>(&self.store, tenant.id, u.id)
                .await?
                .map(|v| v.value.keys)
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let (challenge, ceremony) = if keys.is_empty() {
            let tag = match &account {
                Some(u) => Some(self.identifier_tag(&tenant, &u.identifier)?),
                None => w.decoy_tag.clone(),
            };
            let Some(tag) = tag else {
                return Err(Error::FactorNotEnrolled(FactorKind::Passkey));
            };
            let ids = self.decoy_credential_ids(&tag)?;
            if ids.is_empty() {
                return Err(Error::FactorNotEnrolled(FactorKind::Passkey));
            }
            // The shape of a real challenge for these ids; its ceremony
            // state can verify nothing (no account holds these keys).
            let (mut challenge, ceremony) = webauthn
                .start_discoverable_authentication()
                .map_err(Error::Passkey)?;
            challenge.mediation = None;
            challenge.public_key.extensions = None;
            challenge.public_key.allow_credentials = ids
                .iter()
                .map(|id| {
                    let entry = serde_json::json!({
                        "type": "public-key",
                        "id": URL_SAFE_NO_PAD.encode(id),
                    });
                    serde_json::from_value(entry)
                        .map_err(|e| Error::internal_from("decoy credential", e))
                })
                .collect::<Result<_>>()?;
            (challenge, PasskeyChallenge::Discoverable(ceremony))
        } else {
            let passkeys: Vec<_> = keys.into_iter().map(|k| k.passkey).collect();
            let (challenge, ceremony) = webauthn
                .start_passkey_authentication(&passkeys)
                .map_err(Error::Passkey)?;
            (challenge, PasskeyChallenge::Known(ceremony))
        };
        w.passkey = Some(ceremony);
        let user = w.user;
        self.save_flow(&found, LoginState::AwaitingFactor(w), user)
            .await?;
        Ok(challenge)
    }

    /// A username-less passkey answer. The user handle in it is not
    /// signed, so it only says whose keys to verify against: nothing is
    /// done to that account (no failure counted, no state shown, no audit
    /// event naming it) until the assertion verifies. An unknown handle and
    /// a bad assertion answer alike.
    pub(super) async fn submit_discoverable(
        &self,
        tenant: &Tenant,
        found: &mut FlowSlot,
        mut w: Awaiting,
        cred: PublicKeyCredential,
        rq: Request<'_>,
    ) -> Result<Submission> {
        let kind = FactorKind::Passkey;
        let failed = |why: AuditReason, audit_user: Option<UserId>| Outcome {
            event: FlowEvent::Failed,
            kind,
            refusal: Some(why),
            audit_user,
        };
        let challenge = w.passkey.take();
        let webauthn = passkey::webauthn_for(&self.passkey_settings(tenant.id).await?)?;
        let handle = webauthn
            .identify_discoverable_authentication(&cred)
            .ok()
            .map(|(h, _)| UserId::from_uuid(h));
        let named = match handle {
            Some(id) => self
                .store
                .get_user(tenant.id, id)
                .await
                .map_err(store_err)?,
            None => None,
        };
        let (Some(named), Some(challenge)) = (named, challenge) else {
            let done = failed(AuditReason::UnknownIdentifier, None);
            return self.finish_submit(tenant, found, w, done, rq).await;
        };
        let (now, store) = (rq.now, &self.store);
        let check =
            passkey::verify(store, now, &webauthn, tenant.id, named.id, &cred, challenge).await?;
        if let Check::Failed(why) = check {
            return self
                .finish_submit(tenant, found, w, failed(why, None), rq)
                .await;
        }
        // Verified: the handle is the account's. Only now look at it.
        self.pass_naming_factor(tenant, found, w, &named, kind, rq)
            .await
    }

    /// A username-less flow's first factor verified and named `user`:
    /// pass it if the account may sign in and has a method starting with
    /// `kind` (the flow's candidates become those methods), else fail it
    /// as for nobody (why is audited).
    pub(super) async fn pass_naming_factor(
        &self,
        tenant: &Tenant,
        found: &mut FlowSlot,
        mut w: Awaiting,
        user: &User,
        kind: FactorKind,
        rq: Request<'_>,
    ) -> Result<Submission> {
        let failed = |why: AuditReason| Outcome {
            event: FlowEvent::Failed,
            kind,
            refusal: Some(why),
            audit_user: Some(user.id),
        };
        if let Some(event) = self.account_block(tenant, user, rq.now).await? {
            let why = match event {
                FlowEvent::Locked { .. } => AuditReason::Locked,
                _ => AuditReason::Inactive,
            };
            return self.finish_submit(tenant, found, w, failed(why), rq).await;
        }
        let mut methods = self
            .store
            .available_methods(tenant.id, user.id)
            .await
            .map_err(store_err)?;
        methods.retain(|m| m.steps.first().is_some_and(|s| s.admits(kind)));
        if methods.is_empty() {
            let done = failed(AuditReason::OutOfOrder);
            return self.finish_submit(tenant, found, w, done, rq).await;
        }
        w.user = Some(user.id);
        w.candidates = methods;
        let done = Outcome {
            event: FlowEvent::Passed { kind, at: rq.now },
            kind,
            refusal: None,
            audit_user: Some(user.id),
        };
        self.finish_submit(tenant, found, w, done, rq).await
    }

    /// Send a one-time code by email for the current step of a flow. A new
    /// code replaces any earlier one.
    ///
    /// Throttled per flow ([`AuthnConfig::email_sends_per_flow`] codes,
    /// [`AuthnConfig::email_resend_interval`] apart: past that,
    /// [`Error::InvalidInput`], for every flow alike) and per address
    /// ([`AuthnConfig::email_sends_per_address`] per window, in this
    /// process: past that, nothing is sent and the answer is the same). For
    /// an unknown identifier or a user without a confirmed address nothing
    /// is sent, and the answer is the same.
    ///
    /// [`AuthnConfig::email_sends_per_flow`]: crate::AuthnConfig::email_sends_per_flow
    /// [`AuthnConfig::email_resend_interval`]: crate::AuthnConfig::email_resend_interval
    /// [`AuthnConfig::email_sends_per_address`]: crate::AuthnConfig::email_sends_per_address
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
        let limits = SendLimits {
            per_flow: self.config.email_sends_per_flow,
            interval: self.config.email_resend_interval,
        };
        let key = self.code_key()?;
        let previous = w.email_code.as_ref();
        let (code, pending) =
            PendingCode::issue(key, &self.env, &settings, rq.now, previous, limits)?;
        let address = match w.user {
            Some(user) => credential::<EmailOtpCredential, _>(&self.store, tenant.id, user)
                .await?
                .filter(|v| v.value.confirmed)
                .map(|v| v.value.address),
            None => None,
        };
        let (per_address, window) = (
            self.config.email_sends_per_address,
            self.config.email_address_window,
        );
        let to = address.filter(|to| {
            self.address_limiter
                .allow(tenant.id, to, rq.now, per_address, window)
        });
        let expires_at = pending.expires_at;
        w.email_code = Some(pending);
        let user = w.user;
        self.save_flow(&found, LoginState::AwaitingFactor(w), user)
            .await?;
        if let Some(to) = to {
            let code = NoticeSecret::new(code);
            self.notify(&tenant, &to, Notice::LoginCode { code, expires_at })
                .await?;
        }
        Ok(())
    }
}
