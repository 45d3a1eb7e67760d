//! Configuration: defaults, then a TOML file, then `COUNTERSIGN_*`
//! environment variables, then command-line flags; each layer overrides
//! the one before it, setting by setting. [`Settings`] is the result,
//! checked in full before anything starts.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::HeaderValue;
use countersign_core::{Argon2Params, CodeKey, PasswordHasher, SealingKey, TenantSlug};
use countersign_mail::{SmtpConfig, SmtpCredentials, SmtpSecurity, SmtpSender};
use serde::Deserialize;

/// The prefix of every environment variable the service reads.
pub const ENV_PREFIX: &str = "COUNTERSIGN_";

/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "COUNTERSIGN_CONFIG";

/// A setting that cannot be used: which one, where its value came from,
/// and why. Displayed as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting `{setting}` (from {origin}): {reason}")]
pub struct ConfigError {
    /// The setting's name, as in the file (`listen`, `database_url`, ...).
    pub setting: String,
    /// Where its value came from (`COUNTERSIGN_LISTEN`, `--listen`, the
    /// file, or `default`).
    pub origin: String,
    /// What is wrong with it (never the value of a secret).
    pub reason: String,
}

impl ConfigError {
    /// An error about `setting`, set by `origin`.
    pub fn new(setting: &str, origin: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            setting: setting.to_owned(),
            origin: origin.into(),
            reason: reason.into(),
        }
    }
}

/// A value an environment variable can carry.
trait EnvValue: Sized {
    /// Parse the variable's text.
    fn parse_env(text: &str) -> Result<Self, String>;
}

impl EnvValue for String {
    fn parse_env(text: &str) -> Result<Self, String> {
        Ok(text.to_owned())
    }
}

impl EnvValue for u64 {
    fn parse_env(text: &str) -> Result<Self, String> {
        text.trim()
            .parse()
            .map_err(|_| "expected a whole number".to_owned())
    }
}

impl EnvValue for bool {
    fn parse_env(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err("expected true or false".to_owned()),
        }
    }
}

impl EnvValue for Vec<String> {
    /// A comma-separated list; blanks around items are dropped.
    fn parse_env(text: &str) -> Result<Self, String> {
        Ok(text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect())
    }
}

macro_rules! settings {
    ($( $(#[$doc:meta])* $name:ident : $ty:ty ),* $(,)?) => {
        /// One layer of configuration (the file, the environment or the
        /// flags): every setting optional. Unknown keys in a file are
        /// refused. No `Debug`: it holds secrets.
        #[derive(Default, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Layer {
            $( $(#[$doc])* pub $name: Option<$ty>, )*
        }

        impl Layer {
            /// Every setting's name, as in the file.
            pub const KEYS: &'static [&'static str] = &[$(stringify!($name)),*];

            /// `self` over `below`: each setting from `self` when set.
            pub fn over(self, below: Layer) -> Layer {
                Layer { $( $name: self.$name.or(below.$name), )* }
            }

            /// Whether `setting` is set in this layer.
            pub fn has(&self, setting: &str) -> bool {
                $( if setting == stringify!($name) { return self.$name.is_some(); } )*
                false
            }

            /// The layer the `COUNTERSIGN_*` variables in `vars` make.
            /// Refuses an unknown `COUNTERSIGN_*` variable and a value of
            /// the wrong type, naming the variable.
            pub fn from_env(vars: &BTreeMap<String, String>) -> Result<Layer, ConfigError> {
                let mut layer = Layer::default();
                for (var, value) in vars {
                    let Some(key) = var.strip_prefix(ENV_PREFIX) else { continue };
                    if var == CONFIG_ENV {
                        continue;
                    }
                    let key = key.to_ascii_lowercase();
                    match key.as_str() {
                        $( stringify!($name) => {
                            layer.$name = Some(<$ty as EnvValue>::parse_env(value)
                                .map_err(|r| ConfigError::new(stringify!($name), var.clone(), r))?);
                        } )*
                        _ => {
                            return Err(ConfigError::new(
                                &key,
                                var.clone(),
                                "unknown variable: no such setting",
                            ));
                        }
                    }
                }
                Ok(layer)
            }
        }
    };
}

settings! {
    /// The address to listen on.
    listen: String,
    /// Where the SQLite database, generated keys, bootstrap credentials
    /// and mail files go.
    data_dir: String,
    /// A `postgres://` URL; none means SQLite in the data directory.
    database_url: String,
    /// The most connections to Postgres.
    database_max_connections: u64,
    /// The Postgres schema holding the tables (`search_path`).
    database_schema: String,
    /// The `iss` of access tokens and the public base URL.
    issuer: String,
    /// Origins allowed by CORS (exact).
    cors_origins: Vec<String>,
    /// Take the client address from `X-Forwarded-For`.
    trust_forwarded_for: bool,
    /// The largest request body, in bytes.
    body_limit: u64,
    /// The sealing key (base64url, 32 bytes).
    sealing_key: String,
    /// The sealing key's id.
    sealing_key_id: String,
    /// The code key (base64url, 32 bytes).
    code_key: String,
    /// SMTP server URL.
    smtp_url: String,
    /// The `From` of mail sent over SMTP.
    smtp_from: String,
    /// The tenant created at first start.
    bootstrap_tenant: String,
    /// The administrator created at first start.
    bootstrap_admin: String,
    /// Seconds between two cleanups.
    cleanup_interval: u64,
    /// Seconds in-flight requests get at shutdown.
    shutdown_timeout: u64,
    /// The log filter.
    log: String,
    /// `text` or `json`.
    log_format: String,
    /// argon2id memory in KiB.
    argon2_memory_kib: u64,
    /// argon2id passes.
    argon2_iterations: u64,
    /// argon2id lanes.
    argon2_parallelism: u64,
    /// Password hashes computed at once.
    hash_slots: u64,
    /// Authentication requests per minute per client IP (0: no limit).
    rate_limit_ip: u64,
    /// Authentication requests per minute per account (0: no limit).
    rate_limit_account: u64,
}

/// Where each layer came from, for error messages.
#[derive(Default, Clone)]
pub struct Layers {
    /// The flags.
    pub cli: Layer,
    /// The environment.
    pub env: Layer,
    /// The file, and its path.
    pub file: Option<(PathBuf, Layer)>,
}

impl Layers {
    /// Read the file at `config` (if any) and the environment `vars`;
    /// `cli` holds the flags given.
    pub fn load(
        config: Option<&Path>,
        vars: &BTreeMap<String, String>,
        cli: Layer,
    ) -> Result<Self, ConfigError> {
        let file = match config {
            Some(path) => Some((path.to_owned(), read_file(path)?)),
            None => None,
        };
        let env = Layer::from_env(vars)?;
        Ok(Self { cli, env, file })
    }

    /// Where `setting`'s value comes from.
    pub fn origin(&self, setting: &str) -> String {
        if self.cli.has(setting) {
            format!("--{}", setting.replace('_', "-"))
        } else if self.env.has(setting) {
            format!("{ENV_PREFIX}{}", setting.to_ascii_uppercase())
        } else if let Some((path, file)) = &self.file
            && file.has(setting)
        {
            format!("config file {}", path.display())
        } else {
            "default".to_owned()
        }
    }

    /// Every layer merged, flags first.
    pub fn merged(&self) -> Layer {
        let file = self
            .file
            .as_ref()
            .map(|(_, l)| l.clone())
            .unwrap_or_default();
        self.cli.clone().over(self.env.clone().over(file))
    }

    /// The settings, checked.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        Settings::resolve(self.merged(), self)
    }
}

/// Parse the TOML file at `path`, refusing unknown keys.
fn read_file(path: &Path) -> Result<Layer, ConfigError> {
    let origin = format!("config file {}", path.display());
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new("config", origin.clone(), format!("cannot read it: {e}")))?;
    toml::from_str::<Layer>(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text.get(..s.start).unwrap_or("").matches('\n').count() + 1);
        let mut reason = e.message().replace('\n', " ");
        if let Some(line) = line {
            reason = format!("line {line}: {reason}");
        }
        // Name the key at fault as the setting when the message quotes one.
        let setting = reason
            .split('`')
            .nth(1)
            .filter(|k| !k.is_empty() && k.len() < 64)
            .unwrap_or("config")
            .to_owned();
        ConfigError::new(&setting, origin.clone(), reason)
    })
}

/// Where accounts live.
#[derive(Clone)]
pub enum Database {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL server.
    Postgres {
        /// Its URL (may hold a password: never logged).
        url: String,
        /// The most connections.
        max_connections: u32,
        /// The schema (`search_path`), if not the server's default.
        schema: Option<String>,
    },
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            Database::Postgres {
                max_connections,
                schema,
                ..
            } => f
                .debug_struct("Postgres")
                .field("url", &"<redacted>")
                .field("max_connections", max_connections)
                .field("schema", schema)
                .finish(),
        }
    }
}

/// How mail goes out.
#[derive(Debug, Clone)]
pub enum Mail {
    /// Over SMTP (checked: [`SmtpSender::new`] accepted it).
    Smtp(SmtpConfig),
    /// Into files under the data directory's `mail/`.
    Files,
}

/// The log's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The service's settings, resolved and checked. `Debug` shows no secret.
#[derive(Clone)]
pub struct Settings {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The store.
    pub database: Database,
    /// The issuer URL (no trailing slash).
    pub issuer: String,
    /// CORS origins allowed (exact).
    pub cors_origins: Vec<HeaderValue>,
    /// Trust `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
    /// The largest request body, in bytes.
    pub body_limit: usize,
    /// The sealing key, when configured.
    pub sealing_key: Option<SealingKey>,
    /// The id a generated sealing key gets.
    pub sealing_key_id: String,
    /// The code key, when configured.
    pub code_key: Option<CodeKey>,
    /// How mail goes out.
    pub mail: Mail,
    /// The tenant created at first start.
    pub bootstrap_tenant: String,
    /// The administrator created at first start.
    pub bootstrap_admin: String,
    /// Time between cleanups.
    pub cleanup_interval: Duration,
    /// Time in-flight requests get at shutdown.
    pub shutdown_timeout: Duration,
    /// The log filter (`None`: `RUST_LOG`, else `info`).
    pub log: Option<String>,
    /// The log's format.
    pub log_format: LogFormat,
    /// argon2id parameters.
    pub argon2: Argon2Params,
    /// Password hashes computed at once.
    pub hash_slots: usize,
    /// Limits on the authentication endpoints.
    pub rate_limits: countersign_axum::RateLimits,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database", &self.database)
            .field("issuer", &self.issuer)
            .field("cors_origins", &self.cors_origins)
            .field("trust_forwarded_for", &self.trust_forwarded_for)
            .field("body_limit", &self.body_limit)
            .field(
                "sealing_key",
                &self.sealing_key.as_ref().map(SealingKey::id),
            )
            .field("code_key", &self.code_key.as_ref().map(|_| "<redacted>"))
            .field("mail", &self.mail)
            .field("bootstrap_tenant", &self.bootstrap_tenant)
            .field("bootstrap_admin", &self.bootstrap_admin)
            .field("cleanup_interval", &self.cleanup_interval)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("log", &self.log)
            .field("log_format", &self.log_format)
            .field("argon2", &self.argon2)
            .field("hash_slots", &self.hash_slots)
            .field("rate_limits", &self.rate_limits)
            .finish()
    }
}

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default issuer.
pub const DEFAULT_ISSUER: &str = "http://127.0.0.1:8080";
/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "./countersign-data";

impl Settings {
    /// Resolve `merged` (every layer) with the defaults, and check it;
    /// `layers` names the origin of a bad value.
    pub fn resolve(merged: Layer, layers: &Layers) -> Result<Self, ConfigError> {
        let err = |setting: &str, reason: String| {
            ConfigError::new(setting, layers.origin(setting), reason)
        };
        let listen_text = merged.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text.trim().parse().map_err(|_| {
            err(
                "listen",
                format!("`{listen_text}` is not an address and port such as 127.0.0.1:8080"),
            )
        })?;
        let data_dir = PathBuf::from(
            merged
                .data_dir
                .unwrap_or_else(|| DEFAULT_DATA_DIR.to_owned()),
        );
        if data_dir.as_os_str().is_empty() {
            return Err(err("data_dir", "must not be empty".into()));
        }
        let max_connections = u32::try_from(merged.database_max_connections.unwrap_or(10))
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| err("database_max_connections", "must be 1 to 1000".into()))?;
        let schema = merged.database_schema.filter(|s| !s.trim().is_empty());
        if let Some(name) = &schema {
            let ok = name.len() <= 63
                && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(err(
                    "database_schema",
                    "must be 1 to 63 characters of [A-Za-z0-9_], not starting with a digit".into(),
                ));
            }
        }
        let database = match merged.database_url.filter(|u| !u.trim().is_empty()) {
            None => Database::Sqlite(data_dir.join("countersign.db")),
            Some(url) => {
                let url = url.trim().to_owned();
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    return Err(err(
                        "database_url",
                        "only postgres:// or postgresql:// URLs are supported \
                         (leave it unset for SQLite in the data directory)"
                            .into(),
                    ));
                }
                Database::Postgres {
                    url,
                    max_connections,
                    schema,
                }
            }
        };
        let issuer = check_issuer(merged.issuer.as_deref().unwrap_or(DEFAULT_ISSUER))
            .map_err(|r| err("issuer", r))?;
        let cors_origins = merged
            .cors_origins
            .unwrap_or_default()
            .iter()
            .map(|o| check_origin(o))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|r| err("cors_origins", r))?;
        let body_limit = usize::try_from(merged.body_limit.unwrap_or(64 * 1024))
            .ok()
            .filter(|n| (1024..=16 * 1024 * 1024).contains(n))
            .ok_or_else(|| err("body_limit", "must be 1 KiB to 16 MiB".into()))?;
        let sealing_key_id = merged.sealing_key_id.unwrap_or_else(|| "k1".to_owned());
        SealingKey::new(&sealing_key_id, &[0; 32])
            .map_err(|e| err("sealing_key_id", e.to_string()))?;
        let sealing_key = merged
            .sealing_key
            .map(|k| SealingKey::from_base64(&sealing_key_id, &k))
            .transpose()
            .map_err(|_| err("sealing_key", "must be 32 bytes in base64url".into()))?;
        let code_key = merged
            .code_key
            .map(|k| decode_key(&k).and_then(|b| CodeKey::from_slice(&b).ok()))
            .map(|k| k.ok_or_else(|| err("code_key", "must be 32 bytes in base64url".into())))
            .transpose()?;
        if matches!(database, Database::Postgres { .. }) {
            // Every node sharing the database must seal and key codes alike.
            if sealing_key.is_none() {
                return Err(err(
                    "sealing_key",
                    "required with Postgres: every node must share it (set COUNTERSIGN_SEALING_KEY)"
                        .into(),
                ));
            }
            if code_key.is_none() {
                return Err(err(
                    "code_key",
                    "required with Postgres: every node must share it (set COUNTERSIGN_CODE_KEY)"
                        .into(),
                ));
            }
        }
        let smtp_from = merged
            .smtp_from
            .unwrap_or_else(|| "countersign <no-reply@localhost>".to_owned());
        let mail = match merged.smtp_url.filter(|u| !u.trim().is_empty()) {
            None => Mail::Files,
            Some(url) => {
                let config = smtp_config(&url, &smtp_from).map_err(|r| err("smtp_url", r))?;
                SmtpSender::new(config.clone()).map_err(|e| {
                    let setting =
                        if e.to_string().contains("from") || e.to_string().contains("address") {
                            "smtp_from"
                        } else {
                            "smtp_url"
                        };
                    err(setting, e.to_string())
                })?;
                Mail::Smtp(config)
            }
        };
        let bootstrap_tenant = merged.bootstrap_tenant.unwrap_or_else(|| "main".to_owned());
        TenantSlug::parse(&bootstrap_tenant).map_err(|e| err("bootstrap_tenant", e.to_string()))?;
        let bootstrap_admin = merged.bootstrap_admin.unwrap_or_else(|| "admin".to_owned());
        countersign_core::Identifier::parse(&bootstrap_admin)
            .map_err(|e| err("bootstrap_admin", e.to_string()))?;
        let seconds = |setting: &str, value: Option<u64>, default: u64, max: u64| {
            let v = value.unwrap_or(default);
            if (1..=max).contains(&v) {
                Ok(Duration::from_secs(v))
            } else {
                Err(err(setting, format!("must be 1 to {max} seconds")))
            }
        };
        let cleanup_interval = seconds(
            "cleanup_interval",
            merged.cleanup_interval,
            300,
            7 * 24 * 3600,
        )?;
        let shutdown_timeout = seconds("shutdown_timeout", merged.shutdown_timeout, 30, 3600)?;
        let log = merged.log.filter(|l| !l.trim().is_empty());
        if let Some(filter) = &log {
            tracing_subscriber::EnvFilter::try_new(filter)
                .map_err(|e| err("log", format!("not a log filter: {e}")))?;
        }
        let log_format = match merged.log_format.as_deref().map(str::trim) {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => return Err(err("log_format", format!("`{other}`: use text or json"))),
        };
        let u32_of = |setting: &str, v: Option<u64>, default: u32| {
            v.map_or(Ok(default), |v| {
                u32::try_from(v).map_err(|_| err(setting, "too large".into()))
            })
        };
        let argon2 = Argon2Params {
            m_cost_kib: u32_of(
                "argon2_memory_kib",
                merged.argon2_memory_kib,
                Argon2Params::OWASP.m_cost_kib,
            )?,
            t_cost: u32_of(
                "argon2_iterations",
                merged.argon2_iterations,
                Argon2Params::OWASP.t_cost,
            )?,
            p_cost: u32_of(
                "argon2_parallelism",
                merged.argon2_parallelism,
                Argon2Params::OWASP.p_cost,
            )?,
        };
        if argon2.t_cost == 0 {
            return Err(err("argon2_iterations", "must be at least 1".into()));
        }
        if !(1..=64).contains(&argon2.p_cost) {
            return Err(err("argon2_parallelism", "must be 1 to 64".into()));
        }
        if argon2.m_cost_kib < 8 * argon2.p_cost || argon2.m_cost_kib > 4 * 1024 * 1024 {
            return Err(err(
                "argon2_memory_kib",
                "must be 8 KiB per lane to 4 GiB (4194304 KiB)".into(),
            ));
        }
        PasswordHasher::new(argon2, 1).map_err(|e| {
            ConfigError::new(
                "argon2_memory_kib",
                layers.origin("argon2_memory_kib"),
                format!("argon2 parameters refused: {e}"),
            )
        })?;
        let hash_slots = match merged.hash_slots {
            None => std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            Some(n) => usize::try_from(n)
                .ok()
                .filter(|n| (1..=1024).contains(n))
                .ok_or_else(|| err("hash_slots", "must be 1 to 1024".into()))?,
        };
        let per_minute = |setting: &str, v: Option<u64>, default: u32| {
            let n = u32::try_from(v.unwrap_or(u64::from(default)))
                .map_err(|_| err(setting, "must be 0 to 4294967295 requests a minute".into()))?;
            Ok::<_, ConfigError>(
                (n > 0).then(|| countersign_axum::Limit::new(n, Duration::from_secs(60))),
            )
        };
        let rate_limits = countersign_axum::RateLimits {
            per_ip: per_minute("rate_limit_ip", merged.rate_limit_ip, 60)?,
            per_account: per_minute("rate_limit_account", merged.rate_limit_account, 10)?,
        };
        Ok(Settings {
            rate_limits,
            listen,
            data_dir,
            database,
            issuer,
            cors_origins,
            trust_forwarded_for: merged.trust_forwarded_for.unwrap_or(false),
            body_limit,
            sealing_key,
            sealing_key_id,
            code_key,
            mail,
            bootstrap_tenant,
            bootstrap_admin,
            cleanup_interval,
            shutdown_timeout,
            log,
            log_format,
            argon2,
            hash_slots,
        })
    }

    /// Whether the issuer is plain HTTP on a loopback host (development:
    /// cookies without `Secure`).
    pub fn insecure_loopback(&self) -> bool {
        let Ok(url) = url::Url::parse(&self.issuer) else {
            return false;
        };
        url.scheme() == "http"
            && match url.host() {
                Some(url::Host::Domain(d)) => d == "localhost",
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            }
    }

    /// Whether the issuer is HTTPS (HSTS is sent then).
    pub fn https(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    /// A password hasher with the configured parameters.
    pub fn hasher(&self) -> Result<PasswordHasher, countersign_core::Error> {
        PasswordHasher::new(self.argon2, self.hash_slots)
    }
}

/// Base64url (or standard base64), with or without padding.
pub(crate) fn decode_key(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    let t = text.trim().trim_end_matches('=');
    let padded = match t.len() % 4 {
        2 => format!("{t}=="),
        3 => format!("{t}="),
        _ => t.to_owned(),
    };
    URL_SAFE
        .decode(&padded)
        .or_else(|_| STANDARD.decode(&padded))
        .ok()
}

/// The issuer, checked: an absolute http(s) URL without query or
/// fragment; returned without a trailing slash.
fn check_issuer(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL".into());
    }
    if url.host().is_none() || url.query().is_some() || url.fragment().is_some() {
        return Err("must have a host and no query or fragment".into());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// A CORS origin, checked: `scheme://host[:port]`, nothing more.
fn check_origin(text: &str) -> Result<HeaderValue, String> {
    let t = text.trim();
    let url = url::Url::parse(t).map_err(|_| format!("`{t}` is not an origin"))?;
    let origin = url.origin().ascii_serialization();
    if origin != t.trim_end_matches('/') || t.ends_with('/') {
        return Err(format!(
            "`{t}` is not an exact origin (scheme://host[:port], no path, no `*`)"
        ));
    }
    HeaderValue::from_str(&origin).map_err(|_| format!("`{t}` is not an origin"))
}

/// An SMTP configuration from `smtp://[user[:pass]@]host[:port]`
/// (STARTTLS), `smtps://...` (implicit TLS) or `smtp+plain://host[:port]`
/// (no TLS: local relays only). The reason never quotes the URL (it may
/// hold a password).
fn smtp_config(text: &str, from: &str) -> Result<SmtpConfig, String> {
    let url = url::Url::parse(text.trim())
        .map_err(|_| "not a URL such as smtp://user:pass@host:587".to_owned())?;
    let security = match url.scheme() {
        "smtp" => SmtpSecurity::StartTls,
        "smtps" => SmtpSecurity::Tls,
        "smtp+plain" => SmtpSecurity::Plain,
        other => {
            return Err(format!(
                "scheme `{other}`: use smtp:// (STARTTLS), smtps:// (TLS) or smtp+plain://"
            ));
        }
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| "no host".to_owned())?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if !url.path().trim_matches('/').is_empty() || url.query().is_some() {
        return Err("no path or query allowed".into());
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| "user or password is not UTF-8".to_owned())
    };
    let mut config = SmtpConfig::new(host, from)
        .with_security(security)
        .with_port(url.port().unwrap_or(security.default_port()));
    if !url.username().is_empty() {
        let user = decode(url.username())?;
        let password = decode(url.password().unwrap_or(""))?;
        config = config.with_credentials(SmtpCredentials::new(user, password));
    }
    Ok(config)
}

#[cfg(test)]
mod tests;
