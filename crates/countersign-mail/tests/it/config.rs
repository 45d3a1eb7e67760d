//! Building a sender: validation, typed errors, redaction.

use std::time::Duration;

use countersign_mail::{
    ErrorKind, FromAddress, SmtpConfig, SmtpCredentials, SmtpSecurity, SmtpSender,
};

const PASSWORD: &str = "hunter2-very-secret";

fn config() -> SmtpConfig {
    SmtpConfig::new("smtp.example.com", "Acme <no-reply@acme.example>")
        .with_credentials(SmtpCredentials::new("mailer", PASSWORD))
}

#[test]
fn debug_of_the_config_redacts_the_password() {
    let shown = format!("{:?} {:#?}", config(), config());
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(shown.contains("mailer"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
}

#[test]
fn debug_of_the_sender_redacts_the_password() {
    let sender = SmtpSender::new(config()).unwrap();
    let shown = format!("{sender:?} {sender:#?}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(shown.contains("smtp.example.com"), "{shown}");
}

#[test]
fn a_bad_from_address_is_an_invalid_config_error() {
    for from in ["", "not an address", "Acme <no-reply>", "a@b@c"] {
        let mut c = config();
        c.from = from.to_owned();
        let err = SmtpSender::new(c).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{from}: {err}");
        assert!(
            matches!(err, countersign_mail::Error::FromAddress { .. }),
            "{err:?}"
        );
    }
    let err = FromAddress::parse("nope").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert_eq!(err.to_string(), "invalid from address `nope`");
}

#[test]
fn plain_mode_refuses_credentials() {
    let err = SmtpSender::new(config().with_security(SmtpSecurity::Plain)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("credentials need tls"), "{err}");
    let mut plain = config().with_security(SmtpSecurity::Plain);
    plain.credentials = None;
    SmtpSender::new(plain).unwrap();
}

#[test]
fn out_of_range_settings_are_refused() {
    let cases = [
        config().with_port(0),
        config().with_timeout(Duration::ZERO),
        config().with_idle_timeout(Duration::ZERO),
        config().with_pool_size(0),
        config().with_helo_name(" "),
        SmtpConfig::new("", "no-reply@acme.example"),
        SmtpConfig::new("smtp example.com", "no-reply@acme.example"),
    ];
    for c in cases {
        let err = SmtpSender::new(c.clone()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{c:?}: {err}");
    }
}

#[test]
fn each_security_mode_builds_with_its_standard_port() {
    for (mode, port) in [
        (SmtpSecurity::StartTls, 587),
        (SmtpSecurity::Tls, 465),
        (SmtpSecurity::Plain, 25),
    ] {
        let mut c = config().with_security(mode);
        if mode == SmtpSecurity::Plain {
            c.credentials = None;
        }
        assert_eq!(c.port, port);
        SmtpSender::new(c).unwrap();
    }
}

#[test]
fn a_sender_used_in_a_runtime_can_be_dropped_outside_one() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let sender = SmtpSender::new(
        SmtpConfig::new("127.0.0.1", "no-reply@acme.example")
            .with_security(SmtpSecurity::Plain)
            .with_port(port)
            .with_timeout(Duration::from_secs(2)),
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (secret, tenant) = crate::support::core::secret().await;
        let message = countersign_core::NoticeRenderer::render(
            &countersign_mail::Templates::new(),
            &tenant,
            &crate::support::core::alice(),
            &countersign_core::Notice::LoginCode {
                code: secret,
                expires_at: crate::support::core::expires_at(),
            },
        );
        // Connection refused, but the pool now exists.
        let err = sender.send_message(&message).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    });
    drop(runtime);
    drop(sender); // lettre's pool would spawn here and panic; it must not
}
