//! `bedside robot`: the headless robot agent, for real robots and for tests.
//!
//! It publishes a real encoded video stream (a looping fixture: the bundled VP8 test pattern or
//! a `.ivf`/`.h264` file) and Opus over WHIP, receives control frames on the `control` channel,
//! runs the [`watchdog`] and writes the resulting drive commands as JSON lines to a sink (stdout,
//! a UDP address or a Unix datagram socket) for a motor controller. It follows the room's e-stop
//! and reports telemetry every second. When its path goes silent or its address changes (a Wi-Fi
//! roam) it restarts ICE and keeps its session ([`roam`]); when that fails it reconnects with
//! back-off and the SFU splices the new stream into the viewers' old one.
//!
//! Not here: the watchdog rules (see [`watchdog`]), when to mend a path (see [`roam`]) or WebRTC
//! (see `bedside_sfu::client`).

pub mod roam;
pub mod screen;
pub mod sink;
pub mod watchdog;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bedside_proto::events::{ServerEvent, Telemetry};
use bedside_sfu::client::media::{packetize, FixtureCodec, FrameSource, OPUS_SILENCE};
use bedside_sfu::client::{two_way_lines, ClientEvent, Endpoint, TransportKind, WebRtcClient};
use str0m::format::Codec;

use self::roam::{Roam, RoamAction, RoamConfig};
use self::screen::{Screen, ScreenOptions, AUDIO_SLOTS};
use self::sink::Sink;
use self::watchdog::{Drive, Watchdog};

pub struct AgentOptions {
    /// Base URL of the Bedside server, e.g. `http://127.0.0.1:8080`.
    pub server: String,
    /// The robot's id (its room).
    pub room: String,
    /// A publish token, or `None` to obtain one with `credential`.
    pub token: Option<String>,
    pub credential: Option<String>,
    pub fixture: Option<PathBuf>,
    pub deadman: Duration,
    pub sink: Sink,
    /// The address of the robot's ICE candidate; `None`: the one the routing table picks
    /// towards the server, followed as it changes (a roam onto another network).
    pub local_ip: Option<IpAddr>,
    /// Give up after this many failed connection attempts in a row (0 = never).
    pub max_attempts: u32,
    /// Receive the driving doctor's camera and the doctors' voices and hand them to the
    /// robot's screen and speaker (see [`screen`]); `None`: publish only.
    pub screen: Option<ScreenOptions>,
    /// UDP, or ICE-TCP where the network blocks UDP (the agent has no TURN client).
    pub transport: TransportKind,
}

/// Run until interrupted (or `max_attempts` consecutive failures).
pub async fn run(opts: AgentOptions) -> anyhow::Result<()> {
    let mut backoff = Duration::from_millis(250);
    let mut failures = 0u32;
    let mut seq_base = 1u64;
    // One watchdog for the agent's life: its e-stop latch survives reconnections.
    let mut watchdog = Watchdog::new(opts.deadman);
    loop {
        match session(&opts, &mut watchdog, &mut seq_base).await {
            Ok(()) => {
                failures = 0;
                backoff = Duration::from_millis(250);
                tracing::warn!("connection to the server ended; reconnecting");
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, attempt = failures, "robot session failed");
                if opts.max_attempts > 0 && failures >= opts.max_attempts {
                    return Err(e);
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

async fn token(opts: &AgentOptions) -> anyhow::Result<String> {
    if let Some(t) = &opts.token {
        return Ok(t.clone());
    }
    let Some(cred) = &opts.credential else {
        bail!("either --token or --credential is needed");
    };
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/api/robots/{}/publish-token",
            opts.server, opts.room
        ))
        .header("authorization", format!("Robot {cred}"))
        .send()
        .await
        .context("asking the API for a publish token")?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!("publish token refused ({status}): {}", body["message"]);
    }
    body["token"]
        .as_str()
        .map(String::from)
        .context("publish token response has no token")
}

/// One connection: publish and obey until it ends.
async fn session(
    opts: &AgentOptions,
    watchdog: &mut Watchdog,
    seq_base: &mut u64,
) -> anyhow::Result<()> {
    let token = token(opts).await?;
    // With a screen, offer the receive slots too (docs/protocol.md, "m-lines").
    let lines = match &opts.screen {
        Some(_) => two_way_lines(Endpoint::Whip, AUDIO_SLOTS, 1),
        None => two_way_lines(Endpoint::Whip, 0, 0),
    };
    // The routing table is followed only when --local-ip does not pin the address.
    let (local_ip, route_to) = match opts.local_ip {
        Some(ip) => (ip, None),
        None => {
            let to = server_addr(&opts.server).await?;
            let ip = route_source(to).context("no route to the server")?;
            (ip, Some(to))
        }
    };
    let mut client = WebRtcClient::connect_via(
        &opts.server,
        Endpoint::Whip,
        &opts.room,
        &token,
        local_ip,
        &lines,
        opts.transport,
    )
    .await?;
    client.wait_ready(Duration::from_secs(10)).await?;
    let mut screen = match &opts.screen {
        Some(s) => Some(Screen::new(s, client.lines(), &client.codecs())?),
        None => None,
    };
    tracing::info!(session = %client.session_id, %local_ip, "publishing");
    let roam = Roam::new(
        Instant::now(),
        local_ip,
        opts.transport == TransportKind::Udp,
        RoamConfig::default(),
    );

    let mut source = match &opts.fixture {
        Some(p) => FrameSource::load(p).map_err(anyhow::Error::msg)?,
        None => FrameSource::test_pattern(),
    };
    let codec = match source.codec {
        FixtureCodec::Vp8 => Codec::Vp8,
        FixtureCodec::H264 => Codec::H264,
    };
    let vpt = client
        .pt_for(codec)
        .context("server did not accept the video codec")?
        .pt();
    let apt = client.pt_for(Codec::Opus).context("no Opus")?.pt();

    // Whatever we were doing before the reconnect, we start still (and still latched).
    opts.sink.emit(&watchdog.reconnected());
    let ended = publish_and_obey(
        opts,
        &mut client,
        &mut source,
        (vpt, apt),
        watchdog,
        screen.as_mut(),
        seq_base,
        (roam, route_to),
    )
    .await;
    // However the connection ended (the server said goodbye, the socket failed, a bug), losing
    // it means losing the driver: the motors stop now, not at the next reconnect.
    if let Some(d) = watchdog.disconnected() {
        opts.sink.emit(&d);
    }
    ended
}

/// The session's loop: media out, control frames and events in, the path watched and mended,
/// until the connection ends.
#[allow(clippy::too_many_arguments)]
async fn publish_and_obey(
    opts: &AgentOptions,
    client: &mut WebRtcClient,
    source: &mut FrameSource,
    (vpt, apt): (str0m::media::Pt, str0m::media::Pt),
    watchdog: &mut Watchdog,
    mut screen: Option<&mut Screen>,
    seq_base: &mut u64,
    (mut roam, route_to): (Roam, Option<SocketAddr>),
) -> anyhow::Result<()> {
    let (mut vseq, mut aseq) = (*seq_base, *seq_base);
    let (mut vts, mut ats) = (0u32, 0u32);
    let start = Instant::now();
    let (mut next_video, mut next_audio, mut next_telemetry) = (start, start, start);
    let mut next_route = start;
    let mut pings = 0u64;
    loop {
        let now = Instant::now();
        if let Some(to) = route_to.filter(|_| now >= next_route) {
            // A syscall, no packet: cheap enough to ask four times a second.
            roam.route(route_source(to));
            next_route = now + ROUTE_EVERY;
        }
        while let Some(action) = roam.poll(now) {
            match action {
                RoamAction::Ping => {
                    pings += 1;
                    let ping = bedside_proto::events::ClientEvent::Ping { n: pings };
                    if let Ok(json) = serde_json::to_string(&ping) {
                        client.send_event(&json);
                    }
                }
                RoamAction::RestartIce { local_ip, why } => {
                    tracing::warn!(why = why.as_str(), %local_ip, "restarting ICE");
                    client
                        .restart_ice(local_ip)
                        .await
                        .with_context(|| format!("ICE restart ({})", why.as_str()))?;
                    roam.restarted(Instant::now(), local_ip);
                    tracing::info!(session = %client.session_id, %local_ip, "ICE restarted");
                }
                RoamAction::Reconnect { why } => {
                    tracing::warn!(why = why.as_str(), "giving the session up");
                    *seq_base = vseq.max(aseq) + 1000;
                    return Ok(());
                }
            }
        }
        if now >= next_video {
            if let Some(frame) = source.next_frame().cloned() {
                let packets = packetize(source.codec, &frame);
                let n = packets.len();
                for (i, p) in packets.into_iter().enumerate() {
                    client.send_packet(true, vpt, vseq, vts, i + 1 == n, p);
                    vseq += 1;
                }
            }
            vts = vts.wrapping_add(3000);
            next_video += Duration::from_millis(33);
        }
        if now >= next_audio {
            client.send_packet(false, apt, aseq, ats, false, OPUS_SILENCE.to_vec());
            aseq += 1;
            ats = ats.wrapping_add(960);
            next_audio += Duration::from_millis(20);
        }
        if now >= next_telemetry {
            let t = Telemetry {
                battery: Some(0.87),
                link_quality: Some(1.0),
                // The agent has no e-stop button of its own. Echoing the room's latch would
                // race a clear and re-latch the room.
                estop: false,
                drive: Some(drive_axes(&watchdog.current())),
            };
            let msg = bedside_proto::events::ClientEvent::Telemetry(t);
            if let Ok(json) = serde_json::to_string(&msg) {
                client.send_event(&json);
            }
            next_telemetry += Duration::from_secs(1);
        }
        if let Some(d) = watchdog.poll(now) {
            opts.sink.emit(&d);
        }
        let mut until = next_video
            .min(next_audio)
            .min(next_telemetry)
            .min(roam.next_deadline());
        if route_to.is_some() {
            until = until.min(next_route);
        }
        if let Some(d) = watchdog.next_deadline() {
            until = until.min(d);
        }
        while let Some(ev) = client.next_event(until).await? {
            if !matches!(ev, ClientEvent::Disconnected) {
                roam.heard(Instant::now());
            }
            match ev {
                ClientEvent::KeyframeRequest => source.restart_at_keyframe(),
                ClientEvent::Rtp(p) => {
                    if let (Some(s), Some(mid)) = (screen.as_deref_mut(), client.mid_of(&p)) {
                        s.forward(mid, &p);
                    }
                }
                ClientEvent::Control(bytes) => match watchdog.on_frame(&bytes, Instant::now()) {
                    Ok(Some(d)) => opts.sink.emit(&d),
                    Ok(None) => {}
                    Err(why) => tracing::debug!(?why, "control frame ignored"),
                },
                ClientEvent::Event(text) => {
                    let d = match serde_json::from_str(&text) {
                        Ok(ServerEvent::Estop { latched, .. }) => watchdog.on_estop(latched),
                        Ok(ServerEvent::Lease { epoch, .. }) => watchdog.on_lease(epoch),
                        _ => None,
                    };
                    if let Some(d) = d {
                        opts.sink.emit(&d);
                    }
                }
                // Mended (or given up) by the roaming policy at the top of the loop.
                ClientEvent::Disconnected => roam.ice_disconnected(),
                _ => {}
            }
        }
    }
}

/// How often the routing table is asked which address leads to the server.
const ROUTE_EVERY: Duration = Duration::from_millis(250);

/// The server's address, for asking the routing table (the media node is behind the same
/// host as its signalling URL).
async fn server_addr(server: &str) -> anyhow::Result<SocketAddr> {
    let url = reqwest::Url::parse(server).context("the server URL")?;
    let host = url.host_str().context("the server URL has no host")?;
    let port = url.port_or_known_default().unwrap_or(80);
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let mut addrs = tokio::net::lookup_host((host, port))
        .await
        .context("resolving the server")?;
    addrs.next().context("the server's name has no address")
}

/// The source address the routing table picks towards `to` now; `None` without a route.
/// `connect` on a UDP socket sends nothing.
fn route_source(to: SocketAddr) -> Option<IpAddr> {
    let any: SocketAddr = if to.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = std::net::UdpSocket::bind(any).ok()?;
    s.connect(to).ok()?;
    s.local_addr().ok().map(|a| a.ip())
}

fn drive_axes(d: &Drive) -> [i16; 3] {
    [d.linear_x, d.linear_y, d.angular_z]
}
