//! HTTP handlers for sessions: login, refresh, logout, and who am I.
//!
//! Thin: extract, call the domain (`crate::auth`), shape the response. Not here: the rules.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ClientAddr, CurrentUser, JsonBody};
use crate::api::Api;
use crate::auth::{self, Credentials, LoginContext, TokenResponse};
use crate::error::{ApiError, ErrorBody};
use crate::model::User;

pub(super) fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct RefreshRequest {
    refresh_token: String,
}

/// Log in with username and password.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 401, description = "Unknown username or wrong password (`invalid_credentials`); a disabled account (`unauthenticated`)", body = ErrorBody),
        (status = 429, description = "Backing off after failed logins from this address, for this account or any (`rate_limited`)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
async fn login(
    State(api): State<Api>,
    ClientAddr(client): ClientAddr,
    JsonBody(req): JsonBody<LoginRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let credentials = Credentials {
        username: &req.username,
        password: req.password,
        client: client.as_deref(),
    };
    let cx = LoginContext {
        store: api.store(),
        audit: api.audit(),
        hasher: api.hasher(),
        config: api.config(),
        now: api.now(),
    };
    auth::login(cx, credentials).await.map(Json)
}

/// Exchange a refresh token for a new token pair. Each refresh token works once.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = TokenResponse),
        (status = 401, description = "Unknown, used or expired refresh token", body = ErrorBody),
    ))]
async fn refresh(
    State(api): State<Api>,
    JsonBody(req): JsonBody<RefreshRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    auth::refresh(api.store(), api.config(), api.now(), &req.refresh_token)
        .await
        .map(Json)
}

/// End this session: its access and refresh tokens stop working.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "Not logged in", body = ErrorBody),
    ))]
async fn logout(
    State(api): State<Api>,
    CurrentUser(actor): CurrentUser,
) -> Result<StatusCode, ApiError> {
    auth::logout(api.store(), api.audit(), &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The logged-in user.
#[utoipa::path(get, path = "/api/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = User),
        (status = 401, description = "Not logged in", body = ErrorBody),
    ))]
async fn me(CurrentUser(actor): CurrentUser) -> Json<User> {
    Json(actor.user)
}
