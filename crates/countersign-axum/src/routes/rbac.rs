//! The tenant's RBAC model over HTTP, under `/v1/admin` (each endpoint
//! asks for [`AdminAction::ManageRbac`] first and works in the caller's
//! tenant only): services, roles and permissions (tenant-wide names),
//! grants of permissions to roles (in every service or limited to one),
//! roles held by users within services, permissions granted to users
//! directly, effective permissions and the whole model at once. Also
//! `GET /v1/permissions`: the caller's own effective permissions.
//!
//! Names are [`RbacName`]s (a bad one is a 400); an unknown service, role,
//! permission, grant or user (another tenant's user included) is a 404; a
//! name or grant that exists already is a 409. Every change is one
//! [`RbacChange`], audited with it by the core service.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use countersign_core::{
    AdminAction, DirectGrant, Error, ErrorKind, RbacChange, RbacKind, RbacName, RoleAssignment,
    RoleGrant, TenantId, UserId,
};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, Client, Principal};
use crate::{Api, ApiStore};

mod users;

/// The routes of this group.
pub(crate) fn routes<S: ApiStore>() -> Router<Api<S>> {
    Router::new()
        .route(
            "/v1/admin/services",
            post(create_service::<S>).get(list_services::<S>),
        )
        .route(
            "/v1/admin/services/{service}",
            axum::routing::delete(delete_service::<S>),
        )
        .route(
            "/v1/admin/roles",
            post(create_role::<S>).get(list_roles::<S>),
        )
        .route(
            "/v1/admin/roles/{role}",
            axum::routing::delete(delete_role::<S>),
        )
        .route(
            "/v1/admin/permissions",
            post(create_permission::<S>).get(list_permissions::<S>),
        )
        .route(
            "/v1/admin/permissions/{permission}",
            axum::routing::delete(delete_permission::<S>),
        )
        .route("/v1/admin/roles/{role}/permissions", get(role_grants::<S>))
        .route(
            "/v1/admin/roles/{role}/permissions/{permission}",
            put(grant_everywhere::<S>).delete(revoke_everywhere::<S>),
        )
        .route(
            "/v1/admin/services/{service}/roles",
            get(service_roles::<S>),
        )
        .route(
            "/v1/admin/services/{service}/roles/{role}/permissions",
            get(role_grants_in::<S>),
        )
        .route(
            "/v1/admin/services/{service}/roles/{role}/permissions/{permission}",
            put(grant_in::<S>).delete(revoke_in::<S>),
        )
        .route(
            "/v1/admin/services/{service}/roles/{role}/users",
            get(role_holders::<S>),
        )
        .route("/v1/admin/rbac", get(snapshot::<S>))
        .merge(users::routes::<S>())
}

/// The OpenAPI paths and schemas of this group.
#[derive(OpenApi)]
#[openapi(
    paths(
        create_service,
        list_services,
        delete_service,
        create_role,
        list_roles,
        delete_role,
        create_permission,
        list_permissions,
        delete_permission,
        role_grants,
        grant_everywhere,
        revoke_everywhere,
        service_roles,
        role_grants_in,
        grant_in,
        revoke_in,
        role_holders,
        snapshot,
        users::user_roles,
        users::assign,
        users::unassign,
        users::grant_direct,
        users::revoke_direct,
        users::user_permissions,
        users::own_permissions
    ),
    components(schemas(
        RbacNameBody,
        RbacVersionView,
        RoleGrantView,
        AssignmentView,
        DirectGrantView,
        RbacSnapshotView,
        users::HeldRoleView,
        users::PermissionsView
    ))
)]
pub(crate) struct Doc;

/// A service, role or permission to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RbacNameBody {
    /// Its name: 1 to 128 bytes, without `/` or control characters,
    /// unique among the tenant's names of its kind.
    name: String,
}

/// The tenant's RBAC version after a change (one more on every change).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RbacVersionView {
    /// The new version.
    version: u64,
}

/// A permission granted to a role.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RoleGrantView {
    /// The role.
    role: String,
    /// The permission.
    permission: String,
    /// The service the grant is limited to; absent: every service the
    /// role is held in.
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<String>,
}

impl From<&RoleGrant> for RoleGrantView {
    fn from(g: &RoleGrant) -> Self {
        RoleGrantView {
            role: g.role.to_string(),
            permission: g.permission.to_string(),
            service: g.service.as_ref().map(ToString::to_string),
        }
    }
}

/// A role held by a user within a service.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AssignmentView {
    /// The user.
    user: Uuid,
    /// The role.
    role: String,
    /// The service.
    service: String,
}

/// A permission granted to a user directly, within a service.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DirectGrantView {
    /// The user.
    user: Uuid,
    /// The permission.
    permission: String,
    /// The service.
    service: String,
}

/// The tenant's whole RBAC model, read consistently at one version.
/// Every list is sorted.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RbacSnapshotView {
    /// The version it was read at (0: never changed).
    version: u64,
    /// The services.
    services: Vec<String>,
    /// The roles.
    roles: Vec<String>,
    /// The permissions.
    permissions: Vec<String>,
    /// Permissions granted to roles.
    role_grants: Vec<RoleGrantView>,
    /// Roles held by users within services.
    assignments: Vec<AssignmentView>,
    /// Permissions granted to users directly.
    direct_grants: Vec<DirectGrantView>,
}

/// The names as strings.
fn names(list: &[RbacName]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

/// A name from a request body (400 when it is not a valid name).
fn body_name(name: String) -> ApiResult<RbacName> {
    RbacName::new(name).map_err(|e| ApiError::from(Error::from(e)))
}

/// Applies `change` to `tenant`'s model; a refusal is a 404 (something it
/// names does not exist, or there is nothing to remove) or a 409 (it
/// exists already), with a detail that names no backend.
pub(super) async fn apply<S: ApiStore>(
    api: &Api<S>,
    principal: &Principal,
    client: &countersign_core::ClientInfo,
    change: RbacChange,
) -> ApiResult<u64> {
    let tenant = principal.tenant();
    if locks_out(&change, principal.user()) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "countersign's administration protects itself: the service `countersign`, the role \
             `admin` and the administrative permissions cannot be deleted, the role `admin` \
             keeps its grants, and administrators cannot take their own `admin` role",
        ));
    }
    api.authz()
        .change_rbac(tenant, &change, client)
        .await
        .map_err(|e| refusal(&change, e))
}

/// Whether `change` would take the tenant's administration apart, or
/// `caller`'s own: refused over HTTP so that an administrator cannot lock
/// the tenant (or themselves) out by mistake. Another administrator can
/// still take someone's `admin` role.
fn locks_out(change: &RbacChange, caller: UserId) -> bool {
    use countersign_core::authz::{ADMIN_ROLE, ADMIN_SERVICE};
    let admin_permission = |n: &RbacName| AdminAction::ALL.iter().any(|a| a.as_str() == n.as_str());
    match change {
        RbacChange::Delete { kind, name } => match kind {
            RbacKind::Service => name.as_str() == ADMIN_SERVICE,
            RbacKind::Role => name.as_str() == ADMIN_ROLE,
            RbacKind::Permission => admin_permission(name),
        },
        RbacChange::Revoke(g) => g.role.as_str() == ADMIN_ROLE,
        RbacChange::Unassign(a) => {
            a.user == caller && a.role.as_str() == ADMIN_ROLE && a.service.as_str() == ADMIN_SERVICE
        }
        RbacChange::RevokeDirect(g) => g.user == caller && g.service.as_str() == ADMIN_SERVICE,
        RbacChange::Create { .. }
        | RbacChange::Grant(_)
        | RbacChange::Assign(_)
        | RbacChange::GrantDirect(_) => false,
    }
}

/// The answer to a refused change.
fn refusal(change: &RbacChange, e: Error) -> ApiError {
    let missing = || match change {
        RbacChange::Create { kind, name } | RbacChange::Delete { kind, name } => {
            format!("no {} `{name}` in this tenant", kind.as_str())
        }
        RbacChange::Grant(_) | RbacChange::Assign(_) | RbacChange::GrantDirect(_) => {
            "a service, role, permission or user it names does not exist in this tenant".to_owned()
        }
        RbacChange::Revoke(_) => "the role has no such grant".to_owned(),
        RbacChange::Unassign(_) => "the user does not hold that role there".to_owned(),
        RbacChange::RevokeDirect(_) => "the user has no such direct grant".to_owned(),
    };
    let existing = || match change {
        RbacChange::Create { kind, name } | RbacChange::Delete { kind, name } => {
            format!("a {} named `{name}` exists already", kind.as_str())
        }
        RbacChange::Grant(_)
        | RbacChange::Revoke(_)
        | RbacChange::GrantDirect(_)
        | RbacChange::RevokeDirect(_) => "that permission is granted already".to_owned(),
        RbacChange::Assign(_) | RbacChange::Unassign(_) => {
            "the user holds that role there already".to_owned()
        }
    };
    match e.kind() {
        ErrorKind::NotFound => ApiError::not_found(missing()),
        ErrorKind::Conflict => ApiError::new(StatusCode::CONFLICT, "conflict", existing()),
        _ => e.into(),
    }
}

/// 404 unless `tenant` has the `kind` named `name`.
pub(super) async fn ensure_exists<S: ApiStore>(
    api: &Api<S>,
    tenant: TenantId,
    kind: RbacKind,
    name: &RbacName,
) -> ApiResult<()> {
    let all = api
        .authn()
        .store()
        .rbac_names(tenant, kind)
        .await
        .map_err(Error::store)?;
    if all.contains(name) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "no {} `{name}` in this tenant",
            kind.as_str()
        )))
    }
}

/// 404 unless `user` is a user of `tenant` (another tenant's user reads
/// as unknown).
pub(super) async fn ensure_user<S: ApiStore>(
    api: &Api<S>,
    tenant: TenantId,
    user: UserId,
) -> ApiResult<()> {
    api.authn().user(tenant, user).await?;
    Ok(())
}

/// The admin check, then the creation of a `kind` named by the body.
async fn create<S: ApiStore>(
    api: &Api<S>,
    principal: &Principal,
    client: &countersign_core::ClientInfo,
    kind: RbacKind,
    body: RbacNameBody,
) -> ApiResult<(StatusCode, Json<RbacVersionView>)> {
    api.require_admin(principal, AdminAction::ManageRbac)
        .await?;
    let name = body_name(body.name)?;
    let version = apply(api, principal, client, RbacChange::Create { kind, name }).await?;
    Ok((StatusCode::CREATED, Json(RbacVersionView { version })))
}

/// The admin check, then the tenant's names of `kind`.
async fn list<S: ApiStore>(
    api: &Api<S>,
    principal: &Principal,
    kind: RbacKind,
) -> ApiResult<Json<Vec<String>>> {
    let tenant = api
        .require_admin(principal, AdminAction::ManageRbac)
        .await?;
    let all = api
        .authn()
        .store()
        .rbac_names(tenant, kind)
        .await
        .map_err(Error::store)?;
    Ok(Json(names(&all)))
}

/// The admin check, then the deletion of the `kind` named `name`.
async fn delete<S: ApiStore>(
    api: &Api<S>,
    principal: &Principal,
    client: &countersign_core::ClientInfo,
    kind: RbacKind,
    name: RbacName,
) -> ApiResult<StatusCode> {
    api.require_admin(principal, AdminAction::ManageRbac)
        .await?;
    apply(api, principal, client, RbacChange::Delete { kind, name }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create a service (a resource container: an application, an API).
#[utoipa::path(post, path = "/v1/admin/services", tag = "rbac",
    security(("session" = []), ("cookie" = [])),
    request_body = RbacNameBody,
    responses((status = 201, body = RbacVersionView, description = "The service exists"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create_service<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiJson(body): ApiJson<RbacNameBody>,
) -> ApiResult<(StatusCode, Json<RbacVersionView>)> {
    create(&api, &principal, &client, RbacKind::Service, body).await
}

/// List the tenant's services.
#[utoipa::path(get, path = "/v1/admin/services", tag = "rbac",
    security(("session" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<String>, description = "The tenant's services, sorted"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_services<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
) -> ApiResult<Json<Vec<String>>> {
    list(&api, &principal, RbacKind::Service).await
}

/// Delete a service, with the grants limited to it and the roles held
/// and permissions granted in it.
#[utoipa::path(delete, path = "/v1/admin/services/{service}", tag = "rbac",
    security(("session" = []), ("cookie" = [])),
    params(("service" = String, Path, description = "The service")),
    responses((status = 204, description = "It is gone, with the grants limited to it and the roles held and permissions granted in it"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn delete_service<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiPath(service): ApiPath<RbacName>,
) -> ApiResult<StatusCode> {
    delete(&api, &principal, &client, RbacKind::Service, service).await
}

/// Create a role (tenant-wide; users hold it within services).
#[utoipa::path(post, path = "/v1/admin/roles", tag = "rbac",
    security(("session" = []), ("cookie" = [])),
    request_body = RbacNameBody,
    responses((status = 201, body = RbacVersionView, description = "The role exists (tenant-wide: it is held within services)"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create_role<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiJson(body): ApiJson<RbacNameBody>,
) -> ApiResult<(StatusCode, Json<RbacVersionView>)> {
    create(&api, &principal, &client, RbacKind::Role, body).await
}

/// List the tenant's roles.
#[utoipa::path(get, path = "/v1/admin/roles", tag = "rbac",
    security(("session" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<String>, description = "The tenant's roles, sorted"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_roles<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
) -> ApiResult<Json<Vec<String>>> {
    list(&api, &principal, RbacKind::Role).await
}

/// Delete a role, with its grants and assignments.
#[utoipa::path(delete, path = "/v1/admin/roles/{role}", tag = "rbac",
    security(("session" = []), ("cookie" = [])),
    params(("role" = String, Path, description = "The role")),
    responses((status = 204, description = "It is gone, with its grants and assignments"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn delete_role<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiPath(role): ApiPath<RbacName>,
) -> ApiResult<StatusCode> {
    delete(&api, &principal, &client, RbacKind::Role, role).await
}

/// Create a permission: holding it in a service allows the action of that name there.
#[utoipa::path(post, path = "/v1/admin/permissions", tag = "rbac",
    security(("session" = []), ("cookie" = [])),
    request_body = RbacNameBody,
    responses((status = 201, body = RbacVersionView, description = "The permission exists: holding it in a service allows the action of that name there"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create_permission<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiJson(body): ApiJson<RbacNameBody>,
) -> ApiResult<(StatusCode, Json<RbacVersionView>)> {
    create(&api, &principal, &client, RbacKind::Permission, body).await
}

/// List the tenant's permissions.
#[utoipa::path(get, path = "/v1/admin/permissions", tag = "rbac",
    security(("session" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<String>, description = "The tenant's permissions, sorted"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_permissions<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
) -> ApiResult<Json<Vec<String>>> {
    list(&api, &principal, RbacKind::Permission).await
}

/// Delete a permission, with every grant of it.
#[utoipa::path(delete, path = "/v1/admin/permissions/{permission}", tag = "rbac",
    security(("session" = []), ("cookie" = [])),
    params(("permission" = String, Path, description = "The permission")),
    responses((status = 204, description = "It is gone, with every grant of it"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn delete_permission<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiPath(permission): ApiPath<RbacName>,
) -> ApiResult<StatusCode> {
    delete(&api, &principal, &client, RbacKind::Permission, permission).await
}

/// The grants of `role` (404 for an unknown role), those applying in
/// `service` only when it is given.
async fn grants_of<S: ApiStore>(
    api: &Api<S>,
    tenant: TenantId,
    role: &RbacName,
    service: Option<&RbacName>,
) -> ApiResult<Vec<RoleGrantView>> {
    ensure_exists(api, tenant, RbacKind::Role, role).await?;
    if let Some(s) = service {
        ensure_exists(api, tenant, RbacKind::Service, s).await?;
    }
    let grants = api
        .authn()
        .store()
        .role_permissions(tenant, role)
        .await
        .map_err(Error::store)?;
    Ok(grants
        .iter()
        .filter(|g| service.is_none_or(|s| g.service.as_ref().is_none_or(|gs| gs == s)))
        .map(RoleGrantView::from)
        .collect())
}

/// List a role's grants.
#[utoipa::path(get, path = "/v1/admin/roles/{role}/permissions", tag = "rbac",
    security(("session" = []), ("cookie" = [])),
    params(("role" = String, Path, description = "The role")),
    responses((status = 200, body = Vec<RoleGrantView>, description = "Every grant of the role"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn role_grants<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
    ApiPath(role): ApiPath<RbacName>,
) -> ApiResult<Json<Vec<RoleGrantView>>> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManageRbac)
        .await?;
    Ok(Json(grants_of(&api, tenant, &role, None).await?))
}

/// The admin check, then one grant change of `permission` to `role`.
async fn role_grant<S: ApiStore>(
    api: &Api<S>,
    principal: &Principal,
    client: &countersign_core::ClientInfo,
    grant: RoleGrant,
    revoke: bool,
) -> ApiResult<u64> {
    api.require_admin(principal, AdminAction::ManageRbac)
        .await?;
    let change = if revoke {
        RbacChange::Revoke(grant)
    } else {
        RbacChange::Grant(grant)
    };
    apply(api, principal, client, change).await
}

/// Grant a permission to a role in every service the role is held in.
#[utoipa::path(put, path = "/v1/admin/roles/{role}/permissions/{permission}", tag = "rbac",
    security(("session" = []), ("cookie" = [])),
    params(("role" = String, Path, description = "The role"),
        ("permission" = String, Path, description = "The permission")),
    responses((status = 200, body = RbacVersionView, description = "The role holds the permission in every service it is held in"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn grant_everywhere<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiPath((role, permission)): ApiPath<(RbacName, RbacName)>,
) -> ApiResult<Json<RbacVersionView>> {
    let grant = RoleGrant {
        role,
        permission,
        service: None,
    };
    let version = role_grant(&api, &principal, &client, grant, false).await?;
    Ok(Json(RbacVersionView { version }))
}

/// Revoke a role's grant in every service.
#[utoipa::path(delete, path = "/v1/admin/roles/{role}/permissions/{permission}", tag = "rbac",
    security(("session" = []), ("cookie" = [])),
    params(("role" = String, Path, description = "The role"),
        ("permission" = String, Path, description = "The permission")),
    responses((status = 204, description = "The grant in every service is gone (grants limited to a service stay)"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn revoke_everywhere<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiPath((role, permission)): ApiPath<(RbacName, RbacName)>,
) -> ApiResult<StatusCode> {
    let grant = RoleGrant {
        role,
        permission,
        service: None,
    };
    role_grant(&api, &principal, &client, grant, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List the roles of a service: held in it, or granted a permission limited to it.
#[utoipa::path(get, path = "/v1/admin/services/{service}/roles", tag = "rbac",
    security(("session" = []), ("cookie" = [])),
    params(("service" = String, Path, description = "The service")),
    responses((status = 200, body = Vec<String>, description = "The roles held by someone in the service or granted a permission limited to it"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn service_roles<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
    ApiPath(service): ApiPath<RbacName>,
) -> ApiResult<Json<Vec<String>>> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManageRbac)
        .await?;
    ensure_exists(&api, tenant, RbacKind::Service, &service).await?;
    let roles = api
        .authn()
        .store()
        .service_roles(tenant, &service)
        .await
        .map_err(Error::store)?;
    Ok(Json(names(&roles)))
}

/// List a role's grants that apply in a service.
#[utoipa::path(get, path = "/v1/admin/services/{service}/roles/{role}/permissions", tag = "rbac",
    security(("session" = []), ("cookie" = [])),
    params(("service" = String, Path, description = "The service"),
        ("role" = String, Path, description = "The role")),
    responses((status = 200, body = Vec<RoleGrantView>, description = "The role's grants that apply in the service: those limited to it and those in every service"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn role_grants_in<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
    ApiPath((service, role)): ApiPath<(RbacName, RbacName)>,
) -> ApiResult<Json<Vec<RoleGrantView>>> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManageRbac)
        .await?;
    Ok(Json(grants_of(&api, tenant, &role, Some(&service)).await?))
}

/// Grant a permission to a role within one service.
#[utoipa::path(put, path = "/v1/admin/services/{service}/roles/{role}/permissions/{permission}", tag = "rbac",
    security(("session" = []), ("cookie" = [])),
    params(("service" = String, Path, description = "The service the grant is limited to"),
        ("role" = String, Path, description = "The role"),
        ("permission" = String, Path, description = "The permission")),
    responses((status = 200, body = RbacVersionView, description = "The role holds the permission in that service"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn grant_in<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiPath((service, role, permission)): ApiPath<(RbacName, RbacName, RbacName)>,
) -> ApiResult<Json<RbacVersionView>> {
    let grant = RoleGrant {
        role,
        permission,
        service: Some(service),
    };
    let version = role_grant(&api, &principal, &client, grant, false).await?;
    Ok(Json(RbacVersionView { version }))
}

/// Revoke a role's grant limited to one service.
#[utoipa::path(delete, path = "/v1/admin/services/{service}/roles/{role}/permissions/{permission}", tag = "rbac",
    security(("session" = []), ("cookie" = [])),
    params(("service" = String, Path, description = "The service the grant is limited to"),
        ("role" = String, Path, description = "The role"),
        ("permission" = String, Path, description = "The permission")),
    responses((status = 204, description = "The grant limited to that service is gone"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn revoke_in<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiPath((service, role, permission)): ApiPath<(RbacName, RbacName, RbacName)>,
) -> ApiResult<StatusCode> {
    let grant = RoleGrant {
        role,
        permission,
        service: Some(service),
    };
    role_grant(&api, &principal, &client, grant, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List the users holding a role in a service.
#[utoipa::path(get, path = "/v1/admin/services/{service}/roles/{role}/users", tag = "rbac",
    security(("session" = []), ("cookie" = [])),
    params(("service" = String, Path, description = "The service"),
        ("role" = String, Path, description = "The role")),
    responses((status = 200, body = Vec<uuid::Uuid>, description = "The users holding the role in the service"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn role_holders<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
    ApiPath((service, role)): ApiPath<(RbacName, RbacName)>,
) -> ApiResult<Json<Vec<Uuid>>> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManageRbac)
        .await?;
    ensure_exists(&api, tenant, RbacKind::Service, &service).await?;
    ensure_exists(&api, tenant, RbacKind::Role, &role).await?;
    let users = api
        .authn()
        .store()
        .role_holders(tenant, &role, &service)
        .await
        .map_err(Error::store)?;
    Ok(Json(users.iter().map(|u| *u.as_uuid()).collect()))
}

/// Read the tenant's whole RBAC model at one version.
#[utoipa::path(get, path = "/v1/admin/rbac", tag = "rbac",
    security(("session" = []), ("cookie" = [])),
    responses((status = 200, body = RbacSnapshotView, description = "The whole model, read at one version"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn snapshot<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
) -> ApiResult<Json<RbacSnapshotView>> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManageRbac)
        .await?;
    let s = api
        .authn()
        .store()
        .rbac_snapshot(tenant)
        .await
        .map_err(Error::store)?;
    Ok(Json(RbacSnapshotView {
        version: s.version,
        services: names(&s.services),
        roles: names(&s.roles),
        permissions: names(&s.permissions),
        role_grants: s.role_grants.iter().map(RoleGrantView::from).collect(),
        assignments: s
            .assignments
            .iter()
            .map(|a: &RoleAssignment| AssignmentView {
                user: *a.user.as_uuid(),
                role: a.role.to_string(),
                service: a.service.to_string(),
            })
            .collect(),
        direct_grants: s
            .direct_grants
            .iter()
            .map(|g: &DirectGrant| DirectGrantView {
                user: *g.user.as_uuid(),
                permission: g.permission.to_string(),
                service: g.service.to_string(),
            })
            .collect(),
    }))
}
