//! The signed-in caller's session: read it, end it (here or everywhere),
//! list and revoke the caller's other sessions, step up.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use countersign_core::{FactorKind, LoginStatus, SessionId};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::auth::{FlowView, SubmitBody, count_submission};
use super::session_body::SessionBody;
use super::views::SessionView;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, Client, Principal};
use crate::{Api, ApiStore};

pub(crate) fn routes<S: ApiStore>() -> Router<Api<S>> {
    Router::new()
        .route("/v1/session", get(current))
        .route("/v1/logout", post(logout::<S>))
        .route("/v1/logout/everywhere", post(logout_everywhere::<S>))
        .route("/v1/sessions", get(list::<S>))
        .route("/v1/sessions/{id}", delete(revoke::<S>))
        .route("/v1/step-up", post(begin_step_up::<S>))
        .route("/v1/step-up/submit", post(submit_step_up::<S>))
}

#[derive(OpenApi)]
#[openapi(
    paths(
        current,
        logout,
        logout_everywhere,
        list,
        revoke,
        begin_step_up,
        submit_step_up
    ),
    components(schemas(SessionView, Ended, StepUpBody))
)]
pub(crate) struct Doc;

/// How many sessions ended.
#[derive(Serialize, ToSchema)]
pub(crate) struct Ended {
    /// The number of sessions ended.
    ended: u64,
}

/// Which factors a step-up should ask for.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct StepUpBody {
    /// Factor kinds (`password`, `totp`, `passkey`, ...); empty: any the
    /// account has.
    #[serde(default)]
    factors: Vec<String>,
}

#[utoipa::path(get, path = "/v1/session", tag = "sessions",
    security(("session" = []), ("cookie" = [])),
    responses((status = 200, body = SessionView), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn current(principal: Principal) -> ApiResult<Response> {
    // The view's JSON, written straight from the record (the session
    // check is the hottest route; see `session_body`).
    let body = SessionBody(principal.session()).to_json().map_err(|e| {
        tracing::error!(error = %e, "serialising the session");
        ApiError::internal()
    })?;
    let mut res = Response::new(axum::body::Body::from(body));
    // Room for the headers the layers add (security headers, request id),
    // so none of them grows the map.
    let headers = res.headers_mut();
    headers.reserve(16);
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

#[utoipa::path(post, path = "/v1/logout", tag = "sessions",
    security(("session" = []), ("cookie" = [])),
    responses((status = 204, description = "The session ended; its cookies are cleared"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn logout<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
) -> ApiResult<Response> {
    api.sessions().logout(principal.token(), &client).await?;
    Ok((api.clear_cookies(), StatusCode::NO_CONTENT).into_response())
}

#[utoipa::path(post, path = "/v1/logout/everywhere", tag = "sessions",
    security(("session" = []), ("cookie" = [])),
    responses((status = 200, body = Ended, description = "Every session of the caller ended, this one included"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn logout_everywhere<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
) -> ApiResult<Response> {
    let ended = api
        .sessions()
        .logout_everywhere(principal.tenant(), principal.user(), None, &client)
        .await?;
    Ok((api.clear_cookies(), Json(Ended { ended })).into_response())
}

#[utoipa::path(get, path = "/v1/sessions", tag = "sessions",
    security(("session" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<SessionView>), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
) -> ApiResult<Json<Vec<SessionView>>> {
    let sessions = api
        .sessions()
        .sessions(principal.tenant(), principal.user())
        .await?;
    Ok(Json(sessions.iter().map(SessionView::from).collect()))
}

#[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "sessions",
    security(("session" = []), ("cookie" = [])),
    params(("id" = uuid::Uuid, Path, description = "One of the caller's sessions")),
    responses((status = 204, description = "It ended"), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn revoke<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiPath(id): ApiPath<SessionId>,
) -> ApiResult<StatusCode> {
    // Only the caller's own sessions: another user's id is "not found".
    let found = api
        .authn()
        .store()
        .session(principal.tenant(), id)
        .await
        .map_err(countersign_core::Error::store)?;
    if found.is_none_or(|s| s.user_id != principal.user()) {
        return Err(ApiError::not_found("no such session"));
    }
    api.sessions()
        .revoke(principal.tenant(), id, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/step-up", tag = "sessions",
    security(("session" = []), ("cookie" = [])),
    request_body = StepUpBody,
    responses((status = 200, body = FlowView, description = "A step-up flow: submit its factors to `/v1/step-up/submit`"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn begin_step_up<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiJson(body): ApiJson<StepUpBody>,
) -> ApiResult<Json<FlowView>> {
    let kinds = body
        .factors
        .iter()
        .map(|k| {
            k.parse::<FactorKind>()
                .map_err(|_| ApiError::invalid(format!("unknown factor `{k}`")))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let (flow, status) = api
        .authn()
        .begin_step_up(principal.tenant(), principal.user(), &kinds, &client)
        .await?;
    Ok(Json(FlowView::of(Some(&flow), &status)))
}

#[utoipa::path(post, path = "/v1/step-up/submit", tag = "sessions",
    security(("session" = []), ("cookie" = [])),
    request_body = SubmitBody,
    responses((status = 200, body = FlowView, description = "The step-up flow after the factor; with `authenticated`, the session with its new factors in `stepped_up`"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn submit_step_up<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiJson(body): ApiJson<SubmitBody>,
) -> ApiResult<Json<FlowView>> {
    let text = body.response_text()?;
    let submission = api
        .authn()
        .submit(
            principal.tenant(),
            &body.flow,
            body.factor.response(&text),
            &client,
        )
        .await?;
    count_submission(&submission);
    let mut view = FlowView::of(None, &submission.status);
    view.refused = submission.refused.map(|r| r.as_str());
    if let LoginStatus::Authenticated(auth) = &submission.status {
        let session = api
            .sessions()
            .step_up(principal.token(), auth, &client)
            .await?;
        view.stepped_up = Some(SessionView::from(&session));
    }
    Ok(Json(view))
}
