//! `SmtpSender` end to end against the in-process server: what arrives,
//! error kinds, timeouts, the pool, and silence about secrets.

use std::time::Duration;

use countersign_core::{
    Confirm, EmailMessage, EmailSender, Enroll, FactorResponse, LoginStatus, Notice,
    NoticeRenderer, Outbox,
};
use countersign_mail::{
    Branding, Brands, ErrorKind, FromAddress, SmtpConfig, SmtpSecurity, SmtpSender, Templates,
};
use tokio::time::{Instant, timeout};

use crate::support::capture::Capture;
use crate::support::core::{Core, PASSWORD, alice, expires_at, secret};
use crate::support::mime::{self, Mail};
use crate::support::smtp_server::{Behaviour, Server};

/// Every test here ends within this, whatever the server does.
const BOUND: Duration = Duration::from_secs(10);

fn plain(server: &Server) -> SmtpConfig {
    SmtpConfig::new("127.0.0.1", "Login <login@countersign.test>")
        .with_security(SmtpSecurity::Plain)
        .with_port(server.addr.port())
        .with_timeout(Duration::from_secs(3))
        .with_helo_name("mail-tests.local")
}

/// The code in a text body: the indented line.
fn code_in(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("    "))
        .expect("an indented code line")
        .trim()
        .to_owned()
}

/// A login code for alice, worded by unbranded templates, and its code.
async fn login_code_message() -> (EmailMessage, String) {
    let (secret, tenant) = secret().await;
    let code = secret.expose().to_owned();
    let notice = Notice::LoginCode {
        code: secret,
        expires_at: expires_at(),
    };
    let m = Templates::new().render(&tenant, &alice(), &notice);
    (m, code)
}

#[tokio::test]
async fn a_login_code_rendered_by_templates_arrives_intact_over_smtp() {
    timeout(BOUND, async {
        let mut server = Server::start(Behaviour::Accept).await;
        let from = FromAddress::parse("Acme <no-reply@acme.example>").unwrap();
        let brands = std::sync::Arc::new(
            Brands::new().with_fallback(Branding::new("Acme Cloud").with_from(from)),
        );
        let (secret, tenant) = secret().await;
        let sent_code = secret.expose().to_owned();
        let message = Templates::with_branding(brands.clone()).render(
            &tenant,
            &alice(),
            &Notice::LoginCode {
                code: secret,
                expires_at: expires_at(),
            },
        );
        let sender = SmtpSender::new(plain(&server))
            .unwrap()
            .with_branding(brands);
        sender.send(&message).await.unwrap();

        let received = server.next().await;
        assert_eq!(received.mail_from, "<no-reply@acme.example>");
        assert_eq!(received.rcpt_to, vec!["<alice@example.com>".to_owned()]);
        let mail: Mail = mime::parse(&received.data);
        assert!(
            mail.header("From")
                .unwrap()
                .contains("no-reply@acme.example")
        );
        assert_eq!(mail.header("To"), Some("alice@example.com"));
        assert_eq!(mail.header("Subject"), Some("Your Acme Cloud sign-in code"));
        let message_id = mail.header("Message-ID").unwrap();
        assert!(message_id.ends_with("@acme.example>"), "{message_id}");
        let text = mail.text.as_deref().expect("a text part");
        let html = mail.html.as_deref().expect("an html part");
        assert_eq!(code_in(text), sent_code);
        assert_eq!(text, message.text);
        assert_eq!(html, message.html.as_deref().unwrap());
        assert!(html.contains(&sent_code));
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_message_without_html_is_sent_as_plain_text() {
    timeout(BOUND, async {
        let mut server = Server::start(Behaviour::Accept).await;
        let (mut message, code) = login_code_message().await;
        message.html = None;
        let sender = SmtpSender::new(plain(&server)).unwrap();
        sender.send(&message).await.unwrap();
        let mail = mime::parse(&server.next().await.data);
        assert!(
            mail.header("Content-Type")
                .unwrap()
                .starts_with("text/plain")
        );
        assert!(mail.html.is_none());
        assert_eq!(code_in(mail.text.as_deref().unwrap()), code);
        // The configured From, as the tenant has none.
        assert!(
            mail.header("From")
                .unwrap()
                .contains("login@countersign.test")
        );
    })
    .await
    .expect("bounded");
}

/// Sends to the SMTP server and keeps a copy, so the test knows what core
/// sent.
struct Tee(Outbox, SmtpSender);

impl EmailSender for Tee {
    type Error = countersign_mail::Error;

    async fn send(&self, message: &EmailMessage) -> Result<(), Self::Error> {
        let _ = self.0.send(message).await;
        self.1.send(message).await
    }
}

#[tokio::test]
async fn core_sign_in_with_a_code_received_over_smtp() {
    timeout(BOUND, async {
        let mut server = Server::start(Behaviour::Accept).await;
        let outbox = Outbox::new();
        let sender = SmtpSender::new(plain(&server)).unwrap();
        let core = Core::new("Acme Inc", Tee(outbox.clone(), sender), Templates::new()).await;
        let user = core.user("alice").await;
        let tenant = core.tenant.id;

        // Enrolment: the confirmation code comes by mail.
        core.svc
            .enroll(
                tenant,
                user.id,
                Enroll::EmailOtp {
                    address: "alice@example.com",
                },
                &core.client,
            )
            .await
            .unwrap();
        let mail = mime::parse(&server.next().await.data);
        assert_eq!(
            mail.header("Subject"),
            Some("Confirm your email address for Acme Inc")
        );
        let code = code_in(mail.text.as_deref().unwrap());
        core.svc
            .confirm(
                tenant,
                user.id,
                Confirm::EmailOtp { code: &code },
                &core.client,
            )
            .await
            .unwrap();

        // Login: password, then the code from the mail.
        let (flow, _) = core
            .svc
            .begin_login(tenant, "alice", Some("mfa"), &core.client)
            .await
            .unwrap();
        let s = core
            .svc
            .submit(
                tenant,
                flow.expose(),
                FactorResponse::Password(PASSWORD),
                &core.client,
            )
            .await
            .unwrap();
        assert!(s.accepted());
        core.svc
            .send_email_code(tenant, flow.expose(), &core.client)
            .await
            .unwrap();
        let mail = mime::parse(&server.next().await.data);
        assert_eq!(mail.header("Subject"), Some("Your Acme Inc sign-in code"));
        let received = code_in(mail.text.as_deref().unwrap());
        let sent = match outbox.last_to("alice@example.com").unwrap().notice {
            Notice::LoginCode { code, .. } => code.expose().to_owned(),
            other => panic!("expected a login code, got {other:?}"),
        };
        assert_eq!(received, sent);
        let s = core
            .svc
            .submit(
                tenant,
                flow.expose(),
                FactorResponse::EmailCode(&received),
                &core.client,
            )
            .await
            .unwrap();
        assert!(
            matches!(s.status, LoginStatus::Authenticated(_)),
            "{:?}",
            s.status
        );
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn smtp_sender_logs_neither_the_code_nor_the_body() {
    timeout(BOUND, async {
        let mut server = Server::start(Behaviour::Accept).await;
        let (message, code) = login_code_message().await;
        let sender = SmtpSender::new(plain(&server)).unwrap();
        let (capture, guard) = Capture::start();
        sender.send(&message).await.unwrap();
        server.next().await;
        let failing = Server::start(Behaviour::RejectRcpt("550 5.1.1 no such user")).await;
        let failing_sender = SmtpSender::new(plain(&failing)).unwrap();
        failing_sender.send(&message).await.unwrap_err();
        drop(guard);
        let out = capture.output();
        assert!(out.contains("email sent over smtp"), "{out}");
        assert!(out.contains("email not sent over smtp"), "{out}");
        assert!(out.contains("550"), "the server's reply is kept: {out}");
        assert!(!out.contains(&code), "the code was logged: {out}");
        assert!(!out.contains("Do not share"), "the body was logged: {out}");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_4xx_reply_is_transient_and_a_5xx_reply_permanent() {
    timeout(BOUND, async {
        let (message, _) = login_code_message().await;
        for (reply, kind) in [
            ("451 4.3.0 try again later", ErrorKind::Transient),
            ("550 5.1.1 no such user", ErrorKind::Permanent),
        ] {
            let server = Server::start(Behaviour::RejectRcpt(reply)).await;
            let err = SmtpSender::new(plain(&server))
                .unwrap()
                .send(&message)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), kind, "{reply}: {err}");
            assert_eq!(err.is_transient(), kind == ErrorKind::Transient);
        }
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    timeout(BOUND, async {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let (message, _) = login_code_message().await;
        let config = SmtpConfig::new("127.0.0.1", "no-reply@acme.example")
            .with_security(SmtpSecurity::Plain)
            .with_port(port)
            .with_timeout(Duration::from_secs(2));
        let err = SmtpSender::new(config)
            .unwrap()
            .send(&message)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_silent_server_times_out_within_the_configured_timeout() {
    timeout(BOUND, async {
        let server = Server::start(Behaviour::Silent).await;
        let (message, _) = login_code_message().await;
        let sender =
            SmtpSender::new(plain(&server).with_timeout(Duration::from_millis(300))).unwrap();
        let started = Instant::now();
        let err = sender.send(&message).await.unwrap_err();
        let took = started.elapsed();
        assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
        assert!(
            matches!(err, countersign_mail::Error::Timeout(_)),
            "{err:?}"
        );
        assert!(took >= Duration::from_millis(250), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        // The next send does not hang on the abandoned connection either.
        let started = Instant::now();
        let err = sender.send(&message).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_starttls_sender_refuses_a_server_without_starttls() {
    timeout(BOUND, async {
        let server = Server::start(Behaviour::Accept).await;
        let (message, _) = login_code_message().await;
        let config = plain(&server)
            .with_security(SmtpSecurity::StartTls)
            .with_port(server.addr.port());
        let err = SmtpSender::new(config)
            .unwrap()
            .send(&message)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Permanent, "{err}");
        assert_eq!(
            server
                .stats
                .connections
                .load(std::sync::atomic::Ordering::SeqCst),
            1
        );
    })
    .await
    .expect("bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_bounds_concurrent_sends_and_reuses_connections() {
    timeout(BOUND, async {
        let mut server = Server::start(Behaviour::Accept).await;
        let (message, _) = login_code_message().await;
        let sender = SmtpSender::new(plain(&server).with_pool_size(2)).unwrap();
        let sends: Vec<_> = (0..8)
            .map(|_| {
                let (sender, message) = (sender.clone(), message.clone());
                tokio::spawn(async move { sender.send(&message).await })
            })
            .collect();
        for s in sends {
            s.await.unwrap().unwrap();
        }
        for _ in 0..8 {
            server.next().await;
        }
        assert!(server.max_active() <= 2, "{} at once", server.max_active());
        assert!(server.max_active() >= 1);

        // Sequential sends, with time for the connection to go back to the
        // pool, share one connection.
        let before = server.connections();
        tokio::time::sleep(Duration::from_millis(100)).await;
        for _ in 0..3 {
            sender.send(&message).await.unwrap();
            server.next().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            server.connections(),
            before,
            "pooled connections were reused"
        );
    })
    .await
    .expect("bounded");
}

/// The reset token in a text body (alone, or inside a link).
fn reset_token_in(text: &str) -> String {
    let at = text.find("cspr_").expect("a reset token");
    text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

#[tokio::test]
async fn registration_and_reset_complete_with_what_arrives_over_smtp() {
    timeout(BOUND, async {
        let mut server = Server::start(Behaviour::Accept).await;
        let sender = SmtpSender::new(plain(&server)).unwrap();
        let core = Core::new("Acme Inc", sender, Templates::new()).await;
        let tenant = core.tenant.id;
        let address = "dave@example.com";

        // Registration: the code that activates the account comes by mail.
        let registration = countersign_core::Registration {
            email: address,
            password: PASSWORD,
            display_name: Some("Dave"),
        };
        core.svc
            .register(tenant, registration, &core.client)
            .await
            .unwrap();
        let mail = mime::parse(&server.next().await.data);
        assert_eq!(
            mail.header("Subject"),
            Some("Confirm your email address for Acme Inc")
        );
        let code = code_in(mail.text.as_deref().unwrap());
        let dave = core
            .svc
            .verify_address(tenant, address, &code, &core.client)
            .await
            .unwrap();
        assert_eq!(dave.state, countersign_core::AccountState::Active);

        // Reset: the token comes by mail and sets a new password.
        core.svc
            .request_password_reset(tenant, address, &core.client)
            .await
            .unwrap();
        let mail = mime::parse(&server.next().await.data);
        let token = reset_token_in(mail.text.as_deref().unwrap());
        core.svc
            .reset_password(
                tenant,
                &token,
                "dave's brand new passphrase 9",
                &core.client,
            )
            .await
            .unwrap();
        let notice = mime::parse(&server.next().await.data);
        assert!(
            notice.text.as_deref().unwrap().contains("password"),
            "a password-changed notice follows"
        );
    })
    .await
    .expect("bounded");
}
