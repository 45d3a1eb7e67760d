//! `AuthzService` on the memory store: what its docs promise beyond the
//! store's own guarantees.

use countersign_core::{AuditKind, AuthzService, Error, PolicyDocument, PolicyStore, TenantId};

use super::support::world;

const SCHEMA: &str = "namespace App { entity Document; }";

/// Every save is audited (with the save), and a stored document that no
/// longer validates (written around the service) is an error when served,
/// never a silently empty model.
#[tokio::test]
async fn saves_are_audited_and_broken_stored_models_are_errors() {
    let w = world(92).await;
    let authz = AuthzService::new(w.store.clone(), w.svc.env().clone());
    let t: TenantId = w.tenant.id;
    authz
        .save_model(t, SCHEMA, "", None, &w.client)
        .await
        .unwrap();
    let changes: Vec<_> = w
        .store
        .events()
        .into_iter()
        .filter(|e| e.kind == AuditKind::TenantPoliciesChanged && e.tenant_id == t)
        .collect();
    assert_eq!(changes.len(), 1);

    let broken = PolicyDocument {
        tenant_id: t,
        schema: SCHEMA.into(),
        policies: "permit(principal, action == Nope::\"x\", resource);".into(),
        links: Vec::new(),
        version: 0,
        updated_at: w.svc.env().now(),
    };
    assert!(
        w.store
            .compare_and_save_policy_document(&broken, Some(1), None)
            .await
            .unwrap()
    );
    let fresh = AuthzService::new(w.store.clone(), w.svc.env().clone());
    assert!(matches!(fresh.model(t).await, Err(Error::Authz(_))));
}
