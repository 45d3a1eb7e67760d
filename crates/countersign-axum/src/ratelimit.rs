//! Rate limits on the authentication endpoints, per client address and per
//! account, counted in the store ([`RateLimitStore`]) so that every node
//! sharing a database shares the counters.

use std::time::Duration;

use countersign_core::factor::sha256_hex;
use countersign_core::{ClientInfo, Error, TenantId};

use crate::error::{ApiError, ApiResult};
use crate::{Api, ApiStore};

/// At most `limit` requests per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Requests allowed in one window.
    pub limit: u32,
    /// The window's length.
    pub window: Duration,
}

impl Limit {
    /// `limit` requests per `window`.
    pub const fn new(limit: u32, window: Duration) -> Self {
        Limit { limit, window }
    }
}

/// The limits on the authentication endpoints (registration, address
/// verification, every login step, password forgot and reset). A request
/// over a limit is a 429 problem `rate_limited` with `Retry-After`, and
/// reaches no service. `None` turns a limit off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// Per client IP and tenant, across those endpoints. Default: 60 a
    /// minute.
    pub per_ip: Option<Limit>,
    /// Per account identifier (or address) and tenant, on the endpoints
    /// that name one (login start, registration, verification, resend,
    /// forgot). Default: 10 a minute.
    pub per_account: Option<Limit>,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_ip: Some(Limit::new(60, Duration::from_secs(60))),
            per_account: Some(Limit::new(10, Duration::from_secs(60))),
        }
    }
}

impl RateLimits {
    /// No limits (for tests and trusted deployments).
    pub fn off() -> Self {
        RateLimits {
            per_ip: None,
            per_account: None,
        }
    }
}

impl<S: ApiStore> Api<S> {
    /// Count one authentication request of `client` in `tenant`, naming
    /// `account` when the request does; refuse it when a limit is spent.
    /// A store failure refuses too (fail closed).
    pub(crate) async fn rate_limit(
        &self,
        tenant: TenantId,
        client: &ClientInfo,
        account: Option<&str>,
    ) -> ApiResult<()> {
        let limits = &self.config().rate_limits;
        if let (Some(limit), Some(ip)) = (limits.per_ip, client.ip) {
            self.hit("ip", &format!("auth:ip:{tenant}:{ip}"), limit)
                .await?;
        }
        if let (Some(limit), Some(account)) = (limits.per_account, account) {
            // Hashed: any identifier fits the key, and none is stored.
            let folded = account.trim().to_lowercase();
            let key = format!("auth:acct:{tenant}:{}", sha256_hex(folded.as_bytes()));
            self.hit("account", &key, limit).await?;
        }
        Ok(())
    }

    async fn hit(&self, scope: &'static str, key: &str, limit: Limit) -> ApiResult<()> {
        let now = self.authn().env().now();
        let decision = self
            .authn()
            .store()
            .hit(key, limit.limit, limit.window, now)
            .await
            .map_err(|e| ApiError::from(Error::store(e)))?;
        if decision.allowed {
            return Ok(());
        }
        metrics::counter!("countersign_rate_limited_total", "scope" => scope).increment(1);
        let wait = (decision.reset_at - now).num_milliseconds().max(0);
        let seconds = u64::try_from(wait).unwrap_or(0).div_ceil(1000);
        Err(ApiError::rate_limited(seconds))
    }
}
