//! Bedside under test: the real `bedside serve` binary in its own process, WHIP/WHEP signalling
//! and `/metrics`. The bench writes the signing key into the server's data dir before it starts
//! and mints one token per participant itself (a fresh `sub` and `jti` each), as the API would:
//! 500 viewers sharing one token would not be 500 people.
//!
//! Not here: the peers (see `peer.rs`) or what they do (see `roles.rs`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bedside_proto::{Claims, KeyPair, Role, TokenSigner};
/// The one reader of the nodes' Prometheus text (shared with the tests).
pub use bedside_sfu::metrics_text::sum as metric_sum;
use str0m::media::{Direction, MediaKind};

use crate::peer::Peer;
use crate::procs::{free_port, Server};

/// Where and how to reach a running Bedside.
#[derive(Clone)]
pub struct Bedside {
    pub base: String,
    pub room: String,
    signer: TokenSigner,
}

pub struct Started {
    pub server: Server,
    pub sig: Bedside,
}

/// The server's signing key file, in its data dir (`bedside-api`'s `KEY_FILE_NAME`).
const KEY_FILE: &str = "jwt-ed25519.pem";

/// Start `bedside serve` on core `cpu` with one media worker taking up to `max_viewers`
/// watchers; wait until it answers HTTP.
pub async fn start(
    bin: &Path,
    dir: &Path,
    ip: IpAddr,
    udp_port: u16,
    cpu: usize,
    max_viewers: usize,
) -> anyhow::Result<Started> {
    let data: PathBuf = dir.join("bedside-data");
    std::fs::create_dir_all(&data)?;
    let keys = KeyPair::generate().map_err(|e| anyhow::anyhow!("{e}"))?;
    write_private(&data.join(KEY_FILE), &keys.to_pem())?;
    let http_port = free_port();
    let cmd = vec![
        bin.display().to_string(),
        "serve".into(),
        "--data-dir".into(),
        data.display().to_string(),
        "--http".into(),
        format!("127.0.0.1:{http_port}"),
        "--bind-ip".into(),
        ip.to_string(),
        "--udp-port".into(),
        udp_port.to_string(),
        // ICE-TCP on the same number (a TCP port): the `bedside-tcp` runs' viewers use it.
        "--ice-tcp-port".into(),
        udp_port.to_string(),
        "--workers".into(),
        "1".into(),
        "--max-viewers-per-worker".into(),
        max_viewers.to_string(),
    ];
    let mut server = Server::spawn("bedside", cpu, &cmd, &dir.join("bedside.log"))?;
    let base = format!("http://127.0.0.1:{http_port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if !server.alive() {
            bail!(
                "bedside serve exited; see {}",
                dir.join("bedside.log").display()
            );
        }
        if let Ok(r) = http.get(format!("{base}/metrics")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        if Instant::now() > deadline {
            bail!("bedside serve did not answer on {base} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The room id is the robot's id: any UUID-like string the SFU accepts.
    let room = format!("bench-{}", std::process::id());
    Ok(Started {
        server,
        sig: Bedside {
            base,
            room,
            signer: keys.signer(),
        },
    })
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// What a WHIP/WHEP POST gave back.
pub struct Session {
    /// The participant id others see in `events` (`X-Bedside-Session`).
    pub id: String,
}

impl Bedside {
    /// A fresh join token for one participant (its own `sub` and `jti`), valid two hours.
    pub fn token(&self, role: Role) -> anyhow::Result<String> {
        let sub = format!("bench-{}-{:016x}", role.as_str(), rand::random::<u64>());
        let mut c = Claims::new(sub, self.room.clone(), role, 7200);
        c.can_control = role == Role::Doctor;
        self.signer.sign(&c).map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Offer from `peer`, POST it (WHIP for the robot, WHEP for everyone else), apply the answer.
    pub async fn connect(
        &self,
        http: &reqwest::Client,
        peer: &mut Peer,
        whip: bool,
        token: &str,
    ) -> anyhow::Result<Session> {
        let dir = if whip {
            Direction::SendOnly
        } else {
            Direction::RecvOnly
        };
        let lines = [(MediaKind::Video, dir), (MediaKind::Audio, dir)];
        self.connect_lines(http, peer, whip, token, &lines).await
    }

    /// [`connect`](Self::connect) with these m-lines (a two-way participant's layout).
    pub async fn connect_lines(
        &self,
        http: &reqwest::Client,
        peer: &mut Peer,
        whip: bool,
        token: &str,
        lines: &[(MediaKind, Direction)],
    ) -> anyhow::Result<Session> {
        let (offer, pending) = peer.offer_lines(lines, true)?;
        let path = if whip { "whip" } else { "whep" };
        let resp = http
            .post(format!("{}/{path}/{}", self.base, self.room))
            .header("content-type", "application/sdp")
            .bearer_auth(token)
            .body(offer.to_sdp_string())
            .timeout(Duration::from_secs(20))
            .send()
            .await?;
        let status = resp.status().as_u16();
        let header = |k: &str| {
            resp.headers()
                .get(k)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let id = header("x-bedside-session");
        let body = resp.text().await?;
        if status != 201 {
            bail!("{path} answered {status}: {body}");
        }
        peer.accept_answer(pending, &body)?;
        if peer.ice_tcp {
            peer.connect_tcp(&body).await?;
        }
        Ok(Session { id })
    }

    pub async fn metrics(&self, http: &reqwest::Client) -> anyhow::Result<String> {
        Ok(http
            .get(format!("{}/metrics", self.base))
            .timeout(Duration::from_secs(10))
            .send()
            .await?
            .text()
            .await?)
    }
}
