//! Sending over SMTP with lettre: configuration, validation, a bounded
//! pool of connections, timeouts, and errors with a kind.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use countersign_core::{EmailMessage, EmailSender};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::{AsyncSmtpTransportBuilder, PoolConfig};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::Semaphore;
use tokio::time::{Instant, timeout_at};

use crate::address::FromAddress;
use crate::branding::BrandingSource;
use crate::error::{Error, Result};

type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmtpSecurity {
    /// Connect in plain text and require `STARTTLS` before anything else
    /// (submission, port 587). If the server does not offer it, the send
    /// fails: no credentials and no mail ever go out unencrypted.
    StartTls,
    /// Implicit TLS from the first byte (submissions, port 465).
    Tls,
    /// No encryption at all: only for a relay on the same host or a
    /// trusted private network (a local Postfix, a test catcher). A
    /// configuration with credentials is refused in this mode.
    Plain,
}

impl SmtpSecurity {
    /// The standard port of the mode: 587, 465 or 25.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::Plain => 25,
        }
    }
}

/// A user name and password for SMTP `AUTH` (PLAIN or LOGIN, over TLS
/// only). `Debug` shows the user name and never the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpCredentials {
    username: String,
    password: String,
}

impl SmtpCredentials {
    /// Credentials for `username`.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The user name.
    pub fn username(&self) -> &str {
        &self.username
    }
}

impl fmt::Debug for SmtpCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Everything [`SmtpSender::new`] needs. Start from [`SmtpConfig::new`]
/// (STARTTLS on port 587, no credentials, a 30 s timeout, 4 connections)
/// and adjust with the `with_*` methods or the public fields. Nothing is
/// checked until [`SmtpSender::new`]. `Debug` never shows the password.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmtpConfig {
    /// The server's host name (also the name its TLS certificate must
    /// carry) or IP address.
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// How the connection is secured.
    pub security: SmtpSecurity,
    /// Credentials for `AUTH`, if the server wants them.
    pub credentials: Option<SmtpCredentials>,
    /// The default `From` mailbox, e.g. `Acme <no-reply@acme.example>`;
    /// a tenant's [`Branding`](crate::Branding) may replace it.
    pub from: String,
    /// The most one send may take, from waiting for a free connection to
    /// the server's reply to the message. Also bounds connecting.
    pub timeout: Duration,
    /// The most sends talking to the server at once (one connection each),
    /// and the most idle connections kept for reuse. Sends beyond it wait,
    /// within `timeout`, for one to finish.
    pub pool_size: u32,
    /// How long an idle connection is kept before it is closed.
    pub idle_timeout: Duration,
    /// The name sent with `EHLO`; `None` sends the address literal
    /// `[127.0.0.1]`. Some relays want the sending host's name here.
    pub helo_name: Option<String>,
}

impl SmtpConfig {
    /// STARTTLS to `host` on port 587, from `from`, without credentials,
    /// with a 30 s timeout, at most 4 connections, idle ones closed after
    /// 60 s.
    pub fn new(host: impl Into<String>, from: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port: SmtpSecurity::StartTls.default_port(),
            security: SmtpSecurity::StartTls,
            credentials: None,
            from: from.into(),
            timeout: Duration::from_secs(30),
            pool_size: 4,
            idle_timeout: Duration::from_secs(60),
            helo_name: None,
        }
    }

    /// Secure the connection with `security`, on that mode's standard port
    /// (call [`with_port`](Self::with_port) afterwards for another).
    pub fn with_security(mut self, security: SmtpSecurity) -> Self {
        self.security = security;
        self.port = security.default_port();
        self
    }

    /// Connect to `port`.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Authenticate with `credentials`.
    pub fn with_credentials(mut self, credentials: SmtpCredentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Bound each send by `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Keep at most `size` connections open.
    pub fn with_pool_size(mut self, size: u32) -> Self {
        self.pool_size = size;
        self
    }

    /// Close connections idle for `idle_timeout`.
    pub fn with_idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    /// Greet the server with `name`.
    pub fn with_helo_name(mut self, name: impl Into<String>) -> Self {
        self.helo_name = Some(name.into());
        self
    }
}

/// An [`EmailSender`] over SMTP.
///
/// Guarantees:
/// - **Valid by construction**: [`SmtpSender::new`] checks the whole
///   configuration (host, port, `From`, timeouts, pool size, TLS set-up,
///   no credentials without TLS) and returns a typed [`Error`] of kind
///   [`InvalidConfig`](crate::ErrorKind::InvalidConfig); a sender that
///   exists never fails for its configuration's shape.
/// - **TLS** as configured by [`SmtpSecurity`], with rustls: the server's
///   certificate is checked against the operating system's trusted roots
///   and the host name. There is no switch to skip the check.
/// - **Bounded pool**: at most [`SmtpConfig::pool_size`] sends talk to the
///   server at once, each over one connection, and at most `pool_size`
///   idle connections are kept for reuse (lettre's pool), closed after
///   [`SmtpConfig::idle_timeout`]. A finished send hands its connection
///   back to the pool in the background, so for that moment one more
///   socket per slot may still be open; it is reused or closed at once.
/// - **Bounded time**: each send ends within [`SmtpConfig::timeout`],
///   waiting for a connection included. A send cut off mid-exchange
///   discards the pool, so no half-used connection is ever reused.
/// - **Nothing secret in logs**: it logs (at `debug`) the tenant, the
///   notice's code name and the outcome; never a body, a code or the
///   password. Errors carry the server's reply, never the message.
/// - Each message goes to one recipient, with a text body, and an HTML
///   alternative when the renderer made one.
///
/// Clones share the pool. Sending needs a Tokio runtime (lettre's pool
/// runs on it); the connections are opened on the first send, not by
/// `new`.
#[derive(Clone)]
pub struct SmtpSender {
    inner: Arc<Inner>,
    brands: Arc<dyn BrandingSource>,
}

struct Inner {
    /// Builds the transport (and its pool) again after a timeout.
    builder: AsyncSmtpTransportBuilder,
    /// The live transport; `None` until the first send and after a
    /// timeout discarded it.
    transport: Mutex<Option<Arc<Transport>>>,
    /// One permit per connection the pool may hold.
    // INVARIANT: never closed, so `acquire` fails only by timing out.
    slots: Semaphore,
    from: FromAddress,
    timeout: Duration,
    host: String,
    port: u16,
    security: SmtpSecurity,
    pool_size: u32,
}

impl SmtpSender {
    /// A sender for `config`, checked in full (see the type's guarantees).
    /// Opens no connection.
    pub fn new(config: SmtpConfig) -> Result<Self> {
        let SmtpConfig {
            host,
            port,
            security,
            credentials,
            from,
            timeout,
            pool_size,
            idle_timeout,
            helo_name,
        } = config;
        let host = host.trim().to_owned();
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::Config(format!("invalid host `{host}`")));
        }
        if port == 0 {
            return Err(Error::Config("port must not be 0".into()));
        }
        if timeout.is_zero() {
            return Err(Error::Config("timeout must not be zero".into()));
        }
        if idle_timeout.is_zero() {
            return Err(Error::Config("idle timeout must not be zero".into()));
        }
        if pool_size == 0 {
            return Err(Error::Config("pool size must be at least 1".into()));
        }
        let permits = usize::try_from(pool_size)
            .unwrap_or(Semaphore::MAX_PERMITS)
            .min(Semaphore::MAX_PERMITS);
        let from = FromAddress::parse(&from)?;
        if security == SmtpSecurity::Plain && credentials.is_some() {
            return Err(Error::Config(
                "credentials need tls: use `StartTls` or `Tls`, not `Plain`".into(),
            ));
        }

        let tls = match security {
            SmtpSecurity::Plain => Tls::None,
            SmtpSecurity::StartTls => Tls::Required(tls_parameters(&host)?),
            SmtpSecurity::Tls => Tls::Wrapper(tls_parameters(&host)?),
        };
        let mut builder = Transport::builder_dangerous(host.as_str())
            .port(port)
            .tls(tls)
            .timeout(Some(timeout))
            .pool_config(
                PoolConfig::new()
                    .min_idle(0)
                    .max_size(pool_size)
                    .idle_timeout(idle_timeout),
            );
        if let Some(name) = helo_name {
            let name = name.trim().to_owned();
            if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(Error::Config(format!("invalid helo name `{name}`")));
            }
            builder = builder.hello_name(ClientId::Domain(name));
        }
        if let Some(c) = credentials {
            builder = builder.credentials(Credentials::new(c.username, c.password));
        }

        Ok(Self {
            inner: Arc::new(Inner {
                builder,
                transport: Mutex::new(None),
                slots: Semaphore::new(permits),
                from,
                timeout,
                host,
                port,
                security,
                pool_size,
            }),
            brands: Arc::new(()),
        })
    }

    /// Send each tenant's mail from the `From` its branding names (the
    /// configured address for tenants without one). Pass the same source
    /// as to [`Templates`](crate::Templates), in an [`Arc`].
    pub fn with_branding(mut self, source: impl BrandingSource) -> Self {
        self.brands = Arc::new(source);
        self
    }

    /// Send `message`. `Ok` means the server accepted it for delivery.
    pub async fn send_message(&self, message: &EmailMessage) -> Result<()> {
        let result = self.deliver(message).await;
        match &result {
            Ok(()) => tracing::debug!(
                target: "countersign_mail",
                tenant = %message.tenant_id,
                notice = message.notice.code(),
                "email sent over smtp"
            ),
            Err(e) => tracing::debug!(
                target: "countersign_mail",
                tenant = %message.tenant_id,
                notice = message.notice.code(),
                kind = %e.kind(),
                error = %ErrorChain(e),
                "email not sent over smtp"
            ),
        }
        result
    }

    async fn deliver(&self, message: &EmailMessage) -> Result<()> {
        let email = self.build(message)?;
        let inner = &*self.inner;
        let deadline = Instant::now() + inner.timeout;
        let Ok(Ok(_slot)) = timeout_at(deadline, inner.slots.acquire()).await else {
            return Err(Error::Timeout(inner.timeout));
        };
        let transport = inner.transport()?;
        match timeout_at(deadline, transport.send(email)).await {
            Ok(Ok(_reply)) => Ok(()),
            Ok(Err(e)) => Err(Error::smtp(e)),
            Err(_elapsed) => {
                // The cut-off exchange leaves its connection mid-command,
                // and lettre would put it back in the pool: drop the pool.
                inner.discard(&transport);
                Err(Error::Timeout(inner.timeout))
            }
        }
    }

    /// The MIME message for `message`, from its tenant's sender.
    fn build(&self, message: &EmailMessage) -> Result<Message> {
        let to = message
            .to
            .as_str()
            .parse::<Address>()
            .map_err(|e| Error::Recipient {
                value: message.to.as_str().to_owned(),
                source: Box::new(e),
            })?;
        let from = self
            .brands
            .branding(message.tenant_id)
            .and_then(|b| b.from)
            .unwrap_or_else(|| self.inner.from.clone());
        let builder = Message::builder()
            .from(from.mailbox().clone())
            .to(Mailbox::new(None, to))
            .subject(message.subject.as_str())
            .message_id(message_id(from.domain()));
        let built = match &message.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                message.text.clone(),
                html.clone(),
            )),
            None => builder.singlepart(SinglePart::plain(message.text.clone())),
        };
        built.map_err(|e| Error::Message(Box::new(e)))
    }
}

impl Inner {
    /// The live transport, built on first use (it needs the runtime).
    fn transport(&self) -> Result<Arc<Transport>> {
        let mut slot = self
            .transport
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = &*slot {
            return Ok(Arc::clone(t));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Config(
                "the smtp sender needs a tokio runtime to send".into(),
            ));
        }
        let t = Arc::new(self.builder.clone().build::<Tokio1Executor>());
        *slot = Some(Arc::clone(&t));
        Ok(t)
    }

    /// Forget `transport` if it is still the live one; its connections
    /// close once the sends still using it end.
    fn discard(&self, transport: &Arc<Transport>) {
        let mut slot = self
            .transport
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|t| Arc::ptr_eq(t, transport)) {
            *slot = None;
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // lettre's pool spawns its clean-up on the runtime when dropped,
        // which panics outside one. Outside a runtime the connections are
        // gone with it anyway: leak the pool rather than panic.
        if tokio::runtime::Handle::try_current().is_err() {
            let slot = self
                .transport
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(t) = slot.take() {
                std::mem::forget(t);
            }
        }
    }
}

impl EmailSender for SmtpSender {
    type Error = Error;

    async fn send(&self, message: &EmailMessage) -> Result<()> {
        self.send_message(message).await
    }
}

impl fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &*self.inner;
        f.debug_struct("SmtpSender")
            .field("host", &i.host)
            .field("port", &i.port)
            .field("security", &i.security)
            .field("from", &i.from)
            .field("timeout", &i.timeout)
            .field("pool_size", &i.pool_size)
            .finish_non_exhaustive()
    }
}

fn tls_parameters(host: &str) -> Result<TlsParameters> {
    TlsParameters::builder(host.to_owned())
        .build_rustls()
        .map_err(|e| Error::Tls {
            host: host.to_owned(),
            source: Box::new(e),
        })
}

/// A fresh `Message-ID` in the sender's domain, or `None` (lettre then
/// makes one) if the system has no randomness to give.
fn message_id(domain: &str) -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("<{hex}@{domain}>"))
}

/// An error and its sources, `: `-separated (the server's reply is in a
/// source).
struct ErrorChain<'a>(&'a Error);

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = std::error::Error::source(self.0);
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}
