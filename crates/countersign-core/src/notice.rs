//! Outgoing mail as typed notices. Core decides *what* to tell a user (a
//! [`Notice`]); a [`NoticeRenderer`] decides the wording (subject, text,
//! HTML), and an [`EmailSender`](crate::EmailSender) delivers it. The
//! built-in [`PlainText`] renderer is short and unbranded; the mail crate
//! (countersign-mail) supplies templates per tenant.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::email::EmailMessage;
use crate::factor::FactorKind;
use crate::model::{EmailAddress, Tenant};

/// A one-time secret carried by a notice (a code, a reset token). Its
/// `Debug` output is redacted, so logging a notice never leaks it.
#[derive(Clone, PartialEq, Eq)]
pub struct NoticeSecret(String);

impl NoticeSecret {
    /// Wrap a secret: core does it for the notices it sends; a renderer
    /// outside core does it to preview or test its templates.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the rendered message only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NoticeSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NoticeSecret(<redacted>)")
    }
}

/// What core asks to tell a user by mail. Exhaustive on purpose: every
/// renderer words every notice, and a new notice is a compile error in
/// each renderer rather than a silent fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A one-time code that completes a sign-in step (the email-code factor).
    LoginCode {
        /// The code.
        code: NoticeSecret,
        /// When it stops working.
        expires_at: DateTime<Utc>,
    },
    /// A one-time code that proves the address is the user's.
    AddressConfirmation {
        /// The code.
        code: NoticeSecret,
        /// When it stops working.
        expires_at: DateTime<Utc>,
    },
    /// A single-use token that lets the user choose a new password.
    PasswordReset {
        /// The token (the renderer builds the link around it).
        token: NoticeSecret,
        /// When it stops working.
        expires_at: DateTime<Utc>,
    },
    /// Something changed on the account that its owner should know of.
    Security(SecurityEvent),
}

impl Notice {
    /// A stable snake_case code naming the notice (for templates, metrics).
    pub fn code(&self) -> &'static str {
        match self {
            Notice::LoginCode { .. } => "login_code",
            Notice::AddressConfirmation { .. } => "address_confirmation",
            Notice::PasswordReset { .. } => "password_reset",
            Notice::Security(e) => e.code(),
        }
    }
}

/// The account changes a [`Notice::Security`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityEvent {
    /// A new sign-in to the account.
    NewSignIn,
    /// The password changed.
    PasswordChanged,
    /// A factor was added.
    FactorAdded(FactorKind),
    /// A factor was removed.
    FactorRemoved(FactorKind),
    /// The account was deactivated.
    AccountDeactivated,
    /// Someone tried to register a new account with this address, which
    /// already has one (nothing was created).
    RegistrationAttempted,
}

impl SecurityEvent {
    /// A stable snake_case code naming the event.
    pub fn code(self) -> &'static str {
        match self {
            SecurityEvent::NewSignIn => "new_sign_in",
            SecurityEvent::PasswordChanged => "password_changed",
            SecurityEvent::FactorAdded(_) => "factor_added",
            SecurityEvent::FactorRemoved(_) => "factor_removed",
            SecurityEvent::AccountDeactivated => "account_deactivated",
            SecurityEvent::RegistrationAttempted => "registration_attempted",
        }
    }
}

/// Turns a notice into a message. Replace the default ([`PlainText`]) with
/// [`AuthnService::with_notice_renderer`](crate::AuthnService::with_notice_renderer).
pub trait NoticeRenderer: Send + Sync + 'static {
    /// The message telling `to`, a user of `tenant`, about `notice`.
    fn render(&self, tenant: &Tenant, to: &EmailAddress, notice: &Notice) -> EmailMessage;
}

/// The built-in wording: short plain text, naming the tenant.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainText;

impl NoticeRenderer for PlainText {
    fn render(&self, tenant: &Tenant, to: &EmailAddress, notice: &Notice) -> EmailMessage {
        let name = &tenant.name;
        let ignore = "If you did not ask for it, ignore this message.";
        let (subject, text) = match notice {
            Notice::LoginCode { code, .. } => (
                format!("Your {name} sign-in code"),
                format!(
                    "Your code:\n\n    {}\n\nIt works once and expires soon. {ignore}\n",
                    code.expose()
                ),
            ),
            Notice::AddressConfirmation { code, .. } => (
                format!("Confirm your email address for {name}"),
                format!(
                    "Your confirmation code:\n\n    {}\n\nIt works once and expires soon. {ignore}\n",
                    code.expose()
                ),
            ),
            Notice::PasswordReset { token, .. } => (
                format!("Reset your {name} password"),
                format!(
                    "Your password reset token:\n\n    {}\n\nIt works once and expires soon. {ignore}\n",
                    token.expose()
                ),
            ),
            Notice::Security(event) => {
                let what = match event {
                    SecurityEvent::NewSignIn => "Someone signed in to your account.".to_owned(),
                    SecurityEvent::PasswordChanged => "Your password was changed.".to_owned(),
                    SecurityEvent::FactorAdded(k) => format!("A sign-in factor ({k}) was added."),
                    SecurityEvent::FactorRemoved(k) => {
                        format!("A sign-in factor ({k}) was removed.")
                    }
                    SecurityEvent::AccountDeactivated => "Your account was deactivated.".to_owned(),
                    SecurityEvent::RegistrationAttempted => format!(
                        "Someone tried to sign up for {name} with this address, which already has an account. If it was you, sign in or reset your password."
                    ),
                };
                (
                    format!("Security notice from {name}"),
                    format!("{what}\n\nIf this was not you, contact {name} at once.\n"),
                )
            }
        };
        EmailMessage {
            tenant_id: tenant.id,
            to: to.clone(),
            subject,
            text,
            html: None,
            notice: notice.clone(),
        }
    }
}
