//! GDPR data export (art. 15 and 20): everything stored about a user, as
//! one serializable document, secrets left out.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::AuthnService;
use crate::audit::{AuditEvent, AuditFilter};
use crate::error::{Error, Result, store_err};
use crate::factor::{FactorCredential, FactorKind, MethodRecord, MethodScope, PasskeyInfo};

use crate::ids::{SessionId, TenantId, UserId};
use crate::model::User;
use crate::rbac::{DirectGrant, RoleAssignment};
use crate::store::{AuditQuery, LinkedIdentity, Store, VerificationPurpose};

/// Everything countersign stores about one user, without a secret: no
/// password hash, TOTP secret, recovery-code hash, pending code or
/// verification (or the password hash a registration carries), passkey
/// key material or session token hash. Serializes to one JSON document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserExport {
    /// When the export was made.
    pub exported_at: DateTime<Utc>,
    /// The account: identifier, names, address, state, dates.
    pub user: User,
    /// The user's factors, described.
    pub factors: Vec<FactorExport>,
    /// The user's own sign-in methods.
    pub methods: Vec<MethodRecord>,
    /// The user's live sessions.
    pub sessions: Vec<SessionExport>,
    /// The roles the user holds, by service.
    pub role_assignments: Vec<RoleAssignment>,
    /// The permissions granted to the user directly, by service.
    pub direct_grants: Vec<DirectGrant>,
    /// The user's identities at other issuers (OpenID Connect sign-in).
    pub linked_identities: Vec<LinkedIdentity>,
    /// Verifications sent to the user and not yet used (address codes,
    /// reset tokens), without their secret.
    pub pending_verifications: Vec<VerificationExport>,
    /// The audit events about the user, newest first (`None` when the
    /// export was made without reading the audit log).
    pub audit_events: Option<Vec<AuditEvent>>,
}

/// One factor of the user, described without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FactorExport {
    /// A password: only when it was last set.
    Password {
        /// When it was set.
        changed_at: DateTime<Utc>,
    },
    /// A TOTP authenticator.
    Totp {
        /// Whether enrolment was confirmed.
        confirmed: bool,
        /// Digits per code.
        digits: u8,
        /// Seconds per code.
        step_secs: u32,
    },
    /// Recovery codes: how many, how many spent.
    RecoveryCodes {
        /// When they were generated.
        generated_at: DateTime<Utc>,
        /// How many there are.
        total: usize,
        /// When each spent one was spent.
        used_at: Vec<DateTime<Utc>>,
    },
    /// Email one-time codes to an address.
    EmailOtp {
        /// The address.
        address: String,
        /// Whether it was confirmed.
        confirmed: bool,
        /// When it was added.
        created_at: DateTime<Utc>,
    },
    /// Passkeys: names and dates.
    Passkeys {
        /// Each passkey.
        keys: Vec<PasskeyInfo>,
    },
}

impl FactorExport {
    fn of(credential: &FactorCredential) -> Self {
        match credential {
            FactorCredential::Password(p) => FactorExport::Password {
                changed_at: p.changed_at,
            },
            FactorCredential::Totp(t) => FactorExport::Totp {
                confirmed: t.confirmed,
                digits: t.digits,
                step_secs: t.step_secs,
            },
            FactorCredential::RecoveryCodes(r) => FactorExport::RecoveryCodes {
                generated_at: r.generated_at,
                total: r.codes.len(),
                used_at: r.codes.iter().filter_map(|c| c.used_at).collect(),
            },
            FactorCredential::EmailOtp(e) => FactorExport::EmailOtp {
                address: e.address.as_str().to_owned(),
                confirmed: e.confirmed,
                created_at: e.created_at,
            },
            FactorCredential::Passkey(p) => FactorExport::Passkeys {
                keys: p.keys.iter().map(PasskeyInfo::from).collect(),
            },
        }
    }

    /// The factor it describes.
    pub fn kind(&self) -> FactorKind {
        match self {
            FactorExport::Password { .. } => FactorKind::Password,
            FactorExport::Totp { .. } => FactorKind::Totp,
            FactorExport::RecoveryCodes { .. } => FactorKind::RecoveryCodes,
            FactorExport::EmailOtp { .. } => FactorKind::EmailOtp,
            FactorExport::Passkeys { .. } => FactorKind::Passkey,
        }
    }
}

/// A pending verification, without its secret or what it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerificationExport {
    /// What it proves.
    pub purpose: VerificationPurpose,
    /// When it was sent.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// One live session, without its token hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionExport {
    /// Its public id.
    pub id: SessionId,
    /// The factor kinds of the login behind it.
    pub factors: Vec<FactorKind>,
    /// The client's IP at login.
    pub ip: Option<std::net::IpAddr>,
    /// The client's user agent at login.
    pub user_agent: Option<String>,
    /// When it began.
    pub created_at: DateTime<Utc>,
    /// When it was last renewed.
    pub last_seen_at: DateTime<Utc>,
    /// When it ends regardless.
    pub absolute_expires_at: DateTime<Utc>,
}

impl<S: Store> AuthnService<S> {
    /// Everything stored about `user` in `tenant` except the audit log
    /// (see [`export_user_with_audit`](Self::export_user_with_audit)).
    /// [`Error::UserNotFound`] for a user of another tenant.
    pub async fn export_user(&self, tenant: TenantId, user: UserId) -> Result<UserExport> {
        let now = self.env.now();
        let account = self
            .store
            .get_user(tenant, user)
            .await
            .map_err(store_err)?
            .ok_or(Error::UserNotFound)?;
        let factors = self
            .store
            .user_factors(tenant, user)
            .await
            .map_err(store_err)?
            .iter()
            .map(|v| FactorExport::of(&v.value))
            .collect();
        let methods = self
            .store
            .methods(MethodScope::User(tenant, user))
            .await
            .map_err(store_err)?;
        let sessions = self
            .store
            .user_sessions(tenant, user, now)
            .await
            .map_err(store_err)?
            .into_iter()
            .map(|s| SessionExport {
                id: s.id,
                factors: s.auth.factors.iter().map(|f| f.kind).collect(),
                ip: s.ip,
                user_agent: s.user_agent,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                absolute_expires_at: s.absolute_expires_at,
            })
            .collect();
        let rbac = self.store.rbac_snapshot(tenant).await.map_err(store_err)?;
        let linked_identities = self
            .store
            .linked_identities(tenant, user)
            .await
            .map_err(store_err)?;
        let mut pending_verifications = Vec::new();
        for purpose in VerificationPurpose::ALL {
            if let Some(v) = self
                .store
                .verification(tenant, user, *purpose)
                .await
                .map_err(store_err)?
            {
                pending_verifications.push(VerificationExport {
                    purpose: v.purpose,
                    created_at: v.created_at,
                    expires_at: v.expires_at,
                });
            }
        }
        Ok(UserExport {
            exported_at: now,
            user: account,
            factors,
            methods,
            sessions,
            role_assignments: rbac
                .assignments
                .into_iter()
                .filter(|a| a.user == user)
                .collect(),
            direct_grants: rbac
                .direct_grants
                .into_iter()
                .filter(|g| g.user == user)
                .collect(),
            linked_identities,
            pending_verifications,
            audit_events: None,
        })
    }

    /// [`export_user`](Self::export_user) with every audit event about the
    /// user, newest first, read in pages of [`AuditFilter::MAX_LIMIT`].
    pub async fn export_user_with_audit(&self, tenant: TenantId, user: UserId) -> Result<UserExport>
    where
        S: AuditQuery,
    {
        let mut export = self.export_user(tenant, user).await?;
        let mut events: Vec<AuditEvent> = Vec::new();
        let mut until = None;
        loop {
            let filter = AuditFilter {
                user_id: Some(user),
                until,
                limit: Some(AuditFilter::MAX_LIMIT),
                ..AuditFilter::default()
            };
            let page = self
                .store
                .query_events(tenant, &filter)
                .await
                .map_err(store_err)?;
            let full = page.len() >= AuditFilter::MAX_LIMIT as usize;
            let Some(oldest) = page.last().map(|e| e.at) else {
                break;
            };
            for e in page {
                if !events.iter().any(|seen| seen.id == e.id) {
                    events.push(e);
                }
            }
            if !full {
                break;
            }
            // `until` is exclusive: the next page ends just after the
            // oldest instant of this one, so events sharing that instant
            // beyond this page are read there (the ones already taken are
            // skipped above). A page whose events all share one instant
            // cannot advance: the export stops there.
            let next = oldest + chrono::Duration::microseconds(1);
            if until == Some(next) {
                break;
            }
            until = Some(next);
        }
        export.audit_events = Some(events);
        Ok(export)
    }
}
