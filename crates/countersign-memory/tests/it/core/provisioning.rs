use countersign_core::{
    AuthMethod, AuthnService, Env, Error, FactorKind, FactorSettings, NewTenant, PasswordRules,
    PasswordSettings, Tenant, TenantId, TenantPolicy, TenantProvision, TenantSlug,
};
use countersign_memory::MemoryStore;

use super::support::hasher;

fn row(id: TenantId) -> Tenant {
    Tenant {
        id,
        slug: TenantSlug::parse("acme").unwrap(),
        name: "Acme".into(),
        policy: TenantPolicy::default(),
        created_at: Default::default(),
    }
}

fn pw() -> FactorSettings {
    FactorSettings::Password(PasswordSettings::default())
}

fn pw_method() -> AuthMethod {
    AuthMethod::sequence("password", &[FactorKind::Password]).unwrap()
}

#[test]
fn provisioning_invariants_hold_by_construction() {
    let (env, _) = Env::manual(1);
    let id = TenantId::generate(&env).unwrap();
    assert!(TenantProvision::new(row(id), vec![pw()], vec![pw_method()]).is_ok());
    // The system tenant cannot be provisioned.
    assert!(matches!(
        TenantProvision::new(row(TenantId::SYSTEM), vec![pw()], vec![pw_method()]),
        Err(Error::Reserved(_))
    ));
    // No factor, no method, a method on a factor not adopted, a factor twice.
    assert!(matches!(
        TenantProvision::new(row(id), vec![], vec![pw_method()]),
        Err(Error::Provisioning(_))
    ));
    assert!(matches!(
        TenantProvision::new(row(id), vec![pw()], vec![]),
        Err(Error::Provisioning(_))
    ));
    let totp = AuthMethod::sequence("mfa", &[FactorKind::Password, FactorKind::Totp]).unwrap();
    assert!(matches!(
        TenantProvision::new(row(id), vec![pw()], vec![totp]),
        Err(Error::Provisioning(_))
    ));
    assert!(matches!(
        TenantProvision::new(row(id), vec![pw(), pw()], vec![pw_method()]),
        Err(Error::Provisioning(_))
    ));
    assert!(matches!(
        TenantProvision::new(row(id), vec![pw()], vec![pw_method(), pw_method()]),
        Err(Error::Provisioning(_))
    ));
    // Invalid factor settings are refused too.
    let bad = FactorSettings::Password(PasswordSettings {
        rules: PasswordRules {
            max_length: 10,
            ..PasswordRules::default()
        },
    });
    assert!(matches!(
        TenantProvision::new(row(id), vec![bad], vec![pw_method()]),
        Err(Error::InvalidInput(_))
    ));
}

#[tokio::test]
async fn service_provisioning_refuses_bad_and_duplicate_tenants_without_writing() {
    let (env, _) = Env::manual(2);
    let store = MemoryStore::new();
    let svc = AuthnService::new(store.clone(), env, hasher());
    let t = svc
        .provision_tenant(NewTenant::password_only("acme", "Acme").unwrap())
        .await
        .unwrap();
    assert_eq!(svc.tenant_by_slug("acme").await.unwrap(), t);
    let before = store.snapshot();
    assert!(matches!(
        svc.provision_tenant(NewTenant::password_only("acme", "Again").unwrap())
            .await,
        Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(
        svc.provision_tenant(NewTenant::password_only("system", "Sneaky").unwrap())
            .await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        svc.provision_tenant(NewTenant::password_only("Bad Slug", "x").unwrap())
            .await,
        Err(Error::InvalidInput(_))
    ));
    let mut no_methods = NewTenant::password_only("empty", "x").unwrap();
    no_methods.methods.clear();
    assert!(matches!(
        svc.provision_tenant(no_methods).await,
        Err(Error::Provisioning(_))
    ));
    assert_eq!(store.snapshot(), before, "refusals write nothing");
    assert!(matches!(
        svc.tenant_by_slug("nobody").await,
        Err(Error::TenantNotFound)
    ));
}

/// Policies out of bounds that were once accepted: each is refused at
/// provisioning and at update with `InvalidInput`, and nothing is written.
fn bad_policies() -> Vec<(&'static str, TenantPolicy)> {
    use countersign_core::{AccessTokenPolicy, SessionPolicy};
    use std::time::Duration;
    let with = |sessions: SessionPolicy| TenantPolicy {
        sessions,
        ..TenantPolicy::default()
    };
    let tokens = |audience: &str, ttl: Duration| SessionPolicy {
        access_tokens: Some(AccessTokenPolicy::new(audience, ttl)),
        ..SessionPolicy::default()
    };
    vec![
        (
            "zero idle timeout",
            with(SessionPolicy {
                idle_timeout: Duration::ZERO,
                renew_within: Duration::ZERO,
                ..SessionPolicy::default()
            }),
        ),
        ("empty audience", with(tokens("", Duration::from_secs(300)))),
        (
            "over-long reuse grace",
            with(SessionPolicy {
                refresh_reuse_grace: Duration::from_secs(24 * 3600),
                ..SessionPolicy::default()
            }),
        ),
        (
            "a JWT living a day",
            with(tokens("api", Duration::from_secs(24 * 3600))),
        ),
    ]
}

#[tokio::test]
async fn provisioning_and_policy_updates_validate_the_whole_policy() {
    let (env, _) = Env::manual(3);
    let store = MemoryStore::new();
    let svc = AuthnService::new(store.clone(), env, hasher());
    let t = svc
        .provision_tenant(NewTenant::password_only("acme", "Acme").unwrap())
        .await
        .unwrap();
    let before = store.snapshot();
    for (what, policy) in bad_policies() {
        let spec = NewTenant::password_only("bad", "Bad")
            .unwrap()
            .policy(policy.clone());
        let r = svc.provision_tenant(spec).await;
        assert!(matches!(r, Err(Error::InvalidInput(_))), "{what}: {r:?}");
        let r = svc.update_tenant_policy(t.id, policy).await;
        assert!(matches!(r, Err(Error::InvalidInput(_))), "{what}: {r:?}");
        assert_eq!(store.snapshot(), before, "{what}: nothing written");
    }
    assert_eq!(svc.tenant_by_slug("acme").await.unwrap().policy, t.policy);
    assert!(matches!(
        svc.tenant_by_slug("bad").await,
        Err(Error::TenantNotFound)
    ));
}
