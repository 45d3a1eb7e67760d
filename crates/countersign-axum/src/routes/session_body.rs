//! The body of `GET /v1/session`, the session check: the JSON of a
//! [`SessionView`](super::views::SessionView), written straight from the
//! session record.
//!
//! It is the hottest route, and serialising the view cost most of what
//! the route does beyond an empty one: a `String` per field, each
//! timestamp formatted through `Display`, and every text scanned for
//! characters to escape. Here the bytes are written into one buffer: ids,
//! timestamps, factor kinds and the address can hold nothing that JSON
//! escapes, so they are written as they are, and only the user agent (the
//! client's text) goes through the escaper. The output is the view's,
//! byte for byte; a property test holds them equal.

use std::io::Write as _;

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use countersign_core::SessionRecord;
use uuid::Uuid;

/// A session serialised as a `SessionView`.
pub(crate) struct SessionBody<'a>(pub &'a SessionRecord);

impl SessionBody<'_> {
    /// The JSON bytes.
    pub(crate) fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        let s = self.0;
        let agent = s.user_agent.as_deref().map_or(0, str::len);
        let mut out = Vec::with_capacity(448 + agent);
        out.extend_from_slice(b"{\"id\":");
        id(&mut out, s.id.as_uuid());
        out.extend_from_slice(b",\"tenant_id\":");
        id(&mut out, s.tenant_id.as_uuid());
        out.extend_from_slice(b",\"user_id\":");
        id(&mut out, s.user_id.as_uuid());
        out.extend_from_slice(b",\"factors\":[");
        for (i, f) in s.auth.factors.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // INVARIANT: factor kinds are `[a-z_]` names.
            quoted(&mut out, f.kind.as_str().as_bytes());
        }
        out.extend_from_slice(b"],\"authenticated_at\":");
        time(&mut out, &s.auth.at);
        if let Some(ip) = &s.ip {
            // An address prints as digits, `.`, `:` and hex letters.
            out.extend_from_slice(b",\"ip\":\"");
            write!(out, "{ip}").map_err(serde_json::Error::io)?;
            out.push(b'"');
        }
        if let Some(agent) = &s.user_agent {
            out.extend_from_slice(b",\"user_agent\":");
            serde_json::to_writer(&mut out, agent)?;
        }
        out.extend_from_slice(b",\"created_at\":");
        time(&mut out, &s.created_at);
        out.extend_from_slice(b",\"last_seen_at\":");
        time(&mut out, &s.last_seen_at);
        out.extend_from_slice(b",\"expires_at\":");
        time(&mut out, &s.expires_at);
        out.extend_from_slice(b",\"absolute_expires_at\":");
        time(&mut out, &s.absolute_expires_at);
        out.push(b'}');
        Ok(out)
    }
}

/// `text` in quotes, unescaped: for text that holds nothing JSON escapes.
fn quoted(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'"');
    out.extend_from_slice(text);
    out.push(b'"');
}

/// A UUID, hyphenated, lower case, quoted.
fn id(out: &mut Vec<u8>, id: &Uuid) {
    let mut buf = Uuid::encode_buffer();
    quoted(out, id.hyphenated().encode_lower(&mut buf).as_bytes());
}

/// A timestamp, quoted, as chrono's serde writes it: RFC 3339 with `Z`
/// and as many sub-second digits as it has (none, 3, 6 or 9). Years
/// outside 0000-9999 and leap seconds, which chrono writes in forms of
/// their own, are left to chrono.
fn time(out: &mut Vec<u8>, t: &DateTime<Utc>) {
    let n = t.naive_utc();
    let nanos = n.nanosecond();
    let year = u32::try_from(n.year()).ok().filter(|y| *y <= 9999);
    let (Some(year), true) = (year, nanos < 1_000_000_000) else {
        quoted(
            out,
            t.to_rfc3339_opts(SecondsFormat::AutoSi, true).as_bytes(),
        );
        return;
    };
    out.push(b'"');
    digits(out, year, 4);
    out.push(b'-');
    digits(out, n.month(), 2);
    out.push(b'-');
    digits(out, n.day(), 2);
    out.push(b'T');
    digits(out, n.hour(), 2);
    out.push(b':');
    digits(out, n.minute(), 2);
    out.push(b':');
    digits(out, n.second(), 2);
    if nanos != 0 {
        out.push(b'.');
        if nanos.is_multiple_of(1_000_000) {
            digits(out, nanos / 1_000_000, 3);
        } else if nanos.is_multiple_of(1_000) {
            digits(out, nanos / 1_000, 6);
        } else {
            digits(out, nanos, 9);
        }
    }
    out.extend_from_slice(b"Z\"");
}

/// The last `width` decimal digits of `value`, zero-padded.
fn digits(out: &mut Vec<u8>, value: u32, width: u32) {
    let mut unit = 10u32.pow(width.saturating_sub(1));
    while unit > 0 {
        let digit = u8::try_from(value / unit % 10).unwrap_or_default();
        out.push(b'0' + digit);
        unit /= 10;
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
        prop_oneof![
            // Years 0000 to 9999, the written ones.
            8 => (-62_167_219_200i64..253_402_300_799, nanos()).prop_map(|(s, n)| at(s, n)),
            // Years chrono writes with a sign, either side.
            1 => (-100_000_000_000i64..-62_167_219_200, nanos()).prop_map(|(s, n)| at(s, n)),
            1 => (253_402_300_800i64..300_000_000_000, nanos()).prop_map(|(s, n)| at(s, n)),
            // A leap second (the last second of a minute, past 1e9 ns).
            1 => (0i64..4_000_000, 1_000_000_000u32..2_000_000_000)
                .prop_map(|(m, n)| at(m * 60 + 59, n)),
        ]
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
