//! Tenant provisioning input whose invariants hold by construction.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::factor::{AuthMethod, FactorSettings};
use crate::model::Tenant;
#[cfg(doc)]
use crate::model::TenantPolicy;

/// Everything a new tenant starts with, validated so that a tenant can never
/// exist without a way for its users to sign in:
///
/// - the tenant is not the system tenant;
/// - its whole policy is within bounds ([`TenantPolicy::validate`]:
///   lockout, sessions, access tokens), never silently defaulted;
/// - at least one factor is adopted, each kind once, each with valid settings;
/// - at least one method, names unique, and every factor a method uses is adopted.
///
/// Stores create all of it in one atomic operation
/// ([`IdentityAdmin::provision_tenant`](crate::store::IdentityAdmin::provision_tenant)).
#[derive(Debug, Clone)]
pub struct TenantProvision {
    tenant: Tenant,
    factors: Vec<FactorSettings>,
    methods: Vec<AuthMethod>,
}

impl TenantProvision {
    /// Validate and bundle a new tenant.
    pub fn new(
        tenant: Tenant,
        factors: Vec<FactorSettings>,
        methods: Vec<AuthMethod>,
    ) -> Result<Self> {
        if tenant.id.is_system() {
            return Err(Error::Reserved("system tenant".into()));
        }
        tenant.policy.validate()?;
        if factors.is_empty() {
            return Err(Error::Provisioning(
                "a tenant needs at least one factor".into(),
            ));
        }
        let mut kinds = BTreeSet::new();
        for f in &factors {
            if !kinds.insert(f.kind().as_str()) {
                return Err(Error::Provisioning(format!(
                    "factor `{}` adopted twice",
                    f.kind()
                )));
            }
            f.validate()?;
        }
        if methods.is_empty() {
            return Err(Error::Provisioning(
                "a tenant needs at least one method".into(),
            ));
        }
        let mut names = BTreeSet::new();
        for m in &methods {
            m.validate()?;
            if m.name.is_reserved() {
                return Err(Error::Reserved(format!("method name `{}`", m.name)));
            }
            if !names.insert(m.name.as_str()) {
                return Err(Error::Provisioning(format!(
                    "method `{}` given twice",
                    m.name
                )));
            }
            if let Some(k) = m.factor_kinds().find(|k| !kinds.contains(k.as_str())) {
                return Err(Error::Provisioning(format!(
                    "method `{}` uses factor `{k}`, which the tenant does not adopt",
                    m.name
                )));
            }
        }
        Ok(Self {
            tenant,
            factors,
            methods,
        })
    }

    /// The tenant row.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// The adopted factors' settings.
    pub fn factors(&self) -> &[FactorSettings] {
        &self.factors
    }

    /// The tenant-scope methods, all enabled.
    pub fn methods(&self) -> &[AuthMethod] {
        &self.methods
    }
}
