//! Two-factor login: a tenant whose users sign in with a password and then
//! a TOTP code, end to end, printing each step.
//!
//! Run with `cargo run -p countersign --example mfa`. It runs on the
//! in-memory backend; swap in `SqliteStore::open(path)` or
//! `PostgresStore::connect(url)` and nothing else changes.
//!
//! The example plays the authenticator app too: it computes codes from the
//! secret the enrolment hands out, as an app does after scanning the QR
//! code. A TOTP code works once (its time step is spent), so the user
//! waits for the app's next code between confirming the enrolment and
//! signing in; a [`ManualClock`] makes that wait instant and the run exact.

#![allow(clippy::print_stdout, reason = "an example prints what it does")]

use std::time::Duration;

use countersign::factor::{TotpCredential, TotpSettings, totp_code};
use countersign::prelude::*;
use countersign::{Confirm, Enroll, Enrolled, ManualClock, OsRng};

const PASSWORD: &str = "correct horse battery staple";

#[tokio::main]
async fn main() -> Result<(), Failure> {
    // 0. A store and an environment: a clock the example can move (starting
    //    at the wall clock's time) and the OS random source.
    let store = MemoryStore::new();
    let clock = ManualClock::new(Env::system().now());
    let env = Env::new(clock.clone(), OsRng);
    let authn = AuthnService::new(store.clone(), env.clone(), PasswordHasher::owasp()?);
    let sessions = SessionService::new(store, env.clone(), "https://auth.example.com");
    println!("0. services ready on the in-memory store");

    // 1. A tenant that adopts two factors and one method needing both, in
    //    order. Provisioning is atomic: the tenant never exists without them.
    let spec = NewTenant::new("acme", "Acme Inc")
        .adopt(FactorSettings::Password(Default::default()))
        .adopt(FactorSettings::Totp(Default::default()))
        .method("password-totp", &[FactorKind::Password, FactorKind::Totp])?;
    let tenant = authn.provision_tenant(spec).await?;
    println!(
        "1. provisioned tenant `{}` with method `password-totp`",
        tenant.slug
    );

    // 2. A user with a password.
    let client = ClientInfo::new(Some([127, 0, 0, 1].into()), Some("mfa-example"));
    let alice = authn
        .register_user(
            tenant.id,
            NewUser {
                identifier: "alice@example.org",
                password: Some(PASSWORD),
                state: Some(AccountState::Active),
                ..NewUser::default()
            },
            &client,
        )
        .await?;
    println!("2. registered `{}` ({})", alice.identifier, alice.id);

    // 3. Enrol TOTP: the service keeps the secret and hands out what an
    //    authenticator app needs (otpauth URI, its QR code as SVG, base32).
    let Enrolled::Totp(material) = authn
        .enroll(tenant.id, alice.id, Enroll::Totp, &client)
        .await?
    else {
        return Err(Failure::from("enrolment handed back no TOTP material"));
    };
    let app = AuthenticatorApp::scan(&material.secret_base32)?;
    let label = material.uri.split('?').next().unwrap_or_default();
    println!(
        "3. TOTP enrolled: {label}?secret=<redacted> (QR code: {} bytes of SVG)",
        material.qr_svg.len()
    );

    // 4. The user proves the app works with a first code: only now does the
    //    credential count for login.
    let first = app.code(&env)?;
    authn
        .confirm(tenant.id, alice.id, Confirm::Totp { code: &first }, &client)
        .await?;
    println!("4. enrolment confirmed with code {first}");

    // 5. Sign in: begin a flow, then submit the password.
    let (flow, status) = authn
        .begin_login(tenant.id, "alice@example.org", None, &client)
        .await?;
    println!("5. login flow started: {}", describe(&status));
    let step = authn
        .submit(
            tenant.id,
            flow.expose(),
            FactorResponse::Password(PASSWORD),
            &client,
        )
        .await?;
    println!("   password accepted: {}", describe(&step.status));
    let LoginStatus::AwaitingFactor { accepts, .. } = &step.status else {
        return Err(Failure::from("the flow should await a second factor"));
    };
    if accepts.as_slice() != [FactorKind::Totp] {
        return Err(Failure::from("the second step should take a TOTP code"));
    }

    // 6. The code that confirmed the enrolment is spent: replaying it is
    //    refused, and the flow keeps waiting.
    let replay = authn
        .submit(
            tenant.id,
            flow.expose(),
            FactorResponse::Totp(&first),
            &client,
        )
        .await?;
    let Some(refusal) = replay.refused else {
        return Err(Failure::from("a spent TOTP code must not be accepted"));
    };
    println!(
        "6. replayed code {first}: refused ({}), flow {}",
        refusal.as_str(),
        describe(&replay.status)
    );

    // 7. Thirty seconds later the app shows the next code.
    clock.set(env.now() + Duration::from_secs(30));
    let code = app.code(&env)?;
    let step = authn
        .submit(
            tenant.id,
            flow.expose(),
            FactorResponse::Totp(&code),
            &client,
        )
        .await?;
    let LoginStatus::Authenticated(auth) = step.status else {
        return Err(Failure::from("the TOTP code should finish the login"));
    };
    let factors: Vec<String> = auth
        .record()
        .factors
        .iter()
        .map(|f| f.kind.to_string())
        .collect();
    println!(
        "7. code {code} accepted: signed in by method `{}` with [{}]",
        auth.record().method,
        factors.join(", ")
    );

    // 8. A session for the client, then a check of its token, as every
    //    request would make.
    let issued = sessions.issue(&auth, &client).await?;
    let session = sessions.validate(issued.session_token.expose()).await?;
    if session.user_id != alice.id {
        return Err(Failure::from("the session belongs to someone else"));
    }
    let amr: Vec<String> = session
        .auth
        .factors
        .iter()
        .map(|f| f.kind.to_string())
        .collect();
    println!(
        "8. session {} valid until {}, remembers factors [{}]",
        session.id,
        session.expires_at,
        amr.join(", ")
    );
    Ok(())
}

/// A short account of a flow's status.
fn describe(status: &LoginStatus) -> String {
    match status {
        LoginStatus::AwaitingFactor { step, accepts, .. } => {
            let kinds: Vec<String> = accepts.iter().map(ToString::to_string).collect();
            format!("awaiting step {} ({})", step + 1, kinds.join(" or "))
        }
        LoginStatus::Authenticated(auth) => format!("authenticated by `{}`", auth.record().method),
        other => format!("{other:?}"),
    }
}

/// Why the example stopped: a countersign error or an outcome it did not
/// expect.
type Failure = Box<dyn std::error::Error>;

/// What an authenticator app keeps after scanning the enrolment QR code:
/// the shared secret and the code parameters (the tenant's defaults here).
struct AuthenticatorApp {
    credential: TotpCredential,
}

impl AuthenticatorApp {
    /// Decode the base32 secret (RFC 4648, unpadded) as an app does.
    fn scan(secret_base32: &str) -> Result<Self, Failure> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let (mut secret, mut buffer, mut bits) = (Vec::new(), 0u32, 0u32);
        for c in secret_base32.trim_end_matches('=').bytes() {
            let Some(value) = ALPHABET.iter().position(|a| *a == c) else {
                return Err(Failure::from("the secret is not base32"));
            };
            buffer = (buffer << 5) | u32::try_from(value).unwrap_or_default();
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                secret.push(u8::try_from((buffer >> bits) & 0xff).unwrap_or_default());
            }
        }
        let settings = TotpSettings::default();
        let credential = TotpCredential {
            secret: secret.into(),
            digits: settings.digits,
            step_secs: settings.step_secs,
            algorithm: settings.algorithm,
            last_step: None,
            confirmed: true,
            created_at: Env::system().now(),
        };
        Ok(Self { credential })
    }

    /// The code the app shows at the environment's current time.
    fn code(&self, env: &Env) -> Result<String, Error> {
        let now = u64::try_from(env.now().timestamp()).unwrap_or_default();
        totp_code(&self.credential, now)
    }
}
