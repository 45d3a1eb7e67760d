//! The body of `GET /v1/session`, the session check: the JSON of a
//! [`SessionView`](super::views::SessionView), written straight from the
//! session record.
//!
//! It is the hottest route, and building the view costs most of what the
//! route does beyond an empty one: a `String` per field, and each
//! timestamp sent through `Display` one character at a time into the
//! escaper (`collect_str`). Here the record is serialised in place, every
//! text as one `serialize_str`, and the buffer is sized once. The output is
//! the view's, byte for byte (a property test holds them equal).

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use countersign_core::SessionRecord;
use serde::ser::{Serialize, SerializeSeq, SerializeStruct, Serializer};
use uuid::Uuid;

/// A session serialised as a `SessionView`.
pub(crate) struct SessionBody<'a>(pub &'a SessionRecord);

impl SessionBody<'_> {
    /// The JSON bytes.
    pub(crate) fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        // The view of a session with a typical user agent is under 512
        // bytes: one allocation.
        let mut out = Vec::with_capacity(512);
        serde_json::to_writer(&mut out, self)?;
        Ok(out)
    }
}

impl Serialize for SessionBody<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let s = self.0;
        let fields = 9 + usize::from(s.ip.is_some()) + usize::from(s.user_agent.is_some());
        let mut view = serializer.serialize_struct("SessionView", fields)?;
        view.serialize_field("id", &Id(s.id.as_uuid()))?;
        view.serialize_field("tenant_id", &Id(s.tenant_id.as_uuid()))?;
        view.serialize_field("user_id", &Id(s.user_id.as_uuid()))?;
        view.serialize_field("factors", &Factors(s))?;
        view.serialize_field("authenticated_at", &Time(&s.auth.at))?;
        if let Some(ip) = &s.ip {
            let mut text = Small::default();
            write!(text, "{ip}").map_err(serde::ser::Error::custom)?;
            view.serialize_field("ip", text.as_str())?;
        }
        if let Some(agent) = &s.user_agent {
            view.serialize_field("user_agent", agent)?;
        }
        view.serialize_field("created_at", &Time(&s.created_at))?;
        view.serialize_field("last_seen_at", &Time(&s.last_seen_at))?;
        view.serialize_field("expires_at", &Time(&s.expires_at))?;
        view.serialize_field("absolute_expires_at", &Time(&s.absolute_expires_at))?;
        view.end()
    }
}

/// A UUID, hyphenated, lower case, from a stack buffer.
struct Id<'a>(&'a Uuid);

impl Serialize for Id<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = Uuid::encode_buffer();
        serializer.serialize_str(self.0.hyphenated().encode_lower(&mut buf))
    }
}

/// A timestamp as chrono's serde writes it (RFC 3339, `Z`, as many
/// sub-second digits as it has: none, 3, 6 or 9), formatted once.
struct Time<'a>(&'a DateTime<Utc>);

impl Serialize for Time<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

/// The kinds of the factors that authenticated the session.
struct Factors<'a>(&'a SessionRecord);

impl Serialize for Factors<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let factors = &self.0.auth.factors;
        let mut seq = serializer.serialize_seq(Some(factors.len()))?;
        for f in factors {
            seq.serialize_element(f.kind.as_str())?;
        }
        seq.end()
    }
}

/// Text that fits on the stack: an IP address is at most 45 characters.
struct Small {
    buf: [u8; 64],
    len: usize,
}

impl Default for Small {
    fn default() -> Self {
        Small {
            buf: [0; 64],
            len: 0,
        }
    }
}

impl Small {
    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in.
        self.buf
            .get(..self.len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }
}

impl std::fmt::Write for Small {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(std::fmt::Error)?;
        let slot = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::views::SessionView;
    use chrono::TimeZone;
    use countersign_core::{
        AuthRecord, FactorKind, MethodName, PassedFactor, SessionId, TenantId, TokenHash, UserId,
    };
    use proptest::prelude::*;
    use std::net::IpAddr;

    fn at(secs: i64, nanos: u32) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, nanos).single().unwrap()
    }

    /// Sub-second parts of each precision chrono distinguishes.
    fn nanos() -> impl Strategy<Value = u32> {
        prop_oneof![
            Just(0u32),
            (1u32..1000).prop_map(|m| m * 1_000_000),
            (1u32..1_000_000).prop_map(|u| u * 1000),
            0u32..1_000_000_000,
        ]
    }

    fn time() -> impl Strategy<Value = DateTime<Utc>> {
        // Years 1970 to 9999.
        (0i64..253_402_300_799, nanos()).prop_map(|(s, n)| at(s, n))
    }

    fn record() -> impl Strategy<Value = SessionRecord> {
        let kinds = prop::collection::vec(
            prop::sample::select(vec![
                FactorKind::Password,
                FactorKind::Totp,
                FactorKind::Passkey,
                FactorKind::RecoveryCodes,
                FactorKind::EmailOtp,
                FactorKind::OidcIdToken,
            ]),
            0..4,
        );
        let ip = prop_oneof![
            Just(None),
            any::<[u8; 4]>().prop_map(|b| Some(IpAddr::from(b))),
            any::<[u8; 16]>().prop_map(|b| Some(IpAddr::from(b))),
        ];
        let agent = prop::option::of(any::<String>());
        (
            kinds,
            ip,
            agent,
            [time(), time(), time(), time(), time()],
            any::<[u8; 16]>(),
        )
            .prop_map(|(kinds, ip, user_agent, t, seed)| {
                let id = |n: u8| {
                    let mut b = seed;
                    b[0] ^= n;
                    Uuid::from_bytes(b)
                };
                SessionRecord {
                    id: SessionId::from_uuid(id(1)),
                    key: TokenHash::from_bytes([seed, seed].concat().try_into().unwrap()),
                    tenant_id: TenantId::from_uuid(id(2)),
                    user_id: UserId::from_uuid(id(3)),
                    auth: AuthRecord {
                        tenant_id: TenantId::from_uuid(id(2)),
                        user_id: UserId::from_uuid(id(3)),
                        method: MethodName::parse("password").unwrap(),
                        factors: kinds
                            .into_iter()
                            .map(|kind| PassedFactor { kind, at: t[0] })
                            .collect(),
                        at: t[0],
                    },
                    ip,
                    user_agent,
                    created_at: t[1],
                    last_seen_at: t[2],
                    expires_at: t[3],
                    absolute_expires_at: t[4],
                    idle_timeout: std::time::Duration::from_secs(1800),
                    renew_within: std::time::Duration::from_secs(300),
                }
            })
    }

    proptest! {
        /// The body is the view's JSON, byte for byte.
        #[test]
        fn the_body_is_the_views_json(s in record()) {
            let body = SessionBody(&s).to_json().unwrap();
            let view = serde_json::to_vec(&SessionView::from(&s)).unwrap();
            prop_assert_eq!(String::from_utf8(body).unwrap(), String::from_utf8(view).unwrap());
        }
    }
}
