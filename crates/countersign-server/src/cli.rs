//! The command line (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::Layer;

/// countersign: identity and access management over HTTP.
#[derive(Debug, Parser)]
#[command(name = "countersign", version, about, max_term_width = 100)]
pub struct Cli {
    /// A TOML configuration file (settings as in the crate docs).
    #[arg(long, global = true, env = "COUNTERSIGN_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// The data directory (SQLite database, generated keys, bootstrap
    /// credentials, mail files).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<String>,
    /// A postgres:// URL (default: SQLite in the data directory).
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (bootstrapping the first tenant on first start).
    Serve(ServeArgs),
    /// Apply pending database migrations and report the schema version.
    Migrate,
    /// Tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Administrators.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Authorization policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Password hashing.
    #[command(subcommand)]
    Hash(HashCommand),
    /// Users.
    #[command(subcommand)]
    Users(UsersCommand),
}

/// `serve`'s own flags.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// The issuer (public base URL).
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
}

/// `tenant ...`.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant (password, TOTP and recovery codes; methods `mfa`
    /// and `password`).
    Create {
        /// Its slug (the URL name).
        #[arg(long)]
        slug: String,
        /// Its display name.
        #[arg(long)]
        name: String,
    },
}

/// `admin ...`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an administrator of a tenant with a random password,
    /// printed once.
    Create {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// The administrator's identifier.
        #[arg(long)]
        identifier: String,
    },
}

/// `keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Start signing access tokens with a new key; prints its kid.
    Rotate {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
    },
}

/// `policy ...`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a Cedar schema and policy set as a tenant's model would be
    /// (no store needed). Exit code 1 with Cedar's diagnostics when invalid.
    Validate {
        /// The Cedar schema (human syntax).
        #[arg(long, value_name = "FILE")]
        schema: PathBuf,
        /// The Cedar policies.
        #[arg(long, value_name = "FILE")]
        policies: PathBuf,
    },
}

/// `hash ...`.
#[derive(Debug, Subcommand)]
pub enum HashCommand {
    /// Time the configured argon2id parameters on this machine.
    Calibrate {
        /// Hashes to time one after another.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
        rounds: u32,
    },
}

/// `users ...`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Import users with their existing password hashes.
    Import(ImportArgs),
}

/// The format of an import file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFormat {
    /// CSV with a header: identifier, email, display_name, password_hash.
    Csv,
    /// One JSON object per line with the same fields.
    Jsonl,
}

/// `users import`'s flags.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The tenant's slug.
    #[arg(long)]
    pub tenant: String,
    /// The file to import.
    #[arg(long, value_name = "PATH")]
    pub file: PathBuf,
    /// Its format (default: from the extension, `.csv` or `.jsonl`).
    #[arg(long, value_enum)]
    pub format: Option<ImportFormat>,
    /// Continue after the last row a previous run committed
    /// (`<file>.progress`).
    #[arg(long)]
    pub resume: bool,
    /// Stop after this many rows (counted from where this run starts).
    #[arg(long, value_name = "ROWS")]
    pub limit: Option<u64>,
    /// Save progress every this many rows.
    #[arg(long, default_value_t = 100, value_name = "ROWS",
        value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint: u64,
}

impl Cli {
    /// The settings the flags set.
    pub fn layer(&self) -> Layer {
        let (listen, issuer) = match &self.command {
            Command::Serve(a) => (a.listen.clone(), a.issuer.clone()),
            _ => (None, None),
        };
        Layer {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            listen,
            issuer,
            ..Layer::default()
        }
    }
}
