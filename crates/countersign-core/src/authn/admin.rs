//! Administration of a tenant after provisioning: its factors and methods,
//! through validated, audited calls (never raw store writes), so a tenant
//! always keeps a way for its users to sign in.

use super::AuthnService;
use crate::audit::{AuditDetail, AuditKind};
use crate::error::{Error, Result, StoreError, StoreErrorKind, store_err};
use crate::factor::{AuthMethod, FactorKind, FactorSettings, MethodName, MethodScope};
use crate::ids::TenantId;
use crate::model::ClientInfo;
use crate::store::Store;

/// A refusal of the store to leave a tenant without a factor or an
/// enabled method, as the service's error.
fn refused<E: StoreError>(e: E, what: &str) -> Error {
    match e.kind() {
        StoreErrorKind::Conflict => Error::Provisioning(format!("{what}: a tenant keeps one")),
        _ => store_err(e),
    }
}

impl<S> AuthnService<S>
where
    S: Store,
{
    /// Adopt a factor for `tenant`, or replace the settings of one it has
    /// adopted, after validating them. Audited
    /// ([`AuditKind::TenantFactorChanged`]).
    pub async fn adopt_factor(
        &self,
        tenant: TenantId,
        settings: FactorSettings,
        client: &ClientInfo,
    ) -> Result<()> {
        let rq = self.env.request(client);
        settings.validate()?;
        let tenant = self.tenant(tenant).await?;
        self.store
            .save_tenant_factor(tenant.id, &settings)
            .await
            .map_err(store_err)?;
        let kind = settings.kind();
        self.audit(
            self.success(tenant.id, None, AuditKind::TenantFactorChanged, rq)
                .map(|e| e.with_factor(kind)),
        )
        .await
    }

    /// Drop a factor from `tenant`. Refused ([`Error::Provisioning`]) while
    /// a tenant method that is enabled uses it, or when it is the tenant's
    /// last factor. Returns whether it was adopted. Audited
    /// ([`AuditKind::TenantFactorRemoved`]). Users' credentials of that
    /// factor stay (re-adopting it makes them usable again); disabled
    /// methods that use it can be enabled again only once it is re-adopted.
    pub async fn remove_tenant_factor(
        &self,
        tenant: TenantId,
        kind: FactorKind,
        client: &ClientInfo,
    ) -> Result<bool> {
        let rq = self.env.request(client);
        let tenant = self.tenant(tenant).await?;
        let methods = self.tenant_methods(tenant.id).await?;
        if let Some(m) = methods.iter().find(|m| m.factor_kinds().any(|k| k == kind)) {
            return Err(Error::Provisioning(format!(
                "factor `{kind}` is used by the enabled method `{}`: disable or remove it first",
                m.name
            )));
        }
        let removed = self
            .store
            .remove_tenant_factor(tenant.id, kind)
            .await
            .map_err(|e| refused(e, "the last factor cannot be removed"))?;
        if removed {
            self.audit(
                self.success(tenant.id, None, AuditKind::TenantFactorRemoved, rq)
                    .map(|e| e.with_factor(kind)),
            )
            .await?;
        }
        Ok(removed)
    }

    /// Check that every factor `method` uses is adopted by `tenant`.
    async fn require_adopted(&self, tenant: TenantId, method: &AuthMethod) -> Result<()> {
        let adopted = self.store.tenant_factors(tenant).await.map_err(store_err)?;
        if let Some(k) = method
            .factor_kinds()
            .find(|k| !adopted.iter().any(|f| f.kind() == *k))
        {
            return Err(Error::Provisioning(format!(
                "method `{}` uses factor `{k}`, which the tenant does not adopt",
                method.name
            )));
        }
        Ok(())
    }

    /// Add an enabled method to `tenant`. Refused: a malformed method
    /// ([`Error::InvalidInput`]), a factor the tenant has not adopted
    /// ([`Error::Provisioning`]), a name the tenant already has
    /// ([`Error::AlreadyExists`]). Audited
    /// ([`AuditKind::TenantMethodChanged`]).
    pub async fn add_method(
        &self,
        tenant: TenantId,
        method: AuthMethod,
        client: &ClientInfo,
    ) -> Result<()> {
        let rq = self.env.request(client);
        method.validate()?;
        if method.name.is_reserved() {
            return Err(Error::Reserved(format!("method name `{}`", method.name)));
        }
        let tenant = self.tenant(tenant).await?;
        self.require_adopted(tenant.id, &method).await?;
        let scope = MethodScope::Tenant(tenant.id);
        let existing = self.store.methods(scope).await.map_err(store_err)?;
        if existing.iter().any(|r| r.method.name == method.name) {
            return Err(Error::AlreadyExists(format!("method `{}`", method.name)));
        }
        self.store
            .save_method(scope, &method, true)
            .await
            .map_err(store_err)?;
        self.audit(
            self.success(tenant.id, None, AuditKind::TenantMethodChanged, rq)
                .map(|e| e.with_detail(AuditDetail::Method(method.name))),
        )
        .await
    }

    /// Enable or disable a method of `tenant`. Enabling needs every factor
    /// it uses adopted; disabling the last enabled method is refused (both
    /// [`Error::Provisioning`]). Returns whether the method exists.
    /// Audited ([`AuditKind::TenantMethodChanged`]).
    pub async fn set_method_enabled(
        &self,
        tenant: TenantId,
        name: &str,
        enabled: bool,
        client: &ClientInfo,
    ) -> Result<bool> {
        let rq = self.env.request(client);
        let name = MethodName::parse(name)?;
        let tenant = self.tenant(tenant).await?;
        let scope = MethodScope::Tenant(tenant.id);
        let existing = self.store.methods(scope).await.map_err(store_err)?;
        let Some(record) = existing.into_iter().find(|r| r.method.name == name) else {
            return Ok(false);
        };
        if enabled {
            self.require_adopted(tenant.id, &record.method).await?;
        }
        let found = self
            .store
            .set_method_enabled(scope, &name, enabled)
            .await
            .map_err(|e| refused(e, "the last enabled method cannot be disabled"))?;
        if found {
            self.audit(
                self.success(tenant.id, None, AuditKind::TenantMethodChanged, rq)
                    .map(|e| e.with_detail(AuditDetail::Method(name))),
            )
            .await?;
        }
        Ok(found)
    }

    /// Remove a method of `tenant`. Removing the last enabled method is
    /// refused ([`Error::Provisioning`]). Returns whether it existed.
    /// Audited ([`AuditKind::TenantMethodRemoved`]).
    pub async fn remove_method(
        &self,
        tenant: TenantId,
        name: &str,
        client: &ClientInfo,
    ) -> Result<bool> {
        let rq = self.env.request(client);
        let name = MethodName::parse(name)?;
        let tenant = self.tenant(tenant).await?;
        let removed = self
            .store
            .remove_method(MethodScope::Tenant(tenant.id), &name)
            .await
            .map_err(|e| refused(e, "the last enabled method cannot be removed"))?;
        if removed {
            self.audit(
                self.success(tenant.id, None, AuditKind::TenantMethodRemoved, rq)
                    .map(|e| e.with_detail(AuditDetail::Method(name))),
            )
            .await?;
        }
        Ok(removed)
    }
}
