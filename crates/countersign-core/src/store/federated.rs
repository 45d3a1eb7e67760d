//! `FederatedStore`: identities at other issuers (OpenID Connect
//! providers) linked to local accounts by issuer and subject.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::AuditEvent;
use crate::error::StoreError;
use crate::ids::{TenantId, UserId};
use crate::model::{EmailAddress, User};

/// An identity at an issuer, linked to one local account. The link is by
/// (tenant, issuer, subject), never by address: an issuer's subject is
/// stable, an address can change hands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedIdentity {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The local account.
    pub user_id: UserId,
    /// The issuer (`iss`), as the issuer's configuration names it.
    pub issuer: String,
    /// The subject (`sub`) at that issuer.
    pub subject: String,
    /// The address the issuer vouched for when it was linked (for display).
    pub email: Option<EmailAddress>,
    /// When it was linked.
    pub linked_at: DateTime<Utc>,
}

/// Linked identities. Tenant-scoped; at most one link per (tenant, issuer,
/// subject), enforced by the store so that concurrent first sign-ins with
/// one identity, on any number of nodes, end with one account.
pub trait FederatedStore: Send + Sync + 'static {
    /// The backend's error.
    type Error: StoreError;

    /// The link of (tenant, issuer, subject), if any.
    fn find_linked_identity(
        &self,
        tenant: TenantId,
        issuer: &str,
        subject: &str,
    ) -> impl Future<Output = Result<Option<LinkedIdentity>, Self::Error>> + Send;

    /// The identities linked to a user, oldest first.
    fn linked_identities(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> impl Future<Output = Result<Vec<LinkedIdentity>, Self::Error>> + Send;

    /// Link `identity` to its existing user and record `event`, in one
    /// transaction. `Conflict` (writing nothing) if (tenant, issuer,
    /// subject) is linked already, to anyone, or the event id exists;
    /// `NotFound` if the user is not in the tenant.
    fn link_identity(
        &self,
        identity: &LinkedIdentity,
        event: &AuditEvent,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Create `user` (with no credentials, as
    /// [`IdentityAdmin::create_user`](crate::IdentityAdmin::create_user)),
    /// link `identity` to it and record `event`, in one transaction.
    /// `Conflict` (writing nothing) if the identifier is taken, the link
    /// exists or the event id exists: of concurrent calls with one
    /// (tenant, issuer, subject) exactly one succeeds. `NotFound` if the
    /// tenant does not exist.
    fn create_linked_user(
        &self,
        user: &User,
        identity: &LinkedIdentity,
        event: &AuditEvent,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Remove the link of (tenant, issuer, subject) if it belongs to
    /// `user`. Returns whether it went.
    fn unlink_identity(
        &self,
        tenant: TenantId,
        user: UserId,
        issuer: &str,
        subject: &str,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;
}
