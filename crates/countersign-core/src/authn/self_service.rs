//! What a signed-in user does to their own account, behind a recent
//! authentication (ASVS 3.7.1).

use crate::authn::{AuthnService, Confirm, Enroll, Enrolled};
use crate::error::Result;
use crate::factor::{FactorKind, PasskeyInfo};
use crate::model::ClientInfo;
use crate::session::{SessionRecord, require_recent_at};
use crate::store::Store;

/// A signed-in user's sensitive operations on their own account: enrol,
/// confirm or remove a factor, regenerate recovery codes, delete a
/// passkey, change the password (which may prove the current password
/// instead). Each first checks that the session's
/// authentication is recent enough ([`AuthnConfig::recent_auth`], by
/// default a factor verified in the last 5 minutes) and otherwise fails
/// with [`Error::StepUpRequired`] naming what would satisfy it: a step-up
/// ([`AuthnService::begin_step_up`], then
/// [`SessionService::step_up`](crate::SessionService::step_up)) makes the
/// same call succeed.
///
/// Get one with [`AuthnService::self_service`], passing the session that
/// [`SessionService::validate`](crate::SessionService::validate) returned
/// for the caller's token. Administrators act through the
/// `AuthnService` methods that name a tenant and a user.
///
/// [`AuthnConfig::recent_auth`]: crate::AuthnConfig::recent_auth
/// [`Error::StepUpRequired`]: crate::Error::StepUpRequired
#[derive(Debug)]
pub struct SelfService<'a, S> {
    svc: &'a AuthnService<S>,
    session: &'a SessionRecord,
}

impl<S: Store> AuthnService<S> {
    /// The sensitive self-service operations of the user of `session`.
    pub fn self_service<'a>(&'a self, session: &'a SessionRecord) -> SelfService<'a, S> {
        SelfService { svc: self, session }
    }
}

impl<S: Store> SelfService<'_, S> {
    /// Refuse unless the session's authentication is recent enough now.
    fn gate(&self) -> Result<()> {
        let now = self.svc.env().now();
        Ok(require_recent_at(
            self.session,
            &self.svc.config().recent_auth,
            now,
        )?)
    }

    /// Enrol a factor (or regenerate recovery codes), as
    /// [`AuthnService::enroll`].
    pub async fn enroll(&self, what: Enroll<'_>, client: &ClientInfo) -> Result<Enrolled> {
        self.gate()?;
        let s = self.session;
        self.svc.enroll(s.tenant_id, s.user_id, what, client).await
    }

    /// Confirm a pending enrolment, as [`AuthnService::confirm`].
    pub async fn confirm(
        &self,
        proof: Confirm<'_>,
        client: &ClientInfo,
    ) -> Result<Option<PasskeyInfo>> {
        self.gate()?;
        let s = self.session;
        self.svc
            .confirm(s.tenant_id, s.user_id, proof, client)
            .await
    }

    /// Remove one of the user's factors, as [`AuthnService::remove_factor`].
    pub async fn remove_factor(&self, kind: FactorKind, client: &ClientInfo) -> Result<bool> {
        self.gate()?;
        let s = self.session;
        self.svc
            .remove_factor(s.tenant_id, s.user_id, kind, client)
            .await
    }

    /// Delete one of the user's passkeys, as
    /// [`AuthnService::delete_passkey`].
    pub async fn delete_passkey(&self, id: uuid::Uuid, client: &ClientInfo) -> Result<bool> {
        self.gate()?;
        let s = self.session;
        self.svc
            .delete_passkey(s.tenant_id, s.user_id, id, client)
            .await
    }

    /// Change the password, proving either the current one (as
    /// [`AuthnService::change_password`]: a wrong one counts toward
    /// lockout) or, with `current` `None`, a recent authentication of this
    /// session (else [`Error::StepUpRequired`]). The rules and history
    /// apply; every other session of the user ends, this one stays; the
    /// owner is told by mail.
    ///
    /// [`Error::StepUpRequired`]: crate::Error::StepUpRequired
    pub async fn change_password(
        &self,
        current: Option<&str>,
        new: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        let s = self.session;
        match current {
            Some(current) => {
                self.svc
                    .change_password(s.tenant_id, s.user_id, current, new, Some(s.id), client)
                    .await
            }
            None => {
                self.gate()?;
                self.svc
                    .set_password(s.tenant_id, s.user_id, new, Some(s.id), client)
                    .await
            }
        }
    }
}
