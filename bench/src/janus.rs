//! Janus VideoRoom as the comparison peer: the Debian `janus` 1.1.2 binary in its own process,
//! driven over its plain HTTP API.
//!
//! `bench/janus/setup.sh` installs Janus if needed and writes the config folder (VideoRoom and
//! HTTP only, ICE on one non-loopback address, one shared event loop). The flow is the one in
//! the team's field notes: one Janus session for the whole load generator (as one long-poll loop
//! for events), one handle per peer; the publisher `join`s and `configure`s with our offer; each
//! subscriber `join`s with `streams: [{feed}]`, gets Janus's offer, and `start`s with our
//! answer. Replies to asynchronous requests arrive on the long poll with the request's
//! transaction, possibly before the POST's ack, so a transaction is registered before it is
//! sent.
//!
//! Not here: the peers or the roles (see `peer.rs`, `roles.rs`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use str0m::media::Direction;
use tokio::sync::oneshot;

use crate::peer::Peer;
use crate::procs::{free_port, Server};

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>;

/// A Janus session shared by all peers of one run.
#[derive(Clone)]
pub struct Janus {
    base: String,
    session: u64,
    waiters: Waiters,
    next: Arc<AtomicU64>,
    pub room: u64,
}

pub struct Started {
    pub server: Server,
    pub sig: Janus,
    /// The event long-poll; abort it when the run ends.
    pub poller: tokio::task::JoinHandle<()>,
}

/// Write the config with `setup.sh`, start `janus` on core `cpu`, open a session, create a room.
pub async fn start(
    setup_script: &Path,
    dir: &Path,
    ip: IpAddr,
    rtp_range: &str,
    cpu: usize,
) -> anyhow::Result<Started> {
    let conf = dir.join("janus-conf");
    let http_port = free_port();
    let status = std::process::Command::new("bash")
        .arg(setup_script)
        .arg(&conf)
        .arg(ip.to_string())
        .arg(http_port.to_string())
        .arg(rtp_range)
        .arg("1")
        .stdout(std::process::Stdio::null())
        .status()
        .with_context(|| format!("running {}", setup_script.display()))?;
    if !status.success() {
        bail!("{} failed: {status}", setup_script.display());
    }
    let log = dir.join("janus.log");
    let cmd = vec![
        "janus".to_string(),
        "-F".into(),
        conf.display().to_string(),
        "-o".into(),
        "-N".into(),
        "-L".into(),
        log.display().to_string(),
    ];
    let mut server = Server::spawn("janus", cpu, &cmd, &dir.join("janus.stdout"))?;
    let base = format!("http://127.0.0.1:{http_port}/janus");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if !server.alive() {
            bail!("janus exited; see {}", log.display());
        }
        if let Ok(r) = http.get(format!("{base}/info")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        if Instant::now() > deadline {
            bail!("janus did not answer on {base} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let created: Value = http
        .post(&base)
        .json(&json!({"janus": "create", "transaction": "create"}))
        .send()
        .await?
        .json()
        .await?;
    let session = created["data"]["id"]
        .as_u64()
        .ok_or_else(|| anyhow!("janus create: {created}"))?;
    let waiters: Waiters = Default::default();
    let poller = tokio::spawn(poll_events(
        http.clone(),
        format!("{base}/{session}"),
        waiters.clone(),
    ));
    let mut sig = Janus {
        base,
        session,
        waiters,
        next: Arc::new(AtomicU64::new(1)),
        room: 0,
    };
    let handle = sig.attach(&http).await?;
    let room = 1000 + (std::process::id() as u64 % 1000);
    let r = sig
        .request(
            &http,
            handle,
            json!({
                "request": "create", "room": room, "publishers": 1, "bitrate": 0,
                "fir_freq": 0, "audiocodec": "opus", "videocodec": "vp8",
                "notify_joining": false, "permanent": false
            }),
        )
        .await?;
    if r["plugindata"]["data"]["videoroom"] != "created" {
        bail!("janus room create: {r}");
    }
    sig.room = room;
    Ok(Started {
        server,
        sig,
        poller,
    })
}

/// The long poll: hand each event to whoever waits for its transaction; keep the session alive.
async fn poll_events(http: reqwest::Client, url: String, waiters: Waiters) {
    let mut last_keepalive = Instant::now();
    loop {
        if last_keepalive.elapsed() > Duration::from_secs(20) {
            let _ = http
                .post(&url)
                .json(&json!({"janus": "keepalive", "transaction": "ka"}))
                .send()
                .await;
            last_keepalive = Instant::now();
        }
        let resp = http
            .get(format!("{url}?maxev=50"))
            .timeout(Duration::from_secs(40))
            .send()
            .await;
        let Ok(resp) = resp else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(v) = resp.json::<Value>().await else {
            continue;
        };
        let events = match v {
            Value::Array(a) => a,
            other => vec![other],
        };
        for ev in events {
            let Some(t) = ev["transaction"].as_str() else {
                continue;
            };
            if ev["janus"] == "ack" {
                continue;
            }
            let w = waiters.lock().ok().and_then(|mut w| w.remove(t));
            if let Some(tx) = w {
                let _ = tx.send(ev);
            }
        }
    }
}

impl Janus {
    fn transaction(&self) -> String {
        format!("t{}", self.next.fetch_add(1, Ordering::Relaxed))
    }

    pub async fn attach(&self, http: &reqwest::Client) -> anyhow::Result<u64> {
        let v: Value = http
            .post(format!("{}/{}", self.base, self.session))
            .json(
                &json!({"janus": "attach", "plugin": "janus.plugin.videoroom",
                          "transaction": self.transaction()}),
            )
            .send()
            .await?
            .json()
            .await?;
        v["data"]["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("janus attach: {v}"))
    }

    /// A plugin message. Synchronous plugin replies come back in the POST; asynchronous ones
    /// (after an `ack`) on the long poll.
    pub async fn request(
        &self,
        http: &reqwest::Client,
        handle: u64,
        body: Value,
    ) -> anyhow::Result<Value> {
        self.message(http, handle, body, None).await
    }

    async fn message(
        &self,
        http: &reqwest::Client,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> anyhow::Result<Value> {
        let t = self.transaction();
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.waiters.lock() {
            w.insert(t.clone(), tx);
        }
        let mut msg = json!({"janus": "message", "transaction": t, "body": body});
        if let Some(j) = jsep {
            msg["jsep"] = j;
        }
        let v: Value = http
            .post(format!("{}/{}/{}", self.base, self.session, handle))
            .json(&msg)
            .timeout(Duration::from_secs(20))
            .send()
            .await?
            .json()
            .await?;
        match v["janus"].as_str() {
            Some("ack") => {}
            Some("success") => {
                if let Ok(mut w) = self.waiters.lock() {
                    w.remove(&t);
                }
                return Ok(v);
            }
            _ => bail!("janus message: {v}"),
        }
        let ev = tokio::time::timeout(Duration::from_secs(20), rx)
            .await
            .map_err(|_| anyhow!("janus: no event for {t}"))?
            .map_err(|_| anyhow!("janus: poller gone"))?;
        if let Some(e) = ev["plugindata"]["data"]["error"].as_str() {
            bail!("janus: {e}");
        }
        Ok(ev)
    }

    /// Publish `peer` (our offer, Janus's answer); returns the feed id.
    pub async fn publish(&self, http: &reqwest::Client, peer: &mut Peer) -> anyhow::Result<u64> {
        let handle = self.attach(http).await?;
        let joined = self
            .request(
                http,
                handle,
                json!({"request": "join", "ptype": "publisher", "room": self.room,
                       "display": "robot"}),
            )
            .await?;
        let feed = joined["plugindata"]["data"]["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("janus join: {joined}"))?;
        let (offer, pending) = peer.offer(Direction::SendOnly, false)?;
        let ev = self
            .message(
                http,
                handle,
                json!({"request": "configure", "audio": true, "video": true}),
                Some(json!({"type": "offer", "sdp": offer.to_sdp_string()})),
            )
            .await?;
        let sdp = ev["jsep"]["sdp"]
            .as_str()
            .ok_or_else(|| anyhow!("janus configure gave no answer: {ev}"))?;
        peer.accept_answer(pending, sdp)?;
        Ok(feed)
    }

    /// Subscribe `peer` to `feed` (Janus's offer, our answer).
    pub async fn subscribe(
        &self,
        http: &reqwest::Client,
        peer: &mut Peer,
        feed: u64,
    ) -> anyhow::Result<()> {
        let handle = self.attach(http).await?;
        let ev = self
            .request(
                http,
                handle,
                json!({"request": "join", "ptype": "subscriber", "room": self.room,
                       "streams": [{"feed": feed}]}),
            )
            .await?;
        let offer = ev["jsep"]["sdp"]
            .as_str()
            .ok_or_else(|| anyhow!("janus subscribe gave no offer: {ev}"))?;
        let answer = peer.accept_offer(offer)?;
        self.message(
            http,
            handle,
            json!({"request": "start", "room": self.room}),
            Some(json!({"type": "answer", "sdp": answer})),
        )
        .await?;
        Ok(())
    }
}
