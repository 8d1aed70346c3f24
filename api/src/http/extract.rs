//! Request extractors: JSON, path and query wrappers whose rejections use the JSON error shape,
//! and the callers (a user with a role, a robot with its credential, a media node with the node
//! secret, the client address).
//!
//! Authentication and role checks run here, before the body is read, so an unauthorised caller
//! gets 401/403 whatever it sent. Not here: what a role may do to a particular booking (the
//! domain decides that).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::api::Api;
use crate::auth;
use crate::error::ApiError;
use crate::model::{Actor, UserRole};
use crate::proxy;
use crate::secret;

/// `axum::Json` with JSON error responses (400 for syntax, 422 for wrong fields or types).
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct JsonBody<T>(pub T);

/// `axum::extract::Path` with JSON error responses (400, e.g. for a malformed UUID).
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct PathParams<T>(pub T);

/// `axum::extract::Query` with JSON error responses (400).
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct QueryParams<T>(pub T);

/// The credentials after `scheme` in the Authorization header, e.g. `Bearer <token>`.
fn credentials(parts: &Parts, scheme: &str) -> Option<String> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (given, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    (given.eq_ignore_ascii_case(scheme) && !rest.is_empty()).then(|| rest.to_string())
}

/// Any logged-in user.
pub struct CurrentUser(pub Actor);

impl FromRequestParts<Api> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        let token = credentials(parts, "Bearer")
            .ok_or(ApiError::Unauthenticated("missing bearer token"))?;
        let actor = auth::authenticate(api.store(), api.config(), api.now(), &token).await?;
        Ok(CurrentUser(actor))
    }
}

/// A logged-in admin.
pub struct AdminUser(pub Actor);

impl FromRequestParts<Api> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        let CurrentUser(actor) = CurrentUser::from_request_parts(parts, api).await?;
        if actor.user.role != UserRole::Admin {
            return Err(ApiError::Forbidden("admins only"));
        }
        Ok(AdminUser(actor))
    }
}

/// A logged-in doctor.
pub struct DoctorUser(pub Actor);

impl FromRequestParts<Api> for DoctorUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        let CurrentUser(actor) = CurrentUser::from_request_parts(parts, api).await?;
        if actor.user.role != UserRole::Doctor {
            return Err(ApiError::Forbidden("doctors only"));
        }
        Ok(DoctorUser(actor))
    }
}

/// The secret after `Authorization: Robot `.
pub struct RobotCredential(pub String);

impl FromRequestParts<Api> for RobotCredential {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _api: &Api) -> Result<Self, ApiError> {
        credentials(parts, "Robot")
            .map(RobotCredential)
            .ok_or(ApiError::Unauthenticated(
                "missing robot credential (Authorization: Robot <credential>)",
            ))
    }
}

/// The robot itself (its credential, checked by the handler against the robot in the path) or a
/// logged-in admin.
pub enum RobotOrAdmin {
    Robot(String),
    Admin,
}

impl FromRequestParts<Api> for RobotOrAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        if let Some(credential) = credentials(parts, "Robot") {
            return Ok(RobotOrAdmin::Robot(credential));
        }
        AdminUser::from_request_parts(parts, api).await?;
        Ok(RobotOrAdmin::Admin)
    }
}

/// A media node of this cluster: `Authorization: Bearer <node secret>`. Without a configured
/// secret the node routes do not exist (404).
pub struct MediaNode;

impl FromRequestParts<Api> for MediaNode {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        let Some(secret) = api.config().node_secret.as_deref() else {
            return Err(ApiError::NotFound("route"));
        };
        let given =
            credentials(parts, "Bearer").ok_or(ApiError::Unauthenticated("missing node secret"))?;
        // Both sides hashed first, so the comparison takes the same time whatever the lengths.
        if !secret::matches(&given, &secret::digest(secret)) {
            tracing::warn!("node channel refused: wrong node secret");
            return Err(ApiError::Unauthenticated("wrong node secret"));
        }
        Ok(MediaNode)
    }
}

/// The client's IP address, for the login limiter and the audit log; `None` if the server was
/// started without connect info (`into_make_service_with_connect_info::<SocketAddr>()`).
/// `X-Forwarded-For` counts only when the peer is a trusted proxy (`crate::proxy`).
pub struct ClientAddr(pub Option<String>);

impl FromRequestParts<Api> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        if peer.is_none() {
            static WARNED: AtomicBool = AtomicBool::new(false);
            if !WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "no client address (serve with connect info); per-address login limit is off"
                );
            }
        }
        let forwarded: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let client = proxy::client_address(peer, &forwarded, &api.config().trusted_proxies);
        Ok(ClientAddr(client.map(|ip| ip.to_string())))
    }
}
