//! The load generator's participants: the synthetic robot, the controller (the doctor holding
//! the lease) and the viewers.
//!
//! - The robot loops the VP8 fixture at its frame rate, spreads each frame's packets at
//!   `pacing x bitrate` (as a WebRTC sender's pacer does; 0 sends each frame as one burst), logs
//!   every video packet's send time, answers keyframe requests by restarting at a keyframe, and
//!   measures control frames on arrival.
//! - The controller (Bedside only) takes the lease and sends a drive frame every 20 ms (50 Hz),
//!   logging each frame's send time.
//! - A viewer subscribes and tracks what it receives (`track.rs`). In `light` mode it stops
//!   handing SRTP media to str0m once it is in sync and has seen its first keyframe (it still
//!   handles STUN, DTLS, SCTP and RTCP); use it only when the generator's core saturates.
//! - In a two-way room (`--two-way`) the robot also receives the presenter and the voices, the
//!   controller publishes a camera and a microphone, and viewers take audio slots (`two_way.rs`).
//!
//! Not here: signalling details (see `bedside.rs`, `janus.rs`).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bedside_proto::{ControlFrame, FrameKind, Role};
use bedside_sfu::client::media::{FrameSource, OPUS_SILENCE};
use str0m::channel::ChannelId;
use str0m::format::Codec;
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Event, IceConnectionState, Rtc};
use tokio::sync::watch;

use crate::bedside::Bedside;
use crate::janus::Janus;
use crate::peer::{Handler, Peer, Woke};
use crate::track::{ControlLog, RxTrack, SendLog, Window};
use crate::udp::{now_ns, rtp_head, Datagram};

/// Which server the peers talk to.
#[derive(Clone)]
pub enum Target {
    Bedside(Bedside),
    Janus(Janus),
}

// ---------------------------------------------------------------------------------------------
// Robot

pub struct RobotConfig {
    pub fps: u32,
    /// Bits per second of the fixture (for pacing).
    pub bitrate_bps: f64,
    pub pacing: f64,
    pub audio: bool,
    /// Offer the two-way layout: also receive the presenter and the doctors' voices.
    pub two_way: bool,
}

/// What the robot shares with the rest of the generator.
#[derive(Default)]
pub struct RobotStats {
    pub log: SendLog,
    pub newest_seq: AtomicU64,
    pub video_packets: AtomicU64,
    pub video_bytes: AtomicU64,
    pub keyframe_requests: AtomicU64,
    pub connected: AtomicBool,
    pub control_stops: AtomicU64,
    /// When keyframe requests arrived (kernel receive time, ns).
    pub keyframe_request_ns: std::sync::Mutex<Vec<u64>>,
    /// When a keyframe's first packet left the robot (ns).
    pub keyframe_sent_ns: std::sync::Mutex<Vec<u64>>,
    /// RTP datagrams the robot received inside the window (two-way: the presenter, the voices).
    pub rtp_in_window: AtomicU64,
}

struct RobotH {
    stats: Arc<RobotStats>,
    control_log: Arc<ControlLog>,
    vp8_pt: u8,
    last_written: u64,
    keyframe_wanted: bool,
    control: Option<ChannelId>,
    connected: bool,
    window: Arc<Window>,
}

impl Handler for RobotH {
    fn datagram(&mut self, d: &Datagram<'_>) -> bool {
        if rtp_head(d.data).is_some() && self.window.contains(d.rx_ns) {
            self.stats.rtp_in_window.fetch_add(1, Relaxed);
        }
        true
    }

    fn event(&mut self, _rtc: &mut Rtc, ev: Event, rx_ns: u64) {
        match ev {
            Event::Connected => self.connected = true,
            Event::KeyframeRequest(_) => {
                self.keyframe_wanted = true;
                self.stats.keyframe_requests.fetch_add(1, Relaxed);
                if let Ok(mut v) = self.stats.keyframe_request_ns.lock() {
                    v.push(rx_ns);
                }
            }
            Event::ChannelData(d) if Some(d.id) == self.control => {
                if let Ok(f) = ControlFrame::decode(&d.data) {
                    match f.kind {
                        FrameKind::Drive => self.control_log.received(f.seq, rx_ns),
                        FrameKind::Stop => {
                            self.stats.control_stops.fetch_add(1, Relaxed);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn transmit(&mut self, data: &[u8]) {
        if let Some(h) = rtp_head(data) {
            if h.pt == self.vp8_pt {
                let back = (self.last_written as u16).wrapping_sub(h.seq) as u64;
                self.stats
                    .log
                    .sent(self.last_written.wrapping_sub(back), now_ns());
            }
        }
    }
}

/// Connect the robot and publish until `stop`. Marks `stats.connected` once media flows.
#[allow(clippy::too_many_arguments)]
pub async fn robot(
    target: Target,
    ip: IpAddr,
    mut source: FrameSource,
    cfg: RobotConfig,
    stats: Arc<RobotStats>,
    control_log: Arc<ControlLog>,
    window: Arc<Window>,
    mut stop: watch::Receiver<bool>,
    feed: Option<tokio::sync::oneshot::Sender<u64>>,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let mut peer = Peer::new(ip)?;
    match &target {
        Target::Bedside(b) if cfg.two_way => {
            let lines = crate::two_way::robot_lines();
            b.connect_lines(&http, &mut peer, true, &b.token(Role::Robot)?, &lines)
                .await?;
        }
        Target::Bedside(b) => {
            b.connect(&http, &mut peer, true, &b.token(Role::Robot)?)
                .await?;
        }
        Target::Janus(j) => {
            let id = j.publish(&http, &mut peer).await?;
            if let Some(f) = feed {
                let _ = f.send(id);
            }
        }
    }
    let vp8 = peer
        .pt_for(Codec::Vp8)
        .ok_or_else(|| anyhow::anyhow!("VP8 not negotiated"))?;
    let opus = peer.pt_for(Codec::Opus);
    let video_mid = peer
        .video_mid
        .ok_or_else(|| anyhow::anyhow!("no video mid"))?;
    let audio_mid = peer.audio_mid;
    let mut h = RobotH {
        stats: stats.clone(),
        control_log,
        vp8_pt: vp8,
        last_written: 10_000,
        keyframe_wanted: false,
        control: peer.control,
        connected: false,
        window,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !h.connected {
        if Instant::now() > deadline {
            anyhow::bail!("robot did not connect within 20 s");
        }
        if peer.step(&mut h, deadline, &mut stop).await == Woke::Stop {
            return Ok(());
        }
    }
    stats.connected.store(true, Relaxed);

    let frame_gap = Duration::from_secs_f64(1.0 / cfg.fps as f64);
    let pace_bps = cfg.bitrate_bps * cfg.pacing;
    let mut queue: VecDeque<(Instant, Vec<u8>, bool, u32, u16, bool)> = VecDeque::new();
    let mut next_frame = Instant::now();
    let mut next_audio = Instant::now();
    let mut ts: u32 = rand::random();
    let mut ats: u32 = rand::random();
    let mut aseq: u64 = 5_000;
    let mut picture_id: u16 = rand::random::<u16>() & 0x7fff;
    let mut seq = h.last_written + 1;
    let mut last_due = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next_frame {
            if h.keyframe_wanted {
                h.keyframe_wanted = false;
                source.restart_at_keyframe();
            }
            if let Some(frame) = source.next_frame() {
                if frame.keyframe {
                    if let Ok(mut v) = stats.keyframe_sent_ns.lock() {
                        v.push(now_ns());
                    }
                }
                let packets = crate::fixture::packetize_vp8(&frame.data, picture_id);
                let n = packets.len();
                let mut due = now.max(last_due);
                for (i, p) in packets.into_iter().enumerate() {
                    if pace_bps > 0.0 {
                        due += Duration::from_secs_f64((p.len() + 40) as f64 * 8.0 / pace_bps);
                    }
                    queue.push_back((due, p, i + 1 == n, ts, picture_id, i == 0));
                }
                last_due = due;
            }
            ts = ts.wrapping_add(90_000 / cfg.fps);
            picture_id = (picture_id + 1) & 0x7fff;
            next_frame += frame_gap;
            // Fell behind (the generator stalled): do not burst to catch up.
            if next_frame < now {
                next_frame = now + frame_gap;
            }
        }
        while queue.front().is_some_and(|q| pace_bps <= 0.0 || q.0 <= now) {
            let Some((_, payload, marker, fts, pid, first)) = queue.pop_front() else {
                break;
            };
            let len = payload.len();
            stats.log.written(seq, fts, pid, first);
            h.last_written = seq;
            let w = RtpWrite::new(vp8.into(), SeqNo::from(seq), fts, now, payload)
                .marker(marker)
                .nackable(true);
            if let Some(tx) = peer.rtc.direct_api().stream_tx_by_mid(video_mid, None) {
                tx.write_rtp(w);
            }
            stats.newest_seq.store(seq, Relaxed);
            stats.video_packets.fetch_add(1, Relaxed);
            stats.video_bytes.fetch_add(len as u64, Relaxed);
            seq += 1;
        }
        if cfg.audio && now >= next_audio {
            if let (Some(pt), Some(mid)) = (opus, audio_mid) {
                let w = RtpWrite::new(
                    pt.into(),
                    SeqNo::from(aseq),
                    ats,
                    now,
                    OPUS_SILENCE.to_vec(),
                );
                if let Some(tx) = peer.rtc.direct_api().stream_tx_by_mid(mid, None) {
                    tx.write_rtp(w);
                }
            }
            aseq += 1;
            ats = ats.wrapping_add(960);
            next_audio += Duration::from_millis(20);
        }
        let mut until = next_frame;
        if let Some(q) = queue.front() {
            until = until.min(q.0);
        }
        if cfg.audio {
            until = until.min(next_audio);
        }
        if peer.step(&mut h, until, &mut stop).await == Woke::Stop {
            break;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Controller

struct ControllerH {
    log: Arc<ControlLog>,
    control: Option<ChannelId>,
    events: Option<ChannelId>,
    open: usize,
    me: String,
    holder: bool,
    pending: Option<u32>,
    window: Arc<Window>,
    rtp_in_window: u64,
    keyframe_wanted: bool,
}

impl Handler for ControllerH {
    fn datagram(&mut self, d: &Datagram<'_>) -> bool {
        if rtp_head(d.data).is_some() && self.window.contains(d.rx_ns) {
            self.rtp_in_window += 1;
        }
        true
    }

    fn event(&mut self, _rtc: &mut Rtc, ev: Event, _rx_ns: u64) {
        match ev {
            Event::ChannelOpen(..) => self.open += 1,
            Event::KeyframeRequest(_) => self.keyframe_wanted = true,
            Event::ChannelData(d) if Some(d.id) == self.events => {
                let Ok(v) = serde_json::from_slice::<serde_json::Value>(&d.data) else {
                    return;
                };
                match v["type"].as_str() {
                    Some("welcome") => {
                        if let Some(id) = v["you"]["id"].as_str() {
                            self.me = id.to_string();
                        }
                    }
                    Some("lease") => {
                        self.holder = v["holder"].as_str() == Some(self.me.as_str());
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn transmit(&mut self, _data: &[u8]) {
        if let Some(seq) = self.pending.take() {
            self.log.sent(seq, now_ns());
        }
    }
}

/// What the controller saw.
#[derive(Default)]
pub struct ControllerStats {
    pub holding: AtomicBool,
    pub rtp_in_window: AtomicU64,
}

/// Join as the doctor, take the lease, send drive frames at 50 Hz until `stop`. With `camera`
/// (the fixture, its frame rate, how many doctors talk) the doctor is the two-way room's driver:
/// it also publishes that camera and a microphone.
pub async fn controller(
    b: Bedside,
    ip: IpAddr,
    log: Arc<ControlLog>,
    window: Arc<Window>,
    stats: Arc<ControllerStats>,
    camera: Option<(FrameSource, u32, u32)>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let mut peer = Peer::new(ip)?;
    let token = b.token(Role::Doctor)?;
    let session = match &camera {
        Some(_) => {
            let lines = crate::two_way::doctor_lines(0);
            b.connect_lines(&http, &mut peer, false, &token, &lines)
                .await?
        }
        None => b.connect(&http, &mut peer, false, &token).await?,
    };
    let mut media = match camera {
        Some((source, fps, doctors)) => Some((
            crate::two_way::Camera::new(&peer, source, fps)?,
            crate::two_way::Mic::new(&peer, 0, doctors)?,
        )),
        None => None,
    };
    let mut h = ControllerH {
        log,
        control: peer.control,
        events: peer.events_channel,
        open: 0,
        me: session.id,
        holder: false,
        pending: None,
        window,
        rtp_in_window: 0,
        keyframe_wanted: false,
    };
    let (Some(control), Some(events)) = (h.control, h.events) else {
        anyhow::bail!("controller has no channels");
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut asked = false;
    while !h.holder {
        if Instant::now() > deadline {
            anyhow::bail!("controller did not get the lease within 20 s");
        }
        if h.open >= 2 && !asked {
            if let Some(mut ch) = peer.rtc.channel(events) {
                let _ = ch.write(false, br#"{"type":"request_lease"}"#);
            }
            asked = true;
        }
        let until = Instant::now() + Duration::from_millis(50);
        if peer.step(&mut h, until.min(deadline), &mut stop).await == Woke::Stop {
            return Ok(());
        }
    }
    stats.holding.store(true, Relaxed);
    let start = Instant::now();
    let mut next = start;
    let mut seq: u32 = 1;
    loop {
        let now = Instant::now();
        if now >= next {
            let ms = now.duration_since(start).as_millis() as u32;
            let x = ((seq % 200) as i16 - 100) * 100;
            let frame = ControlFrame::drive(seq, ms, x, 0, -x / 2).encode();
            if let Some(mut ch) = peer.rtc.channel(control) {
                if ch.write(true, &frame).unwrap_or(false) {
                    h.pending = Some(seq);
                }
            }
            seq += 1;
            next += Duration::from_millis(20);
            if next < now {
                next = now + Duration::from_millis(20);
            }
        }
        let mut until = next;
        if let Some((cam, mic)) = media.as_mut() {
            cam.tick(&mut peer.rtc, now, std::mem::take(&mut h.keyframe_wanted));
            mic.tick(&mut peer.rtc, now);
            until = until.min(cam.next).min(mic.next);
        }
        if peer.step(&mut h, until, &mut stop).await == Woke::Stop {
            break;
        }
        stats.rtp_in_window.store(h.rtp_in_window, Relaxed);
    }
    stats.rtp_in_window.store(h.rtp_in_window, Relaxed);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Viewers

struct ViewerH {
    track: RxTrack,
    robot: Arc<RobotStats>,
    window: Arc<Window>,
    light: bool,
    video_pt: Option<u8>,
    disconnected: bool,
}

impl Handler for ViewerH {
    fn datagram(&mut self, d: &Datagram<'_>) -> bool {
        let head = rtp_head(d.data);
        let rtp = self
            .track
            .datagram(head, d.rx_ns, &self.robot.log, &self.window);
        !(self.light && rtp && self.track.synced() && self.track.first_keyframe_ns.is_some())
    }

    fn event(&mut self, _rtc: &mut Rtc, ev: Event, rx_ns: u64) {
        match ev {
            Event::RtpPacket(p) if Some(*p.header.payload_type) == self.video_pt => {
                self.track.video_payload(
                    *p.header.ssrc,
                    p.header.sequence_number,
                    &p.payload,
                    rx_ns,
                    &self.robot.log,
                );
            }
            Event::Connected => self.track.connected_ns = Some(now_ns()),
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.disconnected = true
            }
            _ => {}
        }
    }
}

/// One viewer's outcome.
#[derive(Default)]
pub struct ViewerResult {
    pub start_ns: u64,
    pub signalled_ns: Option<u64>,
    pub track: RxTrack,
    pub error: Option<String>,
    pub disconnected: bool,
}

/// Told when a viewer has finished joining (first keyframe, or failure).
pub type Joined = tokio::sync::OwnedSemaphorePermit;

/// Join and receive until `stop`. `permit` is released once the viewer has its first keyframe
/// (or gave up), which paces how many joins run at once.
#[allow(clippy::too_many_arguments)]
pub async fn viewer(
    target: Target,
    feed: u64,
    ip: IpAddr,
    robot: Arc<RobotStats>,
    window: Arc<Window>,
    light: bool,
    http: reqwest::Client,
    permit: Joined,
    joined: Arc<AtomicU64>,
    two_way: bool,
    ice_tcp: bool,
    mut stop: watch::Receiver<bool>,
) -> ViewerResult {
    let mut res = ViewerResult {
        start_ns: now_ns(),
        ..Default::default()
    };
    let mut permit = Some(permit);
    let made = if ice_tcp {
        Peer::new_tcp(ip)
    } else {
        Peer::new(ip)
    };
    let mut peer = match made {
        Ok(p) => p,
        Err(e) => {
            res.error = Some(e.to_string());
            joined.fetch_add(1, Relaxed);
            return res;
        }
    };
    let signalled = match &target {
        Target::Bedside(b) => match b.token(Role::Observer) {
            Ok(token) if two_way => {
                let lines = crate::two_way::observer_lines();
                b.connect_lines(&http, &mut peer, false, &token, &lines)
                    .await
                    .map(|_| ())
            }
            Ok(token) => b.connect(&http, &mut peer, false, &token).await.map(|_| ()),
            Err(e) => Err(e),
        },
        Target::Janus(j) => j.subscribe(&http, &mut peer, feed).await,
    };
    if let Err(e) = signalled {
        res.error = Some(e.to_string());
        joined.fetch_add(1, Relaxed);
        return res;
    }
    res.signalled_ns = Some(now_ns());
    let mut h = ViewerH {
        track: RxTrack::default(),
        robot,
        window,
        light,
        video_pt: peer.pt_for(Codec::Vp8),
        disconnected: false,
    };
    let give_up = Instant::now() + Duration::from_secs(30);
    loop {
        let until = if permit.is_some() {
            give_up
        } else {
            Instant::now() + Duration::from_secs(3600)
        };
        if peer.step(&mut h, until, &mut stop).await == Woke::Stop {
            break;
        }
        if permit.is_some() && (h.track.first_keyframe_ns.is_some() || Instant::now() > give_up) {
            permit = None;
            joined.fetch_add(1, Relaxed);
        }
    }
    if permit.is_some() {
        joined.fetch_add(1, Relaxed);
    }
    res.disconnected = h.disconnected;
    res.track = h.track;
    res
}
