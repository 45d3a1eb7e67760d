//! Password-login throughput through `AuthnService` (memory backend, a
//! 2-worker tokio runtime) beside its floor: bare argon2id verification at
//! the same parameters on 2 threads. Each iteration runs a batch of
//! logins/verifications spread over both workers, so time per iteration is
//! inverse throughput; the ratio floor/service is the figure to watch
//! (target >= 0.9).
//!
//! Run: `cargo xtask bench login`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "benchmark"
)]

use std::sync::OnceLock;

use argon2::{Algorithm, Argon2, Params, Version};
use countersign_core::{
    AccountState, Argon2Params, AuthnService, ClientInfo, Env, FactorResponse, LoginStatus,
    NewTenant, NewUser, PasswordHasher, TenantId,
};
use countersign_memory::MemoryStore;

const BATCH: usize = 32;
const PASSWORD: &str = "correct horse battery staple";

fn main() {
    divan::main();
}

struct Fixture {
    rt: tokio::runtime::Runtime,
    svc: AuthnService<MemoryStore>,
    tenant: TenantId,
    phc: String,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rt = countersign_testkit::bench::runtime();
        let hasher = PasswordHasher::new(Argon2Params::OWASP, 2).unwrap();
        let svc = AuthnService::new(MemoryStore::new(), Env::system(), hasher.clone());
        let (tenant, phc) = rt.block_on(async {
            let t = svc
                .provision_tenant(NewTenant::password_only("bench", "Bench").unwrap())
                .await
                .unwrap();
            for i in 0..BATCH {
                let new = NewUser {
                    identifier: &format!("user{i}"),
                    password: Some(PASSWORD),
                    state: Some(AccountState::Active),
                    ..NewUser::default()
                };
                svc.register_user(t.id, new, &ClientInfo::default())
                    .await
                    .unwrap();
            }
            (t.id, hasher.hash(PASSWORD, &Env::system()).await.unwrap())
        });
        Fixture {
            rt,
            svc,
            tenant,
            phc,
        }
    })
}

/// Floor: BATCH bare argon2id verifications (m=19456 KiB, t=2, p=1) on 2
/// threads, each with its own reused buffer, as fast as argon2 goes.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn floor_bare_argon2_verify_batch() {
    let f = fixture();
    let hash = argon2::PasswordHash::new(&f.phc).unwrap();
    let salt = hash.salt.unwrap();
    let expected = hash.hash.unwrap();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let params = Params::new(19_456, 2, 1, Some(32)).unwrap();
                let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
                let mut blocks = vec![argon2::Block::default(); params.block_count()];
                for _ in 0..BATCH / 2 {
                    let mut out = [0u8; 32];
                    argon
                        .hash_password_into_with_memory(
                            PASSWORD.as_bytes(),
                            salt.as_ref(),
                            &mut out,
                            &mut blocks,
                        )
                        .unwrap();
                    assert_eq!(&out[..], expected.as_bytes());
                }
            });
        }
    });
}

/// BATCH full password logins (begin flow + submit password, audit,
/// lockout bookkeeping) through AuthnService, concurrently on the runtime.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn service_password_login_batch() {
    let f = fixture();
    f.rt.block_on(async {
        let mut tasks = Vec::with_capacity(BATCH);
        for i in 0..BATCH {
            let svc = f.svc.clone();
            let tenant = f.tenant;
            tasks.push(tokio::spawn(async move {
                let client = ClientInfo::default();
                let (flow, _) = svc
                    .begin_login(tenant, &format!("user{i}"), None, &client)
                    .await
                    .unwrap();
                let s = svc
                    .submit(
                        tenant,
                        flow.expose(),
                        FactorResponse::Password(PASSWORD),
                        &client,
                    )
                    .await
                    .unwrap();
                assert!(matches!(s.status, LoginStatus::Authenticated(_)));
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}
