//! A tiny OpenID issuer on 127.0.0.1 (a random port): a hand-rolled
//! HTTP/1.1 server over tokio that answers each path with a configured
//! route, counts requests per path, and stops when dropped (and with the
//! test's runtime). Every connection is closed after one answer and lives
//! at most 10 s.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How the issuer answers a path.
#[derive(Debug, Clone)]
pub enum Route {
    /// `200` with this JSON body and its `Content-Length`.
    Json(Vec<u8>),
    /// This status, with a `Location` header if given, and no body.
    Status(u16, Option<String>),
    /// `200` and a body without a length that goes on (up to 64 MiB)
    /// until the client hangs up.
    Endless,
    /// `200` declaring this `Content-Length`, then a short body.
    Declared(u64),
    /// Read the request and never answer.
    Silent,
}

/// The most bytes an [`Route::Endless`] body sends.
pub const ENDLESS_CAP: usize = 64 * 1024 * 1024;

#[derive(Default)]
struct Shared {
    routes: Mutex<HashMap<String, Route>>,
    hits: Mutex<HashMap<String, usize>>,
    endless_sent: AtomicUsize,
    endless_done: AtomicBool,
}

/// The running issuer.
pub struct Issuer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Issuer {
    /// Start an issuer with no routes (every path answers 404).
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn({
            let shared = shared.clone();
            async move {
                while let Ok((socket, _)) = listener.accept().await {
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let _ =
                            tokio::time::timeout(Duration::from_secs(10), serve(socket, shared))
                                .await;
                    });
                }
            }
        });
        Self { base, shared, task }
    }

    /// Answer `path` with `route` from now on.
    pub fn route(&self, path: &str, route: Route) {
        self.shared
            .routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path.to_owned(), route);
    }

    /// How many requests `path` has had.
    pub fn hits(&self, path: &str) -> usize {
        self.shared
            .hits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// The bytes an endless body sent before the client hung up, once the
    /// server noticed (waiting up to 5 s).
    pub async fn endless_sent(&self) -> usize {
        for _ in 0..500 {
            if self.shared.endless_done.load(Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            self.shared.endless_done.load(Ordering::SeqCst),
            "the endless body never stopped"
        );
        self.shared.endless_sent.load(Ordering::SeqCst)
    }
}

/// Answer one request on `socket`.
async fn serve(mut socket: TcpStream, shared: Arc<Shared>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 8192 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
    *shared
        .hits
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(path.clone())
        .or_default() += 1;
    let route = shared
        .routes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&path)
        .cloned()
        .unwrap_or(Route::Status(404, None));
    match route {
        Route::Json(body) => {
            let header = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(header.as_bytes()).await;
            let _ = socket.write_all(&body).await;
        }
        Route::Status(code, location) => {
            let location = location
                .map(|l| format!("Location: {l}\r\n"))
                .unwrap_or_default();
            let header = format!(
                "HTTP/1.1 {code} Status\r\n{location}Content-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = socket.write_all(header.as_bytes()).await;
        }
        Route::Declared(length) => {
            let header = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n{{}}"
            );
            let _ = socket.write_all(header.as_bytes()).await;
        }
        Route::Endless => {
            let header =
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
            let _ = socket.write_all(header.as_bytes()).await;
            let chunk = vec![b' '; 16 * 1024];
            let mut sent = 0;
            while sent < ENDLESS_CAP {
                if socket.write_all(&chunk).await.is_err() {
                    break;
                }
                sent += chunk.len();
                shared.endless_sent.store(sent, Ordering::SeqCst);
            }
            shared.endless_done.store(true, Ordering::SeqCst);
        }
        Route::Silent => {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    }
    let _ = socket.shutdown().await;
}
