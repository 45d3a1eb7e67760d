//! Authorization through the login engine: a Cedar policy's demand for a
//! stronger or fresher authentication, met by the step-up flow.

use std::str::FromStr;
use std::sync::Arc;

use chrono::Duration;
use countersign_core::authz::{AppEntity, EntityUid, UserFacts};
use countersign_core::{
    AuthMethod, AuthzData, AuthzModel, AuthzService, Error, FactorKind, FactorResponse,
    LockoutPolicy, LoginStatus, NewTenant, Resource, StepUp, StepUpRequired, TenantAuthz, TenantId,
};

use super::{accepts, current_totp, enroll_totp, password_alone};
use crate::ConformanceStore;
use crate::fixtures::{World, mfa_tenant};

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
    let mut spec = mfa_tenant(LockoutPolicy::default());
    spec.methods
        .push(AuthMethod::sequence("pwd", &[FactorKind::Password]).unwrap());
    let w = World::with_tenant(s.clone(), 50, spec).await;
    let alice = w.user("alice").await;
    enroll_totp(&w, &alice).await;

    let model = AuthzModel::new(w.tenant.id, 1, SCHEMA, POLICIES).unwrap();
    let document = EntityUid::from_str(r#"App::Document::"d1""#).unwrap();
    let data = AuthzData {
        users: vec![UserFacts::from(&alice)],
        resources: vec![AppEntity {
            uid: document.clone(),
            attributes: serde_json::Map::new(),
            parents: vec![],
        }],
        ..AuthzData::default()
    };
    let authz = TenantAuthz::build(Arc::new(model), 1, &data).unwrap();
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
    let now = w.svc.env().now();
    let denied = authz.decide(&session.auth, &delete, &resource, Default::default(), now);
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
    let now = w.svc.env().now();
    w.sessions.require_recent(&session, &need).unwrap();
    let allowed = authz.decide(&session.auth, &delete, &resource, Default::default(), now);
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
