//! The configuration's layering and checks.

use super::*;

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn settings(file: Option<&str>, env: &[(&str, &str)], cli: Layer) -> Result<Settings, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    if let Some(text) = file {
        std::fs::write(&path, text).unwrap();
    }
    let layers = Layers::load(file.map(|_| path.as_path()), &vars(env), cli)?;
    layers.settings()
}

/// Defaults alone make a working SQLite configuration.
#[test]
fn defaults_resolve() {
    let s = settings(None, &[], Layer::default()).unwrap();
    assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(s.issuer, DEFAULT_ISSUER);
    assert!(matches!(s.database, Database::Sqlite(ref p) if p.ends_with("countersign.db")));
    assert_eq!(s.cleanup_interval, Duration::from_secs(300));
    assert!(s.insecure_loopback() && !s.https());
    assert!(s.cors_origins.is_empty());
    assert!(matches!(s.mail, Mail::Files));
}

/// Flags beat the environment, which beats the file, which beats the
/// defaults; the error names where the bad value came from.
#[test]
fn layers_override_in_order() {
    let file =
        "listen = \"127.0.0.1:1\"\nissuer = \"https://file.example\"\ncleanup_interval = 7\n";
    let env = [("COUNTERSIGN_LISTEN", "127.0.0.1:2")];
    let cli = Layer {
        listen: Some("127.0.0.1:3".into()),
        ..Layer::default()
    };
    let s = settings(Some(file), &env, cli).unwrap();
    assert_eq!(s.listen.port(), 3);
    assert_eq!(s.issuer, "https://file.example");
    assert_eq!(s.cleanup_interval, Duration::from_secs(7));
    let s = settings(Some(file), &env, Layer::default()).unwrap();
    assert_eq!(s.listen.port(), 2);
    let e = settings(
        Some(file),
        &[("COUNTERSIGN_LISTEN", "nope")],
        Layer::default(),
    )
    .unwrap_err();
    assert_eq!(
        (e.setting.as_str(), e.origin.as_str()),
        ("listen", "COUNTERSIGN_LISTEN")
    );
    let e = settings(Some("listen = \"x\"\n"), &[], Layer::default()).unwrap_err();
    assert!(e.origin.starts_with("config file"), "{e}");
}

/// Unknown keys (file) and variables (environment) are refused by name.
#[test]
fn unknown_settings_are_refused() {
    let e = settings(Some("listne = \"127.0.0.1:1\"\n"), &[], Layer::default()).unwrap_err();
    assert_eq!(e.setting, "listne", "{e}");
    let e = settings(None, &[("COUNTERSIGN_LISTNE", "x")], Layer::default()).unwrap_err();
    assert_eq!(e.setting, "listne", "{e}");
    let e = settings(
        None,
        &[("COUNTERSIGN_BODY_LIMIT", "many")],
        Layer::default(),
    )
    .unwrap_err();
    assert_eq!(e.setting, "body_limit");
}

/// Postgres needs shared keys; with them it resolves, and the URL's
/// password never shows in `Debug`.
#[test]
fn postgres_requires_shared_keys() {
    let url = [("COUNTERSIGN_DATABASE_URL", "postgres://u:hunter2@db/x")];
    let e = settings(None, &url, Layer::default()).unwrap_err();
    assert_eq!(e.setting, "sealing_key");
    let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let with_seal = [url[0], ("COUNTERSIGN_SEALING_KEY", key)];
    assert_eq!(
        settings(None, &with_seal, Layer::default())
            .unwrap_err()
            .setting,
        "code_key"
    );
    let all = [
        url[0],
        ("COUNTERSIGN_SEALING_KEY", key),
        ("COUNTERSIGN_CODE_KEY", key),
    ];
    let s = settings(None, &all, Layer::default()).unwrap();
    assert!(!format!("{s:?}").contains("hunter2"));
    let e = settings(
        None,
        &[("COUNTERSIGN_DATABASE_URL", "mysql://x")],
        Layer::default(),
    )
    .unwrap_err();
    assert_eq!(e.setting, "database_url");
}

/// CORS origins must be exact; SMTP URLs are parsed with their mode,
/// and errors never quote the password.
#[test]
fn origins_and_smtp_urls() {
    let ok = [(
        "COUNTERSIGN_CORS_ORIGINS",
        "https://a.example, http://localhost:3000",
    )];
    assert_eq!(
        settings(None, &ok, Layer::default())
            .unwrap()
            .cors_origins
            .len(),
        2
    );
    for bad in ["*", "https://a.example/path", "a.example"] {
        let e = settings(None, &[("COUNTERSIGN_CORS_ORIGINS", bad)], Layer::default()).unwrap_err();
        assert_eq!(e.setting, "cors_origins", "{bad}");
    }
    let c = smtp_config("smtps://me%40x:p%3Ass@mail.example", "a <a@b.example>").unwrap();
    assert_eq!((c.port, c.security), (465, SmtpSecurity::Tls));
    assert_eq!(c.credentials.unwrap().username(), "me@x");
    let e = settings(
        None,
        &[("COUNTERSIGN_SMTP_URL", "smtp+plain://u:s3cret@relay")],
        Layer::default(),
    )
    .unwrap_err();
    assert_eq!(e.setting, "smtp_url");
    assert!(!e.to_string().contains("s3cret"), "{e}");
}
