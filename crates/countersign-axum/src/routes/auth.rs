//! Sign-in and everything before it, under `/v1/tenants/{tenant}`:
//! registration and address verification, login flows (every factor),
//! refresh, password forgot and reset, introspection and the JWKS.

use axum::Json;
use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use countersign_core::{
    FactorResponse, LoginStatus, RbacName, Registration, SecretToken, Submission, TenantId,
};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::views::{Accepted, IssuedView, UserView};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, Client, TenantParam};
use crate::{Api, ApiStore};

pub(crate) fn routes<S: ApiStore>() -> Router<Api<S>> {
    Router::new()
        .route("/v1/tenants/{tenant}/register", post(register::<S>))
        .route("/v1/tenants/{tenant}/register/verify", post(verify::<S>))
        .route("/v1/tenants/{tenant}/register/resend", post(resend::<S>))
        .route("/v1/tenants/{tenant}/login", post(begin_login::<S>))
        .route(
            "/v1/tenants/{tenant}/login/passkey",
            post(begin_passkey::<S>),
        )
        .route("/v1/tenants/{tenant}/login/oidc", post(begin_oidc::<S>))
        .route("/v1/tenants/{tenant}/login/submit", post(submit::<S>))
        .route(
            "/v1/tenants/{tenant}/login/password",
            post(password_login::<S>),
        )
        .route(
            "/v1/tenants/{tenant}/login/email-code",
            post(email_code::<S>),
        )
        .route(
            "/v1/tenants/{tenant}/login/passkey-challenge",
            post(passkey_challenge::<S>),
        )
        .route("/v1/tenants/{tenant}/password/forgot", post(forgot::<S>))
        .route("/v1/tenants/{tenant}/password/reset", post(reset::<S>))
        .route("/v1/tenants/{tenant}/token/refresh", post(refresh::<S>))
        .route("/v1/tenants/{tenant}/introspect", post(introspect::<S>))
        .route("/v1/tenants/{tenant}/jwks.json", get(jwks::<S>))
}

#[derive(OpenApi)]
#[openapi(
    paths(
        register,
        verify,
        resend,
        begin_login,
        begin_passkey,
        begin_oidc,
        submit,
        password_login,
        email_code,
        passkey_challenge,
        forgot,
        reset,
        refresh,
        introspect,
        jwks
    ),
    components(schemas(
        RegisterBody,
        RegisterAccepted,
        VerifyBody,
        AddressBody,
        BeginLoginBody,
        OidcBody,
        SubmitBody,
        PasswordLoginBody,
        FactorName,
        FlowBody,
        FlowView,
        ForgotBody,
        ResetBody,
        RefreshBody,
        RefreshedView,
        IntrospectBody,
        IntrospectionView
    ))
)]
pub(crate) struct Doc;

/// A self-registration.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterBody {
    /// The email address: the identifier, and where the code goes.
    email: String,
    /// The password, checked against the tenant's rules.
    password: String,
    /// A display name.
    #[serde(default)]
    display_name: Option<String>,
}

/// A registration was taken; a code is on its way (the same answer when
/// the address already has an account).
#[derive(Serialize, ToSchema)]
pub(crate) struct RegisterAccepted {
    /// When the emailed code stops working.
    expires_at: DateTime<Utc>,
}

/// An address and the code sent to it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyBody {
    /// The address registered.
    email: String,
    /// The emailed code.
    code: String,
}

/// An address.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddressBody {
    /// The address registered.
    email: String,
}

/// Start a sign-in.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BeginLoginBody {
    /// The account's identifier.
    identifier: String,
    /// A method by name (default: the first the account can use).
    #[serde(default)]
    method: Option<String>,
}

/// A sign-in that starts with the password, in one call.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordLoginBody {
    /// The account's identifier.
    identifier: String,
    /// The password.
    password: String,
    /// A method by name (default: every method of the tenant).
    #[serde(default)]
    method: Option<String>,
}

/// Start a sign-in at an OpenID Connect issuer.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OidcBody {
    /// The issuer, as the tenant configured it.
    issuer: String,
}

/// A factor's name on the wire.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FactorName {
    /// The password.
    Password,
    /// A TOTP code.
    Totp,
    /// A recovery code.
    RecoveryCode,
    /// The code emailed for this flow.
    EmailCode,
    /// A passkey assertion (`PublicKeyCredential` JSON).
    Passkey,
    /// An ID token from the flow's issuer.
    IdToken,
}

/// One factor for a flow.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubmitBody {
    /// The flow token from the flow's start.
    pub(crate) flow: String,
    /// Which factor.
    pub(crate) factor: FactorName,
    /// The secret: a string, or for `passkey` the credential as a JSON
    /// object or string.
    #[schema(value_type = Object)]
    response: serde_json::Value,
}

impl FactorName {
    /// The core response carrying `text`.
    pub(crate) fn response(self, text: &str) -> FactorResponse<'_> {
        match self {
            FactorName::Password => FactorResponse::Password(text),
            FactorName::Totp => FactorResponse::Totp(text),
            FactorName::RecoveryCode => FactorResponse::RecoveryCode(text),
            FactorName::EmailCode => FactorResponse::EmailCode(text),
            FactorName::Passkey => FactorResponse::Passkey(text),
            FactorName::IdToken => FactorResponse::IdToken(text),
        }
    }
}

impl SubmitBody {
    pub(crate) fn response_text(&self) -> ApiResult<String> {
        match (&self.response, self.factor) {
            (serde_json::Value::String(s), _) => Ok(s.clone()),
            (v @ serde_json::Value::Object(_), FactorName::Passkey) => Ok(v.to_string()),
            _ => Err(ApiError::invalid("`response` must be a string")),
        }
    }
}

/// A flow token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FlowBody {
    /// The flow token.
    flow: String,
}

/// Where a flow stands. `status` is `awaiting_factor` (see `accepts`),
/// `authenticated` (see `session`), `denied`, `locked` or `expired`.
#[derive(Serialize, ToSchema, Default)]
pub(crate) struct FlowView {
    /// The flow token: pass it to each submission. Shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) flow: Option<String>,
    /// `awaiting_factor`, `authenticated`, `denied`, `locked` or
    /// `expired`.
    pub(crate) status: &'static str,
    /// Why the last factor was refused: `incorrect`, `not_expected` or
    /// `challenge_missing`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) refused: Option<&'static str>,
    /// The step awaited (0 for the first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) step: Option<usize>,
    /// The factors that step accepts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) accepts: Vec<String>,
    /// When the flow stops being usable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) expires_at: Option<DateTime<Utc>>,
    /// With `denied`: `too_many_attempts` or `account_inactive`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<&'static str>,
    /// With `locked`: when the lock lifts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) locked_until: Option<DateTime<Utc>>,
    /// A passkey challenge for `navigator.credentials.get`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub(crate) passkey_challenge: Option<serde_json::Value>,
    /// With an OIDC start: the issuer to send the user to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) issuer: Option<String>,
    /// With an OIDC start: the nonce for the authorization request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) nonce: Option<String>,
    /// With a step-up that passed: the session, now carrying the new
    /// factors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) stepped_up: Option<super::views::SessionView>,
    /// With `authenticated`: the new session's credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) session: Option<IssuedView>,
}

impl FlowView {
    pub(crate) fn of(flow: Option<&SecretToken>, status: &LoginStatus) -> Self {
        let mut v = FlowView {
            flow: flow.map(|f| f.expose().to_owned()),
            ..FlowView::default()
        };
        match status {
            LoginStatus::AwaitingFactor {
                step,
                accepts,
                expires_at,
            } => {
                v.status = "awaiting_factor";
                v.step = Some(*step);
                v.accepts = accepts.iter().map(|k| k.as_str().to_owned()).collect();
                v.expires_at = Some(*expires_at);
            }
            LoginStatus::Authenticated(_) => v.status = "authenticated",
            LoginStatus::Denied(reason) => {
                v.status = "denied";
                v.reason = Some(match reason {
                    countersign_core::DenyReason::TooManyAttempts => "too_many_attempts",
                    countersign_core::DenyReason::AccountInactive => "account_inactive",
                });
            }
            LoginStatus::Locked { until } => {
                v.status = "locked";
                v.locked_until = Some(*until);
            }
            LoginStatus::Expired => v.status = "expired",
        }
        v
    }
}

/// Ask for a reset link.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ForgotBody {
    /// The account's identifier.
    identifier: String,
}

/// Set a new password with an emailed reset token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetBody {
    /// The token from the email (`cspr_…`).
    token: String,
    /// The new password.
    password: String,
}

/// A refresh token to rotate.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefreshBody {
    /// The current refresh token (`csr_…`).
    refresh_token: String,
}

/// A rotated refresh token. The presented one is spent: presenting it
/// again revokes the family.
#[derive(Serialize, ToSchema)]
pub(crate) struct RefreshedView {
    /// The new refresh token.
    refresh_token: String,
    /// A new access token, if the tenant issues them.
    #[serde(skip_serializing_if = "Option::is_none")]
    access_token: Option<String>,
}

/// A token to introspect.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IntrospectBody {
    /// A session token or an access token.
    token: String,
    /// Also list the principal's permissions in this service.
    #[serde(default)]
    service: Option<String>,
}

/// What a token stands for (`active: false` for anything not valid now).
#[derive(Serialize, ToSchema)]
pub(crate) struct IntrospectionView {
    /// Whether the token is valid now.
    active: bool,
    /// `session` or `access_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    /// The tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant_id: Option<uuid::Uuid>,
    /// The user.
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<uuid::Uuid>,
    /// Expiry, unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    /// With `service`: the principal's effective permissions there.
    #[serde(skip_serializing_if = "Option::is_none")]
    permissions: Option<Vec<String>>,
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/register", tag = "registration",
    params(("tenant" = String, Path, description = "The tenant's slug")),
    request_body = RegisterBody,
    responses((status = 202, body = RegisterAccepted), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn register<S: ApiStore>(
    axum::extract::State(api): axum::extract::State<Api<S>>,
    TenantParam(tenant): TenantParam,
    Client(client): Client,
    ApiJson(body): ApiJson<RegisterBody>,
) -> ApiResult<(StatusCode, Json<RegisterAccepted>)> {
    api.rate_limit(tenant, &client, Some(&body.email)).await?;
    let reg = Registration {
        email: &body.email,
        password: &body.password,
        display_name: body.display_name.as_deref(),
    };
    let receipt = api.authn().register(tenant, reg, &client).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RegisterAccepted {
            expires_at: receipt.expires_at,
        }),
    ))
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/register/verify", tag = "registration",
    params(("tenant" = String, Path, description = "The tenant's slug")),
    request_body = VerifyBody,
    responses((status = 200, body = UserView), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn verify<S: ApiStore>(
    axum::extract::State(api): axum::extract::State<Api<S>>,
    TenantParam(tenant): TenantParam,
    Client(client): Client,
    ApiJson(body): ApiJson<VerifyBody>,
) -> ApiResult<Json<UserView>> {
    api.rate_limit(tenant, &client, Some(&body.email)).await?;
    let user = api
        .authn()
        .verify_address(tenant, &body.email, &body.code, &client)
        .await?;
    Ok(Json(UserView::from(&user)))
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/register/resend", tag = "registration",
    params(("tenant" = String, Path, description = "The tenant's slug")),
    request_body = AddressBody,
    responses((status = 202, body = Accepted), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn resend<S: ApiStore>(
    axum::extract::State(api): axum::extract::State<Api<S>>,
    TenantParam(tenant): TenantParam,
    Client(client): Client,
    ApiJson(body): ApiJson<AddressBody>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    api.rate_limit(tenant, &client, Some(&body.email)).await?;
    api.authn()
        .resend_address_code(tenant, &body.email, &client)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted::YES)))
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/login", tag = "login",
    params(("tenant" = String, Path, description = "The tenant's slug")),
    request_body = BeginLoginBody,
    responses((status = 200, body = FlowView), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn begin_login<S: ApiStore>(
    axum::extract::State(api): axum::extract::State<Api<S>>,
    TenantParam(tenant): TenantParam,
    Client(client): Client,
    ApiJson(body): ApiJson<BeginLoginBody>,
) -> ApiResult<Json<FlowView>> {
    api.rate_limit(tenant, &client, Some(&body.identifier))
        .await?;
    let (flow, status) = api
        .authn()
        .begin_login(tenant, &body.identifier, body.method.as_deref(), &client)
        .await?;
    Ok(Json(FlowView::of(Some(&flow), &status)))
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/login/passkey", tag = "login",
    params(("tenant" = String, Path, description = "The tenant's slug")),
    responses((status = 200, body = FlowView), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn begin_passkey<S: ApiStore>(
    axum::extract::State(api): axum::extract::State<Api<S>>,
    TenantParam(tenant): TenantParam,
    Client(client): Client,
) -> ApiResult<Json<FlowView>> {
    api.rate_limit(tenant, &client, None).await?;
    let (flow, status, challenge) = api.authn().begin_passkey_login(tenant, &client).await?;
    let mut view = FlowView::of(Some(&flow), &status);
    view.passkey_challenge = Some(to_json(&challenge)?);
    Ok(Json(view))
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/login/oidc", tag = "login",
    params(("tenant" = String, Path, description = "The tenant's slug")),
    request_body = OidcBody,
    responses((status = 200, body = FlowView), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn begin_oidc<S: ApiStore>(
    axum::extract::State(api): axum::extract::State<Api<S>>,
    TenantParam(tenant): TenantParam,
    Client(client): Client,
    ApiJson(body): ApiJson<OidcBody>,
) -> ApiResult<Json<FlowView>> {
    api.rate_limit(tenant, &client, None).await?;
    let start = api
        .authn()
        .begin_federated_login(tenant, &body.issuer, &client)
        .await?;
    let mut view = FlowView::of(Some(&start.flow), &start.status);
    view.issuer = Some(start.issuer);
    view.nonce = Some(start.nonce);
    Ok(Json(view))
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/login/submit", tag = "login",
    params(("tenant" = String, Path, description = "The tenant's slug")),
    request_body = SubmitBody,
    responses((status = 200, body = FlowView, description = "The flow after the factor; with `authenticated`, the session (and its cookies)"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn submit<S: ApiStore>(
    axum::extract::State(api): axum::extract::State<Api<S>>,
    TenantParam(tenant): TenantParam,
    Client(client): Client,
    ApiJson(body): ApiJson<SubmitBody>,
) -> ApiResult<Response> {
    api.rate_limit(tenant, &client, None).await?;
    let text = body.response_text()?;
    let response = body.factor.response(&text);
    let submission = api
        .authn()
        .submit(tenant, &body.flow, response, &client)
        .await?;
    respond(&api, &client, None, submission).await
}

/// The answer to a submission: the flow's status and, once authenticated,
/// a new session (in the body and, for browsers, in cookies). `flow` is
/// echoed when the caller does not hold the token yet.
async fn respond<S: ApiStore>(
    api: &Api<S>,
    client: &countersign_core::ClientInfo,
    flow: Option<&SecretToken>,
    submission: Submission,
) -> ApiResult<Response> {
    count_submission(&submission);
    let Submission { status, refused } = submission;
    let mut view = FlowView::of(None, &status);
    view.refused = refused.map(|r| r.as_str());
    let LoginStatus::Authenticated(auth) = status else {
        if view.status == "awaiting_factor" {
            view.flow = flow.map(|f| f.expose().to_owned());
        }
        return Ok(Json(view).into_response());
    };
    let issued = api.sessions().issue(&auth, client).await?;
    metrics::counter!("countersign_sessions_issued_total").increment(1);
    let mut headers = HeaderMap::new();
    if let Some(cookies) = &api.config().cookies {
        let csrf = api.csrf_token()?;
        let now = api.authn().env().now();
        for value in cookies.issue(
            issued.session_token.expose(),
            &csrf,
            issued.session.absolute_expires_at,
            now,
        ) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    view.session = Some(IssuedView::from(&issued));
    Ok((headers, Json(view)).into_response())
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/login/password", tag = "login",
    params(("tenant" = String, Path, description = "The tenant's slug")),
    request_body = PasswordLoginBody,
    responses((status = 200, body = FlowView, description = "Begin and submit the password in one call: `authenticated` with the session when the password completes a method; else the flow (with its token) awaiting the next factor"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn password_login<S: ApiStore>(
    axum::extract::State(api): axum::extract::State<Api<S>>,
    TenantParam(tenant): TenantParam,
    Client(client): Client,
    ApiJson(body): ApiJson<PasswordLoginBody>,
) -> ApiResult<Response> {
    api.rate_limit(tenant, &client, Some(&body.identifier))
        .await?;
    let (flow, submission) = api
        .authn()
        .login_with_password(
            tenant,
            &body.identifier,
            body.method.as_deref(),
            &body.password,
            &client,
        )
        .await?;
    respond(&api, &client, flow.as_ref(), submission).await
}

/// Counts sign-in outcomes for the metrics endpoint.
pub(crate) fn count_submission(s: &Submission) {
    let outcome = match (&s.status, s.refused) {
        (LoginStatus::Authenticated(_), _) => "authenticated",
        (LoginStatus::Locked { .. }, _) => {
            metrics::counter!("countersign_lockouts_total").increment(1);
            "locked"
        }
        (LoginStatus::Denied(_), _) => "denied",
        (LoginStatus::Expired, _) => "expired",
        (LoginStatus::AwaitingFactor { .. }, Some(_)) => "refused",
        (LoginStatus::AwaitingFactor { .. }, None) => "step_passed",
    };
    metrics::counter!("countersign_logins_total", "outcome" => outcome).increment(1);
    tracing::debug!(outcome, "sign-in step");
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/login/email-code", tag = "login",
    params(("tenant" = String, Path, description = "The tenant's slug")),
    request_body = FlowBody,
    responses((status = 202, body = Accepted), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn email_code<S: ApiStore>(
    axum::extract::State(api): axum::extract::State<Api<S>>,
    TenantParam(tenant): TenantParam,
    Client(client): Client,
    ApiJson(body): ApiJson<FlowBody>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    api.rate_limit(tenant, &client, None).await?;
    api.authn()
        .send_email_code(tenant, &body.flow, &client)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted::YES)))
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/login/passkey-challenge", tag = "login",
    params(("tenant" = String, Path, description = "The tenant's slug")),
    request_body = FlowBody,
    responses((status = 200, body = Object, description = "A challenge for `navigator.credentials.get`"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn passkey_challenge<S: ApiStore>(
    axum::extract::State(api): axum::extract::State<Api<S>>,
    TenantParam(tenant): TenantParam,
    Client(client): Client,
    ApiJson(body): ApiJson<FlowBody>,
) -> ApiResult<Json<serde_json::Value>> {
    api.rate_limit(tenant, &client, None).await?;
    let challenge = api
        .authn()
        .passkey_challenge(tenant, &body.flow, &client)
        .await?;
    Ok(Json(to_json(&challenge)?))
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/password/forgot", tag = "password",
    params(("tenant" = String, Path, description = "The tenant's slug")),
    request_body = ForgotBody,
    responses((status = 202, body = Accepted, description = "The same answer for every identifier"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn forgot<S: ApiStore>(
    axum::extract::State(api): axum::extract::State<Api<S>>,
    TenantParam(tenant): TenantParam,
    Client(client): Client,
    ApiJson(body): ApiJson<ForgotBody>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    api.rate_limit(tenant, &client, Some(&body.identifier))
        .await?;
    api.authn()
        .request_password_reset(tenant, &body.identifier, &client)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted::YES)))
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/password/reset", tag = "password",
    params(("tenant" = String, Path, description = "The tenant's slug")),
    request_body = ResetBody,
    responses((status = 204, description = "The password is set; every session ended"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn reset<S: ApiStore>(
    axum::extract::State(api): axum::extract::State<Api<S>>,
    TenantParam(tenant): TenantParam,
    Client(client): Client,
    ApiJson(body): ApiJson<ResetBody>,
) -> ApiResult<StatusCode> {
    api.rate_limit(tenant, &client, None).await?;
    api.authn()
        .reset_password(tenant, &body.token, &body.password, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/token/refresh", tag = "sessions",
    params(("tenant" = String, Path, description = "The tenant's slug")),
    request_body = RefreshBody,
    responses((status = 200, body = RefreshedView), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn refresh<S: ApiStore>(
    axum::extract::State(api): axum::extract::State<Api<S>>,
    TenantParam(tenant): TenantParam,
    Client(client): Client,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<Json<RefreshedView>> {
    let refreshed = api
        .sessions()
        .refresh_in(tenant, &body.refresh_token, &client)
        .await?;
    Ok(Json(RefreshedView {
        refresh_token: refreshed.refresh_token.expose().to_owned(),
        access_token: refreshed.access_token.clone(),
    }))
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/introspect", tag = "sessions",
    params(("tenant" = String, Path, description = "The tenant's slug")),
    request_body = IntrospectBody,
    responses((status = 200, body = IntrospectionView), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn introspect<S: ApiStore>(
    axum::extract::State(api): axum::extract::State<Api<S>>,
    TenantParam(tenant): TenantParam,
    ApiJson(body): ApiJson<IntrospectBody>,
) -> ApiResult<Json<IntrospectionView>> {
    let service = body
        .service
        .as_deref()
        .map(RbacName::new)
        .transpose()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let i = api.sessions().introspect_in(tenant, &body.token).await?;
    let permissions = match (&service, i.active, i.sub) {
        (Some(service), true, Some(user)) => Some(
            api.authz()
                .effective_permissions(tenant, user, service)
                .await?
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
        ),
        (Some(_), _, _) => Some(Vec::new()),
        (None, _, _) => None,
    };
    Ok(Json(IntrospectionView {
        active: i.active,
        token_type: i.token_type,
        tenant_id: i.tenant_id.map(|t: TenantId| *t.as_uuid()),
        sub: i.sub.map(|u| *u.as_uuid()),
        exp: i.exp,
        permissions,
    }))
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/jwks.json", tag = "sessions",
    params(("tenant" = String, Path, description = "The tenant's slug")),
    responses((status = 200, body = Object, description = "The tenant's JSON Web Key Set"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn jwks<S: ApiStore>(
    axum::extract::State(api): axum::extract::State<Api<S>>,
    TenantParam(tenant): TenantParam,
) -> ApiResult<Json<serde_json::Value>> {
    let jwks = api.sessions().jwks(tenant).await?;
    Ok(Json(to_json(&jwks)?))
}

/// A value as JSON; a failure is internal.
pub(crate) fn to_json<T: Serialize>(v: &T) -> ApiResult<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| {
        tracing::error!(error = %e, "a response did not serialize");
        ApiError::internal()
    })
}
