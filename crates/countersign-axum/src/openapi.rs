//! The OpenAPI 3.1 document, generated from the handlers' annotations, and
//! its interactive page (Swagger UI, assets built into the binary).

use axum::Router;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

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

/// The document at [`OPENAPI_PATH`] and its page at `/v1/docs`.
pub(crate) fn docs_router<S: ApiStore>() -> Router<Api<S>> {
    Router::new().merge(SwaggerUi::new("/v1/docs").url(OPENAPI_PATH, openapi()))
}
