//! Decisions: tenant isolation around Cedar, the authentication context,
//! errors that deny, and step-up.

use cedar_policy::{Authorizer, Context, Decision as CedarDecision, EntityUid, Request};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::entities::{TenantAuthz, Types};
use crate::factor::FactorKind;
use crate::flow::AuthRecord;
use crate::ids::TenantId;
use crate::session::jwt::amr_of;

/// The context key countersign fills with the session's authentication
/// (a `Countersign::Authentication` record); a caller's context may not
/// set it.
pub const AUTHENTICATION_KEY: &str = "authentication";

/// The resource of a request: an entity and the tenant it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The tenant that owns it (for an application resource, the tenant
    /// of its row).
    pub tenant: TenantId,
    /// Its uid: a `Countersign::Service` (or another countersign entity)
    /// of the tenant's data, or one of the tenant's own types.
    pub uid: EntityUid,
}

/// The answer to one question: may this principal do this?
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// Whether the request is allowed. False whenever `errors` is not
    /// empty.
    pub allowed: bool,
    /// The ids of the policies that determined the decision (the permits
    /// that allowed it, or the forbids that denied it; empty for a default
    /// deny).
    pub reasons: Vec<String>,
    /// Evaluation errors, isolation refusals and malformed requests; any
    /// error denies.
    pub errors: Vec<String>,
    /// Denied, but the same request with a fresh multi-factor
    /// authentication (two factor kinds, verified now) would be allowed.
    pub step_up_required: bool,
}

impl Decision {
    fn deny(error: String) -> Self {
        Self {
            allowed: false,
            reasons: Vec::new(),
            errors: vec![error],
            step_up_required: false,
        }
    }
}

impl TenantAuthz {
    /// Decides whether the user authenticated by `auth` may do `action`
    /// on `resource`, with the caller's `context` (a record; the key
    /// [`AUTHENTICATION_KEY`] is filled from `auth` at `now`).
    ///
    /// Tenant isolation holds outside the tenant's policies: the request
    /// is denied, before Cedar runs, unless the principal's tenant and the
    /// resource's tenant are both this model's tenant, the principal is a
    /// user of this data and a countersign resource is one of this data.
    /// Any evaluation error denies, even when a `permit` applied.
    pub fn decide(
        &self,
        auth: &AuthRecord,
        action: &EntityUid,
        resource: &Resource,
        context: Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Decision {
        if let Err(refusal) = self.isolation(auth, resource) {
            return Decision::deny(refusal);
        }
        if context.contains_key(AUTHENTICATION_KEY) {
            return Decision::deny(format!(
                "the context key {AUTHENTICATION_KEY:?} is countersign's"
            ));
        }
        let principal = Types::uid(&self.types.user, &auth.user_id.to_string());
        let first = self.evaluate(
            &principal,
            action,
            &resource.uid,
            context.clone(),
            authentication(auth, now),
        );
        let mut decision = first;
        if !decision.allowed && decision.errors.is_empty() {
            let fresh = self.evaluate(
                &principal,
                action,
                &resource.uid,
                context,
                fresh_mfa(auth, now),
            );
            decision.step_up_required = fresh.allowed;
        }
        decision
    }

    /// The isolation invariant, checked before Cedar runs.
    fn isolation(&self, auth: &AuthRecord, resource: &Resource) -> Result<(), String> {
        let tenant = self.model.tenant();
        if auth.tenant_id != tenant {
            return Err(format!(
                "the principal belongs to tenant {}, not {tenant}",
                auth.tenant_id
            ));
        }
        if resource.tenant != tenant {
            return Err(format!(
                "the resource belongs to tenant {}, not {tenant}",
                resource.tenant
            ));
        }
        let principal = Types::uid(&self.types.user, &auth.user_id.to_string());
        if !self.known.contains(&principal) {
            return Err(format!("{principal} is not a user of tenant {tenant}"));
        }
        if self.types.is_countersign(resource.uid.type_name())
            && !self.known.contains(&resource.uid)
        {
            return Err(format!("{} is not in tenant {tenant}'s data", resource.uid));
        }
        Ok(())
    }

    fn evaluate(
        &self,
        principal: &EntityUid,
        action: &EntityUid,
        resource: &EntityUid,
        mut context: Map<String, Value>,
        authentication: Value,
    ) -> Decision {
        let schema = self.model.schema();
        context.insert(AUTHENTICATION_KEY.to_owned(), authentication);
        let context = match Context::from_json_value(Value::Object(context), Some((schema, action)))
        {
            Ok(c) => c,
            Err(e) => return Decision::deny(format!("context: {}", super::model::describe(&e))),
        };
        let request = match Request::new(
            principal.clone(),
            action.clone(),
            resource.clone(),
            context,
            Some(schema),
        ) {
            Ok(r) => r,
            Err(e) => return Decision::deny(format!("request: {}", super::model::describe(&e))),
        };
        let response =
            Authorizer::new().is_authorized(&request, self.model.policies(), &self.entities);
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(|e| super::model::describe(e))
            .collect();
        Decision {
            allowed: response.decision() == CedarDecision::Allow && errors.is_empty(),
            reasons: response
                .diagnostics()
                .reason()
                .map(ToString::to_string)
                .collect(),
            errors,
            step_up_required: false,
        }
    }
}

/// The `Countersign::Authentication` record of `auth` at `now`.
fn authentication(auth: &AuthRecord, now: DateTime<Utc>) -> Value {
    let mut kinds: Vec<&str> = auth.factors.iter().map(|f| f.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let (_, mfa) = amr_of(auth);
    json!({
        "method": auth.method.as_str(),
        "factors": kinds,
        "acr": if mfa { "mfa" } else { "sfa" },
        "mfa": mfa,
        "auth_time": auth.at.timestamp(),
        "age": (now - auth.at).num_seconds().max(0),
    })
}

/// The record of a hypothetical fresh multi-factor authentication of the
/// same user at `now`: its factor kinds plus a TOTP (or a password when
/// TOTP is already among them), all verified now.
fn fresh_mfa(auth: &AuthRecord, now: DateTime<Utc>) -> Value {
    let mut kinds: Vec<&str> = auth.factors.iter().map(|f| f.kind.as_str()).collect();
    kinds.push(FactorKind::Totp.as_str());
    kinds.push(FactorKind::Password.as_str());
    kinds.sort_unstable();
    kinds.dedup();
    json!({
        "method": auth.method.as_str(),
        "factors": kinds,
        "acr": "mfa",
        "mfa": true,
        "auth_time": now.timestamp(),
        "age": 0,
    })
}
