//! Inspection helpers: read the state without going through the traits.

use countersign_core::{AuditEvent, User};

use crate::MemoryStore;

/// Counts of what the store holds, for assertions in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemorySnapshot {
    /// Tenants.
    pub tenants: usize,
    /// Users.
    pub users: usize,
    /// Audit events.
    pub events: usize,
    /// Tenant factor settings.
    pub tenant_factors: usize,
    /// User credentials.
    pub user_factors: usize,
    /// Methods at any scope.
    pub methods: usize,
    /// Password history entries.
    pub password_history: usize,
    /// Failed-attempt records.
    pub failure_records: usize,
    /// Flows (logins and ceremonies in progress).
    pub flows: usize,
    /// Sessions.
    pub sessions: usize,
    /// Refresh families.
    pub families: usize,
    /// RBAC services, roles and permissions.
    pub rbac_names: usize,
    /// RBAC role grants, role assignments and direct grants.
    pub rbac_grants: usize,
    /// Pending verifications.
    pub verifications: usize,
    /// Linked identities.
    pub linked_identities: usize,
    /// Rate-limit windows (ended or not, until deleted).
    pub rate_limits: usize,
}

impl MemoryStore {
    /// Counts of everything the store holds.
    pub fn snapshot(&self) -> MemorySnapshot {
        let st = self.state();
        MemorySnapshot {
            tenants: st.tenants.len(),
            users: st.users.len(),
            events: st.events.len(),
            tenant_factors: st.tenant_factors.len(),
            user_factors: st.user_factors.len(),
            methods: st.methods.len(),
            password_history: st.history.values().map(Vec::len).sum(),
            failure_records: st.failures.len(),
            flows: st.flows.len(),
            sessions: st.sessions.len(),
            families: st.families.len(),
            rbac_names: st
                .rbac
                .values()
                .map(|r| r.services.len() + r.roles.len() + r.permissions.len())
                .sum(),
            rbac_grants: st
                .rbac
                .values()
                .map(|r| r.role_grants.len() + r.assignments.len() + r.direct_grants.len())
                .sum(),
            verifications: st.verifications.len(),
            linked_identities: st.linked.len(),
            rate_limits: st.rate_limits.len(),
        }
    }

    /// Every audit event of every tenant, in the order recorded.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.state().events.clone()
    }

    /// Every user of every tenant, ordered by id.
    pub fn users(&self) -> Vec<User> {
        let mut users: Vec<User> = self.state().users.values().cloned().collect();
        users.sort_by_key(|u| u.id);
        users
    }
}
