//! The crate's one error type and the one place where errors become HTTP responses.
//!
//! Every response error has the body `{"error": "<code>", "message": "<human text>"}` (plus
//! `conflict` for booking conflicts). Server-side failures are logged here and answered with a
//! generic message, so no SQL, driver text or backtrace reaches a client. Not here: deciding
//! *whether* something is an error (the domain modules do that).

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Error)]
pub enum ApiError {
    /// Malformed request: bad JSON syntax, bad path or query parameter.
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed but unacceptable input: lengths, time order, unknown enum values.
    #[error("{0}")]
    Validation(String),
    #[error("request body is too large")]
    PayloadTooLarge,
    #[error("unknown username or wrong password")]
    InvalidCredentials,
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    OutsideJoinWindow(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("the robot is already booked from {} to {}", .0.starts_at, .0.ends_at)]
    BookingConflict(ConflictSlot),
    #[error("too many failed logins; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("internal: {0}")]
    Internal(String),
}

/// The existing booking a new one collides with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConflictSlot {
    pub booking_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// Body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `invalid_credentials`, `booking_conflict`.
    pub error: String,
    /// Human-readable explanation.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<ConflictSlot>,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            BadRequest(_) => StatusCode::BAD_REQUEST,
            Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            InvalidCredentials | Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Forbidden(_) | OutsideJoinWindow(_) => StatusCode::FORBIDDEN,
            NotFound(_) => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Conflict { .. } | BookingConflict(_) => StatusCode::CONFLICT,
            RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Database(_) | Migration(_) | Config(_) | Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            BadRequest(_) => "bad_request",
            Validation(_) => "validation_failed",
            PayloadTooLarge => "payload_too_large",
            InvalidCredentials => "invalid_credentials",
            Unauthenticated(_) => "unauthenticated",
            Forbidden(_) => "forbidden",
            OutsideJoinWindow(_) => "outside_join_window",
            NotFound(_) => "not_found",
            MethodNotAllowed => "method_not_allowed",
            Conflict { code, .. } => code,
            BookingConflict(_) => "booking_conflict",
            RateLimited { .. } => "rate_limited",
            Database(_) | Migration(_) | Config(_) | Internal(_) => "internal",
        }
    }

    pub(crate) fn validation(message: impl Into<String>) -> Self {
        ApiError::Validation(message.into())
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Conflict {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        ApiError::Internal(message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
            "internal error".to_string()
        } else {
            self.to_string()
        };
        let conflict = match &self {
            ApiError::BookingConflict(slot) => Some(slot.clone()),
            _ => None,
        };
        let body = ErrorBody {
            error: self.code().to_string(),
            message,
            conflict,
        };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        match self {
            ApiError::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            ApiError::InvalidCredentials | ApiError::Unauthenticated(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

// axum's own rejections answer in plain text; these turn them into the JSON shape above.

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection.status() {
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::Validation(rejection.body_text()),
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::BadRequest(
                "expected a JSON body with Content-Type: application/json".into(),
            ),
            _ => ApiError::BadRequest(rejection.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn server_errors_hide_their_detail() {
        let e = ApiError::internal("SELECT * FROM users exploded");
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let response = e.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": "internal", "message": "internal error"})
        );
    }

    #[test]
    fn rate_limit_sets_retry_after() {
        let response = ApiError::RateLimited {
            retry_after_secs: 42,
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "42");
    }
}
