//! The account lifecycle around a login: the data export (GDPR art. 15
//! and 20).

use countersign_core::{
    AuditQuery, Enroll, Enrolled, Error, FactorExport, FactorKind, NewTenant, RbacChange, RbacKind,
    RbacName, RoleAssignment, User, UserExport,
};

use super::enroll_totp;
use crate::ConformanceStore;
use crate::fixtures::{PASSWORD, World, sign_in};

/// What the export of alice must not contain: her secrets.
struct Secrets {
    password_hash: String,
    totp_secret: String,
    recovery_codes: Vec<String>,
    session_token: String,
    token_hash: String,
}

/// Alice with a password, a TOTP, recovery codes, a session and a role;
/// bob beside her; her secrets as they were handed out or stored.
async fn alice_with_everything<S: ConformanceStore>(s: &S, seed: u64) -> (World<S>, User, Secrets) {
    let w = World::mfa(s.clone(), seed).await;
    let alice = w.user("alice").await;
    w.user("bob").await;
    enroll_totp(&w, &alice).await;
    let Enrolled::RecoveryCodes(codes) = w.enroll(&alice, Enroll::RecoveryCodes).await.unwrap()
    else {
        panic!("recovery codes")
    };
    let login = sign_in(&w, &alice).await;
    let issued = w.sessions.issue(&login, &w.client).await.unwrap();
    let session = w
        .sessions
        .validate(issued.session_token.expose())
        .await
        .unwrap();
    let name = |n: &str| RbacName::new(n).unwrap();
    for change in [
        RbacChange::Create {
            kind: RbacKind::Service,
            name: name("docs"),
        },
        RbacChange::Create {
            kind: RbacKind::Role,
            name: name("editor"),
        },
        RbacChange::Assign(RoleAssignment {
            user: alice.id,
            role: name("editor"),
            service: name("docs"),
        }),
    ] {
        s.apply_rbac_change(w.tenant.id, &change, None)
            .await
            .unwrap();
    }
    let factors = s.user_factors(w.tenant.id, alice.id).await.unwrap();
    let mut password_hash = String::new();
    let mut totp_secret = String::new();
    for f in &factors {
        match &f.value {
            countersign_core::FactorCredential::Password(p) => password_hash = p.phc.clone(),
            countersign_core::FactorCredential::Totp(t) => {
                totp_secret = format!("{:?}", t.secret);
            }
            _ => {}
        }
    }
    assert!(password_hash.starts_with("$argon2"));
    // As stored now (the login set its last login).
    let alice = s.get_user(w.tenant.id, alice.id).await.unwrap().unwrap();
    let secrets = Secrets {
        password_hash,
        totp_secret,
        recovery_codes: codes,
        session_token: issued.session_token.expose().to_owned(),
        token_hash: serde_json::to_value(session.key)
            .unwrap()
            .as_str()
            .map_or_else(|| format!("{:?}", session.key), str::to_owned),
    };
    (w, alice, secrets)
}

/// The checks every export of alice passes.
fn check(export: &UserExport, alice: &User, secrets: &Secrets) {
    assert_eq!(export.user, *alice);
    let kinds: Vec<FactorKind> = export.factors.iter().map(FactorExport::kind).collect();
    for k in [
        FactorKind::Password,
        FactorKind::Totp,
        FactorKind::RecoveryCodes,
    ] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    assert_eq!(export.sessions.len(), 1, "{:?}", export.sessions);
    assert_eq!(export.role_assignments.len(), 1);
    assert!(export.role_assignments.iter().all(|a| a.user == alice.id));
    let json = serde_json::to_string(export).unwrap();
    assert!(json.contains(alice.identifier.as_str()));
    let mut forbidden = vec![
        secrets.password_hash.as_str(),
        secrets.session_token.as_str(),
        secrets.token_hash.as_str(),
        "$argon2",
    ];
    forbidden.extend(secrets.recovery_codes.iter().map(String::as_str));
    for secret in forbidden {
        assert!(
            !json.contains(secret),
            "the export holds a secret: {secret}"
        );
    }
    if !secrets.totp_secret.is_empty() {
        assert!(!json.contains(&secrets.totp_secret));
    }
}

/// A user's export holds the account, its factors described, its sessions
/// and its roles, as one JSON document without a secret (no password
/// hash, TOTP secret, recovery code, session token or its hash); another
/// tenant cannot export the user.
pub async fn a_user_export_holds_everything_but_secrets<S: ConformanceStore>(s: S) {
    let (w, alice, secrets) = alice_with_everything(&s, 70).await;
    let export = w.svc.export_user(w.tenant.id, alice.id).await.unwrap();
    check(&export, &alice, &secrets);
    assert_eq!(export.audit_events, None);
    let other = w
        .svc
        .provision_tenant(NewTenant::password_only("beta", "Beta").unwrap())
        .await
        .unwrap();
    assert!(matches!(
        w.svc.export_user(other.id, alice.id).await,
        Err(Error::UserNotFound)
    ));
    let _ = PASSWORD;
}

/// [`a_user_export_holds_everything_but_secrets`], with the audit events
/// about the user: all of them hers, her registration and login included,
/// none of bob's.
pub(crate) async fn export_with_audit<S: ConformanceStore + AuditQuery>(s: S) {
    let (w, alice, secrets) = alice_with_everything(&s, 71).await;
    let export = w
        .svc
        .export_user_with_audit(w.tenant.id, alice.id)
        .await
        .unwrap();
    check(&export, &alice, &secrets);
    let events = export.audit_events.as_ref().unwrap();
    assert!(events.iter().all(|e| e.user_id == Some(alice.id)));
    let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
    for k in [
        countersign_core::AuditKind::UserRegistered,
        countersign_core::AuditKind::LoginSucceeded,
        countersign_core::AuditKind::SessionStarted,
    ] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
}
