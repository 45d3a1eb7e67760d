//! `Templates`: every notice, both bodies, branding, escaping.

use std::sync::Arc;

use countersign_core::{Notice, NoticeRenderer, SecurityEvent};
use countersign_mail::{Branding, Brands, FromAddress, Templates};
use url::Url;

use crate::support::core::{alice, all_notices, expires_at, secret, secret_of};

#[tokio::test]
async fn every_notice_renders_text_and_html_naming_the_product() {
    let (secret, tenant) = secret().await;
    let templates =
        Templates::with_branding(Brands::new().with(tenant.id, Branding::new("Acme Cloud")));
    let mut subjects = std::collections::HashSet::new();
    for notice in all_notices(&secret) {
        let m = templates.render(&tenant, &alice(), &notice);
        let html = m.html.as_deref().expect("an html body");
        assert!(!m.text.trim().is_empty(), "{notice:?}");
        assert!(m.text.contains("Acme Cloud"), "{notice:?}: {}", m.text);
        assert!(html.contains("Acme Cloud"), "{notice:?}: {html}");
        assert!(
            m.subject.contains("Acme Cloud"),
            "{notice:?}: {}",
            m.subject
        );
        assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
        assert_eq!(m.to, alice());
        assert_eq!(m.tenant_id, tenant.id);
        assert_eq!(m.notice, notice);
        if let Some(code) = secret_of(&notice) {
            assert!(m.text.contains(code), "{notice:?}: code not in text");
            assert!(html.contains(code), "{notice:?}: code not in html");
            assert!(!m.subject.contains(code), "{notice:?}: code in subject");
            assert!(m.text.contains("2030-01-02 03:04 UTC"), "{}", m.text);
        }
        subjects.insert((notice.code(), m.subject.clone()));
    }
    // Each kind of notice has its own subject (factor events share one
    // per direction).
    let distinct: std::collections::HashSet<_> = subjects.iter().map(|(_, s)| s).collect();
    let codes: std::collections::HashSet<_> = subjects.iter().map(|(c, _)| c).collect();
    assert_eq!(distinct.len(), codes.len());
}

#[tokio::test]
async fn factor_events_name_the_factor() {
    let (_, tenant) = secret().await;
    let t = Templates::new();
    let added = |k| {
        t.render(
            &tenant,
            &alice(),
            &Notice::Security(SecurityEvent::FactorAdded(k)),
        )
        .text
    };
    assert!(added(countersign_core::FactorKind::Passkey).contains("A passkey was added"));
    assert!(added(countersign_core::FactorKind::Totp).contains("authenticator app"));
}

#[tokio::test]
async fn html_escapes_a_hostile_product_name() {
    let (secret, tenant) = secret().await;
    let name = "<script>alert(\"x\")</script> & 'Co'";
    let templates = Templates::with_branding(Brands::new().with_fallback(Branding::new(name)));
    for notice in all_notices(&secret) {
        let m = templates.render(&tenant, &alice(), &notice);
        let html = m.html.unwrap();
        assert!(!html.contains("<script>"), "{notice:?}: {html}");
        assert!(!html.contains("alert(\"x\")"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;Co&#39;"),
            "{html}"
        );
        // The text body is plain text: the name as it is.
        assert!(m.text.contains(name));
    }
}

#[tokio::test]
async fn the_subject_cannot_add_header_lines() {
    let (secret, tenant) = secret().await;
    let t = Templates::with_branding(
        Brands::new().with_fallback(Branding::new("Acme\r\nBcc: evil@example.com")),
    );
    for notice in all_notices(&secret) {
        let subject = t.render(&tenant, &alice(), &notice).subject;
        assert!(!subject.contains(['\r', '\n']), "{subject:?}");
    }
}

#[tokio::test]
async fn without_branding_the_tenant_name_is_the_product_name() {
    let (secret, tenant) = secret().await;
    let m = Templates::new().render(
        &tenant,
        &alice(),
        &Notice::LoginCode {
            code: secret,
            expires_at: expires_at(),
        },
    );
    assert_eq!(m.subject, "Your Acme Inc sign-in code");
    assert!(m.text.starts_with("Acme Inc\n"));
}

#[tokio::test]
async fn branding_is_looked_up_per_tenant() {
    let (secret, tenant) = secret().await;
    let mut other = tenant.clone();
    other.id = countersign_core::TenantId::generate(&countersign_core::Env::manual(99).0).unwrap();
    other.name = "Other Org".into();
    let brands = Arc::new(Brands::new().with(tenant.id, Branding::new("Acme Cloud")));
    let t = Templates::with_branding(brands);
    let notice = Notice::LoginCode {
        code: secret,
        expires_at: expires_at(),
    };
    assert!(
        t.render(&tenant, &alice(), &notice)
            .subject
            .contains("Acme Cloud")
    );
    assert!(
        t.render(&other, &alice(), &notice)
            .subject
            .contains("Other Org")
    );
}

#[tokio::test]
async fn a_password_reset_links_to_the_tenant_page_with_the_token() {
    let (secret, tenant) = secret().await;
    let base = Url::parse("https://acme.example/reset?lang=en").unwrap();
    let t = Templates::with_branding(
        Brands::new().with_fallback(
            Branding::new("Acme")
                .with_password_reset_url(base)
                .with_from(FromAddress::parse("Acme <no-reply@acme.example>").unwrap()),
        ),
    );
    let token = secret.expose().to_owned();
    let m = t.render(
        &tenant,
        &alice(),
        &Notice::PasswordReset {
            token: secret,
            expires_at: expires_at(),
        },
    );
    let link = format!("https://acme.example/reset?lang=en&token={token}");
    assert!(m.text.contains(&link), "{}", m.text);
    let html = m.html.unwrap();
    let escaped = format!("href=\"https://acme.example/reset?lang=en&amp;token={token}\"");
    assert!(html.contains(&escaped), "{html}");
}
