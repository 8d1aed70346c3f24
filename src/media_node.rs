//! `bedside sfu`: a media node on its own, for clusters (the Kubernetes `sfu` StatefulSet).
//!
//! It serves WHIP/WHEP and `/metrics` and verifies join tokens with the public keys it fetches
//! from the API's JWKS URL, refreshed every few minutes so that a key rotation on the API
//! reaches it without a restart. It holds no database and no private key.
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

pub struct MediaNodeOptions {
    pub http: SocketAddr,
    pub media: crate::serve::MediaOptions,
    /// Serve `/metrics` here instead of on the public port.
    pub metrics_addr: Option<SocketAddr>,
    /// Header timeout and connection cap of the HTTP listener.
    pub http_limits: crate::http_server::HttpLimits,
    pub jwks_url: String,
    pub jwks_refresh: Duration,
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
    let config = opts.media.sfu_config();
    let sfu = Sfu::start(config, verifier, Metrics::new(), None).await?;
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
