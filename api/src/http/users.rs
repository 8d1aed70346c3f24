//! HTTP handlers for users: create, change, reset a password, disable and enable (admins), and
//! list and search (admins; doctors choosing invitees).
//!
//! Thin: extract, call the domain (`crate::users`), shape the response. Not here: the rules.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{AdminUser, CurrentUser, JsonBody, PathParams, QueryParams};
use crate::api::Api;
use crate::error::{ApiError, ErrorBody};
use crate::users::{
    self, Authority, CreateUser, PasswordReset, UserCreated, UserListItem, UserQuery, UserUpdate,
};

pub(super) fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(create_user, list_users))
        .routes(routes!(update_user))
        .routes(routes!(reset_password))
        .routes(routes!(disable_user))
        .routes(routes!(enable_user))
}

fn authority(api: &Api) -> Authority<'_> {
    Authority {
        store: api.store(),
        audit: api.audit(),
        hub: api.hub(),
        config: api.config(),
        now: api.now(),
    }
}

/// Disable a user (admins): no login, their sessions end (401), their join tokens are refused
/// and their live media sessions ended.
#[utoipa::path(post, path = "/api/users/{id}/disable", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The user, disabled", body = UserListItem),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Your own account (`cannot_disable_self`)", body = ErrorBody),
    ))]
async fn disable_user(
    State(api): State<Api>,
    AdminUser(actor): AdminUser,
    PathParams(id): PathParams<Uuid>,
) -> Result<Json<UserListItem>, ApiError> {
    users::set_disabled(authority(&api), &actor, id, true)
        .await
        .map(Json)
}

/// Enable a disabled user again (admins). Tokens issued before they were disabled stay refused.
#[utoipa::path(post, path = "/api/users/{id}/enable", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The user, enabled", body = UserListItem),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
async fn enable_user(
    State(api): State<Api>,
    AdminUser(actor): AdminUser,
    PathParams(id): PathParams<Uuid>,
) -> Result<Json<UserListItem>, ApiError> {
    users::set_disabled(authority(&api), &actor, id, false)
        .await
        .map(Json)
}

/// Change a user's display name or role (admins). Your own role and the last enabled
/// administrator's stay. A role change takes effect at once: their next request acts with the
/// new role, and join tokens issued under the old one are refused by the media nodes.
#[utoipa::path(patch, path = "/api/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")), request_body = UserUpdate,
    responses(
        (status = 200, description = "The user as it is now", body = UserListItem),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Your own role (`cannot_demote_self`) or the last admin (`last_admin`)", body = ErrorBody),
        (status = 422, description = "Invalid display name or role, or an unknown field", body = ErrorBody),
    ))]
async fn update_user(
    State(api): State<Api>,
    AdminUser(actor): AdminUser,
    PathParams(id): PathParams<Uuid>,
    JsonBody(change): JsonBody<UserUpdate>,
) -> Result<Json<UserListItem>, ApiError> {
    users::update(authority(&api), &actor, id, change)
        .await
        .map(Json)
}

/// Give a user a new, generated password (admins), shown only in this answer. Every session of
/// the user ends (their next call answers 401); they log in with the new password.
#[utoipa::path(post, path = "/api/users/{id}/password", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The new password, shown once", body = PasswordReset),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
async fn reset_password(
    State(api): State<Api>,
    AdminUser(actor): AdminUser,
    PathParams(id): PathParams<Uuid>,
) -> Result<Json<PasswordReset>, ApiError> {
    users::reset_password(api.store(), api.audit(), api.hasher(), &actor, id)
        .await
        .map(Json)
}

/// Create a user (admins). Without `password` the server generates one and returns it once, as
/// `password`.
#[utoipa::path(post, path = "/api/users", tag = "users", security(("bearer" = [])), request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = UserCreated),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "Username taken (`username_taken`)", body = ErrorBody),
        (status = 422, description = "Invalid username, display name, password or role", body = ErrorBody),
    ))]
async fn create_user(
    State(api): State<Api>,
    AdminUser(actor): AdminUser,
    JsonBody(req): JsonBody<CreateUser>,
) -> Result<(StatusCode, Json<UserCreated>), ApiError> {
    let created = users::create_by_admin(api.store(), api.hasher(), api.now(), &actor, req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// List users, by display name. Admins see everyone with usernames and can search, filter by
/// role and state, and page (`X-Total-Count` says how many match); doctors see enabled doctors
/// and students without usernames (to invite them); students are refused.
#[utoipa::path(get, path = "/api/users", tag = "users", security(("bearer" = [])), params(UserQuery),
    responses(
        (status = 200, description = "One page of users", body = [UserListItem],
            headers(("X-Total-Count" = i64, description = "Users matching the filter, all pages"))),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
    ))]
async fn list_users(
    State(api): State<Api>,
    CurrentUser(actor): CurrentUser,
    QueryParams(q): QueryParams<UserQuery>,
) -> Result<([(&'static str, String); 1], Json<Vec<UserListItem>>), ApiError> {
    let (items, total) = users::list(api.store(), &actor, q).await?;
    Ok(([("x-total-count", total.to_string())], Json(items)))
}
