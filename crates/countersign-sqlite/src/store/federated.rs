//! `FederatedStore` in SQLite: one row per (tenant, issuer, subject), its
//! primary key, so a second link of one identity fails whatever process
//! writes it. A link (and the user it may create) commits with its audit
//! event in one `IMMEDIATE` transaction.

use countersign_core::{AuditEvent, FederatedStore, LinkedIdentity, TenantId, User, UserId};
use rusqlite::{Connection, TransactionBehavior, params};

use super::identity::{insert_event, insert_user};
use super::require_user;
use crate::codec::{LINK_COLS, id, micros, read_linked_identity};
use crate::{Result, SqliteError, SqliteStore};

/// A unique violation of `e` as the store's `Conflict` naming `what`.
fn refused(what: &'static str) -> impl FnOnce(SqliteError) -> SqliteError {
    move |e| {
        if e.unique_violation() {
            SqliteError::Conflict(what)
        } else {
            e
        }
    }
}

/// Insert a link and its event (inside the caller's transaction).
fn insert_link(c: &Connection, l: &LinkedIdentity, e: &AuditEvent) -> Result<()> {
    c.prepare_cached(&format!(
        "INSERT INTO cs_linked_identities ({LINK_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    ))?
    .execute(params![
        id(l.tenant_id.as_uuid()),
        id(l.user_id.as_uuid()),
        l.issuer,
        l.subject,
        l.email.as_ref().map(|m| m.as_str()),
        micros(l.linked_at),
    ])
    .map_err(SqliteError::from)
    .map_err(refused("identity already linked"))?;
    insert_event(c, e).map_err(refused("audit event already exists"))
}

impl FederatedStore for SqliteStore {
    type Error = SqliteError;

    async fn find_linked_identity(
        &self,
        tenant: TenantId,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<LinkedIdentity>> {
        self.fetch_optional(
            format!(
                "SELECT {LINK_COLS} FROM cs_linked_identities
                 WHERE tenant_id = ?1 AND issuer = ?2 AND subject = ?3"
            ),
            (id(tenant.as_uuid()), issuer.to_owned(), subject.to_owned()),
            read_linked_identity,
        )
        .await
    }

    async fn linked_identities(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Vec<LinkedIdentity>> {
        self.fetch_all(
            format!(
                "SELECT {LINK_COLS} FROM cs_linked_identities
                 WHERE tenant_id = ?1 AND user_id = ?2
                 ORDER BY linked_at, issuer, subject"
            ),
            (id(tenant.as_uuid()), id(user.as_uuid())),
            read_linked_identity,
        )
        .await
    }

    async fn link_identity(&self, identity: &LinkedIdentity, event: &AuditEvent) -> Result<()> {
        let (l, e) = (identity.clone(), event.clone());
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            require_user(&tx, &id(l.tenant_id.as_uuid()), &id(l.user_id.as_uuid()))?;
            insert_link(&tx, &l, &e)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn create_linked_user(
        &self,
        user: &User,
        identity: &LinkedIdentity,
        event: &AuditEvent,
    ) -> Result<()> {
        if identity.tenant_id != user.tenant_id || identity.user_id != user.id {
            return Err(SqliteError::Rejected(
                "the identity must be linked to the user created with it",
            ));
        }
        if user.tenant_id.is_system() || user.id.is_reserved() {
            return Err(SqliteError::Rejected("reserved id"));
        }
        let (u, l, e) = (user.clone(), identity.clone(), event.clone());
        self.call(move |c| {
            // One transaction: the user, its link and the event commit
            // together or not at all.
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            insert_user(&tx, &u, &[])?;
            insert_link(&tx, &l, &e)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn unlink_identity(
        &self,
        tenant: TenantId,
        user: UserId,
        issuer: &str,
        subject: &str,
    ) -> Result<bool> {
        let n = self
            .execute(
                "DELETE FROM cs_linked_identities
                 WHERE tenant_id = ?1 AND issuer = ?2 AND subject = ?3 AND user_id = ?4",
                (
                    id(tenant.as_uuid()),
                    issuer.to_owned(),
                    subject.to_owned(),
                    id(user.as_uuid()),
                ),
            )
            .await?;
        Ok(n == 1)
    }
}
