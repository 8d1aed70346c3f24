//! The HTTP surface: the route table and the handlers, one file per domain.
//!
//! Handlers extract, call one domain function with what it needs from the [`Api`] (store, audit
//! sink, clock, settings) and shape the answer; the routes are registered through `utoipa_axum`
//! so the OpenAPI description is generated from the same list and cannot drift (all but the
//! media nodes' `/internal/node/*`, which browsers never call). The router is
//! built here, from an `Api`, so that `api` (the composition root) does not depend on this
//! layer. Not here: rules (domain modules), SQL (`store`), serving sockets (the binary).

mod audit;
mod auth;
mod bookings;
pub(crate) mod extract;
mod meta;
mod node;
mod robots;
mod rooms;
mod setup;
mod users;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::header::{ALLOW, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Extension, Router};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

use crate::api::Api;
use crate::error::ApiError;
use crate::openapi::ApiDoc;

/// Largest request body accepted; every request here is a small JSON document.
const BODY_LIMIT: usize = 64 * 1024;

fn openapi_router() -> OpenApiRouter<Api> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::routes())
        .merge(users::routes())
        .merge(robots::routes())
        .merge(rooms::routes())
        .merge(bookings::routes())
        .merge(audit::routes())
        .merge(setup::routes())
        .merge(meta::routes())
}

// Declared here rather than in `api.rs` so that the composition root does not import the HTTP
// layer back; callers keep writing `api.router()`.
impl Api {
    /// Every route of the API with its state applied. Serve it with
    /// `into_make_service_with_connect_info::<SocketAddr>()` so the login limiter sees client
    /// addresses. It sets no fallback, so it merges with other routers.
    pub fn router(&self) -> Router {
        router(self.clone())
    }

    /// The OpenAPI description of [`Api::router`].
    pub fn openapi(&self) -> utoipa::openapi::OpenApi {
        openapi()
    }
}

/// The OpenAPI description of every route in [`router`].
fn openapi() -> utoipa::openapi::OpenApi {
    crate::openapi::complete(openapi_router().into_openapi())
}

fn router(api: Api) -> Router {
    let (routes, document) = openapi_router().split_for_parts();
    let document = serde_json::to_value(crate::openapi::complete(document)).unwrap_or_default();
    routes
        // Unknown paths under /api answer in JSON too; no global fallback, so the binary can
        // merge this router with the SFU's and the web client's.
        .route(
            "/api/{*rest}",
            any(|| async { ApiError::NotFound("route") }),
        )
        .merge(node::routes())
        .layer(Extension(meta::OpenApiJson(Arc::new(document))))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::map_response(json_method_not_allowed))
        .with_state(api)
}

/// axum answers a wrong method with an empty 405; give it the JSON error shape.
async fn json_method_not_allowed(response: Response) -> Response {
    if response.status() != StatusCode::METHOD_NOT_ALLOWED
        || response.headers().contains_key(CONTENT_TYPE)
    {
        return response;
    }
    let allow = response.headers().get(ALLOW).cloned();
    let mut json = ApiError::MethodNotAllowed.into_response();
    if let Some(allow) = allow {
        json.headers_mut().insert(ALLOW, allow);
    }
    json
}
