//! Profiles: display name, tier and attributes, changed by administrators
//! or (the fields the tenant allows) by the user, checked against the
//! tenant's [`ProfileSchema`]; and the administrators' user search.

use chrono::{DateTime, Duration, SubsecRound, Utc};

use super::AuthnService;
use crate::audit::{AuditDetail, AuditKind, AuditReason};
use crate::env::Request;
use crate::error::{Error, InvalidInput, Result, store_err};
use crate::ids::{TenantId, UserId};
use crate::model::{ClientInfo, User, parse_display_name};
use crate::profile::{
    Attributes, MAX_QUERY_CHARS, Profile, ProfileChange, ProfileSchema, Tier, UserQuery,
};
use crate::store::Store;

/// Who changes a profile: an administrator may change every field, a user
/// only the display name and the attributes the schema marks editable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Editor {
    Admin,
    User,
}

/// A change that passed the checks that need no stored user.
struct Checked {
    display_name: Option<Option<String>>,
    tier: Option<Option<Tier>>,
    attributes: Option<Attributes>,
}

/// The `updated_at` of a write made at `now` over a profile last written
/// at `prev`: `now` to the microsecond (what every store keeps), but
/// always after `prev`, so that each write changes the compare-and-set
/// version even under a stopped or coarse clock.
fn next_version(prev: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    now.trunc_subsecs(6)
        .max(prev.trunc_subsecs(6) + Duration::microseconds(1))
}

impl<S: Store> AuthnService<S> {
    /// Change a user's profile as an administrator: any of the display
    /// name, the tier (one the tenant's [`ProfileSchema`] allows) and the
    /// attributes (all replaced, checked against the schema). Returns the
    /// user as changed.
    ///
    /// Bad input (a malformed display name or tier, a tier the tenant does
    /// not allow, attributes outside the schema or over 8 KiB) is
    /// [`Error::InvalidInput`]: nothing is written but a failure audit
    /// event. A change is a compare-and-set on the user's `updated_at`,
    /// retried once when a concurrent change lands first, then
    /// [`Error::Concurrent`]; each applied change is audited
    /// ([`AuditKind::ProfileChanged`], naming the fields that changed).
    /// Access tokens carry the new tier from their next mint; an
    /// [`AuthzService`](crate::AuthzService) that already decided for the
    /// user keeps its facts until [`forget_user`](crate::AuthzService::forget_user).
    pub async fn update_profile(
        &self,
        tenant: TenantId,
        user: UserId,
        change: ProfileChange<'_>,
        client: &ClientInfo,
    ) -> Result<User> {
        let rq = self.env.request(client);
        self.change_profile(tenant, user, &change, Editor::Admin, None, rq)
            .await
    }

    /// [`update_profile`](Self::update_profile) made from the version of
    /// the user whose `updated_at` is `expected` (compared at microseconds,
    /// the stores' precision): if the user changed since, the answer is
    /// [`Error::Concurrent`] and nothing is written, also when the other
    /// change lands between the check and the write (the write is a
    /// compare-and-set on `expected`, never retried over a newer version).
    pub async fn update_profile_from(
        &self,
        tenant: TenantId,
        user: UserId,
        change: ProfileChange<'_>,
        expected: DateTime<Utc>,
        client: &ClientInfo,
    ) -> Result<User> {
        let rq = self.env.request(client);
        self.change_profile(tenant, user, &change, Editor::Admin, Some(expected), rq)
            .await
    }

    /// Search the tenant's users ([`UserQuery`]: text in the identifier,
    /// email or display name, state, tier), ordered by id, one page at a
    /// time: pass the last id of a page as the next query's `after`. A
    /// text over [`MAX_QUERY_CHARS`] characters or with control
    /// characters is [`Error::InvalidInput`]; an empty one filters nothing.
    pub async fn search_users(&self, tenant: TenantId, mut query: UserQuery) -> Result<Vec<User>> {
        if let Some(text) = &query.text {
            if text.chars().count() > MAX_QUERY_CHARS || text.chars().any(char::is_control) {
                return Err(InvalidInput::new(
                    "query",
                    "at most 256 characters, no control characters",
                )
                .into());
            }
            if text.is_empty() {
                query.text = None;
            }
        }
        self.tenant(tenant).await?;
        self.store
            .search_users(tenant, &query)
            .await
            .map_err(store_err)
    }

    /// A refused profile change, audited.
    async fn refuse_profile(
        &self,
        tenant: TenantId,
        user: UserId,
        error: InvalidInput,
        why: AuditReason,
        rq: Request<'_>,
    ) -> Result<User> {
        let event = self.failure(tenant, Some(user), AuditKind::ProfileChanged, rq);
        self.audit(event.map(|e| e.with_detail(why))).await?;
        Err(error.into())
    }

    /// Check what can be checked of `change` without the user.
    fn check_change(
        schema: &ProfileSchema,
        change: &ProfileChange<'_>,
        editor: Editor,
    ) -> std::result::Result<Checked, (InvalidInput, AuditReason)> {
        let invalid = |e| (e, AuditReason::InvalidProfile);
        let display_name = change
            .display_name
            .map(|d| d.map(parse_display_name).transpose())
            .transpose()
            .map_err(invalid)?;
        let tier = match change.tier {
            None => None,
            Some(_) if editor == Editor::User => {
                let e = InvalidInput::new("tier", "users may not change their tier");
                return Err((e, AuditReason::NotEditable));
            }
            Some(None) => Some(None),
            Some(Some(raw)) => {
                let tier = Tier::parse(raw).map_err(invalid)?;
                if !schema.allows_tier(&tier) {
                    let e = InvalidInput::new("tier", format!("`{tier}` is not a tier here"));
                    return Err(invalid(e));
                }
                Some(Some(tier))
            }
        };
        if let Some(a) = &change.attributes {
            schema.check(a).map_err(invalid)?;
        }
        Ok(Checked {
            display_name,
            tier,
            attributes: change.attributes.clone(),
        })
    }

    /// Apply `change` to `user` by `editor`: checked, compare-and-set,
    /// retried once, audited.
    pub(super) async fn change_profile(
        &self,
        tenant: TenantId,
        user: UserId,
        change: &ProfileChange<'_>,
        editor: Editor,
        expected: Option<DateTime<Utc>>,
        rq: Request<'_>,
    ) -> Result<User> {
        let tenant_row = self.tenant(tenant).await?;
        let schema = &tenant_row.policy.profile;
        let checked = match Self::check_change(schema, change, editor) {
            Ok(c) => c,
            Err((e, why)) => {
                self.user(tenant, user).await?;
                return self.refuse_profile(tenant, user, e, why, rq).await;
            }
        };
        for _ in 0..2 {
            let current = self.user(tenant, user).await?;
            if let Some(expected) = expected
                && current.updated_at.trunc_subsecs(6) != expected.trunc_subsecs(6)
            {
                return Err(Error::Concurrent(
                    "the user changed since the version the change was made from",
                ));
            }
            let profile = Profile {
                display_name: checked
                    .display_name
                    .clone()
                    .unwrap_or_else(|| current.display_name.clone()),
                tier: checked.tier.clone().unwrap_or_else(|| current.tier.clone()),
                attributes: checked
                    .attributes
                    .clone()
                    .unwrap_or_else(|| current.attributes.clone()),
            };
            if editor == Editor::User
                && let Some(name) = locked_attribute(schema, &current.attributes, &profile)
            {
                let e = InvalidInput::new("attributes", format!("`{name}` is not editable"));
                return self
                    .refuse_profile(tenant, user, e, AuditReason::NotEditable, rq)
                    .await;
            }
            let at = next_version(current.updated_at, rq.now);
            let written = self
                .store
                .update_profile(tenant, user, &profile, current.updated_at, at)
                .await
                .map_err(store_err)?;
            if !written {
                continue;
            }
            let mut fields = Vec::new();
            if profile.display_name != current.display_name {
                fields.push("display_name");
            }
            if profile.tier != current.tier {
                fields.push("tier");
            }
            if profile.attributes != current.attributes {
                fields.push("attributes");
            }
            self.audit(
                self.success(tenant, Some(user), AuditKind::ProfileChanged, rq)
                    .map(|e| e.with_detail(AuditDetail::Change(fields.join(",")))),
            )
            .await?;
            return Ok(User {
                display_name: profile.display_name,
                tier: profile.tier,
                attributes: profile.attributes,
                updated_at: at,
                ..current
            });
        }
        Err(Error::Concurrent("profile changed meanwhile"))
    }
}

/// The first attribute `profile` changes from `before` that users may not
/// edit (an undeclared one counts as not editable).
fn locked_attribute<'a>(
    schema: &ProfileSchema,
    before: &'a Attributes,
    profile: &'a Profile,
) -> Option<&'a str> {
    before
        .keys()
        .chain(profile.attributes.keys())
        .find(|name| {
            before.get(*name) != profile.attributes.get(*name)
                && !schema.attribute(name).is_some_and(|d| d.user_editable)
        })
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_always_move_forward_to_the_microsecond() {
        let t = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        let later = t + Duration::seconds(1);
        assert_eq!(next_version(t, later), later.trunc_subsecs(6));
        let same = next_version(t, t);
        assert!(same > t);
        assert_eq!(same, same.trunc_subsecs(6));
        assert!(next_version(later, t) > later);
    }
}
