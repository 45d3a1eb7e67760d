//! A tenant's settings for sign-in with ID tokens.

use serde::{Deserialize, Serialize};

use super::IssuerConfig;
use crate::error::InvalidInput;

/// The most issuers one tenant trusts.
pub const MAX_ISSUERS: usize = 16;

/// A tenant's sign-in with OpenID Connect ID tokens: the issuers it
/// trusts, and what a verified identity that is linked to no account yet
/// may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederationSettings {
    /// The issuers trusted, 1 to [`MAX_ISSUERS`], each with its own
    /// client ids (its canonical issuers distinct).
    pub issuers: Vec<IssuerConfig>,
    /// Link an identity to the existing account whose identifier is the
    /// address the issuer verified (default true). Never on an
    /// unverified address.
    #[serde(default = "yes")]
    pub link_verified_email: bool,
    /// Create an account for an identity that matches none (default true).
    #[serde(default = "yes")]
    pub create_accounts: bool,
}

fn yes() -> bool {
    true
}

impl FederationSettings {
    /// Trust `issuers`, linking verified addresses and creating accounts.
    pub fn new(issuers: Vec<IssuerConfig>) -> Self {
        Self {
            issuers,
            link_verified_email: true,
            create_accounts: true,
        }
    }

    /// Check every issuer, their number and that no two share a canonical
    /// issuer or a spelling.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let err = |r: &str| InvalidInput::new("federation settings", r);
        if self.issuers.is_empty() || self.issuers.len() > MAX_ISSUERS {
            return Err(err("trust 1 to 16 issuers"));
        }
        let mut spellings: Vec<&str> = Vec::new();
        for issuer in &self.issuers {
            issuer.validate()?;
            for s in std::iter::once(&issuer.issuer).chain(&issuer.issuer_aliases) {
                if spellings.contains(&s.as_str()) {
                    return Err(err("two issuers share a spelling"));
                }
                spellings.push(s);
            }
        }
        Ok(())
    }

    /// The trusted issuer that `iss` names (canonical or alias).
    pub fn issuer(&self, iss: &str) -> Option<&IssuerConfig> {
        self.issuers.iter().find(|c| c.accepts_issuer(iss))
    }
}
