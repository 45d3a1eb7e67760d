//! Authorization decisions through `AuthzService` on the memory backend
//! (the version check, the cache, the decision), as latency percentiles
//! over many single decisions, beside their floor measured in the same
//! run: raw cedar-policy on the same policy set and entities, building the
//! same context per request. Rounds alternate between the two so that
//! noise hits both. Tenants of 10, 1,000 and 10,000 RBAC grants.
//!
//! Run: `cargo xtask bench authz` (prints a table; no divan).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::print_stdout,
    missing_docs,
    reason = "benchmark"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use cedar_policy::{Authorizer, Context, EntityUid, Request, RestrictedExpression as R};
use countersign_core::authz::{AuthzData, TenantAuthz, UserFacts};
use countersign_core::{AccountState, AuthRecord};
use countersign_memory::MemoryStore;
use countersign_testkit::bench::{AuthzBench, provision_rbac, runtime};

const SIZES: &[usize] = &[10, 1_000, 10_000];
const ROUNDS: usize = 10;
const PER_ROUND: usize = 2_000;

fn main() {
    // `cargo bench -- <filter>`: run only when the filter names this bench.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if !args.is_empty() && !args.iter().any(|a| "authz".contains(a.as_str())) {
        return;
    }
    let rt = runtime();
    println!("authz decisions, memory backend ({ROUNDS} rounds x {PER_ROUND} decisions each way)");
    println!("| grants | service p50 | service p99 | floor p50 | floor p99 | p50 ratio |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for &grants in SIZES {
        let bench = rt.block_on(provision_rbac(MemoryStore::new(), grants));
        let floor = Floor::new(&rt, &bench);
        let (mut ours, mut raw) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            for i in 0..PER_ROUND {
                let (who, action, resource) =
                    &bench.requests[(round * PER_ROUND + i) % bench.requests.len()];
                let start = Instant::now();
                let d = rt
                    .block_on(
                        bench
                            .authz
                            .decide(who, action, resource, Default::default()),
                    )
                    .unwrap();
                ours.push(start.elapsed());
                assert!(d.allowed);
            }
            for i in 0..PER_ROUND {
                let (who, action, resource) =
                    &bench.requests[(round * PER_ROUND + i) % bench.requests.len()];
                let start = Instant::now();
                // The same runtime hop as the service's call.
                let allowed = rt.block_on(async { floor.decide(who, action, &resource.uid) });
                raw.push(start.elapsed());
                assert!(allowed);
            }
        }
        let (o50, o99) = percentiles(&mut ours);
        let (f50, f99) = percentiles(&mut raw);
        println!(
            "| {grants} | {} | {} | {} | {} | {:.2}x |",
            us(o50),
            us(o99),
            us(f50),
            us(f99),
            o50.as_secs_f64() / f50.as_secs_f64()
        );
    }
}

/// Raw Cedar on the policy set and entities the service decides with.
struct Floor {
    model: Arc<countersign_core::authz::AuthzModel>,
    compiled: TenantAuthz,
}

impl Floor {
    fn new(rt: &tokio::runtime::Runtime, bench: &AuthzBench<MemoryStore>) -> Self {
        let model = rt
            .block_on(bench.authz.model(bench.tenant))
            .unwrap()
            .unwrap();
        let users = bench
            .requests
            .iter()
            .map(|(who, _, _)| UserFacts {
                id: who.user_id,
                tenant: bench.tenant,
                state: AccountState::Active,
                tier: None,
                attributes: Default::default(),
            })
            .collect();
        let data = AuthzData::from_snapshot(&bench.snapshot, users, Vec::new());
        let compiled = TenantAuthz::build(model.clone(), bench.snapshot.version, &data).unwrap();
        Self { model, compiled }
    }

    fn decide(&self, who: &AuthRecord, action: &EntityUid, service: &EntityUid) -> bool {
        let s = |v: &str| R::new_string(v.to_owned());
        let auth = R::new_record([
            ("method".to_owned(), s(who.method.as_str())),
            ("factors".to_owned(), R::new_set([s("password")])),
            ("acr".to_owned(), s("sfa")),
            ("mfa".to_owned(), R::new_bool(false)),
            ("auth_time".to_owned(), R::new_long(who.at.timestamp())),
            ("age".to_owned(), R::new_long(0)),
        ])
        .unwrap();
        let grant: EntityUid = format!(
            "Countersign::Permission::\"{}/{}\"",
            service.id().unescaped(),
            action.id().unescaped()
        )
        .parse()
        .unwrap();
        let context = Context::from_pairs([
            ("authentication".to_owned(), auth),
            ("grants".to_owned(), R::new_set([R::new_entity_uid(grant)])),
        ])
        .unwrap();
        let principal: EntityUid = format!("Countersign::User::\"{}\"", who.user_id)
            .parse()
            .unwrap();
        let request =
            Request::new(principal, action.clone(), service.clone(), context, None).unwrap();
        Authorizer::new()
            .is_authorized(&request, self.model.policies(), self.compiled.entities())
            .decision()
            == cedar_policy::Decision::Allow
    }
}

fn percentiles(v: &mut [Duration]) -> (Duration, Duration) {
    v.sort_unstable();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.50), at(0.99))
}

fn us(d: Duration) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6)
}
