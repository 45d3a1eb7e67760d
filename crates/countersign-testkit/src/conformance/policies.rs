//! Tenant policy documents: the guarantees of `PolicyStore`.

use chrono::{DateTime, Duration, Utc};
use countersign_core::{PolicyDocument, StoreErrorKind, TemplateLink, TenantId};

use super::{acme, kind, tenant};
use crate::ConformanceStore;
use crate::fixtures::{Fx, at};

/// A document of `tenant` with these texts and template links naming them,
/// saved at `at`. Its version is
/// a deliberately wrong 99: stores ignore it.
fn doc(tenant: TenantId, policies: &str, at: DateTime<Utc>) -> PolicyDocument {
    PolicyDocument {
        tenant_id: tenant,
        schema: format!("entity User; // {policies}"),
        policies: policies.to_owned(),
        // Stores keep links as given; two, one slot each way.
        links: vec![
            TemplateLink {
                id: format!("share-{policies}"),
                template: "share".to_owned(),
                principal: Some(r#"User::"u1""#.to_owned()),
                resource: None,
            },
            TemplateLink {
                id: "see-all".to_owned(),
                template: "see".to_owned(),
                principal: None,
                resource: Some(r#"Doc::"d/1 \"quoted\"""#.to_owned()),
            },
        ],
        version: 99,
        updated_at: at,
    }
}

/// `d` as a store returns it once saved at `version`.
fn saved(d: &PolicyDocument, version: u64) -> PolicyDocument {
    PolicyDocument {
        version,
        ..d.clone()
    }
}

/// A first document reads back exactly (texts, microsecond timestamp), at
/// version 1 whatever `doc.version` said.
pub async fn policy_document_round_trips_at_version_one<S: ConformanceStore>(s: S) {
    let (_fx, t) = acme(&s, 80).await;
    assert_eq!(s.policy_document(t.id).await.unwrap(), None);
    let d = doc(
        t.id,
        "permit(principal, action, resource);\n// ünïcödé \"quoted\"",
        at(5) + Duration::microseconds(123_456),
    );
    assert!(
        s.compare_and_save_policy_document(&d, None, None)
            .await
            .unwrap()
    );
    assert_eq!(s.policy_document(t.id).await.unwrap(), Some(saved(&d, 1)));
}

/// A save succeeds only naming the stored version (`None` only while there
/// is none); the stored document is then the new one, one version up.
pub async fn policy_compare_and_save_checks_the_version<S: ConformanceStore>(s: S) {
    let (_fx, t) = acme(&s, 81).await;
    let v1 = doc(t.id, "v1", at(1));
    let v2 = doc(t.id, "v2", at(2));
    let v3 = doc(t.id, "v3", at(3));
    assert!(
        s.compare_and_save_policy_document(&v1, None, None)
            .await
            .unwrap()
    );
    assert!(
        !s.compare_and_save_policy_document(&v2, None, None)
            .await
            .unwrap()
    );
    assert!(
        !s.compare_and_save_policy_document(&v2, Some(2), None)
            .await
            .unwrap()
    );
    assert_eq!(s.policy_document(t.id).await.unwrap(), Some(saved(&v1, 1)));
    assert!(
        s.compare_and_save_policy_document(&v2, Some(1), None)
            .await
            .unwrap()
    );
    assert_eq!(s.policy_document(t.id).await.unwrap(), Some(saved(&v2, 2)));
    assert!(
        !s.compare_and_save_policy_document(&v3, Some(1), None)
            .await
            .unwrap()
    );
    assert!(
        s.compare_and_save_policy_document(&v3, Some(2), None)
            .await
            .unwrap()
    );
    assert_eq!(s.policy_document(t.id).await.unwrap(), Some(saved(&v3, 3)));
}

/// Of 32 concurrent saves naming the same version, exactly one wins, and
/// the stored document is the winner's.
pub async fn concurrent_policy_saves_have_exactly_one_winner<S: ConformanceStore>(s: S) {
    let (_fx, t) = acme(&s, 82).await;
    let first = doc(t.id, "first", at(1));
    assert!(
        s.compare_and_save_policy_document(&first, None, None)
            .await
            .unwrap()
    );
    let mut tasks = Vec::new();
    for i in 0..32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let d = doc(t.id, &format!("writer-{i}"), at(2));
            let won = s
                .compare_and_save_policy_document(&d, Some(1), None)
                .await
                .unwrap();
            (i, won)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (i, won) = task.await.unwrap();
        if won {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let want = doc(t.id, &format!("writer-{}", winners[0]), at(2));
    assert_eq!(
        s.policy_document(t.id).await.unwrap(),
        Some(saved(&want, 2))
    );
}

/// A tenant sees only its own document, and saving another tenant's
/// leaves it untouched.
pub async fn policy_documents_are_tenant_scoped<S: ConformanceStore>(s: S) {
    let fx = Fx::new(83);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let da = doc(a.id, "a's", at(1));
    assert!(
        s.compare_and_save_policy_document(&da, None, None)
            .await
            .unwrap()
    );
    assert_eq!(s.policy_document(b.id).await.unwrap(), None);
    // A's version names nothing in B.
    let db = doc(b.id, "b's", at(2));
    assert!(
        !s.compare_and_save_policy_document(&db, Some(1), None)
            .await
            .unwrap()
    );
    assert_eq!(s.policy_document(b.id).await.unwrap(), None);
    assert!(
        s.compare_and_save_policy_document(&db, None, None)
            .await
            .unwrap()
    );
    assert_eq!(s.policy_document(b.id).await.unwrap(), Some(saved(&db, 1)));
    assert_eq!(s.policy_document(a.id).await.unwrap(), Some(saved(&da, 1)));
}

/// Saving for a tenant that does not exist is `NotFound` and writes
/// nothing.
pub async fn policy_save_for_unknown_tenant_is_not_found<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 84).await;
    let ghost = fx.tenant_id();
    let d = doc(ghost, "ghost", at(1));
    assert_eq!(
        kind(s.compare_and_save_policy_document(&d, None, None).await),
        StoreErrorKind::NotFound
    );
    assert_eq!(s.policy_document(ghost).await.unwrap(), None);
    assert_eq!(s.policy_document(t.id).await.unwrap(), None);
}
