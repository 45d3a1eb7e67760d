//! The OpenAPI 3.1 document, generated from the handlers' annotations, and
//! its interactive page (Swagger UI, assets built into the binary).

use std::sync::OnceLock;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::error::Problem;
use crate::{Api, ApiStore};

/// The path of the document.
pub const OPENAPI_PATH: &str = "/v1/openapi.json";

/// The document: every endpoint of [`Api::router`], its bodies, the
/// problem+json error body and the two ways to present a session.
pub fn openapi() -> OpenApi {
    let mut doc = OpenApi::new(
        InfoBuilder::new()
            .title("countersign")
            .version(env!("CARGO_PKG_VERSION"))
            .description(Some(
                "Identity and access management: registration, multi-factor sign-in, \
                 sessions and tokens, Cedar authorization with RBAC, administration. \
                 Errors are application/problem+json with a stable `code`.",
            ))
            .build(),
        utoipa::openapi::Paths::new(),
    );
    for part in crate::routes::docs() {
        doc.merge(part);
    }
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.insert(
        "Problem".to_owned(),
        <Problem as utoipa::PartialSchema>::schema(),
    );
    components.add_security_scheme(
        "session",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("A session token (`css_…`)"))
                .build(),
        ),
    );
    components.add_security_scheme(
        "cookie",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("countersign_session"))),
    );
    doc
}

/// The document at [`OPENAPI_PATH`] and its page at `/v1/docs`. The
/// document is built and serialised on its first request, once per
/// process: a server that is never asked for it never holds it.
pub(crate) fn docs_router<S: ApiStore>() -> Router<Api<S>> {
    let page = SwaggerUi::new("/v1/docs").config(Config::new([OPENAPI_PATH]));
    Router::new().route(OPENAPI_PATH, get(document)).merge(page)
}

/// The serialised document.
async fn document() -> Response {
    static JSON: OnceLock<Vec<u8>> = OnceLock::new();
    let body = JSON.get_or_init(|| serde_json::to_vec(&openapi()).unwrap_or_default());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.as_slice(),
    )
        .into_response()
}
