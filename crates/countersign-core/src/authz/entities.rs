//! A tenant's RBAC data and application resources as Cedar entities, built
//! once per tenant version.
//!
//! # Entity model
//!
//! Every entity belongs to the tenant of the [`AuthzData`] it comes from,
//! and every countersign entity carries that tenant as its `tenant`
//! attribute. Service, role and permission names are tenant-scoped, so
//! entity ids compose them with `/` (names may not contain it):
//!
//! | entity | id | attributes | parents |
//! |---|---|---|---|
//! | `Countersign::Tenant` | the tenant id | | |
//! | `Countersign::Service` | `service` | `tenant` | |
//! | `Countersign::Permission` | `service/permission` | `tenant`, `service`, `name` | |
//! | `Countersign::Role` | `service/role` (the role as held in that service) | `tenant`, `service`, `name` | the permissions granted to the role in that service (grants without a service count in every service) |
//! | `Countersign::User` | the user id | `tenant`, `state`, `tier?`; the tenant's own attributes as tags | the roles assigned to the user in a service, and its direct grants |
//!
//! So `principal in Countersign::Permission::"docs/read"` holds exactly
//! when the user holds `read` in the service `docs`, through a role or a
//! direct grant: one policy per (service, permission), whatever the number
//! of users, roles and assignments, answered from the ancestor closure
//! Cedar computes once when the entities are built. The tenant's own
//! resource types (declared in its schema) come in as [`AppEntity`]s.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{Entities, Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression};

use super::AuthzError;
use super::model::{AuthzModel, describe};
use crate::ids::{TenantId, UserId};
use crate::model::{AccountState, User};

/// The longest service, role or permission name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;

/// What authorization needs to know of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFacts {
    /// The user.
    pub id: UserId,
    /// Its tenant.
    pub tenant: TenantId,
    /// Its lifecycle state (`principal.state`, e.g. `"active"`).
    pub state: AccountState,
    /// Its tier, if it has one (`principal.tier`, e.g. `"premium"`).
    pub tier: Option<String>,
    /// The tenant's own attributes of the user, as Cedar tags
    /// (`principal.getTag("department")`).
    pub attributes: BTreeMap<String, String>,
}

impl From<&User> for UserFacts {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            tenant: user.tenant_id,
            state: user.state,
            tier: None,
            attributes: BTreeMap::new(),
        }
    }
}

/// A role is granted a permission, in one service or (`service: None`) in
/// every service the role is held in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleGrant {
    /// The role.
    pub role: String,
    /// The permission.
    pub permission: String,
    /// The service it is limited to, if any.
    pub service: Option<String>,
}

/// A user holds a role within a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAssignment {
    /// The user.
    pub user: UserId,
    /// The role.
    pub role: String,
    /// The service.
    pub service: String,
}

/// A user is granted a permission directly, within a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectGrant {
    /// The user.
    pub user: UserId,
    /// The permission.
    pub permission: String,
    /// The service.
    pub service: String,
}

/// One of the tenant's own resources, of a type its schema declares.
#[derive(Debug, Clone, PartialEq)]
pub struct AppEntity {
    /// Its uid, such as `App::Document::"d1"`.
    pub uid: EntityUid,
    /// Its attributes, as a JSON object in Cedar's entity JSON format
    /// (checked against the schema).
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Its parents, each an entity of the same data (an application
    /// entity, or a `Countersign::Service`, ...).
    pub parents: Vec<EntityUid>,
}

/// One tenant's authorization data at one version: users, services,
/// roles, permissions, grants, assignments and application resources.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthzData {
    /// The users.
    pub users: Vec<UserFacts>,
    /// The services.
    pub services: Vec<String>,
    /// The roles.
    pub roles: Vec<String>,
    /// The permissions.
    pub permissions: Vec<String>,
    /// Permissions granted to roles.
    pub role_grants: Vec<RoleGrant>,
    /// Roles held by users within services.
    pub assignments: Vec<RoleAssignment>,
    /// Permissions granted directly to users within services.
    pub direct_grants: Vec<DirectGrant>,
    /// The tenant's own resources.
    pub resources: Vec<AppEntity>,
}

/// The `Countersign::*` entity type names, parsed once.
#[derive(Debug, Clone)]
pub(super) struct Types {
    pub(super) tenant: EntityTypeName,
    pub(super) service: EntityTypeName,
    pub(super) permission: EntityTypeName,
    pub(super) role: EntityTypeName,
    pub(super) user: EntityTypeName,
}

impl Types {
    fn new() -> Result<Self, AuthzError> {
        let parse =
            |s: &str| EntityTypeName::from_str(s).map_err(|e| AuthzError::Data(describe(&e)));
        Ok(Self {
            tenant: parse("Countersign::Tenant")?,
            service: parse("Countersign::Service")?,
            permission: parse("Countersign::Permission")?,
            role: parse("Countersign::Role")?,
            user: parse("Countersign::User")?,
        })
    }

    /// Whether `t` is one of countersign's own types.
    pub(super) fn is_countersign(&self, t: &EntityTypeName) -> bool {
        [
            &self.tenant,
            &self.service,
            &self.permission,
            &self.role,
            &self.user,
        ]
        .contains(&t)
    }

    pub(super) fn uid(t: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(t.clone(), EntityId::new(id))
    }
}

/// A tenant's model and data, compiled: the Cedar entities (with their
/// ancestor closure) built once, validated against the model's schema.
/// Build one per (model version, data version) and share it (for instance
/// in an `Arc`); deciding does not rebuild or re-parse anything.
#[derive(Debug, Clone)]
pub struct TenantAuthz {
    pub(super) model: Arc<AuthzModel>,
    pub(super) data_version: u64,
    pub(super) entities: Entities,
    pub(super) known: HashSet<EntityUid>,
    pub(super) types: Types,
}

impl TenantAuthz {
    /// Builds the tenant's entities from `data` (version `data_version`)
    /// under `model`.
    ///
    /// # Errors
    ///
    /// [`AuthzError::Data`] for a user of another tenant, a bad or
    /// duplicate name, a grant, assignment or parent naming something the
    /// data does not hold; [`AuthzError::Entities`] for entities that do
    /// not conform to the schema.
    pub fn build(
        model: Arc<AuthzModel>,
        data_version: u64,
        data: &AuthzData,
    ) -> Result<Self, AuthzError> {
        let types = Types::new()?;
        let tenant = model.tenant();
        let tenant_uid = Types::uid(&types.tenant, &tenant.to_string());
        let tenant_ref = || RestrictedExpression::new_entity_uid(tenant_uid.clone());
        let data_err = |m: String| AuthzError::Data(m);

        let services = name_set("service", &data.services)?;
        let roles = name_set("role", &data.roles)?;
        let permissions = name_set("permission", &data.permissions)?;
        let need = |set: &BTreeSet<&str>, what: &str, name: &str| {
            if set.contains(name) {
                Ok(())
            } else {
                Err(data_err(format!("unknown {what} {name:?}")))
            }
        };
        let mut users: HashMap<UserId, &UserFacts> = HashMap::new();
        for u in &data.users {
            if u.tenant != tenant {
                return Err(data_err(format!("user {} belongs to another tenant", u.id)));
            }
            if users.insert(u.id, u).is_some() {
                return Err(data_err(format!("duplicate user {}", u.id)));
            }
        }
        for g in &data.role_grants {
            need(&roles, "role", &g.role)?;
            need(&permissions, "permission", &g.permission)?;
            if let Some(s) = &g.service {
                need(&services, "service", s)?;
            }
        }
        // (service, role) -> the permissions it confers there.
        let mut held: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
        let mut user_parents: HashMap<UserId, Vec<EntityUid>> = HashMap::new();
        for a in &data.assignments {
            need(&services, "service", &a.service)?;
            need(&roles, "role", &a.role)?;
            if !users.contains_key(&a.user) {
                return Err(data_err(format!("unknown user {}", a.user)));
            }
            held.entry((a.service.as_str(), a.role.as_str()))
                .or_default();
            user_parents
                .entry(a.user)
                .or_default()
                .push(Types::uid(&types.role, &join(&a.service, &a.role)));
        }
        for g in &data.role_grants {
            for ((service, role), perms) in held.iter_mut() {
                if *role == g.role && g.service.as_deref().is_none_or(|s| s == *service) {
                    perms.insert(g.permission.as_str());
                }
            }
        }
        let mut granted: BTreeSet<(&str, &str)> = held
            .iter()
            .flat_map(|((s, _), ps)| ps.iter().map(move |p| (*s, *p)))
            .collect();
        for g in &data.direct_grants {
            need(&services, "service", &g.service)?;
            need(&permissions, "permission", &g.permission)?;
            if !users.contains_key(&g.user) {
                return Err(data_err(format!("unknown user {}", g.user)));
            }
            granted.insert((g.service.as_str(), g.permission.as_str()));
            user_parents.entry(g.user).or_default().push(Types::uid(
                &types.permission,
                &join(&g.service, &g.permission),
            ));
        }

        let entity = |uid: EntityUid,
                      attrs: Vec<(String, RestrictedExpression)>,
                      parents: Vec<EntityUid>,
                      tags: Vec<(String, RestrictedExpression)>| {
            Entity::new_with_tags(uid, attrs, parents, tags)
                .map_err(|e| AuthzError::Entities(describe(&e)))
        };
        let service_ref =
            |s: &str| RestrictedExpression::new_entity_uid(Types::uid(&types.service, s));
        let mut out: Vec<Entity> = Vec::new();
        out.push(entity(tenant_uid.clone(), vec![], vec![], vec![])?);
        for s in &services {
            out.push(entity(
                Types::uid(&types.service, s),
                vec![("tenant".into(), tenant_ref())],
                vec![],
                vec![],
            )?);
        }
        for (s, p) in &granted {
            out.push(entity(
                Types::uid(&types.permission, &join(s, p)),
                vec![
                    ("tenant".into(), tenant_ref()),
                    ("service".into(), service_ref(s)),
                    (
                        "name".into(),
                        RestrictedExpression::new_string((*p).to_owned()),
                    ),
                ],
                vec![],
                vec![],
            )?);
        }
        for ((s, r), perms) in &held {
            out.push(entity(
                Types::uid(&types.role, &join(s, r)),
                vec![
                    ("tenant".into(), tenant_ref()),
                    ("service".into(), service_ref(s)),
                    (
                        "name".into(),
                        RestrictedExpression::new_string((*r).to_owned()),
                    ),
                ],
                perms
                    .iter()
                    .map(|p| Types::uid(&types.permission, &join(s, p)))
                    .collect(),
                vec![],
            )?);
        }
        for u in &data.users {
            let mut attrs = vec![
                ("tenant".into(), tenant_ref()),
                (
                    "state".into(),
                    RestrictedExpression::new_string(u.state.as_str().to_owned()),
                ),
            ];
            if let Some(tier) = &u.tier {
                attrs.push((
                    "tier".into(),
                    RestrictedExpression::new_string(tier.clone()),
                ));
            }
            let tags = u
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), RestrictedExpression::new_string(v.clone())))
                .collect();
            out.push(entity(
                Types::uid(&types.user, &u.id.to_string()),
                attrs,
                user_parents.remove(&u.id).unwrap_or_default(),
                tags,
            )?);
        }
        let mut known: HashSet<EntityUid> = out.iter().map(Entity::uid).collect();
        for r in &data.resources {
            if types.is_countersign(r.uid.type_name()) {
                return Err(data_err(format!(
                    "resource {} uses a countersign entity type",
                    r.uid
                )));
            }
            if !known.insert(r.uid.clone()) {
                return Err(data_err(format!("duplicate resource {}", r.uid)));
            }
        }
        for r in &data.resources {
            if let Some(p) = r.parents.iter().find(|p| !known.contains(*p)) {
                return Err(data_err(format!(
                    "parent {p} of {} is not in this tenant's data",
                    r.uid
                )));
            }
            let json = serde_json::json!({
                "uid": { "type": r.uid.type_name().to_string(), "id": r.uid.id().unescaped() },
                "attrs": r.attributes,
                "parents": r.parents.iter().map(|p| serde_json::json!({
                    "type": p.type_name().to_string(), "id": p.id().unescaped()
                })).collect::<Vec<_>>(),
            });
            out.push(
                Entity::from_json_value(json, Some(model.schema()))
                    .map_err(|e| AuthzError::Entities(describe(&e)))?,
            );
        }
        let actions = model
            .schema()
            .action_entities()
            .map_err(|e| AuthzError::Entities(describe(&e)))?;
        let entities = Entities::from_entities(out, Some(model.schema()))
            .map_err(|e| AuthzError::Entities(describe(&e)))?
            .add_entities(actions, None)
            .map_err(|e| AuthzError::Entities(describe(&e)))?;
        Ok(Self {
            model,
            data_version,
            entities,
            known,
            types,
        })
    }

    /// The model it was built with.
    pub fn model(&self) -> &Arc<AuthzModel> {
        &self.model
    }

    /// The version of the data it was built from.
    pub fn data_version(&self) -> u64 {
        self.data_version
    }

    /// Whether it was built from these versions (a cache's freshness check).
    pub fn is_current(&self, model_version: u64, data_version: u64) -> bool {
        self.model.version() == model_version && self.data_version == data_version
    }
}

fn join(a: &str, b: &str) -> String {
    format!("{a}/{b}")
}

fn name_set<'a>(what: &str, names: &'a [String]) -> Result<BTreeSet<&'a str>, AuthzError> {
    let mut set = BTreeSet::new();
    for n in names {
        if n.is_empty()
            || n.len() > MAX_NAME_BYTES
            || n.contains('/')
            || n.chars().any(char::is_control)
        {
            return Err(AuthzError::Data(format!(
                "{what} name {n:?} must be 1 to {MAX_NAME_BYTES} bytes, without '/' or control characters"
            )));
        }
        if !set.insert(n.as_str()) {
            return Err(AuthzError::Data(format!("duplicate {what} {n:?}")));
        }
    }
    Ok(set)
}
