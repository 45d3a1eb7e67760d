//! Decisions: tenant isolation around Cedar, the authentication context,
//! errors that deny, and step-up.

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, EntityUid, Request, RestrictedExpression,
};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use std::collections::{HashMap, HashSet};

use cedar_policy::{Entities, Entity};

use super::entities::{AppEntity, TenantAuthz, Types, app_entity, join};
use super::model::GRANTS_KEY;
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
    /// When no policy of the model mentions the authentication record, no
    /// authentication can change the decision: `None`, without probing.
    /// Otherwise:
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
        self.decide_in(&self.entities, auth, action, resource, context, now)
    }

    /// [`decide`](Self::decide), with the application's own `entities` for
    /// this request (the resource with its attributes, its parents, ...),
    /// of types the tenant's schema declares and checked against it. Each
    /// may have as parents entities of `entities` or of the tenant's data
    /// (a `Countersign::Service`, ...); none may be one of the tenant's
    /// data or of countersign's types. The decision is made on a small
    /// entity set built for the request: the principal with its roles and
    /// permissions, the given entities with their ancestors, the tenant
    /// and the schema's actions, so its cost does not grow with the
    /// tenant's data. A refused entity denies, with the reason in
    /// [`Decision::errors`].
    pub fn decide_with(
        &self,
        auth: &AuthRecord,
        action: &EntityUid,
        resource: &Resource,
        context: Map<String, Value>,
        entities: &[AppEntity],
        now: DateTime<Utc>,
    ) -> Decision {
        if entities.is_empty() {
            return self.decide(auth, action, resource, context, now);
        }
        let principal = Types::uid(&self.types.user, &auth.user_id.to_string());
        match self.request_entities(&principal, entities) {
            Ok(slice) => self.decide_in(&slice, auth, action, resource, context, now),
            Err(refusal) => Decision::deny(refusal),
        }
    }

    /// The entities of one request: the principal and its ancestors, the
    /// given entities and their ancestors, the tenant, the actions.
    fn request_entities(
        &self,
        principal: &EntityUid,
        given: &[AppEntity],
    ) -> Result<Entities, String> {
        let mut out: HashMap<EntityUid, Entity> = HashMap::new();
        let take = |uid: &EntityUid, out: &mut HashMap<EntityUid, Entity>| {
            if let Some(e) = self.entities.get(uid) {
                out.entry(uid.clone()).or_insert_with(|| e.clone());
                for a in self.entities.ancestors(uid).into_iter().flatten() {
                    if let Some(e) = self.entities.get(a) {
                        out.entry(a.clone()).or_insert_with(|| e.clone());
                    }
                }
            }
        };
        take(principal, &mut out);
        let tenant = Types::uid(&self.types.tenant, &self.model.tenant().to_string());
        take(&tenant, &mut out);
        let ids: HashSet<&EntityUid> = given.iter().map(|e| &e.uid).collect();
        for e in given {
            if self.types.is_countersign(e.uid.type_name()) {
                return Err(format!("{} uses a countersign entity type", e.uid));
            }
            if self.known.contains(&e.uid) {
                return Err(format!("{} is already in the tenant's data", e.uid));
            }
            for p in &e.parents {
                if ids.contains(p) {
                    continue;
                }
                if !self.known.contains(p) {
                    return Err(format!(
                        "parent {p} of {} is not in this tenant's data",
                        e.uid
                    ));
                }
                take(p, &mut out);
            }
            let entity = app_entity(e, self.model.schema()).map_err(|e| e.to_string())?;
            if out.insert(e.uid.clone(), entity).is_some() {
                return Err(format!("{} is given twice", e.uid));
            }
        }
        Entities::from_entities(out.into_values().chain(self.actions.iter().cloned()), None)
            .map_err(|e| format!("entities: {}", super::model::describe(&e)))
    }

    fn decide_in(
        &self,
        entities: &Entities,
        auth: &AuthRecord,
        action: &EntityUid,
        resource: &Resource,
        context: Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Decision {
        if let Err(refusal) = self.isolation(auth, resource) {
            return Decision::deny(refusal);
        }
        for key in [AUTHENTICATION_KEY, GRANTS_KEY] {
            if context.contains_key(key) {
                return Decision::deny(format!("the context key {key:?} is countersign's"));
            }
        }
        let principal = Types::uid(&self.types.user, &auth.user_id.to_string());
        if let Err(refusal) = self.model.check_applies(action, &principal, &resource.uid) {
            return Decision::deny(refusal);
        }
        let grants = self.needed_grants(entities, action, &resource.uid);
        let evaluate = |facts: AuthFacts| {
            self.evaluate(
                entities,
                &principal,
                action,
                &resource.uid,
                &context,
                &grants,
                facts,
            )
        };
        let mut decision = evaluate(AuthFacts::of(auth, now));
        // Probing only helps when a policy reads the authentication.
        if !decision.allowed && decision.errors.is_empty() && self.model.reads_authentication() {
            let probe = |kinds: &[&str], age: i64| {
                evaluate(AuthFacts::hypothetical(auth, kinds, age, now)).allowed
            };
            decision.step_up = step_up(auth, probe);
        }
        decision
    }

    /// The permissions a request needs for the built-in RBAC policy: the
    /// action's name in each service the resource is (or is in), those
    /// someone holds.
    fn needed_grants(
        &self,
        entities: &Entities,
        action: &EntityUid,
        resource: &EntityUid,
    ) -> Vec<EntityUid> {
        let service = &self.types.service;
        let name = action.id().unescaped();
        let direct = (resource.type_name() == service).then_some(resource);
        let ancestors = entities.ancestors(resource).into_iter().flatten();
        direct
            .into_iter()
            .chain(ancestors.filter(|a| a.type_name() == service))
            .map(|s| Types::uid(&self.types.permission, &join(s.id().unescaped(), name)))
            .filter(|p| self.permissions.contains(p))
            .collect()
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

    /// One evaluation. Countersign's context keys are built as Cedar
    /// values directly (no JSON, no schema pass: they are well-typed by
    /// construction); a caller's context, when there is one, is parsed
    /// with them against the action's context type in the schema.
    #[allow(clippy::too_many_arguments, reason = "one evaluation's inputs")]
    fn evaluate(
        &self,
        entities: &Entities,
        principal: &EntityUid,
        action: &EntityUid,
        resource: &EntityUid,
        caller: &Map<String, Value>,
        grants: &[EntityUid],
        facts: AuthFacts,
    ) -> Decision {
        let context = if caller.is_empty() {
            let grants = RestrictedExpression::new_set(
                grants
                    .iter()
                    .map(|g| RestrictedExpression::new_entity_uid(g.clone())),
            );
            facts.expression().and_then(|auth| {
                Context::from_pairs([
                    (AUTHENTICATION_KEY.to_owned(), auth),
                    (GRANTS_KEY.to_owned(), grants),
                ])
                .map_err(|e| format!("context: {}", super::model::describe(&e)))
            })
        } else {
            let mut json = caller.clone();
            json.insert(AUTHENTICATION_KEY.to_owned(), facts.json());
            let grants = grants
                .iter()
                .map(|g| json!({ "__entity": { "type": g.type_name().to_string(), "id": g.id().unescaped() } }))
                .collect();
            json.insert(GRANTS_KEY.to_owned(), Value::Array(grants));
            Context::from_json_value(Value::Object(json), Some((self.model.schema(), action)))
                .map_err(|e| format!("context: {}", super::model::describe(&e)))
        };
        let context = match context {
            Ok(c) => c,
            Err(e) => return Decision::deny(e),
        };
        // The request's types were checked against the schema by
        // `check_applies`, and countersign's keys are typed by
        // construction; a caller's context is checked by Cedar's request
        // validation.
        let schema = (!caller.is_empty()).then(|| self.model.schema());
        let request = match Request::new(
            principal.clone(),
            action.clone(),
            resource.clone(),
            context,
            schema,
        ) {
            Ok(r) => r,
            Err(e) => return Decision::deny(format!("request: {}", super::model::describe(&e))),
        };
        let response = Authorizer::new().is_authorized(&request, self.model.policies(), entities);
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

/// The facts of an authentication, as the `Countersign::Authentication`
/// record of the context.
struct AuthFacts {
    method: String,
    kinds: Vec<String>,
    mfa: bool,
    auth_time: i64,
    age: i64,
}

impl AuthFacts {
    /// The facts of `auth` at `now`.
    fn of(auth: &AuthRecord, now: DateTime<Utc>) -> Self {
        let mut kinds: Vec<String> = auth
            .factors
            .iter()
            .map(|f| f.kind.as_str().to_owned())
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        let (_, mfa) = amr_of(auth);
        Self {
            method: auth.method.as_str().to_owned(),
            kinds,
            mfa,
            auth_time: auth.at.timestamp(),
            age: (now - auth.at).num_seconds().max(0),
        }
    }

    /// A hypothetical authentication of the same user by the same method
    /// with these factor kinds, the last verified `age` seconds before
    /// `now`.
    fn hypothetical(auth: &AuthRecord, kinds: &[&str], age: i64, now: DateTime<Utc>) -> Self {
        Self {
            method: auth.method.as_str().to_owned(),
            kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
            mfa: kinds.len() >= 2,
            auth_time: now.timestamp().saturating_sub(age),
            age,
        }
    }

    fn acr(&self) -> &'static str {
        if self.mfa { "mfa" } else { "sfa" }
    }

    fn json(&self) -> Value {
        json!({
            "method": self.method,
            "factors": self.kinds,
            "acr": self.acr(),
            "mfa": self.mfa,
            "auth_time": self.auth_time,
            "age": self.age,
        })
    }

    fn expression(&self) -> Result<RestrictedExpression, String> {
        let string = |s: &str| RestrictedExpression::new_string(s.to_owned());
        RestrictedExpression::new_record([
            ("method".to_owned(), string(&self.method)),
            (
                "factors".to_owned(),
                RestrictedExpression::new_set(self.kinds.iter().map(|k| string(k))),
            ),
            ("acr".to_owned(), string(self.acr())),
            ("mfa".to_owned(), RestrictedExpression::new_bool(self.mfa)),
            (
                "auth_time".to_owned(),
                RestrictedExpression::new_long(self.auth_time),
            ),
            ("age".to_owned(), RestrictedExpression::new_long(self.age)),
        ])
        .map_err(|e| format!("context: {}", super::model::describe(&e)))
    }
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
