//! The service's router: the API's, plus health, readiness, metrics and
//! the bootstrap tenant's JWKS, under request ids, access logs, metrics,
//! CORS and security headers.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use countersign_axum::{Api, ApiError, ApiStore};
use countersign_core::ErrorKind;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::config::Settings;
use crate::telemetry::{
    ACTIVE_SESSIONS, HASHING_QUEUED, HASHING_RUNNING, HTTP_DURATION, HTTP_REQUESTS,
};

/// The request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id taken from a client; longer or odd ones are
/// replaced.
const MAX_REQUEST_ID: usize = 128;

/// What the operational routes need.
struct Ops<S> {
    api: Api<S>,
    metrics: Option<PrometheusHandle>,
    tenant: String,
}

impl<S> Clone for Ops<S> {
    fn clone(&self) -> Self {
        Ops {
            api: self.api.clone(),
            metrics: self.metrics.clone(),
            tenant: self.tenant.clone(),
        }
    }
}

/// The whole router for `api` as `settings` say, metrics rendered from
/// `metrics`.
pub fn router<S: ApiStore>(
    api: Api<S>,
    settings: &Settings,
    metrics: Option<PrometheusHandle>,
) -> Router {
    let ops = Ops {
        api: api.clone(),
        metrics,
        tenant: settings.bootstrap_tenant.clone(),
    };
    let ops_routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz::<S>))
        .route("/metrics", get(render_metrics::<S>))
        .route("/.well-known/jwks.json", get(jwks::<S>))
        .with_state(ops);
    let mut app = api
        .router()
        .merge(ops_routes)
        .layer(middleware::from_fn(track));
    if !settings.cors_origins.is_empty() {
        app = app.layer(cors(settings.cors_origins.clone()));
    }
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request<Body>| {
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", MatchedPath::as_str);
            let id = req
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            // INVARIANT: no header, query string or body in the span.
            tracing::info_span!("request", method = %req.method(), route = %route, request_id = %id)
        })
        .on_request(())
        .on_response(|res: &Response, latency: Duration, _: &Span| {
            tracing::info!(
                status = res.status().as_u16(),
                latency_ms = latency.as_secs_f64() * 1000.0,
                "answered"
            );
        });
    app.layer(middleware::from_fn_with_state(
        settings.https(),
        security_headers,
    ))
    .layer(trace)
    .layer(middleware::from_fn(request_id))
}

/// CORS for exactly these origins, with credentials (cookies) and the
/// headers the API reads.
fn cors(origins: Vec<HeaderValue>) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("x-csrf-token"),
        ])
        .allow_credentials(true)
        .expose_headers([REQUEST_ID])
        .max_age(Duration::from_secs(600))
}

/// Whether a client's request id is one to keep: 1 to 128 characters of
/// `[A-Za-z0-9._:-]`.
fn acceptable_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_REQUEST_ID
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
}

/// Give every request an `x-request-id` (the client's when well-formed,
/// else a new UUIDv7) and echo it on the response.
async fn request_id(mut req: Request, next: Next) -> Response {
    let id = match req.headers().get(REQUEST_ID) {
        Some(v) if acceptable_id(v) => v.clone(),
        _ => {
            let fresh = uuid::Uuid::now_v7().to_string();
            HeaderValue::from_str(&fresh).unwrap_or(HeaderValue::from_static("-"))
        }
    };
    req.headers_mut().insert(REQUEST_ID, id.clone());
    let mut res = next.run(req).await;
    res.headers_mut().insert(REQUEST_ID, id);
    res
}

/// Security headers on every response: no sniffing, no framing, no
/// referrer; `no-store` under `/v1`; HSTS when served over HTTPS.
async fn security_headers(State(https): State<bool>, req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/v1");
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if api {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    res
}

/// Count and time every request by method, matched route and status;
/// name the route in the request's span.
async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let res = next.run(req).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", res.status().as_u16().to_string()),
    ];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_DURATION, &labels).record(start.elapsed().as_secs_f64());
    res
}

/// 200 while the process serves.
async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// 200 when a store read succeeds, else a 503 problem.
async fn readyz<S: ApiStore>(State(ops): State<Ops<S>>) -> Response {
    match ops.api.authn().tenant_by_slug(&ops.tenant).await {
        Ok(_) => axum::Json(serde_json::json!({ "status": "ready" })).into_response(),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            axum::Json(serde_json::json!({ "status": "ready" })).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: the store did not answer");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "the store did not answer",
            )
            .into_response()
        }
    }
}

/// The Prometheus text exposition, with the gauges read at scrape time:
/// live sessions (from the store; left out of this scrape if the store
/// does not answer), hashes running and callers queued for a hashing slot.
async fn render_metrics<S: ApiStore>(State(ops): State<Ops<S>>) -> Response {
    let hasher = ops.api.authn().hasher();
    metrics::gauge!(HASHING_RUNNING).set(hasher.in_flight() as f64);
    metrics::gauge!(HASHING_QUEUED).set(hasher.waiting() as f64);
    match ops.api.sessions().live_sessions().await {
        Ok(n) => metrics::gauge!(ACTIVE_SESSIONS).set(n as f64),
        Err(e) => tracing::warn!(error = %e, "metrics: counting live sessions failed"),
    }
    match &ops.metrics {
        Some(handle) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            )],
            handle.render(),
        )
            .into_response(),
        None => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics_unavailable",
            "no metrics recorder in this process",
        )
        .into_response(),
    }
}

/// The bootstrap tenant's JWKS.
async fn jwks<S: ApiStore>(State(ops): State<Ops<S>>) -> Result<Response, ApiError> {
    let tenant = ops.api.tenant_id(&ops.tenant).await?;
    let jwks = ops.api.sessions().jwks(tenant).await?;
    Ok((
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=60"),
        )],
        axum::Json(jwks),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only short, plain request ids from clients are kept.
    #[test]
    fn request_ids_from_clients_are_bounded() {
        assert!(acceptable_id(&HeaderValue::from_static("abc-123_x.y:z")));
        assert!(!acceptable_id(&HeaderValue::from_static("")));
        assert!(!acceptable_id(&HeaderValue::from_static("a b")));
        assert!(!acceptable_id(
            &HeaderValue::from_str(&"a".repeat(129)).unwrap()
        ));
    }
}
