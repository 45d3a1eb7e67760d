//! Running the real `countersign` binary: a server on a free port with
//! its output captured, and one-shot commands.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The binary under test.
pub(crate) fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_countersign"));
    // Nothing from the developer's environment leaks into a test.
    for (k, _) in std::env::vars() {
        if k.starts_with("COUNTERSIGN_") || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c.env("COUNTERSIGN_HASH_SLOTS", "2");
    c
}

/// Run a command to completion with the data directory `data`.
pub(crate) fn run(data: &Path, args: &[&str]) -> Output {
    run_with(data, args, &[])
}

/// [`run`] with extra environment variables.
pub(crate) fn run_with(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = bin();
    c.args(args).arg("--data-dir").arg(data);
    for (k, v) in env {
        c.env(k, v);
    }
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let pid = child.id().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    // A command that should end but serves instead fails the test rather
    // than hanging it.
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(output) => output.expect("the binary runs"),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("`countersign {}` did not finish in 120 s", args.join(" "));
        }
    }
}

/// The text of a command's stdout.
pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The text of a command's stderr.
pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A running `countersign serve`.
pub(crate) struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    /// Everything it printed so far, stdout and stderr interleaved.
    output: Arc<Mutex<String>>,
    /// An HTTP client.
    pub(crate) http: reqwest::Client,
}

impl Server {
    /// Start `serve` on a free loopback port with data in `data`, and wait
    /// for its listening line.
    pub(crate) fn start(data: &Path, env: &[(&str, &str)]) -> Server {
        let mut c = bin();
        c.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c.spawn().expect("the binary starts");
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let sink = Arc::clone(&output);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("countersign listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
                sink.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let mut err = child.stderr.take().unwrap();
        let sink = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "the server did not announce its address; output:\n{}",
                    output.lock().unwrap()
                );
            }
        };
        Server {
            child,
            base,
            output,
            http: reqwest::Client::new(),
        }
    }

    /// `base + path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Everything printed so far.
    pub(crate) fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Send SIGTERM.
    pub(crate) fn sigterm(&self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success());
    }

    /// Send SIGTERM and wait for the exit; its code and the whole output.
    pub(crate) fn terminate(self) -> (Option<i32>, String) {
        self.sigterm();
        self.wait()
    }

    /// Wait for the exit; its code and the whole output.
    pub(crate) fn wait(mut self) -> (Option<i32>, String) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader threads drain the pipes.
                std::thread::sleep(Duration::from_millis(200));
                return (status.code(), self.output());
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the server did not stop after SIGTERM:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bootstrap credentials: (tenant, identifier, password).
pub(crate) fn credentials(data: &Path) -> (String, String, String) {
    let text = std::fs::read_to_string(data.join("bootstrap-credentials.txt")).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let get = |k: &str| doc[k].as_str().unwrap().to_owned();
    (get("tenant"), get("identifier"), get("password"))
}

/// Sign in with a password alone over HTTP; the session token and the
/// `Set-Cookie` values.
pub(crate) async fn sign_in_cookies(
    s: &Server,
    tenant: &str,
    identifier: &str,
    password: &str,
) -> (String, Vec<String>) {
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
    let flow = begun["flow"].as_str().expect("a flow token").to_owned();
    let res = s
        .http
        .post(s.url(&format!("/v1/tenants/{tenant}/login/submit")))
        .json(&serde_json::json!({ "flow": flow, "factor": "password", "response": password }))
        .send()
        .await
        .unwrap();
    let cookies = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let done: serde_json::Value = res.json().await.unwrap();
    assert_eq!(done["status"], "authenticated", "{done}");
    let token = done["session"]["session_token"]
        .as_str()
        .expect("a session token")
        .to_owned();
    (token, cookies)
}

/// Sign in with a password alone over HTTP; the session token.
pub(crate) async fn sign_in(s: &Server, tenant: &str, identifier: &str, password: &str) -> String {
    sign_in_cookies(s, tenant, identifier, password).await.0
}

/// The mode bits of a file.
pub(crate) fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}
