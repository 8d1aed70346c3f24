//! HTTP handlers for robots: list, register, rotate a credential, get a publish token, busy slots.
//!
//! Thin: extract, call the domain (`crate::robots`), shape the response. Not here: the rules.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{AdminUser, CurrentUser, JsonBody, PathParams, QueryParams, RobotCredential};
use crate::api::Api;
use crate::error::{ApiError, ErrorBody};
use crate::lease_admin;
use crate::model::Robot;
use crate::robots::{
    self, BusyQuery, BusySlot, CredentialResponse, NewRobot, PublishTokenResponse, RobotCreated,
};

pub(super) fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(list_robots, create_robot))
        .routes(routes!(rotate_credential))
        .routes(routes!(publish_token))
        .routes(routes!(busy))
        .routes(routes!(revoke_lease))
}

/// Take the control lease away from whoever holds it in the robot's room (admins). The robot
/// gets a stop frame first, then everyone in the room hears `lease` with reason `revoked`.
#[utoipa::path(post, path = "/api/robots/{id}/lease/revoke", tag = "robots", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Robot id")),
    responses(
        (status = 204, description = "Revoked (or nobody held it)"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such robot, or nobody in its room", body = ErrorBody),
        (status = 409, description = "This process runs no media plane", body = ErrorBody),
    ))]
async fn revoke_lease(
    State(api): State<Api>,
    AdminUser(actor): AdminUser,
    PathParams(id): PathParams<Uuid>,
) -> Result<StatusCode, ApiError> {
    lease_admin::revoke(api.store(), api.audit(), api.lease_revoker(), &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// All robots (any logged-in user).
#[utoipa::path(get, path = "/api/robots", tag = "robots", security(("bearer" = [])),
    responses(
        (status = 200, description = "Robots", body = [Robot]),
        (status = 401, body = ErrorBody),
    ))]
async fn list_robots(
    State(api): State<Api>,
    CurrentUser(_caller): CurrentUser,
) -> Result<Json<Vec<Robot>>, ApiError> {
    robots::list(api.store()).await.map(Json)
}

/// Register a robot (admins). The credential in the answer is shown only once.
#[utoipa::path(post, path = "/api/robots", tag = "robots", security(("bearer" = [])), request_body = NewRobot,
    responses(
        (status = 201, description = "Registered", body = RobotCreated),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
    ))]
async fn create_robot(
    State(api): State<Api>,
    AdminUser(actor): AdminUser,
    JsonBody(new): JsonBody<NewRobot>,
) -> Result<(StatusCode, Json<RobotCreated>), ApiError> {
    let (robot, credential) =
        robots::create(api.store(), api.audit(), api.now(), Some(&actor), new).await?;
    Ok((
        StatusCode::CREATED,
        Json(RobotCreated { robot, credential }),
    ))
}

/// Replace a robot's credential (admins); the old one stops working at once.
#[utoipa::path(post, path = "/api/robots/{id}/credential", tag = "robots", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Robot id")),
    responses(
        (status = 200, description = "New credential, shown once", body = CredentialResponse),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
async fn rotate_credential(
    State(api): State<Api>,
    AdminUser(actor): AdminUser,
    PathParams(id): PathParams<Uuid>,
) -> Result<Json<CredentialResponse>, ApiError> {
    let credential = robots::rotate_credential(api.store(), api.audit(), &actor, id).await?;
    Ok(Json(CredentialResponse { credential }))
}

/// The robot's token for publishing its camera and microphone (`Authorization: Robot <credential>`).
#[utoipa::path(post, path = "/api/robots/{id}/publish-token", tag = "robots", security(("robot_credential" = [])),
    params(("id" = Uuid, Path, description = "Robot id")),
    responses(
        (status = 200, description = "Publish token", body = PublishTokenResponse),
        (status = 401, description = "Unknown robot or wrong credential", body = ErrorBody),
    ))]
async fn publish_token(
    State(api): State<Api>,
    PathParams(id): PathParams<Uuid>,
    RobotCredential(credential): RobotCredential,
) -> Result<Json<PublishTokenResponse>, ApiError> {
    robots::publish_token(
        api.store(),
        api.audit(),
        api.token_signer(),
        api.config(),
        api.now(),
        id,
        &credential,
    )
    .await
    .map(Json)
}

/// When a robot is booked, without who booked it (any logged-in user, to plan a booking).
#[utoipa::path(get, path = "/api/robots/{id}/busy", tag = "robots", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Robot id"), BusyQuery),
    responses(
        (status = 200, description = "Booked slots in the window", body = [BusySlot]),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
    ))]
async fn busy(
    State(api): State<Api>,
    CurrentUser(_caller): CurrentUser,
    PathParams(id): PathParams<Uuid>,
    QueryParams(q): QueryParams<BusyQuery>,
) -> Result<Json<Vec<BusySlot>>, ApiError> {
    robots::busy_slots(api.store(), api.now(), id, q)
        .await
        .map(Json)
}
