//! The endpoints, one file per group. Each group has its `routes()` and its
//! OpenAPI `Doc`; [`router`] and [`crate::openapi`] take every group from
//! the one list below.

use axum::Router;
use axum::http::{Method, StatusCode};
use base64::Engine;

use crate::error::{ApiError, ApiResult};
use crate::{Api, ApiStore};

pub(crate) mod account;
pub(crate) mod account_factors;
pub(crate) mod admin;
pub(crate) mod auth;
pub(crate) mod policies;
pub(crate) mod rbac;
pub(crate) mod session;
mod session_body;
pub(crate) mod tenants;
pub(crate) mod views;

/// Every group's routes.
pub(crate) fn router<S: ApiStore>() -> Router<Api<S>> {
    Router::new()
        .merge(auth::routes::<S>())
        .merge(session::routes::<S>())
        .merge(account::routes::<S>())
        .merge(account_factors::routes::<S>())
        .merge(admin::routes::<S>())
        .merge(tenants::routes::<S>())
        .merge(rbac::routes::<S>())
        .merge(policies::routes::<S>())
}

/// Every group's OpenAPI paths and schemas.
pub(crate) fn docs() -> Vec<utoipa::openapi::OpenApi> {
    use utoipa::OpenApi;
    vec![
        auth::Doc::openapi(),
        session::Doc::openapi(),
        account::Doc::openapi(),
        account_factors::Doc::openapi(),
        admin::Doc::openapi(),
        tenants::Doc::openapi(),
        rbac::Doc::openapi(),
        policies::Doc::openapi(),
    ]
}

/// 404 problem for a path no route matches.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

/// 405 problem for a known path with another method.
pub(crate) async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("this endpoint does not accept `{method}`"),
    )
}

impl<S: ApiStore> Api<S> {
    /// `Set-Cookie` headers removing the session and CSRF cookies (none
    /// when the API sets no cookies).
    pub(crate) fn clear_cookies(&self) -> axum::http::HeaderMap {
        let mut headers = axum::http::HeaderMap::new();
        if let Some(cookies) = &self.config().cookies {
            for value in cookies.clear() {
                headers.append(axum::http::header::SET_COOKIE, value);
            }
        }
        headers
    }

    /// A fresh CSRF token (256 random bits, base64url).
    pub(crate) fn csrf_token(&self) -> ApiResult<String> {
        let bytes: [u8; 32] = self.authn().env().random_bytes()?;
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }
}
