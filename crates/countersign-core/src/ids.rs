//! Typed identifiers: UUID version 7 newtypes, one per kind of thing, so a
//! user id can never be passed where a tenant id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::env::Env;
use crate::error::Result;

/// Why a string could not be read as an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not a UUID.
    #[error("`{0}` is not a valid id")]
    Malformed(String),
    /// The reserved system id, which no runtime input may name.
    #[error("the id is reserved")]
    Reserved,
}

macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh id from the environment's clock and random source.
            pub fn generate(env: &Env) -> Result<Self> {
                Ok(Self(env.uuid_v7()?))
            }

            /// Wrap a UUID read from trusted storage. Input from callers
            /// goes through [`FromStr`], which refuses reserved ids.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }

            /// Whether this is the reserved nil id.
            pub fn is_reserved(&self) -> bool {
                self.0.is_nil()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            /// Parse caller input. The reserved nil id is refused: no
            /// runtime path can name it.
            fn from_str(s: &str) -> std::result::Result<Self, IdError> {
                if s.len() > 64 {
                    return Err(IdError::Malformed(s.chars().take(64).collect()));
                }
                let uuid = Uuid::try_parse(s).map_err(|_| IdError::Malformed(s.to_owned()))?;
                if uuid.is_nil() {
                    return Err(IdError::Reserved);
                }
                Ok(Self(uuid))
            }
        }
    };
}

typed_id! {
    /// Identifies a tenant. [`TenantId::SYSTEM`] is reserved for the platform operator.
    TenantId
}
typed_id! {
    /// Identifies a user within the whole deployment (users belong to one tenant).
    UserId
}
typed_id! {
    /// Identifies an audit event.
    EventId
}

typed_id! {
    /// Identifies a session (public: listing and revoking use it; the
    /// session token is a separate secret).
    SessionId
}
typed_id! {
    /// Identifies a refresh-token family (one per login).
    FamilyId
}

impl TenantId {
    /// The reserved system tenant: platform-operator scope. No provisioning,
    /// registration or parsing path can claim it.
    pub const SYSTEM: TenantId = TenantId(Uuid::nil());

    /// Whether this is [`TenantId::SYSTEM`].
    pub fn is_system(&self) -> bool {
        self.0.is_nil()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_refuses_the_system_id_and_garbage() {
        assert_eq!(
            "00000000-0000-0000-0000-000000000000".parse::<TenantId>(),
            Err(IdError::Reserved)
        );
        assert!(matches!(
            "nope".parse::<UserId>(),
            Err(IdError::Malformed(_))
        ));
        let long = "x".repeat(10_000);
        assert!(matches!(long.parse::<UserId>(), Err(IdError::Malformed(s)) if s.len() == 64));
        let (env, _) = Env::manual(1);
        let id = TenantId::generate(&env).unwrap();
        assert!(!id.is_system());
        assert_eq!(id.to_string().parse::<TenantId>().unwrap(), id);
    }
}
