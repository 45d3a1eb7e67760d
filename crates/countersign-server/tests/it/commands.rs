//! The administrative commands, through the real binary.

use crate::harness::{Server, credentials, run, run_with, sign_in, stderr, stdout};

/// Cheap hashing for commands that hash (tests only).
const CHEAP: &[(&str, &str)] = &[
    ("COUNTERSIGN_ARGON2_MEMORY_KIB", "64"),
    ("COUNTERSIGN_ARGON2_ITERATIONS", "1"),
];

/// `migrate` applies the migrations once and reports the version.
#[test]
fn migrate_reports_the_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &["migrate"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = countersign_sqlite::SCHEMA_VERSION;
    assert_eq!(
        stdout(&o).trim(),
        format!("sqlite schema version {v} (was 0)")
    );
    let o = run(dir.path(), &["migrate"]);
    assert_eq!(
        stdout(&o).trim(),
        format!("sqlite schema version {v} (up to date)")
    );
}

/// `tenant create` makes a tenant once; `admin create` prints a password
/// that signs in, for a user holding the admin role; both refuse what
/// exists or is unknown with exit code 1.
#[tokio::test(flavor = "multi_thread")]
async fn tenant_and_admin_create() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let o = run(
        data,
        &["tenant", "create", "--slug", "acme", "--name", "Acme Inc"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("tenant acme created"),
        "{}",
        stdout(&o)
    );
    let again = run(
        data,
        &["tenant", "create", "--slug", "acme", "--name", "Acme"],
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );

    let o = run(
        data,
        &["admin", "create", "--tenant", "acme", "--identifier", "ops"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("the password is printed")
        .to_owned();
    assert_eq!(password.len(), 24);
    assert_eq!(out.matches(&password).count(), 1, "printed once");
    let dup = run(
        data,
        &["admin", "create", "--tenant", "acme", "--identifier", "ops"],
    );
    assert_eq!(dup.status.code(), Some(1));
    let unknown = run(
        data,
        &["admin", "create", "--tenant", "nope", "--identifier", "x"],
    );
    assert_eq!(unknown.status.code(), Some(1));

    let s = Server::start(data, &[]);
    let token = sign_in(&s, "acme", "ops", &password).await;
    let users = s
        .http
        .get(s.url("/v1/admin/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 200, "the admin role lets it list users");
    let (code, _) = s.terminate();
    assert_eq!(code, Some(0));
}

/// `keys rotate` prints a new kid each time, which the JWKS then serves.
#[tokio::test(flavor = "multi_thread")]
async fn keys_rotate_prints_the_kid() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let s = Server::start(data, &[]);
    let (code, _) = s.terminate();
    assert_eq!(code, Some(0));
    let o = run(data, &["keys", "rotate", "--tenant", "main"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let kid = stdout(&o).trim().to_owned();
    assert!(!kid.is_empty() && !kid.contains('\n'), "{kid}");
    let o2 = run(data, &["keys", "rotate", "--tenant", "main"]);
    assert_ne!(stdout(&o2).trim(), kid);
    let unknown = run(data, &["keys", "rotate", "--tenant", "nope"]);
    assert_eq!(unknown.status.code(), Some(1));

    let s = Server::start(data, &[]);
    let jwks = s
        .http
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(jwks.contains(&kid), "{jwks}");
    let (code, _) = s.terminate();
    assert_eq!(code, Some(0));
}

const SCHEMA: &str = r#"
namespace App {
  entity Document in [Countersign::Service] { owner: Countersign::User };
  action read appliesTo {
    principal: Countersign::User,
    resource: [Document],
    context: { authentication: Countersign::Authentication }
  };
}
"#;

/// `policy validate` accepts a valid model (exit 0) and prints Cedar's
/// diagnostics for an invalid one (exit 1), with no store.
#[test]
fn policy_validate() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("schema.cedarschema");
    let good = dir.path().join("good.cedar");
    let bad = dir.path().join("bad.cedar");
    std::fs::write(&schema, SCHEMA).unwrap();
    std::fs::write(
        &good,
        "permit(principal, action == App::Action::\"read\", resource) \
         when { resource.owner == principal };",
    )
    .unwrap();
    std::fs::write(
        &bad,
        "permit(principal, action == App::Action::\"read\", resource) \
         when { resource.colour == \"red\" };",
    )
    .unwrap();
    let data = dir.path().join("unused");
    let args = |p: &std::path::Path| {
        vec![
            "policy".to_owned(),
            "validate".to_owned(),
            "--schema".to_owned(),
            schema.to_string_lossy().into_owned(),
            "--policies".to_owned(),
            p.to_string_lossy().into_owned(),
        ]
    };
    let ok_args = args(&good);
    let o = run(
        &data,
        &ok_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("valid: 1 "), "{}", stdout(&o));
    let bad_args = args(&bad);
    let o = run(
        &data,
        &bad_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("colour"), "{}", stderr(&o));
    assert!(!data.exists(), "no store was opened");
    let missing = args(&dir.path().join("missing.cedar"));
    let o = run(
        &data,
        &missing.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(o.status.code(), Some(1));
}

/// `hash calibrate` times the configured parameters; bad parameters are
/// a configuration error naming the setting.
#[test]
fn hash_calibrate() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_with(dir.path(), &["hash", "calibrate", "--rounds", "3"], CHEAP);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("argon2id m=64 KiB t=1 p=1"), "{out}");
    assert!(out.contains("ms per hash (3 rounds)"), "{out}");
    assert!(out.contains("hashes/s with 2 hashing slots"), "{out}");
    let o = run_with(
        dir.path(),
        &["hash", "calibrate"],
        &[("COUNTERSIGN_ARGON2_ITERATIONS", "0")],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("argon2_iterations"), "{}", stderr(&o));
}

/// On Postgres: `migrate` reports the version, and `serve` (shared keys
/// from the environment) bootstraps, signs in, runs its cleanup and stops
/// cleanly.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_migrate_and_serve() {
    let schema = countersign_postgres::testing::new_schema().await;
    let url = countersign_postgres::testing::database_url();
    let key = "mR3m2b0rX4d1qvYlRzv6Hn8oA0jD2Kx9pQwE5tU7yZc";
    let env = [
        ("COUNTERSIGN_DATABASE_URL", url.as_str()),
        ("COUNTERSIGN_DATABASE_SCHEMA", schema.as_str()),
        ("COUNTERSIGN_SEALING_KEY", key),
        ("COUNTERSIGN_CODE_KEY", key),
    ];
    let dir = tempfile::tempdir().unwrap();
    let o = run_with(dir.path(), &["migrate"], &env);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = countersign_postgres::SCHEMA_VERSION;
    assert_eq!(
        stdout(&o).trim(),
        format!("postgres schema version {v} (was 0)")
    );

    let s = Server::start(dir.path(), &env);
    assert!(
        !dir.path().join("keys").exists(),
        "Postgres keys come from the configuration"
    );
    let (tenant, identifier, password) = credentials(dir.path());
    sign_in(&s, &tenant, &identifier, &password).await;
    let ready = s.http.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let (code, output) = s.terminate();
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("cleanup done"), "{output}");
    assert!(!output.contains(&password));
}
