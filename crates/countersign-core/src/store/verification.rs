//! `VerificationStore`: one-time proofs sent to a user (an address
//! confirmation code, a password reset token), kept only as hashes and
//! consumed at most once.

use std::fmt;
use std::future::Future;

use chrono::{DateTime, Utc};

use serde::{Deserialize, Serialize};

use crate::audit::str_enum;
use crate::error::StoreError;
use crate::ids::{TenantId, UserId};

str_enum! {
    /// What a [`Verification`] proves when it is consumed.
    pub enum VerificationPurpose {
        /// The user receives mail at their address (completes a registration).
        Address => "address",
        /// The user may choose a new password without the old one.
        PasswordReset => "password_reset",
    }
}

/// A pending one-time proof: at most one per (tenant, user, purpose).
///
/// The secret itself is never stored: `secret_hash` is a keyed HMAC for
/// short codes and SHA-256 for high-entropy tokens, as lowercase hex.
/// `Debug` leaves the hash and the payload out.
#[derive(Clone, PartialEq, Eq)]
pub struct Verification {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The user it was sent to.
    pub user_id: UserId,
    /// What it proves.
    pub purpose: VerificationPurpose,
    /// The hash of the secret (hex).
    pub secret_hash: String,
    /// Data bound to this proof and applied when it is consumed (for an
    /// address confirmation, the PHC hash of the password chosen at the
    /// registration that sent it). Never a secret in the clear.
    pub payload: Option<String>,
    /// When it was (last) sent.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// How many were sent in this window (1 for the first; a resend saves
    /// a new secret with one more).
    pub sends: u32,
    /// Wrong guesses against it so far.
    pub failures: u32,
}

impl fmt::Debug for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verification")
            .field("tenant_id", &self.tenant_id)
            .field("user_id", &self.user_id)
            .field("purpose", &self.purpose)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("sends", &self.sends)
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

/// Pending verifications: saved with a compare-and-save on the send count
/// (so concurrent resends cannot exceed a limit), counted wrong guesses,
/// and consumption that succeeds at most once.
///
/// Every method is tenant-scoped: a verification of another tenant is
/// treated as one that does not exist.
pub trait VerificationStore: Send + Sync + 'static {
    /// The backend's error.
    type Error: StoreError;

    /// Save `v` as the one pending verification of its (tenant, user,
    /// purpose), replacing the current one, only if the current one's
    /// `sends` is `expected_sends` (`None`: only if there is none, expired
    /// or not). Of concurrent saves naming the same expectation exactly one
    /// returns `true`, provided each saves a count other than the one it
    /// expects (a send saves one more: the count is what makes the
    /// expectation stale for the others). A replaced secret stops working at once. `NotFound`
    /// if the user is not in the tenant.
    fn save_verification(
        &self,
        v: &Verification,
        expected_sends: Option<u32>,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// The pending verification of (tenant, user, purpose), expired or not.
    fn verification(
        &self,
        tenant: TenantId,
        user: UserId,
        purpose: VerificationPurpose,
    ) -> impl Future<Output = Result<Option<Verification>, Self::Error>> + Send;

    /// The pending verification of `purpose` in `tenant` whose secret hash
    /// is `secret_hash`, expired or not (for tokens that name no user).
    fn find_verification(
        &self,
        tenant: TenantId,
        purpose: VerificationPurpose,
        secret_hash: &str,
    ) -> impl Future<Output = Result<Option<Verification>, Self::Error>> + Send;

    /// Count one wrong guess against the pending verification of (tenant,
    /// user, purpose), atomically (concurrent calls each count). Returns
    /// the new count, or `None` if there is no such verification.
    fn record_verification_failure(
        &self,
        tenant: TenantId,
        user: UserId,
        purpose: VerificationPurpose,
    ) -> impl Future<Output = Result<Option<u32>, Self::Error>> + Send;

    /// Consume the pending verification of (tenant, user, purpose): delete
    /// and return it only if its secret hash is `secret_hash`, it has not
    /// expired at `now` (`now < expires_at`) and it has fewer than
    /// `max_failures` failures. Single use: of concurrent calls at most one
    /// returns it, and a consumed verification never returns again.
    fn consume_verification(
        &self,
        tenant: TenantId,
        user: UserId,
        purpose: VerificationPurpose,
        secret_hash: &str,
        max_failures: u32,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Verification>, Self::Error>> + Send;

    /// Delete the user's pending verifications (of `purpose`, or all).
    /// Returns how many went.
    fn delete_verifications(
        &self,
        tenant: TenantId,
        user: UserId,
        purpose: Option<VerificationPurpose>,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// Delete every verification expired at `now` (`expires_at <= now`),
    /// in every tenant. Returns how many went.
    fn delete_expired_verifications(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;
}
