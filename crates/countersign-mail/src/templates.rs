//! The branded wording of every notice, as plain text and HTML.
//!
//! Each notice is worded once, as a [`Content`] (subject, paragraphs, the
//! code or link), and laid out twice, so the text and HTML bodies always
//! say the same thing. Every value put into HTML goes through [`escape`].

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use countersign_core::{
    EmailAddress, EmailMessage, FactorKind, Notice, NoticeRenderer, SecurityEvent, Tenant,
};
use url::Url;

use crate::branding::{Branding, BrandingSource};

/// A [`NoticeRenderer`] that words every [`Notice`] in the tenant's
/// [`Branding`] and renders both a plain-text and an HTML body.
///
/// Guarantees:
/// - every notice core defines has its own wording (a new notice is a
///   compile error here, not a silent fallback);
/// - the text and HTML bodies carry the same wording and the same code;
/// - every value in the HTML body (product name, code, link) is
///   HTML-escaped, so a tenant named `<script>` renders as text;
/// - the subject never carries the code or token, and control characters
///   in the product name are replaced, so it cannot add header lines;
/// - expiry times are shown in UTC, formatted from the notice (rendering
///   reads no clock).
#[derive(Clone)]
pub struct Templates {
    brands: Arc<dyn BrandingSource>,
}

impl Templates {
    /// Templates without branding: the product name is the tenant's name.
    pub fn new() -> Self {
        Self::with_branding(())
    }

    /// Templates that look each tenant's branding up in `source`.
    pub fn with_branding(source: impl BrandingSource) -> Self {
        Self {
            brands: Arc::new(source),
        }
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").finish_non_exhaustive()
    }
}

impl NoticeRenderer for Templates {
    fn render(&self, tenant: &Tenant, to: &EmailAddress, notice: &Notice) -> EmailMessage {
        let branding = self
            .brands
            .branding(tenant.id)
            .unwrap_or_else(|| Branding::new(tenant.name.clone()));
        let content = word(&branding, notice);
        EmailMessage {
            tenant_id: tenant.id,
            to: to.clone(),
            subject: content.subject.clone(),
            text: content.text(&branding.product_name),
            html: Some(content.html(&branding.product_name)),
            notice: notice.clone(),
        }
    }
}

/// What stands out in a message: a code to type, or a link to follow.
enum Highlight {
    Code(String),
    Link { label: &'static str, url: String },
}

/// One notice, worded: laid out as text by [`Content::text`] and as HTML
/// by [`Content::html`].
struct Content {
    subject: String,
    lead: String,
    highlight: Option<Highlight>,
    after: Vec<String>,
}

/// The wording of `notice` for `branding`.
fn word(branding: &Branding, notice: &Notice) -> Content {
    let p = branding.product_name.as_str();
    let subject_name = header_safe(p);
    match notice {
        Notice::LoginCode { code, expires_at } => Content {
            subject: format!("Your {subject_name} sign-in code"),
            lead: format!("Use this code to finish signing in to {p}:"),
            highlight: Some(Highlight::Code(code.expose().to_owned())),
            after: vec![
                expiry(*expires_at),
                "Do not share this code with anyone. If you did not try to sign in, \
                 ignore this message: without the code, nobody can finish signing in."
                    .to_owned(),
            ],
        },
        Notice::AddressConfirmation { code, expires_at } => Content {
            subject: format!("Confirm your email address for {subject_name}"),
            lead: format!("Use this code to confirm that this address is yours on {p}:"),
            highlight: Some(Highlight::Code(code.expose().to_owned())),
            after: vec![
                expiry(*expires_at),
                format!("If you did not add this address to a {p} account, ignore this message."),
            ],
        },
        Notice::PasswordReset { token, expires_at } => {
            let (lead, highlight) = match &branding.password_reset_url {
                Some(base) => (
                    "Follow this link to choose a new password:".to_owned(),
                    Highlight::Link {
                        label: "Choose a new password",
                        url: reset_link(base, token.expose()),
                    },
                ),
                None => (
                    "Use this token to choose a new password:".to_owned(),
                    Highlight::Code(token.expose().to_owned()),
                ),
            };
            Content {
                subject: format!("Reset your {subject_name} password"),
                lead: format!("Someone asked to reset the password of your {p} account. {lead}"),
                highlight: Some(highlight),
                after: vec![
                    expiry(*expires_at),
                    "If you did not ask for this, ignore this message: your password stays \
                     as it is."
                        .to_owned(),
                ],
            }
        }
        Notice::Security(event) => security(p, &subject_name, *event),
    }
}

/// The wording of a security notice.
fn security(p: &str, subject_name: &str, event: SecurityEvent) -> Content {
    let not_you = format!(
        "If this was you, there is nothing to do. If it was not, change your password \
         and contact {p} support at once."
    );
    let (subject, lead, after) = match event {
        SecurityEvent::NewSignIn => (
            format!("New sign-in to your {subject_name} account"),
            format!("Someone just signed in to your {p} account."),
            not_you,
        ),
        SecurityEvent::PasswordChanged => (
            format!("Your {subject_name} password was changed"),
            format!("The password of your {p} account was changed."),
            not_you,
        ),
        SecurityEvent::FactorAdded(kind) => (
            format!("A sign-in method was added to your {subject_name} account"),
            format!(
                "{} was added to your {p} account as a way to sign in.",
                factor_label(kind)
            ),
            not_you,
        ),
        SecurityEvent::FactorRemoved(kind) => (
            format!("A sign-in method was removed from your {subject_name} account"),
            format!(
                "{} was removed from your {p} account and no longer signs you in.",
                factor_label(kind)
            ),
            not_you,
        ),
        SecurityEvent::AccountDeactivated => (
            format!("Your {subject_name} account was deactivated"),
            format!("Your {p} account was deactivated: you can no longer sign in to it."),
            format!("If you did not expect this, contact {p} support."),
        ),
        SecurityEvent::RegistrationAttempted => (
            format!("Someone tried to sign up for {subject_name} with your address"),
            format!(
                "Someone tried to create a {p} account with this address, which already has one. Nothing was created or changed."
            ),
            "If it was you, sign in, or reset your password if you have forgotten it. If it was not you, you can ignore this message.".to_owned(),
        ),
    };
    Content {
        subject,
        lead,
        highlight: None,
        after: vec![after],
    }
}

/// How a factor is named to its user.
fn factor_label(kind: FactorKind) -> &'static str {
    match kind {
        FactorKind::Password => "A password",
        FactorKind::Totp => "An authenticator app",
        FactorKind::RecoveryCodes => "A set of recovery codes",
        FactorKind::EmailOtp => "Codes sent by email",
        FactorKind::Passkey => "A passkey",
        FactorKind::OidcIdToken => "Sign-in through an identity provider",
    }
}

fn expiry(at: DateTime<Utc>) -> String {
    format!(
        "It works once and expires at {} UTC.",
        at.format("%Y-%m-%d %H:%M")
    )
}

/// `base` with `token` as its `token` query parameter (percent-encoded).
fn reset_link(base: &Url, token: &str) -> String {
    let mut url = base.clone();
    url.query_pairs_mut().append_pair("token", token);
    url.into()
}

/// `s` for a header: control characters (CR and LF included) become
/// spaces.
fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `s` with the five HTML-significant characters escaped, safe in element
/// content and in quoted attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl Content {
    /// The plain-text body.
    fn text(&self, product: &str) -> String {
        let mut out = format!("{product}\n\n{}\n\n", self.lead);
        match &self.highlight {
            Some(Highlight::Code(code)) => {
                let _ = write!(out, "    {code}\n\n");
            }
            Some(Highlight::Link { url, .. }) => {
                let _ = write!(out, "{url}\n\n");
            }
            None => {}
        }
        for p in &self.after {
            let _ = write!(out, "{p}\n\n");
        }
        let _ = writeln!(out, "-- \n{product}");
        out
    }

    /// The HTML body: one small document with inline styles (mail clients
    /// drop style sheets), every value escaped.
    fn html(&self, product: &str) -> String {
        let product = escape(product);
        let mut out = String::with_capacity(2048);
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{subject}</title>\n</head>\n\
             <body style=\"margin:0;padding:24px;background:#f4f4f5;color:#18181b;\
             font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;font-size:16px;\
             line-height:1.5\">\n\
             <div style=\"max-width:480px;margin:0 auto;background:#ffffff;padding:24px;\
             border-radius:8px\">\n\
             <p style=\"margin:0 0 16px;font-size:18px;font-weight:bold\">{product}</p>\n\
             <p>{lead}</p>\n",
            subject = escape(&self.subject),
            lead = escape(&self.lead),
        );
        match &self.highlight {
            Some(Highlight::Code(code)) => {
                let _ = writeln!(
                    out,
                    "<p style=\"font-family:ui-monospace,Menlo,Consolas,monospace;\
                     font-size:28px;font-weight:bold;letter-spacing:4px\">{}</p>",
                    escape(code)
                );
            }
            Some(Highlight::Link { label, url }) => {
                let url = escape(url);
                let _ = writeln!(
                    out,
                    "<p><a href=\"{url}\" style=\"display:inline-block;padding:10px 16px;\
                     background:#18181b;color:#ffffff;border-radius:6px;\
                     text-decoration:none\">{label}</a></p>\n\
                     <p style=\"font-size:13px;color:#52525b;word-break:break-all\">{url}</p>",
                    label = escape(label),
                );
            }
            None => {}
        }
        for p in &self.after {
            let _ = writeln!(out, "<p>{}</p>", escape(p));
        }
        let _ = write!(
            out,
            "<p style=\"margin-top:24px;font-size:13px;color:#52525b\">{product}</p>\n\
             </div>\n</body>\n</html>\n"
        );
        out
    }
}
