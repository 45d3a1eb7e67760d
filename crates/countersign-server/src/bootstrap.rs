//! First start: a tenant and its administrator, once.
//!
//! When the store has no tenant with the bootstrap slug, the service
//! provisions it ([`standard_tenant`]), registers an administrator with a
//! random password, makes it the tenant's administrator (every
//! administrative action, `manage_tenants` included), rotates in a first
//! signing key, and writes the one-time credentials to
//! `<data-dir>/bootstrap-credentials.txt` (mode `0600`). The log says
//! where the file is, never what it holds. Once the tenant exists, a start
//! changes nothing.

use std::path::PathBuf;

use countersign_axum::ApiStore;
use countersign_core::{
    AccountState, ClientInfo, Env, ErrorKind, NewUser, RbacChange, RbacKind, RbacName, RoleGrant,
    Tenant,
};

use crate::config::Settings;
use crate::error::{Context, Failure, fail};
use crate::files;
use crate::services::{Services, standard_tenant};

/// The bootstrap credentials file's name in the data directory.
pub const CREDENTIALS_FILE: &str = "bootstrap-credentials.txt";

/// A random password ([`countersign_core::factor::generate_password`]).
pub fn random_password(env: &Env) -> Result<String, Failure> {
    countersign_core::factor::generate_password(env).context("generating a password")
}

/// What a bootstrap made.
#[derive(Debug, Clone)]
pub struct Bootstrapped {
    /// The tenant.
    pub tenant: Tenant,
    /// The credentials file.
    pub file: PathBuf,
}

/// Bootstrap the store behind `services` unless its bootstrap tenant
/// exists. `Ok(None)`: nothing to do (also when another node sharing the
/// database won the race).
pub async fn run<S: ApiStore>(
    services: &Services<S>,
    settings: &Settings,
    listening: std::net::SocketAddr,
    env: &Env,
) -> Result<Option<Bootstrapped>, Failure> {
    let slug = &settings.bootstrap_tenant;
    match services.authn.tenant_by_slug(slug).await {
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(fail("looking up the bootstrap tenant", e)),
    }
    let password = random_password(env)?;
    let identifier = &settings.bootstrap_admin;
    let file = settings.data_dir.join(CREDENTIALS_FILE);
    // The file first: whatever happens next, the password is not lost.
    let text = format!(
        "# countersign: the first administrator's one-time credentials.\n\
         # Sign in, change the password, then delete this file.\n\
         tenant = \"{slug}\"\n\
         identifier = \"{identifier}\"\n\
         password = \"{password}\"\n\
         url = \"{base}\"\n\
         login = \"{base}/v1/tenants/{slug}/login/password\"\n",
        base = local_url(listening),
    );
    files::write_private(&file, text.as_bytes()).context(&format!("writing {}", file.display()))?;
    match provision(services, slug, identifier, &password).await {
        Ok(Some(tenant)) => {
            tracing::info!(
                tenant = %slug,
                "bootstrapped the first tenant and administrator; credentials written to {}",
                file.display()
            );
            Ok(Some(Bootstrapped { tenant, file }))
        }
        Ok(None) => {
            let _ = std::fs::remove_file(&file);
            Ok(None)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&file);
            Err(e)
        }
    }
}

/// The URL a local client reaches `addr` at (an unspecified address, such
/// as 0.0.0.0, is reached over loopback).
fn local_url(addr: std::net::SocketAddr) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!("http://{}", std::net::SocketAddr::new(ip, addr.port()))
}

/// Provision the tenant and its administrator; `None` when the tenant
/// appeared meanwhile (another node).
async fn provision<S: ApiStore>(
    services: &Services<S>,
    slug: &str,
    identifier: &str,
    password: &str,
) -> Result<Option<Tenant>, Failure> {
    let client = ClientInfo::default();
    let spec = standard_tenant(slug, slug)?;
    let tenant = match services.authn.provision_tenant(spec).await {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::Conflict => return Ok(None),
        Err(e) => return Err(fail("provisioning the bootstrap tenant", e)),
    };
    let user = services
        .authn
        .register_user(
            tenant.id,
            NewUser {
                identifier,
                password: Some(password),
                state: Some(AccountState::Active),
                ..NewUser::default()
            },
            &client,
        )
        .await
        .context("registering the bootstrap administrator")?;
    make_admin(services, &tenant, user.id, true).await?;
    services
        .sessions
        .rotate_signing_key(tenant.id)
        .await
        .context("creating the first signing key")?;
    Ok(Some(tenant))
}

/// Make `user` an administrator of `tenant` (the `admin` role of the
/// `countersign` service); with `platform`, also grant that role
/// `manage_tenants` (the platform operator's action).
pub async fn make_admin<S: ApiStore>(
    services: &Services<S>,
    tenant: &Tenant,
    user: countersign_core::UserId,
    platform: bool,
) -> Result<(), Failure> {
    let client = ClientInfo::default();
    services
        .authz
        .grant_tenant_admin(tenant.id, user, &client)
        .await
        .context("granting the administrator role")?;
    if !platform {
        return Ok(());
    }
    let name = |s: &str| RbacName::new(s).map_err(|e| fail("an RBAC name", e));
    let permission = name("manage_tenants")?;
    let changes = [
        RbacChange::Create {
            kind: RbacKind::Permission,
            name: permission.clone(),
        },
        RbacChange::Grant(RoleGrant {
            role: name(countersign_core::authz::ADMIN_ROLE)?,
            permission,
            service: Some(name(countersign_core::authz::ADMIN_SERVICE)?),
        }),
    ];
    for change in &changes {
        match services.authz.change_rbac(tenant.id, change, &client).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Conflict => {}
            Err(e) => return Err(fail("granting manage_tenants", e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The credentials file names an address a local client can reach.
    #[test]
    fn local_urls_reach_the_listener() {
        let url = |s: &str| local_url(s.parse().unwrap());
        assert_eq!(url("127.0.0.1:18080"), "http://127.0.0.1:18080");
        assert_eq!(url("0.0.0.0:8080"), "http://127.0.0.1:8080");
        assert_eq!(url("[::]:8080"), "http://[::1]:8080");
        assert_eq!(url("10.1.2.3:9000"), "http://10.1.2.3:9000");
    }
}
