//! User profiles: tiers, a tenant's declared attributes, and what the
//! store and the services take to change and search them.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::InvalidInput;
use crate::ids::UserId;
use crate::model::AccountState;

/// The most attributes a tenant may declare.
pub const MAX_ATTRIBUTES: usize = 32;
/// The most bytes a user's attributes take, serialized as JSON.
pub const MAX_ATTRIBUTES_BYTES: usize = 8 * 1024;
/// The longest search text of a [`UserQuery`], in characters.
pub const MAX_QUERY_CHARS: usize = 256;
/// The most values a [`AttributeKind::Choice`] offers.
pub const MAX_CHOICES: usize = 64;

/// A user's attributes: declared names to JSON values, checked against the
/// tenant's [`ProfileSchema`].
pub type Attributes = BTreeMap<String, Value>;

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'
}

/// A user's tier (such as `free` or `premium`, or any a tenant defines):
/// 1 to 64 of `a-z`, `0-9`, `_` and `-`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tier(String);

impl Tier {
    /// Validate a tier from caller input.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let err = |r: &str| InvalidInput::new("tier", r);
        if s.is_empty() || s.len() > 64 {
            return Err(err("must be 1 to 64 characters"));
        }
        if !s.bytes().all(|b| is_name_byte(b) || b == b'-') {
            return Err(err("only a-z, 0-9, `_` and `-` are allowed"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The `free` tier.
    pub fn free() -> Self {
        Self("free".into())
    }

    /// The `premium` tier.
    pub fn premium() -> Self {
        Self("premium".into())
    }

    /// The tier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Tier {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, InvalidInput> {
        Self::parse(&s)
    }
}
impl From<Tier> for String {
    fn from(t: Tier) -> String {
        t.0
    }
}
impl FromStr for Tier {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, InvalidInput> {
        Self::parse(s)
    }
}
impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tier({:?})", self.0)
    }
}

/// What values an attribute takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AttributeKind {
    /// A string of at most `max_chars` characters (1 to 8192), without
    /// control characters.
    Text {
        /// The most characters.
        max_chars: u32,
    },
    /// A whole number in `min..=max`.
    Integer {
        /// The least value.
        min: i64,
        /// The greatest value.
        max: i64,
    },
    /// `true` or `false`.
    Boolean,
    /// One of `values` (1 to 64 distinct strings of 1 to 64 characters).
    Choice {
        /// The allowed values.
        values: Vec<String>,
    },
}

impl AttributeKind {
    fn validate(&self) -> Result<(), InvalidInput> {
        let err = |r: &str| InvalidInput::new("profile schema", r);
        match self {
            AttributeKind::Text { max_chars } => {
                if *max_chars == 0 || *max_chars as usize > MAX_ATTRIBUTES_BYTES {
                    return Err(err("a text attribute's max_chars must be 1 to 8192"));
                }
            }
            AttributeKind::Integer { min, max } => {
                if min > max {
                    return Err(err("an integer attribute's min must not exceed its max"));
                }
            }
            AttributeKind::Boolean => {}
            AttributeKind::Choice { values } => {
                if values.is_empty() || values.len() > MAX_CHOICES {
                    return Err(err("a choice attribute offers 1 to 64 values"));
                }
                let mut seen = HashSet::new();
                for v in values {
                    let n = v.chars().count();
                    if n == 0 || n > 64 || v.chars().any(char::is_control) {
                        return Err(err("a choice value is 1 to 64 characters, no control"));
                    }
                    if !seen.insert(v) {
                        return Err(err("choice values must be distinct"));
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether `value` is one of this kind's values.
    fn admits(&self, value: &Value) -> bool {
        match (self, value) {
            (AttributeKind::Text { max_chars }, Value::String(s)) => {
                s.chars().count() <= *max_chars as usize && !s.chars().any(char::is_control)
            }
            (AttributeKind::Integer { min, max }, Value::Number(n)) => {
                n.as_i64().is_some_and(|i| (*min..=*max).contains(&i))
            }
            (AttributeKind::Boolean, Value::Bool(_)) => true,
            (AttributeKind::Choice { values }, Value::String(s)) => values.contains(s),
            _ => false,
        }
    }
}

/// One attribute a tenant declares for its users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeDecl {
    /// Its name: 1 to 64 of `a-z`, `0-9` and `_`.
    pub name: String,
    /// Its values.
    pub kind: AttributeKind,
    /// Whether users may change it themselves
    /// ([`SelfService::update_profile`](crate::SelfService::update_profile)).
    #[serde(default)]
    pub user_editable: bool,
}

/// The shape of a tenant's user profiles: the tiers it allows, the tier
/// new users get, and the attributes it declares. Kept on
/// [`TenantPolicy::profile`](crate::TenantPolicy::profile).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProfileSchema {
    /// The allowed tiers; empty allows any valid tier.
    pub tiers: Vec<Tier>,
    /// The tier a registered user gets, if any (one of `tiers` when those
    /// are given).
    pub default_tier: Option<Tier>,
    /// The declared attributes (at most [`MAX_ATTRIBUTES`], distinct names).
    pub attributes: Vec<AttributeDecl>,
}

impl ProfileSchema {
    /// Check the schema itself: distinct tiers, a default tier among them,
    /// at most [`MAX_ATTRIBUTES`] attributes with distinct valid names and
    /// sane bounds.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let err = |r: &str| InvalidInput::new("profile schema", r);
        if self.tiers.iter().collect::<HashSet<_>>().len() != self.tiers.len() {
            return Err(err("tiers must be distinct"));
        }
        if let Some(d) = &self.default_tier
            && !self.allows_tier(d)
        {
            return Err(err("the default tier must be one of the tiers"));
        }
        if self.attributes.len() > MAX_ATTRIBUTES {
            return Err(err("at most 32 attributes"));
        }
        let mut names = HashSet::new();
        for a in &self.attributes {
            if a.name.is_empty() || a.name.len() > 64 || !a.name.bytes().all(is_name_byte) {
                return Err(err("an attribute name is 1 to 64 of a-z, 0-9 and `_`"));
            }
            if !names.insert(a.name.as_str()) {
                return Err(err("attribute names must be distinct"));
            }
            a.kind.validate()?;
        }
        Ok(())
    }

    /// Whether users of the tenant may have `tier`.
    pub fn allows_tier(&self, tier: &Tier) -> bool {
        self.tiers.is_empty() || self.tiers.contains(tier)
    }

    /// The declaration of `name`, if the schema has one.
    pub fn attribute(&self, name: &str) -> Option<&AttributeDecl> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// Check a user's attributes: every name declared, every value of its
    /// kind and within its bounds, at most [`MAX_ATTRIBUTES_BYTES`] as JSON.
    pub fn check(&self, attributes: &Attributes) -> Result<(), InvalidInput> {
        let err = |r: String| InvalidInput::new("attributes", r);
        for (name, value) in attributes {
            let Some(decl) = self.attribute(name) else {
                return Err(err(format!("`{name}` is not declared")));
            };
            if !decl.kind.admits(value) {
                return Err(err(format!("`{name}` is not a value of its kind")));
            }
        }
        let size = serde_json::to_string(attributes)
            .map_err(|e| err(e.to_string()))?
            .len();
        if size > MAX_ATTRIBUTES_BYTES {
            return Err(err(format!("more than {MAX_ATTRIBUTES_BYTES} bytes")));
        }
        Ok(())
    }
}

/// An attribute value as text (for Cedar tags): strings as they are,
/// integers in decimal, booleans as `true`/`false`, anything else as JSON.
pub fn attribute_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The profile fields [`IdentityAdmin::update_profile`] replaces.
///
/// [`IdentityAdmin::update_profile`]: crate::IdentityAdmin::update_profile
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// The display name.
    pub display_name: Option<String>,
    /// The tier.
    pub tier: Option<Tier>,
    /// The attributes.
    pub attributes: Attributes,
}

/// A search of a tenant's users
/// ([`IdentityLookup::search_users`](crate::IdentityLookup::search_users)):
/// every given field narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserQuery {
    /// A substring of the identifier, email or display name, matched
    /// literally (`%`, `_` and `\` are no wildcards) and regardless of
    /// ASCII case; at most [`MAX_QUERY_CHARS`] characters.
    pub text: Option<String>,
    /// Only users in this state.
    pub state: Option<AccountState>,
    /// Only users of this tier.
    pub tier: Option<Tier>,
    /// Only users whose id is greater (the last id of the previous page).
    pub after: Option<UserId>,
    /// At most this many users (capped at [`MAX_PAGE`](crate::store::MAX_PAGE)).
    pub limit: u32,
}

impl UserQuery {
    /// Whether `user` passes every filter but `after` and `limit`: the
    /// reference semantics (case folding: Unicode lowercase, which agrees
    /// with the SQL backends on ASCII letters).
    pub fn matches(&self, user: &crate::model::User) -> bool {
        let text_ok = match self.text.as_deref().map(str::to_lowercase) {
            None => true,
            Some(t) => {
                let has = |s: &str| s.to_lowercase().contains(&t);
                has(user.identifier.as_str())
                    || user.email.as_ref().is_some_and(|e| has(e.as_str()))
                    || user.display_name.as_deref().is_some_and(has)
            }
        };
        text_ok
            && self.state.is_none_or(|s| user.state == s)
            && self
                .tier
                .as_ref()
                .is_none_or(|t| user.tier.as_ref() == Some(t))
    }
}

/// An administrator's change to a user's profile
/// ([`AuthnService::update_profile`](crate::AuthnService::update_profile)):
/// `None` leaves a field as it is; `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChange<'a> {
    /// The new display name (raw input: trimmed and checked).
    pub display_name: Option<Option<&'a str>>,
    /// The new tier (raw input: parsed and checked against the schema).
    pub tier: Option<Option<&'a str>>,
    /// The new attributes, replacing all of them (checked against the schema).
    pub attributes: Option<Attributes>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> ProfileSchema {
        ProfileSchema {
            tiers: vec![Tier::free(), Tier::premium()],
            default_tier: Some(Tier::free()),
            attributes: vec![
                AttributeDecl {
                    name: "nickname".into(),
                    kind: AttributeKind::Text { max_chars: 8 },
                    user_editable: true,
                },
                AttributeDecl {
                    name: "seats".into(),
                    kind: AttributeKind::Integer { min: 1, max: 10 },
                    user_editable: false,
                },
                AttributeDecl {
                    name: "beta".into(),
                    kind: AttributeKind::Boolean,
                    user_editable: true,
                },
                AttributeDecl {
                    name: "team".into(),
                    kind: AttributeKind::Choice {
                        values: vec!["red".into(), "blue".into()],
                    },
                    user_editable: false,
                },
            ],
        }
    }

    fn attrs(v: Value) -> Attributes {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn tiers_parse_strictly() {
        assert_eq!(Tier::parse("gold-2_x").unwrap().as_str(), "gold-2_x");
        for bad in ["", "Gold", "a b", "é", &"a".repeat(65)] {
            assert!(Tier::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Tier::parse(&"a".repeat(64)).is_ok());
        assert_eq!(
            serde_json::to_value(Tier::premium()).unwrap(),
            json!("premium")
        );
        assert!(serde_json::from_value::<Tier>(json!("NO")).is_err());
    }

    #[test]
    fn schemas_are_validated() {
        assert!(schema().validate().is_ok());
        assert!(ProfileSchema::default().validate().is_ok());
        let mut s = schema();
        s.default_tier = Some(Tier::parse("gold").unwrap());
        assert!(s.validate().is_err());
        let mut s = schema();
        s.tiers.push(Tier::free());
        assert!(s.validate().is_err());
        let mut s = schema();
        s.attributes.push(s.attributes[0].clone());
        assert!(s.validate().is_err(), "duplicate name");
        let mut s = schema();
        s.attributes[0].name = "Bad".into();
        assert!(s.validate().is_err());
        let mut s = schema();
        s.attributes[1].kind = AttributeKind::Integer { min: 2, max: 1 };
        assert!(s.validate().is_err());
        let mut s = schema();
        s.attributes[0].kind = AttributeKind::Text { max_chars: 0 };
        assert!(s.validate().is_err());
        let mut s = schema();
        s.attributes[3].kind = AttributeKind::Choice { values: vec![] };
        assert!(s.validate().is_err());
        let mut s = ProfileSchema {
            attributes: (0..=MAX_ATTRIBUTES)
                .map(|i| AttributeDecl {
                    name: format!("a{i}"),
                    kind: AttributeKind::Boolean,
                    user_editable: false,
                })
                .collect(),
            ..ProfileSchema::default()
        };
        assert!(s.validate().is_err(), "too many");
        s.attributes.pop();
        assert!(s.validate().is_ok());
    }

    #[test]
    fn attributes_are_checked_against_the_schema() {
        let s = schema();
        let ok = attrs(json!({"nickname": "al", "seats": 3, "beta": true, "team": "red"}));
        assert!(s.check(&ok).is_ok());
        assert!(s.check(&Attributes::new()).is_ok());
        for bad in [
            json!({"unknown": 1}),
            json!({"nickname": "much too long"}),
            json!({"nickname": "a\u{7}"}),
            json!({"nickname": 5}),
            json!({"seats": 11}),
            json!({"seats": 1.5}),
            json!({"seats": "3"}),
            json!({"beta": "true"}),
            json!({"team": "green"}),
            json!({"team": null}),
        ] {
            assert!(s.check(&attrs(bad.clone())).is_err(), "{bad}");
        }
        let big = ProfileSchema {
            attributes: (0..3)
                .map(|i| AttributeDecl {
                    name: format!("t{i}"),
                    kind: AttributeKind::Text { max_chars: 8192 },
                    user_editable: false,
                })
                .collect(),
            ..ProfileSchema::default()
        };
        let v = "x".repeat(3000);
        let over = attrs(json!({"t0": v, "t1": v, "t2": v}));
        assert!(big.check(&over).is_err(), "over 8 KiB");
        assert!(big.check(&attrs(json!({"t0": v, "t1": v}))).is_ok());
    }

    #[test]
    fn attribute_text_for_cedar() {
        assert_eq!(attribute_text(&json!("red")), "red");
        assert_eq!(attribute_text(&json!(-42)), "-42");
        assert_eq!(attribute_text(&json!(true)), "true");
    }
}
