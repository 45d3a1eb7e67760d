//! The three services over one store, wired as the configuration says:
//! sealing and code keys, mail (SMTP or files), OIDC fetching, hashing.

use countersign_axum::{Api, ApiConfig, ApiStore, CookieConfig};
use countersign_core::{
    AccessTokenPolicy, AuthMethod, AuthnService, AuthzService, Env, FactorKind, FactorSettings,
    FactorStep, NewTenant, Sealer, SessionPolicy, SessionService, TenantPolicy,
};
use countersign_mail::{Delivery, QueuedSender, SmtpSender, Templates};
use countersign_oidc::ReqwestFetch;

use crate::config::{Mail, Settings};
use crate::error::{Context, Failure, fail};
use crate::keys::{self, Keys};
use crate::mail::FileSender;

/// The services of one process.
#[derive(Debug, Clone)]
pub struct Services<S> {
    /// Authentication.
    pub authn: AuthnService<S>,
    /// Sessions and tokens.
    pub sessions: SessionService<S>,
    /// Authorization.
    pub authz: AuthzService<S>,
    /// The background delivery of mail (finish it at shutdown).
    pub mail: Delivery,
}

/// Messages waiting for delivery at most; a message beyond them fails its
/// request with a transient error.
pub const MAIL_QUEUE: usize = 1024;

/// Build the services over `store` as `settings` say, with `keys`.
pub fn build<S: ApiStore>(
    store: S,
    settings: &Settings,
    keys: &Keys,
    env: &Env,
) -> Result<Services<S>, Failure> {
    let hasher = settings.hasher().context("setting up password hashing")?;
    let sealer = Sealer::new(keys.sealing.clone());
    let fetch = ReqwestFetch::new().context("setting up the HTTP client for OIDC issuers")?;
    let authn = AuthnService::new(store.clone(), env.clone(), hasher)
        .with_sealer(sealer.clone())
        .with_code_key(keys.code.clone())
        .with_notice_renderer(Templates::new())
        .with_http_fetch(fetch);
    // Delivery runs off the request path: an answer that waited for SMTP
    // (or a file's sync) only when there is an account would tell who has
    // one by its timing.
    let (sender, mail) = match &settings.mail {
        Mail::Smtp(config) => {
            let sender = SmtpSender::new(config.clone()).context("setting up SMTP")?;
            QueuedSender::spawn(sender, MAIL_QUEUE)
        }
        Mail::Files => QueuedSender::spawn(
            FileSender::new(settings.data_dir.join("mail"), env.clone()),
            MAIL_QUEUE,
        ),
    }
    .context("starting mail delivery")?;
    let authn = authn.with_email_sender(sender);
    let sessions = SessionService::new(store.clone(), env.clone(), settings.issuer.clone())
        .with_sealer(sealer);
    let authz = AuthzService::new(store, env.clone());
    Ok(Services {
        authn,
        sessions,
        authz,
        mail,
    })
}

/// Open the keys and build the services: what every command that touches
/// accounts starts with.
pub fn start<S: ApiStore>(store: S, settings: &Settings) -> Result<Services<S>, Failure> {
    let env = Env::system();
    let keys = keys::resolve(settings, &env)?;
    build(store, settings, &keys, &env)
}

/// The HTTP API over `services`, with the edge settings: cookies without
/// `Secure` only for a plain-HTTP issuer on loopback.
pub fn api<S: ApiStore>(services: Services<S>, settings: &Settings) -> Api<S> {
    let cookies = CookieConfig {
        secure: !settings.insecure_loopback(),
        ..CookieConfig::default()
    };
    let config = ApiConfig {
        body_limit: settings.body_limit,
        cookies: Some(cookies),
        trust_forwarded_for: settings.trust_forwarded_for,
        rate_limits: settings.rate_limits.clone(),
    };
    Api::with_config(services.authn, services.sessions, services.authz, config)
}

/// The audience of the access tokens of tenants made here.
pub const ACCESS_TOKEN_AUDIENCE: &str = "countersign";

/// A tenant as this service makes them: passwords, TOTP and recovery
/// codes; the method `mfa` (password, then a TOTP or a recovery code)
/// listed before `password` (password alone); access tokens (EdDSA, 5
/// minutes, audience `countersign`).
pub fn standard_tenant(slug: &str, name: &str) -> Result<NewTenant, Failure> {
    let mfa = AuthMethod::new(
        "mfa",
        vec![
            FactorStep::Required(FactorKind::Password),
            FactorStep::AnyOf(vec![FactorKind::Totp, FactorKind::RecoveryCodes]),
        ],
    )
    .map_err(|e| fail("the mfa method", e))?;
    let policy = TenantPolicy {
        sessions: SessionPolicy {
            access_tokens: Some(AccessTokenPolicy::new(
                ACCESS_TOKEN_AUDIENCE,
                std::time::Duration::from_secs(300),
            )),
            ..SessionPolicy::default()
        },
        ..TenantPolicy::default()
    };
    NewTenant::new(slug, name)
        .adopt(FactorSettings::Password(Default::default()))
        .adopt(FactorSettings::Totp(Default::default()))
        .adopt(FactorSettings::RecoveryCodes(Default::default()))
        .policy(policy)
        .with_method(mfa)
        .method("password", &[FactorKind::Password])
        .map_err(|e| fail("the password method", e))
}
