//! The signed-in user's own account, under `/v1/me`: read and edit the
//! profile, change the password, deactivate the account, export
//! everything stored about it, and the identities linked at OpenID Connect
//! issuers. The factors are in [`super::account_factors`].
//!
//! Sensitive operations go through [`countersign_core::SelfService`],
//! which enforces the recent-authentication rule: a session whose factors
//! are too old gets a 403 `step_up_required` problem naming what a step-up
//! must prove.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use countersign_core::{Attributes, LinkedIdentity, UserExport};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::views::UserView;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, Client, Principal};
use crate::{Api, ApiStore};

/// The account routes.
pub(crate) fn routes<S: ApiStore>() -> Router<Api<S>> {
    Router::new()
        .route("/v1/me", get(me::<S>).patch(update_me::<S>))
        .route("/v1/me/password", post(change_password::<S>))
        .route("/v1/me/deactivate", post(deactivate::<S>))
        .route("/v1/me/export", get(export::<S>))
        .route(
            "/v1/me/identities",
            get(identities::<S>).delete(unlink_identity::<S>),
        )
}

/// The account routes' OpenAPI paths and schemas.
#[derive(OpenApi)]
#[openapi(
    paths(
        me,
        update_me,
        change_password,
        deactivate,
        export,
        identities,
        unlink_identity
    ),
    components(schemas(UserView, ProfileBody, PasswordBody, IdentityView, IdentityBody))
)]
pub(crate) struct Doc;

/// A change to the caller's own profile. Absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileBody {
    /// The new display name; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    display_name: Option<Option<String>>,
    /// Every attribute, replacing the stored ones: only those the tenant's
    /// schema marks `user_editable` may differ from their stored values.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    attributes: Option<Attributes>,
}

/// A field that is present (`null` included): `Some(value)`; an absent
/// one takes the `default`, `None`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A new password. No `Debug`: it carries secrets.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordBody {
    /// The current password. Without it the session must have
    /// authenticated recently (else 403 `step_up_required`).
    #[serde(default)]
    current_password: Option<String>,
    /// The new password, checked against the tenant's rules and history.
    new_password: String,
}

/// An identity at an OpenID Connect issuer linked to the caller's account.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct IdentityView {
    /// The issuer (`iss`).
    issuer: String,
    /// The subject (`sub`) at that issuer.
    subject: String,
    /// The address the issuer vouched for when it was linked.
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    /// When it was linked.
    linked_at: DateTime<Utc>,
}

impl From<&LinkedIdentity> for IdentityView {
    fn from(l: &LinkedIdentity) -> Self {
        IdentityView {
            issuer: l.issuer.clone(),
            subject: l.subject.clone(),
            email: l.email.as_ref().map(|e| e.as_str().to_owned()),
            linked_at: l.linked_at,
        }
    }
}

/// Which linked identity to remove.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IdentityBody {
    /// The issuer (`iss`).
    issuer: String,
    /// The subject (`sub`) at that issuer.
    subject: String,
}

/// The caller's account.
#[utoipa::path(get, path = "/v1/me", tag = "account",
    security(("session" = []), ("cookie" = [])),
    responses((status = 200, body = UserView, description = "The caller's account"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn me<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
) -> ApiResult<Json<UserView>> {
    let user = api
        .authn()
        .user(principal.tenant(), principal.user())
        .await?;
    Ok(Json(UserView::from(&user)))
}

/// Change the caller's display name and editable attributes.
#[utoipa::path(patch, path = "/v1/me", tag = "account",
    security(("session" = []), ("cookie" = [])),
    request_body = ProfileBody,
    responses((status = 200, body = UserView, description = "The account as changed"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn update_me<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiJson(body): ApiJson<ProfileBody>,
) -> ApiResult<Json<UserView>> {
    let display_name = body.display_name.as_ref().map(Option::as_deref);
    let user = api
        .authn()
        .self_service(principal.session())
        .update_profile(display_name, body.attributes, &client)
        .await?;
    Ok(Json(UserView::from(&user)))
}

/// Change the caller's password.
#[utoipa::path(post, path = "/v1/me/password", tag = "account",
    security(("session" = []), ("cookie" = [])),
    request_body = PasswordBody,
    responses((status = 204, description = "The password changed; every other session of the caller ended"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn change_password<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiJson(body): ApiJson<PasswordBody>,
) -> ApiResult<StatusCode> {
    api.authn()
        .self_service(principal.session())
        .change_password(
            body.current_password.as_deref(),
            &body.new_password,
            &client,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deactivate the caller's account.
#[utoipa::path(post, path = "/v1/me/deactivate", tag = "account",
    security(("session" = []), ("cookie" = [])),
    responses((status = 204, description = "The account is deactivated; every session of it ended and its cookies are cleared"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn deactivate<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
) -> ApiResult<Response> {
    api.authn()
        .self_service(principal.session())
        .deactivate(&client)
        .await?;
    Ok((api.clear_cookies(), StatusCode::NO_CONTENT).into_response())
}

/// Everything stored about the caller (GDPR export).
#[utoipa::path(get, path = "/v1/me/export", tag = "account",
    security(("session" = []), ("cookie" = [])),
    responses((status = 200, body = Object, description = "Everything stored about the caller (GDPR art. 15 and 20), audit events included, without a secret"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn export<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
) -> ApiResult<Json<UserExport>> {
    let export = api
        .authn()
        .export_user_with_audit(principal.tenant(), principal.user())
        .await?;
    Ok(Json(export))
}

/// The caller's linked OpenID Connect identities.
#[utoipa::path(get, path = "/v1/me/identities", tag = "account",
    security(("session" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<IdentityView>, description = "The identities linked to the caller's account, oldest first"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn identities<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
) -> ApiResult<Json<Vec<IdentityView>>> {
    let links = api
        .authn()
        .linked_identities(principal.tenant(), principal.user())
        .await?;
    Ok(Json(links.iter().map(IdentityView::from).collect()))
}

/// Unlink one of the caller's OpenID Connect identities.
#[utoipa::path(delete, path = "/v1/me/identities", tag = "account",
    security(("session" = []), ("cookie" = [])),
    request_body = IdentityBody,
    responses((status = 204, description = "The link is gone (needs a recent authentication, as removing a factor)"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn unlink_identity<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiJson(body): ApiJson<IdentityBody>,
) -> ApiResult<StatusCode> {
    // Removing a way to sign in is sensitive, as removing a factor is:
    // the same recent-authentication rule.
    api.sessions()
        .require_recent(principal.session(), &api.authn().config().recent_auth)
        .map_err(countersign_core::Error::from)?;
    let gone = api
        .authn()
        .unlink_identity(
            principal.tenant(),
            principal.user(),
            &body.issuer,
            &body.subject,
            &client,
        )
        .await?;
    if gone {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("no such linked identity"))
    }
}
