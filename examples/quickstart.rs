//! Quick start: provision a tenant, register a user and sign in with a
//! password on the embedded default (a SQLite file), printing each step.
//!
//! Run with `cargo run --example quickstart [PATH]`. The database file is
//! `target/countersign-quickstart.db` unless a path is given; the example
//! starts it afresh each run.

#![allow(clippy::print_stdout, reason = "an example prints what it does")]

use countersign::prelude::*;
use countersign::{AuditFilter, AuditQuery};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // 1. A store, an environment (wall clock, OS randomness) and the
    //    argon2id hasher at OWASP parameters.
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/countersign-quickstart.db".into());
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    let store = SqliteStore::open(&path).await.map_err(Error::store)?;
    println!("0. opened SQLite database `{path}` (schema migrated)");
    let authn = AuthnService::new(store.clone(), Env::system(), PasswordHasher::owasp()?);
    println!("1. service ready: argon2id {:?}", authn.hasher().params());

    // 2. A tenant whose users sign in with a password.
    let tenant = authn
        .provision_tenant(NewTenant::password_only("acme", "Acme Inc")?)
        .await?;
    println!("2. provisioned tenant `{}` ({})", tenant.slug, tenant.id);

    // 3. A user, active from the start.
    let client = ClientInfo::new(Some([127, 0, 0, 1].into()), Some("quickstart"));
    let alice = authn
        .register_user(
            tenant.id,
            NewUser {
                identifier: "alice@example.org",
                password: Some("correct horse battery staple"),
                display_name: Some("Alice"),
                state: Some(AccountState::Active),
                ..NewUser::default()
            },
            &client,
        )
        .await?;
    println!("3. registered `{}` ({})", alice.identifier, alice.id);

    // 4. A wrong password and an unknown user fail the same way.
    let wrong = authn
        .verify_password(tenant.id, "alice@example.org", "not her password", &client)
        .await;
    let unknown = authn
        .verify_password(tenant.id, "mallory@example.org", "anything at all", &client)
        .await;
    println!(
        "4. wrong password: {}; unknown user: {}",
        err(wrong),
        err(unknown)
    );

    // 5. A login is a server-side flow: begin it, submit the password.
    let (flow, status) = authn
        .begin_login(tenant.id, "Alice@Example.org", None, &client)
        .await?;
    println!("5. login flow started: {status:?}");
    let step = authn
        .submit(
            tenant.id,
            flow.expose(),
            FactorResponse::Password("correct horse battery staple"),
            &client,
        )
        .await?;
    let LoginStatus::Authenticated(auth) = step.status else {
        println!("   not signed in: {:?}", step.status);
        return Ok(());
    };
    let proof = auth.record();
    println!("   signed in by method `{}` at {}", proof.method, proof.at);

    // 6. A session: an opaque token for the client, only its hash stored.
    let sessions = SessionService::new(store.clone(), Env::system(), "https://auth.example.com");
    let issued = sessions.issue(&auth, &client).await?;
    let checked = sessions.validate(issued.session_token.expose()).await?;
    println!(
        "6. session {} valid until {} (absolute {})",
        checked.id, checked.expires_at, checked.absolute_expires_at
    );
    if let Some(refresh) = &issued.refresh_token {
        let next = sessions.refresh(refresh.expose(), &client).await?;
        println!(
            "   refresh token rotated (generation {})",
            next.family.generation
        );
        let reuse = sessions.refresh(refresh.expose(), &client).await;
        println!("   the old refresh token again: {}", err(reuse));
        let after = sessions.validate(issued.session_token.expose()).await;
        println!("   the session after that reuse: {}", err(after));
    }

    // 7. Everything above is in the tenant's audit log.
    let events = store.query_events(tenant.id, &AuditFilter::default()).await;
    let events = events.map_err(Error::store)?;
    println!("7. audit log, newest first:");
    for e in events {
        println!(
            "   {} {:<18} {:<8} {}",
            e.at.format("%H:%M:%S%.3f"),
            e.kind,
            e.status,
            e.detail.map(|d| d.code()).unwrap_or_default()
        );
    }
    Ok(())
}

fn err<T>(r: Result<T, Error>) -> String {
    match r {
        Ok(_) => "accepted (unexpected)".into(),
        Err(e) => e.to_string(),
    }
}
