//! PostgreSQL backend for countersign (sqlx): the production and scale-out
//! engine. Applications should depend on the `countersign` facade rather
//! than on this crate directly.
//!
//! [`PostgresStore`] implements every store trait of countersign-core
//! ([`IdentityLookup`], [`IdentityAuthnLog`], [`IdentityAdmin`],
//! [`FactorStore`], [`FlowStore`], [`SessionStore`], [`KeyStore`],
//! [`PolicyStore`], [`RbacLookup`], [`RbacStore`], [`VerificationStore`],
//! [`FederatedStore`], [`RateLimitStore`], [`AuditQuery`]) and passes the whole conformance
//! suite of `countersign-testkit`. Guarantees:
//!
//! - **No database at build time.** Every query is checked at run time
//!   (`sqlx::query` with bind parameters); nothing needs a live database
//!   to compile.
//! - **Schema.** Versioned migrations ship inside the crate and are
//!   applied by [`PostgresStore::migrate`]: idempotently, in one
//!   transaction, under a transaction-scoped advisory lock so any number
//!   of processes may call it at once. A database whose schema is newer
//!   than this build ([`SCHEMA_VERSION`]) is refused with
//!   [`PgError::SchemaTooNew`], by `migrate` and by
//!   [`connect`](PostgresStore::connect), before anything is written.
//! - **Atomicity in SQL.** Compare-and-save, failed-attempt counting
//!   (exactly [`LockoutPolicy::next_failure`]) and state transitions are
//!   each one statement; so are session validation (with its renewal: a
//!   check with idle time to spare writes nothing), ending sessions (with
//!   the revocation of their refresh families) and refresh-token rotation
//!   (the current token of a live family rotates by one conditional
//!   UPDATE; anything else gets the whole reuse decision under a row lock
//!   on the family, in a second statement run only when the first rotated
//!   nothing), and a
//!   verification's compare-and-save on its send count, its failure count
//!   and its single-use consumption (`DELETE ... RETURNING`), and a
//!   rate-limit hit (`INSERT ... ON CONFLICT DO UPDATE ... RETURNING`,
//!   never a read then a write: nodes sharing the database share the
//!   counters, and `N` concurrent hits on one key count `N`);
//!   provisioning, user creation, erasure and the
//!   invariant checks ("a tenant keeps a factor and an enabled method")
//!   are one transaction each, the checks serialised per tenant by a row
//!   lock on the tenant.
//! - **RBAC.** Each change ([`RbacStore::apply_rbac_change`]) is one
//!   transaction that first adds one to the tenant's RBAC version
//!   (`cs_rbac_versions`), holding that row's lock until it commits: the
//!   changes of a tenant run one after the other and every applied one
//!   bumps the version exactly once; a refusal rolls back the bump, the
//!   change and its audit event. Deleting a service, role or permission
//!   cascades by foreign key to every grant and assignment naming it;
//!   erasing a user takes the same version lock, removes the user's
//!   assignments and direct grants and bumps the version if there were
//!   any. [`RbacLookup::authz_versions`] (policy document and RBAC
//!   versions) and [`RbacLookup::rbac_snapshot`] are one statement each,
//!   so each reads one consistent state.
//! - **Federated identities.** One link per (tenant, issuer, subject) is
//!   the primary key of `cs_linked_identities`: of concurrent
//!   transactions linking one identity, on any number of nodes, one
//!   commits and the others fail with `Conflict`, rolling back the user
//!   each would have created with it ([`FederatedStore::create_linked_user`]
//!   is one transaction: user, link and audit event).
//! - **Tenant scoping.** The tenant id is part of every key and every
//!   `WHERE` clause (but for lookups by a token hash, which names one row
//!   of the whole deployment); user-owned rows reference
//!   `(tenant_id, user_id)`, so they cannot belong to a user of another
//!   tenant.
//! - **Orderings** match the reference (memory) backend: names and kinds
//!   bytewise (`COLLATE "C"`), users by id, audit events newest first with
//!   ties broken by id.
//! - **Errors** carry a [`StoreErrorKind`]: unique violations are
//!   `Conflict`; connection loss, serialization failures, deadlocks,
//!   server shutdowns and pool timeouts are `Transient` and retried as
//!   [`RetryPolicy`] describes (never where a retry could apply a write
//!   twice).
//! - **Pools.** Every write, and every read that can decide a login, a
//!   session check or a credential change, uses the main pool: tenants
//!   and their policies, users (by id, identifier or across tenants),
//!   failure (lockout) records, tenant factors, credentials, methods,
//!   password history, flows, sessions, refresh families, signing keys,
//!   policy documents, the RBAC model (every [`RbacLookup`] read),
//!   pending verifications, linked identities and rate limits.
//!   An optional read pool ([`PostgresStore::with_read_pool`]), e.g. on a
//!   replica, serves only what may be stale: the user listing
//!   ([`IdentityLookup::list_users`]) and audit queries
//!   ([`AuditQuery::query_events`]). A lagging replica therefore cannot let
//!   a suspended or locked user sign in, or a replaced password still
//!   work, or a revoked role still authorize; it can only make an administrator's listing or an audit search
//!   lag by as much.
//!
//! Feature `testing` adds the module `testing`: one fresh schema per test
//! in the server at `DATABASE_URL` (or the local one), failing loudly when
//! the server cannot be reached. This crate's tests and benchmarks use it;
//! so may applications' own tests.
//!
//! [`IdentityLookup`]: countersign_core::IdentityLookup
//! [`IdentityLookup::list_users`]: countersign_core::IdentityLookup::list_users
//! [`AuditQuery::query_events`]: countersign_core::AuditQuery::query_events
//! [`IdentityAuthnLog`]: countersign_core::IdentityAuthnLog
//! [`IdentityAdmin`]: countersign_core::IdentityAdmin
//! [`FactorStore`]: countersign_core::FactorStore
//! [`FlowStore`]: countersign_core::FlowStore
//! [`SessionStore`]: countersign_core::SessionStore
//! [`KeyStore`]: countersign_core::KeyStore
//! [`PolicyStore`]: countersign_core::PolicyStore
//! [`RbacLookup`]: countersign_core::RbacLookup
//! [`RbacLookup::authz_versions`]: countersign_core::RbacLookup::authz_versions
//! [`RbacLookup::rbac_snapshot`]: countersign_core::RbacLookup::rbac_snapshot
//! [`RbacStore`]: countersign_core::RbacStore
//! [`RbacStore::apply_rbac_change`]: countersign_core::RbacStore::apply_rbac_change
//! [`VerificationStore`]: countersign_core::VerificationStore
//! [`FederatedStore`]: countersign_core::FederatedStore
//! [`RateLimitStore`]: countersign_core::RateLimitStore
//! [`FederatedStore::create_linked_user`]: countersign_core::FederatedStore::create_linked_user
//! [`AuditQuery`]: countersign_core::AuditQuery
//! [`LockoutPolicy::next_failure`]: countersign_core::LockoutPolicy::next_failure
//! [`StoreErrorKind`]: countersign_core::StoreErrorKind

mod codec;
mod error;
mod migrate;
mod retry;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

pub use error::{DbError, PgError};
pub use migrate::SCHEMA_VERSION;
use retry::Idempotence::Idempotent;
pub use retry::RetryPolicy;

/// `Result` with [`PgError`].
pub type Result<T, E = PgError> = std::result::Result<T, E>;

/// How [`PostgresStore::connect_with`] connects.
///
/// Build with [`PostgresOptions::new`] and adjust the fields:
///
/// ```
/// # use std::time::Duration;
/// # use countersign_postgres::PostgresOptions;
/// let mut options = PostgresOptions::new("postgres://app@db.internal/auth");
/// options.max_connections = 32;
/// options.read_url = Some("postgres://app@replica.internal/auth".into());
/// options.migrate = false; // migrations run as a separate deploy step
/// # let _ = options;
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// The primary's URL (`postgres://user:pass@host:port/db?...`).
    pub url: String,
    /// The most connections the pool (and the read pool) opens. Default 10.
    pub max_connections: u32,
    /// How long a call waits for a free connection before failing with a
    /// transient error. Default 10 s.
    pub acquire_timeout: Duration,
    /// `statement_timeout` of every connection; `None` keeps the server's.
    /// Default 5 s. (Migrations lift it once they hold their lock.)
    pub statement_timeout: Option<Duration>,
    /// `search_path` of every connection (the schema the tables live in);
    /// `None` keeps the server's. Default `None`.
    pub search_path: Option<String>,
    /// `application_name` of every connection, as shown in
    /// `pg_stat_activity`. Default `countersign`.
    pub application_name: Option<String>,
    /// A URL for the reads that may be stale (e.g. a replica): the user
    /// listing and audit queries, nothing on the login, session or
    /// credential paths (those always read the primary, see
    /// [`PostgresStore::with_read_pool`]). `None` reads everything from the
    /// primary. Default `None`.
    pub read_url: Option<String>,
    /// How transient failures are retried. Default [`RetryPolicy::default`].
    pub retry: RetryPolicy,
    /// Whether connecting applies pending migrations
    /// ([`PostgresStore::migrate`]), as `SqliteStore::open` does. Default
    /// `true`; set `false` where a deploy step migrates and the service's
    /// database role may not change the schema.
    pub migrate: bool,
}

/// `url` with any password replaced, for `Debug` output and logs.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<unparsed url>".to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:<redacted>@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    // Query parameters may carry a password too (`?password=...`).
    let tail = match tail.split_once('?') {
        Some((path, query)) if query.contains("password") => format!("{path}?<redacted>"),
        _ => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

impl std::fmt::Debug for PostgresOptions {
    /// The URLs with their passwords redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("search_path", &self.search_path)
            .field("application_name", &self.application_name)
            .field("read_url", &self.read_url.as_deref().map(redact_url))
            .field("retry", &self.retry)
            .field("migrate", &self.migrate)
            .finish()
    }
}

impl PostgresOptions {
    /// Options for `url` with the defaults above.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
            statement_timeout: Some(Duration::from_secs(5)),
            search_path: None,
            application_name: Some("countersign".to_owned()),
            read_url: None,
            retry: RetryPolicy::default(),
            migrate: true,
        }
    }

    /// The connect options for `url` with these settings applied.
    fn connect_options(&self, url: &str) -> Result<PgConnectOptions> {
        let mut opts: PgConnectOptions = url
            .parse()
            .map_err(|e| PgError::Config(format!("cannot parse the database url: {e}")))?;
        let mut settings: Vec<(&str, String)> = Vec::new();
        if let Some(t) = self.statement_timeout {
            settings.push(("statement_timeout", format!("{}ms", t.as_millis().max(1))));
        }
        if let Some(path) = &self.search_path {
            settings.push(("search_path", path.clone()));
        }
        if !settings.is_empty() {
            opts = opts.options(settings);
        }
        if let Some(name) = &self.application_name {
            opts = opts.application_name(name);
        }
        Ok(opts)
    }

    async fn pool(&self, url: &str) -> Result<PgPool> {
        if self.max_connections == 0 {
            return Err(PgError::Config("max_connections must be at least 1".into()));
        }
        PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .connect_with(self.connect_options(url)?)
            .await
            .map_err(error::db("connecting"))
    }
}

/// The PostgreSQL store. Clones share the pools.
///
/// Connect with [`connect`](Self::connect) or
/// [`connect_with`](Self::connect_with), or wrap a pool of your own with
/// [`from_pool`](Self::from_pool); then call [`migrate`](Self::migrate)
/// once at start-up (every process may: it is safe under concurrency).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    write: PgPool,
    read: Option<PgPool>,
    retry: RetryPolicy,
}

impl PostgresStore {
    /// Connect to `url` with the default [`PostgresOptions`] and apply
    /// pending migrations (safe when many processes start at once).
    /// Refuses a database whose schema is newer than this build
    /// ([`PgError::SchemaTooNew`]).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(PostgresOptions::new(url)).await
    }

    /// Connect as `options` say: a pool on the primary and, with
    /// `read_url`, a read pool; then migrate unless `options.migrate` is
    /// off. Refuses a database whose schema is newer than this build
    /// ([`PgError::SchemaTooNew`]).
    pub async fn connect_with(options: PostgresOptions) -> Result<Self> {
        let write = options.pool(&options.url).await?;
        let read = match &options.read_url {
            Some(url) => Some(options.pool(url).await?),
            None => None,
        };
        let store = Self {
            write,
            read,
            retry: options.retry,
        };
        store.schema_version().await?;
        if options.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Wrap an existing pool (its connections configure timeouts and
    /// search path). Checks nothing; see [`open`](Self::open).
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            write: pool,
            read: None,
            retry: RetryPolicy::default(),
        }
    }

    /// Wrap an existing pool and check its schema like
    /// [`connect`](Self::connect): a newer schema is refused.
    pub async fn open(pool: PgPool) -> Result<Self> {
        let store = Self::from_pool(pool);
        store.schema_version().await?;
        Ok(store)
    }

    /// Use `pool` for the reads that may be stale: the user listing
    /// ([`IdentityLookup::list_users`]) and audit queries
    /// ([`AuditQuery::query_events`]), which a replica's lag delays by as
    /// much. Every other read stays on the main pool with the writes:
    /// users, tenants and policies, failure records, factors, credentials,
    /// methods, flows, sessions, refresh families and keys decide logins
    /// and session checks, and policy documents and the RBAC model decide
    /// authorization: a lagging copy of them could let a suspended or
    /// locked user in, an old password work or a revoked role authorize.
    ///
    /// [`IdentityLookup::list_users`]: countersign_core::IdentityLookup::list_users
    /// [`AuditQuery::query_events`]: countersign_core::AuditQuery::query_events
    pub fn with_read_pool(mut self, pool: PgPool) -> Self {
        self.read = Some(pool);
        self
    }

    /// Retry transient failures as `policy` says.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The main (write) pool.
    pub fn pool(&self) -> &PgPool {
        &self.write
    }

    /// The pool the stale-tolerant reads use (the user listing and audit
    /// queries): the read pool if there is one, else the main pool.
    pub fn read_pool(&self) -> &PgPool {
        self.read.as_ref().unwrap_or(&self.write)
    }

    /// The retry policy in force.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// Bring the schema to [`SCHEMA_VERSION`] and return it.
    ///
    /// Idempotent and safe when several processes call it at once: it runs
    /// in one transaction holding a transaction-scoped advisory lock, reads
    /// the applied versions from `cs_schema_migrations` and applies only the
    /// missing ones. A database at a newer version than this build knows is
    /// refused with [`PgError::SchemaTooNew`] and nothing is written.
    pub async fn migrate(&self) -> Result<u32> {
        self.retry
            .run("migrate", Idempotent, || migrate::migrate(&self.write))
            .await
    }

    /// The schema version of the database (`None` before the first
    /// migration). A version newer than this build is refused with
    /// [`PgError::SchemaTooNew`].
    pub async fn schema_version(&self) -> Result<Option<u32>> {
        self.retry
            .run("schema_version", Idempotent, || {
                migrate::version(&self.write)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The database password never reaches `Debug` output, in the userinfo
    /// or in the query string, for the primary or the read URL.
    #[test]
    fn options_debug_hides_the_database_password() {
        let mut o = PostgresOptions::new("postgres://app:s3cr3t-pw@db.internal:5432/auth");
        o.read_url = Some("postgres://ro@replica/auth?sslmode=require&password=s3cr3t-ro".into());
        let text = format!("{o:?}");
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(
            text.contains("app:<redacted>@db.internal:5432/auth"),
            "{text}"
        );
        assert!(text.contains("ro@replica/auth?<redacted>"), "{text}");
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact_url("not a url"), "<unparsed url>");
    }
}
