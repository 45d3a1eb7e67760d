//! File databases: persistence, sharing between stores, migrations.

use std::path::PathBuf;

use countersign_core::{
    AuthzVersions, FactorKind, FactorStore, IdentityAdmin, IdentityAuthnLog, IdentityLookup,
    KeyStore, LockoutPolicy, PolicyStore, RateLimitStore, RbacChange, RbacKind, RbacLookup,
    RbacName, RbacStore, RoleAssignment, SigningAlgorithm, StoreError, StoreErrorKind, User,
};
use countersign_sqlite::{SCHEMA_VERSION, SqliteError, SqliteStore};
use countersign_testkit::fixtures::{Fx, at, password, signing_key, signing_key_of};

/// A database file in a directory of its own, removed on drop.
pub(crate) struct TempDb(pub(crate) PathBuf);

impl TempDb {
    pub(crate) fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("countersign-sqlite-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir.join("db.sqlite"))
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[tokio::test]
async fn data_survives_reopening_the_file() {
    let db = TempDb::new("reopen");
    let fx = Fx::new(1);
    let p = fx.tenant("acme");
    {
        let s = SqliteStore::open(&db.0).await.unwrap();
        s.provision_tenant(&p).await.unwrap();
    }
    let s = SqliteStore::open(&db.0).await.unwrap();
    assert_eq!(
        s.get_tenant(p.tenant().id).await.unwrap().as_ref(),
        Some(p.tenant())
    );
    let mode: String = rusqlite::Connection::open(&db.0)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn migrate_is_idempotent_and_concurrent_migrations_agree() {
    let db = TempDb::new("migrate");
    let s = SqliteStore::open_unmigrated(&db.0).await.unwrap();
    assert_eq!(s.schema_version().await.unwrap(), 0);
    // Eight stores (eight connections, as eight processes would have)
    // migrate the same file at once.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let path = db.0.clone();
        tasks.push(tokio::spawn(async move {
            let s = SqliteStore::open_unmigrated(&path).await.unwrap();
            s.migrate().await.unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), SCHEMA_VERSION);
    }
    assert_eq!(s.migrate().await.unwrap(), SCHEMA_VERSION);
    let rows: i64 = rusqlite::Connection::open(&db.0)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM cs_schema_migrations", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(rows, i64::from(SCHEMA_VERSION));
}

#[tokio::test]
async fn a_newer_schema_is_refused_with_no_writes() {
    let db = TempDb::new("newer");
    let fx = Fx::new(2);
    {
        let s = SqliteStore::open(&db.0).await.unwrap();
        s.provision_tenant(&fx.tenant("acme")).await.unwrap();
    }
    let conn = rusqlite::Connection::open(&db.0).unwrap();
    conn.execute(
        "INSERT INTO cs_schema_migrations (version, applied_at) VALUES (999, 0)",
        [],
    )
    .unwrap();
    let before: i64 = conn
        .query_row("SELECT total_changes()", [], |r| r.get(0))
        .unwrap();
    for result in [
        SqliteStore::open(&db.0).await.map(|_| ()),
        SqliteStore::open_unmigrated(&db.0).await.map(|_| ()),
    ] {
        match result {
            Err(e @ SqliteError::SchemaTooNew { found: 999, .. }) => {
                assert!(e.to_string().contains("newer than this build"), "{e}");
                assert_eq!(e.kind(), StoreErrorKind::Other);
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }
    let tables: i64 = conn
        .query_row("SELECT COUNT(*) FROM cs_schema_migrations", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(tables, i64::from(SCHEMA_VERSION) + 1, "nothing written");
    let after: i64 = conn
        .query_row("SELECT total_changes()", [], |r| r.get(0))
        .unwrap();
    assert_eq!(before, after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_guarantees_hold_across_stores_sharing_a_file() {
    let db = TempDb::new("shared");
    let fx = Fx::new(3);
    let first = SqliteStore::open(&db.0).await.unwrap();
    let p = fx.tenant("acme");
    first.provision_tenant(&p).await.unwrap();
    let t = p.tenant().id;
    let u = fx.user(t, "alice");
    first.create_user(&u, &[password("v1")]).await.unwrap();
    // Four stores, as four processes would have, each with its own connection.
    let mut stores = vec![first];
    for _ in 0..3 {
        stores.push(SqliteStore::open(&db.0).await.unwrap());
    }
    let mut tasks = Vec::new();
    for i in 0..32 {
        let s = stores[i % stores.len()].clone();
        tasks.push(tokio::spawn(async move {
            let won = s
                .compare_and_save_user_factor(t, u.id, Some(1), &password(&format!("w{i}")))
                .await
                .unwrap();
            let failures = s
                .record_failed_attempt(t, u.id, &LockoutPolicy::default(), at(1))
                .await
                .unwrap();
            (won, failures.count)
        }));
    }
    let mut wins = 0;
    for task in tasks {
        let (won, _) = task.await.unwrap();
        wins += usize::from(won);
    }
    assert_eq!(wins, 1);
    let s = &stores[0];
    assert_eq!(s.failure_record(t, u.id).await.unwrap().unwrap().count, 32);
    assert_eq!(
        s.user_factor(t, u.id, FactorKind::Password)
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
}

/// A database file the store creates, and the `-wal` and `-shm` files
/// SQLite creates beside it, are readable and writable by their owner only.
#[cfg(unix)]
#[tokio::test]
async fn new_database_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let with_suffix = |db: &TempDb, suffix: &str| {
        let mut name = db.0.clone().into_os_string();
        name.push(suffix);
        PathBuf::from(name)
    };
    let fx = Fx::new(4);
    for unmigrated in [false, true] {
        let db = TempDb::new(if unmigrated {
            "mode-unmigrated"
        } else {
            "mode"
        });
        let s = if unmigrated {
            let s = SqliteStore::open_unmigrated(&db.0).await.unwrap();
            s.migrate().await.unwrap();
            s
        } else {
            SqliteStore::open(&db.0).await.unwrap()
        };
        // A write, so the WAL and its index exist (they do while the
        // connection is open).
        s.provision_tenant(&fx.tenant("acme")).await.unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let path = with_suffix(&db, suffix);
            assert_eq!(
                mode(&path),
                0o600,
                "{} (unmigrated: {unmigrated})",
                path.display()
            );
        }
    }
    // An existing file keeps its mode: the operator's choice.
    let db = TempDb::new("mode-existing");
    std::fs::write(&db.0, b"").unwrap();
    std::fs::set_permissions(&db.0, std::fs::Permissions::from_mode(0o640)).unwrap();
    let s = SqliteStore::open(&db.0).await.unwrap();
    s.provision_tenant(&fx.tenant("acme")).await.unwrap();
    assert_eq!(mode(&db.0), 0o640);
}

/// The migrations a schema-4 database had applied (before RBAC).
const SCHEMA_4: [&str; 4] = [
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_flows.sql"),
    include_str!("../../migrations/0003_sessions.sql"),
    include_str!("../../migrations/0004_policies.sql"),
];

/// A database written at schema 4 (with a tenant, a user and a policy
/// document) migrates to the current schema keeping its rows, and the RBAC
/// model then works on them: versions start at 0, a change names the old
/// user, and erasing that user removes its assignment and bumps the
/// version.
#[tokio::test]
async fn a_schema_4_database_with_rows_migrates_to_rbac() {
    let db = TempDb::new("upgrade-4");
    {
        let conn = rusqlite::Connection::open(&db.0).unwrap();
        conn.execute_batch(
            "CREATE TABLE cs_schema_migrations (
                version INTEGER PRIMARY KEY NOT NULL,
                applied_at INTEGER NOT NULL
            ) STRICT;",
        )
        .unwrap();
        for (i, sql) in SCHEMA_4.iter().enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.execute(
                "INSERT INTO cs_schema_migrations (version, applied_at) VALUES (?1, 0)",
                [i as i64 + 1],
            )
            .unwrap();
        }
    }
    let fx = Fx::new(6);
    let p = fx.tenant("acme");
    let t = p.tenant().id;
    let u = fx.user(t, "alice");
    {
        let s = SqliteStore::open_unmigrated(&db.0).await.unwrap();
        assert_eq!(s.schema_version().await.unwrap(), 4);
        s.provision_tenant(&p).await.unwrap();
    }
    {
        // A user as schema 4 stores it (no tier or attributes yet).
        let conn = rusqlite::Connection::open(&db.0).unwrap();
        conn.execute(
            "INSERT INTO cs_users (id, tenant_id, identifier, display_name, email, state,
                                   state_reason, created_at, updated_at, last_login_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'active', NULL, ?6, ?6, NULL)",
            rusqlite::params![
                u.id.to_string(),
                t.to_string(),
                u.identifier.as_str(),
                u.display_name,
                u.email.as_ref().map(|e| e.as_str()),
                u.created_at.timestamp_micros(),
            ],
        )
        .unwrap();
        // A policy document as schema 4 stores it (no links column yet).
        conn.execute(
            "INSERT INTO cs_policy_documents (tenant_id, schema, policies, version, updated_at)
             VALUES (?1, '', '', 1, 0)",
            [t.to_string()],
        )
        .unwrap();
    }
    let s = SqliteStore::open(&db.0).await.unwrap();
    assert_eq!(s.schema_version().await.unwrap(), SCHEMA_VERSION);
    // Users written before profiles have no tier and no attributes.
    let u = User {
        tier: None,
        attributes: Default::default(),
        ..u
    };
    assert_eq!(s.get_user(t, u.id).await.unwrap().as_ref(), Some(&u));
    let doc = s.policy_document(t).await.unwrap().unwrap();
    assert!(doc.links.is_empty() && doc.version == 1, "{doc:?}");
    assert_eq!(
        s.authz_versions(t).await.unwrap(),
        AuthzVersions {
            policies: Some(1),
            rbac: 0
        }
    );
    let name = |s: &str| RbacName::new(s).unwrap();
    let changes = [
        RbacChange::Create {
            kind: RbacKind::Service,
            name: name("docs"),
        },
        RbacChange::Create {
            kind: RbacKind::Role,
            name: name("editor"),
        },
        RbacChange::Assign(RoleAssignment {
            user: u.id,
            role: name("editor"),
            service: name("docs"),
        }),
    ];
    for (v, change) in (1..).zip(&changes) {
        assert_eq!(s.apply_rbac_change(t, change, None).await.unwrap(), v);
    }
    assert_eq!(
        s.user_roles(t, u.id, &name("docs")).await.unwrap(),
        [name("editor")]
    );
    let pseudonym = fx.user(t, "ghost").id;
    assert!(s.erase_user(t, u.id, pseudonym).await.unwrap());
    assert_eq!(s.authz_versions(t).await.unwrap().rbac, 4);
    assert!(s.rbac_snapshot(t).await.unwrap().assignments.is_empty());
}

/// The migrations a schema-6 database had applied (before key algorithms).
const SCHEMA_6: [&str; 6] = [
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_flows.sql"),
    include_str!("../../migrations/0003_sessions.sql"),
    include_str!("../../migrations/0004_policies.sql"),
    include_str!("../../migrations/0005_rbac.sql"),
    include_str!("../../migrations/0006_policy_links.sql"),
];

/// A database written at schema 6 holding signing keys (one active, one
/// retired) migrates keeping them byte for byte, and they read back as
/// EdDSA keys; keys of the other algorithms are written and read after it,
/// and an algorithm the schema does not know is refused.
#[tokio::test]
async fn a_schema_6_database_with_signing_keys_migrates_to_key_algorithms() {
    let db = TempDb::new("upgrade-6");
    {
        let conn = rusqlite::Connection::open(&db.0).unwrap();
        conn.execute_batch(
            "CREATE TABLE cs_schema_migrations (
                version INTEGER PRIMARY KEY NOT NULL,
                applied_at INTEGER NOT NULL
            ) STRICT;",
        )
        .unwrap();
        for (i, sql) in SCHEMA_6.iter().enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.execute(
                "INSERT INTO cs_schema_migrations (version, applied_at) VALUES (?1, 0)",
                [i as i64 + 1],
            )
            .unwrap();
        }
    }
    let fx = Fx::new(7);
    let p = fx.tenant("acme");
    let t = p.tenant().id;
    let mut old = signing_key(&fx, t, at(0));
    old.retired_at = Some(at(10));
    old.verify_until = Some(at(370));
    let active = signing_key(&fx, t, at(10));
    {
        let s = SqliteStore::open_unmigrated(&db.0).await.unwrap();
        assert_eq!(s.schema_version().await.unwrap(), 6);
        s.provision_tenant(&p).await.unwrap();
    }
    {
        // Keys as schema 6 stores them (no algorithm column yet).
        let conn = rusqlite::Connection::open(&db.0).unwrap();
        for k in [&old, &active] {
            conn.execute(
                "INSERT INTO cs_signing_keys
                     (tenant_id, kid, private_key, public_key, created_at, retired_at, verify_until)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                rusqlite::params![
                    t.to_string(),
                    k.kid,
                    k.private_key,
                    k.public_key,
                    k.created_at.timestamp_micros(),
                    k.retired_at.map(|t| t.timestamp_micros()),
                    k.verify_until.map(|t| t.timestamp_micros()),
                ],
            )
            .unwrap();
        }
    }
    let s = SqliteStore::open(&db.0).await.unwrap();
    assert_eq!(s.schema_version().await.unwrap(), SCHEMA_VERSION);
    let keys = s.signing_keys(t).await.unwrap();
    assert_eq!(keys, [old.clone(), active.clone()]);
    assert!(keys.iter().all(|k| k.algorithm == SigningAlgorithm::EdDsa));
    let es = signing_key_of(&fx, t, SigningAlgorithm::Es256, at(20));
    s.rotate_signing_key(&es, at(380)).await.unwrap();
    let keys = s.signing_keys(t).await.unwrap();
    assert_eq!(keys.last(), Some(&es));
    assert_eq!(keys[1].verify_until, Some(at(380)), "the EdDSA key retired");
    let conn = rusqlite::Connection::open(&db.0).unwrap();
    let refused = conn.execute(
        "UPDATE cs_signing_keys SET algorithm = 'HS256' WHERE kid = ?1",
        [&es.kid],
    );
    assert!(refused.is_err(), "{refused:?}");
}

/// A rate-limit count saturates at `u32::MAX` (seeded: the trait cannot
/// get there in a test's time), and the table refuses a count beyond it
/// or a key longer than 256 bytes even from outside the store.
#[tokio::test]
async fn rate_limit_counts_saturate() {
    let db = TempDb::new("ratelimit-saturate");
    let s = SqliteStore::open(&db.0).await.unwrap();
    let minute = std::time::Duration::from_secs(60);
    assert_eq!(s.hit("k", 5, minute, at(0)).await.unwrap().count, 1);
    let conn = rusqlite::Connection::open(&db.0).unwrap();
    let max = i64::from(u32::MAX);
    conn.execute("UPDATE cs_rate_limits SET hits = ?1 - 1", [max])
        .unwrap();
    for _ in 0..2 {
        let d = s.hit("k", u32::MAX, minute, at(1)).await.unwrap();
        assert_eq!((d.count, d.allowed, d.remaining), (u32::MAX, true, 0));
    }
    assert!(!s.hit("k", 5, minute, at(2)).await.unwrap().allowed);
    let over = conn.execute("UPDATE cs_rate_limits SET hits = ?1 + 1", [max]);
    assert!(over.is_err(), "{over:?}");
    let long = conn.execute(
        "INSERT INTO cs_rate_limits VALUES (?1, 0, 0, 1)",
        ["é".repeat(129)],
    );
    assert!(long.is_err(), "{long:?}");
}
