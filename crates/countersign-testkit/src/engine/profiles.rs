//! Profiles and tiers through the services: the tenant's schema enforced,
//! self-service limited to the editable fields, deactivation, the
//! administrators' search, and the tier in access tokens and decisions.

use std::str::FromStr;

use countersign_core::authz::EntityUid;
use countersign_core::store::MAX_PAGE;
use countersign_core::{
    AccessTokenClaims, AccountState, AttributeDecl, AttributeKind, Attributes, AuditKind,
    AuditStatus, AuthzService, DEACTIVATED_BY_USER, Error, NewUser, Notice, ProfileChange,
    ProfileSchema, Resource, SecurityEvent, SessionRecord, TenantPolicy, Tier, User, UserQuery,
};
use serde_json::json;

use super::{AuditLog, NoAudit, api_tokens};
use crate::ConformanceStore;
use crate::fixtures::{PASSWORD, World, sign_in};

const ALICE: &str = "alice@example.com";

/// The fixture schema: tiers free, premium (default free); `nickname`
/// (text, user-editable), `beta` (boolean, user-editable), `seats`
/// (integer 1 to 100) and `team` (red or blue), administrators' only.
fn schema() -> ProfileSchema {
    let decl = |name: &str, kind, user_editable| AttributeDecl {
        name: name.into(),
        kind,
        user_editable,
    };
    ProfileSchema {
        tiers: vec![Tier::free(), Tier::premium()],
        default_tier: Some(Tier::free()),
        attributes: vec![
            decl("nickname", AttributeKind::Text { max_chars: 4000 }, true),
            decl("beta", AttributeKind::Boolean, true),
            decl("seats", AttributeKind::Integer { min: 1, max: 100 }, false),
            decl(
                "team",
                AttributeKind::Choice {
                    values: vec!["red".into(), "blue".into()],
                },
                false,
            ),
        ],
    }
}

fn attrs(v: serde_json::Value) -> Attributes {
    serde_json::from_value(v).expect("attributes")
}

/// The `mfa` world with the fixture schema (and access tokens carrying
/// the tier) on its tenant, and its user `alice` (address [`ALICE`])
/// registered after it.
async fn world<S: ConformanceStore>(s: &S, seed: u64) -> (World<S>, User) {
    let w = World::mfa(s.clone(), seed).await;
    let mut sessions = api_tokens();
    if let Some(a) = &mut sessions.access_tokens {
        a.claims = AccessTokenClaims {
            tier: true,
            ..AccessTokenClaims::default()
        };
    }
    let policy = TenantPolicy {
        profile: schema(),
        sessions,
        ..w.tenant.policy.clone()
    };
    w.svc
        .update_tenant_policy(w.tenant.id, policy)
        .await
        .unwrap();
    let alice = w.user_with_address("alice", ALICE).await;
    (w, alice)
}

async fn stored<S: ConformanceStore>(w: &World<S>, u: &User) -> User {
    w.store.get_user(w.tenant.id, u.id).await.unwrap().unwrap()
}

/// A live session of `user`, freshly signed in.
async fn session<S: ConformanceStore>(w: &World<S>, user: &User) -> (SessionRecord, String) {
    let issued = w
        .sessions
        .issue(&sign_in(w, user).await, &w.client)
        .await
        .unwrap();
    let token = issued.session_token.expose().to_owned();
    let record = w.sessions.validate(&token).await.unwrap();
    (SessionRecord::clone(&record), token)
}

/// The fixture tenant's profile-change events with `status`, if `audit`
/// reads the log.
async fn profile_events<S: ConformanceStore>(
    w: &World<S>,
    audit: &impl AuditLog<S>,
    status: AuditStatus,
) -> Option<usize> {
    let events = audit.of_kind(w, AuditKind::ProfileChanged).await?;
    Some(events.iter().filter(|e| e.status == status).count())
}

/// An undeclared attribute, a value of the wrong kind or out of range,
/// attributes over 8 KiB, an unknown or malformed tier, a malformed
/// display name: each is `InvalidInput`, audited as a failure, and writes
/// nothing.
pub async fn bad_profile_changes_are_typed_audited_and_write_nothing<S: ConformanceStore>(s: S) {
    profile_refusals(s, NoAudit).await;
}

/// [`bad_profile_changes_are_typed_audited_and_write_nothing`], its audit
/// checks made through `audit`.
pub(crate) async fn profile_refusals<S: ConformanceStore>(s: S, audit: impl AuditLog<S>) {
    let (w, alice) = world(&s, 201).await;
    let before = stored(&w, &alice).await;
    let bad_attributes = [
        json!({"undeclared": 1}),
        json!({"seats": "3"}),
        json!({"seats": 101}),
        json!({"seats": 2.5}),
        json!({"team": "green"}),
        json!({"beta": "yes"}),
        json!({"team": "red", "seats": 0}),
        json!({"nickname": "x".repeat(4001)}),
    ];
    let mut refusals = 0;
    for bad in bad_attributes {
        let change = ProfileChange {
            attributes: Some(attrs(bad.clone())),
            ..ProfileChange::default()
        };
        let r = w
            .svc
            .update_profile(w.tenant.id, alice.id, change, &w.client)
            .await;
        assert!(matches!(r, Err(Error::InvalidInput(_))), "{bad}: {r:?}");
        refusals += 1;
    }
    // Over 8 KiB in declared, valid values alone.
    let mut wide = schema();
    wide.attributes[0].kind = AttributeKind::Text { max_chars: 8192 };
    let policy = TenantPolicy {
        profile: wide,
        ..w.svc.tenant_by_slug("acme").await.unwrap().policy
    };
    w.svc
        .update_tenant_policy(w.tenant.id, policy)
        .await
        .unwrap();
    let oversized = ProfileChange {
        attributes: Some(attrs(json!({"nickname": "x".repeat(8192)}))),
        ..ProfileChange::default()
    };
    let r = w
        .svc
        .update_profile(w.tenant.id, alice.id, oversized, &w.client)
        .await;
    assert!(matches!(r, Err(Error::InvalidInput(_))), "{r:?}");
    refusals += 1;
    for tier in ["gold", "Premium", ""] {
        let change = ProfileChange {
            tier: Some(Some(tier)),
            ..ProfileChange::default()
        };
        let r = w
            .svc
            .update_profile(w.tenant.id, alice.id, change, &w.client)
            .await;
        assert!(matches!(r, Err(Error::InvalidInput(_))), "{tier:?}: {r:?}");
        refusals += 1;
    }
    let control = ProfileChange {
        display_name: Some(Some("a\u{7}b")),
        ..ProfileChange::default()
    };
    let r = w
        .svc
        .update_profile(w.tenant.id, alice.id, control, &w.client)
        .await;
    assert!(matches!(r, Err(Error::InvalidInput(_))), "{r:?}");
    refusals += 1;
    assert_eq!(stored(&w, &alice).await, before, "nothing written");
    if let Some(failures) = profile_events(&w, &audit, AuditStatus::Failure).await {
        assert_eq!(failures, refusals);
    }
    if let Some(successes) = profile_events(&w, &audit, AuditStatus::Success).await {
        assert_eq!(successes, 0);
    }
    // A valid change goes through, and is audited once.
    let ok = ProfileChange {
        tier: Some(Some("premium")),
        attributes: Some(attrs(json!({"seats": 100, "team": "blue"}))),
        ..ProfileChange::default()
    };
    let changed = w
        .svc
        .update_profile(w.tenant.id, alice.id, ok, &w.client)
        .await
        .unwrap();
    assert_eq!(changed, stored(&w, &alice).await);
    assert_eq!(changed.tier, Some(Tier::premium()));
    if let Some(successes) = profile_events(&w, &audit, AuditStatus::Success).await {
        assert_eq!(successes, 1);
    }
}

/// A user changes their display name and the attributes the schema marks
/// editable; changing any other attribute is refused (audited, nothing
/// written), and the tier never moves.
pub async fn users_change_only_their_editable_fields<S: ConformanceStore>(s: S) {
    let (w, alice) = world(&s, 202).await;
    let admin_set = ProfileChange {
        attributes: Some(attrs(json!({"seats": 5, "team": "red"}))),
        ..ProfileChange::default()
    };
    w.svc
        .update_profile(w.tenant.id, alice.id, admin_set, &w.client)
        .await
        .unwrap();
    let (session, _) = session(&w, &alice).await;
    let me = w.svc.self_service(&session);
    // Editable attributes change, the others are kept as they are.
    let mine = attrs(json!({"seats": 5, "team": "red", "nickname": "Al", "beta": true}));
    let changed = me
        .update_profile(Some(Some("  Alice A. ")), Some(mine.clone()), &w.client)
        .await
        .unwrap();
    assert_eq!(changed.display_name.as_deref(), Some("Alice A."));
    assert_eq!(changed.attributes, mine);
    assert_eq!(changed.tier, Some(Tier::free()));
    assert_eq!(stored(&w, &alice).await, changed);
    // Changing or dropping an administrator's attribute is refused.
    for bad in [
        json!({"seats": 6, "team": "red", "nickname": "Al", "beta": true}),
        json!({"team": "red", "nickname": "Al", "beta": true}),
        json!({"seats": 5, "team": "blue"}),
    ] {
        let r = me
            .update_profile(None, Some(attrs(bad.clone())), &w.client)
            .await;
        assert!(matches!(r, Err(Error::InvalidInput(_))), "{bad}: {r:?}");
    }
    // Schema violations stay refused for users too.
    let r = me
        .update_profile(None, Some(attrs(json!({"beta": "no"}))), &w.client)
        .await;
    assert!(matches!(r, Err(Error::InvalidInput(_))), "{r:?}");
    assert_eq!(stored(&w, &alice).await, changed, "nothing written");
    // Clearing the display name alone keeps the rest.
    let cleared = me
        .update_profile(Some(None), None, &w.client)
        .await
        .unwrap();
    assert_eq!(cleared.display_name, None);
    assert_eq!(cleared.attributes, mine);
    assert_eq!(cleared.tier, Some(Tier::free()));
}

/// Deactivating one's own account deletes it softly (the row stays, with
/// its reason), ends every session, refuses later logins with the error
/// of a wrong password, and tells the owner.
pub async fn deactivation_ends_sessions_refuses_logins_and_tells_the_owner<S: ConformanceStore>(
    s: S,
) {
    let (w, alice) = world(&s, 203).await;
    let (session, token) = session(&w, &alice).await;
    let (_, other) = self::session(&w, &alice).await;
    w.svc
        .self_service(&session)
        .deactivate(&w.client)
        .await
        .unwrap();
    for t in [&token, &other] {
        assert!(matches!(
            w.sessions.validate(t).await,
            Err(Error::SessionInvalid)
        ));
    }
    let row = stored(&w, &alice).await;
    assert_eq!(row.state, AccountState::Deleted);
    assert_eq!(row.state_reason.as_deref(), Some(DEACTIVATED_BY_USER));
    assert!(matches!(
        w.login("alice", PASSWORD).await,
        Err(Error::InvalidCredentials)
    ));
    assert!(matches!(
        w.login("alice", "not the password at all").await,
        Err(Error::InvalidCredentials)
    ));
    assert_eq!(
        w.outbox.last_to(ALICE).unwrap().notice,
        Notice::Security(SecurityEvent::AccountDeactivated)
    );
    // Once is all: the account is gone for its user.
    assert!(
        w.svc
            .self_service(&session)
            .deactivate(&w.client)
            .await
            .is_err()
    );
}

/// Administrators find users by text, state and tier, page by id, change
/// tiers, suspend, reactivate and erase; a query too long is bad input.
pub async fn administrators_search_page_and_manage_users<S: ConformanceStore>(s: S) {
    let (w, alice) = world(&s, 204).await;
    let t = w.tenant.id;
    let mut members = vec![alice.id];
    for i in 0..6 {
        members.push(w.user(&format!("member{i}")).await.id);
    }
    w.user("outsider").await;
    members.sort();
    let query = |text: &str, after, limit| UserQuery {
        text: Some(text.into()),
        after,
        limit,
        ..UserQuery::default()
    };
    // "M" is in every member's identifier or address, not the outsider's.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = w.svc.search_users(t, query("M", after, 3)).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        seen.extend(page.iter().map(|u| u.id));
        assert!(seen.len() <= members.len(), "a user came back: {seen:?}");
    }
    assert_eq!(seen, members);
    let long = "x".repeat(257);
    assert!(matches!(
        w.svc.search_users(t, query(&long, None, 10)).await,
        Err(Error::InvalidInput(_))
    ));
    // Tier and state, then the search sees them.
    let premium = ProfileChange {
        tier: Some(Some("premium")),
        ..ProfileChange::default()
    };
    w.svc
        .update_profile(t, alice.id, premium, &w.client)
        .await
        .unwrap();
    w.svc
        .transition(
            t,
            alice.id,
            AccountState::Suspended,
            Some("abuse"),
            &w.client,
        )
        .await
        .unwrap();
    let by = |state, tier| UserQuery {
        state,
        tier,
        limit: MAX_PAGE,
        ..UserQuery::default()
    };
    let ids = |users: Vec<User>| users.into_iter().map(|u| u.id).collect::<Vec<_>>();
    assert_eq!(
        ids(w
            .svc
            .search_users(t, by(None, Some(Tier::premium())))
            .await
            .unwrap()),
        [alice.id]
    );
    assert_eq!(
        ids(w
            .svc
            .search_users(t, by(Some(AccountState::Suspended), None))
            .await
            .unwrap()),
        [alice.id]
    );
    w.svc
        .transition(t, alice.id, AccountState::Active, None, &w.client)
        .await
        .unwrap();
    // Active again: signs in.
    sign_in(&w, &alice).await;
    w.svc.erase_user(t, alice.id, &w.client).await.unwrap();
    assert!(
        w.svc
            .search_users(t, by(None, Some(Tier::premium())))
            .await
            .unwrap()
            .is_empty()
    );
}

/// A user's tier reaches the `tier` claim of their access tokens and
/// Cedar's `principal.tier` (and their attributes its tags).
pub async fn the_tier_reaches_access_tokens_and_decisions<S: ConformanceStore>(s: S) {
    let (w, alice) = world(&s, 205).await;
    let t = w.tenant.id;
    let claims = |issued: &countersign_core::IssuedSession| {
        let w = &w;
        let token = issued.access_token.clone().unwrap();
        async move { w.sessions.verify_access_token(&token).await.unwrap() }
    };
    let free = w
        .sessions
        .issue(&sign_in(&w, &alice).await, &w.client)
        .await
        .unwrap();
    assert_eq!(claims(&free).await.tier.as_deref(), Some("free"));

    let authz = AuthzService::new(s.clone(), w.svc.env().clone());
    let schema = r#"
        namespace App {
          entity Feature;
          action use appliesTo { principal: Countersign::User, resource: Feature };
        }
    "#;
    let policies = r#"
        permit(principal, action == App::Action::"use", resource)
          when { principal has tier && principal.tier == "premium"
                 && principal.hasTag("team") && principal.getTag("team") == "blue"
                 && principal.hasTag("seats") && principal.getTag("seats") == "12" };
    "#;
    authz
        .save_model(t, schema, policies, None, &w.client)
        .await
        .unwrap();
    let action = EntityUid::from_str(r#"App::Action::"use""#).unwrap();
    let resource = Resource {
        tenant: t,
        uid: EntityUid::from_str(r#"App::Feature::"reports""#).unwrap(),
    };
    let session = w
        .sessions
        .validate(free.session_token.expose())
        .await
        .unwrap();
    let decide = |authz: &AuthzService<S>| {
        let (authz, auth) = (authz.clone(), session.auth.clone());
        let (action, resource) = (action.clone(), resource.clone());
        async move {
            authz
                .decide(&auth, &action, &resource, Default::default())
                .await
                .unwrap()
        }
    };
    assert!(!decide(&authz).await.allowed, "free tier");

    let upgrade = ProfileChange {
        tier: Some(Some("premium")),
        attributes: Some(attrs(json!({"team": "blue", "seats": 12}))),
        ..ProfileChange::default()
    };
    w.svc
        .update_profile(t, alice.id, upgrade, &w.client)
        .await
        .unwrap();
    // Facts are cached per user until forgotten (see `AuthzService`).
    authz.forget_user(t, alice.id);
    let d = decide(&authz).await;
    assert!(d.allowed && d.errors.is_empty(), "{d:?}");
    let premium = w
        .sessions
        .issue(&sign_in(&w, &alice).await, &w.client)
        .await
        .unwrap();
    assert_eq!(claims(&premium).await.tier.as_deref(), Some("premium"));
    // No tier: no claim.
    let none = ProfileChange {
        tier: Some(None),
        ..ProfileChange::default()
    };
    w.svc
        .update_profile(t, alice.id, none, &w.client)
        .await
        .unwrap();
    let untiered = w
        .sessions
        .issue(&sign_in(&w, &alice).await, &w.client)
        .await
        .unwrap();
    assert_eq!(claims(&untiered).await.tier, None);
}

/// Every way an account is created gives it the tenant's default tier;
/// with no default, no tier.
pub async fn new_users_get_the_default_tier<S: ConformanceStore>(s: S) {
    let (w, alice) = world(&s, 206).await;
    assert_eq!(alice.tier, Some(Tier::free()));
    assert_eq!(stored(&w, &alice).await.tier, Some(Tier::free()));
    let bob = w.user("bob").await;
    assert_eq!(stored(&w, &bob).await.tier, Some(Tier::free()));
    let mut policy = w.svc.tenant_by_slug("acme").await.unwrap().policy;
    policy.profile.default_tier = None;
    w.svc
        .update_tenant_policy(w.tenant.id, policy)
        .await
        .unwrap();
    let carol = w.user("carol").await;
    assert_eq!(stored(&w, &carol).await.tier, None);
    // A default outside the allowed tiers is refused with the policy.
    let mut bad = w.svc.tenant_by_slug("acme").await.unwrap().policy;
    bad.profile.default_tier = Some(Tier::parse("gold").unwrap());
    assert!(matches!(
        w.svc.update_tenant_policy(w.tenant.id, bad).await,
        Err(Error::InvalidInput(_))
    ));
}

/// A tier given at registration is checked against the tenant's schema
/// and kept with the user in the same write: an allowed one is stored, a
/// refused one (unknown or malformed) leaves no user behind.
pub async fn a_tier_given_at_registration_is_checked_and_kept<S: ConformanceStore>(s: S) {
    let (w, _) = world(&s, 209).await;
    let new = |identifier: &'static str, tier: &'static str| NewUser {
        identifier,
        tier: Some(tier),
        ..NewUser::default()
    };
    let bob = w
        .svc
        .register_user(w.tenant.id, new("bob", "premium"), &w.client)
        .await
        .unwrap();
    assert_eq!(bob.tier, Some(Tier::premium()));
    assert_eq!(stored(&w, &bob).await.tier, Some(Tier::premium()));
    for (identifier, tier) in [("carol", "gold"), ("dave", "Not A Tier")] {
        assert!(matches!(
            w.svc
                .register_user(w.tenant.id, new(identifier, tier), &w.client)
                .await,
            Err(Error::InvalidInput(_))
        ));
        let found = w
            .svc
            .search_users(
                w.tenant.id,
                UserQuery {
                    text: Some(identifier.into()),
                    ..UserQuery::default()
                },
            )
            .await
            .unwrap();
        assert!(found.is_empty(), "{identifier} was written: {found:?}");
    }
}

/// Concurrent changes of one profile never lose a write silently: each
/// succeeds with its own version (no two report the same `updated_at`)
/// or fails with [`Error::Concurrent`], and the stored profile is the
/// latest success.
pub async fn concurrent_profile_changes_each_move_the_version<S: ConformanceStore>(s: S) {
    let (w, alice) = world(&s, 207).await;
    let svc = w.svc.clone();
    let (t, client) = (w.tenant.id, w.client.clone());
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (svc, client) = (svc.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let name = format!("writer {i}");
            let change = ProfileChange {
                display_name: Some(Some(&name)),
                ..ProfileChange::default()
            };
            svc.update_profile(t, alice.id, change, &client).await
        }));
    }
    let mut wins = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(u) => wins.push(u),
            Err(Error::Concurrent(_)) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(!wins.is_empty());
    let mut versions: Vec<_> = wins.iter().map(|u| u.updated_at).collect();
    versions.sort();
    versions.dedup();
    assert_eq!(versions.len(), wins.len(), "two writes from one version");
    let last = wins.iter().max_by_key(|u| u.updated_at).unwrap();
    assert_eq!(&stored(&w, &alice).await, last);
}

/// A change made from a version ([`AuthnService::update_profile_from`](countersign_core::AuthnService::update_profile_from))
/// applies only to that version: of concurrent changes from one version
/// exactly one is applied and the others are [`Error::Concurrent`]; a
/// later change from the stale version writes nothing.
pub async fn changes_from_one_version_apply_once<S: ConformanceStore>(s: S) {
    let (w, alice) = world(&s, 208).await;
    let (t, v1) = (w.tenant.id, alice.updated_at);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (svc, client) = (w.svc.clone(), w.client.clone());
        tasks.push(tokio::spawn(async move {
            let name = format!("writer {i}");
            let change = ProfileChange {
                display_name: Some(Some(&name)),
                ..ProfileChange::default()
            };
            svc.update_profile_from(t, alice.id, change, v1, &client)
                .await
        }));
    }
    let mut wins = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(u) => wins.push(u),
            Err(Error::Concurrent(_)) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(wins.len(), 1, "one change per version: {wins:?}");
    let now = stored(&w, &alice).await;
    assert_eq!(&now, &wins[0]);
    let late = ProfileChange {
        display_name: Some(Some("late")),
        ..ProfileChange::default()
    };
    assert!(matches!(
        w.svc
            .update_profile_from(t, alice.id, late, v1, &w.client)
            .await,
        Err(Error::Concurrent(_))
    ));
    assert_eq!(stored(&w, &alice).await, now, "nothing written");
}
