//! `bedside serve`: API, SFU and web client in one process, with embedded defaults.
//!
//! SQLite in the data dir (or PostgreSQL with `DATABASE_URL`), HTTP on 127.0.0.1:8080, media on
//! one UDP port per worker starting at 50000. The SFU verifies join tokens with the API's public
//! key (it never sees the private key), follows the API's node channel (deny list, lease
//! revokes, latched rooms: `node_local`) and reports lease changes and e-stops back through it.
//! Prints the URL to open.
//!
//! Not here: flag parsing (`main.rs`), or any logic of the parts it wires together.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use axum::Router;
use bedside_api::{Api, ApiConfig};
use bedside_sfu::{Metrics, Sfu, SfuConfig};
use tokio::sync::watch;

use crate::http_server::{self, HttpLimits};
use crate::node_local;

/// How long requests in flight may take to finish at shutdown.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// The media plane's settings, the same for `serve` and `sfu`.
#[derive(Debug, Clone)]
pub struct MediaOptions {
    pub bind_ip: IpAddr,
    pub public_ip: Option<IpAddr>,
    pub udp_port: u16,
    pub workers: usize,
    /// See `SfuConfig::max_viewers_per_worker`.
    pub max_viewers_per_worker: usize,
    /// ICE-TCP port (`None`: no ICE-TCP; `Some(0)`: any free port).
    pub ice_tcp_port: Option<u16>,
    /// TURN relay addresses (sessions from them are reported as relayed).
    pub turn_relay_ips: Vec<IpAddr>,
}

impl MediaOptions {
    /// Loopback, any free ports, one worker, ICE-TCP on a free port: for tests.
    pub fn local() -> Self {
        MediaOptions {
            bind_ip: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            public_ip: None,
            udp_port: 0,
            workers: 1,
            max_viewers_per_worker: bedside_sfu::config::DEFAULT_MAX_VIEWERS_PER_WORKER,
            ice_tcp_port: Some(0),
            turn_relay_ips: Vec::new(),
        }
    }

    /// The SFU configuration these settings make.
    pub fn sfu_config(&self) -> SfuConfig {
        SfuConfig {
            bind_ip: self.bind_ip,
            public_ip: self.public_ip,
            udp_port: self.udp_port,
            workers: self.workers.max(1),
            max_viewers_per_worker: self.max_viewers_per_worker,
            tcp_port: self.ice_tcp_port,
            relay_ips: self.turn_relay_ips.clone(),
            ..SfuConfig::default()
        }
    }
}

pub struct ServeOptions {
    pub http: SocketAddr,
    pub media: MediaOptions,
    pub data_dir: PathBuf,
    /// Base URL clients use; defaults to `http://{http}`.
    pub public_url: Option<String>,
    /// Serve `/metrics` here instead of on the public port.
    pub metrics_addr: Option<SocketAddr>,
    /// Header timeout and connection cap of the HTTP listeners.
    pub http_limits: HttpLimits,
}

/// A running server: its address and a handle to stop it.
pub struct Running {
    pub http: SocketAddr,
    /// Where `/metrics` is served when it has an address of its own.
    pub metrics: Option<SocketAddr>,
    /// `None` when running the API alone.
    pub sfu: Option<Sfu>,
    pub api: Api,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    stop: watch::Sender<bool>,
}

impl Running {
    /// Serve until `signal` resolves (SIGTERM, Ctrl-C), then end the media nodes' streams, stop
    /// accepting, let requests in flight finish, and shut the API down (room events and latch
    /// records still queued are written before the database is closed).
    pub async fn serve_until(
        self,
        signal: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let Running {
            api,
            mut task,
            stop,
            ..
        } = self;
        let served = tokio::select! {
            r = &mut task => r,
            _ = signal => {
                tracing::info!("shutting down: no new connections, finishing requests in flight");
                api.node_hub().close_streams();
                let _ = stop.send(true);
                let _ = tokio::time::timeout(DRAIN * 2, task).await;
                Ok(Ok(()))
            }
        };
        api.shutdown().await;
        served??;
        Ok(())
    }
}

/// Resolves on SIGTERM (what Kubernetes and systemd send) or Ctrl-C.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Stop `rx` waits on, as a future for [`http_server::serve`].
async fn stopped(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            // The sender is gone only when the server is dropped: keep serving.
            std::future::pending::<()>().await;
        }
    }
}

/// Which parts this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parts {
    /// API, SFU and web client (the default, one process).
    All,
    /// API and web client only: the control plane of a cluster.
    Api,
}

/// Open the database, start the SFU workers, bind HTTP. Returns once everything listens.
pub async fn start(opts: ServeOptions) -> anyhow::Result<Running> {
    start_parts(opts, Parts::All).await
}

/// [`start`] with a choice of parts.
pub async fn start_parts(opts: ServeOptions, parts: Parts) -> anyhow::Result<Running> {
    start_configured(opts, parts, |_| {}).await
}

/// [`start_parts`], letting the caller adjust the API configuration (tests shift its clock).
pub async fn start_configured(
    opts: ServeOptions,
    parts: Parts,
    configure: impl FnOnce(&mut ApiConfig),
) -> anyhow::Result<Running> {
    std::fs::create_dir_all(&opts.data_dir)
        .with_context(|| format!("creating data dir {}", opts.data_dir.display()))?;
    let listener = tokio::net::TcpListener::bind(opts.http)
        .await
        .with_context(|| format!("binding HTTP {}", opts.http))?;
    let http = listener.local_addr()?;
    let public_url = opts
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{http}"));
    let mut config = ApiConfig::from_env(opts.data_dir.clone(), public_url)?;
    configure(&mut config);
    let api = Api::open(config)
        .await
        .context("opening the API database")?;

    let hub = api.node_hub();
    let sfu_config = opts.media.sfu_config();
    let sfu = match parts {
        Parts::All => {
            let hook = node_local::reporter(hub.clone());
            let sfu = Sfu::start(sfu_config, api.verifier(), Metrics::new(), Some(hook))
                .await
                .context("starting the media workers")?;
            // Before the first request: nothing revoked gets in, latched rooms stay latched.
            let commands = node_local::sync(&hub, &sfu)
                .await
                .context("reading the deny list and latched rooms")?;
            tokio::spawn(node_local::follow(hub.clone(), sfu.clone(), commands));
            Some(sfu)
        }
        Parts::Api => None,
    };
    let mut app = Router::new().merge(api.router());
    let (stop, stop_rx) = watch::channel(false);
    let mut metrics = None;
    if let Some(sfu) = &sfu {
        app = app.merge(bedside_sfu::signalling::router(sfu.clone()));
        let metrics_app = bedside_sfu::signalling::metrics_router(sfu.clone());
        match opts.metrics_addr {
            Some(addr) => {
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding metrics {addr}"))?;
                metrics = Some(l.local_addr()?);
                let (limits, rx) = (opts.http_limits, stop_rx.clone());
                tokio::spawn(http_server::serve(
                    l,
                    metrics_app,
                    limits,
                    stopped(rx),
                    DRAIN,
                ));
            }
            None => app = app.merge(metrics_app),
        }
    }
    let app = app.fallback(crate::web::asset);
    // The listener gives the API each client's address for its per-address login limit.
    let limits = opts.http_limits;
    let task = tokio::spawn(http_server::serve(
        listener,
        app,
        limits,
        stopped(stop_rx),
        DRAIN,
    ));
    if let Some(code) = api.setup_code().await {
        // Like Jupyter's token: whoever reads this log may create the first administrator. A
        // fragment, so the code reaches no server or proxy log when the link is opened.
        tracing::warn!(
            "no administrator yet. Create the first one in a browser: {}/#setup={code} \
             (one-time setup code; or run `bedside admin create`, or set BEDSIDE_ADMIN_USERNAME \
             and BEDSIDE_ADMIN_PASSWORD)",
            api.config().public_url.trim_end_matches('/')
        );
    }
    tracing::info!(
        %http,
        database = api.backend_name(),
        media = ?sfu.as_ref().map(|s| s.media_addrs().to_vec()),
        "bedside is running"
    );
    Ok(Running {
        http,
        metrics,
        sfu,
        api,
        task,
        stop,
    })
}
