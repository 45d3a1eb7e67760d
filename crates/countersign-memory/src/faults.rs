//! Fault injection: make the next calls fail, all of them or those of one
//! store method, without touching state.

use std::str::FromStr;
use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use countersign_core::StoreErrorKind;

use crate::MemoryStore;
use crate::error::{MemoryError, Result};

/// Declares [`StoreMethod`]: one variant a store trait method, with its name.
macro_rules! store_methods {
    ($($variant:ident => $name:literal,)*) => {
        /// A method of the store traits, by which
        /// [`MemoryStore::fail_next_on`] aims injected failures.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum StoreMethod {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl StoreMethod {
            /// Every store method, in the order of the traits.
            pub const ALL: &[StoreMethod] = &[$(StoreMethod::$variant,)*];

            /// The method's name in its trait (`"record_event"`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(StoreMethod::$variant => $name,)*
                }
            }
        }
    };
}

store_methods! {
    // IdentityLookup
    GetTenant => "get_tenant",
    FindTenant => "find_tenant",
    FindUser => "find_user",
    GetUser => "get_user",
    GetUserCrossTenant => "get_user_cross_tenant",
    ListUsers => "list_users",
    SearchUsers => "search_users",
    FailureRecord => "failure_record",
    // IdentityAuthnLog
    RecordEvent => "record_event",
    RecordFailedAttempt => "record_failed_attempt",
    ResetFailedAttempts => "reset_failed_attempts",
    RecordLastLogin => "record_last_login",
    RecordLogin => "record_login",
    // IdentityAdmin
    ProvisionTenant => "provision_tenant",
    UpdateTenantPolicy => "update_tenant_policy",
    CreateUser => "create_user",
    RegisterUser => "register_user",
    SetUserState => "set_user_state",
    UpdateProfile => "update_profile",
    PushPasswordHistory => "push_password_history",
    PasswordHistory => "password_history",
    EraseUser => "erase_user",
    // FactorStore
    FactorSettings => "tenant_factor",
    TenantFactors => "tenant_factors",
    SaveTenantFactor => "save_tenant_factor",
    RemoveTenantFactor => "remove_tenant_factor",
    FactorCredential => "user_factor",
    UserFactors => "user_factors",
    CompareAndSaveUserFactor => "compare_and_save_user_factor",
    RemoveUserFactor => "remove_user_factor",
    SaveMethod => "save_method",
    Methods => "methods",
    SetMethodEnabled => "set_method_enabled",
    RemoveMethod => "remove_method",
    AvailableMethods => "available_methods",
    // FlowStore
    CreateFlow => "create_flow",
    Flow => "flow",
    CompareAndSaveFlow => "compare_and_save_flow",
    DeleteFlow => "delete_flow",
    DeleteExpiredFlows => "delete_expired_flows",
    // SessionStore
    CreateSession => "create_session",
    SetSessionAuth => "set_session_auth",
    ValidateSession => "validate_session",
    Session => "session",
    UserSessions => "user_sessions",
    DeleteSession => "delete_session",
    DeleteSessionByKey => "delete_session_by_key",
    DeleteUserSessions => "delete_user_sessions",
    RotateRefresh => "rotate_refresh",
    RotateRefreshRecorded => "rotate_refresh_recorded",
    RefreshFamily => "refresh_family",
    DeleteExpiredSessions => "delete_expired_sessions",
    CountLiveSessions => "count_live_sessions",
    // KeyStore
    SigningKeys => "signing_keys",
    RotateSigningKey => "rotate_signing_key",
    DeleteExpiredSigningKeys => "delete_expired_signing_keys",
    // PolicyStore
    PolicyDocument => "policy_document",
    CompareAndSavePolicyDocument => "compare_and_save_policy_document",
    // RbacLookup
    AuthzVersions => "authz_versions",
    RbacSnapshot => "rbac_snapshot",
    RbacNames => "rbac_names",
    RolePermissions => "role_permissions",
    ServiceRoles => "service_roles",
    UserRoles => "user_roles",
    UserPermissions => "user_permissions",
    RoleHolders => "role_holders",
    UserServices => "user_services",
    // RbacStore
    ApplyRbacChange => "apply_rbac_change",
    // VerificationStore
    SaveVerification => "save_verification",
    Verification => "verification",
    FindVerification => "find_verification",
    RecordVerificationFailure => "record_verification_failure",
    ConsumeVerification => "consume_verification",
    DeleteVerifications => "delete_verifications",
    DeleteExpiredVerifications => "delete_expired_verifications",
    // FederatedStore
    FindLinkedIdentity => "find_linked_identity",
    LinkedIdentities => "linked_identities",
    LinkIdentity => "link_identity",
    CreateLinkedUser => "create_linked_user",
    UnlinkIdentity => "unlink_identity",
    // RateLimitStore
    Hit => "hit",
    ResetRateLimit => "reset_rate_limit",
    DeleteExpiredRateLimits => "delete_expired_rate_limits",
    // AuditQuery
    QueryEvents => "query_events",
}

impl std::fmt::Display for StoreMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StoreMethod {
    type Err = MemoryError;

    /// The method named `s` in its trait (`"record_event"`).
    fn from_str(s: &str) -> Result<Self> {
        StoreMethod::ALL
            .iter()
            .copied()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                MemoryError::new(
                    StoreErrorKind::Rejected,
                    format!("unknown store method `{s}`"),
                )
            })
    }
}

impl TryFrom<&str> for StoreMethod {
    type Error = MemoryError;

    fn try_from(s: &str) -> Result<Self> {
        s.parse()
    }
}

/// The armed injection.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    remaining: usize,
    kind: Option<StoreErrorKind>,
    only: Option<StoreMethod>,
}

impl MemoryStore {
    /// Make the next `calls` store calls (of any method) fail with an error
    /// of `kind`, without touching state. `fail_next(0, _)` clears it.
    pub fn fail_next(&self, calls: usize, kind: StoreErrorKind) {
        self.set_faults(calls, kind, None);
    }

    /// Make the next `calls` calls of one store method fail with an error
    /// of `kind`; other methods work normally. Replaces any earlier
    /// injection. The method is a [`StoreMethod`] or its name
    /// (`"record_event"`); a name that is no store method injects nothing.
    pub fn fail_next_on<M>(&self, method: M, calls: usize, kind: StoreErrorKind)
    where
        M: TryInto<StoreMethod>,
    {
        match method.try_into() {
            Ok(m) => self.set_faults(calls, kind, Some(m)),
            Err(_) => self.set_faults(0, kind, None),
        }
    }

    fn set_faults(&self, calls: usize, kind: StoreErrorKind, only: Option<StoreMethod>) {
        let mut f = self
            .inner
            .faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f.remaining = calls;
        f.kind = Some(kind);
        f.only = only;
        self.inner.armed.store(calls > 0, Ordering::SeqCst);
    }

    /// Consume one injected fault aimed at `method`, if any, as an error.
    pub(crate) fn injected(&self, method: StoreMethod) -> Result<()> {
        if !self.inner.armed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut f = self
            .inner
            .faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if f.remaining > 0 && f.only.is_none_or(|m| m == method) {
            f.remaining -= 1;
            if f.remaining == 0 {
                self.inner.armed.store(false, Ordering::SeqCst);
            }
            let kind = f.kind.unwrap_or(StoreErrorKind::Transient);
            return Err(MemoryError::new(kind, "injected failure"));
        }
        Ok(())
    }
}
