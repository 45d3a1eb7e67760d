//! The custom backend proven: both testkit suites (audit included) over
//! `CountingStore<MemoryStore>`, and the counters checked on a real login.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    reason = "tests"
)]

use countersign_core::{
    AccountState, AuthnService, ClientInfo, Env, FactorResponse, IdentityLookup, LoginStatus,
    NewTenant, NewUser, PasswordHasher, SessionService, StoreError, StoreErrorKind,
};
use countersign_example_custom_backend::{CountingStore, StoreTrait, Tally};
use countersign_memory::MemoryStore;

/// An empty store for each test: the suites call it once per guarantee.
async fn fresh() -> CountingStore<MemoryStore> {
    CountingStore::new(MemoryStore::new())
}

countersign_testkit::conformance_suite!(fresh, audit);
countersign_testkit::engine_suite!(fresh, audit);

#[tokio::test]
async fn counters_count_calls_and_errors_per_trait_across_clones() {
    let store = fresh().await;
    let (env, _clock) = Env::manual(7);
    let authn = AuthnService::new(store.clone(), env.clone(), PasswordHasher::owasp().unwrap());
    let sessions = SessionService::new(store.clone(), env, "https://auth.example.com");
    let client = ClientInfo::default();

    let spec = NewTenant::password_only("acme", "Acme Inc").unwrap();
    let tenant = authn.provision_tenant(spec).await.unwrap();
    let user = NewUser {
        identifier: "alice@example.org",
        password: Some("correct horse battery staple"),
        state: Some(AccountState::Active),
        ..NewUser::default()
    };
    authn.register_user(tenant.id, user, &client).await.unwrap();
    let before = store.counts();
    assert!(before.get(StoreTrait::IdentityAdmin).calls >= 2, "{before}");
    assert_eq!(before.get(StoreTrait::FlowStore), Tally::default());

    // A login: a flow is created and advanced; a session issued and checked.
    let (flow, _) = authn
        .begin_login(tenant.id, "alice@example.org", None, &client)
        .await
        .unwrap();
    let password = FactorResponse::Password("correct horse battery staple");
    let step = authn
        .submit(tenant.id, flow.expose(), password, &client)
        .await
        .unwrap();
    let LoginStatus::Authenticated(auth) = step.status else {
        panic!("a password-only login ends after the password: {step:?}");
    };
    let issued = sessions.issue(&auth, &client).await.unwrap();
    store.reset();
    sessions
        .validate(issued.session_token.expose())
        .await
        .unwrap();
    let after = store.counts();
    assert_eq!(
        after.get(StoreTrait::SessionStore),
        Tally {
            calls: 1,
            errors: 0
        },
        "validating a session is one store call: {after}"
    );
    assert_eq!(after.total().calls, 1, "{after}");

    // A failing inner call counts as a call and an error, under its trait.
    store.inner().fail_next(1, StoreErrorKind::Transient);
    let failed = store.get_tenant(tenant.id).await;
    assert_eq!(failed.unwrap_err().kind(), StoreErrorKind::Transient);
    let found = store.get_tenant(tenant.id).await.unwrap();
    assert_eq!(found.map(|t| t.id), Some(tenant.id));
    let counts = store.counts();
    assert_eq!(
        counts.get(StoreTrait::IdentityLookup),
        Tally {
            calls: 2,
            errors: 1
        }
    );
    assert!(
        counts
            .to_string()
            .contains("IdentityLookup: 2 calls, 1 errors")
    );
}
