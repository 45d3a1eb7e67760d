//! `FactorStore` in memory: tenant factor settings, versioned user
//! credentials and methods at both scopes.

use countersign_core::store::resolve_methods;
use countersign_core::{
    AuthMethod, FactorCredential, FactorKind, FactorSettings, FactorStore, MethodName,
    MethodRecord, MethodScope, StoreErrorKind, TenantId, UserId, Versioned,
};

use crate::error::{MemoryError, Result};
use crate::state::next_version;
use crate::{MemoryStore, StoreMethod};

impl FactorStore for MemoryStore {
    type Error = MemoryError;

    async fn tenant_factor(
        &self,
        tenant: TenantId,
        kind: FactorKind,
    ) -> Result<Option<FactorSettings>> {
        Ok(self
            .begin(StoreMethod::FactorSettings)?
            .tenant_factors
            .get(&(tenant, kind.as_str()))
            .cloned())
    }

    async fn tenant_factors(&self, tenant: TenantId) -> Result<Vec<FactorSettings>> {
        Ok(self
            .begin(StoreMethod::TenantFactors)?
            .tenant_factors
            .iter()
            .filter(|((t, _), _)| *t == tenant)
            .map(|(_, f)| f.clone())
            .collect())
    }

    async fn save_tenant_factor(&self, tenant: TenantId, factor: &FactorSettings) -> Result<()> {
        let mut st = self.begin(StoreMethod::SaveTenantFactor)?;
        st.require_scope(MethodScope::Tenant(tenant))?;
        st.tenant_factors
            .insert((tenant, factor.kind().as_str()), factor.clone());
        Ok(())
    }

    async fn remove_tenant_factor(&self, tenant: TenantId, kind: FactorKind) -> Result<bool> {
        let mut st = self.begin(StoreMethod::RemoveTenantFactor)?;
        let key = (tenant, kind.as_str());
        if !st.tenant_factors.contains_key(&key) {
            return Ok(false);
        }
        let count = st
            .tenant_factors
            .keys()
            .filter(|(t, _)| *t == tenant)
            .count();
        if count <= 1 {
            return Err(MemoryError::new(
                StoreErrorKind::Conflict,
                "a tenant keeps at least one factor",
            ));
        }
        st.tenant_factors.remove(&key);
        Ok(true)
    }

    async fn user_factor(
        &self,
        tenant: TenantId,
        user: UserId,
        kind: FactorKind,
    ) -> Result<Option<Versioned<FactorCredential>>> {
        let st = self.begin(StoreMethod::FactorCredential)?;
        Ok(st
            .user_in(tenant, user)
            .and_then(|_| st.user_factors.get(&(user, kind.as_str())))
            .cloned())
    }

    async fn user_factors(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Vec<Versioned<FactorCredential>>> {
        let st = self.begin(StoreMethod::UserFactors)?;
        if st.user_in(tenant, user).is_none() {
            return Ok(Vec::new());
        }
        Ok(st
            .user_factors
            .iter()
            .filter(|((u, _), _)| *u == user)
            .map(|(_, f)| f.clone())
            .collect())
    }

    async fn compare_and_save_user_factor(
        &self,
        tenant: TenantId,
        user: UserId,
        expected: Option<u64>,
        factor: &FactorCredential,
    ) -> Result<bool> {
        let mut st = self.begin(StoreMethod::CompareAndSaveUserFactor)?;
        st.require_user(tenant, user)?;
        let key = (user, factor.kind().as_str());
        let current = st.user_factors.get(&key).map(|v| v.version);
        let Some(mut version) = next_version(current, expected) else {
            return Ok(false);
        };
        if current.is_none() {
            // A credential that was removed comes back above its old
            // version: a compare-and-save naming a version from before the
            // removal can never match again.
            if let Some(last) = st.removed_factors.remove(&key) {
                version = last + 1;
            }
        }
        let value = factor.clone();
        st.user_factors.insert(key, Versioned { value, version });
        Ok(true)
    }

    async fn remove_user_factor(
        &self,
        tenant: TenantId,
        user: UserId,
        kind: FactorKind,
    ) -> Result<bool> {
        let mut st = self.begin(StoreMethod::RemoveUserFactor)?;
        if st.user_in(tenant, user).is_none() {
            return Ok(false);
        }
        let key = (user, kind.as_str());
        match st.user_factors.remove(&key) {
            Some(removed) => {
                // As the SQL stores' tombstones: the removal itself counts.
                st.removed_factors.insert(key, removed.version + 1);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn save_method(
        &self,
        scope: MethodScope,
        method: &AuthMethod,
        enabled: bool,
    ) -> Result<()> {
        let mut st = self.begin(StoreMethod::SaveMethod)?;
        st.require_scope(scope)?;
        let key = (scope.tenant(), scope.user(), method.name.clone());
        st.keep_an_enabled_method(&key, Some(enabled))?;
        st.methods.insert(
            key,
            MethodRecord {
                method: method.clone(),
                enabled,
            },
        );
        Ok(())
    }

    async fn methods(&self, scope: MethodScope) -> Result<Vec<MethodRecord>> {
        Ok(self.begin(StoreMethod::Methods)?.methods_at(scope))
    }

    async fn set_method_enabled(
        &self,
        scope: MethodScope,
        name: &MethodName,
        enabled: bool,
    ) -> Result<bool> {
        let mut st = self.begin(StoreMethod::SetMethodEnabled)?;
        let key = (scope.tenant(), scope.user(), name.clone());
        if !st.methods.contains_key(&key) {
            return Ok(false);
        }
        st.keep_an_enabled_method(&key, Some(enabled))?;
        if let Some(r) = st.methods.get_mut(&key) {
            r.enabled = enabled;
        }
        Ok(true)
    }

    async fn remove_method(&self, scope: MethodScope, name: &MethodName) -> Result<bool> {
        let mut st = self.begin(StoreMethod::RemoveMethod)?;
        let key = (scope.tenant(), scope.user(), name.clone());
        if !st.methods.contains_key(&key) {
            return Ok(false);
        }
        st.keep_an_enabled_method(&key, None)?;
        st.methods.remove(&key);
        Ok(true)
    }

    async fn available_methods(&self, tenant: TenantId, user: UserId) -> Result<Vec<AuthMethod>> {
        let st = self.begin(StoreMethod::AvailableMethods)?;
        if st.user_in(tenant, user).is_none() {
            return Ok(Vec::new());
        }
        Ok(resolve_methods(
            &st.methods_at(MethodScope::Tenant(tenant)),
            &st.methods_at(MethodScope::User(tenant, user)),
        ))
    }
}
