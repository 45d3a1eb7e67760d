//! Profiles and the user search: the guarantees of
//! `IdentityAdmin::update_profile` and `IdentityLookup::search_users`.

use countersign_core::store::MAX_PAGE;
use countersign_core::{
    AccountState, AttributeDecl, AttributeKind, Attributes, EmailAddress, Profile, ProfileSchema,
    StoreErrorKind, TenantId, TenantPolicy, Tier, User, UserId, UserQuery,
};
use serde_json::json;

use super::{acme, acme_alice, kind, tenant, user};
use crate::ConformanceStore;
use crate::fixtures::{Fx, at};

fn attrs(v: serde_json::Value) -> Attributes {
    serde_json::from_value(v).expect("attributes")
}

fn gold() -> Profile {
    Profile {
        display_name: Some("Alice Gold".into()),
        tier: Some(Tier::parse("gold").unwrap()),
        attributes: attrs(json!({"team": "blue", "seats": -7, "beta": true, "note": "ü ✓"})),
    }
}

/// A user of `tenant` with `identifier`, `email` and `display_name` (the
/// other fields as [`Fx::user`]).
async fn person<S: ConformanceStore>(
    s: &S,
    fx: &Fx,
    tenant: TenantId,
    identifier: &str,
    email: Option<&str>,
    display_name: Option<&str>,
) -> User {
    let mut u = fx.user(tenant, identifier);
    u.email = email.map(|e| EmailAddress::parse(e).unwrap());
    u.display_name = display_name.map(str::to_owned);
    s.create_user(&u, &[]).await.unwrap();
    u
}

/// The ids `query` finds in `tenant`.
async fn found<S: ConformanceStore>(s: &S, tenant: TenantId, query: &UserQuery) -> Vec<UserId> {
    let users = s.search_users(tenant, query).await.unwrap();
    assert!(users.iter().all(|u| u.tenant_id == tenant));
    users.iter().map(|u| u.id).collect()
}

fn text(t: &str) -> UserQuery {
    UserQuery {
        text: Some(t.to_owned()),
        limit: MAX_PAGE,
        ..UserQuery::default()
    }
}

// ── Profiles ─────────────────────────────────────────────────────────────

/// A tenant's profile schema is kept on its policy, field for field.
pub async fn profile_schemas_round_trip_in_the_tenant_policy<S: ConformanceStore>(s: S) {
    let (_, t) = acme(&s, 101).await;
    let policy = TenantPolicy {
        profile: ProfileSchema {
            tiers: vec![Tier::free(), Tier::premium()],
            default_tier: Some(Tier::premium()),
            attributes: vec![
                AttributeDecl {
                    name: "team".into(),
                    kind: AttributeKind::Choice {
                        values: vec!["red".into(), "blue".into()],
                    },
                    user_editable: false,
                },
                AttributeDecl {
                    name: "seats".into(),
                    kind: AttributeKind::Integer { min: -10, max: 10 },
                    user_editable: true,
                },
                AttributeDecl {
                    name: "nickname".into(),
                    kind: AttributeKind::Text { max_chars: 20 },
                    user_editable: true,
                },
                AttributeDecl {
                    name: "beta".into(),
                    kind: AttributeKind::Boolean,
                    user_editable: false,
                },
            ],
        },
        ..TenantPolicy::default()
    };
    s.update_tenant_policy(t.id, &policy).await.unwrap();
    assert_eq!(s.get_tenant(t.id).await.unwrap().unwrap().policy, policy);
}

/// An update replaces the display name, tier and attributes and sets
/// `updated_at`; every lookup reads the new profile; clearing works.
pub async fn profile_updates_round_trip<S: ConformanceStore>(s: S) {
    let (_, t, u) = acme_alice(&s, 102).await;
    let p = gold();
    assert!(
        s.update_profile(t.id, u.id, &p, u.updated_at, at(5))
            .await
            .unwrap()
    );
    let want = User {
        display_name: p.display_name.clone(),
        tier: p.tier.clone(),
        attributes: p.attributes.clone(),
        updated_at: at(5),
        ..u.clone()
    };
    assert_eq!(s.get_user(t.id, u.id).await.unwrap(), Some(want.clone()));
    assert_eq!(
        s.find_user(t.id, &u.identifier).await.unwrap(),
        Some(want.clone())
    );
    assert_eq!(s.list_users(t.id, None, 10).await.unwrap(), vec![want]);
    // Everything cleared.
    let empty = Profile::default();
    assert!(
        s.update_profile(t.id, u.id, &empty, at(5), at(6))
            .await
            .unwrap()
    );
    let got = s.get_user(t.id, u.id).await.unwrap().unwrap();
    assert_eq!(
        (got.display_name, got.tier, got.attributes, got.updated_at),
        (None, None, Attributes::new(), at(6))
    );
}

/// An update naming a stale `updated_at` writes nothing and says so; a
/// state change moves `updated_at` too.
pub async fn update_profile_is_compare_and_set<S: ConformanceStore>(s: S) {
    let (_, t, u) = acme_alice(&s, 103).await;
    let stale = u.updated_at - chrono::Duration::seconds(1);
    assert!(
        !s.update_profile(t.id, u.id, &gold(), stale, at(5))
            .await
            .unwrap()
    );
    assert_eq!(s.get_user(t.id, u.id).await.unwrap(), Some(u.clone()));
    s.set_user_state(
        t.id,
        u.id,
        AccountState::Active,
        AccountState::Suspended,
        None,
        at(4),
    )
    .await
    .unwrap();
    assert!(
        !s.update_profile(t.id, u.id, &gold(), u.updated_at, at(5))
            .await
            .unwrap(),
        "read before the state change"
    );
    let after = s.get_user(t.id, u.id).await.unwrap().unwrap();
    assert_eq!(after.tier, u.tier);
    assert!(
        s.update_profile(t.id, u.id, &gold(), at(4), at(5))
            .await
            .unwrap()
    );
}

/// Of 16 concurrent updates made from one read, exactly one writes, and
/// the stored profile is the winner's.
pub async fn concurrent_profile_updates_from_one_read_have_one_winner<S: ConformanceStore>(s: S) {
    let (_, t, u) = acme_alice(&s, 104).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = s.clone();
        let profile = Profile {
            display_name: Some(format!("writer {i}")),
            ..gold()
        };
        let expected = u.updated_at;
        tasks.push(tokio::spawn(async move {
            let won = s
                .update_profile(t.id, u.id, &profile, expected, at(10 + i))
                .await
                .unwrap();
            (won, i)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (won, i) = task.await.unwrap();
        if won {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let got = s.get_user(t.id, u.id).await.unwrap().unwrap();
    let i = winners[0];
    assert_eq!(got.display_name, Some(format!("writer {i}")));
    assert_eq!(got.updated_at, at(10 + i));
}

/// An update naming a user of another tenant, or none, is `NotFound` and
/// changes nothing.
pub async fn update_profile_of_another_tenants_user_is_not_found<S: ConformanceStore>(s: S) {
    let fx = Fx::new(105);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let u = user(&s, &fx, a.id, "alice").await;
    let r = s
        .update_profile(b.id, u.id, &gold(), u.updated_at, at(5))
        .await;
    assert_eq!(kind(r), StoreErrorKind::NotFound);
    let r = s
        .update_profile(a.id, fx.user_id(), &gold(), u.updated_at, at(5))
        .await;
    assert_eq!(kind(r), StoreErrorKind::NotFound);
    assert_eq!(s.get_user(a.id, u.id).await.unwrap(), Some(u));
}

// ── Search ───────────────────────────────────────────────────────────────

/// The text matches a substring of the identifier, the email or the
/// display name, whatever the case of ASCII letters; an empty query
/// matches everyone.
pub async fn search_text_matches_identifier_email_or_display_name<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 106).await;
    let by_id = person(&s, &fx, t.id, "xavier", None, Some("Plain")).await;
    let by_email = person(&s, &fx, t.id, "u2", Some("Zed.Q@Mail.Test"), None).await;
    let by_name = person(&s, &fx, t.id, "u3", None, Some("Jo MIDDLEton")).await;
    let none = person(&s, &fx, t.id, "u4", Some("u4@x.test"), Some("Other")).await;
    assert_eq!(found(&s, t.id, &text("AVIE")).await, [by_id.id]);
    assert_eq!(found(&s, t.id, &text("zed.q@mail")).await, [by_email.id]);
    assert_eq!(found(&s, t.id, &text("ZED.Q")).await, [by_email.id]);
    assert_eq!(found(&s, t.id, &text("middleTON")).await, [by_name.id]);
    assert_eq!(found(&s, t.id, &text("nope")).await, Vec::<UserId>::new());
    let mut all = vec![by_id.id, by_email.id, by_name.id, none.id];
    all.sort();
    let everyone = UserQuery {
        limit: MAX_PAGE,
        ..UserQuery::default()
    };
    assert_eq!(found(&s, t.id, &everyone).await, all);
}

/// `%`, `_` and `\` in the text match themselves, never as wildcards.
pub async fn search_text_wildcards_match_literally<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 107).await;
    let pct = person(&s, &fx, t.id, "u1", None, Some("100% sure")).await;
    person(&s, &fx, t.id, "u2", None, Some("1000 sure")).await;
    let under = person(&s, &fx, t.id, "u3", None, Some("a_b")).await;
    person(&s, &fx, t.id, "u4", None, Some("axb")).await;
    let slash = person(&s, &fx, t.id, "u5", None, Some(r"back\slash")).await;
    person(&s, &fx, t.id, "u6", None, Some("backslash")).await;
    assert_eq!(found(&s, t.id, &text("0%")).await, [pct.id]);
    assert_eq!(found(&s, t.id, &text("%")).await, [pct.id]);
    assert_eq!(found(&s, t.id, &text("a_b")).await, [under.id]);
    assert_eq!(found(&s, t.id, &text("_")).await, [under.id]);
    assert_eq!(found(&s, t.id, &text(r"k\s")).await, [slash.id]);
    assert_eq!(found(&s, t.id, &text(r"\")).await, [slash.id]);
}

/// State and tier narrow the search, alone and with the text.
pub async fn search_filters_by_state_and_tier<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 108).await;
    let mut free_active = fx.user(t.id, "ann");
    free_active.tier = Some(Tier::free());
    let mut premium_active = fx.user(t.id, "anna");
    premium_active.tier = Some(Tier::premium());
    let mut premium_suspended = fx.user(t.id, "bob");
    premium_suspended.tier = Some(Tier::premium());
    premium_suspended.state = AccountState::Suspended;
    let mut untiered = fx.user(t.id, "annie");
    untiered.tier = None;
    for u in [&free_active, &premium_active, &premium_suspended, &untiered] {
        s.create_user(u, &[]).await.unwrap();
    }
    let q = |text: Option<&str>, state, tier: Option<Tier>| UserQuery {
        text: text.map(str::to_owned),
        state,
        tier,
        after: None,
        limit: MAX_PAGE,
    };
    let sorted = |mut v: Vec<UserId>| {
        v.sort();
        v
    };
    let premium = Some(Tier::premium());
    assert_eq!(
        found(&s, t.id, &q(None, None, premium.clone())).await,
        sorted(vec![premium_active.id, premium_suspended.id])
    );
    assert_eq!(
        found(&s, t.id, &q(None, Some(AccountState::Suspended), None)).await,
        [premium_suspended.id]
    );
    assert_eq!(
        found(
            &s,
            t.id,
            &q(None, Some(AccountState::Active), premium.clone())
        )
        .await,
        [premium_active.id]
    );
    assert_eq!(
        found(&s, t.id, &q(Some("ann"), None, Some(Tier::free()))).await,
        [free_active.id]
    );
    assert_eq!(
        found(&s, t.id, &q(Some("ann"), Some(AccountState::Active), None)).await,
        sorted(vec![free_active.id, premium_active.id, untiered.id])
    );
}

/// Paging with the last id of each page visits every match exactly once,
/// in id order, and never a user that does not match.
pub async fn search_pages_visit_every_match_once_in_id_order<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 109).await;
    let mut want = Vec::new();
    for i in 0..9 {
        want.push(user(&s, &fx, t.id, &format!("match{i}")).await.id);
        user(&s, &fx, t.id, &format!("other{i}")).await;
    }
    want.sort();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let q = UserQuery {
            text: Some("MATCH".into()),
            after,
            limit: 2,
            ..UserQuery::default()
        };
        let page = found(&s, t.id, &q).await;
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(*last);
        seen.extend(page);
        assert!(seen.len() <= want.len(), "a user came back: {seen:?}");
    }
    assert_eq!(seen, want);
}

/// A search never returns a user of another tenant.
pub async fn search_is_tenant_scoped<S: ConformanceStore>(s: S) {
    let fx = Fx::new(110);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let mine = user(&s, &fx, a.id, "alice").await;
    user(&s, &fx, b.id, "alice").await;
    user(&s, &fx, b.id, "alicia").await;
    assert_eq!(found(&s, a.id, &text("ali")).await, [mine.id]);
    let all = UserQuery {
        limit: MAX_PAGE,
        ..UserQuery::default()
    };
    assert_eq!(found(&s, a.id, &all).await, [mine.id]);
    assert_eq!(found(&s, fx.tenant_id(), &all).await, Vec::<UserId>::new());
}

/// No limit reads more than `MAX_PAGE` users at once; a limit of 0 reads none.
pub async fn search_limit_is_capped<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 111).await;
    for i in 0..=MAX_PAGE {
        user(&s, &fx, t.id, &format!("user{i}")).await;
    }
    let q = |limit| UserQuery {
        text: Some("user".into()),
        limit,
        ..UserQuery::default()
    };
    assert_eq!(
        s.search_users(t.id, &q(u32::MAX)).await.unwrap().len(),
        MAX_PAGE as usize
    );
    assert!(s.search_users(t.id, &q(0)).await.unwrap().is_empty());
    assert_eq!(s.search_users(t.id, &q(3)).await.unwrap().len(), 3);
}
