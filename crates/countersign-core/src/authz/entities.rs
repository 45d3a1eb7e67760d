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
use crate::rbac::{DirectGrant, RbacName, RbacSnapshot, RoleAssignment, RoleGrant};

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
            tier: user.tier.as_ref().map(|t| t.as_str().to_owned()),
            attributes: user
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), crate::profile::attribute_text(v)))
                .collect(),
        }
    }
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
    pub services: Vec<RbacName>,
    /// The roles.
    pub roles: Vec<RbacName>,
    /// The permissions.
    pub permissions: Vec<RbacName>,
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
    /// Each user's parents (its roles in services and direct grants), also
    /// for users not in the data yet (see [`TenantAuthz::with_user`]).
    pub(super) user_parents: HashMap<UserId, Vec<EntityUid>>,
    /// (service, permission) pairs someone holds, as permission entities.
    pub(super) permissions: HashSet<EntityUid>,
    /// The facts of the users it holds.
    pub(super) users: HashMap<UserId, UserFacts>,
    /// The schema's action entities (for per-request entity sets).
    pub(super) actions: Vec<Entity>,
}

impl AuthzData {
    /// The data of a stored snapshot, with `users` (facts of the users it
    /// names, and of any other user to decide for) and the tenant's own
    /// `resources`.
    pub fn from_snapshot(
        snapshot: &RbacSnapshot,
        users: Vec<UserFacts>,
        resources: Vec<AppEntity>,
    ) -> Self {
        Self {
            users,
            services: snapshot.services.clone(),
            roles: snapshot.roles.clone(),
            permissions: snapshot.permissions.clone(),
            role_grants: snapshot.role_grants.clone(),
            assignments: snapshot.assignments.clone(),
            direct_grants: snapshot.direct_grants.clone(),
            resources,
        }
    }
}

impl TenantAuthz {
    /// Builds the tenant's entities from `data` (version `data_version`)
    /// under `model`.
    ///
    /// # Errors
    ///
    /// [`AuthzError::Data`] for a user of another tenant, a duplicate
    /// name, a grant, assignment or parent naming something the data does
    /// not hold; [`AuthzError::Entities`] for entities that do not conform
    /// to the schema.
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
        let need = |set: &BTreeSet<&str>, what: &str, name: &RbacName| {
            if set.contains(name.as_str()) {
                Ok(())
            } else {
                Err(data_err(format!("unknown {what} {:?}", name.as_str())))
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
            held.entry((a.service.as_str(), a.role.as_str()))
                .or_default();
            user_parents
                .entry(a.user)
                .or_default()
                .push(Types::uid(&types.role, &join(&a.service, &a.role)));
        }
        // Grants by role, so linking them is linear in grants + held roles.
        let mut by_role: HashMap<&str, Vec<&RoleGrant>> = HashMap::new();
        for g in &data.role_grants {
            by_role.entry(g.role.as_str()).or_default().push(g);
        }
        for ((service, role), perms) in held.iter_mut() {
            for g in by_role.get(role).into_iter().flatten() {
                if g.service.as_ref().is_none_or(|s| s.as_str() == *service) {
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
            granted.insert((g.service.as_str(), g.permission.as_str()));
            user_parents.entry(g.user).or_default().push(Types::uid(
                &types.permission,
                &join(&g.service, &g.permission),
            ));
        }

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
            let parents = user_parents.get(&u.id).cloned().unwrap_or_default();
            out.push(user_entity(&types, &tenant_uid, u, parents)?);
        }
        let mut known: HashSet<EntityUid> = out.iter().map(Entity::uid).collect();
        let permission_uids: HashSet<EntityUid> = granted
            .iter()
            .map(|(s, p)| Types::uid(&types.permission, &join(s, p)))
            .collect();
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
            out.push(app_entity(r, model.schema())?);
        }
        let actions = model
            .schema()
            .action_entities()
            .map_err(|e| AuthzError::Entities(describe(&e)))?;
        let action_list: Vec<Entity> = actions.iter().cloned().collect();
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
            user_parents,
            permissions: permission_uids,
            users: data.users.iter().map(|u| (u.id, u.clone())).collect(),
            actions: action_list,
        })
    }

    /// The same data with `user` added or replaced: its roles and direct
    /// grants come from the data this was built from. Costs a copy of the
    /// entities, so a cache does it once per user it has not seen, not
    /// per decision.
    ///
    /// # Errors
    ///
    /// [`AuthzError::Data`] for a user of another tenant,
    /// [`AuthzError::Entities`] if it does not conform to the schema.
    pub fn with_user(&self, user: &UserFacts) -> Result<Self, AuthzError> {
        let tenant = self.model.tenant();
        if user.tenant != tenant {
            return Err(AuthzError::Data(format!(
                "user {} belongs to another tenant",
                user.id
            )));
        }
        let tenant_uid = Types::uid(&self.types.tenant, &tenant.to_string());
        let parents = self.user_parents.get(&user.id).cloned().unwrap_or_default();
        let e = user_entity(&self.types, &tenant_uid, user, parents)?;
        let mut next = self.clone();
        next.known.insert(e.uid());
        next.users.insert(user.id, user.clone());
        next.entities = next
            .entities
            .upsert_entities([e], Some(self.model.schema()))
            .map_err(|e| AuthzError::Entities(describe(&e)))?;
        Ok(next)
    }

    /// The facts of every user it holds (to carry them over to a rebuild).
    pub fn user_facts(&self) -> Vec<UserFacts> {
        self.users.values().cloned().collect()
    }

    /// Whether `user` is one of the users of the data.
    pub fn has_user(&self, user: UserId) -> bool {
        self.known
            .contains(&Types::uid(&self.types.user, &user.to_string()))
    }

    /// The effective permissions of `user` in `service`, sorted: those its
    /// roles there confer and its direct grants there (the same answer as
    /// [`crate::rbac::effective_permissions`] on the data's snapshot).
    pub fn effective_permissions(&self, user: UserId, service: &RbacName) -> Vec<RbacName> {
        let uid = Types::uid(&self.types.user, &user.to_string());
        let prefix = format!("{service}/");
        let mut out: Vec<RbacName> = self
            .entities
            .ancestors(&uid)
            .into_iter()
            .flatten()
            .filter(|a| a.type_name() == &self.types.permission)
            .filter_map(|a| {
                let id = a.id().unescaped();
                id.strip_prefix(&prefix).and_then(|p| RbacName::new(p).ok())
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The Cedar entities it decides with (countersign's, the tenant's
    /// resources and the schema's actions), closure computed.
    pub fn entities(&self) -> &Entities {
        &self.entities
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

fn entity(
    uid: EntityUid,
    attrs: Vec<(String, RestrictedExpression)>,
    parents: Vec<EntityUid>,
    tags: Vec<(String, RestrictedExpression)>,
) -> Result<Entity, AuthzError> {
    Entity::new_with_tags(uid, attrs, parents, tags).map_err(|e| AuthzError::Entities(describe(&e)))
}

fn user_entity(
    types: &Types,
    tenant_uid: &EntityUid,
    u: &UserFacts,
    parents: Vec<EntityUid>,
) -> Result<Entity, AuthzError> {
    let mut attrs = vec![
        (
            "tenant".into(),
            RestrictedExpression::new_entity_uid(tenant_uid.clone()),
        ),
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
    entity(
        Types::uid(&types.user, &u.id.to_string()),
        attrs,
        parents,
        tags,
    )
}

/// An application entity, checked against the schema.
pub(super) fn app_entity(
    r: &AppEntity,
    schema: &cedar_policy::Schema,
) -> Result<Entity, AuthzError> {
    let json = serde_json::json!({
        "uid": { "type": r.uid.type_name().to_string(), "id": r.uid.id().unescaped() },
        "attrs": r.attributes,
        "parents": r.parents.iter().map(|p| serde_json::json!({
            "type": p.type_name().to_string(), "id": p.id().unescaped()
        })).collect::<Vec<_>>(),
    });
    Entity::from_json_value(json, Some(schema)).map_err(|e| AuthzError::Entities(describe(&e)))
}

pub(super) fn join(a: impl AsRef<str>, b: impl AsRef<str>) -> String {
    format!("{}/{}", a.as_ref(), b.as_ref())
}

fn name_set<'a>(what: &str, names: &'a [RbacName]) -> Result<BTreeSet<&'a str>, AuthzError> {
    let mut set = BTreeSet::new();
    for n in names {
        if !set.insert(n.as_str()) {
            return Err(AuthzError::Data(format!(
                "duplicate {what} {:?}",
                n.as_str()
            )));
        }
    }
    Ok(set)
}
