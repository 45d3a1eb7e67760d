//! countersign's reference service: the `countersign` binary. It serves
//! the HTTP API of [`countersign_axum`] over SQLite or PostgreSQL, creates
//! the first tenant and administrator on first start, cleans up expired
//! data in the background, exposes health, readiness, Prometheus metrics
//! and the JWKS, and carries the administrative commands.
//!
//! This is the only countersign crate that reads configuration or the
//! environment; every other crate takes its settings as values.
//!
//! # Commands
//!
//! | command | what it does |
//! | --- | --- |
//! | `countersign serve [--listen ADDR] [--issuer URL]` | serve the API; prints `countersign listening on http://ADDR` (the bound address: `--listen 127.0.0.1:0` picks a port); stops gracefully on SIGINT/SIGTERM |
//! | `countersign migrate` | apply pending migrations, print the schema version |
//! | `countersign tenant create --slug S --name N` | create a tenant like the bootstrap one |
//! | `countersign admin create --tenant S --identifier I` | create an administrator; prints its one-time password once |
//! | `countersign keys rotate --tenant S` | start signing with a new key; prints its kid |
//! | `countersign policy validate --schema F --policies F` | validate a Cedar schema and policies (no store); exit 1 with Cedar's diagnostics |
//! | `countersign hash calibrate [--rounds N]` | time the configured argon2id on this machine |
//! | `countersign users import --tenant S --file F [--format csv\|jsonl] [--resume] [--limit N]` | import users with their existing password hashes |
//!
//! Every command takes `--config PATH`, `--data-dir DIR` and
//! `--database-url URL`. Exit codes: 0 success, 1 failure, 2 a
//! configuration or usage error (the message names the setting).
//!
//! # Configuration
//!
//! Each setting comes from, in increasing precedence: its default, the
//! TOML file (`--config PATH` or `COUNTERSIGN_CONFIG`; unknown keys are
//! refused), its environment variable, and its flag where it has one.
//! Everything is checked at start: a bad value stops the process with exit
//! code 2 and one line naming the setting and where its value came from.
//!
//! | setting (file key) | environment variable | flag | default | meaning |
//! | --- | --- | --- | --- | --- |
//! | `listen` | `COUNTERSIGN_LISTEN` | `--listen` | `127.0.0.1:8080` | address and port to listen on |
//! | `data_dir` | `COUNTERSIGN_DATA_DIR` | `--data-dir` | `./countersign-data` | SQLite database, generated keys, bootstrap credentials, mail files (created `0700`) |
//! | `database_url` | `COUNTERSIGN_DATABASE_URL` | `--database-url` | none: SQLite at `<data_dir>/countersign.db` | a `postgres://` or `postgresql://` URL |
//! | `database_max_connections` | `COUNTERSIGN_DATABASE_MAX_CONNECTIONS` | | `10` | Postgres pool size (1 to 1000) |
//! | `database_schema` | `COUNTERSIGN_DATABASE_SCHEMA` | | the server's `search_path` | the Postgres schema holding countersign's tables |
//! | `issuer` | `COUNTERSIGN_ISSUER` | `--issuer` | `http://127.0.0.1:8080` | public base URL, `iss` of access tokens; cookies drop `Secure` only for `http://` on loopback; HSTS is sent for `https://` |
//! | `cors_origins` | `COUNTERSIGN_CORS_ORIGINS` (comma-separated) | | none | exact origins allowed by CORS (with credentials) |
//! | `trust_forwarded_for` | `COUNTERSIGN_TRUST_FORWARDED_FOR` | | `false` | take the client address from `X-Forwarded-For` (behind a proxy only) |
//! | `body_limit` | `COUNTERSIGN_BODY_LIMIT` | | `65536` | largest request body in bytes (1 KiB to 16 MiB) |
//! | `sealing_key` | `COUNTERSIGN_SEALING_KEY` | | SQLite: generated into `<data_dir>/keys/sealing.key` (`0600`); Postgres: **required** | 32 bytes, base64url: seals TOTP secrets and signing keys at rest |
//! | `sealing_key_id` | `COUNTERSIGN_SEALING_KEY_ID` | | `k1` | the sealing key's id (`[A-Za-z0-9_-]{1,32}`) |
//! | `code_key` | `COUNTERSIGN_CODE_KEY` | | SQLite: generated into `<data_dir>/keys/code.key` (`0600`); Postgres: **required** | 32 bytes, base64url: keys the hashes of emailed codes |
//! | `smtp_url` | `COUNTERSIGN_SMTP_URL` | | none: each message is written to `<data_dir>/mail/` (`0600`) | `smtp://[user:pass@]host[:port]` (STARTTLS, 587), `smtps://` (TLS, 465), `smtp+plain://` (no TLS, no credentials: local relays) |
//! | `smtp_from` | `COUNTERSIGN_SMTP_FROM` | | `countersign <no-reply@localhost>` | the `From` of mail sent over SMTP |
//! | `bootstrap_tenant` | `COUNTERSIGN_BOOTSTRAP_TENANT` | | `main` | the tenant made on first start, whose JWKS is `/.well-known/jwks.json` |
//! | `bootstrap_admin` | `COUNTERSIGN_BOOTSTRAP_ADMIN` | | `admin` | its first administrator's identifier |
//! | `cleanup_interval` | `COUNTERSIGN_CLEANUP_INTERVAL` | | `300` | seconds between cleanups (one node per interval) |
//! | `shutdown_timeout` | `COUNTERSIGN_SHUTDOWN_TIMEOUT` | | `30` | seconds in-flight requests get after SIGTERM |
//! | `log` | `COUNTERSIGN_LOG` | | `RUST_LOG`, else `info` | log filter (`info`, `countersign_server=debug,warn`, ...) |
//! | `log_format` | `COUNTERSIGN_LOG_FORMAT` | | `text` | `text` or `json` (one object per line), on stderr |
//! | `argon2_memory_kib` | `COUNTERSIGN_ARGON2_MEMORY_KIB` | | `19456` | argon2id memory (OWASP) |
//! | `argon2_iterations` | `COUNTERSIGN_ARGON2_ITERATIONS` | | `2` | argon2id passes |
//! | `argon2_parallelism` | `COUNTERSIGN_ARGON2_PARALLELISM` | | `1` | argon2id lanes |
//! | `hash_slots` | `COUNTERSIGN_HASH_SLOTS` | | the number of cores | password hashes computed at once |
//! | `rate_limit_ip` | `COUNTERSIGN_RATE_LIMIT_IP` | | `60` | authentication requests a minute per client IP and tenant (`0`: no limit) |
//! | `rate_limit_account` | `COUNTERSIGN_RATE_LIMIT_ACCOUNT` | | `10` | authentication requests a minute per account (`0`: no limit) |
//!
//! An unknown `COUNTERSIGN_*` variable is refused like an unknown key.
//! Settings holding secrets (`database_url`, `sealing_key`, `code_key`,
//! `smtp_url`) never appear in logs or error messages.
//!
//! # Serving
//!
//! Besides the API (`/v1/...`, `/docs`), the router answers `/healthz`
//! (200 while up), `/readyz` (200 when a store read succeeds, else a 503
//! problem), `/metrics` (Prometheus text: `http_requests_total` and
//! `http_request_duration_seconds` by method, matched route and status,
//! and the API's `countersign_*` counters) and `/.well-known/jwks.json`
//! (the bootstrap tenant's keys). Every response carries `x-request-id`
//! (the client's when well-formed, else a new UUIDv7), `X-Content-Type-Options:
//! nosniff`, `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`,
//! `Cache-Control: no-store` under `/v1`, and HSTS for an `https://`
//! issuer. Access logs name method, matched route, status and latency,
//! never headers, query strings or bodies. `/metrics`, `/healthz` and
//! `/readyz` need no credentials: keep them off the public network (at
//! the proxy) where that matters.
//!
//! # First start
//!
//! With no tenant named `bootstrap_tenant`, the service creates it
//! (password, TOTP and recovery codes; methods `mfa` then `password`),
//! an administrator `bootstrap_admin` with a random 24-character password,
//! holding every administrative action (`manage_tenants` included), and a
//! first signing key. The credentials go to
//! `<data_dir>/bootstrap-credentials.txt` (`0600`), with the address the
//! server listens on; the log says only where. Later starts change nothing.
//!
//! # On SQLite
//!
//! The server is the one process serving the database's sessions, so it
//! opens SQLite with the session cache
//! ([`SQLITE_SESSION_CACHE`](store::SQLITE_SESSION_CACHE), one second): a
//! logout, a revocation or a suspension made through the server is seen by
//! the next request, as without the cache; a change another process wrote
//! into the same file directly would be seen within that second.

#![forbid(unsafe_code)]

pub mod bootstrap;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod files;
pub mod http;
pub mod import;
pub mod keys;
pub mod mail;
pub mod serve;
pub mod services;
pub mod store;
pub mod telemetry;

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{
    AdminCommand, Cli, Command, HashCommand, KeysCommand, PolicyCommand, TenantCommand,
    UsersCommand,
};
use crate::commands::PolicyCheck;
use crate::config::{ENV_PREFIX, Layers, Settings};
pub use crate::error::Failure;

/// The `COUNTERSIGN_*` environment variables. A variable whose name or
/// value is not UTF-8 is a configuration error.
fn environment() -> Result<BTreeMap<String, String>, Failure> {
    let mut vars = BTreeMap::new();
    for (k, v) in std::env::vars_os() {
        let Some(key) = k.to_str() else { continue };
        if !key.starts_with(ENV_PREFIX) {
            continue;
        }
        let value = v.into_string().map_err(|_| {
            config::ConfigError::new(
                &key.trim_start_matches(ENV_PREFIX).to_ascii_lowercase(),
                key,
                "not UTF-8",
            )
        })?;
        vars.insert(key.to_owned(), value);
    }
    Ok(vars)
}

/// The settings for `cli`: file, environment and flags.
pub fn load_settings(cli: &Cli) -> Result<Settings, Failure> {
    let layers = Layers::load(cli.config.as_deref(), &environment()?, cli.layer())?;
    Ok(layers.settings()?)
}

/// The binary's entry point: parse the command line (usage errors exit
/// with 2), run the command, print a failure as one line on stderr.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // Logging may not be up (configuration errors come first).
            eprintln!("countersign: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Run one command to completion.
pub fn run(cli: Cli) -> Result<ExitCode, Failure> {
    if let Command::Policy(PolicyCommand::Validate { schema, policies }) = &cli.command {
        return match commands::check_policies(schema, policies)? {
            PolicyCheck::Valid(n) => {
                commands::say(&format!("valid: {n} policies and templates"))?;
                Ok(ExitCode::SUCCESS)
            }
            PolicyCheck::Invalid(diagnostics) => {
                for d in diagnostics {
                    eprintln!("{d}");
                }
                Ok(ExitCode::from(1))
            }
        };
    }
    let settings = load_settings(&cli)?;
    let serving = matches!(cli.command, Command::Serve(_));
    telemetry::init_logs(Some(&settings), if serving { "info" } else { "warn" });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| error::fail("starting the runtime", e))?;
    runtime.block_on(dispatch(cli.command, settings))
}

async fn dispatch(command: Command, settings: Settings) -> Result<ExitCode, Failure> {
    match command {
        Command::Serve(_) => {
            let backend = store::open(&settings, true).await?;
            with_store!(backend, s => serve::run(s, settings).await)?;
        }
        Command::Migrate => commands::migrate(&settings).await?,
        Command::Tenant(TenantCommand::Create { slug, name }) => {
            commands::tenant_create(&settings, &slug, &name).await?;
        }
        Command::Admin(AdminCommand::Create { tenant, identifier }) => {
            commands::admin_create(&settings, &tenant, &identifier).await?;
        }
        Command::Keys(KeysCommand::Rotate { tenant }) => {
            commands::keys_rotate(&settings, &tenant).await?;
        }
        Command::Hash(HashCommand::Calibrate { rounds }) => {
            commands::hash_calibrate(&settings, rounds).await?;
        }
        Command::Users(UsersCommand::Import(args)) => {
            return import::command(&settings, &args).await;
        }
        Command::Policy(_) => {}
    }
    Ok(ExitCode::SUCCESS)
}
