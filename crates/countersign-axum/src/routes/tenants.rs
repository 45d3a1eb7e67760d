//! The caller's tenant (`/v1/admin/tenant`: its settings, its signing
//! key, its methods) and the platform operator's tenants
//! (`/v1/admin/tenants`: provisioning).
//!
//! Every handler first asks the Cedar engine ([`Api::require_admin`]):
//! `manage_tenant` for the caller's own tenant, `manage_tenants` for
//! provisioning. The engine decides only in the caller's own tenant, so
//! `manage_tenants` held in the operator's tenant is what lets the
//! operator create and read other tenants; no tenant administrator holds
//! it unless granted explicitly. A tenant may be provisioned with its first
//! administrator, whose generated password the answer carries once.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use chrono::{DateTime, Utc};
use countersign_core::factor::generate_password;
use countersign_core::{
    AccountState, AdminAction, ClientInfo, Error, Identifier, MethodScope, NewTenant, NewUser,
    Tenant, TenantId,
};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, Client, Principal};
use crate::{Api, ApiStore};

/// The tenant and tenants routes.
pub(crate) fn routes<S: ApiStore>() -> Router<Api<S>> {
    Router::new()
        .route("/v1/admin/tenant", get(current::<S>))
        .route("/v1/admin/tenant/keys/rotate", post(rotate_key::<S>))
        .route("/v1/admin/tenant/methods/{name}", patch(set_method::<S>))
        .route("/v1/admin/tenants", post(provision::<S>))
        .route("/v1/admin/tenants/{slug}", get(by_slug::<S>))
}

/// The OpenAPI paths and schemas of the tenant routes.
#[derive(OpenApi)]
#[openapi(
    paths(current, rotate_key, set_method, provision, by_slug),
    components(schemas(
        TenantView,
        PolicySummary,
        LockoutSummary,
        SessionSummary,
        AccessTokenSummary,
        ProfileSummary,
        MethodView,
        RotatedKey,
        MethodBody,
        NewTenantBody,
        FirstAdminBody,
        ProvisionedView,
        FirstAdminView
    ))
)]
pub(crate) struct Doc;

/// A tenant, its policy in brief, its factors and its methods.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TenantView {
    /// Its id.
    id: Uuid,
    /// Its slug (the `{tenant}` of `/v1/tenants/{tenant}/...`).
    slug: String,
    /// Its display name.
    name: String,
    /// When it was provisioned.
    created_at: DateTime<Utc>,
    /// Its security policy, in brief.
    policy: PolicySummary,
    /// The factors it adopts (`password`, `totp`, ...).
    factors: Vec<String>,
    /// Its sign-in methods.
    methods: Vec<MethodView>,
}

/// A tenant's security policy, in brief.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PolicySummary {
    /// How failed attempts lock an account.
    lockout: LockoutSummary,
    /// How long sessions and tokens live.
    sessions: SessionSummary,
    /// The shape of users' profiles.
    profile: ProfileSummary,
}

/// The lockout policy.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LockoutSummary {
    /// Failures that lock an account.
    max_attempts: u32,
    /// How long the counting window stays open, in seconds.
    window_seconds: u64,
    /// How long a lock lasts, in seconds.
    lock_seconds: u64,
}

/// The session policy.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionSummary {
    /// An unused session ends after this many seconds.
    idle_timeout_seconds: u64,
    /// A session ends this many seconds after sign-in, however active.
    absolute_lifetime_seconds: u64,
    /// Whether sign-ins get refresh tokens.
    refresh_tokens: bool,
    /// Signed access tokens, if the tenant issues them.
    #[serde(skip_serializing_if = "Option::is_none")]
    access_tokens: Option<AccessTokenSummary>,
}

/// The access-token policy.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AccessTokenSummary {
    /// The `aud` claim.
    audience: String,
    /// Lifetime of one token, in seconds.
    ttl_seconds: u64,
    /// `EdDSA`, `ES256` or `RS256`.
    algorithm: &'static str,
}

/// The profile schema.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProfileSummary {
    /// The allowed tiers (empty: any).
    tiers: Vec<String>,
    /// The tier new users get.
    #[serde(skip_serializing_if = "Option::is_none")]
    default_tier: Option<String>,
    /// The declared attributes' names.
    attributes: Vec<String>,
}

/// A sign-in method of the tenant.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MethodView {
    /// Its name.
    name: String,
    /// Whether sign-ins may use it.
    enabled: bool,
    /// Its steps in order; each lists the factors that satisfy it.
    steps: Vec<Vec<String>>,
}

/// A new signing key.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RotatedKey {
    /// Its key id; older keys keep verifying for one token lifetime.
    kid: String,
}

/// Enable or disable a method.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MethodBody {
    /// Whether sign-ins may use it.
    enabled: bool,
}

/// A new tenant whose users sign in with a password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTenantBody {
    /// Its unique slug.
    slug: String,
    /// Its display name.
    name: String,
    /// Its first administrator, if any: an active user with a generated
    /// password (in the answer, once) and every administrative permission
    /// in the new tenant but `manage_tenants`.
    #[serde(default)]
    admin: Option<FirstAdminBody>,
}

/// The first administrator of a new tenant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FirstAdminBody {
    /// The identifier they sign in with.
    identifier: String,
}

/// A provisioned tenant, and its first administrator if one was asked for.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProvisionedView {
    /// The tenant.
    #[serde(flatten)]
    tenant: TenantView,
    /// Its first administrator.
    #[serde(skip_serializing_if = "Option::is_none")]
    admin: Option<FirstAdminView>,
}

/// A new tenant's first administrator, with their one-time credentials:
/// this answer is the only place the password appears (it is stored only
/// as a hash, and the answer is marked `no-store`).
#[derive(Serialize, ToSchema)]
pub(crate) struct FirstAdminView {
    /// Their user id.
    id: Uuid,
    /// The identifier they sign in with.
    identifier: String,
    /// Their generated password, to pass on to them.
    password: String,
}

impl std::fmt::Debug for FirstAdminView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirstAdminView")
            .field("id", &self.id)
            .field("identifier", &self.identifier)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The tenant with id `tenant` (404 when there is none).
pub(crate) async fn tenant_row<S: ApiStore>(api: &Api<S>, tenant: TenantId) -> ApiResult<Tenant> {
    api.authn()
        .store()
        .get_tenant(tenant)
        .await
        .map_err(|e| ApiError::from(Error::store(e)))?
        .ok_or_else(|| ApiError::from(Error::TenantNotFound))
}

/// `t` with its factors and methods (two store reads).
async fn view<S: ApiStore>(api: &Api<S>, t: &Tenant) -> ApiResult<TenantView> {
    let store = api.authn().store();
    let factors = store
        .tenant_factors(t.id)
        .await
        .map_err(|e| ApiError::from(Error::store(e)))?
        .iter()
        .map(|f| f.kind().as_str().to_owned())
        .collect();
    let methods = store
        .methods(MethodScope::Tenant(t.id))
        .await
        .map_err(|e| ApiError::from(Error::store(e)))?
        .iter()
        .map(|r| MethodView {
            name: r.method.name.as_str().to_owned(),
            enabled: r.enabled,
            steps: r
                .method
                .steps
                .iter()
                .map(|s| s.kinds().iter().map(|k| k.as_str().to_owned()).collect())
                .collect(),
        })
        .collect();
    let p = &t.policy;
    let policy = PolicySummary {
        lockout: LockoutSummary {
            max_attempts: p.lockout.max_attempts,
            window_seconds: p.lockout.window.as_secs(),
            lock_seconds: p.lockout.lock_duration.as_secs(),
        },
        sessions: SessionSummary {
            idle_timeout_seconds: p.sessions.idle_timeout.as_secs(),
            absolute_lifetime_seconds: p.sessions.absolute_lifetime.as_secs(),
            refresh_tokens: p.sessions.refresh_tokens,
            access_tokens: p
                .sessions
                .access_tokens
                .as_ref()
                .map(|a| AccessTokenSummary {
                    audience: a.audience.clone(),
                    ttl_seconds: a.ttl.as_secs(),
                    algorithm: a.algorithm.as_str(),
                }),
        },
        profile: ProfileSummary {
            tiers: p
                .profile
                .tiers
                .iter()
                .map(|t| t.as_str().to_owned())
                .collect(),
            default_tier: p
                .profile
                .default_tier
                .as_ref()
                .map(|t| t.as_str().to_owned()),
            attributes: p
                .profile
                .attributes
                .iter()
                .map(|a| a.name.clone())
                .collect(),
        },
    };
    Ok(TenantView {
        id: *t.id.as_uuid(),
        slug: t.slug.as_str().to_owned(),
        name: t.name.clone(),
        created_at: t.created_at,
        policy,
        factors,
        methods,
    })
}

#[utoipa::path(get, path = "/v1/admin/tenant", tag = "admin",
    security(("session" = []), ("cookie" = [])),
    responses((status = 200, body = TenantView, description = "The caller's tenant"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn current<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
) -> ApiResult<Json<TenantView>> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManageTenant)
        .await?;
    let t = tenant_row(&api, tenant).await?;
    Ok(Json(view(&api, &t).await?))
}

#[utoipa::path(post, path = "/v1/admin/tenant/keys/rotate", tag = "admin",
    security(("session" = []), ("cookie" = [])),
    responses((status = 200, body = RotatedKey, description = "Access tokens are signed with a new key from now on"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn rotate_key<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
) -> ApiResult<Json<RotatedKey>> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManageTenant)
        .await?;
    let kid = api.sessions().rotate_signing_key(tenant).await?;
    Ok(Json(RotatedKey { kid }))
}

#[utoipa::path(patch, path = "/v1/admin/tenant/methods/{name}", tag = "admin",
    security(("session" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "A method of the caller's tenant")),
    request_body = MethodBody,
    responses((status = 204, description = "Enabled or disabled"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Disabling the last enabled method, or enabling one whose factor is not adopted"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn set_method<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<MethodBody>,
) -> ApiResult<StatusCode> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManageTenant)
        .await?;
    let found = api
        .authn()
        .set_method_enabled(tenant, &name, body.enabled, &client)
        .await?;
    if !found {
        return Err(ApiError::not_found("no such method"));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/admin/tenants", tag = "admin",
    security(("session" = []), ("cookie" = [])),
    request_body = NewTenantBody,
    responses((status = 201, body = ProvisionedView, description = "A tenant whose users sign in with a password, and its first administrator if one was asked for (with their password: shown once)"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The slug is taken"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn provision<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
    Client(client): Client,
    ApiJson(body): ApiJson<NewTenantBody>,
) -> ApiResult<Response> {
    api.require_admin(&principal, AdminAction::ManageTenants)
        .await?;
    // Every input is checked before the first write: a bad slug, name or
    // identifier provisions nothing. The generated password meets a new
    // tenant's rules.
    let spec = NewTenant::password_only(&body.slug, &body.name)?;
    let identifier = body
        .admin
        .as_ref()
        .map(|a| Identifier::parse(&a.identifier))
        .transpose()
        .map_err(Error::from)?;
    let t = api.authn().provision_tenant(spec).await?;
    let admin = match identifier {
        Some(identifier) => Some(first_admin(&api, &t, identifier, &client).await?),
        None => None,
    };
    let view = ProvisionedView {
        tenant: view(&api, &t).await?,
        admin,
    };
    let mut response = (StatusCode::CREATED, Json(view)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Register `identifier` in the new tenant `t`, active, with a generated
/// password, and make them its administrator.
async fn first_admin<S: ApiStore>(
    api: &Api<S>,
    t: &Tenant,
    identifier: Identifier,
    client: &ClientInfo,
) -> ApiResult<FirstAdminView> {
    let password = generate_password(api.authn().env())?;
    let new = NewUser {
        identifier: identifier.as_str(),
        password: Some(&password),
        state: Some(AccountState::Active),
        ..NewUser::default()
    };
    let user = api.authn().register_user(t.id, new, client).await?;
    api.authz()
        .grant_tenant_admin(t.id, user.id, client)
        .await?;
    Ok(FirstAdminView {
        id: *user.id.as_uuid(),
        identifier: user.identifier.as_str().to_owned(),
        password,
    })
}

#[utoipa::path(get, path = "/v1/admin/tenants/{slug}", tag = "admin",
    security(("session" = []), ("cookie" = [])),
    params(("slug" = String, Path, description = "Any tenant's slug")),
    responses((status = 200, body = TenantView), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn by_slug<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<TenantView>> {
    api.require_admin(&principal, AdminAction::ManageTenants)
        .await?;
    let t = api.authn().tenant_by_slug(&slug).await?;
    Ok(Json(view(&api, &t).await?))
}

#[cfg(test)]
mod tests {
    use super::FirstAdminView;

    /// The first administrator's password never reaches a log line
    /// through `Debug`.
    #[test]
    fn the_first_admins_password_is_redacted_in_debug() {
        let view = FirstAdminView {
            id: uuid::Uuid::nil(),
            identifier: "bill@initech.com".to_owned(),
            password: "Zq3-secret-generated_pw".to_owned(),
        };
        let shown = format!("{view:?}");
        assert!(shown.contains("bill@initech.com"), "{shown}");
        assert!(!shown.contains("Zq3-secret"), "{shown}");
    }
}
