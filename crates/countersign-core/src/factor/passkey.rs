//! The passkey factor (WebAuthn through webauthn-rs): the tenant's relying
//! party, the user's registered keys, and the compare-and-save updates of
//! the key set (sign-in counters, registration, rename, delete).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    DiscoverableKey, PublicKeyCredential, RegisterPublicKeyCredential, Webauthn,
};

use super::{Check, Verdict, credential, spend, spend_from};
use crate::audit::AuditReason;
use crate::error::{Error, InvalidInput, Result};
use crate::flow::PasskeyChallenge;
use crate::ids::{TenantId, UserId};
use crate::model::parse_display_name;
use crate::store::FactorStore;

/// The largest browser answer (JSON) accepted.
const MAX_CREDENTIAL_JSON: usize = 64 * 1024;

/// A tenant's WebAuthn relying-party settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeySettings {
    /// The relying party id: the site's registrable domain (`example.com`).
    pub rp_id: String,
    /// The relying party name shown by authenticators.
    pub rp_name: String,
    /// The web origin ceremonies come from (`https://login.example.com`).
    pub origin: String,
}

impl PasskeySettings {
    /// Check that the origin is a URL and the relying party id non-empty.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let err = |r: &str| Err(InvalidInput::new("passkey settings", r));
        if self.rp_id.is_empty() || self.rp_id.len() > 253 {
            return err("the relying party id must be a domain");
        }
        if self.rp_name.is_empty() || self.rp_name.len() > 128 {
            return err("the relying party name must be 1 to 128 bytes");
        }
        if url::Url::parse(&self.origin).is_err() {
            return err("the origin must be a URL");
        }
        Ok(())
    }
}

/// One registered passkey.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasskeyEntry {
    /// Our id for it (stable across renames).
    pub id: uuid::Uuid,
    /// The user's name for it.
    pub name: String,
    /// The credential (public key, counter, backup state).
    pub passkey: webauthn_rs::prelude::Passkey,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it was last used to sign in.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl PartialEq for PasskeyEntry {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.name == other.name
            && self.passkey == other.passkey
            && self.created_at == other.created_at
            && self.last_used_at == other.last_used_at
    }
}

/// A user's passkeys.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PasskeysCredential {
    /// The registered passkeys.
    pub keys: Vec<PasskeyEntry>,
}

/// A registered passkey as listed to its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyInfo {
    /// Its id.
    pub id: uuid::Uuid,
    /// Its name.
    pub name: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it last signed in.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<&PasskeyEntry> for PasskeyInfo {
    fn from(e: &PasskeyEntry) -> Self {
        Self {
            id: e.id,
            name: e.name.clone(),
            created_at: e.created_at,
            last_used_at: e.last_used_at,
        }
    }
}

/// Build the WebAuthn relying party of a tenant.
pub(crate) fn webauthn_for(settings: &PasskeySettings) -> Result<Webauthn> {
    let origin = url::Url::parse(&settings.origin)
        .map_err(|_| InvalidInput::new("passkey settings", "bad origin"))?;
    webauthn_rs::prelude::WebauthnBuilder::new(&settings.rp_id, &origin)
        .and_then(|b| b.rp_name(&settings.rp_name).build())
        .map_err(Error::Passkey)
}

fn parse_json<T: serde::de::DeserializeOwned>(json: &str) -> Result<T> {
    if json.len() > MAX_CREDENTIAL_JSON {
        return Err(InvalidInput::new("passkey credential", "too large").into());
    }
    serde_json::from_str(json)
        .map_err(|_| InvalidInput::new("passkey credential", "malformed JSON").into())
}

/// Parse the browser's sign-in answer (`PublicKeyCredential` JSON).
pub(crate) fn parse_assertion(json: &str) -> Result<PublicKeyCredential> {
    parse_json(json)
}

/// Parse the browser's registration answer (`RegisterPublicKeyCredential`).
pub(crate) fn parse_registration(json: &str) -> Result<RegisterPublicKeyCredential> {
    parse_json(json)
}

/// Validate a passkey's display name: 1 to 64 characters.
pub(crate) fn passkey_name(name: &str) -> Result<String> {
    let name = parse_display_name(name).map_err(|e| InvalidInput::new("passkey name", e.reason))?;
    if name.is_empty() || name.chars().count() > 64 {
        return Err(InvalidInput::new("passkey name", "must be 1 to 64 characters").into());
    }
    Ok(name)
}

/// Verify an assertion against `user`'s passkeys and the flow's challenge,
/// then save the key's new signature counter and backup state with a
/// compare-and-save (retried on a conflict).
pub(crate) async fn verify<S: FactorStore>(
    store: &S,
    now: DateTime<Utc>,
    webauthn: &Webauthn,
    tenant: TenantId,
    user: UserId,
    cred: &PublicKeyCredential,
    challenge: PasskeyChallenge,
) -> Result<Check> {
    let Some(stored) = credential::<PasskeysCredential, _>(store, tenant, user).await? else {
        return Ok(Check::Failed(AuditReason::NoCredential));
    };
    let result = match challenge {
        PasskeyChallenge::Known(state) => webauthn.finish_passkey_authentication(cred, &state),
        PasskeyChallenge::Discoverable(state) => {
            let keys: Vec<DiscoverableKey> = stored
                .value
                .keys
                .iter()
                .map(|k| DiscoverableKey::from(&k.passkey))
                .collect();
            #[expect(
                deprecated,
                reason = "the v2 call needs credential internals; this one checks the same"
            )]
            webauthn.finish_discoverable_authentication(cred, state, &keys)
        }
    };
    let Ok(result) = result else {
        return Ok(Check::Failed(AuditReason::BadAssertion));
    };
    // Keep the signature counter and backup state current.
    let first = Some(stored);
    spend_from(
        store,
        tenant,
        user,
        first,
        "passkeys kept changing",
        |set| {
            let Some(mut set): Option<PasskeysCredential> = set else {
                return Ok(Verdict::Keep(Check::Failed(AuditReason::NoCredential)));
            };
            let mut known = false;
            for entry in &mut set.keys {
                if entry.passkey.update_credential(&result).is_some() {
                    entry.last_used_at = Some(now);
                    known = true;
                }
            }
            if !known {
                return Ok(Verdict::Keep(Check::Failed(AuditReason::UnknownPasskey)));
            }
            Ok(Verdict::Save(set, Check::Passed))
        },
    )
    .await
}

/// Add a newly registered passkey to `user`'s set (creating the set if
/// there is none). The same credential twice is refused.
pub(crate) async fn add<S: FactorStore>(
    store: &S,
    tenant: TenantId,
    user: UserId,
    entry: &PasskeyEntry,
) -> Result<()> {
    spend(store, tenant, user, "passkeys kept changing", |set| {
        let mut set: PasskeysCredential = set.unwrap_or_default();
        if set
            .keys
            .iter()
            .any(|k| k.passkey.cred_id() == entry.passkey.cred_id())
        {
            return Err(Error::AlreadyExists("this passkey".into()));
        }
        set.keys.push(entry.clone());
        Ok(Verdict::Save(set, ()))
    })
    .await
}

/// Apply `edit` to `user`'s passkeys and save them if it changed something.
/// Returns whether it did.
pub(crate) async fn edit<S: FactorStore>(
    store: &S,
    tenant: TenantId,
    user: UserId,
    edit: impl Fn(&mut PasskeysCredential) -> bool,
) -> Result<bool> {
    spend(store, tenant, user, "passkeys kept changing", |set| {
        let Some(mut set) = set else {
            return Ok(Verdict::Keep(false));
        };
        Ok(if edit(&mut set) {
            Verdict::Save(set, true)
        } else {
            Verdict::Keep(false)
        })
    })
    .await
}
