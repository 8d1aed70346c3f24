//! HTTP handlers about the service itself: health, the JWKS for token verifiers, the OpenAPI
//! description.
//!
//! Not here: metrics (the binary and the SFU serve those).

use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::Api;

pub(super) fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(jwks))
        .routes(routes!(openapi_json))
}

/// Liveness: 200 while the process serves HTTP.
#[utoipa::path(get, path = "/healthz", tag = "meta", responses((status = 200, description = "OK", body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// Public keys that verify join tokens (RFC 7517; Ed25519 as OKP).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "meta",
    responses((status = 200, description = "JWKS", body = Object)))]
async fn jwks(State(api): State<Api>) -> Json<serde_json::Value> {
    Json(api.jwks())
}

/// This description.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta",
    responses((status = 200, description = "OpenAPI 3.1 document", body = Object)))]
async fn openapi_json(Extension(document): Extension<OpenApiJson>) -> Json<serde_json::Value> {
    Json(document.0.as_ref().clone())
}

/// The OpenAPI document, rendered once when the router is built. The router hands it in rather
/// than this module asking for it, because the document is made from the route table that
/// includes this module.
#[derive(Clone)]
pub(super) struct OpenApiJson(pub Arc<serde_json::Value>);
