//! `bedside sfu`: a media node on its own, for clusters (the Kubernetes `sfu` StatefulSet).
//!
//! It serves WHIP/WHEP and `/metrics` and verifies join tokens with the public keys it fetches
//! from the API's JWKS URL, refreshed every few minutes so that a key rotation on the API
//! reaches it without a restart. It holds no database and no private key. With the API's URL and
//! the cluster's node secret it follows the API's node channel (`node_link`): revocations end
//! sessions here within the second, an admin's lease revoke reaches the room, latched rooms stay
//! latched across restarts, and room events go to the API's audit log. It waits a few seconds
//! for the first snapshot before it takes participants, then serves regardless (with the API
//! down, media keeps flowing; what was revoked stays revoked once the node has heard of it).
//!
//! Not here: the API (run `bedside api`), or room-to-node routing between several media nodes
//! (the cascade is future work: today a cluster runs one media node per robot group).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::routing::get;
use axum::Router;
use bedside_proto::TokenVerifier;
use bedside_sfu::{Metrics, Sfu};
use tokio::sync::watch;

use crate::node_link::NodeLink;

/// How long a starting node waits for the API's first snapshot before serving anyway.
const FIRST_SNAPSHOT: Duration = Duration::from_secs(10);

pub struct MediaNodeOptions {
    pub http: SocketAddr,
    pub media: crate::serve::MediaOptions,
    /// Serve `/metrics` here instead of on the public port.
    pub metrics_addr: Option<SocketAddr>,
    /// Header timeout and connection cap of the HTTP listener.
    pub http_limits: crate::http_server::HttpLimits,
    pub jwks_url: String,
    pub jwks_refresh: Duration,
    /// The API's base URL and the cluster's node secret, for the node channel; `None`: no
    /// channel (no revocations, no audit of room events: a warning says so).
    pub link: Option<NodeLink>,
}

/// Overrides how often each room's status is refreshed to the API (seconds; default 10).
pub const ENV_STATUS_REFRESH: &str = "BEDSIDE_STATUS_REFRESH_SECS";

/// This node's name in room status reports: `BEDSIDE_NODE_ID`, else the host name (a
/// StatefulSet pod's name), else `media`.
fn node_name() -> String {
    ["BEDSIDE_NODE_ID", "HOSTNAME"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .map(|v| v.trim().to_string())
        .find(|v| !v.is_empty() && v.len() <= 128)
        .unwrap_or_else(|| "media".to_string())
}

async fn fetch_jwks(url: &str) -> anyhow::Result<TokenVerifier> {
    let doc: serde_json::Value = reqwest::get(url)
        .await
        .with_context(|| format!("fetching JWKS from {url}"))?
        .error_for_status()?
        .json()
        .await
        .context("JWKS is not JSON")?;
    TokenVerifier::from_jwks(&doc).map_err(|e| anyhow::anyhow!("{e}"))
}

pub async fn run_media_node(opts: MediaNodeOptions) -> anyhow::Result<()> {
    let verifier = fetch_jwks(&opts.jwks_url).await?;
    let mut config = opts.media.sfu_config();
    config.node_id = node_name();
    if let Some(secs) = std::env::var(ENV_STATUS_REFRESH)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| *s > 0)
    {
        config.status_refresh = Duration::from_secs(secs);
    }
    let hook = opts.link.clone().map(|link| link.reporter().0);
    let sfu = Sfu::start(config, verifier, Metrics::new(), hook).await?;
    match opts.link.clone() {
        Some(link) => {
            let (synced, mut first) = watch::channel(0u64);
            tokio::spawn(link.follow(sfu.clone(), synced));
            let got = tokio::time::timeout(FIRST_SNAPSHOT, first.wait_for(|n| *n > 0)).await;
            if !matches!(got, Ok(Ok(_))) {
                tracing::warn!("no snapshot from the API yet; serving without its deny list until it comes");
            }
        }
        None => tracing::warn!(
            "no --api-url and node secret: revocations and lease revokes will not reach this node, and its room events are not audited"
        ),
    }
    let refresher = sfu.clone();
    let (url, every) = (opts.jwks_url.clone(), opts.jwks_refresh);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            match fetch_jwks(&url).await {
                Ok(v) => refresher.set_verifier(v),
                // Keep the keys we have: the API being down must not lock everyone out.
                Err(e) => tracing::warn!(error = %e, "JWKS refresh failed"),
            }
        }
    });
    let mut app = Router::new()
        .merge(bedside_sfu::signalling::router(sfu.clone()))
        .route("/healthz", get(|| async { "ok" }));
    let metrics = bedside_sfu::signalling::metrics_router(sfu.clone());
    match opts.metrics_addr {
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr).await?;
            tokio::spawn(crate::http_server::serve(
                l,
                metrics,
                opts.http_limits,
                std::future::pending(),
                Duration::ZERO,
            ));
        }
        None => app = app.merge(metrics),
    }
    let listener = tokio::net::TcpListener::bind(opts.http).await?;
    println!("Bedside media node on http://{}/", listener.local_addr()?);
    crate::http_server::serve(
        listener,
        app,
        opts.http_limits,
        crate::serve::shutdown_signal(),
        Duration::from_secs(5),
    )
    .await?;
    Ok(())
}
