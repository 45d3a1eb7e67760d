//! `FederatedStore` in memory: identities at other issuers linked to local
//! accounts, at most one link per (tenant, issuer, subject). A link, the
//! user it may create and their audit event are written under the state's
//! one lock after every check, so each call is all or nothing.

use countersign_core::{
    AuditEvent, FederatedStore, LinkedIdentity, StoreErrorKind, TenantId, User, UserId,
};

use crate::error::{MemoryError, Result, not_found, unique_violation};
use crate::state::{LinkKey, State};
use crate::store::identity::insert_user;
use crate::{MemoryStore, StoreMethod};

/// The key of a link.
fn key(tenant: TenantId, issuer: &str, subject: &str) -> LinkKey {
    (tenant, issuer.to_owned(), subject.to_owned())
}

/// Refuse a link that exists or an event id that does (before any write).
fn check_new(st: &State, identity: &LinkedIdentity, event: &AuditEvent) -> Result<()> {
    let k = key(identity.tenant_id, &identity.issuer, &identity.subject);
    if st.linked.contains_key(&k) {
        return Err(unique_violation("linked identity"));
    }
    if st.event_ids.contains(&event.id) {
        return Err(unique_violation("audit event"));
    }
    Ok(())
}

/// Write a checked link and its event.
fn insert_link(st: &mut State, identity: &LinkedIdentity, event: &AuditEvent) {
    let k = key(identity.tenant_id, &identity.issuer, &identity.subject);
    st.linked.insert(k, identity.clone());
    st.event_ids.insert(event.id);
    st.events.push(event.clone());
}

impl FederatedStore for MemoryStore {
    type Error = MemoryError;

    async fn find_linked_identity(
        &self,
        tenant: TenantId,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<LinkedIdentity>> {
        let st = self.begin(StoreMethod::FindLinkedIdentity)?;
        Ok(st.linked.get(&key(tenant, issuer, subject)).cloned())
    }

    async fn linked_identities(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Vec<LinkedIdentity>> {
        let st = self.begin(StoreMethod::LinkedIdentities)?;
        // Oldest first; ties by (issuer, subject), the map's order.
        let mut links: Vec<LinkedIdentity> = st
            .linked
            .values()
            .filter(|l| l.tenant_id == tenant && l.user_id == user)
            .cloned()
            .collect();
        links.sort_by_key(|l| l.linked_at);
        Ok(links)
    }

    async fn link_identity(&self, identity: &LinkedIdentity, event: &AuditEvent) -> Result<()> {
        let mut st = self.begin(StoreMethod::LinkIdentity)?;
        st.require_user(identity.tenant_id, identity.user_id)?;
        check_new(&st, identity, event)?;
        insert_link(&mut st, identity, event);
        Ok(())
    }

    async fn create_linked_user(
        &self,
        user: &User,
        identity: &LinkedIdentity,
        event: &AuditEvent,
    ) -> Result<()> {
        let mut st = self.begin(StoreMethod::CreateLinkedUser)?;
        if identity.tenant_id != user.tenant_id || identity.user_id != user.id {
            return Err(MemoryError::new(
                StoreErrorKind::Rejected,
                "the identity must be linked to the user created with it",
            ));
        }
        // Every check before the first write: all or nothing (in the order
        // the SQL backends meet them: ids, tenant, then uniqueness).
        if user.tenant_id.is_system() || user.id.is_reserved() {
            return Err(MemoryError::new(StoreErrorKind::Rejected, "reserved id"));
        }
        if !st.tenants.contains_key(&user.tenant_id) {
            return Err(not_found("tenant"));
        }
        check_new(&st, identity, event)?;
        insert_user(&mut st, user, &[])?;
        insert_link(&mut st, identity, event);
        Ok(())
    }

    async fn unlink_identity(
        &self,
        tenant: TenantId,
        user: UserId,
        issuer: &str,
        subject: &str,
    ) -> Result<bool> {
        let mut st = self.begin(StoreMethod::UnlinkIdentity)?;
        let k = key(tenant, issuer, subject);
        if st.linked.get(&k).is_some_and(|l| l.user_id == user) {
            st.linked.remove(&k);
            return Ok(true);
        }
        Ok(false)
    }
}
