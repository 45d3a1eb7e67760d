//! The tenant's Cedar model over HTTP, and decisions.
//!
//! Under `/v1/admin/policies` (each endpoint asks for
//! [`AdminAction::ManagePolicies`] first and works in the caller's tenant
//! only): read the schema, policies and template links with their
//! version; replace them by compare-and-save (validated first: a refused
//! model is a 400 with Cedar's diagnostics and writes nothing; a stale
//! version is a 409); validate without saving; link and unlink templates.
//!
//! `POST /v1/authorize`: may the signed-in caller do this action on this
//! resource of its tenant? Decided by the same engine as everything else;
//! a denial that a fresher or stronger authentication would turn into an
//! allow is the 403 `step_up_required` problem with what would satisfy it.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use chrono::{DateTime, Utc};
use countersign_core::authz::{EntityUid, Resource};
use countersign_core::{AdminAction, AuthzError, AuthzModel, Error, TemplateLink, TenantId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{OpenApi, ToSchema};

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, Client, Principal};
use crate::{Api, ApiStore};

/// The routes of this group.
pub(crate) fn routes<S: ApiStore>() -> Router<Api<S>> {
    Router::new()
        .route(
            "/v1/admin/policies",
            get(read_model::<S>).put(save_model::<S>),
        )
        .route("/v1/admin/policies/validate", post(validate::<S>))
        .route("/v1/admin/policies/links", post(link::<S>))
        .route("/v1/admin/policies/links/{id}", delete(unlink::<S>))
        .route("/v1/authorize", post(authorize::<S>))
}

/// The OpenAPI paths and schemas of this group.
#[derive(OpenApi)]
#[openapi(
    paths(read_model, save_model, validate, link, unlink, authorize),
    components(schemas(
        PolicyDocumentView,
        TemplateLinkBody,
        SavePoliciesBody,
        ValidatePoliciesBody,
        ValidationView,
        PolicyVersionView,
        AuthorizeBody,
        DecisionView
    ))
)]
pub(crate) struct Doc;

/// The longest entity uid `/v1/authorize` parses, in bytes.
const MAX_UID_BYTES: usize = 1024;

/// A link of a template: a policy of its own, the template with its
/// `?principal` and `?resource` slots filled.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TemplateLinkBody {
    /// The linked policy's id (not starting with `countersign::`).
    id: String,
    /// The template's id (its `@id` annotation).
    template: String,
    /// The `?principal` slot, an entity uid in Cedar syntax
    /// (`Countersign::User::"…"`), if the template has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    principal: Option<String>,
    /// The `?resource` slot, if the template has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resource: Option<String>,
}

impl From<TemplateLinkBody> for TemplateLink {
    fn from(b: TemplateLinkBody) -> Self {
        TemplateLink {
            id: b.id,
            template: b.template,
            principal: b.principal,
            resource: b.resource,
        }
    }
}

impl From<&TemplateLink> for TemplateLinkBody {
    fn from(l: &TemplateLink) -> Self {
        TemplateLinkBody {
            id: l.id.clone(),
            template: l.template.clone(),
            principal: l.principal.clone(),
            resource: l.resource.clone(),
        }
    }
}

/// The tenant's model as stored (empty, with no version, when it has
/// none: it then decides with countersign's base model alone).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PolicyDocumentView {
    /// The tenant's Cedar schema (its own types and actions; countersign's
    /// `Countersign` namespace is added to it).
    schema: String,
    /// The tenant's Cedar policies and templates.
    policies: String,
    /// The template links.
    links: Vec<TemplateLinkBody>,
    /// Its version: pass it back as `expected_version` to replace it.
    /// Absent when the tenant has no model.
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
    /// When it was saved.
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_at: Option<DateTime<Utc>>,
}

/// A new model for the tenant.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SavePoliciesBody {
    /// The Cedar schema (Cedar schema syntax).
    schema: String,
    /// The Cedar policies and templates.
    policies: String,
    /// The template links; absent: keep the stored ones (they must still
    /// validate with the new policies).
    #[serde(default)]
    links: Option<Vec<TemplateLinkBody>>,
    /// The version being replaced, as read; absent or null: the tenant
    /// has no model yet. A stale version is a 409 and changes nothing.
    #[serde(default)]
    expected_version: Option<u64>,
}

/// A model to check without saving it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ValidatePoliciesBody {
    /// The Cedar schema.
    schema: String,
    /// The Cedar policies and templates.
    policies: String,
    /// Template links to check with them.
    #[serde(default)]
    links: Vec<TemplateLinkBody>,
}

/// Whether a model would be saved.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ValidationView {
    /// True when it parses and validates.
    valid: bool,
    /// Cedar's diagnostics otherwise.
    errors: Vec<String>,
}

/// The model's version after a save.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PolicyVersionView {
    /// The saved version.
    version: u64,
}

/// A question for the engine, about the caller.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthorizeBody {
    /// The action's entity uid in Cedar syntax (`App::Action::"read"`).
    action: String,
    /// The resource's entity uid in Cedar syntax (`App::Document::"42"`,
    /// `Countersign::Service::"docs"`), in the caller's tenant.
    resource: String,
    /// The request's context, as the action's context type declares it
    /// (countersign fills `authentication` and `grants` itself).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    context: Option<Map<String, Value>>,
}

/// A decision.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DecisionView {
    /// Whether the caller may do it.
    allowed: bool,
    /// The ids of the policies that determined it (empty for a default
    /// deny).
    reasons: Vec<String>,
    /// Evaluation errors and malformed requests; any error denies.
    errors: Vec<String>,
}

/// A refused model is a 400 with Cedar's diagnostics in the detail; other
/// errors as usual (a stale version is a 409).
fn model_error(e: Error) -> ApiError {
    match e {
        Error::Authz(refusal) => ApiError::invalid(refusal.to_string()),
        other => other.into(),
    }
}

/// Cedar's diagnostics of a refusal, one string each.
fn diagnostics(refusal: AuthzError) -> Vec<String> {
    match refusal {
        AuthzError::Schema { diagnostics }
        | AuthzError::Parse { diagnostics }
        | AuthzError::Validation { diagnostics } => diagnostics,
        other @ (AuthzError::TooLarge { .. } | AuthzError::Data(_) | AuthzError::Entities(_)) => {
            vec![other.to_string()]
        }
    }
}

/// The tenant's stored links (none when it has no model).
async fn stored_links<S: ApiStore>(api: &Api<S>, tenant: TenantId) -> ApiResult<Vec<TemplateLink>> {
    let doc = api
        .authn()
        .store()
        .policy_document(tenant)
        .await
        .map_err(Error::store)?;
    Ok(doc.map(|d| d.links).unwrap_or_default())
}

/// Read the tenant's Cedar schema, policies and template links, with their version.
#[utoipa::path(get, path = "/v1/admin/policies", tag = "policies",
    security(("session" = []), ("cookie" = [])),
    responses((status = 200, body = PolicyDocumentView, description = "The tenant's model"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn read_model<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
) -> ApiResult<Json<PolicyDocumentView>> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManagePolicies)
        .await?;
    let doc = api
        .authn()
        .store()
        .policy_document(tenant)
        .await
        .map_err(Error::store)?;
    Ok(Json(match doc {
        Some(d) => PolicyDocumentView {
            links: d.links.iter().map(TemplateLinkBody::from).collect(),
            schema: d.schema,
            policies: d.policies,
            version: Some(d.version),
            updated_at: Some(d.updated_at),
        },
        None => PolicyDocumentView {
            schema: String::new(),
            policies: String::new(),
            links: Vec::new(),
            version: None,
            updated_at: None,
        },
    }))
}

/// Replace the tenant's Cedar model (validated first; compare-and-save on the version).
#[utoipa::path(put, path = "/v1/admin/policies", tag = "policies",
    security(("session" = []), ("cookie" = [])),
    request_body = SavePoliciesBody,
    responses((status = 200, body = PolicyVersionView, description = "Validated and saved; decisions use it from now on"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Refused, with Cedar's diagnostics; nothing saved"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`expected_version` is not the stored version; nothing saved"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn save_model<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiJson(body): ApiJson<SavePoliciesBody>,
) -> ApiResult<Json<PolicyVersionView>> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManagePolicies)
        .await?;
    let links: Vec<TemplateLink> = match body.links {
        Some(links) => links.into_iter().map(TemplateLink::from).collect(),
        // Read before the save; if the model changes meanwhile, the
        // compare-and-save on `expected_version` refuses this one.
        None => stored_links(&api, tenant).await?,
    };
    let version = api
        .authz()
        .save_model_with_links(
            tenant,
            &body.schema,
            &body.policies,
            &links,
            body.expected_version,
            &client,
        )
        .await
        .map_err(model_error)?;
    Ok(Json(PolicyVersionView { version }))
}

/// Check a Cedar model without saving it.
#[utoipa::path(post, path = "/v1/admin/policies/validate", tag = "policies",
    security(("session" = []), ("cookie" = [])),
    request_body = ValidatePoliciesBody,
    responses((status = 200, body = ValidationView, description = "Whether the model would be saved; nothing is"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn validate<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
    ApiJson(body): ApiJson<ValidatePoliciesBody>,
) -> ApiResult<Json<ValidationView>> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManagePolicies)
        .await?;
    let links: Vec<TemplateLink> = body.links.into_iter().map(TemplateLink::from).collect();
    let view = match AuthzModel::with_links(tenant, 0, &body.schema, &body.policies, &links) {
        Ok(_) => ValidationView {
            valid: true,
            errors: Vec::new(),
        },
        Err(refusal) => ValidationView {
            valid: false,
            errors: diagnostics(refusal),
        },
    };
    Ok(Json(view))
}

/// Link a template of the stored model.
#[utoipa::path(post, path = "/v1/admin/policies/links", tag = "policies",
    security(("session" = []), ("cookie" = [])),
    request_body = TemplateLinkBody,
    responses((status = 200, body = PolicyVersionView, description = "Linked (replacing a link of the same id), as a new version of the model"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn link<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiJson(body): ApiJson<TemplateLinkBody>,
) -> ApiResult<Json<PolicyVersionView>> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManagePolicies)
        .await?;
    let version = api
        .authz()
        .link_template(tenant, body.into(), &client)
        .await
        .map_err(model_error)?;
    Ok(Json(PolicyVersionView { version }))
}

/// Remove a template link.
#[utoipa::path(delete, path = "/v1/admin/policies/links/{id}", tag = "policies",
    security(("session" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "The link's id")),
    responses((status = 204, description = "Unlinked, as a new version of the model"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn unlink<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let tenant = api
        .require_admin(&principal, AdminAction::ManagePolicies)
        .await?;
    let no_link = || ApiError::not_found(format!("no template link `{id}`"));
    // Without a model there is no link to remove.
    let stored = api
        .authn()
        .store()
        .policy_document(tenant)
        .await
        .map_err(Error::store)?;
    if !stored.is_some_and(|d| d.links.iter().any(|l| l.id == id)) {
        return Err(no_link());
    }
    let found = api
        .authz()
        .unlink_template(tenant, &id, &client)
        .await
        .map_err(model_error)?;
    if found {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_link())
    }
}

/// An entity uid from a request (400 when it is not one).
fn uid(what: &str, text: &str) -> ApiResult<EntityUid> {
    if text.len() > MAX_UID_BYTES {
        return Err(ApiError::invalid(format!(
            "the {what} uid is over {MAX_UID_BYTES} bytes"
        )));
    }
    text.parse().map_err(|_| {
        ApiError::invalid(format!(
            "the {what} must be an entity uid in Cedar syntax, such as `App::Action::\"read\"`"
        ))
    })
}

/// Ask whether the caller may do an action on a resource of its tenant.
#[utoipa::path(post, path = "/v1/authorize", tag = "authorization",
    security(("session" = []), ("cookie" = [])),
    request_body = AuthorizeBody,
    responses((status = 200, body = DecisionView, description = "Decided: allowed or not"),
        (status = 403, body = Problem, content_type = "application/problem+json",
            description = "`step_up_required`: denied, but a step-up meeting `step_up` would allow it (step up, then ask again)"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn authorize<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
    ApiJson(body): ApiJson<AuthorizeBody>,
) -> ApiResult<Json<DecisionView>> {
    let action = uid("action", &body.action)?;
    let resource = Resource {
        tenant: principal.tenant(),
        uid: uid("resource", &body.resource)?,
    };
    let decision = api
        .authz()
        .decide(
            principal.auth(),
            &action,
            &resource,
            body.context.unwrap_or_default(),
        )
        .await?;
    if !decision.allowed
        && let Some(step_up) = &decision.step_up
    {
        return Err(ApiError::step_up_required(step_up));
    }
    Ok(Json(DecisionView {
        allowed: decision.allowed,
        reasons: decision.reasons,
        errors: decision.errors,
    }))
}
