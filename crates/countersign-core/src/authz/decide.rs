//! Decisions: tenant isolation around Cedar, the authentication context,
//! errors that deny, and step-up.

use cedar_policy::{Authorizer, Context, Decision as CedarDecision, EntityUid, Request};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::entities::{TenantAuthz, Types};
use crate::factor::FactorKind;
use crate::flow::{AuthRecord, StepUp};
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
    /// Denied only for want of a stronger or fresher authentication: what
    /// would satisfy it, a [`StepUp`] that [`AuthnService::begin_step_up`]
    /// and [`SessionService::step_up`] produce (a step-up meeting it, then
    /// the same request decided with the session's new authentication).
    /// `None` when allowed, or when no authentication would help.
    ///
    /// # How it is derived
    ///
    /// The denied request is evaluated again with hypothetical
    /// authentications of the same user (same method), never with the real
    /// one:
    ///
    /// 1. `min_factors`: 1 when the login's own factor kinds verified now
    ///    would be allowed (freshness alone is missing), else 2 when those
    ///    kinds plus a TOTP and a password (so `mfa`, `acr == "mfa"`),
    ///    verified now, would be; else no step-up helps and this is `None`.
    /// 2. `max_age`: `None` when that authentication is allowed at any age
    ///    (probed at [`UNBOUNDED_AGE_SECS`]); else the largest age in whole
    ///    seconds, up to [`MAX_STEP_UP_AGE_SECS`], at which it is still
    ///    allowed (a binary search, assuming that an older authentication
    ///    is never preferred to a newer one). So `mfa && age < 300` gives
    ///    `StepUp { max_age: Some(299 s), min_factors: 2, any_of: [] }`.
    /// 3. `any_of` is empty: a policy asking for particular factor kinds
    ///    (`context.authentication.factors.contains("passkey")`) is not
    ///    reflected in it, so the request must be decided again after the
    ///    step-up, as always.
    ///
    /// A session whose authentication satisfies it (every counted factor
    /// verified within `max_age`, so its `age` is at most `max_age`) is
    /// allowed, under that assumption and the one on factor kinds.
    ///
    /// [`AuthnService::begin_step_up`]: crate::AuthnService::begin_step_up
    /// [`SessionService::step_up`]: crate::SessionService::step_up
    pub step_up: Option<StepUp>,
}

/// The age, in seconds, at which an authentication is probed to find that
/// a policy does not care about its age (ten years).
pub const UNBOUNDED_AGE_SECS: i64 = 10 * 365 * 24 * 3600;

/// The largest `max_age`, in seconds, a [`Decision::step_up`] names short
/// of no bound at all (one day).
pub const MAX_STEP_UP_AGE_SECS: i64 = 24 * 3600;

impl Decision {
    fn deny(error: String) -> Self {
        Self {
            allowed: false,
            reasons: Vec::new(),
            errors: vec![error],
            step_up: None,
        }
    }

    /// Whether it was denied only for want of a stronger or fresher
    /// authentication ([`Decision::step_up`] names what would do).
    pub fn step_up_required(&self) -> bool {
        self.step_up.is_some()
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
        let mut decision = self.evaluate(
            &principal,
            action,
            &resource.uid,
            context.clone(),
            authentication(auth, now),
        );
        if !decision.allowed && decision.errors.is_empty() {
            let probe = |kinds: &[&str], age: i64| {
                self.evaluate(
                    &principal,
                    action,
                    &resource.uid,
                    context.clone(),
                    hypothetical(auth, kinds, age, now),
                )
                .allowed
            };
            decision.step_up = step_up(auth, probe);
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
            step_up: None,
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

/// What would satisfy a denied request, from `allowed(kinds, age)` (whether
/// the request is allowed with an authentication of these factor kinds,
/// `age` seconds old); see [`Decision::step_up`].
fn step_up(auth: &AuthRecord, allowed: impl Fn(&[&str], i64) -> bool) -> Option<StepUp> {
    let mut kinds: Vec<&str> = auth.factors.iter().map(|f| f.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let min_factors = if allowed(&kinds, 0) {
        1
    } else {
        kinds.push(FactorKind::Totp.as_str());
        kinds.push(FactorKind::Password.as_str());
        kinds.sort_unstable();
        kinds.dedup();
        if !allowed(&kinds, 0) {
            return None;
        }
        2
    };
    let max_age = if allowed(&kinds, UNBOUNDED_AGE_SECS) {
        None
    } else if allowed(&kinds, MAX_STEP_UP_AGE_SECS) {
        Some(MAX_STEP_UP_AGE_SECS)
    } else {
        // allowed at `lo`, denied at `hi`.
        let (mut lo, mut hi) = (0, MAX_STEP_UP_AGE_SECS);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if allowed(&kinds, mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(lo)
    };
    Some(StepUp {
        max_age: max_age.map(|s| Duration::from_secs(s.unsigned_abs())),
        min_factors,
        any_of: Vec::new(),
    })
}

/// The record of a hypothetical authentication of the same user by the
/// same method with these factor kinds, the last verified `age` seconds
/// before `now`.
fn hypothetical(auth: &AuthRecord, kinds: &[&str], age: i64, now: DateTime<Utc>) -> Value {
    let mfa = kinds.len() >= 2;
    json!({
        "method": auth.method.as_str(),
        "factors": kinds,
        "acr": if mfa { "mfa" } else { "sfa" },
        "mfa": mfa,
        "auth_time": now.timestamp().saturating_sub(age),
        "age": age,
    })
}
