//! countersign over HTTP: an axum router for every capability, extractors
//! and a permission guard for applications, `application/problem+json`
//! errors and an OpenAPI 3.1 document. Applications should depend on the
//! `countersign` facade (feature `axum`).
//!
//! This is the only countersign crate that knows HTTP: status codes,
//! headers, cookies and JSON bodies live here and nowhere else.
//!
//! # Mounting
//!
//! [`Api`] holds the three services; [`Api::router`] is a plain
//! [`axum::Router`] with every endpoint under `/v1`, the OpenAPI document
//! at `/v1/openapi.json` and its interactive page at `/v1/docs` (assets built
//! into the binary). Merge or nest it into an application's own router:
//!
//! ```no_run
//! # use countersign_axum::Api;
//! # fn app<S: countersign_axum::ApiStore>(api: Api<S>) -> axum::Router {
//! axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "my app" }))
//!     .merge(api.router())
//! # }
//! ```
//!
//! Everything it routes is under `/v1`; it also sets a fallback (a 404
//! problem), so merge it into a router that has none of its own. Add
//! [`Api::layer`] to the application's own routes for the [`Principal`]
//! extractor and the [`require`] guard to work there. Serve it with
//! `into_make_service_with_connect_info::<SocketAddr>()` so that rate
//! limits and audit events see the client's address.
//!
//! # Guarantees
//!
//! - Every error is a problem+json body with a stable `code`; core's error
//!   kinds map to statuses with no catch-all ([`error::status_of`]).
//! - Bad input (malformed JSON, wrong content type, unknown fields,
//!   oversized bodies, malformed ids, missing or malformed credentials) is a
//!   4xx answer and changes nothing.
//! - Every administrative endpoint asks the Cedar engine
//!   ([`countersign_core::AuthzService::decide_admin`]) before it acts.
//! - No secret (password, token, code) is logged by this crate; tokens are
//!   only ever in response bodies and `Set-Cookie` headers.
//! - Session cookies are `HttpOnly`, `Secure` (unless configured off for
//!   plain-HTTP development), `SameSite=Lax`; a state-changing request
//!   authenticated by cookie must echo the CSRF cookie in `x-csrf-token`.

#![forbid(unsafe_code)]

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use countersign_core::{AuditQuery, AuthnService, AuthzService, SessionService, Store, TenantId};

mod config;
pub mod error;
pub mod extract;
mod guard;
mod openapi;
mod ratelimit;
mod routes;

pub use config::{ApiConfig, CookieConfig};
pub use error::{ApiError, ApiResult, Problem};
pub use extract::{ApiJson, ApiPath, ApiQuery, Authenticator, Client, Credential, Principal};
pub use guard::{Permission, require};
pub use openapi::{OPENAPI_PATH, openapi};
pub use ratelimit::{Limit, RateLimits};

/// What a store must offer to be served over HTTP: every store trait and
/// the audit query (blanket-implemented).
pub trait ApiStore: Store + AuditQuery {}

impl<T: Store + AuditQuery> ApiStore for T {}

/// The HTTP API: countersign's three services and the edge's settings.
/// Cheap to clone (one `Arc`).
pub struct Api<S> {
    inner: Arc<Inner<S>>,
}

struct Inner<S> {
    authn: AuthnService<S>,
    sessions: SessionService<S>,
    authz: AuthzService<S>,
    config: ApiConfig,
}

impl<S> Clone for Api<S> {
    fn clone(&self) -> Self {
        Api {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: ApiStore> Api<S> {
    /// The API over these services, with [`ApiConfig::default`].
    pub fn new(
        authn: AuthnService<S>,
        sessions: SessionService<S>,
        authz: AuthzService<S>,
    ) -> Self {
        Self::with_config(authn, sessions, authz, ApiConfig::default())
    }

    /// The API over these services with `config`.
    pub fn with_config(
        authn: AuthnService<S>,
        sessions: SessionService<S>,
        authz: AuthzService<S>,
        config: ApiConfig,
    ) -> Self {
        Api {
            inner: Arc::new(Inner {
                authn,
                sessions,
                authz,
                config,
            }),
        }
    }

    /// Authentication.
    pub fn authn(&self) -> &AuthnService<S> {
        &self.inner.authn
    }

    /// Sessions and tokens.
    pub fn sessions(&self) -> &SessionService<S> {
        &self.inner.sessions
    }

    /// Authorization.
    pub fn authz(&self) -> &AuthzService<S> {
        &self.inner.authz
    }

    /// The edge's settings.
    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    /// The id of the tenant with this slug (404 when there is none).
    pub async fn tenant_id(&self, slug: &str) -> ApiResult<TenantId> {
        Ok(self.authn().tenant_by_slug(slug).await?.id)
    }

    /// Every endpoint, the OpenAPI document (`/v1/openapi.json`) and its
    /// page (`/v1/docs`), with the body limit applied and problem+json
    /// answers for unknown paths and methods.
    pub fn router(&self) -> Router {
        routes::router::<S>()
            .merge(openapi::docs_router())
            .fallback(routes::not_found)
            .method_not_allowed_fallback(routes::method_not_allowed)
            // One layer, not two: `Router::layer` boxes every route once
            // per call, and each box is cloned on every request.
            .layer(
                tower::ServiceBuilder::new()
                    .layer(self.layer())
                    .layer(DefaultBodyLimit::max(self.config().body_limit)),
            )
            .with_state(self.clone())
    }
}
