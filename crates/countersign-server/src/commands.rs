//! The administrative commands: migrate, tenant, admin, keys, policy,
//! hash. Each prints its result on stdout; logs go to stderr.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use countersign_axum::ApiStore;
use countersign_core::{
    AccountState, AuthzError, AuthzModel, ClientInfo, Env, ErrorKind, NewUser, TenantId,
};

use crate::config::Settings;
use crate::error::{Context, Failure, fail};
use crate::services::{self, standard_tenant};
use crate::store::{self, Backend};
use crate::{bootstrap, with_store};

/// Write `text` and a newline to stdout.
pub fn say(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .context("writing to stdout")
}

/// `countersign migrate`.
pub async fn migrate(settings: &Settings) -> Result<(), Failure> {
    let backend = store::open(settings, false).await?;
    let (before, after) = store::migrate(&backend).await?;
    let kind = match backend {
        Backend::Sqlite(_) => "sqlite",
        Backend::Postgres(_) => "postgres",
    };
    if before == after {
        say(&format!("{kind} schema version {after} (up to date)"))
    } else {
        say(&format!("{kind} schema version {after} (was {before})"))
    }
}

/// `countersign tenant create`.
pub async fn tenant_create(settings: &Settings, slug: &str, name: &str) -> Result<(), Failure> {
    let backend = store::open(settings, true).await?;
    with_store!(backend, s => {
        let svc = services::start(s, settings)?;
        let spec = standard_tenant(slug, name)?;
        let tenant = match svc.authn.provision_tenant(spec).await {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::Conflict => {
                return Err(Failure::Failed(format!("tenant `{slug}` already exists")));
            }
            Err(e) => return Err(fail("creating the tenant", e)),
        };
        svc.sessions
            .rotate_signing_key(tenant.id)
            .await
            .context("creating the first signing key")?;
        say(&format!("tenant {} created (id {})", tenant.slug, tenant.id))
    })
}

/// `countersign admin create`: prints the one-time password once.
pub async fn admin_create(
    settings: &Settings,
    tenant: &str,
    identifier: &str,
) -> Result<(), Failure> {
    let backend = store::open(settings, true).await?;
    with_store!(backend, s => admin_create_in(s, settings, tenant, identifier).await)
}

async fn admin_create_in<S: ApiStore>(
    store: S,
    settings: &Settings,
    slug: &str,
    identifier: &str,
) -> Result<(), Failure> {
    let svc = services::start(store, settings)?;
    let tenant = svc
        .authn
        .tenant_by_slug(slug)
        .await
        .map_err(|e| fail(&format!("tenant `{slug}`"), e))?;
    let password = bootstrap::random_password(svc.authn.env())?;
    let user = svc
        .authn
        .register_user(
            tenant.id,
            NewUser {
                identifier,
                password: Some(&password),
                state: Some(AccountState::Active),
                ..NewUser::default()
            },
            &ClientInfo::default(),
        )
        .await
        .map_err(|e| match e.kind() {
            ErrorKind::Conflict => {
                Failure::Failed(format!("`{identifier}` already exists in tenant `{slug}`"))
            }
            _ => fail("registering the administrator", e),
        })?;
    bootstrap::make_admin(&svc, &tenant, user.id, false).await?;
    say(&format!(
        "administrator {identifier} created in tenant {slug} (id {})\npassword: {password}",
        user.id
    ))
}

/// `countersign keys rotate`: prints the new kid.
pub async fn keys_rotate(settings: &Settings, slug: &str) -> Result<(), Failure> {
    let backend = store::open(settings, true).await?;
    with_store!(backend, s => {
        let svc = services::start(s, settings)?;
        let tenant = svc
            .authn
            .tenant_by_slug(slug)
            .await
            .map_err(|e| fail(&format!("tenant `{slug}`"), e))?;
        let kid = svc
            .sessions
            .rotate_signing_key(tenant.id)
            .await
            .context("rotating the signing key")?;
        say(&kid)
    })
}

/// What `policy validate` found.
#[derive(Debug)]
pub enum PolicyCheck {
    /// Valid, with this many policies and templates.
    Valid(usize),
    /// Invalid: Cedar's diagnostics, one per line.
    Invalid(Vec<String>),
}

/// Validate a schema and policies as a tenant's model would be.
pub fn check_policies(schema: &Path, policies: &Path) -> Result<PolicyCheck, Failure> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| fail(&format!("reading {}", p.display()), e))
    };
    let (schema_text, policy_text) = (read(schema)?, read(policies)?);
    let tenant = TenantId::generate(&Env::system()).context("an id")?;
    match AuthzModel::new(tenant, 0, &schema_text, &policy_text) {
        Ok(model) => {
            // countersign's own base policies are in every model: not counted.
            let own = |id: String| !id.starts_with("countersign::");
            let set = model.policies();
            let policies = set.policies().filter(|p| own(p.id().to_string())).count();
            let templates = set.templates().filter(|t| own(t.id().to_string())).count();
            Ok(PolicyCheck::Valid(policies + templates))
        }
        Err(e) => Ok(PolicyCheck::Invalid(diagnostics(&e))),
    }
}

fn diagnostics(e: &AuthzError) -> Vec<String> {
    let (what, list) = match e {
        AuthzError::Schema { diagnostics } => ("schema", diagnostics),
        AuthzError::Parse { diagnostics } => ("policies", diagnostics),
        AuthzError::Validation { diagnostics } => ("validation", diagnostics),
        other => return vec![other.to_string()],
    };
    if list.is_empty() {
        return vec![e.to_string()];
    }
    list.iter().map(|d| format!("{what}: {d}")).collect()
}

/// `countersign hash calibrate`: the median time of one hash at the
/// configured parameters, and the throughput of the configured slots.
pub async fn hash_calibrate(settings: &Settings, rounds: u32) -> Result<(), Failure> {
    let hasher = settings.hasher().context("setting up password hashing")?;
    let env = Env::system();
    let password = "calibration password: not a secret";
    let mut times = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        let phc = hasher.hash(password, &env).await.context("hashing")?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        if !hasher.verify(password, &phc).await.context("verifying")? {
            return Err(Failure::Failed("a hash did not verify".into()));
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(0.0);
    // Throughput: two hashes per slot, all at once.
    let slots = settings.hash_slots;
    let batch = slots.saturating_mul(2);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..batch {
        let (hasher, env) = (hasher.clone(), env.clone());
        tasks.spawn(async move { hasher.hash(password, &env).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a hashing task")?.context("hashing")?;
    }
    let per_second = batch as f64 / start.elapsed().as_secs_f64().max(1e-9);
    let p = settings.argon2;
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    say(&format!(
        "argon2id m={} KiB t={} p={}\nmedian {median:.1} ms per hash ({rounds} rounds)\n\
         {per_second:.0} hashes/s with {slots} hashing slots on {cores} cores",
        p.m_cost_kib, p.t_cost, p.p_cost
    ))
}
