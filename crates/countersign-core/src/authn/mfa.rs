//! Enrolling a second factor protects the account: the tenant's
//! password-only methods stop working for a user who has a confirmed TOTP
//! app, a confirmed email-code address or a passkey, and work again once
//! the last of them is removed (unless the tenant keeps them, see
//! [`TenantPolicy::keep_password_only_after_mfa`](crate::TenantPolicy::keep_password_only_after_mfa)).

use super::AuthnService;
use crate::error::{Result, store_err};
use crate::factor::{AuthMethod, FactorCredential, FactorKind, MethodScope};
use crate::ids::{TenantId, UserId};
use crate::store::Store;

/// Whether `method` asks for nothing but a password at every step.
pub(crate) fn password_only(method: &AuthMethod) -> bool {
    !method.steps.is_empty()
        && method
            .steps
            .iter()
            .all(|s| s.kinds().iter().all(|k| *k == FactorKind::Password))
}

/// Whether `credential` is a usable second factor.
fn second_factor(credential: &FactorCredential) -> bool {
    match credential {
        FactorCredential::Totp(t) => t.confirmed,
        FactorCredential::EmailOtp(e) => e.confirmed,
        FactorCredential::Passkey(p) => !p.keys.is_empty(),
        FactorCredential::Password(_) | FactorCredential::RecoveryCodes(_) => false,
    }
}

impl<S: Store> AuthnService<S> {
    /// Bring `user`'s own overrides of the tenant's password-only methods
    /// in line with its factors: with a second factor, each such method is
    /// disabled for the user (a user-scope copy, disabled); without one,
    /// those disabled copies are removed and the tenant's methods apply
    /// again. Called after every factor enrolment and removal.
    pub(super) async fn sync_password_only(&self, tenant: TenantId, user: UserId) -> Result<()> {
        let policy = self.tenant(tenant).await?.policy;
        if policy.keep_password_only_after_mfa {
            return Ok(());
        }
        let protected = self
            .store
            .user_factors(tenant, user)
            .await
            .map_err(store_err)?
            .iter()
            .any(|v| second_factor(&v.value));
        let scope = MethodScope::User(tenant, user);
        let own = self.store.methods(scope).await.map_err(store_err)?;
        let tenant_methods = self
            .store
            .methods(MethodScope::Tenant(tenant))
            .await
            .map_err(store_err)?;
        for record in tenant_methods.iter().filter(|r| password_only(&r.method)) {
            let name = &record.method.name;
            let mine = own.iter().find(|o| &o.method.name == name);
            match (protected, mine) {
                (true, Some(m)) if !m.enabled => {}
                (true, _) => self
                    .store
                    .save_method(scope, &record.method, false)
                    .await
                    .map_err(store_err)?,
                (false, Some(m)) if !m.enabled && password_only(&m.method) => {
                    self.store
                        .remove_method(scope, name)
                        .await
                        .map_err(store_err)?;
                }
                (false, _) => {}
            }
        }
        Ok(())
    }
}
