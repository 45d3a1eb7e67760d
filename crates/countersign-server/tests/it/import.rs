//! `countersign users import`: refused rows reported, resumption without
//! duplicates, imported hashes that sign in.

use std::path::Path;

use countersign_core::{ClientInfo, Env, PasswordHasher};
use countersign_server::config::{Layer, Layers};
use countersign_server::{services, store, with_store};

use crate::harness::{run, stderr, stdout};

/// PHP's documented bcrypt example: the password is `rasmuslerdorf`.
const BCRYPT: &str = "$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a";

/// A data directory with a tenant `acme`.
fn with_tenant(data: &Path) {
    let o = run(
        data,
        &["tenant", "create", "--slug", "acme", "--name", "Acme"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// An argon2id PHC hash of `password` (cheap parameters).
async fn argon2(password: &str) -> String {
    let hasher = PasswordHasher::new(countersign_core::Argon2Params::INSECURE_TEST, 1).unwrap();
    hasher.hash(password, &Env::system()).await.unwrap()
}

/// The number of users in the SQLite database of `data`.
async fn user_count(data: &Path) -> i64 {
    let store = countersign_sqlite::SqliteStore::open(data.join("countersign.db"))
        .await
        .unwrap();
    store
        .with_connection(|c| c.query_row("SELECT COUNT(*) FROM cs_users", [], |r| r.get(0)))
        .await
        .unwrap()
}

/// Whether `password` signs `identifier` in at tenant `acme`, through the
/// library's `verify_password`.
async fn signs_in(data: &Path, identifier: &str, password: &str) -> bool {
    let cli = Layer {
        data_dir: Some(data.to_string_lossy().into_owned()),
        ..Layer::default()
    };
    let settings = Layers::load(None, &Default::default(), cli)
        .unwrap()
        .settings()
        .unwrap();
    let backend = store::open(&settings, true).await.unwrap();
    with_store!(backend, s => {
        let svc = services::start(s, &settings).unwrap();
        let tenant = svc.authn.tenant_by_slug("acme").await.unwrap();
        svc.authn
            .verify_password(tenant.id, identifier, password, &ClientInfo::default())
            .await
            .is_ok()
    })
}

/// A CSV file with refused rows: the summary counts them, the rejected
/// file lists each with its line and reason (never the hash), and the good
/// rows' bcrypt and argon2 hashes sign in over the library.
#[tokio::test(flavor = "multi_thread")]
async fn refused_rows_are_reported_and_imported_hashes_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    with_tenant(data);
    let argon = argon2("correct horse battery staple").await;
    let file = data.join("users.csv");
    let csv = format!(
        "identifier,email,display_name,password_hash\n\
         rasmus,rasmus@example.com,Rasmus,{BCRYPT}\n\
         ada,,Ada,\"{argon}\"\n\
         broken,,,$2y$10$tooshort\n\
         ,,,\n\
         rasmus,,,\n\
         nohash,nohash@example.com,,\n"
    );
    std::fs::write(&file, csv).unwrap();
    let o = run(
        data,
        &[
            "users",
            "import",
            "--tenant",
            "acme",
            "--file",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let rejected = std::fs::read_to_string(data.join("users.csv.rejected.jsonl")).unwrap();
    assert!(
        out.starts_with("imported 3, skipped 1 existing, refused 2"),
        "{out}{rejected}"
    );
    let entries: Vec<serde_json::Value> = rejected
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 2, "{rejected}");
    assert_eq!(entries[0]["line"], 4);
    assert_eq!(entries[0]["identifier"], "broken");
    assert!(
        entries[0]["reason"]
            .as_str()
            .unwrap()
            .contains("password hash"),
        "{rejected}"
    );
    assert_eq!(entries[1]["line"], 5);
    assert!(!rejected.contains("tooshort"), "no hash in the report");
    assert_eq!(user_count(data).await, 3);

    assert!(signs_in(data, "rasmus", "rasmuslerdorf").await, "bcrypt");
    assert!(
        signs_in(data, "ada", "correct horse battery staple").await,
        "argon2"
    );
    assert!(!signs_in(data, "ada", "wrong horse").await);
    assert!(!signs_in(data, "nohash", "").await);
}

/// An import stopped part-way (`--limit`) resumes after its last saved
/// row; rows done after the last checkpoint (a crash) are found existing,
/// never duplicated.
#[tokio::test(flavor = "multi_thread")]
async fn interrupted_imports_resume_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    with_tenant(data);
    let file = data.join("users.jsonl");
    let rows: String = (1..=6)
        .map(|i| {
            let row =
                serde_json::json!({ "identifier": format!("user{i}"), "password_hash": BCRYPT });
            format!("{row}\n")
        })
        .collect();
    std::fs::write(&file, rows).unwrap();
    let import = |extra: &[&str]| {
        let mut args = vec![
            "users",
            "import",
            "--tenant",
            "acme",
            "--file",
            file.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run(data, &args)
    };

    let o = import(&["--limit", "3"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("imported 3, skipped 0 existing, refused 0"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("--resume"), "{}", stdout(&o));
    let progress = std::fs::read_to_string(data.join("users.jsonl.progress")).unwrap();
    assert!(progress.contains("\"rows_done\":3"), "{progress}");

    // As if a run had imported rows 4 and 5 and crashed before saving.
    let o = import(&["--resume", "--limit", "2"]);
    assert!(
        stdout(&o).starts_with("imported 2, skipped 0 existing"),
        "{}",
        stdout(&o)
    );
    std::fs::write(data.join("users.jsonl.progress"), "{\"rows_done\":3}").unwrap();

    let o = import(&["--resume"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("imported 1, skipped 2 existing, refused 0 (resumed after row 3)"),
        "{}",
        stdout(&o)
    );
    assert_eq!(user_count(data).await, 6);

    let o = import(&["--resume"]);
    assert!(
        stdout(&o).starts_with("imported 0, skipped 0 existing"),
        "{}",
        stdout(&o)
    );
    assert_eq!(user_count(data).await, 6);
}

/// A file whose format cannot be told, or with an unknown column, is
/// refused before anything is imported.
#[test]
fn malformed_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    with_tenant(data);
    let odd = data.join("users.txt");
    std::fs::write(&odd, "identifier\nx\n").unwrap();
    let o = run(
        data,
        &[
            "users",
            "import",
            "--tenant",
            "acme",
            "--file",
            odd.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--format"), "{}", stderr(&o));
    let csv = data.join("users.csv");
    std::fs::write(&csv, "identifier,password\nx,y\n").unwrap();
    let o = run(
        data,
        &[
            "users",
            "import",
            "--tenant",
            "acme",
            "--file",
            csv.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("unknown column `password`"),
        "{}",
        stderr(&o)
    );
}
