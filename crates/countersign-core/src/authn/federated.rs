//! Sign-in with an OpenID Connect ID token from an issuer the tenant
//! trusts (Google, or any issuer found by discovery).
//!
//! A sign-in is a login flow like any other: [`begin_federated_login`]
//! starts a username-less flow bound to one issuer and a fresh nonce (the
//! caller puts the nonce in its authorization request), and the ID token
//! the issuer returns is submitted to the flow as
//! [`FactorResponse::IdToken`](super::FactorResponse::IdToken). The token
//! is verified (signature against the issuer's keys, `iss`, `aud`, `azp`,
//! `exp`, `iat`, the flow's nonce, `email_verified`), then names the
//! account:
//!
//! 1. the account linked to (issuer, subject), if any;
//! 2. else, when the tenant allows it and the issuer verified the address,
//!    the account whose identifier is that address, which gets linked (a
//!    pending one is activated: the issuer proved the address);
//! 3. else, when the tenant allows it, a new active account, created and
//!    linked in one transaction.
//!
//! The link is by issuer and subject, never by address: once linked, a
//! changed address at the issuer still names the same account. Concurrent
//! first sign-ins with one identity, on any number of nodes, end with one
//! account: the store allows one link per (tenant, issuer, subject), and
//! the loser of a race reads the winner's link.
//!
//! [`begin_federated_login`]: AuthnService::begin_federated_login

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::AuthnService;
use super::login::FlowSlot;
use super::login::Outcome;
use crate::audit::{AuditKind, AuditReason};
use crate::env::Request;
use crate::error::{Error, ErrorKind, InvalidInput, Result, StoreError, StoreErrorKind, store_err};
use crate::factor::federated::{
    FederationSettings, HttpFetch, IdTokenVerifier, IssuerConfig, NoFetch, VerifiedIdToken,
};
use crate::factor::sha256_hex;
use crate::factor::{FactorKind, FactorSettings};
use crate::flow::{Awaiting, FederatedChallenge, FlowEvent};
use crate::ids::{TenantId, UserId};
use crate::model::{AccountState, ClientInfo, Identifier, Tenant, User};
use crate::store::{LinkedIdentity, Store, VerificationPurpose};
use crate::token::SecretToken;
use crate::{LoginStatus, Submission};

type MakeVerifier = dyn Fn(IssuerConfig) -> Result<IdTokenVerifier, InvalidInput> + Send + Sync;

/// The verifiers of the issuers tenants trust, built on first use and
/// kept while the tenant's configuration of the issuer is unchanged, so
/// that their key caches (and the refetch rate limit) last across
/// requests.
pub(crate) struct Federation {
    make: Box<MakeVerifier>,
    verifiers: Mutex<HashMap<(TenantId, String), Arc<IdTokenVerifier>>>,
}

impl Federation {
    /// Verifiers fetching keys through `fetch`.
    pub(crate) fn new<F: HttpFetch + Clone>(fetch: F) -> Self {
        Self {
            make: Box::new(move |config| IdTokenVerifier::new(config, fetch.clone())),
            verifiers: Mutex::new(HashMap::new()),
        }
    }

    /// Verifiers for static key sets only (fetching fails).
    pub(crate) fn offline() -> Self {
        Self::new(NoFetch)
    }

    /// The verifier of `config` for `tenant`.
    fn verifier(&self, tenant: TenantId, config: &IssuerConfig) -> Result<Arc<IdTokenVerifier>> {
        let mut map = self
            .verifiers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key = (tenant, config.issuer.clone());
        if let Some(v) = map.get(&key)
            && v.config() == config
        {
            return Ok(Arc::clone(v));
        }
        let v = Arc::new((self.make)(config.clone())?);
        map.insert(key, Arc::clone(&v));
        Ok(v)
    }
}

impl std::fmt::Debug for Federation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Federation").finish_non_exhaustive()
    }
}

/// A federated sign-in begun: the flow, and what the authorization
/// request to the issuer must carry.
#[derive(Debug)]
pub struct FederatedStart {
    /// The flow token: submit the issuer's ID token to it.
    pub flow: SecretToken,
    /// The flow's status (awaiting an ID token).
    pub status: LoginStatus,
    /// The canonical issuer to send the user to.
    pub issuer: String,
    /// The nonce to put in the authorization request.
    pub nonce: String,
}

impl<S> AuthnService<S>
where
    S: Store,
{
    /// The same service fetching issuers' keys (and nothing else) through
    /// `fetch` (countersign-oidc's `ReqwestFetch`). Without one only
    /// issuers with a static key set can be verified; others fail with
    /// [`ErrorKind::Unavailable`].
    pub fn with_http_fetch<F: HttpFetch + Clone>(mut self, fetch: F) -> Self {
        self.federation = Arc::new(Federation::new(fetch));
        self
    }

    /// Begin a sign-in at `issuer` (a canonical issuer or a spelling of
    /// one the tenant trusts): a username-less flow whose methods start
    /// with an ID token, and a fresh nonce bound to it.
    ///
    /// Errors: [`Error::InvalidInput`] when the tenant offers no sign-in
    /// with ID tokens or does not trust `issuer`;
    /// [`Error::NoUsableMethod`] when no enabled method starts with one.
    pub async fn begin_federated_login(
        &self,
        tenant: TenantId,
        issuer: &str,
        client: &ClientInfo,
    ) -> Result<FederatedStart> {
        let rq = self.env.request(client);
        let tenant = self.tenant(tenant).await?;
        let settings = self.federation_settings(tenant.id).await?;
        let config = settings
            .issuer(issuer)
            .ok_or_else(|| InvalidInput::new("issuer", "this tenant does not trust it"))?;
        let mut candidates = self.tenant_methods(tenant.id).await?;
        candidates.retain(|m| {
            m.steps
                .first()
                .is_some_and(|s| s.admits(FactorKind::OidcIdToken))
        });
        if candidates.is_empty() {
            return Err(Error::NoUsableMethod);
        }
        let nonce = URL_SAFE_NO_PAD.encode(self.env.random_bytes::<32>()?);
        let challenge = FederatedChallenge {
            issuer: config.issuer.clone(),
            nonce: nonce.clone(),
        };
        let w = Awaiting {
            discoverable: true,
            federated: Some(challenge),
            ..Awaiting::start(None, candidates)
        };
        let (flow, status) = self.start_login(tenant.id, w, rq.now).await?;
        Ok(FederatedStart {
            flow,
            status,
            issuer: config.issuer.clone(),
            nonce,
        })
    }

    /// Remove the link of `user` to (issuer, subject). Returns whether it
    /// existed. Audited.
    pub async fn unlink_identity(
        &self,
        tenant: TenantId,
        user: UserId,
        issuer: &str,
        subject: &str,
        client: &ClientInfo,
    ) -> Result<bool> {
        let rq = self.env.request(client);
        let gone = self
            .store
            .unlink_identity(tenant, user, issuer, subject)
            .await
            .map_err(store_err)?;
        if gone {
            self.audit(
                self.success(tenant, Some(user), AuditKind::IdentityUnlinked, rq)
                    .map(|e| e.with_factor(FactorKind::OidcIdToken)),
            )
            .await?;
        }
        Ok(gone)
    }

    /// The identities linked to `user`.
    pub async fn linked_identities(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Vec<LinkedIdentity>> {
        self.store
            .linked_identities(tenant, user)
            .await
            .map_err(store_err)
    }

    async fn federation_settings(&self, tenant: TenantId) -> Result<FederationSettings> {
        match self
            .tenant_settings(tenant, FactorKind::OidcIdToken)
            .await?
        {
            Some(FactorSettings::OidcIdToken(s)) => Ok(s),
            _ => Err(InvalidInput::new(
                "factor",
                "this tenant does not offer sign-in with an identity provider",
            )
            .into()),
        }
    }

    /// Check an ID token submitted to a federated flow and name the account
    /// it signs in (see the module docs). A token refused by the checks is
    /// a wrong factor (counted against the flow); an issuer whose keys
    /// cannot be fetched is [`ErrorKind::Unavailable`] and changes nothing.
    pub(super) async fn submit_federated(
        &self,
        tenant: &Tenant,
        found: &mut FlowSlot,
        mut w: Awaiting,
        token: &str,
        rq: Request<'_>,
    ) -> Result<Submission> {
        let kind = FactorKind::OidcIdToken;
        let failed = |why: AuditReason, audit_user: Option<UserId>| Outcome {
            event: FlowEvent::Failed,
            kind,
            refusal: Some(why),
            audit_user,
        };
        let Some(challenge) = w.federated.clone() else {
            let done = failed(AuditReason::NoChallenge, None);
            return self.finish_submit(tenant, found, w, done, rq).await;
        };
        let settings = self.federation_settings(tenant.id).await?;
        let Some(config) = settings.issuer(&challenge.issuer) else {
            // The tenant stopped trusting the issuer since the flow began.
            let done = failed(AuditReason::NotApplicable, None);
            return self.finish_submit(tenant, found, w, done, rq).await;
        };
        let verifier = self.federation.verifier(tenant.id, config)?;
        let verified = match verifier.verify(token, Some(&challenge.nonce), rq.now).await {
            Ok(v) => v,
            Err(e) if e.kind() == ErrorKind::Unavailable => return Err(Error::IdToken(e)),
            Err(_) => {
                let done = failed(AuditReason::BadIdToken, None);
                return self.finish_submit(tenant, found, w, done, rq).await;
            }
        };
        let Some(user) = self
            .federated_account(tenant, &settings, &verified, rq)
            .await?
        else {
            let done = failed(AuditReason::UnknownIdentifier, None);
            return self.finish_submit(tenant, found, w, done, rq).await;
        };
        // Verified and named: only now look at the account. The nonce is
        // spent with the step: the token works in no other flow.
        w.federated = None;
        self.pass_naming_factor(tenant, found, w, &user, kind, rq)
            .await
    }

    /// The account a verified identity signs in: linked, linked now by a
    /// verified address, or created and linked; `None` when the tenant
    /// allows neither.
    async fn federated_account(
        &self,
        tenant: &Tenant,
        settings: &FederationSettings,
        id: &VerifiedIdToken,
        rq: Request<'_>,
    ) -> Result<Option<User>> {
        if let Some(user) = self.linked_user(tenant, id).await? {
            return Ok(Some(user));
        }
        let verified_email = id.email.as_ref().filter(|_| id.email_verified);
        let link = |user: UserId| LinkedIdentity {
            tenant_id: tenant.id,
            user_id: user,
            issuer: id.issuer.clone(),
            subject: id.subject.clone(),
            email: verified_email.cloned(),
            linked_at: rq.now,
        };
        let by_address = match verified_email {
            Some(email) if settings.link_verified_email => {
                let identifier = Identifier::parse(email.as_str())?;
                self.store
                    .find_user(tenant.id, &identifier)
                    .await
                    .map_err(store_err)?
            }
            _ => None,
        };
        if let Some(existing) = by_address {
            let event =
                self.success(tenant.id, Some(existing.id), AuditKind::IdentityLinked, rq)?;
            let event = event.with_factor(FactorKind::OidcIdToken);
            match self.store.link_identity(&link(existing.id), &event).await {
                Ok(()) => {}
                Err(e) if e.kind() == StoreErrorKind::Conflict => {
                    return self.linked_user(tenant, id).await;
                }
                Err(e) => return Err(store_err(e)),
            }
            if existing.state == AccountState::Pending {
                self.activate_pending(tenant, &existing, rq).await?;
            }
            return Ok(Some(self.user(tenant.id, existing.id).await?));
        }
        if !settings.create_accounts {
            return Ok(None);
        }
        let identifier = match verified_email {
            Some(email) => Identifier::parse(email.as_str())?,
            // No verified address: an identifier no person types, derived
            // from the identity (unique per issuer and subject).
            None => Identifier::parse(&format!(
                "oidc-{}",
                sha256_hex(format!("{}\n{}", id.issuer, id.subject).as_bytes())
            ))?,
        };
        let user = User {
            id: UserId::generate(&self.env)?,
            tenant_id: tenant.id,
            identifier,
            display_name: id.name.clone(),
            email: verified_email.cloned(),
            state: AccountState::Active,
            state_reason: None,
            created_at: rq.now,
            updated_at: rq.now,
            last_login_at: None,
            tier: tenant.policy.profile.default_tier.clone(),
            attributes: Default::default(),
        };
        let event = self
            .success(tenant.id, Some(user.id), AuditKind::UserRegistered, rq)?
            .with_factor(FactorKind::OidcIdToken);
        match self
            .store
            .create_linked_user(&user, &link(user.id), &event)
            .await
        {
            Ok(()) => Ok(Some(user)),
            // A concurrent first sign-in with this identity won (or the
            // address became an account meanwhile): the winner's link.
            Err(e) if e.kind() == StoreErrorKind::Conflict => self.linked_user(tenant, id).await,
            Err(e) => Err(store_err(e)),
        }
    }

    /// The account linked to the token's (issuer, subject), if any.
    async fn linked_user(&self, tenant: &Tenant, id: &VerifiedIdToken) -> Result<Option<User>> {
        let Some(link) = self
            .store
            .find_linked_identity(tenant.id, &id.issuer, &id.subject)
            .await
            .map_err(store_err)?
        else {
            return Ok(None);
        };
        self.store
            .get_user(tenant.id, link.user_id)
            .await
            .map_err(store_err)
    }

    /// A pending account whose address an issuer verified: active now,
    /// and the code (with the password a registration bound to it)
    /// voided, so that whoever registered the address first cannot set
    /// its password.
    async fn activate_pending(&self, tenant: &Tenant, user: &User, rq: Request<'_>) -> Result<()> {
        self.store
            .delete_verifications(tenant.id, user.id, Some(VerificationPurpose::Address))
            .await
            .map_err(store_err)?;
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
        if moved {
            self.audit(
                self.success(tenant.id, Some(user.id), AuditKind::AddressVerified, rq)
                    .map(|e| e.with_factor(FactorKind::OidcIdToken)),
            )
            .await?;
        }
        Ok(())
    }
}
