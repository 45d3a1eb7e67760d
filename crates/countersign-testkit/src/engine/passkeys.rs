//! Passkeys: registration, sign-in with and without a username,
//! management (a software authenticator plays the browser).

use countersign_core::{
    Confirm, Enroll, Enrolled, Error, FactorCredential, FactorKind, FactorResponse, LoginStatus,
    User,
};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use super::{accepts, mfa_alice};
use crate::ConformanceStore;
use crate::fixtures::{ORIGIN, World};

fn soft_register(
    pk: &mut SoftPasskey,
    challenge: webauthn_rs::prelude::CreationChallengeResponse,
) -> String {
    let reg = pk
        .do_registration(Url::parse(ORIGIN).unwrap(), challenge)
        .unwrap();
    serde_json::to_string(&reg).unwrap()
}

fn soft_login(
    pk: &mut SoftPasskey,
    challenge: webauthn_rs::prelude::RequestChallengeResponse,
) -> String {
    let cred = pk
        .do_authentication(Url::parse(ORIGIN).unwrap(), challenge)
        .unwrap();
    serde_json::to_string(&cred).unwrap()
}

pub(super) async fn register_passkey<S: ConformanceStore>(
    w: &World<S>,
    user: &User,
    pk: &mut SoftPasskey,
    name: &str,
) {
    let Enrolled::Passkey {
        ceremony,
        challenge,
    } = w.enroll(user, Enroll::Passkey { name }).await.unwrap()
    else {
        panic!()
    };
    let json = soft_register(pk, *challenge);
    let info = w
        .confirm(
            user,
            Confirm::Passkey {
                ceremony: ceremony.expose(),
                credential: &json,
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.name, name);
    // The ceremony is single use.
    assert!(
        w.confirm(
            user,
            Confirm::Passkey {
                ceremony: ceremony.expose(),
                credential: &json
            }
        )
        .await
        .is_err()
    );
}

/// Passkeys register, sign in (use recorded), resist replayed assertions, and can be renamed and deleted.
pub async fn passkeys_register_sign_in_and_are_managed<S: ConformanceStore>(s: S) {
    let (w, alice) = mfa_alice(&s, 12).await;
    let mut pk = SoftPasskey::new(true);
    register_passkey(&w, &alice, &mut pk, "laptop").await;

    let (flow, _) = w.begin("alice", Some("passkey")).await;
    // No challenge yet: a typed error.
    assert!(matches!(
        w.submit(&flow, FactorResponse::Passkey("{}")).await,
        Err(Error::InvalidInput(_)) | Err(Error::ChallengeMissing)
    ));
    let challenge = w
        .svc
        .passkey_challenge(w.tenant.id, flow.expose(), &w.client)
        .await
        .unwrap();
    assert!(matches!(
        w.submit(&flow, FactorResponse::Passkey("{not json")).await,
        Err(Error::InvalidInput(_))
    ));
    let answer = soft_login(&mut pk, challenge);
    let s = w
        .submit(&flow, FactorResponse::Passkey(&answer))
        .await
        .unwrap();
    let LoginStatus::Authenticated(auth) = s.status else {
        panic!("{s:?}")
    };
    assert_eq!(auth.record().factors[0].kind, FactorKind::Passkey);
    let listed = w.svc.passkeys(w.tenant.id, alice.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used_at.is_some(), "use is recorded");

    // Replaying the same assertion in a new flow fails (new challenge).
    let (flow2, _) = w.begin("alice", Some("passkey")).await;
    w.svc
        .passkey_challenge(w.tenant.id, flow2.expose(), &w.client)
        .await
        .unwrap();
    assert!(
        !w.submit(&flow2, FactorResponse::Passkey(&answer))
            .await
            .unwrap()
            .accepted()
    );

    assert!(
        w.svc
            .rename_passkey(w.tenant.id, alice.id, listed[0].id, "work laptop")
            .await
            .unwrap()
    );
    assert_eq!(
        w.svc.passkeys(w.tenant.id, alice.id).await.unwrap()[0].name,
        "work laptop"
    );
    assert!(
        w.svc
            .delete_passkey(w.tenant.id, alice.id, listed[0].id, &w.client)
            .await
            .unwrap()
    );
    assert!(
        w.svc
            .passkeys(w.tenant.id, alice.id)
            .await
            .unwrap()
            .is_empty()
    );
    // Without passkeys alice gets what an unknown identifier gets: decoys
    // (or none), the same in every flow, never the deleted key's id.
    let first = challenge_ids(&w, "alice").await;
    assert_eq!(challenge_ids(&w, "alice").await, first);
    let deleted = serde_json::to_value(&answer).unwrap().to_string();
    for id in first.iter().flatten() {
        assert!(!deleted.contains(id.as_str()));
    }
}

/// The credential ids a passkey challenge for `who` lists (`None`: the
/// challenge was refused as not enrolled), base64url.
async fn challenge_ids<S: ConformanceStore>(w: &World<S>, who: &str) -> Option<Vec<String>> {
    let (flow, _) = w.begin(who, Some("passkey")).await;
    match w
        .svc
        .passkey_challenge(w.tenant.id, flow.expose(), &w.client)
        .await
    {
        Ok(c) => Some(
            serde_json::to_value(&c).unwrap()["publicKey"]["allowCredentials"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_owned())
                .collect(),
        ),
        Err(Error::FactorNotEnrolled(FactorKind::Passkey)) => None,
        Err(e) => panic!("{who}: {e:?}"),
    }
}

/// A challenge's JSON with what differs by nature (the random challenge,
/// the credential ids) blanked: its shape.
fn shape(c: &webauthn_rs::prelude::RequestChallengeResponse) -> serde_json::Value {
    let mut v = serde_json::to_value(c).unwrap();
    v["publicKey"]["challenge"] = "".into();
    for a in v["publicKey"]["allowCredentials"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
    {
        a["id"] = "".into();
    }
    v
}

/// A passkey challenge does not tell accounts apart: an unknown
/// identifier, or an account without passkeys, gets decoy credential ids
/// (stable across flows, distinct per identifier) in a challenge of the
/// same shape as a real account's; a locked account's challenge is its
/// real one, as when it is not locked.
pub async fn passkey_challenges_do_not_tell_accounts_apart<S: ConformanceStore>(s: S) {
    let (w, alice) = mfa_alice(&s, 14).await;
    let mut pk = SoftPasskey::new(true);
    register_passkey(&w, &alice, &mut pk, "laptop").await;
    let (flow, _) = w.begin("alice", Some("passkey")).await;
    let real = w
        .svc
        .passkey_challenge(w.tenant.id, flow.expose(), &w.client)
        .await
        .unwrap();
    w.user("bob").await; // no passkeys
    let mut decoys = 0;
    for who in [
        "bob", "mallory", "eve", "trent", "peggy", "victor", "walter",
    ] {
        let ids = challenge_ids(&w, who).await;
        assert_eq!(challenge_ids(&w, who).await, ids, "{who}: stable");
        let (flow, _) = w.begin(who, Some("passkey")).await;
        if let Ok(c) = w
            .svc
            .passkey_challenge(w.tenant.id, flow.expose(), &w.client)
            .await
        {
            decoys += 1;
            let (mut got, mut want) = (shape(&c), shape(&real));
            // Decoys may list another number of credentials, as accounts do.
            got["publicKey"]["allowCredentials"] = serde_json::Value::Null;
            want["publicKey"]["allowCredentials"] = serde_json::Value::Null;
            assert_eq!(got, want, "{who}: the shape of a real challenge");
        }
    }
    assert!(decoys > 0, "most identifiers get decoys");
    assert_ne!(
        challenge_ids(&w, "mallory").await,
        challenge_ids(&w, "eve").await
    );
}

/// The user handle of a username-less answer is not signed: an answer
/// naming alice's handle but signed by another key is refused like an
/// unknown handle, counts nothing against alice (no lockout by id) and
/// writes no audit event naming her.
pub async fn discoverable_passkeys_act_on_a_handle_only_after_verifying_it<S: ConformanceStore>(
    s: S,
) {
    let (w, alice) = mfa_alice(&s, 15).await;
    let mut pk = SoftPasskey::new(true);
    register_passkey(&w, &alice, &mut pk, "phone").await;
    // mallory registers her own key (as bob) and signs with it, claiming
    // alice's handle.
    let bob = w.user("bob").await;
    let mut mallory = SoftPasskey::new(true);
    register_passkey(&w, &bob, &mut mallory, "mine").await;
    let bob_cred = {
        let v = w
            .store
            .user_factor(w.tenant.id, bob.id, FactorKind::Passkey)
            .await
            .unwrap()
            .unwrap();
        let FactorCredential::Passkey(set) = v.value else {
            panic!()
        };
        set.keys[0].passkey.cred_id().clone()
    };
    for _ in 0..6 {
        let (flow, _, mut challenge) = w
            .svc
            .begin_passkey_login(w.tenant.id, &w.client)
            .await
            .unwrap();
        challenge.public_key.allow_credentials = vec![webauthn_rs_proto::AllowCredentials {
            type_: "public-key".into(),
            id: bob_cred.clone(),
            transports: None,
        }];
        let answer = soft_login(&mut mallory, challenge);
        let mut value: serde_json::Value = serde_json::from_str(&answer).unwrap();
        use base64::Engine;
        value["response"]["userHandle"] = serde_json::Value::String(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(alice.id.as_uuid().as_bytes()),
        );
        let s = w
            .submit(&flow, FactorResponse::Passkey(&value.to_string()))
            .await
            .unwrap();
        assert!(!s.accepted());
        assert!(matches!(s.status, LoginStatus::AwaitingFactor { .. }));
    }
    assert_eq!(
        w.store.failure_record(w.tenant.id, alice.id).await.unwrap(),
        None,
        "nothing counted against the named account"
    );
    // alice still signs in.
    let (flow, _) = w.begin("alice", Some("passkey")).await;
    let c = w
        .svc
        .passkey_challenge(w.tenant.id, flow.expose(), &w.client)
        .await
        .unwrap();
    let s = w
        .submit(&flow, FactorResponse::Passkey(&soft_login(&mut pk, c)))
        .await
        .unwrap();
    assert!(matches!(s.status, LoginStatus::Authenticated(_)), "{s:?}");
}

/// A discoverable passkey signs in without a username.
pub async fn discoverable_passkeys_sign_in_without_a_username<S: ConformanceStore>(s: S) {
    let (w, alice) = mfa_alice(&s, 13).await;
    let mut pk = SoftPasskey::new(true);
    register_passkey(&w, &alice, &mut pk, "phone").await;
    let cred_id = {
        let v = w
            .store
            .user_factor(w.tenant.id, alice.id, FactorKind::Passkey)
            .await
            .unwrap()
            .unwrap();
        let FactorCredential::Passkey(set) = v.value else {
            panic!()
        };
        set.keys[0].passkey.cred_id().clone()
    };
    let (flow, status, mut challenge) = w
        .svc
        .begin_passkey_login(w.tenant.id, &w.client)
        .await
        .unwrap();
    assert_eq!(accepts(&status), [FactorKind::Passkey]);
    assert!(
        challenge.public_key.allow_credentials.is_empty(),
        "username-less"
    );
    // The soft authenticator has no resident keys: point it at the
    // credential, and add the user handle a resident key would return
    // (the handle is not covered by the signature).
    challenge.public_key.allow_credentials = vec![webauthn_rs_proto::AllowCredentials {
        type_: "public-key".into(),
        id: cred_id,
        transports: None,
    }];
    let answer = soft_login(&mut pk, challenge);
    let mut value: serde_json::Value = serde_json::from_str(&answer).unwrap();
    use base64::Engine;
    value["response"]["userHandle"] = serde_json::Value::String(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(alice.id.as_uuid().as_bytes()),
    );
    let answer = value.to_string();
    let s = w
        .submit(&flow, FactorResponse::Passkey(&answer))
        .await
        .unwrap();
    let LoginStatus::Authenticated(auth) = s.status else {
        panic!("{s:?}")
    };
    assert_eq!(auth.user_id(), alice.id);
}
