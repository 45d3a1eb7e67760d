//! `FederatedStore` in SQL.
//!
//! One link per (tenant, issuer, subject) is the table's primary key, so
//! it holds across nodes: of concurrent transactions inserting one
//! identity, the first to insert wins and the others wait for it, then
//! fail with a unique violation (`Conflict`), rolling back everything they
//! wrote (a user created with the link included). Links are read on the
//! main pool: a link decides whose account a sign-in opens.

use countersign_core::{AuditEvent, FederatedStore, LinkedIdentity, TenantId, User, UserId};

use super::identity::{event_insert, insert_user};
use super::{Tx, commit, execute, optional, reject_if};
use crate::codec::{self, link_cols};
use crate::error::{PgError, Phase, db, db_commit, unique_violation};
use crate::retry::Idempotence::Once;
use crate::{PostgresStore, Result};

/// Insert a link and its audit event inside `tx`; either one that exists
/// already is `Conflict`.
async fn insert_link(tx: &mut Tx, l: &LinkedIdentity, e: &AuditEvent) -> Result<()> {
    let link = sqlx::query(
        "INSERT INTO cs_linked_identities (tenant_id, user_id, issuer, subject, email, linked_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(*l.tenant_id.as_uuid())
    .bind(*l.user_id.as_uuid())
    .bind(l.issuer.clone())
    .bind(l.subject.clone())
    .bind(l.email.as_ref().map(|m| m.as_str().to_owned()))
    .bind(l.linked_at);
    let taken = unique_violation(
        Phase::Uncommitted,
        "linking an identity",
        "identity already linked",
    );
    execute(link, &mut **tx, taken).await?;
    let clash = unique_violation(
        Phase::Uncommitted,
        "recording a link",
        "audit event already exists",
    );
    execute(event_insert(e, false), &mut **tx, clash).await?;
    Ok(())
}

impl FederatedStore for PostgresStore {
    type Error = PgError;

    async fn find_linked_identity(
        &self,
        tenant: TenantId,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<LinkedIdentity>> {
        let stmt = || {
            sqlx::query(concat!(
                "SELECT ",
                link_cols!(),
                " FROM cs_linked_identities WHERE tenant_id = $1 AND issuer = $2 AND subject = $3"
            ))
            .bind(tenant.as_uuid())
            .bind(issuer)
            .bind(subject)
        };
        self.lookup(
            "find_linked_identity",
            "finding a linked identity",
            stmt,
            codec::linked_identity,
        )
        .await
    }

    async fn linked_identities(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Vec<LinkedIdentity>> {
        let stmt = || {
            sqlx::query(concat!(
                "SELECT ",
                link_cols!(),
                " FROM cs_linked_identities WHERE tenant_id = $1 AND user_id = $2
                  ORDER BY linked_at, issuer, subject"
            ))
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
        };
        self.lookup_all(
            "linked_identities",
            "listing linked identities",
            stmt,
            codec::linked_identity,
        )
        .await
    }

    async fn link_identity(&self, identity: &LinkedIdentity, event: &AuditEvent) -> Result<()> {
        self.retry
            .run("link_identity", Once, || async {
                // One transaction: the link and its audit event commit
                // together. The user row is held (FOR KEY SHARE, as the
                // foreign key would) so it cannot be erased in between.
                let mut tx = self.begin().await?;
                let user = sqlx::query(
                    "SELECT 1 FROM cs_users WHERE tenant_id = $1 AND id = $2 FOR KEY SHARE",
                )
                .bind(*identity.tenant_id.as_uuid())
                .bind(*identity.user_id.as_uuid());
                let context = db("linking an identity");
                if optional(user, &mut *tx, context, |_| Ok(()))
                    .await?
                    .is_none()
                {
                    return Err(PgError::not_found("user"));
                }
                insert_link(&mut tx, identity, event).await?;
                commit(tx, "committing a link").await
            })
            .await
    }

    async fn create_linked_user(
        &self,
        user: &User,
        identity: &LinkedIdentity,
        event: &AuditEvent,
    ) -> Result<()> {
        reject_if(
            identity.tenant_id != user.tenant_id || identity.user_id != user.id,
            "the identity must be linked to the user created with it",
        )?;
        reject_if(
            user.tenant_id.is_system() || user.id.is_reserved(),
            "reserved id",
        )?;
        self.retry
            .run("create_linked_user", Once, || async {
                // One transaction: the user, its link and the event commit
                // together or not at all.
                let mut tx = self.begin().await?;
                insert_user(&mut tx, user, &[]).await?;
                insert_link(&mut tx, identity, event).await?;
                commit(tx, "committing a linked user").await
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
        let stmt = || {
            sqlx::query(
                "DELETE FROM cs_linked_identities
                  WHERE tenant_id = $1 AND issuer = $2 AND subject = $3 AND user_id = $4",
            )
            .bind(tenant.as_uuid())
            .bind(issuer)
            .bind(subject)
            .bind(user.as_uuid())
        };
        // Once: a retry after a delete that committed would answer `false`.
        self.retry
            .run("unlink_identity", Once, || async {
                let context = db_commit("unlinking an identity");
                Ok(execute(stmt(), &self.write, context).await? == 1)
            })
            .await
    }
}
