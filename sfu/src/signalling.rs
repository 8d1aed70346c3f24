//! WHIP and WHEP over HTTP: the only way into a room.
//!
//! `POST /whip/{room}` (robot publishes) and `POST /whep/{room}` (doctors and students watch) take
//! an SDP offer (`application/sdp`) and `Authorization: Bearer <join token>`, and answer
//! `201 Created` with the SDP answer and `Location: /sessions/{key}`. The key is random and secret:
//! `DELETE` on it ends the session. `PATCH` (trickle ICE) is accepted and ignored because the SFU
//! is ICE-lite: it learns the client's address from the client's own connectivity checks.
//!
//! This file is also the one place where [`SfuError`] becomes an HTTP status.
//!
//! Not here: room logic (the switchboard and the room) or str0m (`peer.rs`).

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use bedside_proto::{Role, TokenError};

use crate::error::SfuError;
use crate::sfu::Sfu;

/// SDP offers are a few KB; anything near this is not an offer.
pub const MAX_OFFER_BYTES: usize = 64 * 1024;
/// Room ids are robot UUIDs; allow some slack for other id schemes, not for abuse.
const MAX_ROOM_LEN: usize = 128;

/// Routes for `/whip`, `/whep` and `/sessions`.
pub fn router(sfu: Sfu) -> Router {
    Router::new()
        .route("/whip/{room}", post(whip).options(options))
        .route("/whep/{room}", post(whep).options(options))
        .route("/sessions/{key}", delete(end_session).patch(patch_session))
        .layer(DefaultBodyLimit::max(MAX_OFFER_BYTES))
        .with_state(sfu)
}

/// `GET /metrics` (Prometheus text): on the public port by default, or on an address of its own
/// that only the monitoring network reaches (`--metrics-addr`).
pub fn metrics_router(sfu: Sfu) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(sfu)
}

async fn whip(
    State(sfu): State<Sfu>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = offer(&sfu, &room, &headers, &body, Endpoint::Whip).await;
    respond(&sfu, "whip", r)
}

async fn whep(
    State(sfu): State<Sfu>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = offer(&sfu, &room, &headers, &body, Endpoint::Whep).await;
    respond(&sfu, "whep", r)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Whip,
    Whep,
}

async fn offer(
    sfu: &Sfu,
    room: &str,
    headers: &HeaderMap,
    body: &[u8],
    endpoint: Endpoint,
) -> Result<Response, SfuError> {
    if room.is_empty() || room.len() > MAX_ROOM_LEN {
        return Err(SfuError::BadRequest("invalid room id".into()));
    }
    let token = bearer(headers).ok_or(SfuError::Token(TokenError::Missing))?;
    let claims = sfu.verify(token, room)?;
    match (endpoint, claims.role) {
        (Endpoint::Whip, Role::Robot) | (Endpoint::Whep, Role::Doctor | Role::Observer) => {}
        (Endpoint::Whip, _) => {
            return Err(SfuError::Forbidden(
                "only a robot token may publish (WHIP)".into(),
            ))
        }
        (Endpoint::Whep, _) => {
            return Err(SfuError::Forbidden(
                "a robot token cannot subscribe (WHEP)".into(),
            ))
        }
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/sdp") {
        return Err(SfuError::BadRequest(
            "Content-Type must be application/sdp".into(),
        ));
    }
    let text =
        std::str::from_utf8(body).map_err(|_| SfuError::BadSdp("offer is not UTF-8".into()))?;
    if !text.trim_start().starts_with("v=0") {
        return Err(SfuError::BadSdp("offer must start with v=0".into()));
    }
    let joined = sfu.join(claims, text).await?;
    tracing::info!(session = %joined.id, "session created");
    let location = format!("/sessions/{}", joined.key);
    let mut resp = (StatusCode::CREATED, joined.answer).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&joined.id.to_string()) {
        h.insert("x-bedside-session", v);
    }
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, X-Bedside-Session"),
    );
    Ok(resp)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

async fn end_session(State(sfu): State<Sfu>, Path(key): Path<String>) -> Response {
    let r = if sfu.leave(&key).await {
        Ok(StatusCode::OK.into_response())
    } else {
        Err(SfuError::NoSession)
    };
    respond(&sfu, "delete", r)
}

/// `PATCH /sessions/{key}` (RFC 9725 §4.3): a fragment with only candidates is accepted and
/// needs nothing (ICE-lite: the server learns addresses from the client's checks); a fragment
/// with new `a=ice-ufrag`/`a=ice-pwd` restarts ICE and is answered with ours.
async fn patch_session(
    State(sfu): State<Sfu>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = patch(&sfu, &key, &headers, &body).await;
    respond(&sfu, "patch", r)
}

async fn patch(
    sfu: &Sfu,
    key: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, SfuError> {
    if !sfu.has_session(key) {
        return Err(SfuError::NoSession);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/trickle-ice-sdpfrag") {
        return Err(SfuError::BadRequest(
            "Content-Type must be application/trickle-ice-sdpfrag".into(),
        ));
    }
    if body.len() > crate::ice_restart::MAX_FRAG_BYTES {
        return Err(SfuError::BadRequest("SDP fragment too large".into()));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| SfuError::BadRequest("SDP fragment is not UTF-8".into()))?;
    let Some(remote) = crate::ice_restart::credentials(text).map_err(SfuError::BadRequest)? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let fragment = sfu.ice_restart(key, remote).await?;
    tracing::info!("ICE restarted");
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/trickle-ice-sdpfrag")],
        fragment,
    )
        .into_response())
}

async fn options() -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        axum::http::HeaderName::from_static("accept-post"),
        HeaderValue::from_static("application/sdp"),
    );
    resp
}

async fn metrics(State(sfu): State<Sfu>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        sfu.metrics().render(),
    )
        .into_response()
}

fn respond(sfu: &Sfu, endpoint: &str, r: Result<Response, SfuError>) -> Response {
    let resp = match r {
        Ok(resp) => resp,
        Err(e) => {
            let status = status_of(&e);
            if status.is_server_error() {
                tracing::warn!(endpoint, error = %e, "signalling failed");
            } else {
                tracing::debug!(endpoint, error = %e, "signalling refused");
            }
            let mut resp = (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{e}\n"),
            )
                .into_response();
            if status == StatusCode::UNAUTHORIZED {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            resp
        }
    };
    sfu.metrics()
        .signalling
        .with_label_values(&[endpoint, resp.status().as_str()])
        .inc();
    resp
}

/// The one mapping from SFU errors to HTTP.
fn status_of(e: &SfuError) -> StatusCode {
    match e {
        SfuError::Token(TokenError::WrongRoom) => StatusCode::FORBIDDEN,
        SfuError::Token(_) | SfuError::Revoked(_) => StatusCode::UNAUTHORIZED,
        SfuError::TooManyPending => StatusCode::TOO_MANY_REQUESTS,
        SfuError::Busy => StatusCode::SERVICE_UNAVAILABLE,
        SfuError::Forbidden(_) => StatusCode::FORBIDDEN,
        SfuError::BadSdp(_) | SfuError::BadRequest(_) => StatusCode::BAD_REQUEST,
        SfuError::RoomBusy => StatusCode::CONFLICT,
        SfuError::NoSession => StatusCode::NOT_FOUND,
        SfuError::ShuttingDown | SfuError::Full(_) => StatusCode::SERVICE_UNAVAILABLE,
        SfuError::Internal(_) | SfuError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
