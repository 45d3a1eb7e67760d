//! A `countersign serve` process on a loopback port for the HTTP jobs
//! (schema fuzzing, HTTP benchmarks): started on a fresh data directory,
//! its bootstrap administrator signed in, killed when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running server.
pub struct Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// The bootstrap tenant's slug.
    pub tenant: String,
    /// The bootstrap administrator's identifier and password.
    pub admin: (String, String),
    /// Where its stderr (the log) goes.
    pub log: PathBuf,
}

impl Server {
    /// Start `binary serve` on a fresh directory under `work`.
    pub fn start(binary: &Path, work: &Path) -> std::result::Result<Self, String> {
        Self::start_with(binary, work, &[])
    }

    /// Start `binary serve` with extra environment variables.
    pub fn start_with(
        binary: &Path,
        work: &Path,
        env: &[(&str, &str)],
    ) -> std::result::Result<Self, String> {
        let data_dir = work.join(format!("data-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        std::fs::create_dir_all(work).map_err(|e| format!("creating {}: {e}", work.display()))?;
        let log = work.join("server.log");
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let mut child = Command::new(binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .env("COUNTERSIGN_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.strip_prefix("countersign listening on http://") {
                        break rest.trim().to_owned();
                    }
                }
                _ => {
                    let _ = child.kill();
                    return Err(format!(
                        "the server exited before listening; see {}",
                        log.display()
                    ));
                }
            }
        };
        // Keep draining stdout so the server never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        let creds = std::fs::read_to_string(data_dir.join("bootstrap-credentials.txt"))
            .map_err(|e| format!("reading the bootstrap credentials: {e}"))?;
        let field = |k: &str| {
            creds
                .lines()
                .filter_map(|l| l.split_once('='))
                .find(|(key, _)| key.trim() == k)
                .map(|(_, v)| v.trim().trim_matches('"').to_owned())
                .ok_or_else(|| format!("no `{k}` in the bootstrap credentials"))
        };
        Ok(Server {
            child,
            addr,
            tenant: field("tenant")?,
            admin: (field("identifier")?, field("password")?),
            data_dir,
            log,
        })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The administrator's session token (a password login).
    pub fn admin_token(&self) -> std::result::Result<String, String> {
        let body = serde_json::json!({"identifier": self.admin.0, "password": self.admin.1});
        let (status, answer) = post(
            &self.addr,
            &format!("/v1/tenants/{}/login/password", self.tenant),
            &body.to_string(),
        )?;
        let json: serde_json::Value =
            serde_json::from_str(&answer).map_err(|e| format!("login answer: {e}: {answer}"))?;
        json["session"]["session_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("login failed ({status}): {answer}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// POST a JSON body over a fresh connection; the status and the body.
pub fn post(addr: &str, path: &str, body: &str) -> std::result::Result<(u16, String), String> {
    request(addr, "POST", path, None, body)
}

/// GET with a bearer token over a fresh connection; the status and the
/// body.
pub fn get(addr: &str, path: &str, token: &str) -> std::result::Result<(u16, String), String> {
    request(addr, "GET", path, Some(token), "")
}

fn request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> std::result::Result<(u16, String), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connecting {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut raw = String::new();
    stream
        .read_to_string(&mut raw)
        .map_err(|e| format!("reading the answer: {e}"))?;
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
