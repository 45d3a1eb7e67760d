//! Errors as `application/problem+json` (RFC 9457).
//!
//! Every error the router answers with is an [`ApiError`]: an HTTP status,
//! a stable snake_case `code` (the problem's `type` is
//! `urn:countersign:problem:<code>`), a human `title` and `detail`, and,
//! for some codes, one extra member (`step_up`, `retry_after`). Core's
//! errors arrive through [`From<countersign_core::Error>`], which maps
//! [`ErrorKind`] to a status with no catch-all: a new kind fails to compile
//! here until it is given one.
//!
//! Internal and unavailable errors are logged in full (with their source
//! chain) and answered with a generic detail; nothing from them reaches the
//! caller.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use countersign_core::{Error, ErrorKind, StepUp};
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error answer: status, stable code and a message fit for the caller.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    step_up: Option<StepUpView>,
    retry_after: Option<u64>,
}

/// The body of every error answer (RFC 9457 problem details).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:countersign:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong with this request, with no secret in it.
    pub detail: String,
    /// The stable machine-readable code (`invalid_input`,
    /// `unauthenticated`, `step_up_required`, `rate_limited`, ...).
    pub code: String,
    /// With `step_up_required`: the authentication that would satisfy the
    /// request (begin a step-up meeting it, then retry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_up: Option<StepUpView>,
    /// With `rate_limited`: seconds until a retry may succeed (also in the
    /// `Retry-After` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// What a step-up must prove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StepUpView {
    /// At least this many distinct factor kinds, verified recently enough.
    pub min_factors: usize,
    /// At least one counting factor of one of these kinds (empty: any).
    pub any_of: Vec<String>,
    /// Only factors verified within this many seconds count (absent: any
    /// age).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<u64>,
}

impl From<&StepUp> for StepUpView {
    fn from(s: &StepUp) -> Self {
        StepUpView {
            min_factors: s.min_factors,
            any_of: s.any_of.iter().map(|k| k.as_str().to_owned()).collect(),
            max_age_seconds: s.max_age.map(|d| d.as_secs()),
        }
    }
}

/// What an internal error tells the caller.
const INTERNAL_DETAIL: &str = "an internal error occurred; it has been logged";

impl ApiError {
    /// An error with this status, code and detail.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            step_up: None,
            retry_after: None,
        }
    }

    /// 500 `internal`, saying only that it was logged: log the cause
    /// before answering with it.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            INTERNAL_DETAIL,
        )
    }

    /// 400 `invalid_input`.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_input", detail)
    }

    /// 401 `unauthenticated`: no valid credentials on the request.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a valid session is required",
        )
    }

    /// 403 `forbidden`: authenticated, but the policy does not allow it.
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the policy does not allow this request",
        )
    }

    /// 403 `step_up_required`, with what would satisfy the request.
    pub fn step_up_required(required: &StepUp) -> Self {
        let mut e = Self::new(
            StatusCode::FORBIDDEN,
            "step_up_required",
            "a stronger or fresher authentication is required",
        );
        e.step_up = Some(required.into());
        e
    }

    /// 404 `not_found`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 429 `rate_limited`, retry after `seconds`.
    pub fn rate_limited(seconds: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; retry later",
        );
        e.retry_after = Some(seconds.max(1));
        e
    }

    /// 403 `csrf`: a cookie-authenticated change without its CSRF token.
    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "a state-changing request with a session cookie needs the `x-csrf-token` header",
        )
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The problem body.
    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("urn:countersign:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_owned(),
            step_up: self.step_up.clone(),
            retry_after: self.retry_after,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl std::error::Error for ApiError {}

/// The status each kind is answered with. Exhaustive: no wildcard.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Locked => StatusCode::LOCKED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Gone => StatusCode::GONE,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let kind = e.kind();
        let status = status_of(kind);
        if let Error::StepUpRequired(s) = &e {
            return ApiError::step_up_required(&s.required);
        }
        let detail = match kind {
            ErrorKind::Internal => {
                tracing::error!(error = %DisplayChain(&e), "internal error");
                INTERNAL_DETAIL.to_owned()
            }
            ErrorKind::Unavailable => {
                tracing::warn!(error = %DisplayChain(&e), "dependency unavailable");
                "a dependency is unavailable; retry later".to_owned()
            }
            // Core's messages carry no secret and no user input beyond
            // what the caller sent.
            ErrorKind::InvalidInput
            | ErrorKind::Unauthenticated
            | ErrorKind::Locked
            | ErrorKind::Forbidden
            | ErrorKind::NotFound
            | ErrorKind::Conflict
            | ErrorKind::Gone => e.to_string(),
        };
        ApiError::new(status, kind.as_str(), detail)
    }
}

/// An error and its sources, one line.
struct DisplayChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after;
        let mut response = (self.status, Json(self.problem())).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(s) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}

/// What handlers return.
pub type ApiResult<T> = Result<T, ApiError>;
