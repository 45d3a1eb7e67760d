//! Permission checks: the Cedar engine asked for the signed-in principal.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use countersign_core::authz::{Decision, EntityUid, Resource};
use countersign_core::{AdminAction, TenantId};
use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::extract::Principal;
use crate::{Api, ApiStore};

/// A permission an application's route requires: a Cedar action on a
/// resource of the principal's tenant.
///
/// Use it in a handler ([`Permission::check`]) or as a route layer
/// ([`require`]). A denial that a stronger or fresher authentication would
/// turn into an allow is a 403 problem with code `step_up_required` and the
/// requirement in its `step_up` member; any other denial is a 403
/// `forbidden`; a missing or invalid session is a 401.
#[derive(Debug, Clone)]
pub struct Permission {
    action: EntityUid,
    resource: EntityUid,
}

impl Permission {
    /// The permission to do `action` (a Cedar uid such as
    /// `Action::"read"`) on `resource` (such as `Doc::"42"`).
    pub fn new(action: &str, resource: &str) -> ApiResult<Self> {
        let action = action
            .parse()
            .map_err(|_| ApiError::invalid(format!("invalid action uid `{action}`")))?;
        let resource = resource
            .parse()
            .map_err(|_| ApiError::invalid(format!("invalid resource uid `{resource}`")))?;
        Ok(Permission { action, resource })
    }

    /// Whether `principal` holds it; `Ok` with the allowing decision, or
    /// the 403 problem.
    pub async fn check<S: ApiStore>(
        &self,
        api: &Api<S>,
        principal: &Principal,
    ) -> ApiResult<Decision> {
        api.authorize(principal, &self.action, &self.resource, Map::new())
            .await
    }
}

/// Middleware for `route_layer(from_fn_with_state((api, permission),
/// require::<S>))`: the request goes on only when the principal holds the
/// permission.
pub async fn require<S: ApiStore>(
    State((api, permission)): State<(Api<S>, Permission)>,
    principal: Principal,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    permission.check(&api, &principal).await?;
    Ok(next.run(request).await)
}

impl<S: ApiStore> Api<S> {
    /// The decision for `principal` doing `action` on `resource` in its
    /// tenant with `context`: `Ok` when allowed, a 403 problem otherwise
    /// (`step_up_required` with the requirement when a step-up would
    /// allow it).
    pub async fn authorize(
        &self,
        principal: &Principal,
        action: &EntityUid,
        resource: &EntityUid,
        context: Map<String, Value>,
    ) -> ApiResult<Decision> {
        let resource = Resource {
            tenant: principal.tenant(),
            uid: resource.clone(),
        };
        let decision = self
            .authz()
            .decide(principal.auth(), action, &resource, context)
            .await?;
        allowed(decision)
    }

    /// Whether `principal` may do countersign's administrative `action` in
    /// its own tenant (the check before every administrative endpoint).
    pub async fn require_admin(
        &self,
        principal: &Principal,
        action: AdminAction,
    ) -> ApiResult<TenantId> {
        let decision = self.authz().decide_admin(principal.auth(), action).await?;
        allowed(decision)?;
        Ok(principal.tenant())
    }
}

/// `Ok(decision)` when it allows; the right 403 otherwise.
pub(crate) fn allowed(decision: Decision) -> ApiResult<Decision> {
    if decision.allowed {
        return Ok(decision);
    }
    match &decision.step_up {
        Some(step_up) => Err(ApiError::step_up_required(step_up)),
        None => Err(ApiError::forbidden()),
    }
}
