//! A core service over the memory store. Core's `NoticeSecret` has no
//! public constructor, so the tests take real secrets from notices core
//! sends (an address confirmation) and reuse them for every notice.

use chrono::{DateTime, TimeZone, Utc};
use countersign_core::{
    AccountState, Argon2Params, AuthnService, ClientInfo, EmailAddress, EmailOtpSettings,
    EmailSender, Enroll, Env, FactorKind, FactorSettings, NewTenant, NewUser, Notice,
    NoticeRenderer, NoticeSecret, Outbox, PasswordHasher, PasswordSettings, PlainText,
    SecurityEvent, Tenant, User,
};
use countersign_memory::MemoryStore;

/// Every fixture user's password.
pub const PASSWORD: &str = "correct horse battery staple";

/// A service with a tenant that signs in with a password, then an email
/// code (method `mfa`).
pub struct Core {
    pub svc: AuthnService<MemoryStore>,
    pub tenant: Tenant,
    pub client: ClientInfo,
}

impl Core {
    /// The `acme` tenant named `name`, rendering with `renderer` and
    /// sending with `sender`.
    pub async fn new(name: &str, sender: impl EmailSender, renderer: impl NoticeRenderer) -> Self {
        let (env, _clock) = Env::manual(7);
        let hasher = PasswordHasher::new(Argon2Params::INSECURE_TEST, 2).unwrap();
        let svc = AuthnService::new(MemoryStore::new(), env, hasher)
            .with_notice_renderer(renderer)
            .with_email_sender(sender);
        let spec = NewTenant::new("acme", name)
            .adopt(FactorSettings::Password(PasswordSettings::default()))
            .adopt(FactorSettings::EmailOtp(EmailOtpSettings::default()))
            .method("mfa", &[FactorKind::Password, FactorKind::EmailOtp])
            .unwrap();
        let tenant = svc.provision_tenant(spec).await.unwrap();
        let client = ClientInfo::new(Some([198, 51, 100, 4].into()), Some("mail-tests/1"));
        Self {
            svc,
            tenant,
            client,
        }
    }

    /// An active user with [`PASSWORD`].
    pub async fn user(&self, identifier: &str) -> User {
        let new = NewUser {
            identifier,
            password: Some(PASSWORD),
            state: Some(AccountState::Active),
            ..NewUser::default()
        };
        self.svc
            .register_user(self.tenant.id, new, &self.client)
            .await
            .unwrap()
    }

    /// Enrol `address` for email codes (core mails a confirmation code).
    pub async fn enroll_email(&self, user: &User, address: &str) {
        self.svc
            .enroll(
                self.tenant.id,
                user.id,
                Enroll::EmailOtp { address },
                &self.client,
            )
            .await
            .unwrap();
    }
}

/// A real secret from core, and the tenant it was made for.
pub async fn secret() -> (NoticeSecret, Tenant) {
    let outbox = Outbox::new();
    let core = Core::new("Acme Inc", outbox.clone(), PlainText).await;
    let user = core.user("alice").await;
    core.enroll_email(&user, "alice@example.com").await;
    let message = outbox.last_to("alice@example.com").unwrap();
    match message.notice {
        Notice::AddressConfirmation { code, .. } => (code, core.tenant),
        other => panic!("expected an address confirmation, got {other:?}"),
    }
}

/// The fixed expiry the tests put on notices.
pub fn expires_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap()
}

pub fn alice() -> EmailAddress {
    EmailAddress::parse("alice@example.com").unwrap()
}

/// One of every notice core defines (every factor kind for the factor
/// events), carrying `secret` where the notice has one.
pub fn all_notices(secret: &NoticeSecret) -> Vec<Notice> {
    let at = expires_at();
    let mut all = vec![
        Notice::LoginCode {
            code: secret.clone(),
            expires_at: at,
        },
        Notice::AddressConfirmation {
            code: secret.clone(),
            expires_at: at,
        },
        Notice::PasswordReset {
            token: secret.clone(),
            expires_at: at,
        },
        Notice::Security(SecurityEvent::NewSignIn),
        Notice::Security(SecurityEvent::PasswordChanged),
        Notice::Security(SecurityEvent::AccountDeactivated),
        Notice::Security(SecurityEvent::RegistrationAttempted),
    ];
    for kind in FactorKind::ALL {
        all.push(Notice::Security(SecurityEvent::FactorAdded(*kind)));
        all.push(Notice::Security(SecurityEvent::FactorRemoved(*kind)));
    }
    for n in &all {
        // A new notice or event fails to compile here: add it above.
        match n {
            Notice::LoginCode { .. }
            | Notice::AddressConfirmation { .. }
            | Notice::PasswordReset { .. } => {}
            Notice::Security(e) => match e {
                SecurityEvent::NewSignIn
                | SecurityEvent::PasswordChanged
                | SecurityEvent::FactorAdded(_)
                | SecurityEvent::FactorRemoved(_)
                | SecurityEvent::AccountDeactivated
                | SecurityEvent::RegistrationAttempted => {}
            },
        }
    }
    all
}

/// The secret `notice` carries, if any.
pub fn secret_of(notice: &Notice) -> Option<&str> {
    match notice {
        Notice::LoginCode { code, .. } | Notice::AddressConfirmation { code, .. } => {
            Some(code.expose())
        }
        Notice::PasswordReset { token, .. } => Some(token.expose()),
        Notice::Security(_) => None,
    }
}
