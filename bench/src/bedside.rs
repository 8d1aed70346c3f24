//! Bedside under test: the real `bedside serve` binary in its own process, tokens minted with
//! `bedside token`, WHIP/WHEP signalling and `/metrics`.
//!
//! Not here: the peers (see `peer.rs`) or what they do (see `roles.rs`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use str0m::media::Direction;

use crate::peer::Peer;
use crate::procs::{free_port, Server};

/// Where and how to reach a running Bedside.
#[derive(Clone)]
pub struct Bedside {
    pub base: String,
    pub room: String,
    pub robot_token: String,
    pub doctor_token: String,
    pub observer_token: String,
}

pub struct Started {
    pub server: Server,
    pub sig: Bedside,
}

fn mint(bin: &Path, data: &Path, room: &str, role: &str, extra: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(bin)
        .arg("token")
        .arg("--data-dir")
        .arg(data)
        .args(["--room", room, "--role", role, "--ttl", "7200"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .output()
        .with_context(|| format!("running {} token", bin.display()))?;
    if !out.status.success() {
        bail!(
            "bedside token --role {role} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let t = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if t.is_empty() {
        bail!("bedside token printed nothing");
    }
    Ok(t)
}

/// Start `bedside serve` on core `cpu` with one media worker; wait until it answers HTTP.
pub async fn start(
    bin: &Path,
    dir: &Path,
    ip: IpAddr,
    udp_port: u16,
    cpu: usize,
) -> anyhow::Result<Started> {
    let data: PathBuf = dir.join("bedside-data");
    std::fs::create_dir_all(&data)?;
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
        "--workers".into(),
        "1".into(),
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
    let robot_token = mint(bin, &data, &room, "robot", &[])?;
    let doctor_token = mint(bin, &data, &room, "doctor", &["--can-control"])?;
    let observer_token = mint(bin, &data, &room, "observer", &[])?;
    Ok(Started {
        server,
        sig: Bedside {
            base,
            room,
            robot_token,
            doctor_token,
            observer_token,
        },
    })
}

/// What a WHIP/WHEP POST gave back.
pub struct Session {
    /// The participant id others see in `events` (`X-Bedside-Session`).
    pub id: String,
}

impl Bedside {
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
        let (offer, pending) = peer.offer(dir, true)?;
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

/// Sum of all samples of a metric (any labels) in Prometheus text.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            let bare = k.split('{').next()?;
            (bare == name).then(|| v.parse::<f64>().ok()).flatten()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_sums_over_labels() {
        let t = "# HELP x\nbedside_rtp_packets_out_total{kind=\"video\"} 10\n\
                 bedside_rtp_packets_out_total{kind=\"audio\"} 5\nother 1\n";
        assert_eq!(metric_sum(t, "bedside_rtp_packets_out_total"), 15.0);
        assert_eq!(metric_sum(t, "missing"), 0.0);
    }
}
