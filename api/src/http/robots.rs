//! HTTP handlers for robots: list, register, edit, retire, rotate a credential, get a publish
//! token, busy slots, the roster for the robot's screen, and an admin's lease revoke.
//!
//! Thin: extract, call the domain (`crate::robots`), shape the response. Not here: the rules.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{
    AdminUser, CurrentUser, JsonBody, PathParams, QueryParams, RobotCredential, RobotOrAdmin,
};
use crate::api::Api;
use crate::error::{ApiError, ErrorBody};
use crate::lease_admin::{self, LeaseRevoked};
use crate::model::Robot;
use crate::robots::{
    self, BusyQuery, BusySlot, CredentialResponse, NewRobot, PublishTokenResponse, Retirement,
    RobotCreated, RobotQuery, RobotRetired, RobotUpdate,
};
use crate::roster::{self, RosterEntry};

pub(super) fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(list_robots, create_robot))
        .routes(routes!(update_robot))
        .routes(routes!(retire_robot))
        .routes(routes!(rotate_credential))
        .routes(routes!(publish_token))
        .routes(routes!(busy))
        .routes(routes!(roster))
        .routes(routes!(revoke_lease))
}

/// Take the control lease away in the robot's room (admins). The booking in its slot now loses
/// control for good (its doctor needs a new booking to drive); whoever holds the lease loses it:
/// the robot gets a stop frame first, then everyone in the room hears `lease` with reason
/// `revoked`. Media nodes not connected now get it when they connect.
#[utoipa::path(post, path = "/api/robots/{id}/lease/revoke", tag = "robots", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Robot id")),
    responses(
        (status = 200, description = "Revoked (whether or not anybody held it)", body = LeaseRevoked),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such robot", body = ErrorBody),
    ))]
async fn revoke_lease(
    State(api): State<Api>,
    AdminUser(actor): AdminUser,
    PathParams(id): PathParams<Uuid>,
) -> Result<Json<LeaseRevoked>, ApiError> {
    lease_admin::revoke(api.store(), api.audit(), api.hub(), api.now(), &actor, id)
        .await
        .map(Json)
}

/// Who takes part in the booking on now, with display names, for the robot's own screen: the
/// robot (`Authorization: Robot <credential>`) or an admin.
#[utoipa::path(get, path = "/api/robots/{id}/roster", tag = "robots", security(("robot_credential" = []), ("bearer" = [])),
    params(("id" = Uuid, Path, description = "Robot id")),
    responses(
        (status = 200, description = "The current booking's participants, its doctor first; empty if none is on", body = [RosterEntry]),
        (status = 401, description = "Wrong credential, or not logged in", body = ErrorBody),
        (status = 403, description = "Logged in but not an admin", body = ErrorBody),
        (status = 404, description = "No such robot (admins)", body = ErrorBody),
    ))]
async fn roster(
    State(api): State<Api>,
    PathParams(id): PathParams<Uuid>,
    caller: RobotOrAdmin,
) -> Result<Json<Vec<RosterEntry>>, ApiError> {
    if let RobotOrAdmin::Robot(credential) = &caller {
        robots::check_credential(api.store(), id, credential).await?;
    }
    let grace = chrono::Duration::from_std(api.config().join_grace)
        .map_err(|_| ApiError::Config("join_grace is too large".into()))?;
    roster::roster(api.store(), api.now(), grace, id)
        .await
        .map(Json)
}

/// Robots in service (any logged-in user); admins may ask for the retired ones too.
#[utoipa::path(get, path = "/api/robots", tag = "robots", security(("bearer" = [])), params(RobotQuery),
    responses(
        (status = 200, description = "Robots", body = [Robot]),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Retired robots asked for by a non-admin", body = ErrorBody),
    ))]
async fn list_robots(
    State(api): State<Api>,
    CurrentUser(caller): CurrentUser,
    QueryParams(q): QueryParams<RobotQuery>,
) -> Result<Json<Vec<Robot>>, ApiError> {
    robots::list(api.store(), &caller, q).await.map(Json)
}

/// Rename a robot or change its ward or description (admins).
#[utoipa::path(patch, path = "/api/robots/{id}", tag = "robots", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Robot id")), request_body = RobotUpdate,
    responses(
        (status = 200, description = "The robot as it is now", body = Robot),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The robot is retired (`robot_retired`)", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
async fn update_robot(
    State(api): State<Api>,
    AdminUser(actor): AdminUser,
    PathParams(id): PathParams<Uuid>,
    JsonBody(change): JsonBody<RobotUpdate>,
) -> Result<Json<Robot>, ApiError> {
    robots::update(api.store(), api.audit(), &actor, id, change)
        .await
        .map(Json)
}

/// Retire a robot (admins): its credential and publish tokens stop working (the media nodes end
/// its publisher), every booking of it not yet over is cancelled (their participants' sessions
/// end), and it can no longer be booked or seen by non-admins. Kept for the audit log.
/// Retiring it again changes nothing.
#[utoipa::path(post, path = "/api/robots/{id}/retire", tag = "robots", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Robot id")),
    responses(
        (status = 200, description = "Retired", body = RobotRetired),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
async fn retire_robot(
    State(api): State<Api>,
    AdminUser(actor): AdminUser,
    PathParams(id): PathParams<Uuid>,
) -> Result<Json<RobotRetired>, ApiError> {
    let cx = Retirement {
        store: api.store(),
        audit: api.audit(),
        hub: api.hub(),
        config: api.config(),
        now: api.now(),
    };
    robots::retire(cx, &actor, id).await.map(Json)
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

/// Replace a robot's credential (admins); the old one stops working at once, and so do the
/// publish tokens it got (the media nodes end the robot's session made with one).
#[utoipa::path(post, path = "/api/robots/{id}/credential", tag = "robots", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Robot id")),
    responses(
        (status = 200, description = "New credential, shown once", body = CredentialResponse),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The robot is retired (`robot_retired`)", body = ErrorBody),
    ))]
async fn rotate_credential(
    State(api): State<Api>,
    AdminUser(actor): AdminUser,
    PathParams(id): PathParams<Uuid>,
) -> Result<Json<CredentialResponse>, ApiError> {
    let credential = robots::rotate_credential(
        api.store(),
        api.audit(),
        api.hub(),
        api.config(),
        api.now(),
        &actor,
        id,
    )
    .await?;
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
