//! Extractors: JSON bodies, paths and queries whose rejections are
//! problem+json, the calling client, the tenant named in the path, and the
//! authenticated [`Principal`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use countersign_core::{AuthRecord, ClientInfo, SessionRecord, TenantId, UserId};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::{Api, ApiStore};

/// A JSON body. Rejections (wrong content type, malformed JSON, unknown or
/// mistyped fields, a body over the limit) are 4xx problems.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, St> FromRequest<St> for ApiJson<T>
where
    T: DeserializeOwned,
    St: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &St) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a body of type `application/json`",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|r| {
                let (status, code) = if r.status().as_u16() == 413 {
                    (r.status(), "body_too_large")
                } else {
                    (axum::http::StatusCode::BAD_REQUEST, "malformed_body")
                };
                ApiError::new(status, code, r.body_text())
            })?;
        // Every body this API takes is an object: an array or a scalar is
        // refused even where serde would read it as a struct.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "the body must be a JSON object",
            ));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

/// Whether the request says its body is JSON (`application/json` or
/// `application/*+json`, parameters allowed).
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn json_rejection(r: &JsonRejection) -> ApiError {
    let status = r.status();
    let code = match r {
        JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
        JsonRejection::JsonSyntaxError(_) => "malformed_body",
        JsonRejection::JsonDataError(_) => "invalid_body",
        JsonRejection::BytesRejection(_) if status.as_u16() == 413 => "body_too_large",
        _ => "malformed_body",
    };
    // A 4xx whatever axum says: the request is at fault.
    let status = if status.is_client_error() {
        status
    } else {
        axum::http::StatusCode::BAD_REQUEST
    };
    ApiError::new(status, code, r.body_text())
}

/// Path parameters; a malformed one (not a UUID, ...) is a 400 problem.
#[derive(Debug, Clone, Copy)]
pub struct ApiPath<T>(pub T);

impl<T, St> FromRequestParts<St> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    St: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(r) => Err(path_rejection(&r)),
        }
    }
}

fn path_rejection(r: &PathRejection) -> ApiError {
    ApiError::invalid(r.body_text())
}

/// A query string; a malformed one is a 400 problem.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, St> FromRequestParts<St> for ApiQuery<T>
where
    T: DeserializeOwned,
    St: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(r) => Err(query_rejection(&r)),
        }
    }
}

fn query_rejection(r: &QueryRejection) -> ApiError {
    ApiError::invalid(r.body_text())
}

/// The calling client: its IP (the peer's, or the rightmost
/// `X-Forwarded-For` entry when the API is configured to trust a proxy)
/// and its user agent.
#[derive(Debug, Clone, Default)]
pub struct Client(pub ClientInfo);

impl Client {
    /// The client's IP, if known.
    pub fn ip(&self) -> Option<IpAddr> {
        self.0.ip
    }
}

impl<St: Send + Sync> FromRequestParts<St> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, Self::Rejection> {
        let forwarded = parts
            .extensions
            .get::<Authenticator>()
            .is_some_and(|a| a.0.config().trust_forwarded_for);
        Ok(Client(client_info(parts, forwarded)))
    }
}

/// The client of a request: the peer address from the server's connect
/// info, or the rightmost `X-Forwarded-For` entry when `forwarded` is set.
pub fn client_info(parts: &Parts, forwarded: bool) -> ClientInfo {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = if forwarded {
        forwarded_for(&parts.headers).or(peer)
    } else {
        peer
    };
    let ua = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    ClientInfo::new(ip, ua)
}

fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()
        .and_then(|s| s.trim().parse().ok())
}

/// The tenant named by the `{tenant}` path segment (its slug), resolved
/// in the store. An unknown slug is a 404 problem.
#[derive(Debug, Clone, Copy)]
pub struct TenantParam(pub TenantId);

impl<S: ApiStore> FromRequestParts<Api<S>> for TenantParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api<S>) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, api)
            .await
            .map_err(|r| ApiError::invalid(r.body_text()))?;
        let slug = params
            .iter()
            .find(|(k, _)| *k == "tenant")
            .map(|(_, v)| v)
            .ok_or_else(|| ApiError::not_found("no tenant in the path"))?;
        let tenant = api.tenant_id(slug).await?;
        Ok(TenantParam(tenant))
    }
}

/// What the extractors validate sessions with, whatever the router's
/// state: [`Api::router`] adds it to every request, and an application's
/// own routes get it from [`Api::layer`]. Type-erased over the store.
#[derive(Clone)]
pub struct Authenticator(Arc<dyn Validate>);

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator")
    }
}

type Validation<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = countersign_core::Result<Arc<SessionRecord>>> + Send + 'a>,
>;

trait Validate: Send + Sync + 'static {
    fn validate<'a>(&'a self, token: &'a str) -> Validation<'a>;
    fn config(&self) -> &ApiConfig;
}

impl<S: ApiStore> Validate for Api<S> {
    fn validate<'a>(&'a self, token: &'a str) -> Validation<'a> {
        Box::pin(self.sessions().validate(token))
    }

    fn config(&self) -> &ApiConfig {
        Api::config(self)
    }
}

impl<S: ApiStore> Api<S> {
    /// The extension that lets [`Principal`] and
    /// [`Client`] work on an application's own routes:
    /// `Router::new().route(..).layer(api.layer())`.
    pub fn layer(&self) -> axum::Extension<Authenticator> {
        axum::Extension(Authenticator(Arc::new(self.clone())))
    }
}

fn authenticator(parts: &Parts) -> Result<Authenticator, ApiError> {
    parts
        .extensions
        .get::<Authenticator>()
        .cloned()
        .ok_or_else(|| {
            tracing::error!("a route extracts a Principal without `Api::layer()` applied");
            ApiError::internal()
        })
}

/// How the caller proved its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer <session token>`.
    Bearer,
    /// The session cookie (state-changing requests also carry the CSRF
    /// token).
    Cookie,
}

/// The authenticated caller: a live session, from `Authorization: Bearer`
/// or the session cookie. Extracting it validates the session (one store
/// call, renewing it near its idle deadline). A request with neither is a
/// 401 problem; so is a malformed `Authorization` header, an unknown,
/// expired or revoked token. A cookie-authenticated request with an unsafe
/// method must carry the CSRF cookie's value in `x-csrf-token` (403
/// `csrf` otherwise); bearer requests need no CSRF token.
#[derive(Clone)]
pub struct Principal {
    session: Arc<SessionRecord>,
    token: String,
    via: Credential,
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("session", &self.session.id)
            .field("tenant", &self.session.tenant_id)
            .field("user", &self.session.user_id)
            .field("via", &self.via)
            .finish_non_exhaustive()
    }
}

impl Principal {
    /// The session.
    pub fn session(&self) -> &SessionRecord {
        &self.session
    }

    /// The session's tenant.
    pub fn tenant(&self) -> TenantId {
        self.session.tenant_id
    }

    /// The signed-in user.
    pub fn user(&self) -> UserId {
        self.session.user_id
    }

    /// How the user authenticated (factors and when): what the Cedar
    /// engine decides on.
    pub fn auth(&self) -> &AuthRecord {
        &self.session.auth
    }

    /// How the session was presented.
    pub fn credential(&self) -> Credential {
        self.via
    }

    /// The session token itself, for the services that take it.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }
}

impl<St: Send + Sync> FromRequestParts<St> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, Self::Rejection> {
        let auth = authenticator(parts)?;
        let (token, via) = presented_token(parts, auth.0.config())?;
        let session = auth.0.validate(&token).await.map_err(|e| {
            // A token of the wrong shape is as unauthenticated as an
            // unknown one.
            match e.kind() {
                countersign_core::ErrorKind::InvalidInput => ApiError::unauthenticated(),
                _ => ApiError::from(e),
            }
        })?;
        Ok(Principal {
            session,
            token,
            via,
        })
    }
}

fn presented_token(parts: &Parts, config: &ApiConfig) -> Result<(String, Credential), ApiError> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| malformed_authorization())?;
        let (scheme, token) = value.split_once(' ').ok_or_else(malformed_authorization)?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(malformed_authorization());
        }
        return Ok((token.trim().to_owned(), Credential::Bearer));
    }
    let Some(cookies) = config.cookies.as_ref() else {
        return Err(ApiError::unauthenticated());
    };
    let Some(token) = cookie_value(&parts.headers, &cookies.session_name) else {
        return Err(ApiError::unauthenticated());
    };
    if !is_safe(&parts.method) {
        let expected = cookie_value(&parts.headers, &cookies.csrf_name);
        let presented = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok());
        match (expected, presented) {
            (Some(e), Some(p)) if !e.is_empty() && bool::from(e.as_bytes().ct_eq(p.as_bytes())) => {
            }
            _ => return Err(ApiError::csrf()),
        }
    }
    Ok((token, Credential::Cookie))
}

fn malformed_authorization() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "the `Authorization` header must be `Bearer <session token>`",
    )
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The value of the cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}
