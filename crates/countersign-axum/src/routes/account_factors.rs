//! The signed-in user's own factors, under `/v1/me/factors`: list them,
//! enrol and confirm TOTP, email codes and passkeys, regenerate recovery
//! codes, rename and delete passkeys, remove a factor.
//!
//! Enrolling, confirming and removing go through
//! [`countersign_core::SelfService`]: they need a recent authentication
//! (403 `step_up_required` otherwise). Secrets appear only where an
//! endpoint exists to hand a new one out once: the TOTP secret at
//! enrolment and fresh recovery codes.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post};
use chrono::{DateTime, Utc};
use countersign_core::{
    Confirm, Enroll, Enrolled, Error, FactorCredential, FactorKind, PasskeyInfo,
};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::auth::to_json;
use super::views::Accepted;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, Client, Principal};
use crate::{Api, ApiStore};

/// The factor routes.
pub(crate) fn routes<S: ApiStore>() -> Router<Api<S>> {
    Router::new()
        .route("/v1/me/factors", get(list::<S>))
        // `DELETE /v1/me/factors/totp` lands on this static path, not on
        // `{kind}`: it is answered here.
        .route(
            "/v1/me/factors/totp",
            post(enroll_totp::<S>).delete(remove_totp::<S>),
        )
        .route("/v1/me/factors/totp/confirm", post(confirm_totp::<S>))
        .route("/v1/me/factors/recovery-codes", post(recovery_codes::<S>))
        .route("/v1/me/factors/email-otp", post(enroll_email::<S>))
        .route("/v1/me/factors/email-otp/confirm", post(confirm_email::<S>))
        .route(
            "/v1/me/factors/passkeys",
            get(passkeys::<S>).post(enroll_passkey::<S>),
        )
        .route(
            "/v1/me/factors/passkeys/confirm",
            post(confirm_passkey::<S>),
        )
        .route(
            "/v1/me/factors/passkeys/{id}",
            patch(rename_passkey::<S>).delete(delete_passkey::<S>),
        )
        .route("/v1/me/factors/{kind}", delete(remove::<S>))
}

/// The factor routes' OpenAPI paths and schemas.
#[derive(OpenApi)]
#[openapi(
    paths(
        list,
        enroll_totp,
        remove_totp,
        confirm_totp,
        recovery_codes,
        enroll_email,
        confirm_email,
        passkeys,
        enroll_passkey,
        confirm_passkey,
        rename_passkey,
        delete_passkey,
        remove
    ),
    components(schemas(
        FactorView,
        TotpView,
        CodeBody,
        RecoveryCodesView,
        EmailBody,
        PasskeyNameBody,
        PasskeyCeremonyView,
        PasskeyConfirmBody,
        PasskeyView
    ))
)]
pub(crate) struct Doc;

/// One factor the caller has, without its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct FactorView {
    /// `password`, `totp`, `recovery_codes`, `email_otp` or `passkey`.
    kind: &'static str,
    /// Whether it is usable: enrolment confirmed (TOTP, email codes).
    confirmed: bool,
    /// Recovery codes: how many are left unspent.
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining: Option<usize>,
    /// Email codes: the address they go to.
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<String>,
    /// Passkeys: how many are registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<usize>,
}

impl FactorView {
    /// The description of `c`; `None` for an empty passkey set.
    fn of(c: &FactorCredential) -> Option<Self> {
        let mut v = FactorView {
            kind: c.kind().as_str(),
            confirmed: true,
            remaining: None,
            address: None,
            count: None,
        };
        match c {
            FactorCredential::Password(_) => {}
            FactorCredential::Totp(t) => v.confirmed = t.confirmed,
            FactorCredential::RecoveryCodes(r) => {
                v.remaining = Some(r.codes.iter().filter(|c| c.used_at.is_none()).count());
            }
            FactorCredential::EmailOtp(e) => {
                v.confirmed = e.confirmed;
                v.address = Some(e.address.as_str().to_owned());
            }
            FactorCredential::Passkey(p) if p.keys.is_empty() => return None,
            FactorCredential::Passkey(p) => v.count = Some(p.keys.len()),
            // A kind added to core later: named, with no detail.
            _ => {}
        }
        Some(v)
    }
}

/// What an authenticator app needs. Shown once. No `Debug`: it carries
/// the secret.
#[derive(Serialize, ToSchema)]
pub(crate) struct TotpView {
    /// The secret in base32, for manual entry.
    secret_base32: String,
    /// The `otpauth://totp/...` URI.
    otpauth_uri: String,
    /// The URI as a QR code (an SVG image).
    qr_svg: String,
}

/// A code proving an enrolment. No `Debug`: it carries a secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CodeBody {
    /// The code.
    code: String,
}

/// Fresh recovery codes, replacing (and voiding) the old set. Shown once:
/// only their hashes are kept. No `Debug`: it carries the codes.
#[derive(Serialize, ToSchema)]
pub(crate) struct RecoveryCodesView {
    /// The codes (`xxxx-xxxx-xxxx-xxxx`), each usable once.
    codes: Vec<String>,
}

/// An address for email codes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EmailBody {
    /// The address; a confirmation code is sent to it.
    address: String,
}

/// A passkey's name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasskeyNameBody {
    /// The caller's name for it.
    name: String,
}

/// A passkey registration begun. No `Debug`: the ceremony token is a
/// secret.
#[derive(Serialize, ToSchema)]
pub(crate) struct PasskeyCeremonyView {
    /// The ceremony token: pass it back with the browser's answer.
    ceremony: String,
    /// The options for `navigator.credentials.create`.
    #[schema(value_type = Object)]
    challenge: serde_json::Value,
}

/// The browser's answer to a registration. No `Debug`: the ceremony token
/// is a secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasskeyConfirmBody {
    /// The ceremony token from the registration's start.
    ceremony: String,
    /// The `PublicKeyCredential` from `navigator.credentials.create`, as a
    /// JSON object or a string.
    #[schema(value_type = Object)]
    credential: serde_json::Value,
}

/// A registered passkey.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct PasskeyView {
    /// Its id (to rename or delete it).
    id: uuid::Uuid,
    /// Its name.
    name: String,
    /// When it was registered.
    created_at: DateTime<Utc>,
    /// When it last signed in.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used_at: Option<DateTime<Utc>>,
}

impl From<&PasskeyInfo> for PasskeyView {
    fn from(p: &PasskeyInfo) -> Self {
        PasskeyView {
            id: p.id,
            name: p.name.clone(),
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }
}

/// Core answered an enrolment with another kind than the one asked for.
fn unexpected_enrolment() -> ApiError {
    tracing::error!("an enrolment answered with another factor kind");
    ApiError::internal()
}

/// A passkey id from the path: the nil UUID is refused as the typed ids
/// refuse it.
fn passkey_id(id: uuid::Uuid) -> ApiResult<uuid::Uuid> {
    if id.is_nil() {
        return Err(ApiError::invalid("the nil UUID is not an id"));
    }
    Ok(id)
}

/// The caller's factors.
#[utoipa::path(get, path = "/v1/me/factors", tag = "factors",
    security(("session" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<FactorView>, description = "The caller's factors, by kind name"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
) -> ApiResult<Json<Vec<FactorView>>> {
    let factors = api
        .authn()
        .store()
        .user_factors(principal.tenant(), principal.user())
        .await
        .map_err(Error::store)?;
    Ok(Json(
        factors
            .iter()
            .filter_map(|f| FactorView::of(&f.value))
            .collect(),
    ))
}

/// Begin enrolling TOTP: the secret, shown once.
#[utoipa::path(post, path = "/v1/me/factors/totp", tag = "factors",
    security(("session" = []), ("cookie" = [])),
    responses((status = 200, body = TotpView, description = "Add it to an authenticator app, then confirm with a code (shown once)"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn enroll_totp<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
) -> ApiResult<Json<TotpView>> {
    let enrolled = api
        .authn()
        .self_service(principal.session())
        .enroll(Enroll::Totp, &client)
        .await?;
    let Enrolled::Totp(m) = enrolled else {
        return Err(unexpected_enrolment());
    };
    Ok(Json(TotpView {
        secret_base32: m.secret_base32,
        otpauth_uri: m.uri,
        qr_svg: m.qr_svg,
    }))
}

/// Confirm TOTP with a first code.
#[utoipa::path(post, path = "/v1/me/factors/totp/confirm", tag = "factors",
    security(("session" = []), ("cookie" = [])),
    request_body = CodeBody,
    responses((status = 204, description = "TOTP is enrolled"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn confirm_totp<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiJson(body): ApiJson<CodeBody>,
) -> ApiResult<StatusCode> {
    api.authn()
        .self_service(principal.session())
        .confirm(Confirm::Totp { code: &body.code }, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Generate a new set of recovery codes, shown once.
#[utoipa::path(post, path = "/v1/me/factors/recovery-codes", tag = "factors",
    security(("session" = []), ("cookie" = [])),
    responses((status = 200, body = RecoveryCodesView, description = "A new set (the old one no longer works); shown once"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn recovery_codes<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
) -> ApiResult<Json<RecoveryCodesView>> {
    let enrolled = api
        .authn()
        .self_service(principal.session())
        .enroll(Enroll::RecoveryCodes, &client)
        .await?;
    let Enrolled::RecoveryCodes(codes) = enrolled else {
        return Err(unexpected_enrolment());
    };
    Ok(Json(RecoveryCodesView { codes }))
}

/// Begin enrolling email codes: a code is mailed to the address.
#[utoipa::path(post, path = "/v1/me/factors/email-otp", tag = "factors",
    security(("session" = []), ("cookie" = [])),
    request_body = EmailBody,
    responses((status = 202, body = Accepted, description = "A confirmation code was mailed to the address"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn enroll_email<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiJson(body): ApiJson<EmailBody>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    api.authn()
        .self_service(principal.session())
        .enroll(
            Enroll::EmailOtp {
                address: &body.address,
            },
            &client,
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted::YES)))
}

/// Confirm email codes with the mailed code.
#[utoipa::path(post, path = "/v1/me/factors/email-otp/confirm", tag = "factors",
    security(("session" = []), ("cookie" = [])),
    request_body = CodeBody,
    responses((status = 204, description = "Email codes are enrolled"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn confirm_email<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiJson(body): ApiJson<CodeBody>,
) -> ApiResult<StatusCode> {
    api.authn()
        .self_service(principal.session())
        .confirm(Confirm::EmailOtp { code: &body.code }, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's passkeys.
#[utoipa::path(get, path = "/v1/me/factors/passkeys", tag = "factors",
    security(("session" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<PasskeyView>, description = "The caller's passkeys"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn passkeys<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
) -> ApiResult<Json<Vec<PasskeyView>>> {
    let keys = api
        .authn()
        .passkeys(principal.tenant(), principal.user())
        .await?;
    Ok(Json(keys.iter().map(PasskeyView::from).collect()))
}

/// Begin registering a passkey.
#[utoipa::path(post, path = "/v1/me/factors/passkeys", tag = "factors",
    security(("session" = []), ("cookie" = [])),
    request_body = PasskeyNameBody,
    responses((status = 200, body = PasskeyCeremonyView, description = "Pass `challenge` to `navigator.credentials.create`, then confirm"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn enroll_passkey<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiJson(body): ApiJson<PasskeyNameBody>,
) -> ApiResult<Json<PasskeyCeremonyView>> {
    let enrolled = api
        .authn()
        .self_service(principal.session())
        .enroll(Enroll::Passkey { name: &body.name }, &client)
        .await?;
    let Enrolled::Passkey {
        ceremony,
        challenge,
    } = enrolled
    else {
        return Err(unexpected_enrolment());
    };
    Ok(Json(PasskeyCeremonyView {
        ceremony: ceremony.expose().to_owned(),
        challenge: to_json(&*challenge)?,
    }))
}

/// Finish registering a passkey with the browser's answer.
#[utoipa::path(post, path = "/v1/me/factors/passkeys/confirm", tag = "factors",
    security(("session" = []), ("cookie" = [])),
    request_body = PasskeyConfirmBody,
    responses((status = 200, body = PasskeyView, description = "The passkey is registered"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn confirm_passkey<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiJson(body): ApiJson<PasskeyConfirmBody>,
) -> ApiResult<Json<PasskeyView>> {
    let credential = match &body.credential {
        serde_json::Value::String(s) => s.clone(),
        v @ serde_json::Value::Object(_) => v.to_string(),
        _ => {
            return Err(ApiError::invalid(
                "`credential` must be a JSON object or a string",
            ));
        }
    };
    let proof = Confirm::Passkey {
        ceremony: &body.ceremony,
        credential: &credential,
    };
    let info = api
        .authn()
        .self_service(principal.session())
        .confirm(proof, &client)
        .await?
        .ok_or_else(unexpected_enrolment)?;
    Ok(Json(PasskeyView::from(&info)))
}

/// Rename one of the caller's passkeys.
#[utoipa::path(patch, path = "/v1/me/factors/passkeys/{id}", tag = "factors",
    security(("session" = []), ("cookie" = [])),
    params(("id" = uuid::Uuid, Path, description = "One of the caller's passkeys")),
    request_body = PasskeyNameBody,
    responses((status = 204, description = "Renamed"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn rename_passkey<S: ApiStore>(
    State(api): State<Api<S>>,
    principal: Principal,
    ApiPath(id): ApiPath<uuid::Uuid>,
    ApiJson(body): ApiJson<PasskeyNameBody>,
) -> ApiResult<StatusCode> {
    let id = passkey_id(id)?;
    let found = api
        .authn()
        .rename_passkey(principal.tenant(), principal.user(), id, &body.name)
        .await?;
    if !found {
        return Err(ApiError::not_found("no such passkey"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Delete one of the caller's passkeys.
#[utoipa::path(delete, path = "/v1/me/factors/passkeys/{id}", tag = "factors",
    security(("session" = []), ("cookie" = [])),
    params(("id" = uuid::Uuid, Path, description = "One of the caller's passkeys")),
    responses((status = 204, description = "Deleted"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn delete_passkey<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> ApiResult<StatusCode> {
    let id = passkey_id(id)?;
    let gone = api
        .authn()
        .self_service(principal.session())
        .delete_passkey(id, &client)
        .await?;
    if !gone {
        return Err(ApiError::not_found("no such passkey"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Remove the caller's TOTP.
#[utoipa::path(delete, path = "/v1/me/factors/totp", tag = "factors",
    security(("session" = []), ("cookie" = [])),
    responses((status = 204, description = "TOTP is removed"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn remove_totp<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
) -> ApiResult<StatusCode> {
    remove_kind(&api, &client, &principal, FactorKind::Totp).await
}

/// Remove the caller's factor of one kind.
#[utoipa::path(delete, path = "/v1/me/factors/{kind}", tag = "factors",
    security(("session" = []), ("cookie" = [])),
    params(("kind" = String, Path, description = "`totp`, `recovery_codes` or `email_otp` (passkeys are deleted one by one; the password stays)")),
    responses((status = 204, description = "The factor is removed"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn remove<S: ApiStore>(
    State(api): State<Api<S>>,
    Client(client): Client,
    principal: Principal,
    ApiPath(kind): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let kind = match kind.parse::<FactorKind>() {
        Ok(k @ (FactorKind::Totp | FactorKind::RecoveryCodes | FactorKind::EmailOtp)) => k,
        Ok(FactorKind::Password | FactorKind::Passkey | FactorKind::OidcIdToken) | Err(_) => {
            return Err(ApiError::invalid(format!(
                "`{kind}` cannot be removed here: one of `totp`, `recovery_codes`, `email_otp`"
            )));
        }
    };
    remove_kind(&api, &client, &principal, kind).await
}

/// Remove the caller's factor of `kind`: 204, or 404 when none is
/// enrolled.
async fn remove_kind<S: ApiStore>(
    api: &Api<S>,
    client: &countersign_core::ClientInfo,
    principal: &Principal,
    kind: FactorKind,
) -> ApiResult<StatusCode> {
    let removed = api
        .authn()
        .self_service(principal.session())
        .remove_factor(kind, client)
        .await?;
    if !removed {
        return Err(ApiError::not_found(format!(
            "no `{kind}` factor is enrolled"
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}
