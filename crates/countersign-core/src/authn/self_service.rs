//! What a signed-in user does to their own account, behind a recent
//! authentication (ASVS 3.7.1).

use crate::authn::profiles::Editor;
use crate::authn::{AuthnService, Confirm, Enroll, Enrolled};
use crate::error::Result;
use crate::factor::{FactorKind, PasskeyInfo};
use crate::model::{AccountState, ClientInfo, User};
use crate::notice::SecurityEvent;
use crate::profile::{Attributes, ProfileChange};
use crate::session::{SessionRecord, require_recent_at};
use crate::store::Store;

/// A signed-in user's operations on their own account: enrol,
/// confirm or remove a factor, regenerate recovery codes, delete a
/// passkey, change the password (which may prove the current password
/// instead), deactivate the account; and, with no recent authentication
/// needed, change their profile. Each sensitive one first checks that the session's
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

    /// Change the user's own profile: the display name (`Some(None)`
    /// clears it) and the attributes (all replaced), as
    /// [`AuthnService::update_profile`] but only the attributes the
    /// tenant's schema marks `user_editable` may differ from their stored
    /// values; the tier never changes. Anything else is
    /// [`Error::InvalidInput`](crate::Error::InvalidInput), audited, with
    /// nothing written. Needs no recent authentication.
    pub async fn update_profile(
        &self,
        display_name: Option<Option<&str>>,
        attributes: Option<Attributes>,
        client: &ClientInfo,
    ) -> Result<User> {
        let s = self.session;
        let rq = self.svc.env().request(client);
        let change = ProfileChange {
            display_name,
            tier: None,
            attributes,
        };
        self.svc
            .change_profile(s.tenant_id, s.user_id, &change, Editor::User, None, rq)
            .await
    }

    /// Deactivate the account: a soft delete (state
    /// [`Deleted`](AccountState::Deleted), reason "deactivated by the
    /// user", the row kept for audit; an administrator may still erase
    /// it). Every session of the user ends, this one included; the owner
    /// is told by mail; the change is audited. Needs a recent
    /// authentication, as the other sensitive operations.
    pub async fn deactivate(&self, client: &ClientInfo) -> Result<()> {
        self.gate()?;
        let s = self.session;
        let user = self
            .svc
            .transition(
                s.tenant_id,
                s.user_id,
                AccountState::Deleted,
                Some(DEACTIVATED_BY_USER),
                client,
            )
            .await?;
        let tenant = self.svc.tenant(s.tenant_id).await?;
        self.svc
            .notify_security(&tenant, &user, SecurityEvent::AccountDeactivated)
            .await;
        Ok(())
    }
}

/// The state reason of an account its user deactivated.
pub const DEACTIVATED_BY_USER: &str = "deactivated by the user";
