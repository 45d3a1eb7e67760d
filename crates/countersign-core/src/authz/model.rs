//! A tenant's authorization model: its Cedar schema and policy set, parsed
//! and validated together, versioned.

use cedar_policy::{PolicyId, PolicySet, Schema, SchemaFragment, ValidationMode, Validator};

use super::AuthzError;
use crate::ids::TenantId;

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
}
"#;

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
        for (what, text) in [("schema", schema_text), ("policies", policy_text)] {
            if text.len() > MAX_MODEL_TEXT_BYTES {
                return Err(AuthzError::TooLarge {
                    what,
                    bytes: text.len(),
                    max: MAX_MODEL_TEXT_BYTES,
                });
            }
        }
        let schema = parse_schema(schema_text)?;
        let policies = parse_policies(policy_text)?;
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
        Ok(Self {
            tenant,
            version,
            schema,
            policies,
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
