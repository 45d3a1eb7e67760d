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
    AccountState, AuthnService, ClientInfo, Env, FactorResponse, IdentityAdmin, IdentityLookup,
    LoginStatus, NewTenant, NewUser, PasswordHasher, RbacChange, RbacKind, RbacLookup, RbacName,
    RbacStore, SessionService, StoreError, StoreErrorKind,
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

#[test]
fn every_trait_is_listed_once_at_its_own_index() {
    for (i, t) in StoreTrait::ALL.into_iter().enumerate() {
        assert_eq!(t as usize, i, "{t}");
        assert_eq!(
            StoreTrait::ALL
                .iter()
                .filter(|u| u.name() == t.name())
                .count(),
            1,
            "{t}"
        );
    }
    let names: Vec<&str> = StoreTrait::ALL.iter().map(|t| t.name()).collect();
    assert!(names.contains(&"RbacLookup") && names.contains(&"RbacStore"));
}

#[tokio::test]
async fn rbac_calls_count_under_their_own_traits() {
    let store = fresh().await;
    let fx = countersign_testkit::fixtures::Fx::new(8);
    let p = fx.tenant("acme");
    store.provision_tenant(&p).await.unwrap();
    let tenant = p.tenant().id;
    store.reset();

    let editor = RbacChange::Create {
        kind: RbacKind::Role,
        name: RbacName::new("editor").unwrap(),
    };
    assert_eq!(
        store
            .apply_rbac_change(tenant, &editor, None)
            .await
            .unwrap(),
        1
    );
    // The same name again is refused: a call and an error.
    let again = store.apply_rbac_change(tenant, &editor, None).await;
    assert_eq!(again.unwrap_err().kind(), StoreErrorKind::Conflict);
    assert_eq!(store.authz_versions(tenant).await.unwrap().rbac, 1);
    let roles = store.rbac_names(tenant, RbacKind::Role).await.unwrap();
    assert_eq!(roles, [RbacName::new("editor").unwrap()]);

    let counts = store.counts();
    assert_eq!(
        counts.get(StoreTrait::RbacStore),
        Tally {
            calls: 2,
            errors: 1
        }
    );
    assert_eq!(
        counts.get(StoreTrait::RbacLookup),
        Tally {
            calls: 2,
            errors: 0
        }
    );
    assert_eq!(counts.total().calls, 4, "{counts}");
    assert!(counts.to_string().contains("RbacStore: 2 calls, 1 errors"));
}

/// `AuthzService::decide` reads the tenant's versions once per decision and
/// nothing else while nothing changed (its entities are cached per
/// version); a change makes the next decision reload the data.
#[tokio::test]
async fn a_warm_decision_makes_one_store_call() {
    use countersign_core::authz::EntityUid;
    use countersign_core::{AuthRecord, AuthzService, MethodName, Resource, RoleAssignment};
    let store = fresh().await;
    let (env, _clock) = Env::manual(9);
    let authn = AuthnService::new(store.clone(), env.clone(), PasswordHasher::owasp().unwrap());
    let tenant = authn
        .provision_tenant(NewTenant::password_only("acme", "Acme Inc").unwrap())
        .await
        .unwrap()
        .id;
    let client = ClientInfo::default();
    let alice = authn
        .register_user(
            tenant,
            NewUser {
                identifier: "alice",
                state: Some(AccountState::Active),
                ..NewUser::default()
            },
            &client,
        )
        .await
        .unwrap();
    let authz = AuthzService::new(store.clone(), env.clone());
    authz
        .grant_tenant_admin(tenant, alice.id, &client)
        .await
        .unwrap();
    let auth = AuthRecord {
        tenant_id: tenant,
        user_id: alice.id,
        method: MethodName::parse("password").unwrap(),
        factors: vec![],
        at: env.now(),
    };
    let action: EntityUid = r#"Countersign::Action::"manage_users""#.parse().unwrap();
    let resource = Resource {
        tenant,
        uid: r#"Countersign::Service::"countersign""#.parse().unwrap(),
    };
    let decide = || authz.decide(&auth, &action, &resource, Default::default());
    assert!(decide().await.unwrap().allowed);

    store.reset();
    for _ in 0..3 {
        assert!(decide().await.unwrap().allowed);
    }
    let counts = store.counts();
    for t in StoreTrait::ALL {
        let want = if t == StoreTrait::RbacLookup { 3 } else { 0 };
        assert_eq!(counts.get(t).calls, want, "{t:?}");
    }

    // A change: the next decision reloads the snapshot, then it is warm again.
    let unassign = RbacChange::Unassign(RoleAssignment {
        user: alice.id,
        role: RbacName::new("admin").unwrap(),
        service: RbacName::new("countersign").unwrap(),
    });
    authz.change_rbac(tenant, &unassign, &client).await.unwrap();
    assert!(!decide().await.unwrap().allowed);
    store.reset();
    assert!(!decide().await.unwrap().allowed);
    assert_eq!(store.counts().get(StoreTrait::RbacLookup).calls, 1);
}
