//! `bedside serve` in-process, as a one-node install runs it: the API and the SFU in one
//! process on loopback, SQLite in a temp dir. [`serve_local`] starts it and hands back the
//! running server with an API [`Client`] on it and the temp dir to keep.
//!
//! Not here: separate processes (`cluster.rs`), or what the tests do with the server.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bedside::serve::{start_configured, MediaOptions, Parts, Running, ServeOptions};
use bedside_api::testing::Client;
use bedside_api::ApiConfig;

/// A running one-process server, its API client and its data dir (removed when dropped).
pub struct Local {
    pub running: Running,
    pub client: Client,
    pub dir: tempfile::TempDir,
}

/// Start the one-process server on free loopback ports; `configure` adjusts the API's settings
/// (its clock, say) before it starts.
pub async fn serve_local(configure: impl FnOnce(&mut ApiConfig)) -> Local {
    let dir = tempfile::tempdir().expect("temp dir");
    let running = start_configured(
        ServeOptions {
            http: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            media: MediaOptions::local(),
            data_dir: dir.path().to_path_buf(),
            public_url: None,
            metrics_addr: None,
            http_limits: Default::default(),
        },
        Parts::All,
        configure,
    )
    .await
    .expect("server starts");
    let client = Client::new(running.api.clone(), format!("http://{}", running.http));
    Local {
        running,
        client,
        dir,
    }
}
