//! Malformed tokens are refused before any store access; optional claims
//! cost a store call only when configured.

use std::time::Duration;

use countersign_core::{
    AccessTokenClaims, AccessTokenPolicy, Error, IdentityLookup, RbacLookup, RbacName,
    SessionPolicy, SessionService, StoreErrorKind, TenantId,
};
use countersign_testkit::fixtures::sign_in;

use super::support::{World, mfa_world, world};

async fn set_claims(w: &World, claims: AccessTokenClaims) {
    let mut policy = w.tenant.policy.clone();
    policy.sessions = SessionPolicy {
        access_tokens: Some(AccessTokenPolicy {
            claims,
            ..AccessTokenPolicy::new("api", Duration::from_secs(300))
        }),
        ..SessionPolicy::default()
    };
    w.svc
        .update_tenant_policy(w.tenant.id, policy)
        .await
        .unwrap();
}

/// Without `roles_in`, minting a token never reads roles (a fault armed on
/// `user_roles` survives a login and a refresh, `tenant` included: the
/// tenant is already read); with it, a login reads them, and a failed read
/// fails the login closed, before any session is stored.
#[tokio::test]
async fn the_roles_claim_reads_the_store_only_when_configured() {
    let w = mfa_world(43).await;
    let alice = w.user("alice").await;
    let docs = RbacName::new("docs").unwrap();
    let armed = || async {
        // The armed fault is still there only if nothing consumed it.
        w.store
            .user_roles(w.tenant.id, alice.id, &docs)
            .await
            .is_err()
    };
    set_claims(
        &w,
        AccessTokenClaims {
            tenant: true,
            roles_in: None,
            tier: false,
        },
    )
    .await;
    w.store
        .fail_next_on("user_roles", 1, StoreErrorKind::Transient);
    let issued = w
        .sessions
        .issue(&sign_in(&w, &alice).await, &w.client)
        .await
        .unwrap();
    w.sessions
        .refresh(issued.refresh_token.unwrap().expose(), &w.client)
        .await
        .unwrap();
    assert!(armed().await, "no roles_in: no user_roles call");

    set_claims(
        &w,
        AccessTokenClaims {
            tenant: false,
            roles_in: Some(docs.clone()),
            tier: false,
        },
    )
    .await;
    let before = w
        .sessions
        .sessions(w.tenant.id, alice.id)
        .await
        .unwrap()
        .len();
    w.store
        .fail_next_on("user_roles", 1, StoreErrorKind::Transient);
    let refused = w
        .sessions
        .issue(&sign_in(&w, &alice).await, &w.client)
        .await;
    assert!(
        matches!(
            refused,
            Err(Error::Store {
                kind: StoreErrorKind::Transient,
                ..
            })
        ),
        "{refused:?}"
    );
    assert!(!armed().await, "the login consumed the fault");
    assert_eq!(
        w.sessions
            .sessions(w.tenant.id, alice.id)
            .await
            .unwrap()
            .len(),
        before,
        "no session stored"
    );
    let jwt = w
        .sessions
        .issue(&sign_in(&w, &alice).await, &w.client)
        .await
        .unwrap()
        .access_token
        .unwrap();
    let claims = w.sessions.verify_access_token(&jwt).await.unwrap();
    assert_eq!((claims.tenant, claims.roles), (None, Some(vec![])));
}

#[tokio::test]
async fn malformed_tokens_never_reach_the_store() {
    let w = world(40).await;
    let sessions = SessionService::new(
        w.store.clone(),
        w.svc.env().clone(),
        "https://auth.example.com",
    );
    let body = "A".repeat(43);
    let bad = [
        String::new(),
        "css_".into(),
        format!("css_{}", &body[..42]),
        format!("css_{body}A"),
        format!("csr_{body}"),
        format!("xyz_{body}"),
        format!("css_{}", "!".repeat(43)),
        format!("css_{}", "a".repeat(1_000_000)),
        body.clone(),
    ];
    let untouched = || async {
        // The armed fault is still there only if nothing consumed it.
        w.store.get_tenant(TenantId::SYSTEM).await.is_err()
    };
    for token in &bad {
        // Arm a fault: a store access would fail with it (and consume it).
        w.store.fail_next(1, StoreErrorKind::Transient);
        let r = sessions.validate(token).await;
        assert!(
            matches!(r, Err(Error::InvalidInput(_))),
            "{token:.12}: {r:?}"
        );
        assert!(
            untouched().await,
            "validate touched the store for {token:.12}"
        );
        w.store.fail_next(1, StoreErrorKind::Transient);
        let r = sessions.logout(token, &w.client).await;
        assert!(
            matches!(r, Err(Error::InvalidInput(_))),
            "{token:.12}: {r:?}"
        );
        assert!(
            untouched().await,
            "logout touched the store for {token:.12}"
        );
        let refresh = token
            .replacen("css_", "csr_", 1)
            .replacen("csr_AAAA", "css_AAAA", 1);
        w.store.fail_next(1, StoreErrorKind::Transient);
        let r = sessions.refresh(&refresh, &w.client).await;
        assert!(
            matches!(r, Err(Error::InvalidInput(_))),
            "{refresh:.12}: {r:?}"
        );
        assert!(
            untouched().await,
            "refresh touched the store for {refresh:.12}"
        );
    }
}
