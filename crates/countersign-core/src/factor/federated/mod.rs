//! OpenID Connect ID tokens from issuers a tenant trusts (Google, or any
//! issuer found by discovery): their configuration, the issuer's signing
//! keys, and verification.
//!
//! - [`IssuerConfig`]: an issuer a tenant trusts (its `iss` spellings, the
//!   client ids that are accepted audiences, where its keys are, the
//!   algorithms and clock tolerances), serde (de)serializable and checked
//!   by [`IssuerConfig::validate`]. [`IssuerConfig::google`] is Google's;
//!   [`IssuerConfig::from_discovery`] builds one from a
//!   [`DiscoveryDocument`].
//! - [`JwksCache`]: the issuer's key set, fetched through an
//!   [`HttpFetch`], cached for a TTL, refetched for an unknown `kid` at
//!   most once per interval, kept when a fetch fails.
//! - [`IdTokenVerifier`]: the checks of OpenID Connect Core §3.1.3.7 on a
//!   token, answering a [`VerifiedIdToken`] or an [`IdTokenError`].
//!
//! This module does no I/O: fetching is behind the [`HttpFetch`] seam
//! (countersign-oidc implements it over HTTPS), and time is the caller's
//! `now`, never the wall clock. Neither a token nor a key appears in any
//! `Debug` output or log line of this module.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use crate::error::InvalidInput;

mod config;
mod jwks;
mod settings;
mod verify;

#[cfg(test)]
mod tests;

pub use config::{
    DiscoveryDocument, DiscoveryError, GOOGLE_ISSUER, GOOGLE_JWKS_URL, IdTokenAlgorithm,
    IssuerConfig, JwksSource,
};
pub use jwks::{CachedKey, JwksCache};
pub use settings::{FederationSettings, MAX_ISSUERS};
pub use verify::{IdTokenError, IdTokenVerifier, MAX_ID_TOKEN_BYTES, VerifiedIdToken};

/// Why fetching a document (a key set, a discovery document) failed. No
/// variant carries a response body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL is not one this library fetches (not `https`, nor `http` on
    /// a loopback address; credentials in it; not a URL).
    #[error("url refused: {0}")]
    UrlRefused(String),
    /// The request failed before an answer (connection, TLS, protocol).
    #[error("request failed: {0}")]
    Transport(String),
    /// The request or the body took longer than allowed.
    #[error("request timed out")]
    Timeout,
    /// The server answered with a status other than 200 (a redirect
    /// included: none is followed).
    #[error("http status {0}")]
    Status(u16),
    /// The body is larger than the fetcher or the document allows.
    #[error("response body over {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body is not the document expected (not JSON, wrong shape, too
    /// many keys, ...).
    #[error("invalid document: {0}")]
    InvalidDocument(String),
    /// Nothing can be fetched: the verifier was built with [`NoFetch`].
    #[error("no fetcher is configured")]
    NoFetcher,
}

/// GETs a document over HTTP: the seam through which core reads an
/// issuer's key set and discovery document without doing I/O itself.
///
/// The contract an implementation keeps:
/// - one `GET` of `url`, answering the body of a `200` response, any other
///   status being [`FetchError::Status`]; redirects are not followed (or
///   only to the same origin);
/// - only `https` URLs, or `http` on a loopback address (tests), as
///   [`validate_fetch_url`] says;
/// - a bounded body: reading stops and fails with [`FetchError::TooLarge`]
///   as soon as the body passes the implementation's cap (it must not read
///   a huge body first and then refuse it);
/// - bounded time: connecting and the whole exchange have timeouts,
///   [`FetchError::Timeout`] past them. Core adds no timeout of its own.
///
/// Core calls it rarely: a [`JwksCache`] fetches at most once per refetch
/// interval per issuer, whatever the traffic.
pub trait HttpFetch: Send + Sync + 'static {
    /// GET `url` and answer the body.
    fn get(&self, url: &str) -> impl Future<Output = Result<Vec<u8>, FetchError>> + Send;
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Object-safe form of [`HttpFetch`], so a verifier can hold any fetcher.
pub(crate) trait DynHttpFetch: Send + Sync {
    fn get_dyn<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<Vec<u8>, FetchError>>;
}

impl<T: HttpFetch> DynHttpFetch for T {
    fn get_dyn<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<Vec<u8>, FetchError>> {
        Box::pin(self.get(url))
    }
}

/// A fetcher that fetches nothing: for verifiers whose keys are
/// [`JwksSource::Static`], which never fetch. Every call fails with
/// [`FetchError::NoFetcher`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFetch;

impl HttpFetch for NoFetch {
    async fn get(&self, _url: &str) -> Result<Vec<u8>, FetchError> {
        Err(FetchError::NoFetcher)
    }
}

/// The longest URL accepted (issuer, key set, discovery document).
pub const MAX_URL_BYTES: usize = 2048;

/// Check that `url` is one this library fetches or trusts as an issuer:
/// an absolute `https` URL, or `http` on a loopback address (`127.0.0.0/8`,
/// `[::1]`, `localhost`: for tests), with a host, no credentials and no
/// fragment, at most [`MAX_URL_BYTES`] long.
pub fn validate_fetch_url(url: &str) -> Result<(), InvalidInput> {
    let err = |r: &str| InvalidInput::new("url", r);
    if url.len() > MAX_URL_BYTES {
        return Err(err("too long"));
    }
    let parsed = url::Url::parse(url).map_err(|_| err("not an absolute url"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(err("must not carry credentials"));
    }
    if parsed.fragment().is_some() {
        return Err(err("must not have a fragment"));
    }
    let loopback = match parsed.host() {
        None => return Err(err("must have a host")),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(err("must be https (http only on a loopback address)")),
    }
}
