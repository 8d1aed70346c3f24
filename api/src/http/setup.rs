//! HTTP handlers for the first-run setup: is it open, and create the first administrator with
//! the one-time code. Both are public (there is nobody to log in as yet).
//!
//! Thin: extract, call the domain (`crate::setup`). Not here: the rules.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::JsonBody;
use crate::api::Api;
use crate::error::{ApiError, ErrorBody};
use crate::model::User;
use crate::setup::{self, FirstAdmin, SetupState};

pub(super) fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new().routes(routes!(setup_state, first_admin))
}

/// Whether this server still needs its first administrator (public).
#[utoipa::path(get, path = "/api/setup", tag = "setup",
    responses((status = 200, description = "Setup state", body = SetupState)))]
async fn setup_state(State(api): State<Api>) -> Result<Json<SetupState>, ApiError> {
    setup::state(api.first_run(), api.store()).await.map(Json)
}

/// Create the first administrator with the one-time setup code from the server's log (public;
/// the code is the authority). Then log in as usual.
#[utoipa::path(post, path = "/api/setup", tag = "setup", request_body = FirstAdmin,
    responses(
        (status = 201, description = "The first administrator", body = User),
        (status = 403, description = "Wrong setup code", body = ErrorBody),
        (status = 409, description = "An administrator exists already (`setup_done`), or the username is taken", body = ErrorBody),
        (status = 422, description = "Invalid username, display name or password", body = ErrorBody),
    ))]
async fn first_admin(
    State(api): State<Api>,
    JsonBody(req): JsonBody<FirstAdmin>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let user = setup::create_first_admin(
        api.first_run(),
        api.store(),
        api.hasher(),
        api.audit(),
        api.now(),
        req,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user)))
}
