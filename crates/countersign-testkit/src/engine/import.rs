//! Migrating users in: accounts imported with the password hashes they
//! had elsewhere (bcrypt, scrypt as Better Auth stores it, PBKDF2 as Django
//! and Keycloak store it, argon2), verified in their own format, rehashed
//! to the tenant's argon2id at the first successful login; imports
//! idempotent by identifier.

use countersign_core::{
    AccountState, Argon2Params, AuditFilter, AuditKind, AuditReason, AuditStatus, Error, ErrorKind,
    FactorCredential, FactorKind, FactorResponse, ImportOutcome, ImportUser, LegacyHash,
    LockoutPolicy, LoginStatus, PasswordHasher, Refusal, User, UserId, Versioned,
};

use super::{AuditLog, NoAudit, refused};
use crate::ConformanceStore;
use crate::fixtures::{PASSWORD, World};

/// The tenant's argon2id, as the fixture hasher writes it.
const TENANT_ARGON2: &str = "$argon2id$v=19$m=64,t=1,p=1$";

/// A wrong password for every imported user.
const WRONG: &str = "correct horse battery stapler";

/// [`PASSWORD`] as each source system stores it (made by other
/// implementations: libxcrypt's bcrypt, CPython's OpenSSL scrypt and
/// PBKDF2), and as argon2 at parameters other than the tenant's.
async fn formats<S: ConformanceStore>(w: &World<S>) -> Vec<(&'static str, LegacyHash)> {
    let parse = |s: &str| LegacyHash::parse(s).expect("a valid hash");
    let other_argon2 = PasswordHasher::new(
        Argon2Params {
            m_cost_kib: 128,
            t_cost: 2,
            p_cost: 1,
        },
        1,
    )
    .expect("hasher")
    .hash(PASSWORD, w.svc.env())
    .await
    .expect("argon2 hash");
    vec![
        (
            "bcrypt",
            parse("$2b$04$abcdefghijklmnopqrstuu7EJV7kdjBBQxyb0HjTh9KS7.Lah/6CG"),
        ),
        (
            "better-auth",
            parse(
                "5f1c0a7e9b3d2c4a6e8f0b1d3c5a7e9f:62693c62a3fcaa6afe66fb86330e442fc5b8195aa2e1de52903fa580b6dcd6b7bc21a16cf8117478ab803cf9c31f442dc15203fb5ea0ae4b64763799d9321634",
            ),
        ),
        (
            "scrypt",
            parse(
                "$scrypt$ln=10,r=8,p=1$aW1wb3J0ZWRzYWx0MDAwMQ$tpBxwH5jJs51aAfSmeeebluvgNYn4Vm5vxvi2oHKL7o",
            ),
        ),
        (
            "django",
            parse("pbkdf2_sha256$1000$importsalt12$ASYZoaHCxUFC8vmLQVocU8SqQGuuInSgXIsKqZqajyM="),
        ),
        (
            "keycloak",
            LegacyHash::keycloak(
                r#"{"value": "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ7TX23G+6QgERwdCrtdq7/IU5aB6IVSOpTz6igHBLZ5Gw==", "salt": "AAECAwQFBgcICQoLDA0ODw==", "additionalParameters": {}}"#,
                r#"{"hashIterations": 1000, "algorithm": "pbkdf2-sha256", "additionalParameters": {}}"#,
            )
            .expect("a valid keycloak credential"),
        ),
        ("argon2", parse(&other_argon2)),
    ]
}

/// Import `identifier` (active) with `hash` into the fixture tenant.
async fn import<S: ConformanceStore>(
    w: &World<S>,
    identifier: &str,
    hash: Option<LegacyHash>,
) -> Result<ImportOutcome, Error> {
    let row = ImportUser {
        password: hash,
        ..ImportUser::new(identifier)
    };
    w.svc.import_user(w.tenant.id, row, &w.client).await
}

/// Import `identifier` and return the new user.
async fn created<S: ConformanceStore>(w: &World<S>, identifier: &str, hash: LegacyHash) -> User {
    match import(w, identifier, Some(hash)).await {
        Ok(ImportOutcome::Created(user)) => user,
        other => panic!("{identifier} was not created: {other:?}"),
    }
}

/// The user's stored password credential: its hash and version.
async fn stored<S: ConformanceStore>(w: &World<S>, user: UserId) -> (String, u64) {
    match w
        .store
        .user_factor(w.tenant.id, user, FactorKind::Password)
        .await
        .unwrap()
    {
        Some(Versioned {
            value: FactorCredential::Password(c),
            version,
        }) => (c.phc, version),
        other => panic!("no password credential: {other:?}"),
    }
}

async fn failures<S: ConformanceStore>(w: &World<S>, user: UserId) -> u32 {
    w.store
        .failure_record(w.tenant.id, user)
        .await
        .unwrap()
        .map_or(0, |r| r.count)
}

/// Sign `identifier` in through a login flow (the tenant's `password`
/// method) with `password`.
async fn flow_login<S: ConformanceStore>(
    w: &World<S>,
    identifier: &str,
    password: &str,
) -> Result<countersign_core::Submission, Error> {
    let (flow, _) = w.begin(identifier, Some("password")).await;
    w.submit(&flow, FactorResponse::Password(password)).await
}

/// Every imported format, on both password paths (the one-call check and
/// a login flow): the wrong password is refused, counted toward lockout and
/// changes no hash; the right one signs in and leaves the tenant's argon2id
/// stored; the next login verifies that, and rehashes nothing more.
pub async fn imported_passwords_sign_in_and_are_rehashed_to_argon2id<S: ConformanceStore>(s: S) {
    rehash_at_first_login(s, NoAudit).await;
}

/// [`imported_passwords_sign_in_and_are_rehashed_to_argon2id`], its audit
/// checks made through `audit`.
pub(crate) async fn rehash_at_first_login<S: ConformanceStore>(s: S, audit: impl AuditLog<S>) {
    let w = World::password_only(s, 60, LockoutPolicy::default()).await;
    let formats = formats(&w).await;
    let mut imported = 0;
    for (name, hash) in formats {
        for path in ["call", "flow"] {
            let identifier = format!("{name}-{path}@example.com");
            let user = created(&w, &identifier, hash.clone()).await;
            imported += 1;
            let (before, version) = stored(&w, user.id).await;
            assert!(
                !before.starts_with(TENANT_ARGON2),
                "{identifier}: stored in its own format"
            );
            assert!(w.svc.hasher().needs_rehash(&before));

            // The wrong password: refused like any, counted, nothing rehashed.
            match path {
                "call" => assert!(matches!(
                    w.login(&identifier, WRONG).await,
                    Err(Error::InvalidCredentials)
                )),
                _ => assert!(refused(
                    &flow_login(&w, &identifier, WRONG).await,
                    Refusal::Incorrect
                )),
            }
            assert_eq!(failures(&w, user.id).await, 1, "{identifier}");
            assert_eq!(stored(&w, user.id).await, (before.clone(), version));

            // The right one signs in, verified in the imported format.
            match path {
                "call" => {
                    let login = w.login(&identifier, PASSWORD).await.unwrap();
                    assert_eq!(login.user.id, user.id);
                }
                _ => {
                    let s = flow_login(&w, &identifier, PASSWORD).await.unwrap();
                    let LoginStatus::Authenticated(auth) = s.status else {
                        panic!("{identifier}: {s:?}")
                    };
                    assert_eq!(auth.user_id(), user.id);
                }
            }
            let (after, rehashed) = stored(&w, user.id).await;
            assert!(
                after.starts_with(TENANT_ARGON2),
                "{identifier}: the tenant's argon2id after the first login, not {}",
                after.split('$').nth(1).unwrap_or("?")
            );
            assert!(!w.svc.hasher().needs_rehash(&after));
            assert_eq!(rehashed, version + 1, "one compare-and-save");
            assert_eq!(failures(&w, user.id).await, 0, "a login forgets failures");

            // The next login verifies the argon2id, and stores nothing.
            w.login(&identifier, PASSWORD).await.unwrap();
            assert!(matches!(
                w.login(&identifier, WRONG).await,
                Err(Error::InvalidCredentials)
            ));
            assert_eq!(stored(&w, user.id).await, (after, rehashed));
        }
    }
    if let Some(events) = audit.of_kind(&w, AuditKind::UserImported).await {
        assert_eq!(events.len(), imported);
    }
    if let Some(events) = audit.of_kind(&w, AuditKind::PasswordRehashed).await {
        assert_eq!(events.len(), imported, "one rehash per user, audited");
        assert!(
            events
                .iter()
                .all(|e| e.factor == Some(FactorKind::Password))
        );
    }
}

/// Importing an identifier the tenant has (imported, registered, in any
/// case, concurrently, in a batch) answers `AlreadyExists` with that user
/// and changes nothing: not the user, not its password.
pub async fn importing_an_identifier_again_changes_nothing<S: ConformanceStore>(s: S) {
    reimport(s, NoAudit).await;
}

/// [`importing_an_identifier_again_changes_nothing`], its audit checks
/// made through `audit`.
pub(crate) async fn reimport<S: ConformanceStore>(s: S, audit: impl AuditLog<S>) {
    let w = World::password_only(s, 61, LockoutPolicy::default()).await;
    let bcrypt =
        LegacyHash::parse("$2b$04$abcdefghijklmnopqrstuu7EJV7kdjBBQxyb0HjTh9KS7.Lah/6CG").unwrap();
    // Django's published vector, for another password.
    let django = LegacyHash::parse(
        "pbkdf2_sha256$390000$seasalt$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c=",
    )
    .unwrap();
    let dana = ImportUser {
        password: Some(bcrypt.clone()),
        display_name: Some("Dana".into()),
        ..ImportUser::new("dana")
    };
    let Ok(ImportOutcome::Created(user)) = w.svc.import_user(w.tenant.id, dana, &w.client).await
    else {
        panic!("dana is created")
    };
    assert_eq!(user.state, AccountState::Active);
    let row = w.svc.user(w.tenant.id, user.id).await.unwrap();
    let credential = stored(&w, user.id).await;

    // Again, with another hash, name and state, and in upper case.
    for identifier in ["dana", "DANA", " dana "] {
        let again = ImportUser {
            password: Some(django.clone()),
            display_name: Some("Someone Else".into()),
            state: AccountState::Suspended,
            ..ImportUser::new(identifier)
        };
        assert_eq!(
            w.svc
                .import_user(w.tenant.id, again, &w.client)
                .await
                .unwrap(),
            ImportOutcome::AlreadyExists(user.id)
        );
    }
    assert_eq!(w.svc.user(w.tenant.id, user.id).await.unwrap(), row);
    assert_eq!(stored(&w, user.id).await, credential);
    assert!(matches!(
        w.login("dana", "lètmein").await,
        Err(Error::InvalidCredentials)
    ));

    // A registered user is not overwritten by an import either.
    let erin = w.user("erin").await;
    let erin_credential = stored(&w, erin.id).await;
    assert_eq!(
        import(&w, "erin", Some(bcrypt.clone())).await.unwrap(),
        ImportOutcome::AlreadyExists(erin.id)
    );
    assert_eq!(stored(&w, erin.id).await, erin_credential);

    // Concurrent imports of one identifier: one creates, the others see it.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (svc, client, tenant) = (w.svc.clone(), w.client.clone(), w.tenant.id);
        let row = ImportUser {
            password: Some(bcrypt.clone()),
            ..ImportUser::new("hal")
        };
        tasks.push(tokio::spawn(async move {
            svc.import_user(tenant, row, &client).await.unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let hal: Vec<UserId> = outcomes
        .iter()
        .filter_map(|o| match o {
            ImportOutcome::Created(u) => Some(u.id),
            ImportOutcome::AlreadyExists(_) => None,
        })
        .collect();
    assert_eq!(hal.len(), 1, "one import creates hal: {outcomes:?}");
    assert!(outcomes.iter().all(|o| match o {
        ImportOutcome::Created(u) => u.id == hal[0],
        ImportOutcome::AlreadyExists(id) => *id == hal[0],
    }));

    // A batch: one outcome per row, refusals per row; run again, it
    // creates nothing.
    let batch = || {
        vec![
            ImportUser {
                password: Some(django.clone()),
                email: Some("fay@example.com".into()),
                ..ImportUser::new("fay")
            },
            ImportUser::new("dana"),
            ImportUser {
                state: AccountState::Deleted,
                ..ImportUser::new("gus")
            },
            ImportUser::new(""),
            ImportUser {
                password: Some(LegacyHash::Pbkdf2Sha256 {
                    iterations: 50_000_000,
                    salt: b"salt".to_vec(),
                    hash: vec![0; 32],
                }),
                ..ImportUser::new("ivan")
            },
        ]
    };
    let first = w
        .svc
        .import_users(w.tenant.id, batch(), &w.client)
        .await
        .unwrap();
    assert_eq!(first.len(), 5);
    let Ok(ImportOutcome::Created(fay)) = &first[0] else {
        panic!("{first:?}")
    };
    assert_eq!(
        fay.email.as_ref().map(|e| e.as_str()),
        Some("fay@example.com")
    );
    assert!(matches!(&first[1], Ok(ImportOutcome::AlreadyExists(id)) if *id == user.id));
    for refusal in &first[2..] {
        assert!(
            matches!(refusal, Err(e) if e.kind() == ErrorKind::InvalidInput),
            "{refusal:?}"
        );
    }
    let second = w
        .svc
        .import_users(w.tenant.id, batch(), &w.client)
        .await
        .unwrap();
    assert!(matches!(&second[0], Ok(ImportOutcome::AlreadyExists(id)) if *id == fay.id));
    for name in ["gus", "ivan"] {
        assert!(
            w.store
                .find_user(
                    w.tenant.id,
                    &countersign_core::Identifier::parse(name).unwrap()
                )
                .await
                .unwrap()
                .is_none(),
            "a refused row creates nothing"
        );
    }
    w.login("fay", "lètmein").await.unwrap();
    if let Some(events) = audit.of_kind(&w, AuditKind::UserImported).await {
        let mut users: Vec<_> = events.iter().filter_map(|e| e.user_id).collect();
        users.sort();
        let mut want = vec![user.id, hal[0], fay.id];
        want.sort();
        assert_eq!(users, want, "one event per created user, none for the rest");
    }
}

/// An unknown identifier is refused exactly as a wrong password for an
/// imported user (the same error or refusal, the same one hash
/// computation), audited as unknown as before; the imported account's
/// failures lock it like any, and a locked, suspended or password-less
/// imported account verifies nothing and rehashes nothing.
pub async fn unknown_identifiers_are_refused_like_wrong_imported_passwords<S: ConformanceStore>(
    s: S,
) {
    unknown_like_wrong(s, NoAudit).await;
}

/// [`unknown_identifiers_are_refused_like_wrong_imported_passwords`], its
/// audit checks made through `audit`.
pub(crate) async fn unknown_like_wrong<S: ConformanceStore>(s: S, audit: impl AuditLog<S>) {
    let lockout = LockoutPolicy {
        max_attempts: 3,
        ..LockoutPolicy::default()
    };
    let w = World::password_only(s, 62, lockout).await;
    let bcrypt =
        LegacyHash::parse("$2b$04$abcdefghijklmnopqrstuu7EJV7kdjBBQxyb0HjTh9KS7.Lah/6CG").unwrap();
    let ivy = created(&w, "ivy", bcrypt.clone()).await;
    let imported = stored(&w, ivy.id).await;
    let work = |w: &World<S>| w.svc.hasher().computations();

    // The one-call check: one error, one computation each.
    let c0 = work(&w);
    let unknown = w.login("nobody", PASSWORD).await;
    let c1 = work(&w);
    let wrong = w.login("ivy", WRONG).await;
    let c2 = work(&w);
    assert!(matches!(unknown, Err(Error::InvalidCredentials)));
    assert!(matches!(wrong, Err(Error::InvalidCredentials)));
    assert_eq!((c1 - c0, c2 - c1), (1, 1));

    // A flow: the same refusal, the flow still awaiting the same step.
    let unknown = flow_login(&w, "nobody", PASSWORD).await.unwrap();
    let c3 = work(&w);
    let wrong = flow_login(&w, "ivy", WRONG).await.unwrap();
    assert_eq!(work(&w) - c3, 1);
    assert_eq!(unknown.refused, Some(Refusal::Incorrect));
    assert_eq!(wrong.refused, Some(Refusal::Incorrect));
    let awaiting = |s: &LoginStatus| match s {
        LoginStatus::AwaitingFactor { step, accepts, .. } => (*step, accepts.clone()),
        other => panic!("not awaiting: {other:?}"),
    };
    assert_eq!(awaiting(&unknown.status), awaiting(&wrong.status));
    if let Some(events) = audit
        .events(
            &w.store,
            w.tenant.id,
            AuditFilter {
                kind: Some(AuditKind::Authentication),
                status: Some(AuditStatus::Failure),
                ..AuditFilter::default()
            },
        )
        .await
    {
        let reasons = |user: Option<UserId>| {
            events
                .iter()
                .filter(|e| e.user_id == user)
                .map(|e| e.detail.clone())
                .collect::<Vec<_>>()
        };
        let unknown = Some(AuditReason::UnknownIdentifier.into());
        let wrong = Some(AuditReason::WrongSecret.into());
        assert_eq!(reasons(None), [unknown.clone(), unknown]);
        assert_eq!(reasons(Some(ivy.id)), [wrong.clone(), wrong]);
    }

    // Ivy's two failures counted; a third locks her. Locked, her right
    // password is refused after a dummy computation, and nothing rehashed.
    assert_eq!(failures(&w, ivy.id).await, 2);
    assert!(matches!(
        w.login("ivy", WRONG).await,
        Err(Error::InvalidCredentials)
    ));
    let c4 = work(&w);
    assert!(matches!(
        w.login("ivy", PASSWORD).await,
        Err(Error::InvalidCredentials)
    ));
    assert_eq!(work(&w) - c4, 1);
    assert_eq!(stored(&w, ivy.id).await, imported, "locked: not rehashed");

    // Suspended at import: the right password does not sign in or rehash.
    let row = ImportUser {
        password: Some(bcrypt),
        state: AccountState::Suspended,
        ..ImportUser::new("joe")
    };
    let Ok(ImportOutcome::Created(joe)) = w.svc.import_user(w.tenant.id, row, &w.client).await
    else {
        panic!("joe is created")
    };
    let joe_hash = stored(&w, joe.id).await;
    assert!(matches!(
        w.login("joe", PASSWORD).await,
        Err(Error::InvalidCredentials)
    ));
    assert_eq!(stored(&w, joe.id).await, joe_hash);

    // Imported without a password: refused after the same work.
    let Ok(ImportOutcome::Created(kim)) = import(&w, "kim", None).await else {
        panic!("kim is created")
    };
    let c5 = work(&w);
    assert!(matches!(
        w.login("kim", PASSWORD).await,
        Err(Error::InvalidCredentials)
    ));
    assert_eq!(work(&w) - c5, 1);
    assert!(
        w.store
            .user_factor(w.tenant.id, kim.id, FactorKind::Password)
            .await
            .unwrap()
            .is_none()
    );
}
