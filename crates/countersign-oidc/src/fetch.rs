//! [`ReqwestFetch`]: core's [`HttpFetch`] over HTTPS with reqwest.

use std::fmt;
use std::time::Duration;

use countersign_core::factor::federated::validate_fetch_url;
use countersign_core::{FetchError, HttpFetch};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, HeaderValue};

use crate::error::{Error, Result};

/// How a [`ReqwestFetch`] bounds each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchOptions {
    /// The longest wait for a TCP and TLS connection (default 5 s).
    pub connect_timeout: Duration,
    /// The longest a whole request may take, from connecting to the body's
    /// last byte (default 10 s).
    pub timeout: Duration,
    /// The largest body read (default 256 KiB, the size of the largest key
    /// set core accepts); reading stops as soon as a body passes it.
    pub max_body_bytes: usize,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            max_body_bytes: 256 * 1024,
        }
    }
}

impl FetchOptions {
    /// Check the bounds: timeouts of 1 ms to 5 min, the connect timeout no
    /// longer than the whole, a body cap of 1 byte to 16 MiB.
    pub fn validate(&self) -> Result<()> {
        let ms = Duration::from_millis(1);
        let max = Duration::from_secs(300);
        if self.timeout < ms || self.timeout > max {
            return Err(Error::Options("timeout must be 1 ms to 5 minutes"));
        }
        if self.connect_timeout < ms || self.connect_timeout > self.timeout {
            return Err(Error::Options(
                "connect timeout must be 1 ms to the whole timeout",
            ));
        }
        if self.max_body_bytes == 0 || self.max_body_bytes > 16 * 1024 * 1024 {
            return Err(Error::Options("max body bytes must be 1 to 16 MiB"));
        }
        Ok(())
    }
}

/// Core's [`HttpFetch`] over HTTP(S) with reqwest: rustls (ring) checking
/// certificates against the system's roots, HTTP/1.1, `https` only (`http`
/// on loopback addresses, for tests), no redirects followed, a connect
/// timeout and an overall timeout, and a body cap enforced while the body
/// streams in. Cheap to clone (clones share the connection pool).
#[derive(Clone)]
pub struct ReqwestFetch {
    client: reqwest::Client,
    options: FetchOptions,
}

impl fmt::Debug for ReqwestFetch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestFetch")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl ReqwestFetch {
    /// A fetcher with the default [`FetchOptions`].
    pub fn new() -> Result<Self> {
        Self::with_options(FetchOptions::default())
    }

    /// A fetcher bounded by `options` (checked).
    pub fn with_options(options: FetchOptions) -> Result<Self> {
        options.validate()?;
        let client = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("countersign-oidc/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Client(chain(&e)))?;
        Ok(Self { client, options })
    }

    /// The bounds this fetcher applies.
    pub fn options(&self) -> &FetchOptions {
        &self.options
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let mut response = self
            .client
            .get(url)
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .send()
            .await
            .map_err(transport)?;
        if response.status() != StatusCode::OK {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        let limit = self.options.max_body_bytes;
        let too_large = FetchError::TooLarge { limit };
        // A declared length over the cap is refused before reading a byte.
        if response
            .content_length()
            .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > limit))
        {
            return Err(too_large);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if chunk.len() > limit.saturating_sub(body.len()) {
                // Stop reading now: dropping the response closes the
                // connection instead of draining the rest.
                return Err(too_large);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

impl HttpFetch for ReqwestFetch {
    /// GET `url` (refused unless [`validate_fetch_url`] accepts it) and
    /// answer the body of a `200` response, within the timeouts and the
    /// body cap.
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        validate_fetch_url(url).map_err(|e| FetchError::UrlRefused(e.reason))?;
        // reqwest's own timeout covers the body too; this one bounds
        // everything else (the loop above included) the same way.
        match tokio::time::timeout(self.options.timeout, self.fetch(url)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout),
        }
    }
}

/// A reqwest error as a fetch error: a timeout, or a transport failure
/// with its causes (the URL is public; no body is ever included).
fn transport(e: reqwest::Error) -> FetchError {
    if e.is_timeout() {
        FetchError::Timeout
    } else {
        FetchError::Transport(chain(&e))
    }
}

/// An error and its sources, one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}
