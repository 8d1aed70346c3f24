//! The node channel over HTTP, for media nodes that run apart from the API (`bedside sfu`):
//!
//! - `GET /internal/node/stream`: newline-delimited JSON, one `NodeCommand` per line, a
//!   `snapshot` first, then every command as the API publishes it, and a `ping` every
//!   [`PING_EVERY`] so the node can tell a quiet stream from a dead one. A node that falls too
//!   far behind, or an API shutting down, ends the stream; the node reconnects and starts over
//!   from a fresh snapshot.
//! - `POST /internal/node/reports`: a JSON array of `NodeReport`s (room events, room statuses), answered 204
//!   once they are queued. Entries this API does not understand (a newer node) are skipped, not
//!   refused, so one cannot block the rest.
//!
//! Both require `Authorization: Bearer <node secret>`; without a configured secret they answer
//! 404. They are not in the OpenAPI description: browsers never call them. Not here: what the
//! hub does with any of it (`node_hub`).

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bedside_proto::node::{NodeCommand, NodeReport};
use tokio::sync::{broadcast, watch};

use super::extract::{JsonBody, MediaNode};
use crate::api::Api;
use crate::error::ApiError;

/// How often a quiet stream says it is alive.
pub const PING_EVERY: Duration = Duration::from_secs(10);
/// Largest report batch (a node sends at most a few hundred small reports at once).
const REPORTS_LIMIT: usize = 1024 * 1024;

pub(super) fn routes() -> Router<Api> {
    Router::new()
        .route("/internal/node/stream", get(stream))
        .route(
            "/internal/node/reports",
            post(reports).layer(DefaultBodyLimit::max(REPORTS_LIMIT)),
        )
}

async fn stream(State(api): State<Api>, _node: MediaNode) -> Result<Response, ApiError> {
    let hub = api.node_hub();
    let (snapshot, rx) = hub.subscribe().await?;
    tracing::info!("a media node follows the node stream");
    let state = Follow {
        first: Some(snapshot),
        rx,
        closing: hub.closing(),
        ping: tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY),
    };
    let lines = futures_util::stream::unfold(state, |mut s| async move {
        let cmd = s.next().await?;
        let mut line = serde_json::to_vec(&cmd).ok()?;
        line.push(b'\n');
        Some((Ok::<_, Infallible>(Bytes::from(line)), s))
    });
    Ok((
        [
            (CONTENT_TYPE, "application/x-ndjson"),
            (CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(lines),
    )
        .into_response())
}

/// One node's place in the command stream.
struct Follow {
    first: Option<NodeCommand>,
    rx: broadcast::Receiver<NodeCommand>,
    closing: watch::Receiver<bool>,
    ping: tokio::time::Interval,
}

impl Follow {
    /// The next line to send; `None` ends the stream.
    async fn next(&mut self) -> Option<NodeCommand> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        if *self.closing.borrow() {
            return None;
        }
        tokio::select! {
            cmd = self.rx.recv() => match cmd {
                Ok(cmd) => Some(cmd),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "a media node fell behind; it will start over");
                    None
                }
                Err(broadcast::error::RecvError::Closed) => None,
            },
            _ = self.ping.tick() => Some(NodeCommand::Ping),
            _ = self.closing.wait_for(|c| *c) => None,
        }
    }
}

async fn reports(
    State(api): State<Api>,
    _node: MediaNode,
    JsonBody(batch): JsonBody<Vec<serde_json::Value>>,
) -> StatusCode {
    let hub = api.node_hub();
    let mut skipped = 0usize;
    for value in batch {
        match serde_json::from_value::<NodeReport>(value) {
            Ok(report) => hub.report(report),
            Err(_) => skipped += 1,
        }
    }
    if skipped > 0 {
        tracing::warn!(
            skipped,
            "node reports this API does not understand were skipped"
        );
    }
    StatusCode::NO_CONTENT
}
