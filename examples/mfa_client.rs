//! A client walking the MFA sign-in against a running countersign server,
//! over HTTP only: the password step in one call, then a TOTP code
//! computed from the account's base32 secret (as an authenticator app
//! would), then the session it gets.
//!
//! ```sh
//! countersign serve &            # or: cargo run -p countersign-server -- serve
//! COUNTERSIGN_URL=http://127.0.0.1:8080 COUNTERSIGN_TENANT=main \
//! COUNTERSIGN_IDENTIFIER=admin COUNTERSIGN_PASSWORD='…' COUNTERSIGN_TOTP_SECRET='…' \
//!   cargo run -p countersign --features axum --example mfa_client
//! ```
//!
//! Without `COUNTERSIGN_TOTP_SECRET` it signs in with the password and, if
//! the account has no TOTP yet, enrols it and prints the secret to keep.

#![allow(clippy::print_stdout, reason = "an example prints what it does")]

use countersign::factor::{TotpCredential, totp_code};
use countersign::{Env, TotpAlgorithm};
use serde_json::{Value, json};

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn var(name: &str, default: Option<&str>) -> Result<String, Failure> {
    match (std::env::var(name), default) {
        (Ok(v), _) => Ok(v),
        (Err(_), Some(d)) => Ok(d.to_owned()),
        (Err(_), None) => Err(format!("set {name}").into()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let base = var("COUNTERSIGN_URL", Some("http://127.0.0.1:8080"))?;
    let tenant = var("COUNTERSIGN_TENANT", Some("main"))?;
    let identifier = var("COUNTERSIGN_IDENTIFIER", Some("admin"))?;
    let password = var("COUNTERSIGN_PASSWORD", None)?;
    let secret = std::env::var("COUNTERSIGN_TOTP_SECRET").ok();
    let http = reqwest::Client::new();
    let t = format!("{base}/v1/tenants/{tenant}");

    // 1. The password, in one call: a session, or a flow awaiting more.
    let step: Value = http
        .post(format!("{t}/login/password"))
        .json(&json!({"identifier": identifier, "password": password}))
        .send()
        .await?
        .json()
        .await?;
    println!("1. password: {}", step["status"]);
    let session = match step["status"].as_str() {
        Some("authenticated") => step["session"].clone(),
        Some("awaiting_factor") => {
            // 2. The second factor: a TOTP code from the secret.
            let secret = secret.ok_or("the account needs TOTP: set COUNTERSIGN_TOTP_SECRET")?;
            let code = totp_now(&secret)?;
            let done: Value = http
                .post(format!("{t}/login/submit"))
                .json(&json!({"flow": step["flow"], "factor": "totp", "response": code}))
                .send()
                .await?
                .json()
                .await?;
            println!("2. totp: {}", done["status"]);
            if done["status"] != "authenticated" {
                return Err(format!("not signed in: {done}").into());
            }
            done["session"].clone()
        }
        _ => return Err(format!("refused: {step}").into()),
    };
    let token = session["session_token"]
        .as_str()
        .ok_or("no session token")?;
    let me: Value = http
        .get(format!("{base}/v1/session"))
        .bearer_auth(token)
        .send()
        .await?
        .json()
        .await?;
    println!("3. signed in with {}", me["factors"]);

    if me["factors"].as_array().is_some_and(|f| f.len() == 1) {
        // No second factor yet: enrol TOTP now and confirm it.
        let enrolled: Value = http
            .post(format!("{base}/v1/me/factors/totp"))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        let secret = enrolled["secret_base32"].as_str().ok_or("no secret")?;
        let confirmed = http
            .post(format!("{base}/v1/me/factors/totp/confirm"))
            .bearer_auth(token)
            .json(&json!({"code": totp_now(secret)?}))
            .send()
            .await?;
        println!(
            "4. TOTP enrolled ({}): keep COUNTERSIGN_TOTP_SECRET={secret}; \
             from now on the password alone is not enough (wait 30 s before the next sign-in)",
            confirmed.status()
        );
    }
    Ok(())
}

/// The current code of a base32 TOTP secret (SHA-1, 6 digits, 30 s).
fn totp_now(base32: &str) -> Result<String, Failure> {
    let secret = totp_rs::Secret::try_from_base32(base32.trim())
        .map_err(|_| "the TOTP secret is not base32")?
        .as_bytes()
        .to_vec();
    let now = Env::system().now();
    let app = TotpCredential {
        secret: secret.into(),
        digits: 6,
        step_secs: 30,
        algorithm: TotpAlgorithm::Sha1,
        last_step: None,
        confirmed: true,
        created_at: now,
    };
    let secs = u64::try_from(now.timestamp())?;
    Ok(totp_code(&app, secs)?)
}
