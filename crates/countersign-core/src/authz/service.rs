//! `AuthzService`: a tenant's authorization model, stored (validated first,
//! versioned) and served compiled from a per-version cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::AuthzModel;
use crate::audit::{AuditEvent, AuditKind, AuditStatus};
use crate::env::Env;
use crate::error::{Error, Result, StoreErrorKind, store_err};
use crate::ids::TenantId;
use crate::model::ClientInfo;
use crate::store::{PolicyDocument, Store};

/// Stores each tenant's authorization model and serves it compiled.
///
/// Guarantees:
/// - a model is saved only after its schema and policies parse and
///   validate (an invalid one is refused with Cedar's diagnostics and
///   nothing is written);
/// - saves are compare-and-save on the version: a save naming a stale
///   version fails with [`Error::Concurrent`] and changes nothing, so two
///   editors cannot overwrite each other;
/// - every save is audited (`tenant.policies_changed`) in the same
///   transaction as the save;
/// - [`model`](Self::model) compiles a version once per service and serves
///   it from the cache until a newer version is stored (one store read per
///   call: the version check).
#[derive(Clone)]
pub struct AuthzService<S> {
    store: S,
    env: Env,
    cache: Arc<Mutex<HashMap<TenantId, Arc<AuthzModel>>>>,
}

impl<S> std::fmt::Debug for AuthzService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthzService").finish_non_exhaustive()
    }
}

impl<S: Store> AuthzService<S> {
    /// A service over `store`, with time and randomness from `env`.
    pub fn new(store: S, env: Env) -> Self {
        Self {
            store,
            env,
            cache: Arc::default(),
        }
    }

    /// Validate and save `tenant`'s model, replacing version `expected`
    /// (`None`: the tenant has none yet). Returns the saved version.
    pub async fn save_model(
        &self,
        tenant: TenantId,
        schema: &str,
        policies: &str,
        expected: Option<u64>,
        client: &ClientInfo,
    ) -> Result<u64> {
        let rq = self.env.request(client);
        let version = expected.map_or(1, |v| v.saturating_add(1));
        // Refused here, before any write, with Cedar's diagnostics.
        let compiled = AuthzModel::new(tenant, version, schema, policies)?;
        let doc = PolicyDocument {
            tenant_id: tenant,
            schema: schema.to_owned(),
            policies: policies.to_owned(),
            version,
            updated_at: rq.now,
        };
        // The save and its audit event commit together.
        let event = AuditEvent::new(
            &self.env,
            rq.now,
            tenant,
            None,
            AuditKind::TenantPoliciesChanged,
            AuditStatus::Success,
            rq.client,
        )?;
        let saved = self
            .store
            .compare_and_save_policy_document(&doc, expected, Some(&event))
            .await
            .map_err(|e| match crate::error::StoreError::kind(&e) {
                StoreErrorKind::NotFound => Error::TenantNotFound,
                _ => store_err(e),
            })?;
        if !saved {
            return Err(Error::Concurrent("the tenant's policies changed meanwhile"));
        }
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(tenant, Arc::new(compiled));
        Ok(version)
    }

    /// The tenant's current model, compiled (`None`: it has none). Compiled
    /// once per version; a stored document that no longer validates (edited
    /// outside the service) is an error, never a silently empty model.
    pub async fn model(&self, tenant: TenantId) -> Result<Option<Arc<AuthzModel>>> {
        let Some(doc) = self
            .store
            .policy_document(tenant)
            .await
            .map_err(store_err)?
        else {
            return Ok(None);
        };
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&tenant)
            .filter(|m| m.version() == doc.version)
            .cloned();
        if let Some(m) = cached {
            return Ok(Some(m));
        }
        let compiled = Arc::new(AuthzModel::new(
            tenant,
            doc.version,
            &doc.schema,
            &doc.policies,
        )?);
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(tenant, Arc::clone(&compiled));
        Ok(Some(compiled))
    }
}
