//! Several nodes over one database: two `PostgresStore`s connected
//! independently (two pools, as two processes have) to the same schema,
//! each with its own `AuthzService`. A policy or RBAC change made through
//! one node is seen by the other at its next decision, because every
//! decision checks the store's versions (one cheap read) before reusing
//! its compiled model. First sign-ins with one federated identity racing
//! on both nodes create one account; rate-limit hits through both nodes
//! are counted as one counter.

use std::str::FromStr;
use std::sync::Arc;

use countersign_core::authz::{EntityUid, RBAC_POLICY_ID};
use countersign_core::{
    AuditKind, AuditStatus, AuthRecord, AuthzService, AuthzVersions, Decision, Env, FactorKind,
    FederatedStore, IdentityAdmin, IdentityLookup, LinkedIdentity, MethodName, PassedFactor,
    RateLimitStore, RbacChange, RbacKind, RbacLookup, RbacName, Resource, RoleAssignment,
    RoleGrant, StoreError, StoreErrorKind, TenantId, UserId,
};
use countersign_postgres::PostgresStore;
use countersign_postgres::testing::{migrated, new_schema, options};
use countersign_testkit::fixtures::{Fx, World, at};
use tokio::sync::Barrier;

use crate::{count, run};

/// One action, `read`, an RBAC permission on services.
const SCHEMA: &str = r#"
namespace App {
  action read appliesTo { principal: Countersign::User, resource: Countersign::Service };
}
"#;

/// The id of the forbid policy node B saves.
const FORBID_ID: &str = "no-alice-read";

/// A node's store: its own pool on `schema`, named `<schema>_<node>` in
/// `pg_stat_activity`. Each node migrates on start, as a process would
/// (the second finds the schema current).
async fn node(schema: &str, node: &str) -> PostgresStore {
    let mut o = options(schema);
    o.application_name = Some(format!("{schema}_{node}"));
    migrated(o).await
}

fn name(s: &str) -> RbacName {
    RbacName::new(s).unwrap()
}

fn reader_in_docs(user: UserId) -> RoleAssignment {
    RoleAssignment {
        user,
        role: name("reader"),
        service: name("docs"),
    }
}

/// A password login's record of `user` in `tenant`, at `at`.
fn record(tenant: TenantId, user: UserId, at: chrono::DateTime<chrono::Utc>) -> AuthRecord {
    AuthRecord {
        tenant_id: tenant,
        user_id: user,
        method: MethodName::parse("pwd").unwrap(),
        factors: vec![PassedFactor {
            kind: FactorKind::Password,
            at,
        }],
        at,
    }
}

/// Whether `who` may read `docs`, decided by `authz`; never an error.
async fn read_docs(authz: &AuthzService<PostgresStore>, who: &AuthRecord) -> Decision {
    let read = EntityUid::from_str(r#"App::Action::"read""#).unwrap();
    let docs = Resource {
        tenant: who.tenant_id,
        uid: EntityUid::from_str(r#"Countersign::Service::"docs""#).unwrap(),
    };
    let d = authz
        .decide(who, &read, &docs, Default::default())
        .await
        .unwrap();
    assert!(d.errors.is_empty(), "{d:?}");
    d
}

/// The tenant's versions as both nodes read them: they must agree.
async fn agreed(a: &PostgresStore, b: &PostgresStore, tenant: TenantId) -> AuthzVersions {
    let va = a.authz_versions(tenant).await.unwrap();
    let vb = b.authz_versions(tenant).await.unwrap();
    assert_eq!(va, vb, "the nodes read different versions");
    va
}

/// Two nodes, two pools, one schema: an assignment made on A is allowed
/// by B's very next decision, B's unassignment denies at A's next, and a
/// forbid saved on B denies at A's next with the forbid as the reason.
/// Between changes both nodes read the same versions, and B decides the
/// same way 200 times in a row.
#[test]
fn a_change_on_one_node_is_seen_by_another_nodes_next_decision() {
    run(async {
        let schema = new_schema().await;
        let store_a = node(&schema, "a").await;
        let store_b = node(&schema, "b").await;
        // Two pools, each its own connections, in the same schema.
        for (store, n) in [(&store_a, "a"), (&store_b, "b")] {
            let (app, current): (String, String) = sqlx::query_as(
                "SELECT current_setting('application_name'), current_schema()::text",
            )
            .fetch_one(store.pool())
            .await
            .unwrap();
            assert_eq!((app, current), (format!("{schema}_{n}"), schema.clone()));
        }

        // The tenant and alice, provisioned through node A.
        let w = World::mfa(store_a.clone(), 60).await;
        let t = w.tenant.id;
        let alice = w.user("alice").await;
        let node_a = AuthzService::new(store_a.clone(), w.svc.env().clone());
        // Node B has an environment of its own (the same fixed start time).
        let (env_b, _clock_b) = Env::manual(61);
        let node_b = AuthzService::new(store_b.clone(), env_b);
        let who = record(t, alice.id, w.svc.env().now());
        let before = agreed(&store_a, &store_b, t).await;

        // 1. A saves the model and the RBAC data; B denies alice (no
        // assignment).
        assert_eq!(
            node_a
                .save_model(t, SCHEMA, "", None, &w.client)
                .await
                .unwrap(),
            1
        );
        let setup = [
            RbacChange::Create {
                kind: RbacKind::Service,
                name: name("docs"),
            },
            RbacChange::Create {
                kind: RbacKind::Permission,
                name: name("read"),
            },
            RbacChange::Create {
                kind: RbacKind::Role,
                name: name("reader"),
            },
            RbacChange::Grant(RoleGrant {
                role: name("reader"),
                permission: name("read"),
                service: Some(name("docs")),
            }),
        ];
        for c in &setup {
            node_a.change_rbac(t, c, &w.client).await.unwrap();
        }
        let v1 = agreed(&store_a, &store_b, t).await;
        assert_eq!(v1.policies, Some(1));
        assert!(v1.rbac > before.rbac, "{before:?} -> {v1:?}");
        let d = read_docs(&node_b, &who).await;
        assert!(!d.allowed && d.reasons.is_empty(), "{d:?}");

        // 2. A assigns reader to alice in docs; B's very next decision
        // allows, by the RBAC policy.
        node_a
            .change_rbac(t, &RbacChange::Assign(reader_in_docs(alice.id)), &w.client)
            .await
            .unwrap();
        let v2 = agreed(&store_a, &store_b, t).await;
        assert_eq!(v2.policies, v1.policies);
        assert!(v2.rbac > v1.rbac, "{v1:?} -> {v2:?}");
        let allowed = read_docs(&node_b, &who).await;
        assert!(allowed.allowed, "{allowed:?}");
        assert_eq!(allowed.reasons, [RBAC_POLICY_ID]);

        // 5. Nothing changes: 200 decisions in a row on B agree, and the
        // versions the nodes read stay where they were.
        for i in 0..200 {
            let d = read_docs(&node_b, &who).await;
            assert_eq!(d, allowed, "decision {i} with nothing changed");
        }
        assert_eq!(agreed(&store_a, &store_b, t).await, v2);

        // 3. A decides too (now holding the assignment); B unassigns; A's
        // next decision denies.
        assert!(read_docs(&node_a, &who).await.allowed);
        node_b
            .change_rbac(
                t,
                &RbacChange::Unassign(reader_in_docs(alice.id)),
                &w.client,
            )
            .await
            .unwrap();
        let v3 = agreed(&store_a, &store_b, t).await;
        assert!(v3.rbac > v2.rbac, "{v2:?} -> {v3:?}");
        let d = read_docs(&node_a, &who).await;
        assert!(!d.allowed && d.reasons.is_empty(), "{d:?}");

        // 4. Alice holds reader again (A allows), then B saves a model
        // version forbidding her to read; A's next decision denies, with
        // the forbid as the reason.
        node_a
            .change_rbac(t, &RbacChange::Assign(reader_in_docs(alice.id)), &w.client)
            .await
            .unwrap();
        assert!(read_docs(&node_a, &who).await.allowed);
        let forbid = format!(
            "@id(\"{FORBID_ID}\")\nforbid(principal == Countersign::User::\"{}\", \
             action == App::Action::\"read\", resource);\n",
            alice.id
        );
        assert_eq!(
            node_b
                .save_model(t, SCHEMA, &forbid, Some(1), &w.client)
                .await
                .unwrap(),
            2
        );
        let v4 = agreed(&store_a, &store_b, t).await;
        assert_eq!(v4.policies, Some(2));
        let d = read_docs(&node_a, &who).await;
        assert!(!d.allowed, "{d:?}");
        assert!(d.reasons.iter().any(|r| r == FORBID_ID), "{d:?}");
        // And B, which saved it, decides the same.
        assert_eq!(read_docs(&node_b, &who).await, d);
        assert_eq!(agreed(&store_a, &store_b, t).await, v4);
    });
}

/// Two nodes, two pools, one schema: in each of 8 rounds, 12 first
/// sign-ins with one identity (each creating its own user) race through
/// both nodes at once. Exactly one succeeds, every other is `Conflict`,
/// and exactly one account results, linked, seen alike by both nodes.
#[test]
fn concurrent_first_sign_ins_on_two_nodes_create_one_account() {
    run(async {
        let schema = new_schema().await;
        let store_a = node(&schema, "a").await;
        let store_b = node(&schema, "b").await;
        let fx = Fx::new(62);
        let p = fx.tenant("acme");
        let t = p.tenant().id;
        store_a.provision_tenant(&p).await.unwrap();
        const ISSUER: &str = "https://accounts.example.com";
        let mut accounts = Vec::new();
        for round in 0..8 {
            let subject = format!("sub-{round}");
            let mut tasks = Vec::new();
            for i in 0..12 {
                let store = if i % 2 == 0 {
                    store_a.clone()
                } else {
                    store_b.clone()
                };
                let u = fx.user(t, &format!("r{round}-user-{i}"));
                let link = LinkedIdentity {
                    tenant_id: t,
                    user_id: u.id,
                    issuer: ISSUER.to_owned(),
                    subject: subject.clone(),
                    email: u.email.clone(),
                    linked_at: at(round),
                };
                let e = fx.event(
                    t,
                    Some(u.id),
                    AuditKind::UserRegistered,
                    AuditStatus::Success,
                    at(round),
                );
                tasks.push(tokio::spawn(async move {
                    let r = store.create_linked_user(&u, &link, &e).await;
                    (r.map_err(|err| err.kind()), u.id)
                }));
            }
            let mut winners = Vec::new();
            for task in tasks {
                match task.await.unwrap() {
                    (Ok(()), id) => winners.push(id),
                    (Err(k), _) => assert_eq!(k, StoreErrorKind::Conflict, "round {round}"),
                }
            }
            assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
            for store in [&store_a, &store_b] {
                let found = store
                    .find_linked_identity(t, ISSUER, &subject)
                    .await
                    .unwrap()
                    .map(|l| l.user_id);
                assert_eq!(found, Some(winners[0]), "round {round}");
            }
            accounts.push(winners[0]);
        }
        // One account per round: every loser's user row was rolled back.
        for store in [&store_a, &store_b] {
            let users: Vec<UserId> = store
                .list_users(t, None, 1000)
                .await
                .unwrap()
                .into_iter()
                .map(|u| u.id)
                .collect();
            let mut want = accounts.clone();
            want.sort();
            assert_eq!(users, want);
        }
        let links = count(store_a.pool(), "SELECT count(*) FROM cs_linked_identities").await;
        assert_eq!(links, 8);
    });
}

/// Two nodes counting one rate limit: in each of 12 rounds, 16 hits on
/// one key race through both nodes at once (released by a barrier), on a
/// new key or one whose window just ended. They get the counts `1..=16`,
/// each once, exactly `limit` allowed, one window end for all.
#[test]
fn rate_limit_hits_on_two_nodes_are_counted_exactly() {
    run(async {
        let schema = new_schema().await;
        let store_a = node(&schema, "a").await;
        let store_b = node(&schema, "b").await;
        const RACERS: u32 = 16;
        let window = std::time::Duration::from_secs(60);
        for round in 0..12i64 {
            let key = format!("login:ip:198.51.100.{}", round % 3);
            let now = at(round * 60);
            let gate = Arc::new(Barrier::new(RACERS as usize));
            let mut tasks = Vec::new();
            for i in 0..RACERS {
                let store = if i % 2 == 0 {
                    store_a.clone()
                } else {
                    store_b.clone()
                };
                let (key, gate) = (key.clone(), Arc::clone(&gate));
                tasks.push(tokio::spawn(async move {
                    gate.wait().await;
                    store.hit(&key, 5, window, now).await.unwrap()
                }));
            }
            let mut decisions = Vec::new();
            for task in tasks {
                decisions.push(task.await.unwrap());
            }
            let mut counts: Vec<u32> = decisions.iter().map(|d| d.count).collect();
            counts.sort_unstable();
            assert_eq!(counts, (1..=RACERS).collect::<Vec<_>>(), "round {round}");
            assert_eq!(decisions.iter().filter(|d| d.allowed).count(), 5);
            let end = at(round * 60 + 60);
            assert!(decisions.iter().all(|d| d.reset_at == end), "round {round}");
        }
        let rows = count(store_a.pool(), "SELECT count(*) FROM cs_rate_limits").await;
        assert_eq!(rows, 3);
    });
}
