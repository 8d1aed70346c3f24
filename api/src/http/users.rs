//! HTTP handlers for users: create, disable and enable (admins), and list (admins; doctors
//! choosing invitees).
//!
//! Thin: extract, call the domain (`crate::users`), shape the response. Not here: the rules.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{AdminUser, CurrentUser, JsonBody, PathParams, QueryParams};
use crate::api::Api;
use crate::error::{ApiError, ErrorBody};
use crate::model::{User, UserRole};
use crate::users::{self, Authority, NewUser, UserListItem};

pub(super) fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(create_user, list_users))
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct UserQuery {
    /// Only users with this role.
    role: Option<UserRole>,
}

/// Create a user (admins).
#[utoipa::path(post, path = "/api/users", tag = "users", security(("bearer" = [])), request_body = NewUser,
    responses(
        (status = 201, description = "Created", body = User),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "Username taken (`username_taken`)", body = ErrorBody),
        (status = 422, description = "Invalid username, display name, password or role", body = ErrorBody),
    ))]
async fn create_user(
    State(api): State<Api>,
    AdminUser(actor): AdminUser,
    JsonBody(new): JsonBody<NewUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let user = users::create(
        api.store(),
        api.hasher(),
        api.now(),
        Some(actor.user.id),
        new,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// List users. Admins see everyone with usernames; doctors see doctors and students without
/// usernames (to invite them); students are refused.
#[utoipa::path(get, path = "/api/users", tag = "users", security(("bearer" = [])), params(UserQuery),
    responses(
        (status = 200, description = "Users", body = [UserListItem]),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
async fn list_users(
    State(api): State<Api>,
    CurrentUser(actor): CurrentUser,
    QueryParams(q): QueryParams<UserQuery>,
) -> Result<Json<Vec<UserListItem>>, ApiError> {
    users::list(api.store(), &actor, q.role).await.map(Json)
}
