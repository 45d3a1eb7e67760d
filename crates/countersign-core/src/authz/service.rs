//! `AuthzService`: a tenant's authorization model and RBAC data, stored
//! (validated first, versioned, audited) and decided from a cache that is
//! checked against the store's versions before every decision.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use cedar_policy::EntityUid;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{AppEntity, AuthzData, AuthzModel, Decision, Resource, TenantAuthz, UserFacts};
use crate::audit::{AuditDetail, AuditEvent, AuditKind, AuditStatus};
use crate::env::Env;
use crate::error::{Error, Result, StoreError, StoreErrorKind, store_err};
use crate::flow::AuthRecord;
use crate::ids::{TenantId, UserId};
use crate::model::ClientInfo;
use crate::rbac::{
    AuthzVersions, RbacChange, RbacKind, RbacName, RbacSnapshot, RoleAssignment, RoleGrant,
};
use crate::store::{MAX_PAGE, PolicyDocument, Store, TemplateLink};

/// Decides and administers each tenant's authorization.
///
/// Guarantees:
/// - a model is saved only after its schema and policies parse and
///   validate (an invalid one is refused with Cedar's diagnostics, nothing
///   is written, and the refusal is audited);
/// - saves are compare-and-save on the version: a save naming a stale
///   version fails with [`Error::Concurrent`] and changes nothing, so two
///   editors cannot overwrite each other;
/// - every applied change (model or RBAC) is audited in the same
///   transaction as the change, and every refused one is audited too;
/// - [`decide`](Self::decide) reads the tenant's versions (one store call)
///   and decides from entities built once per version: a change made
///   through another instance on the same store is seen at the next
///   decision, and nothing is rebuilt while nothing changed;
/// - a tenant without a stored model decides with countersign's base
///   model alone (its RBAC grants and the administrative actions), so a
///   tenant can be administered before it writes any policy.
///
/// A user's state, tier and attributes are read when the tenant's data is
/// first built (for the users its grants and assignments name) or when
/// the user is first decided for (any other user: this copies the
/// tenant's entities once); they stay cached across changes of the
/// tenant's data (suspending or deleting an account ends its sessions, so
/// it cannot ask again). [`forget_user`](Self::forget_user) refreshes one
/// explicitly.
#[derive(Clone)]
pub struct AuthzService<S> {
    store: S,
    env: Env,
    models: Arc<Mutex<HashMap<TenantId, Arc<AuthzModel>>>>,
    compiled: Arc<Mutex<HashMap<TenantId, Arc<TenantAuthz>>>>,
}

impl<S> std::fmt::Debug for AuthzService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthzService").finish_non_exhaustive()
    }
}

/// Up to this many users missing from a rebuild are looked up one by one;
/// more, and the tenant's users are read in pages.
const FEW_USERS: usize = 64;

/// The version of the base model a tenant without a stored model uses.
const BASE_MODEL_VERSION: u64 = 0;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<S: Store> AuthzService<S> {
    /// A service over `store`, with time and randomness from `env`.
    pub fn new(store: S, env: Env) -> Self {
        Self {
            store,
            env,
            models: Arc::default(),
            compiled: Arc::default(),
        }
    }

    /// Validate and save `tenant`'s model, replacing version `expected`
    /// (`None`: the tenant has none yet), without template links. Returns
    /// the saved version.
    pub async fn save_model(
        &self,
        tenant: TenantId,
        schema: &str,
        policies: &str,
        expected: Option<u64>,
        client: &ClientInfo,
    ) -> Result<u64> {
        self.save_model_with_links(tenant, schema, policies, &[], expected, client)
            .await
    }

    /// [`save_model`](Self::save_model) with template links.
    pub async fn save_model_with_links(
        &self,
        tenant: TenantId,
        schema: &str,
        policies: &str,
        links: &[TemplateLink],
        expected: Option<u64>,
        client: &ClientInfo,
    ) -> Result<u64> {
        let rq = self.env.request(client);
        let version = expected.map_or(1, |v| v.saturating_add(1));
        let event = |status| {
            AuditEvent::new(
                &self.env,
                rq.now,
                tenant,
                None,
                AuditKind::TenantPoliciesChanged,
                status,
                rq.client,
            )
        };
        // Refused here, before any write, with Cedar's diagnostics.
        let compiled = match AuthzModel::with_links(tenant, version, schema, policies, links) {
            Ok(m) => m,
            Err(refusal) => {
                self.audit_refusal(event(AuditStatus::Failure)?).await;
                return Err(refusal.into());
            }
        };
        let doc = PolicyDocument {
            tenant_id: tenant,
            schema: schema.to_owned(),
            policies: policies.to_owned(),
            links: links.to_vec(),
            version,
            updated_at: rq.now,
        };
        // The save and its audit event commit together.
        let saved = self
            .store
            .compare_and_save_policy_document(&doc, expected, Some(&event(AuditStatus::Success)?))
            .await
            .map_err(|e| match StoreError::kind(&e) {
                StoreErrorKind::NotFound => Error::TenantNotFound,
                _ => store_err(e),
            })?;
        if !saved {
            self.audit_refusal(event(AuditStatus::Failure)?).await;
            return Err(Error::Concurrent("the tenant's policies changed meanwhile"));
        }
        lock(&self.models).insert(tenant, Arc::new(compiled));
        Ok(version)
    }

    /// Link a template of `tenant`'s stored model (replacing a link of the
    /// same id), as a new version of its model: validated with it, saved
    /// by compare-and-save, audited. A concurrent save is retried a few
    /// times on the newer version. Returns the saved version.
    pub async fn link_template(
        &self,
        tenant: TenantId,
        link: TemplateLink,
        client: &ClientInfo,
    ) -> Result<u64> {
        self.edit_links(tenant, client, |links| {
            links.retain(|l| l.id != link.id);
            links.push(link.clone());
            true
        })
        .await
    }

    /// Remove the template link `id` from `tenant`'s stored model, as a
    /// new version of it (as [`link_template`](Self::link_template));
    /// `false` if it had no such link.
    pub async fn unlink_template(
        &self,
        tenant: TenantId,
        id: &str,
        client: &ClientInfo,
    ) -> Result<bool> {
        let mut found = false;
        self.edit_links(tenant, client, |links| {
            let before = links.len();
            links.retain(|l| l.id != id);
            found = links.len() != before;
            found
        })
        .await?;
        Ok(found)
    }

    /// Read the stored document, edit its links (`edit` returns whether
    /// anything changed) and save it, retrying on a concurrent save.
    async fn edit_links(
        &self,
        tenant: TenantId,
        client: &ClientInfo,
        mut edit: impl FnMut(&mut Vec<TemplateLink>) -> bool,
    ) -> Result<u64> {
        const ATTEMPTS: usize = 4;
        let mut last = Error::Concurrent("the tenant's policies changed meanwhile");
        for _ in 0..ATTEMPTS {
            let doc = self
                .store
                .policy_document(tenant)
                .await
                .map_err(store_err)?
                .ok_or_else(|| {
                    Error::Authz(super::AuthzError::Parse {
                        diagnostics: vec!["the tenant has no model, so no template".to_owned()],
                    })
                })?;
            let mut links = doc.links.clone();
            if !edit(&mut links) {
                return Ok(doc.version);
            }
            match self
                .save_model_with_links(
                    tenant,
                    &doc.schema,
                    &doc.policies,
                    &links,
                    Some(doc.version),
                    client,
                )
                .await
            {
                Err(e @ Error::Concurrent(_)) => last = e,
                other => return other,
            }
        }
        Err(last)
    }

    /// The tenant's current model, compiled (`None`: it has none stored).
    /// Compiled once per version; a stored document that no longer
    /// validates (edited outside the service) is an error, never a
    /// silently empty model.
    pub async fn model(&self, tenant: TenantId) -> Result<Option<Arc<AuthzModel>>> {
        let v = self.versions(tenant).await?;
        match v.policies {
            None => Ok(None),
            Some(version) => self.model_at(tenant, version).await.map(Some),
        }
    }

    /// Apply one RBAC change to `tenant` (names are checked by
    /// [`RbacName`]; grants must name the tenant's own roles, permissions,
    /// services and users), audited with the change in one transaction.
    /// Returns the tenant's new RBAC version. A refused change (a missing
    /// or duplicate name, another tenant's user) writes nothing but a
    /// failure audit event.
    pub async fn change_rbac(
        &self,
        tenant: TenantId,
        change: &RbacChange,
        client: &ClientInfo,
    ) -> Result<u64> {
        let rq = self.env.request(client);
        let user = match change {
            RbacChange::Assign(a) | RbacChange::Unassign(a) => Some(a.user),
            RbacChange::GrantDirect(g) | RbacChange::RevokeDirect(g) => Some(g.user),
            _ => None,
        };
        let event = |status| -> Result<AuditEvent> {
            let mut e = AuditEvent::new(
                &self.env,
                rq.now,
                tenant,
                user,
                AuditKind::RbacChanged,
                status,
                rq.client,
            )?;
            e.detail = Some(AuditDetail::Change(change.describe()));
            Ok(e)
        };
        match self
            .store
            .apply_rbac_change(tenant, change, Some(&event(AuditStatus::Success)?))
            .await
        {
            Ok(version) => Ok(version),
            Err(e) => {
                let kind = StoreError::kind(&e);
                if matches!(kind, StoreErrorKind::NotFound | StoreErrorKind::Conflict) {
                    self.audit_refusal(event(AuditStatus::Failure)?).await;
                }
                Err(store_err(e))
            }
        }
    }

    /// Makes `user` an administrator of `tenant`: creates (when missing)
    /// the service `countersign`, the role `admin` granted every
    /// administrative action there except `manage_tenants`, and assigns it.
    /// Each change is audited. For a first administrator at bootstrap; the
    /// platform operator's `manage_tenants` is granted explicitly.
    pub async fn grant_tenant_admin(
        &self,
        tenant: TenantId,
        user: UserId,
        client: &ClientInfo,
    ) -> Result<u64> {
        let name = |s: &str| RbacName::new(s).map_err(Error::from);
        let (service, role) = (name(ADMIN_SERVICE)?, name(ADMIN_ROLE)?);
        let mut changes = vec![
            RbacChange::Create {
                kind: RbacKind::Service,
                name: service.clone(),
            },
            RbacChange::Create {
                kind: RbacKind::Role,
                name: role.clone(),
            },
        ];
        for action in AdminAction::ALL {
            if *action == AdminAction::ManageTenants {
                continue;
            }
            let permission = name(action.as_str())?;
            changes.push(RbacChange::Create {
                kind: RbacKind::Permission,
                name: permission.clone(),
            });
            changes.push(RbacChange::Grant(RoleGrant {
                role: role.clone(),
                permission,
                service: Some(service.clone()),
            }));
        }
        changes.push(RbacChange::Assign(RoleAssignment {
            user,
            role,
            service,
        }));
        let mut version = 0;
        for change in &changes {
            match self.change_rbac(tenant, change, client).await {
                Ok(v) => version = v,
                // Already there from an earlier bootstrap.
                Err(e) if e.kind() == crate::error::ErrorKind::Conflict => {}
                Err(e) => return Err(e),
            }
        }
        Ok(version)
    }

    /// May the user authenticated by `auth` do `action` on `resource`,
    /// with the caller's `context`? Decided under the principal's tenant's
    /// current model and data (see [`TenantAuthz::decide`] for isolation,
    /// errors and step-up). One store read when nothing changed since the
    /// last decision for that tenant; store failures are errors, never an
    /// allow.
    pub async fn decide(
        &self,
        auth: &AuthRecord,
        action: &EntityUid,
        resource: &Resource,
        context: Map<String, Value>,
    ) -> Result<Decision> {
        let now = self.env.now();
        let compiled = self.compiled_for(auth.tenant_id, auth.user_id).await?;
        Ok(compiled.decide(auth, action, resource, context, now))
    }

    /// [`decide`](Self::decide) with the application's own entities for
    /// this request (the resource with its attributes, ...), as
    /// [`TenantAuthz::decide_with`] takes them.
    pub async fn decide_with(
        &self,
        auth: &AuthRecord,
        action: &EntityUid,
        resource: &Resource,
        context: Map<String, Value>,
        entities: &[AppEntity],
    ) -> Result<Decision> {
        let now = self.env.now();
        let compiled = self.compiled_for(auth.tenant_id, auth.user_id).await?;
        Ok(compiled.decide_with(auth, action, resource, context, entities, now))
    }

    /// May the user authenticated by `auth` do the administrative `action`
    /// in its own tenant? The question every administrative path (and the
    /// HTTP layer) asks: decided by the same engine, on the tenant's
    /// `countersign` service, under countersign's base policies and the
    /// tenant's own.
    pub async fn decide_admin(&self, auth: &AuthRecord, action: AdminAction) -> Result<Decision> {
        let resource = Resource {
            tenant: auth.tenant_id,
            uid: admin_service_uid()?,
        };
        self.decide(auth, &action.uid()?, &resource, Map::new())
            .await
    }

    /// The effective permissions of `user` in `service` (through its roles
    /// there and its direct grants), from the same cached data decisions
    /// use.
    pub async fn effective_permissions(
        &self,
        tenant: TenantId,
        user: UserId,
        service: &RbacName,
    ) -> Result<Vec<RbacName>> {
        let compiled = self.compiled_for(tenant, user).await?;
        Ok(compiled.effective_permissions(user, service))
    }

    /// Drop the cached facts of `user` (its state, tier, attributes): the
    /// next decision for it reads them again.
    pub fn forget_user(&self, tenant: TenantId, user: UserId) {
        let mut compiled = lock(&self.compiled);
        if let Some(c) = compiled.get(&tenant)
            && c.has_user(user)
        {
            compiled.remove(&tenant);
        }
    }

    async fn versions(&self, tenant: TenantId) -> Result<AuthzVersions> {
        self.store.authz_versions(tenant).await.map_err(store_err)
    }

    /// The tenant's compiled data at the store's current versions, with
    /// `user` among its users.
    async fn compiled_for(&self, tenant: TenantId, user: UserId) -> Result<Arc<TenantAuthz>> {
        let v = self.versions(tenant).await?;
        let model_version = v.policies.unwrap_or(BASE_MODEL_VERSION);
        let cached = lock(&self.compiled).get(&tenant).cloned();
        let mut current = match cached {
            Some(c) if c.is_current(model_version, v.rbac) => c,
            previous => {
                let model = match v.policies {
                    None => self.base_model(tenant)?,
                    Some(version) => self.model_at(tenant, version).await?,
                };
                let snapshot = self.store.rbac_snapshot(tenant).await.map_err(store_err)?;
                // Carry the users already known over (their facts stay
                // cached, see the type's docs) and load those the data
                // names, so that no decision pays for adding them one by
                // one.
                let mut users: HashMap<UserId, UserFacts> = previous
                    .map(|p| p.user_facts())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|u| (u.id, u))
                    .collect();
                self.load_users(tenant, &snapshot, &mut users).await?;
                let users = users.into_values().collect();
                let data = AuthzData::from_snapshot(&snapshot, users, Vec::<AppEntity>::new());
                let built = Arc::new(TenantAuthz::build(model, snapshot.version, &data)?);
                lock(&self.compiled).insert(tenant, Arc::clone(&built));
                built
            }
        };
        if !current.has_user(user)
            && let Some(u) = self.store.get_user(tenant, user).await.map_err(store_err)?
        {
            current = Arc::new(current.with_user(&UserFacts::from(&u))?);
            let mut compiled = lock(&self.compiled);
            // Keep whichever is newer if another task rebuilt meanwhile.
            let replace = compiled
                .get(&tenant)
                .is_none_or(|c| c.is_current(current.model().version(), current.data_version()));
            if replace {
                compiled.insert(tenant, Arc::clone(&current));
            }
        }
        Ok(current)
    }

    /// Adds to `users` the facts of every user `snapshot` names that it
    /// lacks: one lookup each when they are few, else one pass over the
    /// tenant's users in pages.
    async fn load_users(
        &self,
        tenant: TenantId,
        snapshot: &RbacSnapshot,
        users: &mut HashMap<UserId, UserFacts>,
    ) -> Result<()> {
        let named: HashSet<UserId> = snapshot
            .assignments
            .iter()
            .map(|a| a.user)
            .chain(snapshot.direct_grants.iter().map(|g| g.user))
            .filter(|u| !users.contains_key(u))
            .collect();
        if named.len() <= FEW_USERS {
            for id in named {
                if let Some(u) = self.store.get_user(tenant, id).await.map_err(store_err)? {
                    users.insert(id, UserFacts::from(&u));
                }
            }
            return Ok(());
        }
        let mut after = None;
        loop {
            let page = self
                .store
                .list_users(tenant, after, MAX_PAGE)
                .await
                .map_err(store_err)?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some(last.id);
            for u in page.iter().filter(|u| named.contains(&u.id)) {
                users.insert(u.id, UserFacts::from(u));
            }
        }
    }

    /// The stored model at `version`, compiled once.
    async fn model_at(&self, tenant: TenantId, version: u64) -> Result<Arc<AuthzModel>> {
        let cached = lock(&self.models)
            .get(&tenant)
            .filter(|m| m.version() == version)
            .cloned();
        if let Some(m) = cached {
            return Ok(m);
        }
        let Some(doc) = self
            .store
            .policy_document(tenant)
            .await
            .map_err(store_err)?
        else {
            return self.base_model(tenant);
        };
        let compiled = Arc::new(AuthzModel::with_links(
            tenant,
            doc.version,
            &doc.schema,
            &doc.policies,
            &doc.links,
        )?);
        lock(&self.models).insert(tenant, Arc::clone(&compiled));
        Ok(compiled)
    }

    fn base_model(&self, tenant: TenantId) -> Result<Arc<AuthzModel>> {
        Ok(Arc::new(AuthzModel::new(
            tenant,
            BASE_MODEL_VERSION,
            "",
            "",
        )?))
    }

    /// Record a refused change's event; a failure to record it is logged,
    /// never hides the refusal itself.
    async fn audit_refusal(&self, event: AuditEvent) {
        if let Err(e) = self.store.record_event(&event).await {
            tracing::warn!(error = %e, kind = %event.kind, "could not audit a refused change");
        }
    }
}

/// The service whose permissions are countersign's administrative
/// actions in each tenant.
pub const ADMIN_SERVICE: &str = "countersign";

/// The role [`AuthzService::grant_tenant_admin`] creates and assigns.
pub const ADMIN_ROLE: &str = "admin";

fn admin_service_uid() -> Result<EntityUid> {
    format!("Countersign::Service::\"{ADMIN_SERVICE}\"")
        .parse()
        .map_err(|e| Error::internal_from("the admin service uid", e))
}

crate::audit::str_enum! {
    /// countersign's own administrative actions (`Countersign::Action::"…"`
    /// in every tenant's schema). Each is allowed by holding the permission
    /// of the same name in the tenant's `countersign` service, and only to
    /// an active account.
    pub enum AdminAction {
        /// Create, update, suspend, delete and export the tenant's users.
        ManageUsers => "manage_users",
        /// Manage services, roles, permissions, grants and assignments.
        ManageRbac => "manage_rbac",
        /// Write the tenant's Cedar schema and policies.
        ManagePolicies => "manage_policies",
        /// Change the tenant's settings: factors, methods, keys.
        ManageTenant => "manage_tenant",
        /// Read the tenant's audit trail.
        ReadAudit => "read_audit",
        /// Create and manage tenants (the platform operator, in the
        /// operator's own tenant).
        ManageTenants => "manage_tenants",
    }
}

impl AdminAction {
    /// Its Cedar uid, `Countersign::Action::"…"`.
    pub fn uid(self) -> Result<EntityUid> {
        format!("Countersign::Action::\"{}\"", self.as_str())
            .parse()
            .map_err(|e| Error::internal_from("an admin action uid", e))
    }
}
