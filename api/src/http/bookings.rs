//! HTTP handlers for bookings: create, list, read, cancel, invite, uninvite, join.
//!
//! Thin: extract, call the domain (`crate::booking`, `crate::join`), shape the response.
//! Not here: the rules.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{CurrentUser, DoctorUser, JsonBody, PathParams, QueryParams};
use crate::api::Api;
use crate::booking::{self, BookingQuery, NewBooking, NewInvitation};
use crate::error::{ApiError, ErrorBody};
use crate::join::{self, JoinResponse};
use crate::model::Booking;

pub(super) fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(create_booking, list_bookings))
        .routes(routes!(get_booking))
        .routes(routes!(cancel_booking))
        .routes(routes!(invite))
        .routes(routes!(uninvite))
        .routes(routes!(join))
}

/// Book a robot (doctors). Slots are half-open, so back-to-back bookings are fine.
#[utoipa::path(post, path = "/api/bookings", tag = "bookings", security(("bearer" = [])), request_body = NewBooking,
    responses(
        (status = 201, description = "Booked", body = Booking),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such robot", body = ErrorBody),
        (status = 409, description = "Overlaps a booking (`booking_conflict`, with `conflict`)", body = ErrorBody),
        (status = 422, description = "In the past, too long, or ends before it starts", body = ErrorBody),
    ))]
async fn create_booking(
    State(api): State<Api>,
    DoctorUser(actor): DoctorUser,
    JsonBody(new): JsonBody<NewBooking>,
) -> Result<(StatusCode, Json<Booking>), ApiError> {
    let max_booking = api.config().max_booking;
    let booking = booking::create(api.store(), api.now(), max_booking, &actor, new).await?;
    Ok((StatusCode::CREATED, Json(booking)))
}

/// Bookings: admins see all; doctors their own and those they are invited to; students those
/// they are invited to.
#[utoipa::path(get, path = "/api/bookings", tag = "bookings", security(("bearer" = [])), params(BookingQuery),
    responses(
        (status = 200, description = "Bookings ordered by start", body = [Booking]),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
    ))]
async fn list_bookings(
    State(api): State<Api>,
    CurrentUser(actor): CurrentUser,
    QueryParams(q): QueryParams<BookingQuery>,
) -> Result<Json<Vec<Booking>>, ApiError> {
    booking::list(api.store(), &actor, q).await.map(Json)
}

/// One booking, if the caller may see it.
#[utoipa::path(get, path = "/api/bookings/{id}", tag = "bookings", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Booking id")),
    responses(
        (status = 200, body = Booking),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
async fn get_booking(
    State(api): State<Api>,
    CurrentUser(actor): CurrentUser,
    PathParams(id): PathParams<Uuid>,
) -> Result<Json<Booking>, ApiError> {
    booking::visible(api.store(), &actor, id).await.map(Json)
}

/// Cancel a booking (its doctor or an admin); the slot becomes free. Repeating is harmless.
#[utoipa::path(post, path = "/api/bookings/{id}/cancel", tag = "bookings", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Booking id")),
    responses(
        (status = 200, description = "The cancelled booking", body = Booking),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "Already over", body = ErrorBody),
    ))]
async fn cancel_booking(
    State(api): State<Api>,
    CurrentUser(actor): CurrentUser,
    PathParams(id): PathParams<Uuid>,
) -> Result<Json<Booking>, ApiError> {
    booking::cancel(api.store(), api.audit(), api.hub(), api.now(), &actor, id)
        .await
        .map(Json)
}

/// Invite a doctor as consultant or a student as observer (the booking's doctor).
#[utoipa::path(post, path = "/api/bookings/{id}/invitations", tag = "bookings", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Booking id")), request_body = NewInvitation,
    responses(
        (status = 201, description = "The booking with its invitations", body = Booking),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Already invited, or the booking is cancelled", body = ErrorBody),
        (status = 422, description = "Role does not fit the user, or the booking is over", body = ErrorBody),
    ))]
async fn invite(
    State(api): State<Api>,
    CurrentUser(actor): CurrentUser,
    PathParams(id): PathParams<Uuid>,
    JsonBody(new): JsonBody<NewInvitation>,
) -> Result<(StatusCode, Json<Booking>), ApiError> {
    let booking = booking::invite(api.store(), api.audit(), api.now(), &actor, id, new).await?;
    Ok((StatusCode::CREATED, Json(booking)))
}

/// Withdraw an invitation (the booking's doctor).
#[utoipa::path(delete, path = "/api/bookings/{id}/invitations/{user_id}", tag = "bookings", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Booking id"), ("user_id" = Uuid, Path, description = "Invited user")),
    responses(
        (status = 204, description = "Withdrawn"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
async fn uninvite(
    State(api): State<Api>,
    CurrentUser(actor): CurrentUser,
    PathParams((id, user_id)): PathParams<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    booking::uninvite(
        api.store(),
        api.audit(),
        api.hub(),
        api.now(),
        &actor,
        id,
        user_id,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A join token for the booking's room. Opens a grace period before the start, closes at the
/// end; `can_control` only for the booking's doctor once the slot has started (join again at
/// the start to get it).
#[utoipa::path(post, path = "/api/bookings/{id}/join", tag = "bookings", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Booking id")),
    responses(
        (status = 200, description = "Join token", body = JoinResponse),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not a participant, or outside the join window (`outside_join_window`)", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Cancelled (`booking_cancelled`)", body = ErrorBody),
    ))]
async fn join(
    State(api): State<Api>,
    CurrentUser(actor): CurrentUser,
    PathParams(id): PathParams<Uuid>,
) -> Result<Json<JoinResponse>, ApiError> {
    join::join(
        api.store(),
        api.audit(),
        api.token_signer(),
        api.config(),
        api.now(),
        &actor,
        id,
    )
    .await
    .map(Json)
}
