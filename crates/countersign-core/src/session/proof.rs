//! Spending a proof of login, re-checking the account, step-up of a
//! running session, and the recent-authentication gate.

use std::fmt;

use chrono::{DateTime, Utc};

use super::{SESSION_TOKEN, SessionRecord, SessionService};
use crate::error::{Error, InvalidInput, Result, store_err};
use crate::flow::{Authentication, FlowState, LoginState, ProofOrigin, StepUp};
use crate::ids::UserId;
use crate::model::{AccountState, ClientInfo, Tenant, User};
use crate::store::Store;

/// A sensitive operation refused because the session's authentication is
/// not recent (or strong) enough: what would satisfy it. Answer it with a
/// step-up ([`AuthnService::begin_step_up`], then
/// [`SessionService::step_up`]) and try again.
///
/// [`AuthnService::begin_step_up`]: crate::AuthnService::begin_step_up
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct StepUpRequired {
    /// The requirement the session did not meet.
    pub required: StepUp,
}

impl fmt::Display for StepUpRequired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.required;
        write!(f, "step-up required: {} factor(s)", r.min_factors)?;
        if !r.any_of.is_empty() {
            let kinds: Vec<&str> = r.any_of.iter().map(|k| k.as_str()).collect();
            write!(f, ", one of {}", kinds.join(", "))?;
        }
        if let Some(age) = r.max_age {
            write!(f, ", verified within {} s", age.as_secs())?;
        }
        Ok(())
    }
}

/// How many times a step-up merges into a session's record that other
/// step-ups keep changing before it gives up ([`Error::Concurrent`]).
const STEP_UP_ATTEMPTS: usize = 4;

impl<S> SessionService<S>
where
    S: Store,
{
    /// Spend a proof of login at `now`: delete the finished flow it names,
    /// after checking that the flow holds exactly this authentication and
    /// has not expired. Of concurrent spends of one proof exactly one
    /// deletes the flow; the others (and every later one) get
    /// [`Error::FlowEnded`]. A proof of a login that stored no flow sets
    /// its shared mark instead, with the same answers.
    pub(super) async fn spend(&self, proof: &Authentication, now: DateTime<Utc>) -> Result<()> {
        let key = match proof.origin() {
            ProofOrigin::Flow(key) => key,
            ProofOrigin::Unstored(mark) => return mark.spend(now),
            #[cfg(feature = "testing")]
            ProofOrigin::Testing => return Ok(()),
        };
        let record = proof.record();
        let Some(found) = self
            .store
            .flow(record.tenant_id, key)
            .await
            .map_err(store_err)?
        else {
            return Err(Error::FlowEnded);
        };
        let holds = matches!(
            &found.value.state,
            FlowState::Login(LoginState::Authenticated(r)) if r == record
        );
        if !holds {
            return Err(Error::FlowEnded);
        }
        if now >= found.value.expires_at {
            return Err(Error::FlowExpired);
        }
        if !self
            .store
            .delete_flow(record.tenant_id, key)
            .await
            .map_err(store_err)?
        {
            return Err(Error::FlowEnded);
        }
        Ok(())
    }

    /// Refuse a user who may not sign in at `now`: not in the tenant, not
    /// active, or locked out. Returns the user as read.
    pub(super) async fn check_account(
        &self,
        tenant: &Tenant,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<User> {
        let u = self
            .store
            .get_user(tenant.id, user)
            .await
            .map_err(store_err)?
            .ok_or(Error::UserNotFound)?;
        if u.state != AccountState::Active {
            return Err(Error::AccountInactive { state: u.state });
        }
        let record = self
            .store
            .failure_record(tenant.id, user)
            .await
            .map_err(store_err)?;
        match record.and_then(|r| r.locked_at(now)) {
            Some(until) => Err(Error::AccountLocked { until }),
            None => Ok(u),
        }
    }

    /// Whether the user is (still) active: the re-read after a session was
    /// created.
    pub(super) async fn still_active(&self, tenant: &Tenant, user: UserId) -> Result<bool> {
        Ok(self
            .store
            .get_user(tenant.id, user)
            .await
            .map_err(store_err)?
            .is_some_and(|u| u.state == AccountState::Active))
    }

    /// Attach a step-up to a running session: spend `proof` (from a flow
    /// of [`AuthnService::begin_step_up`] for the session's user) as
    /// [`issue`](Self::issue) does, re-check the account, and merge its
    /// factors into the session's [`AuthRecord`](crate::AuthRecord), so the
    /// session and every access token minted afterwards (`amr`, `acr`,
    /// `auth_time`) reflect it. Returns the session after the step-up.
    ///
    /// A proof of another user or tenant is refused (and left unspent); an
    /// ended session is [`Error::SessionInvalid`].
    ///
    /// [`AuthnService::begin_step_up`]: crate::AuthnService::begin_step_up
    pub async fn step_up(
        &self,
        session_token: &str,
        proof: &Authentication,
        client: &ClientInfo,
    ) -> Result<SessionRecord> {
        let rq = self.env.request(client);
        let key = SESSION_TOKEN.parse(session_token)?;
        let session = self
            .store
            .validate_session(&key, rq.now)
            .await
            .map_err(store_err)?
            .ok_or(Error::SessionInvalid)?;
        let later = proof.record();
        if later.tenant_id != session.tenant_id || later.user_id != session.user_id {
            return Err(InvalidInput::new("step-up", "the proof is of another user").into());
        }
        self.spend(proof, rq.now).await?;
        let tenant = self.tenant(session.tenant_id).await?;
        self.check_account(&tenant, session.user_id, rq.now).await?;
        // Merged into the record as read, written only if it is still
        // that record: a concurrent step-up that wrote first is read back
        // and merged with, never overwritten.
        let mut session = session;
        for _ in 0..STEP_UP_ATTEMPTS {
            let merged = session.auth.clone().merge(later)?;
            let saved = self
                .store
                .set_session_auth(
                    session.tenant_id,
                    session.id,
                    &session.auth,
                    &merged,
                    rq.now,
                )
                .await
                .map_err(store_err)?;
            if saved {
                return Ok(SessionRecord {
                    auth: merged,
                    ..SessionRecord::clone(&session)
                });
            }
            session = self
                .store
                .validate_session(&key, rq.now)
                .await
                .map_err(store_err)?
                .ok_or(Error::SessionInvalid)?;
        }
        Err(Error::Concurrent(
            "the session's authentication kept changing",
        ))
    }

    /// Gate a sensitive operation (enrol or remove a factor, regenerate
    /// recovery codes, change the password, ...) on a recent
    /// authentication: `Ok` when the session's authentication meets `req`
    /// now, else [`StepUpRequired`] naming `req` (ASVS 3.7.1).
    pub fn require_recent(
        &self,
        session: &SessionRecord,
        req: &StepUp,
    ) -> std::result::Result<(), StepUpRequired> {
        require_recent_at(session, req, self.env.now())
    }
}

/// [`SessionService::require_recent`] at `now` (for services that read the
/// clock once per request).
pub fn require_recent_at(
    session: &SessionRecord,
    req: &StepUp,
    now: DateTime<Utc>,
) -> std::result::Result<(), StepUpRequired> {
    if session.auth.satisfies(req, now) {
        Ok(())
    } else {
        Err(StepUpRequired {
            required: req.clone(),
        })
    }
}
