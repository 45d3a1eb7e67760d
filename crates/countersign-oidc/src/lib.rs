//! countersign-oidc: fetching for core's OpenID Connect ID token
//! verification. Applications should depend on the [`countersign`] facade
//! (feature `oidc`), which re-exports this crate as `countersign::oidc`.
//!
//! Core verifies ID tokens without doing I/O
//! ([`IdTokenVerifier`](countersign_core::IdTokenVerifier)); it reads an
//! issuer's key set and discovery document through the
//! [`HttpFetch`] seam. This crate supplies
//! that seam over HTTPS ([`ReqwestFetch`]) and configuration by discovery
//! ([`discover`]).
//!
//! ```no_run
//! # async fn demo(now: chrono::DateTime<chrono::Utc>, token: &str, nonce: &str)
//! #     -> Result<(), Box<dyn std::error::Error>> {
//! use countersign_core::{IdTokenVerifier, IssuerConfig};
//! use countersign_oidc::{ReqwestFetch, discover};
//!
//! let fetch = ReqwestFetch::new()?;
//! // Google, preset; or any issuer by its discovery document.
//! let google = IdTokenVerifier::new(IssuerConfig::google("my-client-id"), fetch.clone())?;
//! let config = discover(&fetch, "https://login.example.com", vec!["my-app".into()]).await?;
//! let other = IdTokenVerifier::new(config, fetch)?;
//! let user = google.verify(token, Some(nonce), now).await?;
//! # let _ = (other, user); Ok(()) }
//! ```
//!
//! # Guarantees
//!
//! - **HTTPS only.** [`ReqwestFetch`] fetches `https` URLs, and `http`
//!   only on loopback addresses (tests), as
//!   [`validate_fetch_url`](countersign_core::factor::federated::validate_fetch_url)
//!   says; certificates are checked by rustls (ring) against the system's
//!   roots and the host name, with no switch to turn that off. No OpenSSL.
//! - **No redirects.** A `3xx` answer is an error
//!   ([`FetchError::Status`](countersign_core::FetchError::Status)): a key
//!   set is never read from another place than the configured one.
//! - **Bounded time and size.** Each request has a connect timeout and an
//!   overall timeout ([`FetchOptions`]); a body is read only up to
//!   [`FetchOptions::max_body_bytes`], and reading stops as soon as it
//!   passes the cap (a declared `Content-Length` over it is refused before
//!   reading).
//! - **Discovery checks the issuer.** [`discover`] refuses a document
//!   whose `issuer` is not exactly the one asked for (OpenID Connect
//!   Discovery §4.3).
//! - **Rare fetches.** Core's cache fetches an issuer's keys at most once
//!   per refetch interval, whatever the traffic; this crate adds no cache
//!   of its own.
//! - **No secret in logs or `Debug`.** Nothing fetched here is secret, and
//!   no body is logged or put into an error.
//!
//! [`countersign`]: https://docs.rs/countersign
#![forbid(unsafe_code)]

mod error;
mod fetch;

use countersign_core::HttpFetch;
use countersign_core::factor::federated::{DiscoveryDocument, DiscoveryError, IssuerConfig};

pub use error::{Error, Result};
pub use fetch::{FetchOptions, ReqwestFetch};

/// Configure the issuer `issuer_url` by discovery: fetch
/// `<issuer_url>/.well-known/openid-configuration` through `fetch`, and
/// build its [`IssuerConfig`] for `client_ids` with
/// [`IssuerConfig::from_discovery`] (the document must name exactly
/// `issuer_url` as its issuer; at most
/// [`DiscoveryDocument::MAX_BYTES`] are accepted).
pub async fn discover<F: HttpFetch>(
    fetch: &F,
    issuer_url: &str,
    client_ids: Vec<String>,
) -> Result<IssuerConfig, DiscoveryError> {
    let url = DiscoveryDocument::url_for(issuer_url)?;
    let body = fetch.get(&url).await?;
    let doc = DiscoveryDocument::parse(&body)?;
    IssuerConfig::from_discovery(issuer_url, &doc, client_ids)
}
