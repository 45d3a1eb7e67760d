//! The users' side of the RBAC model: roles held within services,
//! permissions granted directly, effective permissions (an
//! administrator's view under `/v1/admin/users/{user}`, and the caller's
//! own at `/v1/permissions`). A user of another tenant is a 404, exactly
//! like an unknown one.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use countersign_core::{
    AdminAction, DirectGrant, Error, RbacChange, RbacKind, RbacName, RoleAssignment, UserId,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{RbacVersionView, apply, ensure_exists, ensure_user};
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiPath, ApiQuery, Client, Principal};
use crate::{Api, ApiStore};

/// The routes of the users' side.
pub(super) fn routes<S: ApiStore>() -> Router<Api<S>> {
    Router::new()
        .route("/v1/admin/users/{user}/roles", get(user_roles::<S>))
        .route(
            "/v1/admin/users/{user}/roles/{service}/{role}",
            put(assign::<S>).delete(unassign::<S>),
        )
        .route(
            "/v1/admin/users/{user}/permissions",
            get(user_permissions::<S>),
        )
        .route(
            "/v1/admin/users/{user}/permissions/{service}/{permission}",
            put(grant_direct::<S>).delete(revoke_direct::<S>),
        )
        .route("/v1/permissions", get(own_permissions::<S>))
}

/// A role a user holds within a service.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HeldRoleView {
    /// The service.
    service: String,
    /// The role.
    role: String,
}

/// A user's effective permissions in a service: through the roles it
/// holds there and its direct grants there.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PermissionsView {
    /// The service.
    service: String,
    /// The permissions, sorted: each allows the action of that name on
    /// the service and the resources in it.
    permissions: Vec<String>,
}

/// A `?service=` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceQuery {
    /// The service.
    service: RbacName,
}

/// An optional `?service=` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MaybeServiceQuery {
    /// The service, if given.
    #[serde(default)]
    service: Option<RbacName>,
}

/// List the roles a user holds, by service.
#[utoipa::path(get, path = "/v1/admin/users/{user}/roles", tag = "rbac",
    security(("session" = []), ("cookie" = [])),
    params(("user" = uuid::Uuid, Path, description = "A user of the caller's tenant"),
        ("service" = Option<String>, Query, description = "Only the roles held in this service")),
    responses((status = 200, body = Vec<HeldRoleView>, description = "The roles the user holds, by service"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn user_roles<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
    ApiPath(user): ApiPath<UserId>,
    ApiQuery(query): ApiQuery<MaybeServiceQuery>,
) -> ApiResult<Json<Vec<HeldRoleView>>> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManageRbac)
        .await?;
    ensure_user(&api, tenant, user).await?;
    let store = api.authn().store();
    let services = match query.service {
        Some(s) => {
            ensure_exists(&api, tenant, RbacKind::Service, &s).await?;
            vec![s]
        }
        None => store
            .user_services(tenant, user)
            .await
            .map_err(Error::store)?,
    };
    let mut held = Vec::new();
    for service in services {
        let roles = store
            .user_roles(tenant, user, &service)
            .await
            .map_err(Error::store)?;
        held.extend(roles.into_iter().map(|role| HeldRoleView {
            service: service.to_string(),
            role: role.to_string(),
        }));
    }
    Ok(Json(held))
}

/// The admin check, the user check, then one assignment change.
async fn assignment<S: ApiStore>(
    api: &Api<S>,
    principal: &Principal,
    client: &countersign_core::ClientInfo,
    (user, service, role): (UserId, RbacName, RbacName),
    take: bool,
) -> ApiResult<u64> {
    let tenant = api
        .require_admin(principal, AdminAction::ManageRbac)
        .await?;
    ensure_user(api, tenant, user).await?;
    let a = RoleAssignment {
        user,
        role,
        service,
    };
    let change = if take {
        RbacChange::Unassign(a)
    } else {
        RbacChange::Assign(a)
    };
    apply(api, principal, client, change).await
}

/// Make a user hold a role within a service.
#[utoipa::path(put, path = "/v1/admin/users/{user}/roles/{service}/{role}", tag = "rbac",
    security(("session" = []), ("cookie" = [])),
    params(("user" = uuid::Uuid, Path, description = "A user of the caller's tenant"),
        ("service" = String, Path, description = "The service"),
        ("role" = String, Path, description = "The role")),
    responses((status = 200, body = RbacVersionView, description = "The user holds the role in the service"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn assign<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiPath(path): ApiPath<(UserId, RbacName, RbacName)>,
) -> ApiResult<Json<RbacVersionView>> {
    let version = assignment(&api, &principal, &client, path, false).await?;
    Ok(Json(RbacVersionView { version }))
}

/// Take a role within a service from a user.
#[utoipa::path(delete, path = "/v1/admin/users/{user}/roles/{service}/{role}", tag = "rbac",
    security(("session" = []), ("cookie" = [])),
    params(("user" = uuid::Uuid, Path, description = "A user of the caller's tenant"),
        ("service" = String, Path, description = "The service"),
        ("role" = String, Path, description = "The role")),
    responses((status = 204, description = "The user no longer holds the role in the service"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn unassign<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiPath(path): ApiPath<(UserId, RbacName, RbacName)>,
) -> ApiResult<StatusCode> {
    assignment(&api, &principal, &client, path, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The admin check, the user check, then one direct grant change.
async fn direct<S: ApiStore>(
    api: &Api<S>,
    principal: &Principal,
    client: &countersign_core::ClientInfo,
    (user, service, permission): (UserId, RbacName, RbacName),
    revoke: bool,
) -> ApiResult<u64> {
    let tenant = api
        .require_admin(principal, AdminAction::ManageRbac)
        .await?;
    ensure_user(api, tenant, user).await?;
    let g = DirectGrant {
        user,
        permission,
        service,
    };
    let change = if revoke {
        RbacChange::RevokeDirect(g)
    } else {
        RbacChange::GrantDirect(g)
    };
    apply(api, principal, client, change).await
}

/// Grant a permission to a user directly, within a service.
#[utoipa::path(put, path = "/v1/admin/users/{user}/permissions/{service}/{permission}", tag = "rbac",
    security(("session" = []), ("cookie" = [])),
    params(("user" = uuid::Uuid, Path, description = "A user of the caller's tenant"),
        ("service" = String, Path, description = "The service"),
        ("permission" = String, Path, description = "The permission")),
    responses((status = 200, body = RbacVersionView, description = "The user holds the permission in the service directly"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn grant_direct<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiPath(path): ApiPath<(UserId, RbacName, RbacName)>,
) -> ApiResult<Json<RbacVersionView>> {
    let version = direct(&api, &principal, &client, path, false).await?;
    Ok(Json(RbacVersionView { version }))
}

/// Revoke a user's direct grant.
#[utoipa::path(delete, path = "/v1/admin/users/{user}/permissions/{service}/{permission}", tag = "rbac",
    security(("session" = []), ("cookie" = [])),
    params(("user" = uuid::Uuid, Path, description = "A user of the caller's tenant"),
        ("service" = String, Path, description = "The service"),
        ("permission" = String, Path, description = "The permission")),
    responses((status = 204, description = "The direct grant is gone (grants through roles stay)"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn revoke_direct<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiPath(path): ApiPath<(UserId, RbacName, RbacName)>,
) -> ApiResult<StatusCode> {
    direct(&api, &principal, &client, path, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Read a user's effective permissions in a service.
#[utoipa::path(get, path = "/v1/admin/users/{user}/permissions", tag = "rbac",
    security(("session" = []), ("cookie" = [])),
    params(("user" = uuid::Uuid, Path, description = "A user of the caller's tenant"),
        ("service" = String, Query, description = "The service")),
    responses((status = 200, body = PermissionsView, description = "The user's effective permissions in the service"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn user_permissions<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
    ApiPath(user): ApiPath<UserId>,
    ApiQuery(query): ApiQuery<ServiceQuery>,
) -> ApiResult<Json<PermissionsView>> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManageRbac)
        .await?;
    ensure_user(&api, tenant, user).await?;
    ensure_exists(&api, tenant, RbacKind::Service, &query.service).await?;
    permissions(&api, tenant, user, query.service).await
}

/// Read the caller's own effective permissions in a service.
#[utoipa::path(get, path = "/v1/permissions", tag = "rbac",
    security(("session" = []), ("cookie" = [])),
    params(("service" = String, Query, description = "The service")),
    responses((status = 200, body = PermissionsView, description = "The caller's effective permissions in the service (none in a service that does not exist)"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn own_permissions<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
    ApiQuery(query): ApiQuery<ServiceQuery>,
) -> ApiResult<Json<PermissionsView>> {
    permissions(&api, principal.tenant(), principal.user(), query.service).await
}

/// `user`'s effective permissions in `service`, from the data decisions
/// use.
async fn permissions<S: ApiStore>(
    api: &Api<S>,
    tenant: countersign_core::TenantId,
    user: UserId,
    service: RbacName,
) -> ApiResult<Json<PermissionsView>> {
    let list = api
        .authz()
        .effective_permissions(tenant, user, &service)
        .await?;
    Ok(Json(PermissionsView {
        service: service.to_string(),
        permissions: super::names(&list),
    }))
}
