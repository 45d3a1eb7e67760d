//! A live server on a random loopback port over a fresh store, the
//! testkit's `acme` tenant (every factor; methods `mfa` and `passkey`), a
//! manual clock and a capturing outbox, and a small JSON client.

use std::net::SocketAddr;

use countersign_axum::{Api, ApiConfig, ApiStore};
use countersign_core::{AuthzService, User};
use countersign_memory::MemoryStore;
use countersign_testkit::fixtures::{World, sign_in};
use reqwest::StatusCode;
use serde_json::Value;

/// A running server and the world behind it.
pub struct Server<S: ApiStore> {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The client (no cookie store: tests pass credentials explicitly).
    pub http: reqwest::Client,
    /// The services, clock, outbox and tenant the server uses.
    pub world: World<S>,
    /// The API served.
    pub api: Api<S>,
}

/// A JSON answer: status, `content-type` and body (`Null` when empty).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The body's string member `key` (panics when absent).
    pub fn str(&self, key: &str) -> String {
        self.body[key]
            .as_str()
            .unwrap_or_else(|| panic!("no string `{key}` in {}", self.body))
            .to_owned()
    }

    /// Asserts a problem+json answer with this status and code.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "status of {self:?}");
        assert_eq!(self.content_type, "application/problem+json", "{self:?}");
        assert_eq!(self.body["code"], code, "code of {self:?}");
        assert_eq!(self.body["status"], status, "{self:?}");
    }
}

impl<S: ApiStore> Server<S> {
    /// Serve `store` with the default API settings but plain-HTTP cookies.
    pub async fn start(store: S) -> Self {
        let mut config = ApiConfig::default();
        if let Some(c) = config.cookies.as_mut() {
            c.secure = false;
        }
        Self::start_with(store, config).await
    }

    /// Serve `store` with `config`.
    pub async fn start_with(store: S, config: ApiConfig) -> Self {
        capture_logs();
        let world = World::mfa(store.clone(), 7).await;
        let authz = AuthzService::new(store, world.svc.env().clone());
        let api = Api::with_config(world.svc.clone(), world.sessions.clone(), authz, config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = api
            .router()
            .into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            world,
            api,
        }
    }

    /// The tenant's path prefix, `/v1/tenants/acme`.
    pub fn t(&self, path: &str) -> String {
        format!("/v1/tenants/{}{path}", self.world.tenant.slug.as_str())
    }

    /// Send `method path` with an optional JSON body and bearer token.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> Answer {
        let mut rq = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            rq = rq.json(&b);
        }
        if let Some(t) = token {
            rq = rq.bearer_auth(t);
        }
        answer(rq.send().await.unwrap()).await
    }

    /// POST JSON.
    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> Answer {
        self.send(reqwest::Method::POST, path, Some(body), token)
            .await
    }

    /// GET.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.send(reqwest::Method::GET, path, None, token).await
    }

    /// DELETE.
    pub async fn delete(&self, path: &str, token: Option<&str>) -> Answer {
        self.send(reqwest::Method::DELETE, path, None, token).await
    }

    /// An active user `identifier` with the testkit's password.
    pub async fn user(&self, identifier: &str) -> User {
        self.world.user(identifier).await
    }

    /// A session token for `user`, signed in through the library (password
    /// then a recovery code).
    pub async fn session_for(&self, user: &User) -> String {
        let auth = sign_in(&self.world, user).await;
        let issued = self
            .world
            .sessions
            .issue(&auth, &self.world.client)
            .await
            .unwrap();
        issued.session_token.expose().to_owned()
    }

    /// A user holding the tenant's administrator role, and a session.
    pub async fn admin(&self, identifier: &str) -> (User, String) {
        let user = self.user(identifier).await;
        self.api
            .authz()
            .grant_tenant_admin(self.world.tenant.id, user.id, &self.world.client)
            .await
            .unwrap();
        let token = self.session_for(&user).await;
        (user, token)
    }
}

/// Read a response into an [`Answer`].
pub async fn answer(r: reqwest::Response) -> Answer {
    let status = r.status();
    let headers = r.headers().clone();
    let content_type = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Answer {
        status,
        content_type,
        headers,
        body,
    }
}

/// A server over a fresh memory store.
pub async fn memory() -> Server<MemoryStore> {
    Server::start(MemoryStore::new()).await
}

/// A server over a fresh SQLite file in the temp directory.
pub async fn sqlite() -> Server<countersign_sqlite::SqliteStore> {
    let path = std::env::temp_dir().join(format!("countersign-axum-{}.db", uuid_like()));
    // A file left by an earlier process of the same id goes first.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let store = countersign_sqlite::SqliteStore::open(&path).await.unwrap();
    Server::start(store).await
}

/// A server over a fresh schema of the local PostgreSQL.
pub async fn postgres() -> Server<countersign_postgres::PostgresStore> {
    Server::start(countersign_postgres::testing::fresh().await).await
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Run each listed `async fn name<S: ApiStore>(s: Server<S>)` on memory,
/// SQLite and PostgreSQL: `on_every_backend!(a, b)` makes
/// `memory::a`, `sqlite::a`, `postgres::a`, ...
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::harness::memory().await).await })*
        }
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::harness::sqlite().await).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::harness::postgres().await).await })*
        }
    };
}

/// Run each listed test on the memory store only (bad input and other
/// checks of the HTTP layer itself).
#[macro_export]
macro_rules! on_memory {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::harness::memory().await).await })*
        }
    };
}

/// Everything logged by the test process (every level, every crate), so a
/// test can check that no secret reached a log line.
static LOGS: std::sync::OnceLock<std::sync::Arc<std::sync::Mutex<Vec<u8>>>> =
    std::sync::OnceLock::new();

#[derive(Clone)]
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    LOGS.get_or_init(|| {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = Capture(buf.clone());
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        buf
    });
}

/// The captured log so far.
pub fn logs() -> String {
    LOGS.get()
        .map(|b| String::from_utf8_lossy(&b.lock().unwrap()).into_owned())
        .unwrap_or_default()
}
