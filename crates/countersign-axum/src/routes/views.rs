//! Response bodies shared by several route groups.

use chrono::{DateTime, Utc};
use countersign_core::{IssuedSession, SessionRecord, User};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// An account, as administrators and its owner see it. No secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct UserView {
    /// Its id.
    pub id: Uuid,
    /// Its tenant.
    pub tenant_id: Uuid,
    /// The sign-in identifier.
    pub identifier: String,
    /// The display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The email address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `candidate`, `pending`, `active`, `suspended` or `deleted`.
    pub state: String,
    /// The tier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// Tenant-declared attributes.
    #[schema(value_type = Object)]
    pub attributes: serde_json::Value,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its profile last changed: pass it back as
    /// `expected_updated_at` to change it again.
    pub updated_at: DateTime<Utc>,
    /// The last successful sign-in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_login_at: Option<DateTime<Utc>>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: *u.id.as_uuid(),
            tenant_id: *u.tenant_id.as_uuid(),
            identifier: u.identifier.as_str().to_owned(),
            display_name: u.display_name.clone(),
            email: u.email.as_ref().map(|e| e.as_str().to_owned()),
            state: u.state.as_str().to_owned(),
            tier: u.tier.as_ref().map(|t| t.as_str().to_owned()),
            attributes: serde_json::to_value(&u.attributes).unwrap_or_default(),
            created_at: u.created_at,
            updated_at: u.updated_at,
            last_login_at: u.last_login_at,
        }
    }
}

/// A session, without its token.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct SessionView {
    /// Its id (to list and revoke it).
    pub id: Uuid,
    /// Its tenant.
    pub tenant_id: Uuid,
    /// The signed-in user.
    pub user_id: Uuid,
    /// The factors that authenticated it (`password`, `totp`, ...).
    pub factors: Vec<String>,
    /// When the newest factor was verified.
    pub authenticated_at: DateTime<Utc>,
    /// The client's IP at sign-in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The client's user agent at sign-in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// When it began.
    pub created_at: DateTime<Utc>,
    /// When it was last renewed.
    pub last_seen_at: DateTime<Utc>,
    /// When it ends unless used.
    pub expires_at: DateTime<Utc>,
    /// When it ends regardless.
    pub absolute_expires_at: DateTime<Utc>,
}

impl From<&SessionRecord> for SessionView {
    fn from(s: &SessionRecord) -> Self {
        let factors = s
            .auth
            .factors
            .iter()
            .map(|f| f.kind.as_str().to_owned())
            .collect();
        let authenticated_at = s.auth.at;
        SessionView {
            id: *s.id.as_uuid(),
            tenant_id: *s.tenant_id.as_uuid(),
            user_id: *s.user_id.as_uuid(),
            factors,
            authenticated_at,
            ip: s.ip.map(|ip| ip.to_string()),
            user_agent: s.user_agent.clone(),
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
            absolute_expires_at: s.absolute_expires_at,
        }
    }
}

/// A new session's credentials. Shown once: only their hashes are kept.
#[derive(Clone, Serialize, ToSchema)]
pub(crate) struct IssuedView {
    /// The session token (`css_…`): send it as `Authorization: Bearer`.
    pub session_token: String,
    /// The refresh token (`csr_…`), if the tenant issues them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// A signed access token (JWT), if the tenant issues them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// The session.
    pub session: SessionView,
}

impl std::fmt::Debug for IssuedView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedView")
            .field("session", &self.session.id)
            .finish_non_exhaustive()
    }
}

impl From<&IssuedSession> for IssuedView {
    fn from(i: &IssuedSession) -> Self {
        IssuedView {
            session_token: i.session_token.expose().to_owned(),
            refresh_token: i.refresh_token.as_ref().map(|t| t.expose().to_owned()),
            access_token: i.access_token.clone(),
            session: SessionView::from(&i.session),
        }
    }
}

/// An empty acknowledgement: the request was accepted.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub(crate) struct Accepted {
    /// Always true.
    pub accepted: bool,
}

impl Accepted {
    pub(crate) const YES: Accepted = Accepted { accepted: true };
}
