//! An application's own axum app with countersign inside it: the whole
//! countersign API mounted beside the application's routes, one route that
//! needs a signed-in user (the `Principal` extractor), and one guarded by a
//! Cedar permission (the `require` layer), which answers 401 without a
//! session, 403 problem+json without the permission, and the page with it.
//!
//! Run with `cargo run -p countersign --features axum --example axum_app`
//! (SQLite in a temporary file), then follow the printed curl commands.
//! Ctrl-C stops it.

#![allow(clippy::print_stdout, reason = "an example prints what it does")]

use std::net::SocketAddr;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use countersign::axum::{Api, ApiConfig, Permission, Principal, require};
use countersign::prelude::*;

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Failure> {
    // The store and the three services, as any countersign application.
    let path = std::env::temp_dir().join("countersign-axum-app.db");
    let store = SqliteStore::open(&path).await?;
    let env = Env::system();
    let authn = AuthnService::new(store.clone(), env.clone(), PasswordHasher::owasp()?);
    let sessions = SessionService::new(store.clone(), env.clone(), "http://127.0.0.1:3000");
    let authz = AuthzService::new(store.clone(), env);
    let client = ClientInfo::default();

    // A tenant whose users sign in with a password, a user, and the RBAC
    // data: holding `read` in the service `docs` allows `App::Action::"read"`
    // on it. (A second run finds them there already.)
    let tenant = match authn.tenant_by_slug("acme").await {
        Ok(t) => t,
        Err(_) => {
            let t = authn
                .provision_tenant(NewTenant::password_only("acme", "Acme Inc")?)
                .await?;
            seed(&authn, &authz, t.id, &client).await?;
            t
        }
    };

    // countersign's API; plain-HTTP cookies since this runs on loopback.
    let mut config = ApiConfig::default();
    if let Some(c) = config.cookies.as_mut() {
        c.secure = false;
    }
    let api = Api::with_config(authn, sessions, authz, config);

    // The application's routes. `api.layer()` lets `Principal` work here;
    // `require` asks the Cedar engine before the handler runs.
    let read_docs = Permission::new(r#"App::Action::"read""#, r#"Countersign::Service::"docs""#)?;
    let app = Router::new()
        .route("/", get(|| async { "public page\n" }))
        .route("/whoami", get(whoami))
        .route(
            "/documents",
            get(|| async { "the documents\n" }).route_layer(from_fn_with_state(
                (api.clone(), read_docs),
                require::<SqliteStore>,
            )),
        )
        .layer(api.layer())
        .merge(api.router());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    let t = tenant.slug.as_str();
    println!(
        "listening on http://127.0.0.1:3000 (store: {})",
        path.display()
    );
    println!("sign in:");
    println!(
        "  curl -s localhost:3000/v1/tenants/{t}/login -H 'content-type: application/json' \
         -d '{{\"identifier\":\"alice@example.org\"}}'"
    );
    println!(
        "  curl -s localhost:3000/v1/tenants/{t}/login/submit -H 'content-type: application/json' \
         -d '{{\"flow\":\"<flow>\",\"factor\":\"password\",\"response\":\"{PASSWORD}\"}}'"
    );
    println!("then: curl -s localhost:3000/documents -H 'authorization: Bearer <session_token>'");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

const PASSWORD: &str = "correct horse battery staple";

async fn whoami(principal: Principal) -> String {
    format!(
        "user {} of tenant {}, signed in with {:?}\n",
        principal.user(),
        principal.tenant(),
        principal
            .auth()
            .factors
            .iter()
            .map(|f| f.kind.as_str())
            .collect::<Vec<_>>()
    )
}

async fn seed(
    authn: &AuthnService<SqliteStore>,
    authz: &AuthzService<SqliteStore>,
    tenant: TenantId,
    client: &ClientInfo,
) -> Result<(), Failure> {
    let alice = authn
        .register_user(
            tenant,
            NewUser {
                identifier: "alice@example.org",
                password: Some(PASSWORD),
                state: Some(AccountState::Active),
                ..NewUser::default()
            },
            client,
        )
        .await?;
    let schema = r#"namespace App {
  action read appliesTo { principal: Countersign::User, resource: Countersign::Service };
}"#;
    authz.save_model(tenant, schema, "", None, client).await?;
    let name = |s: &str| RbacName::new(s);
    for change in [
        RbacChange::Create {
            kind: RbacKind::Service,
            name: name("docs")?,
        },
        RbacChange::Create {
            kind: RbacKind::Permission,
            name: name("read")?,
        },
        RbacChange::Create {
            kind: RbacKind::Role,
            name: name("reader")?,
        },
        RbacChange::Grant(RoleGrant {
            role: name("reader")?,
            permission: name("read")?,
            service: None,
        }),
        RbacChange::Assign(RoleAssignment {
            user: alice.id,
            role: name("reader")?,
            service: name("docs")?,
        }),
    ] {
        authz.change_rbac(tenant, &change, client).await?;
    }
    Ok(())
}
