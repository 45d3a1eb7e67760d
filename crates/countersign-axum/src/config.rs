//! The edge's settings.

use axum::http::HeaderValue;
use chrono::{DateTime, Utc};
use cookie::{Cookie, SameSite};

use crate::ratelimit::RateLimits;

/// Settings of the HTTP layer. The defaults suit a service behind TLS:
/// 64 KiB bodies, `Secure` cookies, the peer address as the client's.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The largest request body accepted (413 beyond it).
    pub body_limit: usize,
    /// Session cookies for browsers (`None`: bearer tokens only).
    pub cookies: Option<CookieConfig>,
    /// Take the client's IP from the rightmost `X-Forwarded-For` entry
    /// (only behind a proxy that sets it).
    pub trust_forwarded_for: bool,
    /// Limits on the authentication endpoints.
    pub rate_limits: RateLimits,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            body_limit: 64 * 1024,
            cookies: Some(CookieConfig::default()),
            trust_forwarded_for: false,
            rate_limits: RateLimits::default(),
        }
    }
}

/// The session and CSRF cookies set at sign-in.
#[derive(Debug, Clone)]
pub struct CookieConfig {
    /// The session cookie's name (`HttpOnly`).
    pub session_name: String,
    /// The CSRF cookie's name (readable by scripts, echoed in
    /// `x-csrf-token` on state-changing requests).
    pub csrf_name: String,
    /// Send `Secure` (off only for plain-HTTP development on loopback).
    pub secure: bool,
    /// The cookies' path.
    pub path: String,
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig {
            session_name: "countersign_session".to_owned(),
            csrf_name: "countersign_csrf".to_owned(),
            secure: true,
            path: "/".to_owned(),
        }
    }
}

impl CookieConfig {
    /// `Set-Cookie` values for a new session: the session token
    /// (`HttpOnly`) and the CSRF token, both ending at `expires` (`now` being the
    /// request's time).
    pub(crate) fn issue(
        &self,
        session_token: &str,
        csrf_token: &str,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<HeaderValue> {
        let max_age = (expires - now).num_seconds().max(0);
        [
            self.cookie(&self.session_name, session_token, true, max_age),
            self.cookie(&self.csrf_name, csrf_token, false, max_age),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// `Set-Cookie` values that remove both cookies.
    pub(crate) fn clear(&self) -> Vec<HeaderValue> {
        [
            self.cookie(&self.session_name, "", true, 0),
            self.cookie(&self.csrf_name, "", false, 0),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn cookie(
        &self,
        name: &str,
        value: &str,
        http_only: bool,
        max_age: i64,
    ) -> Option<HeaderValue> {
        let c = Cookie::build((name.to_owned(), value.to_owned()))
            .path(self.path.clone())
            .http_only(http_only)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .max_age(cookie::time::Duration::seconds(max_age))
            .build();
        HeaderValue::from_str(&c.encoded().to_string()).ok()
    }
}
