//! Per-tenant branding: the product name mail speaks in, the sender, and
//! where password-reset links point.

use std::collections::HashMap;
use std::sync::Arc;

use countersign_core::TenantId;
use url::Url;

use crate::address::FromAddress;

/// How one tenant's mail looks and who sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Branding {
    /// The name the mail speaks in ("Your Acme sign-in code").
    pub product_name: String,
    /// The `From` of this tenant's mail; `None` uses the sender's
    /// configured address.
    pub from: Option<FromAddress>,
    /// The page where a user chooses a new password. When set, a password
    /// reset mail links to it with the token as the `token` query
    /// parameter; when not, the mail shows the token itself.
    pub password_reset_url: Option<Url>,
}

impl Branding {
    /// Branding with a product name, the sender's default `From`, and no
    /// reset link.
    pub fn new(product_name: impl Into<String>) -> Self {
        Self {
            product_name: product_name.into(),
            from: None,
            password_reset_url: None,
        }
    }

    /// Send this tenant's mail from `from`.
    pub fn with_from(mut self, from: FromAddress) -> Self {
        self.from = Some(from);
        self
    }

    /// Link password resets to `url` (the token goes in its `token` query
    /// parameter).
    pub fn with_password_reset_url(mut self, url: Url) -> Self {
        self.password_reset_url = Some(url);
        self
    }
}

/// Where branding comes from: a fixed table ([`Brands`]), or the
/// application's own lookup (configuration, a database cache). Lookups are
/// synchronous because rendering is: keep the data in memory.
///
/// Share one source between [`Templates`](crate::Templates) (product name,
/// reset link) and [`SmtpSender`](crate::SmtpSender) (the `From`) by
/// wrapping it in an [`Arc`].
pub trait BrandingSource: Send + Sync + 'static {
    /// The branding of `tenant`; `None` means the defaults: the tenant's
    /// name as product name, the sender's configured `From`, no reset link.
    fn branding(&self, tenant: TenantId) -> Option<Branding>;
}

impl<T: BrandingSource + ?Sized> BrandingSource for Arc<T> {
    fn branding(&self, tenant: TenantId) -> Option<Branding> {
        (**self).branding(tenant)
    }
}

/// No branding: every tenant gets the defaults.
impl BrandingSource for () {
    fn branding(&self, _tenant: TenantId) -> Option<Branding> {
        None
    }
}

/// A fixed table of branding per tenant, with an optional fallback for
/// tenants not in it.
#[derive(Debug, Clone, Default)]
pub struct Brands {
    by_tenant: HashMap<TenantId, Branding>,
    fallback: Option<Branding>,
}

impl Brands {
    /// An empty table: every tenant gets the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Brand `tenant`'s mail with `branding` (replacing earlier branding).
    pub fn with(mut self, tenant: TenantId, branding: Branding) -> Self {
        self.by_tenant.insert(tenant, branding);
        self
    }

    /// Brand the mail of every tenant not in the table with `branding`.
    pub fn with_fallback(mut self, branding: Branding) -> Self {
        self.fallback = Some(branding);
        self
    }
}

impl BrandingSource for Brands {
    fn branding(&self, tenant: TenantId) -> Option<Branding> {
        self.by_tenant
            .get(&tenant)
            .or(self.fallback.as_ref())
            .cloned()
    }
}
