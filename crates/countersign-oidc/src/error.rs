//! The crate's error: building a fetcher. Fetching itself answers core's
//! [`FetchError`](countersign_core::FetchError), and discovery core's
//! [`DiscoveryError`](countersign_core::factor::federated::DiscoveryError).

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a [`ReqwestFetch`](crate::ReqwestFetch) could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A [`FetchOptions`](crate::FetchOptions) value is out of bounds.
    #[error("invalid fetch options: {0}")]
    Options(&'static str),
    /// The HTTP client could not be built (TLS set-up, the system's root
    /// certificates).
    #[error("building the http client failed: {0}")]
    Client(String),
}
