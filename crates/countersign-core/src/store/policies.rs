//! `PolicyStore`: each tenant's Cedar schema, policies and template links.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::audit::AuditEvent;
use crate::error::StoreError;
use crate::ids::TenantId;

/// A tenant's authorization model as stored: its Cedar schema and policy
/// set (text), versioned. Stores keep it as given; the service saves only
/// documents that parse and validate (see `authz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The tenant's Cedar schema (its own types and actions).
    pub schema: String,
    /// The tenant's Cedar policies and templates.
    pub policies: String,
    /// Links of the templates in `policies` (each a policy of its own).
    pub links: Vec<TemplateLink>,
    /// Its version: 1 for the first saved, one more on each save.
    pub version: u64,
    /// When it was saved.
    pub updated_at: DateTime<Utc>,
}

/// A link of a Cedar template: a policy named `id`, the template
/// `template` with its `?principal` and `?resource` slots filled with
/// entity uids in Cedar syntax (`Countersign::User::"…"`). Stored with the
/// tenant's [`PolicyDocument`]; checked with the model it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TemplateLink {
    /// The linked policy's id.
    pub id: String,
    /// The template's id.
    pub template: String,
    /// The `?principal` slot, if the template has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The `?resource` slot, if the template has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

/// Each tenant's authorization model (Cedar schema and policies),
/// versioned with a compare-and-save so that concurrent editors cannot
/// overwrite each other and a cache can key on the version.
pub trait PolicyStore: Send + Sync + 'static {
    /// The backend's error.
    type Error: StoreError;

    /// The tenant's current document, if it has one. Tenant-scoped: another
    /// tenant's document is never returned.
    fn policy_document(
        &self,
        tenant: TenantId,
    ) -> impl Future<Output = Result<Option<PolicyDocument>, Self::Error>> + Send;

    /// Save `doc` for `doc.tenant_id` only if the stored version is
    /// `expected` (`None`: only if there is none yet), and with it, if
    /// given, the audit `event` that records the change, in one
    /// transaction (a save is never left unaudited, nor an event without
    /// its save). Atomic: of concurrent saves naming one version exactly
    /// one returns `true`. The saved version is `expected + 1` (1 for the
    /// first); `doc.version` is ignored. `NotFound` if the tenant does not
    /// exist; `Conflict` (writing nothing) if the event id exists.
    fn compare_and_save_policy_document(
        &self,
        doc: &PolicyDocument,
        expected: Option<u64>,
        event: Option<&AuditEvent>,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;
}
