//! Migrating users in: accounts imported with the password hashes they
//! had elsewhere, idempotent by identifier.

use crate::store::{HistoryEntry, Store};

use super::AuthnService;
use crate::audit::AuditKind;
use crate::env::Request;
use crate::error::{Error, ErrorKind, InvalidInput, Result, StoreErrorKind, store_err};
use crate::factor::{FactorCredential, LegacyHash, PasswordCredential};
use crate::ids::{TenantId, UserId};
use crate::model::{
    AccountState, ClientInfo, EmailAddress, Identifier, Tenant, User, parse_display_name,
};

/// A user brought from another system, for
/// [`AuthnService::import_user`]: its identifier, profile and state, and the
/// password hash it had there. Strings are raw input, normalised and
/// validated as for [`NewUser`](super::NewUser). `Debug` shows the hash's algorithm only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportUser {
    /// Login identifier (username or email): what makes an import
    /// idempotent.
    pub identifier: String,
    /// The password hash the user had, if any.
    pub password: Option<LegacyHash>,
    /// Display name.
    pub display_name: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Its state here: any state but `Deleted` (an account suspended at
    /// its source can arrive suspended).
    pub state: AccountState,
}

impl ImportUser {
    /// An active user with this identifier, no password and no profile:
    /// fill in the rest with struct update syntax.
    ///
    /// ```
    /// # use countersign_core::{ImportUser, LegacyHash};
    /// let row = ImportUser {
    ///     password: Some(LegacyHash::parse(
    ///         "$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a",
    ///     )?),
    ///     ..ImportUser::new("rasmus@example.com")
    /// };
    /// # Ok::<(), countersign_core::InvalidInput>(())
    /// ```
    pub fn new(identifier: &str) -> Self {
        Self {
            identifier: identifier.to_owned(),
            password: None,
            display_name: None,
            email: None,
            state: AccountState::Active,
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// The user was created, with its imported password.
    Created(User),
    /// The tenant already has a user with this identifier: nothing was
    /// changed (not its password, profile or state), and nothing audited.
    AlreadyExists(UserId),
}

impl<S> AuthnService<S>
where
    S: Store,
{
    /// Import a user from another system with the password hash it had
    /// there, atomically (the user, its password, its first history entry
    /// and a `user.imported` audit event commit together).
    ///
    /// Idempotent by identifier: when the tenant already has a user with
    /// this identifier, nothing changes and the answer is
    /// [`ImportOutcome::AlreadyExists`] with that user's id (also when a
    /// concurrent import of the same identifier won the race).
    ///
    /// The hash is not checked against the tenant's password rules (the
    /// password is unknown). It is verified in its own algorithm at the
    /// user's next login, which then stores the tenant's argon2id instead
    /// (audited as `password.rehashed`); wrong passwords count toward
    /// lockout like any other.
    ///
    /// Errors: [`Error::InvalidInput`] for a malformed identifier, name or
    /// email, a `Deleted` state, a hash that fails [`LegacyHash::check`],
    /// or a password for a tenant that does not offer passwords; the input
    /// is checked before anything is read, so a bad row is refused even
    /// when its identifier exists.
    pub async fn import_user(
        &self,
        tenant: TenantId,
        user: ImportUser,
        client: &ClientInfo,
    ) -> Result<ImportOutcome> {
        let rq = self.env.request(client);
        let tenant = self.tenant(tenant).await?;
        self.import_into(&tenant, user, rq).await
    }

    /// Import many users, as [`import_user`](Self::import_user) each, in
    /// order: one outcome per row, `Err` for a row refused for itself
    /// (invalid input, a conflict). A failure that is not the row's (the
    /// tenant is unknown, the store fails) stops the batch with that
    /// error; the rows before it stay imported, and running the batch
    /// again is safe (imports are idempotent).
    pub async fn import_users(
        &self,
        tenant: TenantId,
        users: impl IntoIterator<Item = ImportUser>,
        client: &ClientInfo,
    ) -> Result<Vec<Result<ImportOutcome>>> {
        let rq = self.env.request(client);
        let tenant = self.tenant(tenant).await?;
        let mut outcomes = Vec::new();
        for user in users {
            match self.import_into(&tenant, user, rq).await {
                Err(e) if !matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Conflict) => {
                    return Err(e);
                }
                outcome => outcomes.push(outcome),
            }
        }
        Ok(outcomes)
    }

    async fn import_into(
        &self,
        tenant: &Tenant,
        new: ImportUser,
        rq: Request<'_>,
    ) -> Result<ImportOutcome> {
        let identifier = Identifier::parse(&new.identifier)?;
        let display_name = new
            .display_name
            .as_deref()
            .map(parse_display_name)
            .transpose()?;
        let email = new.email.as_deref().map(EmailAddress::parse).transpose()?;
        if new.state == AccountState::Deleted {
            return Err(InvalidInput::new("state", "an imported user cannot be deleted").into());
        }
        let now = rq.now;
        let mut credentials = Vec::new();
        let mut history = None;
        if let Some(hash) = &new.password {
            let phc = hash.to_stored()?;
            let rules = self.password_rules(tenant.id).await?;
            if rules.history > 0 {
                history = Some(HistoryEntry {
                    phc: phc.clone(),
                    at: now,
                    keep: rules.history,
                });
            }
            credentials.push(FactorCredential::Password(PasswordCredential {
                phc,
                changed_at: now,
            }));
        }
        let existing = || async {
            let found = self.store.find_user(tenant.id, &identifier).await;
            Ok::<_, Error>(found.map_err(store_err)?.map(|u| u.id))
        };
        if let Some(id) = existing().await? {
            return Ok(ImportOutcome::AlreadyExists(id));
        }
        let user = User {
            id: UserId::generate(&self.env)?,
            tenant_id: tenant.id,
            identifier: identifier.clone(),
            display_name,
            email,
            state: new.state,
            state_reason: None,
            created_at: now,
            updated_at: now,
            last_login_at: None,
            tier: tenant.policy.profile.default_tier.clone(),
            attributes: Default::default(),
        };
        let event = self.success(tenant.id, Some(user.id), AuditKind::UserImported, rq)?;
        match self
            .store
            .register_user(&user, &credentials, history.as_ref(), &event)
            .await
        {
            Ok(()) => Ok(ImportOutcome::Created(user)),
            Err(e) => match crate::error::StoreError::kind(&e) {
                // A concurrent import of the same identifier won.
                StoreErrorKind::Conflict => match existing().await? {
                    Some(id) => Ok(ImportOutcome::AlreadyExists(id)),
                    None => Err(store_err(e)),
                },
                StoreErrorKind::NotFound => Err(Error::TenantNotFound),
                _ => Err(store_err(e)),
            },
        }
    }
}
