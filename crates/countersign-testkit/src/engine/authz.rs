//! Authorization through the login engine: a Cedar policy's demand for a
//! stronger or fresher authentication, met by the step-up flow.

use std::str::FromStr;

use chrono::Duration;
use countersign_core::authz::{AdminAction, EntityUid};
use countersign_core::{
    AccountState, AuditKind, AuditStatus, AuthRecord, AuthzService, DirectGrant, Error, ErrorKind,
    FactorKind, FactorResponse, LoginStatus, MethodName, NewTenant, PassedFactor, RbacChange,
    RbacKind, RbacName, Resource, RoleAssignment, RoleGrant, StepUp, StepUpRequired, TemplateLink,
    TenantId, UserId,
};

use super::{AuditLog, NoAudit, accepts, current_totp, password_alone, weak_login_alice};
use crate::ConformanceStore;
use crate::fixtures::World;

/// The tenant's schema: documents, and one action that takes the
/// authentication context.
const SCHEMA: &str = r#"
namespace App {
  entity Document;
  action delete appliesTo {
    principal: Countersign::User,
    resource: Document,
    context: { authentication: Countersign::Authentication }
  };
}
"#;

/// Deleting needs a multi-factor authentication under five minutes old.
const POLICIES: &str = r#"
@id("delete-needs-fresh-mfa")
permit(principal, action == App::Action::"delete", resource)
  when { context.authentication.mfa && context.authentication.age < 300 };
"#;

/// A policy demanding a fresh MFA denies a password-only session with a
/// step-up named as a [`StepUp`]; a TOTP step-up attached to the session
/// (`begin_step_up`, the TOTP, `SessionService::step_up`) satisfies that
/// `StepUp`, and the same request decided with the re-validated session's
/// authentication is allowed.
pub async fn a_policy_demanding_fresh_mfa_is_met_by_a_totp_step_up<S: ConformanceStore>(s: S) {
    let (w, alice) = weak_login_alice(&s, 50).await;

    // The model is stored and decided through the service, as an
    // application would.
    let authz = AuthzService::new(s.clone(), w.svc.env().clone());
    authz
        .save_model(w.tenant.id, SCHEMA, POLICIES, None, &w.client)
        .await
        .unwrap();
    let document = EntityUid::from_str(r#"App::Document::"d1""#).unwrap();
    let delete = EntityUid::from_str(r#"App::Action::"delete""#).unwrap();
    let resource = Resource {
        tenant: w.tenant.id,
        uid: document,
    };

    // The password alone, through the `pwd` method.
    let login = password_alone(&w, "alice").await;
    let issued = w.sessions.issue(&login, &w.client).await.unwrap();
    let token = issued.session_token.expose();

    // A minute on (a new TOTP period): fresh, but not multi-factor.
    w.clock.advance(Duration::seconds(60));
    let session = w.sessions.validate(token).await.unwrap();
    let denied = authz
        .decide(&session.auth, &delete, &resource, Default::default())
        .await
        .unwrap();
    assert!(!denied.allowed && denied.errors.is_empty(), "{denied:?}");
    let need = StepUp {
        max_age: Some(std::time::Duration::from_secs(299)),
        min_factors: 2,
        any_of: vec![],
    };
    assert_eq!(denied.step_up.as_ref(), Some(&need), "{denied:?}");
    assert_eq!(
        w.sessions.require_recent(&session, &need),
        Err(StepUpRequired {
            required: need.clone()
        })
    );

    // The step-up: a TOTP, attached to the session.
    let (step, status) = w
        .svc
        .begin_step_up(w.tenant.id, alice.id, &[FactorKind::Totp], &w.client)
        .await
        .unwrap();
    assert_eq!(accepts(&status), [FactorKind::Totp]);
    let code = current_totp(&w, &alice).await;
    let LoginStatus::Authenticated(proof) = w
        .submit(&step, FactorResponse::Totp(&code))
        .await
        .unwrap()
        .status
    else {
        panic!("the TOTP completes the step-up")
    };
    w.sessions.step_up(token, &proof, &w.client).await.unwrap();

    let session = w.sessions.validate(token).await.unwrap();
    w.sessions.require_recent(&session, &need).unwrap();
    let allowed = authz
        .decide(&session.auth, &delete, &resource, Default::default())
        .await
        .unwrap();
    assert!(allowed.allowed, "{allowed:?}");
    assert_eq!(allowed.reasons, ["delete-needs-fresh-mfa"]);
    assert_eq!(allowed.step_up, None);
}

/// A tenant's model is stored only once it validates, versioned by
/// compare-and-save (a stale editor is refused and changes nothing), is
/// served compiled at its current version, and stays within its tenant.
pub async fn models_are_saved_only_valid_and_versioned<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 51).await;
    let authz = AuthzService::new(s.clone(), w.svc.env().clone());
    let t = w.tenant.id;
    // Invalid: refused with Cedar's diagnostics, nothing stored.
    let broken = "permit(principal, action == App::Action::\"nope\", resource);";
    assert!(matches!(
        authz.save_model(t, SCHEMA, broken, None, &w.client).await,
        Err(Error::Authz(_))
    ));
    assert!(authz.model(t).await.unwrap().is_none());
    assert!(s.policy_document(t).await.unwrap().is_none());
    // Valid: version 1, then 2 from 1; a stale editor is refused.
    assert_eq!(
        authz
            .save_model(t, SCHEMA, POLICIES, None, &w.client)
            .await
            .unwrap(),
        1
    );
    assert_eq!(authz.model(t).await.unwrap().unwrap().version(), 1);
    assert!(matches!(
        authz.save_model(t, SCHEMA, POLICIES, None, &w.client).await,
        Err(Error::Concurrent(_))
    ));
    assert_eq!(
        authz
            .save_model(t, SCHEMA, POLICIES, Some(1), &w.client)
            .await
            .unwrap(),
        2
    );
    assert!(matches!(
        authz.save_model(t, SCHEMA, "", Some(1), &w.client).await,
        Err(Error::Concurrent(_))
    ));
    let stored = s.policy_document(t).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.policies.as_str()), (2, POLICIES));
    // Another service instance compiles the stored version.
    let other = AuthzService::new(s.clone(), w.svc.env().clone());
    assert_eq!(other.model(t).await.unwrap().unwrap().version(), 2);
    // Another tenant has nothing; an unknown tenant cannot get one.
    let b = w
        .svc
        .provision_tenant(NewTenant::password_only("beta", "Beta").unwrap())
        .await
        .unwrap();
    assert!(authz.model(b.id).await.unwrap().is_none());
    let nobody = TenantId::generate(w.svc.env()).unwrap();
    assert!(matches!(
        authz
            .save_model(nobody, SCHEMA, POLICIES, None, &w.client)
            .await,
        Err(Error::TenantNotFound)
    ));
}

/// A schema whose actions are RBAC permissions on services.
const RBAC_SCHEMA: &str = r#"
namespace App {
  action read, write appliesTo { principal: Countersign::User, resource: Countersign::Service };
}
"#;

fn name(s: &str) -> RbacName {
    RbacName::new(s).unwrap()
}

fn create(kind: RbacKind, n: &str) -> RbacChange {
    RbacChange::Create {
        kind,
        name: name(n),
    }
}

fn assign(user: UserId, role: &str, service: &str) -> RbacChange {
    RbacChange::Assign(RoleAssignment {
        user,
        role: name(role),
        service: name(service),
    })
}

/// A password login's record of `user` in `tenant`, at `at`.
fn record(tenant: TenantId, user: UserId, at: chrono::DateTime<chrono::Utc>) -> AuthRecord {
    AuthRecord {
        tenant_id: tenant,
        user_id: user,
        method: MethodName::parse("pwd").unwrap(),
        factors: vec![PassedFactor {
            kind: FactorKind::Password,
            at,
        }],
        at,
    }
}

fn service(tenant: TenantId, s: &str) -> Resource {
    Resource {
        tenant,
        uid: EntityUid::from_str(&format!("Countersign::Service::\"{s}\"")).unwrap(),
    }
}

fn action(a: &str) -> EntityUid {
    EntityUid::from_str(&format!("App::Action::\"{a}\"")).unwrap()
}

/// The `docs` service with `read` and `write`, the role `reader` granted
/// `read` in `docs` only, and `editor` granted both everywhere.
async fn docs_model<S: ConformanceStore>(authz: &AuthzService<S>, w: &World<S>) {
    let t = w.tenant.id;
    authz
        .save_model(t, RBAC_SCHEMA, "", None, &w.client)
        .await
        .unwrap();
    let mut changes = vec![
        create(RbacKind::Service, "docs"),
        create(RbacKind::Service, "wiki"),
        create(RbacKind::Permission, "read"),
        create(RbacKind::Permission, "write"),
        create(RbacKind::Role, "reader"),
        create(RbacKind::Role, "editor"),
        RbacChange::Grant(RoleGrant {
            role: name("reader"),
            permission: name("read"),
            service: Some(name("docs")),
        }),
    ];
    for p in ["read", "write"] {
        changes.push(RbacChange::Grant(RoleGrant {
            role: name("editor"),
            permission: name(p),
            service: None,
        }));
    }
    for c in &changes {
        authz.change_rbac(t, c, &w.client).await.unwrap();
    }
}

/// RBAC data lives in the store and decides through the service: a role
/// grants its permissions within the service it is held in, a direct grant
/// within its service; a change made through one service instance is seen
/// by another at its next decision (each checks the store's versions), and
/// effective permissions follow.
pub async fn rbac_grants_decide_from_the_store_and_changes_reach_every_instance<
    S: ConformanceStore,
>(
    s: S,
) {
    let w = World::mfa(s.clone(), 52).await;
    let t = w.tenant.id;
    let (alice, bob) = (w.user("alice").await, w.user("bob").await);
    let one = AuthzService::new(s.clone(), w.svc.env().clone());
    let two = AuthzService::new(s.clone(), w.svc.env().clone());
    docs_model(&one, &w).await;
    let now = w.svc.env().now();
    let (a, b) = (record(t, alice.id, now), record(t, bob.id, now));
    let allowed = |authz: &AuthzService<S>, who: &AuthRecord, act: &str, svc: &str| {
        let (authz, who, act, svc) = (authz.clone(), who.clone(), action(act), service(t, svc));
        async move {
            let d = authz
                .decide(&who, &act, &svc, Default::default())
                .await
                .unwrap();
            assert!(d.errors.is_empty(), "{d:?}");
            d.allowed
        }
    };
    assert!(!allowed(&one, &a, "read", "docs").await);
    two.change_rbac(t, &assign(alice.id, "reader", "docs"), &w.client)
        .await
        .unwrap();
    // Seen by the instance that did not make the change.
    assert!(allowed(&one, &a, "read", "docs").await);
    assert!(!allowed(&one, &a, "write", "docs").await);
    assert!(
        !allowed(&one, &a, "read", "wiki").await,
        "the grant is limited to docs"
    );
    assert!(!allowed(&one, &b, "read", "docs").await);
    let d = one
        .decide(&a, &action("read"), &service(t, "docs"), Default::default())
        .await
        .unwrap();
    assert_eq!(d.reasons, [countersign_core::authz::RBAC_POLICY_ID]);
    assert_eq!(
        one.effective_permissions(t, alice.id, &name("docs"))
            .await
            .unwrap(),
        [name("read")]
    );
    // An unscoped grant counts in every service the role is held in.
    one.change_rbac(t, &assign(bob.id, "editor", "wiki"), &w.client)
        .await
        .unwrap();
    assert!(allowed(&two, &b, "write", "wiki").await);
    assert!(!allowed(&two, &b, "write", "docs").await);
    // A direct grant, then revocations, seen across instances.
    let direct = DirectGrant {
        user: bob.id,
        permission: name("read"),
        service: name("docs"),
    };
    one.change_rbac(t, &RbacChange::GrantDirect(direct.clone()), &w.client)
        .await
        .unwrap();
    assert!(allowed(&two, &b, "read", "docs").await);
    two.change_rbac(t, &RbacChange::RevokeDirect(direct), &w.client)
        .await
        .unwrap();
    assert!(!allowed(&one, &b, "read", "docs").await);
    two.change_rbac(
        t,
        &RbacChange::Delete {
            kind: RbacKind::Role,
            name: name("reader"),
        },
        &w.client,
    )
    .await
    .unwrap();
    assert!(
        !allowed(&one, &a, "read", "docs").await,
        "deleting the role ends its grants"
    );
    assert!(
        one.effective_permissions(t, alice.id, &name("docs"))
            .await
            .unwrap()
            .is_empty()
    );
    // A policy change through one instance reaches the other too.
    let forbid_wiki =
        r#"@id("no-wiki") forbid(principal, action, resource == Countersign::Service::"wiki");"#;
    one.save_model(t, RBAC_SCHEMA, forbid_wiki, Some(1), &w.client)
        .await
        .unwrap();
    let d = two
        .decide(
            &b,
            &action("write"),
            &service(t, "wiki"),
            Default::default(),
        )
        .await
        .unwrap();
    assert!(!d.allowed && d.reasons == ["no-wiki"], "{d:?}");
}

/// Tenant isolation through the service: a grant naming another tenant's
/// user, role or service is refused and writes nothing, two tenants using
/// the same names never see each other's grants, and a principal is never
/// allowed on another tenant's resource.
pub async fn rbac_never_crosses_tenants<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 53).await;
    let (a_t, alice) = (w.tenant.id, w.user("alice").await);
    let other = World::with_tenant(
        s.clone(),
        54,
        NewTenant::password_only("beta", "Beta").unwrap(),
    )
    .await;
    let (b_t, mallory) = (other.tenant.id, other.user("mallory").await);
    let authz = AuthzService::new(s.clone(), w.svc.env().clone());
    docs_model(&authz, &w).await;
    docs_model(&authz, &other).await;
    let before = s.authz_versions(a_t).await.unwrap();
    // Beta's user cannot be given alpha's role, nor alpha's user beta's.
    let err = authz
        .change_rbac(a_t, &assign(mallory.id, "editor", "docs"), &w.client)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
    assert_eq!(s.authz_versions(a_t).await.unwrap(), before);
    // Alpha names a service beta has and alpha does not.
    authz
        .change_rbac(b_t, &create(RbacKind::Service, "vault"), &w.client)
        .await
        .unwrap();
    let err = authz
        .change_rbac(a_t, &assign(alice.id, "editor", "vault"), &w.client)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
    assert_eq!(s.authz_versions(a_t).await.unwrap(), before);

    authz
        .change_rbac(b_t, &assign(mallory.id, "editor", "docs"), &w.client)
        .await
        .unwrap();
    let now = w.svc.env().now();
    let m = record(b_t, mallory.id, now);
    let d = authz
        .decide(
            &m,
            &action("write"),
            &service(b_t, "docs"),
            Default::default(),
        )
        .await
        .unwrap();
    assert!(d.allowed, "{d:?}");
    // The same names in alpha: mallory's grant means nothing there, and
    // alice holds nothing from beta.
    let d = authz
        .decide(
            &m,
            &action("write"),
            &service(a_t, "docs"),
            Default::default(),
        )
        .await
        .unwrap();
    assert!(!d.allowed && !d.errors.is_empty(), "{d:?}");
    assert!(
        s.role_holders(a_t, &name("editor"), &name("docs"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.role_holders(b_t, &name("editor"), &name("docs"))
            .await
            .unwrap(),
        [mallory.id]
    );
    let a = record(a_t, alice.id, now);
    let d = authz
        .decide(
            &a,
            &action("write"),
            &service(b_t, "docs"),
            Default::default(),
        )
        .await
        .unwrap();
    assert!(!d.allowed && !d.errors.is_empty(), "{d:?}");
    assert!(
        authz
            .effective_permissions(a_t, mallory.id, &name("docs"))
            .await
            .unwrap()
            .is_empty()
    );
}

/// countersign's own administration asks the same engine: the tenant's
/// administrator (made by `grant_tenant_admin`) may manage users, others
/// may not, nobody manages tenants without an explicit grant, and a
/// suspended administrator administers nothing. Works before the tenant
/// stores any model of its own.
pub async fn administration_is_decided_by_the_engine<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 55).await;
    let t = w.tenant.id;
    let (alice, bob) = (w.user("alice").await, w.user("bob").await);
    let authz = AuthzService::new(s.clone(), w.svc.env().clone());
    authz
        .grant_tenant_admin(t, alice.id, &w.client)
        .await
        .unwrap();
    // Idempotent: a second bootstrap changes nothing and fails nothing.
    let version = s.authz_versions(t).await.unwrap().rbac;
    authz
        .grant_tenant_admin(t, alice.id, &w.client)
        .await
        .unwrap();
    assert_eq!(s.authz_versions(t).await.unwrap().rbac, version);
    let now = w.svc.env().now();
    let (a, b) = (record(t, alice.id, now), record(t, bob.id, now));
    for action in AdminAction::ALL {
        let d = authz.decide_admin(&a, *action).await.unwrap();
        assert_eq!(
            d.allowed,
            *action != AdminAction::ManageTenants,
            "{action}: {d:?}"
        );
        assert!(
            !authz.decide_admin(&b, *action).await.unwrap().allowed,
            "{action}"
        );
    }
    // Suspended: the base policy denies, whatever the grants.
    w.transition(&alice, AccountState::Suspended).await.unwrap();
    authz.forget_user(t, alice.id);
    let d = authz
        .decide_admin(&a, AdminAction::ManageUsers)
        .await
        .unwrap();
    assert!(!d.allowed, "{d:?}");
    assert_eq!(d.reasons, ["countersign::admin::active-only"]);
}

/// Every administrative change is audited: an applied RBAC change with its
/// description, a refused one (a duplicate name, a missing role) as a
/// failure that changed nothing, and a refused model save too.
pub(crate) async fn rbac_audit<S: ConformanceStore>(s: S, audit: impl AuditLog<S>) {
    let w = World::mfa(s.clone(), 56).await;
    let t = w.tenant.id;
    let alice = w.user("alice").await;
    let authz = AuthzService::new(s.clone(), w.svc.env().clone());
    authz
        .change_rbac(t, &create(RbacKind::Service, "docs"), &w.client)
        .await
        .unwrap();
    let version = s.authz_versions(t).await.unwrap();
    let err = authz
        .change_rbac(t, &create(RbacKind::Service, "docs"), &w.client)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err:?}");
    let err = authz
        .change_rbac(t, &assign(alice.id, "ghost", "docs"), &w.client)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
    assert_eq!(s.authz_versions(t).await.unwrap(), version);
    let broken = "permit(principal, action == App::Action::\"nope\", resource);";
    assert!(
        authz
            .save_model(t, RBAC_SCHEMA, broken, None, &w.client)
            .await
            .is_err()
    );
    let Some(events) = audit.of_kind(&w, AuditKind::RbacChanged).await else {
        return;
    };
    let summary: Vec<(AuditStatus, Option<String>)> = events
        .iter()
        .map(|e| (e.status, e.detail.as_ref().map(ToString::to_string)))
        .collect();
    assert_eq!(summary.len(), 3, "{summary:?}");
    assert!(summary.contains(&(
        AuditStatus::Success,
        Some("change:create service docs".into())
    )));
    assert!(summary.contains(&(
        AuditStatus::Failure,
        Some("change:create service docs".into())
    )));
    let refused_assign = events
        .iter()
        .find(|e| {
            e.detail
                .as_ref()
                .is_some_and(|d| d.to_string().starts_with("change:assign ghost"))
        })
        .expect("the refused assignment is audited");
    assert_eq!(
        (refused_assign.status, refused_assign.user_id),
        (AuditStatus::Failure, Some(alice.id))
    );
    let saves = audit
        .of_kind(&w, AuditKind::TenantPoliciesChanged)
        .await
        .unwrap_or_default();
    assert_eq!(
        saves.iter().map(|e| e.status).collect::<Vec<_>>(),
        [AuditStatus::Failure]
    );
}

/// Refused administrative changes (a duplicate name, a missing role, an
/// invalid model) are typed and write nothing; the audited variant also
/// reads back the success and failure events.
pub async fn refused_administrative_changes_write_nothing<S: ConformanceStore>(s: S) {
    rbac_audit(s, NoAudit).await;
}

/// Template links are part of the stored model: linking one makes a new
/// version (validated, seen by every instance at its next decision),
/// unlinking another, and a link naming no template is refused with nothing
/// saved.
pub async fn template_links_are_versions_of_the_model<S: ConformanceStore>(s: S) {
    let w = World::mfa(s.clone(), 57).await;
    let t = w.tenant.id;
    let bob = w.user("bob").await;
    let one = AuthzService::new(s.clone(), w.svc.env().clone());
    let two = AuthzService::new(s.clone(), w.svc.env().clone());
    let template = r#"@id("share") permit(principal == ?principal, action == App::Action::"read", resource == ?resource);"#;
    one.save_model(t, RBAC_SCHEMA, template, None, &w.client)
        .await
        .unwrap();
    one.change_rbac(t, &create(RbacKind::Service, "docs"), &w.client)
        .await
        .unwrap();
    let b = record(t, bob.id, w.svc.env().now());
    let reads = |authz: &AuthzService<S>| {
        let (authz, b) = (authz.clone(), b.clone());
        async move {
            authz
                .decide(&b, &action("read"), &service(t, "docs"), Default::default())
                .await
                .unwrap()
        }
    };
    assert!(!reads(&two).await.allowed);
    let link = TemplateLink {
        id: "bob-reads-docs".to_owned(),
        template: "share".to_owned(),
        principal: Some(format!("Countersign::User::\"{}\"", bob.id)),
        resource: Some(r#"Countersign::Service::"docs""#.to_owned()),
    };
    assert_eq!(
        one.link_template(t, link.clone(), &w.client).await.unwrap(),
        2
    );
    let d = reads(&two).await;
    assert!(d.allowed && d.reasons == ["bob-reads-docs"], "{d:?}");
    assert_eq!(s.policy_document(t).await.unwrap().unwrap().links, [link]);
    // A link naming no template: refused, nothing saved.
    let bad = TemplateLink {
        id: "x".to_owned(),
        template: "nope".to_owned(),
        principal: None,
        resource: None,
    };
    let err = two.link_template(t, bad, &w.client).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
    assert_eq!(s.policy_document(t).await.unwrap().unwrap().version, 2);
    assert!(
        two.unlink_template(t, "bob-reads-docs", &w.client)
            .await
            .unwrap()
    );
    assert!(
        !two.unlink_template(t, "bob-reads-docs", &w.client)
            .await
            .unwrap()
    );
    assert!(!reads(&one).await.allowed);
}
