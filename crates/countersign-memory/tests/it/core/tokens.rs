//! Malformed tokens are refused before any store access.

use countersign_core::{Error, IdentityLookup, SessionService, StoreErrorKind, TenantId};

use super::support::world;

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
