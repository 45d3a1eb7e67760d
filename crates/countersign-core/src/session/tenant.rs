//! Access-token verification (cached keys, optional session check),
//! introspection, and the tenant-bound variants of the token calls.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::jwt::{self, AccessClaims, Expected, JwtError, VerifyingKey};
use super::keys::Verifier;
use super::{Introspection, Refreshed, SESSION_TOKEN, SessionRecord, SessionService};
use crate::audit::AuditReason;
use crate::error::{Error, Result, store_err};
use crate::ids::{SessionId, TenantId};
use crate::model::ClientInfo;
use crate::store::Store;

impl<S> SessionService<S>
where
    S: Store,
{
    /// Introspect a session token (`css_…`) or an access token (a JWT).
    /// Anything invalid is `active: false` with nothing else said. An
    /// access token is active only while its session is (RFC 7662): after
    /// logout, suspension, erasure or a password change it is inactive
    /// even before its `exp`.
    pub async fn introspect(&self, token: &str) -> Result<Introspection> {
        self.introspect_scoped(None, token).await
    }

    /// [`introspect`](Self::introspect) for `tenant`: a token of another
    /// tenant is `active: false`, like an unknown one.
    pub async fn introspect_in(&self, tenant: TenantId, token: &str) -> Result<Introspection> {
        self.introspect_scoped(Some(tenant), token).await
    }

    async fn introspect_scoped(
        &self,
        scope: Option<TenantId>,
        token: &str,
    ) -> Result<Introspection> {
        let now = self.env.now();
        let in_scope = |t: TenantId| scope.is_none_or(|s| s == t);
        if token.starts_with("css_") {
            return Ok(match self.validate_at(token, now).await {
                Ok(s) if in_scope(s.tenant_id) => {
                    let (amr, mfa) = jwt::amr_of(&s.auth);
                    Introspection {
                        active: true,
                        token_type: Some("session"),
                        tenant_id: Some(s.tenant_id),
                        sub: Some(s.user_id),
                        sid: Some(s.id),
                        exp: Some(s.expires_at.timestamp()),
                        auth_time: Some(s.auth.at.timestamp()),
                        amr,
                        acr: Some(if mfa { "mfa" } else { "sfa" }.into()),
                    }
                }
                Ok(_) | Err(Error::SessionInvalid | Error::InvalidInput(_)) => {
                    Introspection::inactive()
                }
                Err(e) => return Err(e),
            });
        }
        Ok(match self.verify_at(token, scope, true, now).await {
            Ok(c) => Introspection {
                active: true,
                token_type: Some("access_token"),
                tenant_id: c.tid.parse().ok(),
                sub: c.sub.parse().ok(),
                sid: c.sid.parse().ok(),
                exp: Some(c.exp),
                auth_time: Some(c.auth_time),
                amr: c.amr,
                acr: Some(c.acr),
            },
            Err(Error::AccessToken(_)) => Introspection::inactive(),
            Err(e) => return Err(e),
        })
    }

    /// Verify an access token offline: `typ: at+jwt`, a key of its tenant
    /// that still verifies and whose algorithm is the token's `alg`, this issuer, the tenant's audience, not
    /// expired (30 s leeway on `exp`, `nbf`, `iat`). No store call once
    /// the tenant's keys are cached. The token stays valid after its
    /// session ends, until `exp`: see
    /// [`verify_access_token_live`](Self::verify_access_token_live).
    pub async fn verify_access_token(&self, token: &str) -> Result<AccessClaims> {
        self.verify_at(token, None, false, self.env.now()).await
    }

    /// [`verify_access_token`](Self::verify_access_token) for `tenant`:
    /// `tid` must be `tenant` ([`JwtError::Tenant`] otherwise, before any
    /// store call).
    pub async fn verify_access_token_in(
        &self,
        tenant: TenantId,
        token: &str,
    ) -> Result<AccessClaims> {
        self.verify_at(token, Some(tenant), false, self.env.now())
            .await
    }

    /// [`verify_access_token`](Self::verify_access_token), and its session
    /// (`sid`) must still be live: one store read, and no offline window
    /// after logout, suspension, erasure or a password change
    /// ([`JwtError::SessionEnded`]).
    pub async fn verify_access_token_live(&self, token: &str) -> Result<AccessClaims> {
        self.verify_at(token, None, true, self.env.now()).await
    }

    /// [`verify_access_token_live`](Self::verify_access_token_live) for
    /// `tenant`.
    pub async fn verify_access_token_live_in(
        &self,
        tenant: TenantId,
        token: &str,
    ) -> Result<AccessClaims> {
        self.verify_at(token, Some(tenant), true, self.env.now())
            .await
    }

    async fn verify_at(
        &self,
        token: &str,
        scope: Option<TenantId>,
        live: bool,
        now: DateTime<Utc>,
    ) -> Result<AccessClaims> {
        let head = jwt::peek(token)?;
        let tenant = head.tenant;
        if scope.is_some_and(|s| s != tenant) {
            return Err(JwtError::Tenant.into());
        }
        let verifier = self.verifier(tenant, &head.kid, now).await?;
        let Some(audience) = &verifier.audience else {
            return Err(JwtError::UnknownKey.into());
        };
        let expected = Expected {
            issuer: &self.issuer,
            audience,
            tenant,
        };
        let claims = jwt::verify(token, &verifier.keys, &expected, now)?;
        if live {
            let sid: SessionId = claims.sid.parse().map_err(|_| JwtError::Malformed)?;
            let session = self.store.session(tenant, sid).await.map_err(store_err)?;
            let alive =
                session.is_some_and(|s| s.is_live(now) && s.user_id.to_string() == claims.sub);
            if !alive {
                return Err(JwtError::SessionEnded.into());
            }
        }
        Ok(claims)
    }

    /// The tenant's verifying keys and audience, from the cache when warm.
    async fn verifier(
        &self,
        tenant: TenantId,
        kid: &str,
        now: DateTime<Utc>,
    ) -> Result<Arc<Verifier>> {
        self.keys
            .get(tenant, kid, now, || async {
                let Some(t) = self.store.get_tenant(tenant).await.map_err(store_err)? else {
                    return Err(JwtError::UnknownKey.into());
                };
                let audience = t.policy.sessions.access_tokens.map(|a| a.audience);
                let keys = match audience {
                    Some(_) => self
                        .store
                        .signing_keys(tenant)
                        .await
                        .map_err(store_err)?
                        .iter()
                        .map(VerifyingKey::from)
                        .collect(),
                    None => Vec::new(),
                };
                Ok(Verifier { audience, keys })
            })
            .await
    }

    /// [`validate`](Self::validate) for `tenant`: a session of another
    /// tenant is [`Error::SessionInvalid`], like an unknown token.
    pub async fn validate_in(&self, tenant: TenantId, token: &str) -> Result<Arc<SessionRecord>> {
        let s = self.validate_at(token, self.env.now()).await?;
        if s.tenant_id != tenant {
            return Err(Error::SessionInvalid);
        }
        Ok(s)
    }

    /// [`logout`](Self::logout) for `tenant`: a session of another tenant
    /// is left alone and answered `false`, like an unknown token.
    pub async fn logout_in(
        &self,
        tenant: TenantId,
        token: &str,
        client: &ClientInfo,
    ) -> Result<bool> {
        let rq = self.env.request(client);
        let key = SESSION_TOKEN.parse(token)?;
        let Some(s) = self
            .store
            .validate_session(&key, rq.now)
            .await
            .map_err(store_err)?
            .filter(|s| s.tenant_id == tenant)
        else {
            return Ok(false);
        };
        let Some(ended) = self
            .store
            .delete_session(tenant, s.id, rq.now)
            .await
            .map_err(store_err)?
        else {
            return Ok(false);
        };
        self.audit_ended(tenant, Some(ended.user_id), rq, AuditReason::Logout)
            .await?;
        Ok(true)
    }

    /// [`refresh`](Self::refresh) for `tenant`: a token of another tenant
    /// mints nothing, changes nothing (its login goes on in its own
    /// tenant) and is answered
    /// [`RefreshRefusal::Unknown`](crate::RefreshRefusal::Unknown), like a
    /// token nobody issued.
    pub async fn refresh_in(
        &self,
        tenant: TenantId,
        token: &str,
        client: &ClientInfo,
    ) -> Result<Refreshed> {
        self.refresh_scoped(Some(tenant), token, client).await
    }
}
