//! `countersign serve` end to end: the real binary on a free port.

use crate::harness::{Server, credentials, mode, run, run_with, sign_in, sign_in_cookies, stderr};

/// First start bootstraps a tenant and an administrator whose one-time
/// credentials are in a private file and work over HTTP; the password
/// never reaches the output; operational routes, security headers and
/// request ids answer; SIGTERM stops the process with exit code 0; a
/// second start keeps the credentials and makes no second administrator.
#[tokio::test(flavor = "multi_thread")]
async fn first_start_bootstraps_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start(&data, &[]);

    let file = data.join("bootstrap-credentials.txt");
    assert_eq!(mode(&file), 0o600, "credentials are private");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains(&format!("url = \"{}\"", s.base)),
        "the file names the address listened on ({}): {text}",
        s.base
    );
    assert_eq!(mode(&data), 0o700, "the data directory is private");
    for key in ["sealing.key", "code.key"] {
        assert_eq!(mode(&data.join("keys").join(key)), 0o600);
    }
    let (tenant, identifier, password) = credentials(&data);
    assert_eq!((tenant.as_str(), identifier.as_str()), ("main", "admin"));
    assert_eq!(password.len(), 24);
    let (token, cookies) = sign_in_cookies(&s, &tenant, &identifier, &password).await;
    assert_eq!(cookies.len(), 2, "session and CSRF cookies");
    assert!(
        cookies.iter().all(|c| !c.contains("Secure")),
        "plain HTTP on loopback: no Secure: {cookies:?}"
    );

    // The administrator holds the admin role: it can list the users.
    let users: serde_json::Value = s
        .http
        .get(s.url("/v1/admin/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(users["users"].as_array().map(Vec::len), Some(1), "{users}");

    // Health, readiness, JWKS.
    let health = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = s.http.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let jwks: serde_json::Value = s
        .http
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!jwks["keys"].as_array().unwrap().is_empty(), "{jwks}");

    // Metrics: the API's counters and the per-route HTTP metrics.
    let metrics = s
        .http
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("countersign_logins_total"), "{metrics}");
    assert!(
        metrics.contains("countersign_sessions_issued_total"),
        "{metrics}"
    );
    // The gauges read at scrape time: the one signed-in session, and an
    // idle hashing queue.
    for line in [
        "countersign_active_sessions 1",
        "countersign_hashing_running 0",
        "countersign_hashing_queue_depth 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}: {metrics}");
    }
    let submit_route = "route=\"/v1/tenants/{tenant}/login/submit\"";
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("http_requests_total") && l.contains(submit_route)),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("http_request_duration_seconds_bucket")
                && l.contains(submit_route)),
        "{metrics}"
    );

    // Security headers and request ids, on the API and elsewhere.
    let res = s
        .http
        .get(s.url("/v1/tenants/main/nothing-here"))
        .send()
        .await
        .unwrap();
    let h = res.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
    assert!(
        h.get("strict-transport-security").is_none(),
        "plain HTTP: no HSTS"
    );
    let generated = h["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(
        uuid::Uuid::parse_str(&generated).unwrap().get_version_num(),
        7
    );
    let res = s
        .http
        .get(s.url("/healthz"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-me-42");
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    assert!(
        res.headers().get("cache-control").is_none(),
        "no-store is for /v1"
    );

    let (code, output) = s.terminate();
    assert_eq!(code, Some(0), "{output}");
    assert!(
        !output.contains(&password),
        "the password leaked:\n{output}"
    );
    assert!(output.contains("bootstrap-credentials.txt"), "{output}");
    assert!(
        output.contains("/v1/tenants/{tenant}/login/submit"),
        "access log names the route:\n{output}"
    );

    // Second start: nothing is bootstrapped again.
    let before = std::fs::read(&file).unwrap();
    let s = Server::start(&data, &[]);
    assert_eq!(std::fs::read(&file).unwrap(), before);
    let token = sign_in(&s, &tenant, &identifier, &password).await;
    let users: serde_json::Value = s
        .http
        .get(s.url("/v1/admin/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(users["users"].as_array().map(Vec::len), Some(1), "{users}");
    let (code, output) = s.terminate();
    assert_eq!(code, Some(0));
    assert!(!output.contains("bootstrapped"), "{output}");
}

/// CORS answers preflights for the configured origins only; an https
/// issuer adds HSTS and keeps cookies `Secure` (which plain HTTP on
/// loopback drops).
#[tokio::test(flavor = "multi_thread")]
async fn cors_and_hsts_follow_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &[
            ("COUNTERSIGN_CORS_ORIGINS", "https://app.example"),
            ("COUNTERSIGN_ISSUER", "https://id.example"),
        ],
    );
    let preflight = |origin: &'static str| {
        s.http
            .request(reqwest::Method::OPTIONS, s.url("/v1/tenants/main/login"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let ok = preflight("https://app.example").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(ok.headers()["access-control-allow-credentials"], "true");
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let (tenant, identifier, password) = credentials(dir.path());
    let (_, cookies) = sign_in_cookies(&s, &tenant, &identifier, &password).await;
    assert!(
        !cookies.is_empty() && cookies.iter().all(|c| c.contains("Secure")),
        "{cookies:?}"
    );
    let res = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert!(
        res.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
    let (code, _) = s.terminate();
    assert_eq!(code, Some(0));
}

/// A bad configuration stops the process before anything starts, with
/// exit code 2 and one line naming the setting.
#[test]
fn invalid_configuration_exits_with_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nbogus_setting = 1\n").unwrap();
    let o = run(dir.path(), &["serve", "--config", config.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("bogus_setting"), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));

    let o = run(dir.path(), &["serve", "--listen", "localhost-ish"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("`listen`") && stderr(&o).contains("--listen"),
        "{}",
        stderr(&o)
    );

    let o = run_with(dir.path(), &["serve"], &[("COUNTERSIGN_LISTEN", "nope")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("COUNTERSIGN_LISTEN"), "{}", stderr(&o));

    let o = run_with(
        dir.path(),
        &["serve"],
        &[("COUNTERSIGN_DATABASE_URL", "postgres://u@127.0.0.1/x")],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("sealing_key"), "{}", stderr(&o));
    assert!(
        !dir.path().join("countersign.db").exists(),
        "nothing started"
    );
}

/// The cleanup job runs on one node per interval: of two stores on one
/// database (two nodes), only the first caller in a window cleans up.
#[tokio::test(flavor = "multi_thread")]
async fn cleanup_runs_on_one_node_per_interval() {
    use countersign_server::config::{Layer, Layers};
    use countersign_server::{serve, services};
    let dir = tempfile::tempdir().unwrap();
    let cli = Layer {
        data_dir: Some(dir.path().to_string_lossy().into_owned()),
        ..Layer::default()
    };
    let settings = Layers::load(None, &Default::default(), cli)
        .unwrap()
        .settings()
        .unwrap();
    countersign_server::store::data_dir(&settings).unwrap();
    let db = dir.path().join("countersign.db");
    let node_a = countersign_sqlite::SqliteStore::open(&db).await.unwrap();
    let node_b = countersign_sqlite::SqliteStore::open(&db).await.unwrap();
    let a = services::start(node_a.clone(), &settings).unwrap();
    let b = services::start(node_b.clone(), &settings).unwrap();
    let minute = std::time::Duration::from_secs(60);
    let first = serve::cleanup_once(&node_a, &a.sessions, minute)
        .await
        .unwrap();
    assert!(first.is_some(), "the first node in a window cleans up");
    let second = serve::cleanup_once(&node_b, &b.sessions, minute)
        .await
        .unwrap();
    assert!(second.is_none(), "the other node skips that window");
    let again = serve::cleanup_once(&node_a, &a.sessions, minute)
        .await
        .unwrap();
    assert!(again.is_none(), "once per window, even on the same node");
}

/// Without SMTP, mail becomes private files and the log names only the
/// file; JSON logs are one object per line and never carry a query string.
#[tokio::test(flavor = "multi_thread")]
async fn mail_files_and_json_logs() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[("COUNTERSIGN_LOG_FORMAT", "json")]);
    let res = s
        .http
        .post(s.url("/v1/tenants/main/register"))
        .json(&serde_json::json!({
            "email": "new@example.com",
            "password": "a long and unusual pass phrase 42"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    let health = s
        .http
        .get(s.url("/healthz?token=query-secret-123"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let (code, output) = s.terminate();
    assert_eq!(code, Some(0));

    let mails: Vec<_> = std::fs::read_dir(dir.path().join("mail"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mode(&mails[0]), 0o600);
    assert_eq!(mode(&dir.path().join("mail")), 0o700);
    let mail = std::fs::read_to_string(&mails[0]).unwrap();
    assert!(mail.starts_with("To: new@example.com\n"), "{mail}");
    let code_in_mail: String = mail
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() >= 6)
        .expect("the mail carries a code")
        .to_owned();
    assert!(
        !output.contains(&code_in_mail),
        "the code leaked:\n{output}"
    );
    assert!(output.contains("mail written to"), "{output}");
    assert!(!output.contains("new@example.com"), "{output}");
    assert!(!output.contains("query-secret-123"), "{output}");
    for line in output
        .lines()
        .filter(|l| !l.starts_with("countersign listening"))
    {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(v.get("level").is_some(), "{line}");
    }
}

/// SIGTERM lets a request in flight finish before the process exits 0.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_in_flight_requests_finish() {
    let dir = tempfile::tempdir().unwrap();
    // Slow hashing (about a second), so the sign-in is still running when
    // the signal arrives.
    let slow = [
        ("COUNTERSIGN_ARGON2_MEMORY_KIB", "262144"),
        ("COUNTERSIGN_ARGON2_ITERATIONS", "3"),
    ];
    let s = Server::start(dir.path(), &slow);
    let (tenant, identifier, password) = credentials(dir.path());
    let begun: serde_json::Value = s
        .http
        .post(s.url(&format!("/v1/tenants/{tenant}/login")))
        .json(&serde_json::json!({ "identifier": identifier }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let submit = s
        .http
        .post(s.url(&format!("/v1/tenants/{tenant}/login/submit")))
        .json(&serde_json::json!({
            "flow": begun["flow"], "factor": "password", "response": password
        }))
        .send();
    let in_flight = tokio::spawn(submit);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    s.sigterm();
    let res = in_flight.await.unwrap().expect("the request is answered");
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "authenticated", "{body}");
    let (code, output) = s.wait();
    assert_eq!(code, Some(0), "{output}");
    let signal = output
        .find("SIGTERM received")
        .expect("the signal is logged");
    let answered = output.rfind("/login/submit").expect("the submit is logged");
    assert!(
        signal < answered,
        "the answer came after the signal:\n{output}"
    );
}
