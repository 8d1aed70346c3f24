//! `bedside serve`: API, SFU and web client in one process, with embedded defaults.
//!
//! SQLite in the data dir (or PostgreSQL with `DATABASE_URL`), HTTP on 127.0.0.1:8080, media on
//! one UDP port per worker starting at 50000. The SFU verifies join tokens with the API's public
//! key (it never sees the private key) and reports lease changes and e-stops into the API's
//! audit log. Prints the URL to open.
//!
//! Not here: flag parsing (`main.rs`), or any logic of the parts it wires together.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use bedside_api::{Api, ApiConfig};
use bedside_sfu::{Metrics, RoomEvent, RoomEventHook, Sfu, SfuConfig};

pub struct ServeOptions {
    pub http: SocketAddr,
    pub bind_ip: IpAddr,
    pub public_ip: Option<IpAddr>,
    pub udp_port: u16,
    pub workers: usize,
    /// See `SfuConfig::max_viewers_per_worker`.
    pub max_viewers_per_worker: usize,
    pub data_dir: PathBuf,
    /// Base URL clients use; defaults to `http://{http}`.
    pub public_url: Option<String>,
}

/// A running server: its address and a handle to stop it.
pub struct Running {
    pub http: SocketAddr,
    /// `None` when running the API alone.
    pub sfu: Option<Sfu>,
    pub api: Api,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Serve until the task ends (it does not, short of an I/O error).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await??;
        Ok(())
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
    let mut config = ApiConfig::from_env(opts.data_dir.clone(), public_url);
    configure(&mut config);
    let api = Api::open(config)
        .await
        .context("opening the API database")?;

    let audit = api.audit_sink();
    let hook: RoomEventHook = Arc::new(move |ev: RoomEvent| {
        audit.record_room_event(&ev.room, ev.actor.as_deref(), ev.kind, ev.detail)
    });
    let sfu_config = SfuConfig {
        bind_ip: opts.bind_ip,
        public_ip: opts.public_ip,
        udp_port: opts.udp_port,
        workers: opts.workers.max(1),
        max_viewers_per_worker: opts.max_viewers_per_worker,
        ..SfuConfig::default()
    };
    let sfu = match parts {
        Parts::All => Some(
            Sfu::start(sfu_config, api.verifier(), Metrics::new(), Some(hook))
                .await
                .context("starting the media workers")?,
        ),
        Parts::Api => None,
    };

    if let Some(sfu) = &sfu {
        let sfu = sfu.clone();
        api.set_lease_revoker(Arc::new(move |room: String| {
            let sfu = sfu.clone();
            Box::pin(async move { sfu.revoke_lease(&room).await })
        }));
    }
    let mut app = Router::new().merge(api.router());
    if let Some(sfu) = &sfu {
        app = app.merge(bedside_sfu::signalling::router(sfu.clone()));
    }
    let app = app.fallback(crate::web::asset);
    // Connect info gives the API the client address for its per-address login limit.
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move { axum::serve(listener, service).await });
    tracing::info!(
        %http,
        database = api.backend_name(),
        media = ?sfu.as_ref().map(|s| s.media_addrs().to_vec()),
        "bedside is running"
    );
    Ok(Running {
        http,
        sfu,
        api,
        task,
    })
}
