//! HTTP handlers for live status: every robot's live state (`GET /api/robots/live`), every live
//! room (admins, `GET /api/rooms`) and an admin ending one participant's session.
//!
//! `GET /api/robots/live` is its own path rather than a field of `GET /api/robots`: pages poll
//! it every few seconds while they are shown, and it answers from memory (the media nodes'
//! reports) plus one bookings query, while the robot list is the registry and changes rarely.
//!
//! Thin: extract, call the domain (`crate::rooms`), shape the response. Not here: the rules.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{AdminUser, CurrentUser, PathParams};
use crate::api::Api;
use crate::error::{ApiError, ErrorBody};
use crate::rooms::{self, LiveStatus, SessionEnded};

pub(super) fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(robots_live))
        .routes(routes!(live_rooms))
        .routes(routes!(end_session))
}

fn grace(api: &Api) -> Result<chrono::Duration, ApiError> {
    chrono::Duration::from_std(api.config().join_grace)
        .map_err(|_| ApiError::Config("join_grace is too large".into()))
}

/// Every robot's live state (any logged-in user): online, battery, link, e-stop, the booking on
/// now and how many of each role are in the room. Who they are (names, sessions, who drives) is
/// shown only to that booking's participants and to admins. From the media nodes' reports: a
/// node that stops reporting takes its rooms offline within three of its refresh periods
/// (30 s by default).
#[utoipa::path(get, path = "/api/robots/live", tag = "live", security(("bearer" = [])),
    responses(
        (status = 200, description = "One entry per registered robot", body = [LiveStatus]),
        (status = 401, body = ErrorBody),
    ))]
async fn robots_live(
    State(api): State<Api>,
    CurrentUser(caller): CurrentUser,
) -> Result<Json<Vec<LiveStatus>>, ApiError> {
    rooms::robots(
        api.store(),
        api.hub().live(),
        api.now(),
        grace(&api)?,
        &caller,
    )
    .await
    .map(Json)
}

/// Every live room with its participants, their names and sessions, and the media node holding
/// it (admins).
#[utoipa::path(get, path = "/api/rooms", tag = "live", security(("bearer" = [])),
    responses(
        (status = 200, description = "Live rooms, by robot id", body = [LiveStatus]),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
async fn live_rooms(
    State(api): State<Api>,
    AdminUser(caller): AdminUser,
) -> Result<Json<Vec<LiveStatus>>, ApiError> {
    rooms::rooms(
        api.store(),
        api.hub().live(),
        api.now(),
        grace(&api)?,
        &caller,
    )
    .await
    .map(Json)
}

/// End one participant's session (admins), audited. The media node holding the room tells the
/// participant "an administrator ended your session" (an `events` error, code `session_ended`)
/// and closes it; the room hears `left`. The participant may join again with a new join token
/// (to keep someone out, cancel the booking, remove the invitation or disable the user).
#[utoipa::path(post, path = "/api/rooms/{robot}/participants/{session}/end", tag = "live", security(("bearer" = [])),
    params(
        ("robot" = Uuid, Path, description = "Robot id (the room)"),
        ("session" = String, Path, description = "Public session id, e.g. `s7`, as the room lists it"),
    ),
    responses(
        (status = 202, description = "The media node was told; the session ends within a second", body = SessionEnded),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No live room, or no such session in it", body = ErrorBody),
        (status = 422, description = "Not a session id", body = ErrorBody),
    ))]
async fn end_session(
    State(api): State<Api>,
    AdminUser(actor): AdminUser,
    PathParams((robot, session)): PathParams<(Uuid, String)>,
) -> Result<(StatusCode, Json<SessionEnded>), ApiError> {
    let ended =
        rooms::end_session(api.audit(), api.hub(), api.now(), &actor, robot, &session).await?;
    Ok((StatusCode::ACCEPTED, Json(ended)))
}
