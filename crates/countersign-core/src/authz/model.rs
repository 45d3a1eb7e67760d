//! A tenant's authorization model: its Cedar schema and policy set, parsed
//! and validated together, versioned.

use std::collections::{HashMap, HashSet};

use cedar_policy::{
    EntityTypeName, EntityUid, PolicyId, PolicySet, Schema, SchemaFragment, SlotId, ValidationMode,
    Validator,
};
use serde_json::{Map, Value, json};

use super::AuthzError;
use crate::ids::TenantId;
use crate::store::TemplateLink;

/// The schema fragment countersign adds to every tenant's schema: the
/// `Countersign` namespace with its entity types and the authentication
/// record put into every request's context. A tenant's schema refers to
/// these types (for instance `principal: Countersign::User`) and must not
/// declare the namespace itself.
pub const COUNTERSIGN_SCHEMA: &str = r#"
namespace Countersign {
  entity Tenant;
  entity Service { tenant: Tenant };
  entity Permission { tenant: Tenant, service: Service, name: String };
  entity Role in [Permission] { tenant: Tenant, service: Service, name: String };
  entity User in [Role, Permission] {
    tenant: Tenant,
    state: String,
    tier?: String,
  } tags String;
  type Authentication = {
    method: String,
    factors: Set<String>,
    acr: String,
    mfa: Bool,
    auth_time: Long,
    age: Long,
  };
  type Context = { authentication: Authentication, grants: Set<Permission> };
  action manage_users, manage_rbac, manage_policies, manage_tenant, read_audit, manage_tenants
    appliesTo { principal: User, resource: Service, context: Context };
}
"#;

/// countersign's base policies, added to every tenant's policy set: the
/// built-in RBAC policy (a user holding a permission in a service may do
/// the action of that name on the service and every resource in it; the
/// engine fills `context.grants` with the permissions the request needs,
/// so one policy decides every grant and the set of policies evaluated
/// does not grow with grants, roles or assignments), and the rule that
/// only an active account administers anything.
const BASE_POLICIES: &str = r#"
@id("countersign::rbac")
permit(principal, action, resource) when { principal in context.grants };

@id("countersign::admin::active-only")
forbid(
  principal,
  action in [
    Countersign::Action::"manage_users", Countersign::Action::"manage_rbac",
    Countersign::Action::"manage_policies", Countersign::Action::"manage_tenant",
    Countersign::Action::"read_audit", Countersign::Action::"manage_tenants"
  ],
  resource
) unless { principal.state == "active" };
"#;

/// The id of the built-in policy that makes RBAC grants allow: a user
/// holding a permission in a service may do the action of that name on
/// the service and on every resource in it.
pub const RBAC_POLICY_ID: &str = "countersign::rbac";

/// The prefix of the ids of countersign's base policies; a tenant's own
/// policies may not use it.
pub const BASE_POLICY_PREFIX: &str = "countersign::";

/// The context key countersign fills with the permissions a request
/// needs (a `Set<Countersign::Permission>`); a caller's context may not
/// set it.
pub const GRANTS_KEY: &str = "grants";

/// The most template links a tenant's model may have (each is a policy
/// evaluated on every decision).
pub const MAX_LINKS: usize = 1_000;

/// The most bytes a tenant's schema or policy text may have.
pub const MAX_MODEL_TEXT_BYTES: usize = 256 * 1024;

/// A tenant's authorization model: its schema (the fixed
/// [`COUNTERSIGN_SCHEMA`] plus the tenant's own types and actions) and its
/// policy set (static policies and templates), valid against that schema.
///
/// Built only by [`AuthzModel::new`], which refuses a model that does not
/// parse or validate; the `version` is the caller's, so a compiled model
/// (and the entities built with it) can be cached per tenant version.
#[derive(Debug, Clone)]
pub struct AuthzModel {
    tenant: TenantId,
    version: u64,
    schema: Schema,
    policies: PolicySet,
    /// Each action's principal and resource types, from the schema.
    applies: HashMap<EntityUid, (HashSet<EntityTypeName>, HashSet<EntityTypeName>)>,
    /// Whether any policy or template mentions the authentication record
    /// (if none does, no step-up can change a decision).
    reads_authentication: bool,
}

impl AuthzModel {
    /// Parses `schema_text` (Cedar schema syntax) and `policy_text` (Cedar
    /// policies and templates) and validates the policies against the
    /// schema in strict mode.
    ///
    /// # Errors
    ///
    /// [`AuthzError::TooLarge`] for a text over [`MAX_MODEL_TEXT_BYTES`],
    /// [`AuthzError::Schema`], [`AuthzError::Parse`] or
    /// [`AuthzError::Validation`] with Cedar's diagnostics.
    pub fn new(
        tenant: TenantId,
        version: u64,
        schema_text: &str,
        policy_text: &str,
    ) -> Result<Self, AuthzError> {
        Self::with_links(tenant, version, schema_text, policy_text, &[])
    }

    /// [`new`](Self::new), with `links` of the templates in `policy_text`
    /// (at most [`MAX_LINKS`]), each a policy of the set, validated with
    /// it.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new), and [`AuthzError::Parse`] for a link naming
    /// no template, leaving a slot empty, filling one the template lacks,
    /// a malformed entity uid, or an id that is taken or reserved.
    pub fn with_links(
        tenant: TenantId,
        version: u64,
        schema_text: &str,
        policy_text: &str,
        links: &[TemplateLink],
    ) -> Result<Self, AuthzError> {
        if links.len() > MAX_LINKS {
            return Err(AuthzError::TooLarge {
                what: "links",
                size: links.len(),
                unit: "links",
                max: MAX_LINKS,
            });
        }
        for (what, text) in [("schema", schema_text), ("policies", policy_text)] {
            if text.len() > MAX_MODEL_TEXT_BYTES {
                return Err(AuthzError::TooLarge {
                    what,
                    size: text.len(),
                    unit: "bytes",
                    max: MAX_MODEL_TEXT_BYTES,
                });
            }
        }
        let schema = parse_schema(schema_text)?;
        let mut policies = parse_policies(policy_text)?;
        let reserved: Vec<String> = policies
            .policies()
            .map(|p| p.id().to_string())
            .chain(policies.templates().map(|t| t.id().to_string()))
            .filter(|id| id.starts_with(BASE_POLICY_PREFIX))
            .map(|id| format!("{id}: the prefix {BASE_POLICY_PREFIX:?} is countersign's"))
            .collect();
        if !reserved.is_empty() {
            return Err(AuthzError::Parse {
                diagnostics: reserved,
            });
        }
        link_all(&mut policies, links)?;
        for p in parse_policies(BASE_POLICIES)?.policies() {
            policies.add(p.clone()).map_err(|e| AuthzError::Parse {
                diagnostics: vec![describe(&e)],
            })?;
        }
        let validator = Validator::new(schema.clone());
        let result = validator.validate(&policies, ValidationMode::Strict);
        if !result.validation_passed() {
            return Err(AuthzError::Validation {
                diagnostics: result
                    .validation_errors()
                    .map(|e| format!("{}: {}", e.policy_id(), describe(e)))
                    .collect(),
            });
        }
        let applies = schema
            .actions()
            .map(|a| {
                let principals = schema
                    .principals_for_action(a)
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect();
                let resources = schema
                    .resources_for_action(a)
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect();
                (a.clone(), (principals, resources))
            })
            .collect();
        let reads_authentication = policies
            .policies()
            .map(ToString::to_string)
            .chain(policies.templates().map(ToString::to_string))
            .any(|text| text.contains(super::decide::AUTHENTICATION_KEY));
        Ok(Self {
            tenant,
            version,
            schema,
            policies,
            applies,
            reads_authentication,
        })
    }

    /// The tenant it belongs to.
    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// The caller's version of it.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The full schema (countersign's fragment and the tenant's).
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The validated policy set.
    pub fn policies(&self) -> &PolicySet {
        &self.policies
    }

    /// Whether some policy reads `context.authentication` (a conservative
    /// text check: a policy that only names it is counted too).
    pub(super) fn reads_authentication(&self) -> bool {
        self.reads_authentication
    }

    /// Whether the schema declares `action` for this principal's and this
    /// resource's types (what Cedar's request validation checks, from a
    /// table built once).
    pub(super) fn check_applies(
        &self,
        action: &EntityUid,
        principal: &EntityUid,
        resource: &EntityUid,
    ) -> Result<(), String> {
        let Some((principals, resources)) = self.applies.get(action) else {
            return Err(format!("{action} is not an action of the schema"));
        };
        if !principals.contains(principal.type_name()) {
            return Err(format!(
                "{action} does not apply to principals of type {}",
                principal.type_name()
            ));
        }
        if !resources.contains(resource.type_name()) {
            return Err(format!(
                "{action} does not apply to resources of type {}",
                resource.type_name()
            ));
        }
        Ok(())
    }
}

/// Links each template link into `policies`.
fn link_all(policies: &mut PolicySet, links: &[TemplateLink]) -> Result<(), AuthzError> {
    let refuse = |link: &TemplateLink, why: String| AuthzError::Parse {
        diagnostics: vec![format!("link {}: {why}", link.id)],
    };
    for link in links {
        if link.id.starts_with(BASE_POLICY_PREFIX) {
            return Err(refuse(
                link,
                format!("the prefix {BASE_POLICY_PREFIX:?} is countersign's"),
            ));
        }
        let mut slots = HashMap::new();
        for (slot, value) in [
            (SlotId::principal(), &link.principal),
            (SlotId::resource(), &link.resource),
        ] {
            if let Some(v) = value {
                let uid: EntityUid = v
                    .parse()
                    .map_err(|e: cedar_policy::ParseErrors| refuse(link, describe(&e)))?;
                slots.insert(slot, uid);
            }
        }
        policies
            .link(
                PolicyId::new(&link.template),
                PolicyId::new(&link.id),
                slots,
            )
            .map_err(|e| refuse(link, describe(&e)))?;
    }
    Ok(())
}

/// Parses the policies and templates, naming each by its `@id("...")`
/// annotation when it has one (Cedar's default names are `policy0`, ...).
fn parse_policies(text: &str) -> Result<PolicySet, AuthzError> {
    let parsed: PolicySet =
        text.parse()
            .map_err(|e: cedar_policy::ParseErrors| AuthzError::Parse {
                diagnostics: e.iter().map(|d| describe(d)).collect(),
            })?;
    let named = |id: Option<&str>| id.map(PolicyId::new);
    let mut out = PolicySet::new();
    let dup = |e: cedar_policy::PolicySetError| AuthzError::Parse {
        diagnostics: vec![describe(&e)],
    };
    for t in parsed.templates() {
        let t = match named(t.annotation("id")) {
            Some(id) => t.new_id(id),
            None => t.clone(),
        };
        out.add_template(t).map_err(dup)?;
    }
    for p in parsed.policies() {
        let p = match named(p.annotation("id")) {
            Some(id) => p.new_id(id),
            None => p.clone(),
        };
        out.add(p).map_err(dup)?;
    }
    Ok(out)
}

fn parse_schema(text: &str) -> Result<Schema, AuthzError> {
    let schema_err = |diagnostics: Vec<String>| AuthzError::Schema { diagnostics };
    let (fixed, _) = SchemaFragment::from_cedarschema_str(COUNTERSIGN_SCHEMA)
        .map_err(|e| schema_err(vec![format!("countersign schema: {}", describe(&e))]))?;
    let (tenant, _) =
        SchemaFragment::from_cedarschema_str(text).map_err(|e| schema_err(vec![describe(&e)]))?;
    let mut json = tenant
        .to_json_value()
        .map_err(|e| schema_err(vec![describe(&e)]))?;
    declare_countersign_context(&mut json);
    let tenant =
        SchemaFragment::from_json_value(json).map_err(|e| schema_err(vec![describe(&e)]))?;
    if tenant.namespaces().any(|ns| {
        ns.as_ref()
            .is_some_and(|n| n.to_string().split("::").next() == Some("Countersign"))
    }) {
        return Err(schema_err(vec![
            "the Countersign namespace is reserved".to_owned(),
        ]));
    }
    Schema::from_schema_fragments([fixed, tenant]).map_err(|e| schema_err(vec![describe(&e)]))
}

/// Declares countersign's context keys in every action's context, so a
/// tenant's schema need not: `authentication` (a
/// `Countersign::Authentication`) and [`GRANTS_KEY`] (a
/// `Set<Countersign::Permission>`). An action's context given inline or as
/// a common type of the same namespace gets them added unless it declares
/// them itself; an action without a context gets a record of the two.
fn declare_countersign_context(schema: &mut Value) {
    let keys = || {
        [
            (
                super::decide::AUTHENTICATION_KEY,
                json!({ "type": "Countersign::Authentication" }),
            ),
            (
                GRANTS_KEY,
                json!({ "type": "Set", "element": { "type": "Entity", "name": "Countersign::Permission" } }),
            ),
        ]
    };
    let add = |record: &mut Map<String, Value>| {
        let attrs = record
            .entry("attributes")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(attrs) = attrs.as_object_mut() {
            for (k, v) in keys() {
                attrs.entry(k).or_insert(v);
            }
        }
    };
    let Some(namespaces) = schema.as_object_mut() else {
        return;
    };
    for ns in namespaces.values_mut() {
        let Some(ns) = ns.as_object_mut() else {
            continue;
        };
        // Common types the actions' contexts name.
        let mut named: Vec<String> = Vec::new();
        if let Some(actions) = ns.get_mut("actions").and_then(Value::as_object_mut) {
            for action in actions.values_mut() {
                let Some(applies) = action
                    .as_object_mut()
                    .and_then(|a| a.get_mut("appliesTo"))
                    .and_then(Value::as_object_mut)
                else {
                    continue;
                };
                let context = applies
                    .entry("context")
                    .or_insert_with(|| json!({ "type": "Record", "attributes": {} }));
                let Some(context) = context.as_object_mut() else {
                    continue;
                };
                match context.get("type").and_then(Value::as_str) {
                    Some("Record") => add(context),
                    Some("EntityOrCommon") => {
                        if let Some(n) = context.get("name").and_then(Value::as_str) {
                            named.push(n.to_owned());
                        }
                    }
                    Some(other) => named.push(other.to_owned()),
                    None => {}
                }
            }
        }
        if let Some(common) = ns.get_mut("commonTypes").and_then(Value::as_object_mut) {
            for name in named {
                if let Some(t) = common.get_mut(&name).and_then(Value::as_object_mut)
                    && t.get("type").and_then(Value::as_str) == Some("Record")
                {
                    add(t);
                }
            }
        }
    }
}

/// An error's message followed by its sources', as one line.
pub(super) fn describe(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let more = s.to_string();
        if !out.contains(&more) {
            out.push_str(": ");
            out.push_str(&more);
        }
        next = s.source();
    }
    out
}
