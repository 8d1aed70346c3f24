//! The HTTP surface: the route table and the handlers, one file per domain.
//!
//! Handlers extract, call one domain method and shape the answer; the routes are registered
//! through `utoipa_axum` so the OpenAPI description is generated from the same list and cannot
//! drift. Not here: rules (domain modules), SQL (`store`), serving sockets (the binary).

mod audit;
mod auth;
mod bookings;
pub(crate) mod extract;
mod meta;
mod robots;
mod users;

use axum::extract::DefaultBodyLimit;
use axum::http::header::{ALLOW, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
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
        .merge(bookings::routes())
        .merge(audit::routes())
        .merge(meta::routes())
}

/// The OpenAPI description of every route in [`router`].
pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    openapi_router().into_openapi()
}

pub(crate) fn router(api: Api) -> Router {
    let (routes, _) = openapi_router().split_for_parts();
    routes
        // Unknown paths under /api answer in JSON too; no global fallback, so the binary can
        // merge this router with the SFU's and the web client's.
        .route(
            "/api/{*rest}",
            any(|| async { ApiError::NotFound("route") }),
        )
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
