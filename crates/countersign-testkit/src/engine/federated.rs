//! Sign-in with OpenID Connect ID tokens from a local issuer: linking by
//! issuer and subject, linking a verified address, one account under
//! concurrent first sign-ins, and every refusal.

use countersign_core::{
    AccountState, AuditDetail, AuditKind, AuditReason, AuthMethod, Error, FactorKind,
    FactorResponse, FactorSettings, FederatedStart, FederationSettings, LoginStatus, Refusal,
    Registration, Submission, User, VerificationPurpose,
};
use serde_json::json;

use super::{AuditLog, NoAudit};
use crate::ConformanceStore;
use crate::fixtures::{LocalIssuer, World, mfa_tenant};

const ISSUER: &str = "https://id.example.org";
const ALICE: &str = "alice@example.com";

/// The `acme` tenant trusting [`ISSUER`] with `settings` (the issuer's
/// own configuration filled in), with a method `federated` (an ID token
/// alone) beside the fixture's.
async fn world<S: ConformanceStore>(
    s: &S,
    seed: u64,
    tune: impl FnOnce(&mut FederationSettings),
) -> (World<S>, LocalIssuer) {
    let issuer = LocalIssuer::new(ISSUER, 9);
    let mut settings = FederationSettings::new(vec![issuer.config()]);
    tune(&mut settings);
    let mut spec = mfa_tenant(Default::default());
    spec.slug = format!("acme-{seed}");
    spec.factors.push(FactorSettings::OidcIdToken(settings));
    spec.methods
        .push(AuthMethod::sequence("federated", &[FactorKind::OidcIdToken]).unwrap());
    (World::with_tenant(s.clone(), seed, spec).await, issuer)
}

async fn begin<S: ConformanceStore>(w: &World<S>) -> FederatedStart {
    w.svc
        .begin_federated_login(w.tenant.id, ISSUER, &w.client)
        .await
        .unwrap()
}

async fn submit<S: ConformanceStore>(
    w: &World<S>,
    start: &FederatedStart,
    token: &str,
) -> Submission {
    w.svc
        .submit(
            w.tenant.id,
            start.flow.expose(),
            FactorResponse::IdToken(token),
            &w.client,
        )
        .await
        .unwrap()
}

/// Sign in with `subject` (and `email`), returning the signed-in user's id.
async fn sign_in_as<S: ConformanceStore>(
    w: &World<S>,
    issuer: &LocalIssuer,
    subject: &str,
    email: Option<(&str, bool)>,
) -> Option<countersign_core::UserId> {
    let start = begin(w).await;
    let token = issuer.id_token(subject, email, &start.nonce, w.svc.env().now());
    match submit(w, &start, &token).await.status {
        LoginStatus::Authenticated(a) => Some(a.user_id()),
        _ => None,
    }
}

async fn users<S: ConformanceStore>(w: &World<S>) -> Vec<User> {
    w.store.list_users(w.tenant.id, None, 100).await.unwrap()
}

/// A first sign-in creates an active account with the verified address
/// and links it; later sign-ins find it by issuer and subject, even with
/// another address; a token works in the flow whose nonce it carries only.
pub async fn an_id_token_signs_in_and_stays_linked_by_issuer_and_subject<S: ConformanceStore>(
    s: S,
) {
    let (w, issuer) = world(&s, 80, |_| {}).await;
    let start = begin(&w).await;
    assert_eq!(start.issuer, ISSUER);
    let token = issuer.id_token(
        "sub-1",
        Some((ALICE, true)),
        &start.nonce,
        w.svc.env().now(),
    );
    let LoginStatus::Authenticated(proof) = submit(&w, &start, &token).await.status else {
        panic!("not signed in")
    };
    let alice = w.user_by(ALICE).await;
    assert_eq!(proof.user_id(), alice.id);
    assert_eq!(alice.state, AccountState::Active);
    assert_eq!(alice.email.as_ref().map(|e| e.as_str()), Some(ALICE));
    let links = w
        .svc
        .linked_identities(w.tenant.id, alice.id)
        .await
        .unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(
        (links[0].issuer.as_str(), links[0].subject.as_str()),
        (ISSUER, "sub-1")
    );
    w.sessions.issue(&proof, &w.client).await.unwrap();

    // The same token in another flow: its nonce is not that flow's.
    let other = begin(&w).await;
    let replay = submit(&w, &other, &token).await;
    assert_eq!(replay.refused, Some(Refusal::Incorrect));

    // The address changed at the issuer: still alice, by subject.
    let again = sign_in_as(&w, &issuer, "sub-1", Some(("alice@new.example", true))).await;
    assert_eq!(again, Some(alice.id));
    assert_eq!(users(&w).await.len(), 1, "no second account");
}

/// An address the issuer verified links the account that has it as its
/// identifier (and activates a pending one, voiding its registration
/// code); an unverified address links nothing and is refused.
pub async fn a_verified_address_links_the_existing_account<S: ConformanceStore>(s: S) {
    let (w, issuer) = world(&s, 81, |_| {}).await;
    let alice = w.user_with_address(ALICE, ALICE).await;
    assert_eq!(
        sign_in_as(&w, &issuer, "sub-a", Some((ALICE, false))).await,
        None,
        "an unverified address is refused"
    );
    assert!(
        w.svc
            .linked_identities(w.tenant.id, alice.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        sign_in_as(&w, &issuer, "sub-a", Some((ALICE, true))).await,
        Some(alice.id)
    );
    assert_eq!(
        w.svc
            .linked_identities(w.tenant.id, alice.id)
            .await
            .unwrap()
            .len(),
        1
    );

    // A squatter registered bob's address; bob signs in at the issuer.
    let bob = "bob@example.com";
    w.svc
        .register(
            w.tenant.id,
            Registration {
                email: bob,
                password: "a squatter's passphrase 11",
                display_name: None,
            },
            &w.client,
        )
        .await
        .unwrap();
    let code = match w.outbox.last_to(bob).unwrap().notice {
        countersign_core::Notice::AddressConfirmation { code, .. } => code.expose().to_owned(),
        other => panic!("{other:?}"),
    };
    let id = sign_in_as(&w, &issuer, "sub-b", Some((bob, true))).await;
    let bob_user = w.user_by(bob).await;
    assert_eq!(id, Some(bob_user.id));
    assert_eq!(bob_user.state, AccountState::Active);
    assert!(matches!(
        w.svc
            .verify_address(w.tenant.id, bob, &code, &w.client)
            .await,
        Err(Error::VerificationFailed)
    ));
    assert!(
        w.store
            .verification(w.tenant.id, bob_user.id, VerificationPurpose::Address)
            .await
            .unwrap()
            .is_none(),
        "the squatter's code and password hash are gone"
    );
    assert!(matches!(
        w.login(bob, "a squatter's passphrase 11").await,
        Err(Error::InvalidCredentials)
    ));
}

/// Concurrent first sign-ins with one identity end with one account, and
/// every one of them signs in to it.
pub async fn concurrent_first_sign_ins_create_one_account<S: ConformanceStore>(s: S) {
    let (w, issuer) = world(&s, 82, |_| {}).await;
    // Every flow and token first, then all submissions at once.
    let n = 16;
    let gate = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = Vec::new();
    for i in 0..n {
        let start = begin(&w).await;
        // A quarter with a verified address, the rest without one.
        let email = (i % 4 == 0).then_some((ALICE, true));
        let token = issuer.id_token("sub-race", email, &start.nonce, w.svc.env().now());
        let (svc, tenant, client) = (w.svc.clone(), w.tenant.id, w.client.clone());
        let gate = gate.clone();
        tasks.push(async move {
            gate.wait().await;
            svc.submit(
                tenant,
                start.flow.expose(),
                FactorResponse::IdToken(&token),
                &client,
            )
            .await
        });
    }
    let tasks: Vec<_> = tasks.into_iter().map(tokio::spawn).collect();
    let mut ids = Vec::new();
    for t in tasks {
        match t.await.unwrap().unwrap().status {
            LoginStatus::Authenticated(a) => ids.push(a.user_id()),
            other => panic!("not signed in: {other:?}"),
        }
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one account: {ids:?}");
    assert_eq!(users(&w).await.len(), 1);
    let links = w.svc.linked_identities(w.tenant.id, ids[0]).await.unwrap();
    assert_eq!(links.len(), 1);
}

/// Tokens with a wrong audience or issuer, expired, unsigned (`alg:
/// none`), signed by an unknown key, or with another nonce are refused as
/// incorrect; an ID token sent to a flow that awaits none is refused;
/// nothing is created.
pub async fn bad_id_tokens_are_refused_and_create_nothing<S: ConformanceStore>(s: S) {
    bad_id_tokens(s, NoAudit).await;
}

/// [`bad_id_tokens_are_refused_and_create_nothing`], its audit checks made
/// through `audit`.
pub(crate) async fn bad_id_tokens<S: ConformanceStore>(s: S, audit: impl AuditLog<S>) {
    let (w, issuer) = world(&s, 83, |_| {}).await;
    let stranger = LocalIssuer::new(ISSUER, 10);
    let now = w.svc.env().now();
    let b64 = |v: &serde_json::Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };
    type Forge<'a> = Box<dyn Fn(serde_json::Value) -> String + 'a>;
    let set = |k: &'static str, v: serde_json::Value| -> Forge<'_> {
        let issuer = &issuer;
        Box::new(move |mut c: serde_json::Value| {
            c[k] = v.clone();
            issuer.sign(&c)
        })
    };
    let forged: Vec<(&str, Forge<'_>)> = vec![
        ("wrong audience", set("aud", json!("someone-else"))),
        ("wrong issuer", set("iss", json!("https://evil.example"))),
        ("expired", set("exp", json!(now.timestamp() - 3600))),
        ("another nonce", set("nonce", json!("another-flows-nonce"))),
        ("unverified address", set("email_verified", json!(false))),
        ("unknown key", Box::new(|c| stranger.sign(&c))),
        (
            "alg none",
            Box::new(|c| {
                format!(
                    "{}.{}.",
                    b64(&json!({"alg": "none", "typ": "JWT"})),
                    b64(&c)
                )
            }),
        ),
        ("garbage", Box::new(|_| "not a token".to_owned())),
    ];
    for (what, forge) in &forged {
        let start = begin(&w).await;
        let claims = issuer.claims("sub-x", Some((ALICE, true)), &start.nonce, now);
        let s = submit(&w, &start, &forge(claims)).await;
        assert_eq!(s.refused, Some(Refusal::Incorrect), "{what}");
        assert!(!matches!(s.status, LoginStatus::Authenticated(_)), "{what}");
    }
    // The same forging with nothing changed signs in (the refusals above
    // are the changes').
    let start = begin(&w).await;
    let claims = issuer.claims("sub-ok", None, &start.nonce, now);
    let ok = submit(&w, &start, &set("name", json!("Ok"))(claims)).await;
    assert!(matches!(ok.status, LoginStatus::Authenticated(_)));
    let created = users(&w).await;
    assert_eq!(created.len(), 1, "only the good token made an account");
    // A flow begun with an identifier was sent to no issuer: it awaits no
    // ID token.
    let (flow, _) = w
        .svc
        .begin_login(w.tenant.id, ALICE, Some("federated"), &w.client)
        .await
        .unwrap();
    let token = issuer.id_token("sub-x", Some((ALICE, true)), "n", now);
    let s = w
        .svc
        .submit(
            w.tenant.id,
            flow.expose(),
            FactorResponse::IdToken(&token),
            &w.client,
        )
        .await
        .unwrap();
    assert_eq!(s.refused, Some(Refusal::ChallengeMissing));
    assert_eq!(users(&w).await, created, "nothing more created");
    if let Some(events) = audit.of_kind(&w, AuditKind::Authentication).await {
        let bad = events
            .iter()
            .filter(|e| e.detail == Some(AuditDetail::Reason(AuditReason::BadIdToken)))
            .count();
        assert_eq!(bad, forged.len(), "every refused token is audited");
    }
    // An issuer the tenant does not trust cannot begin.
    assert!(matches!(
        w.svc
            .begin_federated_login(w.tenant.id, "https://evil.example", &w.client)
            .await,
        Err(Error::InvalidInput(_))
    ));
}

/// A tenant that creates no accounts refuses an unknown identity; a
/// linked account that is suspended cannot sign in.
pub async fn tenant_settings_and_account_state_bound_federated_sign_in<S: ConformanceStore>(s: S) {
    let (w, issuer) = world(&s, 84, |f| f.create_accounts = false).await;
    assert_eq!(
        sign_in_as(&w, &issuer, "sub-n", Some((ALICE, true))).await,
        None
    );
    assert!(users(&w).await.is_empty());
    // An account linked by its address signs in by its link afterwards,
    // whatever address the issuer reports then.
    let alice = w.user_with_address(ALICE, ALICE).await;
    let linked = sign_in_as(&w, &issuer, "sub-n", Some((ALICE, true))).await;
    assert_eq!(linked, Some(alice.id));
    let moved = sign_in_as(&w, &issuer, "sub-n", Some(("elsewhere@example.net", true))).await;
    assert_eq!(moved, Some(alice.id));
    assert_eq!(users(&w).await.len(), 1);

    let (w, issuer) = world(&s, 85, |_| {}).await;
    let id = sign_in_as(&w, &issuer, "sub-s", Some((ALICE, true)))
        .await
        .unwrap();
    let alice = w.user_by(ALICE).await;
    assert_eq!(alice.id, id);
    w.transition(&alice, AccountState::Suspended).await.unwrap();
    assert_eq!(
        sign_in_as(&w, &issuer, "sub-s", Some((ALICE, true))).await,
        None
    );
    // Unlinked, the identity is a stranger again (and the address is
    // taken by a suspended account, which is refused too).
    assert!(
        w.svc
            .unlink_identity(w.tenant.id, alice.id, ISSUER, "sub-s", &w.client)
            .await
            .unwrap()
    );
    assert!(
        w.svc
            .linked_identities(w.tenant.id, alice.id)
            .await
            .unwrap()
            .is_empty()
    );
}
