//! A tenant's users, their sessions and the audit trail, under
//! `/v1/admin`, for administrators of the caller's own tenant.
//!
//! Every handler first asks the Cedar engine for the administrative
//! action it needs ([`Api::require_admin`]): `manage_users` for users and
//! sessions, `read_audit` for the audit trail. Everything happens in the
//! caller's tenant: another tenant's user or session answers exactly like
//! an unknown one (404). After any change to a user's state, tier or
//! attributes, the authorization engine forgets its cached facts about
//! that user, so the next decision sees the change.
//!
//! The tenant itself and the platform operator's tenant provisioning are
//! in [`super::tenants`].

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use chrono::{DateTime, Utc};
use countersign_core::{
    AccountState, AdminAction, Attributes, AuditEvent, AuditFilter, AuditKind, AuditStatus, Error,
    NewUser, ProfileChange, SessionId, TenantId, Tier, User, UserId, UserQuery,
};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use super::auth::to_json;
use super::views::{SessionView, UserView};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Client, Principal};
use crate::{Api, ApiStore};

/// Users per page when the query names no limit.
const DEFAULT_USER_PAGE: u32 = 50;
/// The most users one page holds, whatever limit is asked for.
const MAX_USER_PAGE: u32 = 200;

/// The user and audit routes.
pub(crate) fn routes<S: ApiStore>() -> Router<Api<S>> {
    Router::new()
        .route(
            "/v1/admin/users",
            get(list_users::<S>).post(create_user::<S>),
        )
        .route(
            "/v1/admin/users/{user}",
            get(get_user::<S>)
                .patch(update_user::<S>)
                .delete(erase_user::<S>),
        )
        .route("/v1/admin/users/{user}/suspend", post(suspend::<S>))
        .route("/v1/admin/users/{user}/reactivate", post(reactivate::<S>))
        .route("/v1/admin/users/{user}/export", get(export::<S>))
        .route(
            "/v1/admin/users/{user}/sessions",
            get(user_sessions::<S>).delete(end_user_sessions::<S>),
        )
        .route("/v1/admin/users/{user}/password", post(set_password::<S>))
        .route("/v1/admin/sessions/{id}", delete(revoke_session::<S>))
        .route("/v1/admin/audit", get(audit::<S>))
}

/// The OpenAPI paths and schemas of the user and audit routes.
#[derive(OpenApi)]
#[openapi(
    paths(
        list_users,
        create_user,
        get_user,
        update_user,
        erase_user,
        suspend,
        reactivate,
        export,
        user_sessions,
        end_user_sessions,
        set_password,
        revoke_session,
        audit
    ),
    components(schemas(
        UserView,
        SessionView,
        UserPage,
        CreateUserBody,
        UpdateUserBody,
        SuspendBody,
        PasswordBody,
        SessionsEnded,
        AuditPage,
        AuditEventView
    ))
)]
pub(crate) struct Doc;

/// A search of the tenant's users, one page at a time.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct UserSearch {
    /// Text found in the identifier, email or display name (literal,
    /// ASCII case-insensitive; at most 256 characters).
    #[serde(default)]
    q: Option<String>,
    /// Only users in this state: `candidate`, `pending`, `active`,
    /// `suspended` or `deleted`.
    #[serde(default)]
    state: Option<String>,
    /// Only users of this tier.
    #[serde(default)]
    tier: Option<String>,
    /// The `next` of the previous page.
    #[serde(default)]
    after: Option<String>,
    /// Users per page: 1 to 200, default 50.
    #[serde(default)]
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

/// One page of users, ordered by id.
#[derive(Serialize, ToSchema)]
pub(crate) struct UserPage {
    /// The users.
    users: Vec<UserView>,
    /// Pass it as `after` for the next page; `null` on the last page.
    next: Option<Uuid>,
}

/// A user created by an administrator. `Debug` is not derived: the body
/// may carry a password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateUserBody {
    /// The sign-in identifier (a username or an email address).
    identifier: String,
    /// The email address.
    #[serde(default)]
    email: Option<String>,
    /// The display name.
    #[serde(default)]
    display_name: Option<String>,
    /// A first password, checked against the tenant's rules.
    #[serde(default)]
    password: Option<String>,
    /// `candidate` (default), `pending` or `active`.
    #[serde(default)]
    state: Option<String>,
    /// A tier the tenant allows (default: the tenant's default tier).
    #[serde(default)]
    tier: Option<String>,
}

/// An administrator's change to a user's profile: absent fields stay,
/// `null` clears a field.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateUserBody {
    /// The `updated_at` the change was made from: a user changed since
    /// then is a 409 `conflict` (read it again, then retry).
    expected_updated_at: DateTime<Utc>,
    /// The new display name; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    display_name: Option<Option<String>>,
    /// The new tier (one the tenant allows); `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    tier: Option<Option<String>>,
    /// The attributes, all replaced, checked against the tenant's
    /// profile schema.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    attributes: Option<Attributes>,
}

/// A field that is present (`null` included): `Some`, whatever its value.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Why an account is suspended.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct SuspendBody {
    /// The reason, kept with the account's state.
    #[serde(default)]
    reason: Option<String>,
}

/// A password set by an administrator. `Debug` is not derived.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordBody {
    /// The new password, checked against the tenant's rules and the
    /// user's history.
    password: String,
}

/// How many sessions ended.
#[derive(Serialize, ToSchema)]
pub(crate) struct SessionsEnded {
    /// The number of sessions ended.
    ended: u64,
}

/// A query of the tenant's audit trail.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditSearch {
    /// Only events about this user.
    #[serde(default)]
    user: Option<String>,
    /// Only events of this kind (`user.registered`, `authn.login`, ...).
    #[serde(default)]
    kind: Option<String>,
    /// Only events with this status: `success` or `failure`.
    #[serde(default)]
    status: Option<String>,
    /// Only events at or after this instant (RFC 3339).
    #[serde(default)]
    since: Option<DateTime<Utc>>,
    /// Only events before this instant (RFC 3339).
    #[serde(default)]
    until: Option<DateTime<Utc>>,
    /// At most this many events: 1 to 1000, default 100.
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Audit events, newest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct AuditPage {
    /// The events.
    events: Vec<AuditEventView>,
}

/// One audit event. It never holds a secret.
#[derive(Serialize, ToSchema)]
pub(crate) struct AuditEventView {
    /// Its id.
    id: Uuid,
    /// Its tenant.
    tenant_id: Uuid,
    /// The user it concerns (a pseudonym after erasure).
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<Uuid>,
    /// What happened (`user.registered`, `session.ended`, ...).
    kind: &'static str,
    /// `success` or `failure`.
    status: &'static str,
    /// The factor involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    factor: Option<&'static str>,
    /// The client's IP.
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    /// The client's user agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<String>,
    /// When it happened.
    at: DateTime<Utc>,
    /// What more it says (`wrong_code`, `state:active->suspended`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

impl From<&AuditEvent> for AuditEventView {
    fn from(e: &AuditEvent) -> Self {
        AuditEventView {
            id: *e.id.as_uuid(),
            tenant_id: *e.tenant_id.as_uuid(),
            user_id: e.user_id.map(|u| *u.as_uuid()),
            kind: e.kind.as_str(),
            status: e.status.as_str(),
            factor: e.factor.map(|f| f.as_str()),
            ip: e.ip.map(|ip| ip.to_string()),
            user_agent: e.user_agent.clone(),
            at: e.at,
            detail: e.detail.as_ref().map(|d| d.code()),
        }
    }
}

/// `raw` parsed with `FromStr`, or a 400 naming `what` and why.
fn parse<T>(raw: &str, what: &str) -> ApiResult<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    raw.parse()
        .map_err(|e| ApiError::invalid(format!("not a valid {what}: {e}")))
}

/// A limit from the query: absent is `default`; 0 or above `max` is a
/// 400.
fn page_limit(limit: Option<u32>, default: u32, max: u32) -> ApiResult<u32> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid(format!("`limit` must be 1 to {max}"))),
    }
}

/// The user `id` of `tenant`; another tenant's user is a 404 like an
/// unknown one.
async fn user_in<S: ApiStore>(api: &Api<S>, tenant: TenantId, id: UserId) -> ApiResult<User> {
    Ok(api.authn().user(tenant, id).await?)
}

/// Refuses an administrator acting on their own account where that could
/// lock them out (suspension, erasure).
fn not_self(principal: &Principal, id: UserId) -> ApiResult<()> {
    if principal.user() == id {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "administrators cannot suspend or erase their own account here",
        ));
    }
    Ok(())
}

#[utoipa::path(get, path = "/v1/admin/users", tag = "admin",
    security(("session" = []), ("cookie" = [])),
    params(UserSearch),
    responses((status = 200, body = UserPage), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_users<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
    ApiQuery(q): ApiQuery<UserSearch>,
) -> ApiResult<Json<UserPage>> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManageUsers)
        .await?;
    let limit = page_limit(q.limit, DEFAULT_USER_PAGE, MAX_USER_PAGE)?;
    let state = q
        .state
        .as_deref()
        .map(|s| parse::<AccountState>(s, "state"))
        .transpose()?;
    let tier = q
        .tier
        .as_deref()
        .map(|t| parse::<Tier>(t, "tier"))
        .transpose()?;
    let after = q
        .after
        .as_deref()
        .map(|a| parse::<UserId>(a, "user id"))
        .transpose()?;
    // One more than the page: whether there is a next page, without an
    // empty last page when the matches fill the pages exactly.
    let query = UserQuery {
        text: q.q,
        state,
        tier,
        after,
        limit: limit.saturating_add(1),
    };
    let mut users = api.authn().search_users(tenant, query).await?;
    let page = usize::try_from(limit).unwrap_or(usize::MAX);
    let next = if users.len() > page {
        users.truncate(page);
        users.last().map(|u| *u.id.as_uuid())
    } else {
        None
    };
    Ok(Json(UserPage {
        users: users.iter().map(UserView::from).collect(),
        next,
    }))
}

#[utoipa::path(post, path = "/v1/admin/users", tag = "admin",
    security(("session" = []), ("cookie" = [])),
    request_body = CreateUserBody,
    responses((status = 201, body = UserView), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create_user<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiJson(body): ApiJson<CreateUserBody>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManageUsers)
        .await?;
    let state = body
        .state
        .as_deref()
        .map(|s| parse::<AccountState>(s, "state"))
        .transpose()?;
    let new = NewUser {
        identifier: &body.identifier,
        password: body.password.as_deref(),
        display_name: body.display_name.as_deref(),
        email: body.email.as_deref(),
        state,
        tier: body.tier.as_deref(),
    };
    // One write: the user with its tier, or nothing.
    let user = api.authn().register_user(tenant, new, &client).await?;
    api.authz().forget_user(tenant, user.id);
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}

#[utoipa::path(get, path = "/v1/admin/users/{user}", tag = "admin",
    security(("session" = []), ("cookie" = [])),
    params(("user" = Uuid, Path, description = "A user of the caller's tenant")),
    responses((status = 200, body = UserView), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_user<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
    ApiPath(id): ApiPath<UserId>,
) -> ApiResult<Json<UserView>> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManageUsers)
        .await?;
    let user = user_in(&api, tenant, id).await?;
    Ok(Json(UserView::from(&user)))
}

#[utoipa::path(patch, path = "/v1/admin/users/{user}", tag = "admin",
    security(("session" = []), ("cookie" = [])),
    params(("user" = Uuid, Path, description = "A user of the caller's tenant")),
    request_body = UpdateUserBody,
    responses((status = 200, body = UserView, description = "The user as changed"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The user changed since `expected_updated_at`"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn update_user<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiPath(id): ApiPath<UserId>,
    ApiJson(body): ApiJson<UpdateUserBody>,
) -> ApiResult<Json<UserView>> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManageUsers)
        .await?;
    let change = ProfileChange {
        display_name: body.display_name.as_ref().map(|d| d.as_deref()),
        tier: body.tier.as_ref().map(|t| t.as_deref()),
        attributes: body.attributes,
    };
    let user = api
        .authn()
        .update_profile_from(tenant, id, change, body.expected_updated_at, &client)
        .await?;
    api.authz().forget_user(tenant, id);
    Ok(Json(UserView::from(&user)))
}

#[utoipa::path(delete, path = "/v1/admin/users/{user}", tag = "admin",
    security(("session" = []), ("cookie" = [])),
    params(("user" = Uuid, Path, description = "A user of the caller's tenant")),
    responses((status = 204, description = "The user and their personal data are erased; audit events stay, pseudonymised"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn erase_user<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiPath(id): ApiPath<UserId>,
) -> ApiResult<StatusCode> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManageUsers)
        .await?;
    not_self(&principal, id)?;
    api.authn().erase_user(tenant, id, &client).await?;
    api.authz().forget_user(tenant, id);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/admin/users/{user}/suspend", tag = "admin",
    security(("session" = []), ("cookie" = [])),
    params(("user" = Uuid, Path, description = "A user of the caller's tenant")),
    request_body = SuspendBody,
    responses((status = 200, body = UserView, description = "Suspended; every session of the user ended"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn suspend<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiPath(id): ApiPath<UserId>,
    ApiJson(body): ApiJson<SuspendBody>,
) -> ApiResult<Json<UserView>> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManageUsers)
        .await?;
    not_self(&principal, id)?;
    // Core ends every session of the account with the suspension.
    let user = api
        .authn()
        .transition(
            tenant,
            id,
            AccountState::Suspended,
            body.reason.as_deref(),
            &client,
        )
        .await?;
    api.authz().forget_user(tenant, id);
    Ok(Json(UserView::from(&user)))
}

#[utoipa::path(post, path = "/v1/admin/users/{user}/reactivate", tag = "admin",
    security(("session" = []), ("cookie" = [])),
    params(("user" = Uuid, Path, description = "A user of the caller's tenant")),
    responses((status = 200, body = UserView, description = "Active again (from suspended, or a pending or candidate account activated)"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn reactivate<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiPath(id): ApiPath<UserId>,
) -> ApiResult<Json<UserView>> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManageUsers)
        .await?;
    let user = api
        .authn()
        .transition(tenant, id, AccountState::Active, None, &client)
        .await?;
    api.authz().forget_user(tenant, id);
    Ok(Json(UserView::from(&user)))
}

#[utoipa::path(get, path = "/v1/admin/users/{user}/export", tag = "admin",
    security(("session" = []), ("cookie" = [])),
    params(("user" = Uuid, Path, description = "A user of the caller's tenant")),
    responses((status = 200, body = Object, description = "Everything stored about the user (GDPR art. 15 and 20), audit events included, no secret"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn export<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
    ApiPath(id): ApiPath<UserId>,
) -> ApiResult<Json<serde_json::Value>> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManageUsers)
        .await?;
    let export = api.authn().export_user_with_audit(tenant, id).await?;
    Ok(Json(to_json(&export)?))
}

#[utoipa::path(get, path = "/v1/admin/users/{user}/sessions", tag = "admin",
    security(("session" = []), ("cookie" = [])),
    params(("user" = Uuid, Path, description = "A user of the caller's tenant")),
    responses((status = 200, body = Vec<SessionView>, description = "The user's live sessions, newest first"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn user_sessions<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
    ApiPath(id): ApiPath<UserId>,
) -> ApiResult<Json<Vec<SessionView>>> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManageUsers)
        .await?;
    user_in(&api, tenant, id).await?;
    let sessions = api.sessions().sessions(tenant, id).await?;
    Ok(Json(sessions.iter().map(SessionView::from).collect()))
}

#[utoipa::path(delete, path = "/v1/admin/users/{user}/sessions", tag = "admin",
    security(("session" = []), ("cookie" = [])),
    params(("user" = Uuid, Path, description = "A user of the caller's tenant")),
    responses((status = 200, body = SessionsEnded, description = "Every session of the user ended"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn end_user_sessions<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiPath(id): ApiPath<UserId>,
) -> ApiResult<Json<SessionsEnded>> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManageUsers)
        .await?;
    user_in(&api, tenant, id).await?;
    let ended = api
        .sessions()
        .logout_everywhere(tenant, id, None, &client)
        .await?;
    Ok(Json(SessionsEnded { ended }))
}

#[utoipa::path(post, path = "/v1/admin/users/{user}/password", tag = "admin",
    security(("session" = []), ("cookie" = [])),
    params(("user" = Uuid, Path, description = "A user of the caller's tenant")),
    request_body = PasswordBody,
    responses((status = 204, description = "The password is set; every session of the user ended"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn set_password<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiPath(id): ApiPath<UserId>,
    ApiJson(body): ApiJson<PasswordBody>,
) -> ApiResult<StatusCode> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManageUsers)
        .await?;
    api.authn()
        .set_password(tenant, id, &body.password, None, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v1/admin/sessions/{id}", tag = "admin",
    security(("session" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "A session of the caller's tenant")),
    responses((status = 204, description = "It ended"), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn revoke_session<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiPath(id): ApiPath<SessionId>,
) -> ApiResult<StatusCode> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManageUsers)
        .await?;
    // Tenant-scoped in the store: another tenant's session is not found.
    if !api.sessions().revoke(tenant, id, &client).await? {
        return Err(ApiError::not_found("no such session"));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/admin/audit", tag = "admin",
    security(("session" = []), ("cookie" = [])),
    params(AuditSearch),
    responses((status = 200, body = AuditPage, description = "The tenant's events, newest first"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn audit<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
    ApiQuery(q): ApiQuery<AuditSearch>,
) -> ApiResult<Json<AuditPage>> {
    let tenant = api
        .require_admin(&principal, AdminAction::ReadAudit)
        .await?;
    let limit = page_limit(q.limit, AuditFilter::DEFAULT_LIMIT, AuditFilter::MAX_LIMIT)?;
    if let (Some(since), Some(until)) = (q.since, q.until)
        && since > until
    {
        return Err(ApiError::invalid("`since` is after `until`"));
    }
    let filter = AuditFilter {
        user_id: q
            .user
            .as_deref()
            .map(|u| parse::<UserId>(u, "user id"))
            .transpose()?,
        kind: q
            .kind
            .as_deref()
            .map(|k| parse::<AuditKind>(k, "event kind"))
            .transpose()?,
        status: q
            .status
            .as_deref()
            .map(|s| parse::<AuditStatus>(s, "status"))
            .transpose()?,
        from: q.since,
        until: q.until,
        limit: Some(limit),
    };
    let events = api
        .authn()
        .store()
        .query_events(tenant, &filter)
        .await
        .map_err(|e| ApiError::from(Error::store(e)))?;
    Ok(Json(AuditPage {
        events: events.iter().map(AuditEventView::from).collect(),
    }))
}
