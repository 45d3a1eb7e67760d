//! `SessionService`: what a caller holds after login, and how it is
//! checked, renewed, refreshed, introspected and revoked.

use crate::store::Store;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::jwt::{self, Jwks};
use super::keys::KeyCache;
use super::{
    REFRESH_TOKEN, RecordedRotation, RefreshFamily, Rotation, SESSION_TOKEN, SessionRecord,
    SigningAlgorithm, SigningKeyRecord, policy_after,
};
use crate::audit::{AuditDetail, AuditEvent, AuditKind, AuditReason, AuditStatus};
use crate::env::{Env, Request};
use crate::error::{Error, InvalidInput, RefreshRefusal, Result, store_err};
use crate::flow::{AuthRecord, Authentication};
use crate::ids::{FamilyId, SessionId, TenantId, UserId};
use crate::model::{ClientInfo, Tenant, User};
use crate::seal::Sealer;
use crate::token::SecretToken;

/// What a login hands to the client. `Debug` shows no token.
pub struct IssuedSession {
    /// The session token (`css_…`): the caller's proof on each request.
    pub session_token: SecretToken,
    /// The refresh token (`csr_…`), if the tenant issues them.
    pub refresh_token: Option<SecretToken>,
    /// A signed access token, if the tenant issues them.
    pub access_token: Option<String>,
    /// The session as stored.
    pub session: SessionRecord,
}

impl std::fmt::Debug for IssuedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedSession")
            .field("session_token", &self.session_token)
            .field("refresh_token", &self.refresh_token)
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "<redacted>"),
            )
            .field("session", &self.session)
            .finish()
    }
}

/// What a refresh hands back. `Debug` shows no token.
pub struct Refreshed {
    /// The new refresh token; the presented one is spent.
    pub refresh_token: SecretToken,
    /// A new access token, if the tenant issues them.
    pub access_token: Option<String>,
    /// The family after rotation.
    pub family: RefreshFamily,
}

impl std::fmt::Debug for Refreshed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refreshed")
            .field("refresh_token", &self.refresh_token)
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "<redacted>"),
            )
            .field("family", &self.family)
            .finish()
    }
}

/// RFC 7662-shaped introspection answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Introspection {
    /// Whether the token is valid now.
    pub active: bool,
    /// `session` or `access_token` (absent when inactive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    /// The tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<TenantId>,
    /// The user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<UserId>,
    /// The session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<SessionId>,
    /// Expiry, unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// When the user authenticated, unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// Authentication methods (RFC 8176).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// `mfa` or `sfa`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
}

impl Introspection {
    pub(super) fn inactive() -> Self {
        Self {
            active: false,
            token_type: None,
            tenant_id: None,
            sub: None,
            sid: None,
            exp: None,
            auth_time: None,
            amr: Vec::new(),
            acr: None,
        }
    }
}

/// How much a cleanup removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cleanup {
    /// Expired flows.
    pub flows: u64,
    /// Ended sessions and expired or revoked families.
    pub sessions: u64,
    /// Signing keys past their overlap.
    pub keys: u64,
    /// Expired verifications (address codes, reset tokens).
    pub verifications: u64,
    /// Rate-limit windows that have ended.
    pub rate_limits: u64,
}

/// Sessions, refresh tokens, access tokens and revocation.
///
/// Guarantees:
/// - tokens are 256 random bits; stores hold only their SHA-256;
/// - malformed tokens are refused before any store access;
/// - checking a session is one store call, which also renews it near its
///   idle deadline, atomically; absolute lifetime always holds;
/// - a refresh token works once: of concurrent uses one rotates; using an
///   older one revokes the whole family and its session, and is audited;
/// - a proof of login starts one session: `issue` spends the flow behind
///   it, re-checks the account, and never leaves a live session for a
///   user suspended meanwhile;
/// - a refresh token mints nothing once its session has ended;
/// - access tokens are JWTs (`typ: at+jwt`) with `kid`, signed with the
///   tenant's algorithm (EdDSA by default, ES256 or RS256); after a key
///   rotation (a change of algorithm included) the old key keeps verifying,
///   and stays in the JWKS, for one token lifetime; a token verifies only
///   under a key of its own `alg`. They
///   verify offline until `exp` (30 s leeway): logout does not recall them,
///   so they outlive their session by at most the tenant's access-token
///   lifetime, unless the caller verifies with
///   [`verify_access_token_live`](Self::verify_access_token_live) or
///   introspects (which checks the session);
/// - the `*_in` variants bind a token to a tenant: another tenant's token
///   is answered as an unknown one;
/// - logout, logout everywhere and revocation end sessions at once, with
///   their refresh families.
#[derive(Debug, Clone)]
pub struct SessionService<S> {
    pub(super) store: S,
    pub(super) env: Env,
    pub(super) issuer: String,
    pub(super) keys: KeyCache,
    /// Seals signing keys at rest; `None`: stored in the clear.
    pub(super) sealer: Option<Sealer>,
}

impl<S> SessionService<S>
where
    S: Store,
{
    /// A service over `store`; access tokens carry `issuer` as `iss`.
    pub fn new(store: S, env: Env, issuer: impl Into<String>) -> Self {
        Self {
            store,
            env,
            issuer: issuer.into(),
            keys: KeyCache::default(),
            sealer: None,
        }
    }

    /// The same service sealing the private halves of signing keys at rest
    /// with `sealer` (a key the database does not hold; give the
    /// [`AuthnService`](crate::AuthnService) the same). Without one,
    /// **signing keys are stored in the clear**, so whoever reads the
    /// database can mint access tokens; keys sealed by another service then
    /// fail closed (signing is an error, verification needs only public
    /// keys). Keys stored in the clear before stay so until
    /// [rotated](Self::rotate_signing_key). See [`seal`](crate::seal).
    pub fn with_sealer(mut self, sealer: Sealer) -> Self {
        self.sealer = Some(sealer);
        self
    }

    /// The issuer of access tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub(super) async fn audit(
        &self,
        tenant: TenantId,
        user: Option<UserId>,
        kind: AuditKind,
        status: AuditStatus,
        rq: Request<'_>,
        detail: Option<AuditDetail>,
    ) -> Result<()> {
        let mut e = AuditEvent::new(&self.env, rq.now, tenant, user, kind, status, rq.client)?;
        e.detail = detail;
        self.store.record_event(&e).await.map_err(store_err)
    }

    /// Record that sessions of `user` ended, and why.
    pub(super) async fn audit_ended(
        &self,
        tenant: TenantId,
        user: Option<UserId>,
        rq: Request<'_>,
        why: AuditReason,
    ) -> Result<()> {
        let (kind, status) = (AuditKind::SessionEnded, AuditStatus::Success);
        self.audit(tenant, user, kind, status, rq, Some(why.into()))
            .await
    }

    pub(super) async fn tenant(&self, tenant: TenantId) -> Result<Tenant> {
        self.store
            .get_tenant(tenant)
            .await
            .map_err(store_err)?
            .ok_or(Error::TenantNotFound)
    }

    /// Start a session for a completed login, spending its proof: the
    /// flow behind `auth` is deleted first, so of several issues with one
    /// proof (concurrent ones included) exactly one succeeds and the others
    /// get [`Error::FlowEnded`]. The account is re-checked (active, not
    /// locked: [`Error::AccountInactive`], [`Error::AccountLocked`]), and a
    /// session created while the user was being suspended is ended again.
    pub async fn issue(&self, auth: &Authentication, client: &ClientInfo) -> Result<IssuedSession> {
        let rq = self.env.request(client);
        let proof = auth;
        let auth = proof.record();
        // A step-up proves one fresh factor of a user who is already
        // signed in; it attaches to that session (`step_up`) and never
        // starts one, or a step-up flow would be a login that skips the
        // tenant's methods.
        if auth.method.as_str() == crate::factor::MethodName::STEP_UP {
            return Err(InvalidInput::new(
                "authentication",
                "a step-up attaches to a session (SessionService::step_up); it does not start one",
            )
            .into());
        }
        let tenant = self.tenant(auth.tenant_id).await?;
        let policy = &tenant.policy.sessions;
        let now = rq.now;
        let idle_end = policy_after(now, policy.idle_timeout, "idle timeout")?;
        let absolute_end = policy_after(now, policy.absolute_lifetime, "absolute lifetime")?;
        self.spend(proof, now).await?;
        let user = self.check_account(&tenant, auth.user_id, now).await?;
        let (session_token, key) = SESSION_TOKEN.issue(&self.env)?;
        let session = SessionRecord {
            id: SessionId::generate(&self.env)?,
            key,
            tenant_id: tenant.id,
            user_id: auth.user_id,
            auth: auth.clone(),
            ip: client.ip,
            user_agent: client.user_agent.clone(),
            created_at: now,
            last_seen_at: now,
            expires_at: idle_end.min(absolute_end),
            absolute_expires_at: absolute_end,
            idle_timeout: policy.idle_timeout,
            renew_within: policy.renew_within,
        };
        let mut refresh_token = None;
        let family = if policy.refresh_tokens {
            let (token, current) = REFRESH_TOKEN.issue(&self.env)?;
            refresh_token = Some(token);
            Some(RefreshFamily {
                id: FamilyId::generate(&self.env)?,
                tenant_id: tenant.id,
                user_id: auth.user_id,
                session_id: session.id,
                current,
                previous: None,
                generation: 0,
                rotated_at: None,
                created_at: now,
                expires_at: session.absolute_expires_at,
                revoked_at: None,
                reuse_grace: policy.refresh_reuse_grace,
            })
        } else {
            None
        };
        // Signed before anything is stored: a signing failure (a missing or
        // wrong sealing key) leaves no unusable session behind.
        let access_token = self
            .access_token(&tenant, auth, session.id, Some(&user), rq)
            .await?;
        // The session, its family and the audit event of its start commit
        // together: a crash cannot leave a session with no trace.
        let started = AuditEvent::new(
            &self.env,
            rq.now,
            tenant.id,
            Some(auth.user_id),
            AuditKind::SessionStarted,
            AuditStatus::Success,
            rq.client,
        )?;
        self.store
            .create_session(&session, family.as_ref(), Some(&started))
            .await
            .map_err(store_err)?;
        // A suspension (erasure, deletion) writes the user's state, then
        // ends the user's sessions. Either its state write precedes this
        // re-read, which then sees it and ends the session here; or it
        // follows the re-read, hence follows the session's creation, and
        // its own ending of the user's sessions ends this one. Either way
        // no live session survives for a user who is not active.
        if !self.still_active(&tenant, auth.user_id).await? {
            self.store
                .delete_session(tenant.id, session.id, now)
                .await
                .map_err(store_err)?;
            let state = self
                .store
                .get_user(tenant.id, auth.user_id)
                .await
                .map_err(store_err)?
                .map_or(crate::model::AccountState::Deleted, |u| u.state);
            return Err(Error::AccountInactive { state });
        }
        Ok(IssuedSession {
            session_token,
            refresh_token,
            access_token,
            session,
        })
    }

    /// A signed access token for the session, if the tenant issues them.
    /// `user` is the account when the caller has just read it (the `tier`
    /// claim then costs no store call).
    async fn access_token(
        &self,
        tenant: &Tenant,
        auth: &AuthRecord,
        session: SessionId,
        user: Option<&User>,
        rq: Request<'_>,
    ) -> Result<Option<String>> {
        let Some(policy) = &tenant.policy.sessions.access_tokens else {
            return Ok(None);
        };
        // No active key, or one of an algorithm the tenant has moved away
        // from: rotate (the key being replaced keeps verifying for a token
        // lifetime). Concurrent issuers may each rotate; the last key
        // signs, and every one of them verifies its own tokens.
        let key = match self.active_key(tenant.id).await? {
            Some(k) if k.algorithm == policy.algorithm => k,
            _ => {
                self.rotate_key(tenant.id, rq).await?;
                self.active_key(tenant.id)
                    .await?
                    .ok_or(Error::Concurrent("signing key vanished"))?
            }
        };
        let mut claims = jwt::claims_for(
            &self.env,
            rq.now,
            auth,
            session,
            &self.issuer,
            &policy.audience,
            policy.ttl,
        )?;
        if policy.claims.tenant {
            claims.tenant = Some(tenant.slug.as_str().to_owned());
        }
        // The one store call optional claims cost, made only when asked for.
        if let Some(service) = &policy.claims.roles_in {
            let roles = self
                .store
                .user_roles(tenant.id, auth.user_id, service)
                .await
                .map_err(store_err)?;
            claims.roles = Some(roles.iter().map(|r| r.as_str().to_owned()).collect());
        }
        if policy.claims.tier {
            claims.tier = match user {
                Some(u) => u.tier.clone(),
                None => self
                    .store
                    .get_user(tenant.id, auth.user_id)
                    .await
                    .map_err(store_err)?
                    .and_then(|u| u.tier),
            }
            .map(String::from);
        }
        Ok(Some(jwt::sign(&key, self.sealer.as_ref(), &claims)?))
    }

    async fn active_key(&self, tenant: TenantId) -> Result<Option<SigningKeyRecord>> {
        let keys = self.store.signing_keys(tenant).await.map_err(store_err)?;
        Ok(keys.into_iter().rev().find(|k| k.is_active()))
    }

    /// Check a session token: one store call, which renews the session
    /// near its idle deadline. Malformed tokens never reach the store.
    pub async fn validate(&self, token: &str) -> Result<std::sync::Arc<SessionRecord>> {
        self.validate_at(token, self.env.now()).await
    }

    /// [`validate`](Self::validate) at `now`.
    pub(super) async fn validate_at(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<std::sync::Arc<SessionRecord>> {
        let key = SESSION_TOKEN.parse(token)?;
        self.store
            .validate_session(&key, now)
            .await
            .map_err(store_err)?
            .ok_or(Error::SessionInvalid)
    }

    /// End the session of this token (and its refresh family). Returns
    /// whether there was one.
    pub async fn logout(&self, token: &str, client: &ClientInfo) -> Result<bool> {
        let rq = self.env.request(client);
        let key = SESSION_TOKEN.parse(token)?;
        match self
            .store
            .delete_session_by_key(&key, rq.now)
            .await
            .map_err(store_err)?
        {
            Some(s) => {
                self.audit_ended(s.tenant_id, Some(s.user_id), rq, AuditReason::Logout)
                    .await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// End every session of the user but `keep`. Returns how many ended.
    pub async fn logout_everywhere(
        &self,
        tenant: TenantId,
        user: UserId,
        keep: Option<SessionId>,
        client: &ClientInfo,
    ) -> Result<u64> {
        let rq = self.env.request(client);
        let n = self
            .store
            .delete_user_sessions(tenant, user, keep, rq.now)
            .await
            .map_err(store_err)?;
        self.audit_ended(tenant, Some(user), rq, AuditReason::Everywhere)
            .await?;
        Ok(n)
    }

    /// End one session by id (administrators, or a user's session list).
    pub async fn revoke(
        &self,
        tenant: TenantId,
        id: SessionId,
        client: &ClientInfo,
    ) -> Result<bool> {
        let rq = self.env.request(client);
        match self
            .store
            .delete_session(tenant, id, rq.now)
            .await
            .map_err(store_err)?
        {
            Some(s) => {
                self.audit_ended(tenant, Some(s.user_id), rq, AuditReason::Revoked)
                    .await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// How many sessions of every tenant are live now (an operator's
    /// gauge).
    pub async fn live_sessions(&self) -> Result<u64> {
        self.store
            .count_live_sessions(self.env.now())
            .await
            .map_err(store_err)
    }

    /// The user's live sessions, newest first.
    pub async fn sessions(&self, tenant: TenantId, user: UserId) -> Result<Vec<SessionRecord>> {
        self.store
            .user_sessions(tenant, user, self.env.now())
            .await
            .map_err(store_err)
    }

    /// Spend a refresh token for a new one (and a new access token when the
    /// tenant issues them). Reuse of a spent token revokes the login. A
    /// token whose session has ended (idled out, expired, logged out,
    /// cleaned up) mints nothing: its family is revoked and the answer is
    /// [`RefreshRefusal::Expired`] (session past its deadlines) or
    /// [`RefreshRefusal::Revoked`] (session gone).
    pub async fn refresh(&self, token: &str, client: &ClientInfo) -> Result<Refreshed> {
        self.refresh_scoped(None, token, client).await
    }

    /// [`refresh`](Self::refresh), answering a token of a tenant other than
    /// `tenant` (when given) as [`RefreshRefusal::Unknown`].
    pub(super) async fn refresh_scoped(
        &self,
        scope: Option<TenantId>,
        token: &str,
        client: &ClientInfo,
    ) -> Result<Refreshed> {
        let rq = self.env.request(client);
        let presented = REFRESH_TOKEN.parse(token)?;
        let (next, next_hash) = REFRESH_TOKEN.issue(&self.env)?;
        // Recorded by the store, with the family's tenant and user, only
        // if the token rotates for a live session.
        let event = AuditEvent::new(
            &self.env,
            rq.now,
            scope.unwrap_or(TenantId::SYSTEM),
            None,
            AuditKind::TokenRefreshed,
            AuditStatus::Success,
            rq.client,
        )?;
        let RecordedRotation {
            rotation,
            session,
            tenant,
        } = self
            .store
            .rotate_refresh_recorded(&presented, &next_hash, rq.now, scope, &event)
            .await
            .map_err(store_err)?;
        let refusal = match rotation {
            Rotation::Rotated(family) => {
                let refusal = match &session {
                    Some(s) if s.is_live(rq.now) => None,
                    Some(_) => Some(RefreshRefusal::Expired),
                    None => Some(RefreshRefusal::Revoked),
                };
                if let Some(refusal) = refusal {
                    // Nobody holds the family's new token (it is dropped
                    // here); ending the session also revokes the family.
                    self.store
                        .delete_session(family.tenant_id, family.session_id, rq.now)
                        .await
                        .map_err(store_err)?;
                    return Err(Error::RefreshRefused(refusal));
                }
                // The tenant as the rotation read it: no second round trip.
                let tenant = tenant.ok_or(Error::TenantNotFound)?;
                let access_token = match session {
                    Some(s) => self.access_token(&tenant, &s.auth, s.id, None, rq).await?,
                    None => None,
                };
                return Ok(Refreshed {
                    refresh_token: next,
                    access_token,
                    family,
                });
            }
            Rotation::Reused(family) => {
                self.audit(
                    family.tenant_id,
                    Some(family.user_id),
                    AuditKind::RefreshReuse,
                    AuditStatus::Failure,
                    rq,
                    Some(AuditReason::FamilyRevoked.into()),
                )
                .await?;
                RefreshRefusal::Reused
            }
            Rotation::Superseded => RefreshRefusal::Superseded,
            Rotation::Revoked => RefreshRefusal::Revoked,
            Rotation::Expired => RefreshRefusal::Expired,
            Rotation::Unknown => RefreshRefusal::Unknown,
        };
        Err(Error::RefreshRefused(refusal))
    }

    /// Start signing with a new key of the tenant's algorithm
    /// ([`AccessTokenPolicy::algorithm`](super::AccessTokenPolicy::algorithm),
    /// EdDSA when the tenant issues no access tokens); older keys, of any
    /// algorithm, keep verifying, and stay in the JWKS, for one access-token
    /// lifetime (plus a minute). Returns the new `kid`.
    pub async fn rotate_signing_key(&self, tenant: TenantId) -> Result<String> {
        let anonymous = ClientInfo::default();
        self.rotate_key(tenant, self.env.request(&anonymous)).await
    }

    async fn rotate_key(&self, tenant: TenantId, rq: Request<'_>) -> Result<String> {
        let t = self.tenant(tenant).await?;
        let policy = t.policy.sessions.access_tokens.as_ref();
        let ttl = policy.map_or(std::time::Duration::from_secs(3600), |a| a.ttl);
        let algorithm = policy.map(|a| a.algorithm).unwrap_or_default();
        let key = self.new_key(tenant, algorithm, rq.now).await?;
        let key = jwt::seal_signing_key(key, self.sealer.as_ref(), &self.env)?;
        // One extra minute of overlap absorbs clock skew between nodes (and
        // the verifiers' leeway).
        let verify_until: DateTime<Utc> = super::checked_after(
            key.created_at,
            ttl.saturating_add(std::time::Duration::from_secs(60)),
        )
        .ok_or_else(|| {
            crate::error::InvalidInput::new("access token policy", "ttl is out of range")
        })?;
        self.store
            .rotate_signing_key(&key, verify_until)
            .await
            .map_err(store_err)?;
        self.keys.forget(tenant);
        self.audit(
            tenant,
            None,
            AuditKind::SigningKeyRotated,
            AuditStatus::Success,
            rq,
            Some(AuditDetail::Key(key.kid.clone())),
        )
        .await?;
        Ok(key.kid)
    }

    /// A new signing key. RSA key generation is CPU-bound for up to a
    /// second: it runs on the runtime's blocking pool when there is one, so
    /// that a rotation does not stall the tasks sharing its worker.
    async fn new_key(
        &self,
        tenant: TenantId,
        algorithm: SigningAlgorithm,
        now: DateTime<Utc>,
    ) -> Result<SigningKeyRecord> {
        if algorithm == SigningAlgorithm::Rs256
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let env = self.env.clone();
            return handle
                .spawn_blocking(move || jwt::new_signing_key(&env, tenant, algorithm, now))
                .await
                .map_err(|e| Error::internal_from("signing key generation", e))?;
        }
        jwt::new_signing_key(&self.env, tenant, algorithm, now)
    }

    /// The tenant's JWKS: every key that verifies now (the active one and
    /// those retired within their overlap), each with its `kty`, public
    /// parameters, `alg`, `use: sig` and `kid`. Serialised with
    /// `serde_json`, it is the document to publish.
    pub async fn jwks(&self, tenant: TenantId) -> Result<Jwks> {
        let keys = self.store.signing_keys(tenant).await.map_err(store_err)?;
        Ok(jwt::jwks(&keys, self.env.now()))
    }

    /// Delete expired flows, ended sessions, spent families, keys past
    /// their overlap, expired verifications and ended rate-limit windows.
    /// Safe to run on several nodes at once.
    pub async fn cleanup(&self) -> Result<Cleanup> {
        let now = self.env.now();
        Ok(Cleanup {
            flows: self
                .store
                .delete_expired_flows(now)
                .await
                .map_err(store_err)?,
            sessions: self
                .store
                .delete_expired_sessions(now)
                .await
                .map_err(store_err)?,
            keys: self
                .store
                .delete_expired_signing_keys(now)
                .await
                .map_err(store_err)?,
            verifications: self
                .store
                .delete_expired_verifications(now)
                .await
                .map_err(store_err)?,
            rate_limits: self
                .store
                .delete_expired_rate_limits(now)
                .await
                .map_err(store_err)?,
        })
    }
}
