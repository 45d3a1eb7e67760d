use std::time::Duration;

use countersign_core::{
    AccountState, Argon2Params, AuthnService, ClientInfo, Env, LockoutPolicy, ManualClock,
    NewTenant, NewUser, Outbox, PasswordHasher, Tenant, TenantPolicy, User,
};
use countersign_memory::MemoryStore;

pub const PASSWORD: &str = "correct horse battery staple";

pub struct World {
    pub svc: AuthnService<MemoryStore>,
    pub store: MemoryStore,
    pub clock: ManualClock,
    pub tenant: Tenant,
    pub client: ClientInfo,
}

pub fn hasher() -> PasswordHasher {
    PasswordHasher::new(Argon2Params::INSECURE_TEST, 2).unwrap()
}

pub fn policy(max: u32, window_secs: u64, lock_secs: u64) -> LockoutPolicy {
    LockoutPolicy {
        max_attempts: max,
        window: Duration::from_secs(window_secs),
        lock_duration: Duration::from_secs(lock_secs),
    }
}

pub use countersign_testkit::engine::mfa_tenant;

impl World {
    pub async fn new(seed: u64) -> Self {
        Self::with_policy(seed, LockoutPolicy::default()).await
    }

    pub async fn with_policy(seed: u64, lockout: LockoutPolicy) -> Self {
        let mut spec = NewTenant::password_only("acme", "Acme Inc").unwrap();
        spec.policy = TenantPolicy {
            lockout,
            ..TenantPolicy::default()
        };
        Self::with_tenant(seed, spec).await
    }

    pub async fn mfa(seed: u64) -> Self {
        Self::with_tenant(seed, mfa_tenant(LockoutPolicy::default())).await
    }

    pub async fn with_tenant(seed: u64, spec: NewTenant) -> Self {
        let (env, clock) = Env::manual(seed);
        let store = MemoryStore::new();
        let outbox = Outbox::new();
        let svc = AuthnService::new(store.clone(), env, hasher()).with_email_sender(outbox);
        let tenant = svc.provision_tenant(spec).await.unwrap();
        let client = ClientInfo::new(Some("198.51.100.4".parse().unwrap()), Some("tests/1"));
        Self {
            svc,
            store,
            clock,
            tenant,
            client,
        }
    }

    pub async fn user(&self, identifier: &str) -> User {
        self.svc
            .register_user(
                self.tenant.id,
                NewUser {
                    identifier,
                    password: Some(PASSWORD),
                    state: Some(AccountState::Active),
                    ..NewUser::default()
                },
                &self.client,
            )
            .await
            .unwrap()
    }

    pub async fn login(
        &self,
        identifier: &str,
        password: &str,
    ) -> countersign_core::Result<countersign_core::PasswordLogin> {
        self.svc
            .verify_password(self.tenant.id, identifier, password, &self.client)
            .await
    }
}
