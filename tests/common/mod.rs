//! Shared harness for the cross-crate tests: a real SFU on loopback, real str0m peers.
//!
//! [`TestSfu`] starts the media plane in-process with a real UDP socket and serves its HTTP
//! routes on an ephemeral port; tokens are minted with a fresh key pair, exactly as the API
//! would. [`spawn_robot`] publishes the bundled VP8 test pattern plus Opus silence at real-time
//! pace and answers keyframe requests; [`spawn_viewer`] records every packet it receives.
#![allow(dead_code)]

pub mod agent;
pub mod cluster;
pub mod netns;
pub mod one_process;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bedside_proto::{Claims, KeyPair, Role};
use bedside_sfu::client::media::{packetize, FrameSource, OPUS_SILENCE};
use bedside_sfu::client::{ClientEvent, Endpoint, TransportKind, WebRtcClient};
use bedside_sfu::keyframe::{is_keyframe_start, VideoCodec};
use bedside_sfu::{Metrics, Sfu, SfuConfig};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind};

pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

pub struct TestSfu {
    pub sfu: Sfu,
    pub base: String,
    pub keys: KeyPair,
    pub http: SocketAddr,
}

impl TestSfu {
    /// Loopback, one worker, ICE-TCP on a free port as well as UDP.
    pub async fn start() -> TestSfu {
        Self::start_with(SfuConfig {
            tcp_port: Some(0),
            ..SfuConfig::default()
        })
        .await
    }

    pub async fn start_with(config: SfuConfig) -> TestSfu {
        Self::start_at(config, LOCALHOST).await
    }

    /// [`start_with`](Self::start_with), its signalling on `http_ip` (for peers in another
    /// network namespace).
    pub async fn start_at(config: SfuConfig, http_ip: IpAddr) -> TestSfu {
        let keys = KeyPair::generate().expect("key pair");
        let sfu = Sfu::start(config, keys.verifier(), Metrics::new(), None)
            .await
            .expect("sfu starts");
        let listener = tokio::net::TcpListener::bind((http_ip, 0))
            .await
            .expect("bind http");
        let http = listener.local_addr().expect("addr");
        let app = bedside_sfu::signalling::router(sfu.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestSfu {
            sfu,
            base: format!("http://{http}"),
            keys,
            http,
        }
    }

    pub fn token(&self, room: &str, role: Role, sub: &str) -> String {
        let mut c = Claims::new(sub, room, role, 600);
        c.can_control = role == Role::Doctor;
        self.keys.signer().sign(&c).expect("sign")
    }

    pub fn sign(&self, claims: &Claims) -> String {
        self.keys.signer().sign(claims).expect("sign")
    }

    pub async fn connect(&self, endpoint: Endpoint, room: &str, token: &str) -> WebRtcClient {
        let mut c = WebRtcClient::connect(&self.base, endpoint, room, token, LOCALHOST)
            .await
            .expect("signalling succeeds");
        c.wait_ready(Duration::from_secs(5))
            .await
            .expect("connects");
        c
    }

    /// Like [`connect`](Self::connect), from `local_ip`, over UDP or ICE-TCP; the error if it
    /// does not connect within `within`.
    pub async fn connect_via(
        &self,
        endpoint: Endpoint,
        room: &str,
        token: &str,
        local_ip: IpAddr,
        kind: TransportKind,
        within: Duration,
    ) -> Result<WebRtcClient, String> {
        let dir = match endpoint {
            Endpoint::Whip => Direction::SendOnly,
            Endpoint::Whep => Direction::RecvOnly,
        };
        let lines = [(MediaKind::Video, dir), (MediaKind::Audio, dir)];
        let mut c =
            WebRtcClient::connect_via(&self.base, endpoint, room, token, local_ip, &lines, kind)
                .await
                .map_err(|e| format!("signalling: {e}"))?;
        c.wait_ready(within)
            .await
            .map_err(|e| format!("connecting: {e}"))?;
        Ok(c)
    }

    /// A robot with subject `sub` publishing in `room` (see [`spawn_robot`]).
    pub async fn start_robot(&self, room: &str, sub: &str, first_seq: u64) -> RobotHandle {
        let token = self.token(room, Role::Robot, sub);
        spawn_robot(self.connect(Endpoint::Whip, room, &token).await, first_seq)
    }

    /// A counter's value, 0 while the node has not touched it (a labelled counter appears on
    /// its first increment). Only for comparisons a missing counter cannot pass (`>= 18.0`,
    /// `> 0.0`); "present and zero" is [`sample`](Self::sample)` == Some(0.0)`.
    pub fn metric(&self, name_and_labels: &str) -> f64 {
        metric_value(&self.sfu.metrics().render(), name_and_labels)
    }

    /// One sample's value, `None` if the node does not write it.
    pub fn sample(&self, name_and_labels: &str) -> Option<f64> {
        metric_sample(&self.sfu.metrics().render(), name_and_labels)
    }
}

/// Value of one sample in Prometheus text (labels in any order), or 0 if absent: for counters
/// only, compared with a bound a missing one cannot pass (see [`TestSfu::metric`]).
pub fn metric_value(text: &str, name_and_labels: &str) -> f64 {
    metric_sample(text, name_and_labels).unwrap_or(0.0)
}

/// Value of one sample in Prometheus text (labels in any order), `None` if absent.
pub fn metric_sample(text: &str, name_and_labels: &str) -> Option<f64> {
    bedside_sfu::metrics_text::sample(text, name_and_labels)
}

/// The sum of a metric over all its labels (0 if it has none yet).
pub fn metric_sum(text: &str, name: &str) -> f64 {
    bedside_sfu::metrics_text::sum(text, name)
}

/// What a robot did, for assertions.
#[derive(Default)]
pub struct RobotLog {
    pub sent: AtomicU64,
    /// Every video packet sent: when, and whether it starts a keyframe.
    pub video_sent: Mutex<Vec<(Instant, bool)>>,
    pub keyframe_requests: Mutex<Vec<Instant>>,
    pub control: Mutex<Vec<(Instant, Vec<u8>)>>,
    pub events: Mutex<Vec<String>>,
}

pub struct RobotHandle {
    pub log: Arc<RobotLog>,
    stop: Arc<AtomicBool>,
    vanish: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Result<(), String>>,
    pub session_id: String,
}

impl RobotHandle {
    /// Stop publishing and leave politely (DELETE). Fails the test if the robot's task
    /// panicked or its connection failed on the way.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        expect_clean("robot", self.task.await);
    }

    /// Stop publishing and disappear without a goodbye (Wi-Fi roam, crash).
    pub async fn vanish(self) {
        self.vanish.store(true, Ordering::SeqCst);
        self.stop.store(true, Ordering::SeqCst);
        expect_clean("robot", self.task.await);
    }

    /// Stop and return how the robot's task ended, for tests in which the server ends it.
    pub async fn finish(self) -> Result<(), String> {
        self.stop.store(true, Ordering::SeqCst);
        flatten(self.task.await)
    }
}

fn flatten(r: Result<Result<(), String>, tokio::task::JoinError>) -> Result<(), String> {
    match r {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(format!("task cancelled: {e}")),
    }
}

/// A helper task's panic fails the test with the panic; its error fails it with the error.
fn expect_clean(what: &str, r: Result<Result<(), String>, tokio::task::JoinError>) {
    if let Err(e) = flatten(r) {
        panic!("{what} task failed: {e}");
    }
}

/// Publish the VP8 test pattern (30 fps) and Opus silence (50 pps) until stopped, restarting
/// the pattern at its keyframe when the SFU asks for one (what an encoder does).
/// `first_seq` lets a reconnecting robot start its sequence numbers elsewhere.
pub fn spawn_robot(client: WebRtcClient, first_seq: u64) -> RobotHandle {
    spawn_robot_with(client, first_seq, false)
}

/// [`spawn_robot`]; with `keep_gop` the robot ignores keyframe requests and sends a keyframe
/// only every 30 frames (1 s), so a viewer joining mid-GOP depends on the SFU holding its
/// video back until the next keyframe.
pub fn spawn_robot_with(mut client: WebRtcClient, first_seq: u64, keep_gop: bool) -> RobotHandle {
    let log = Arc::new(RobotLog::default());
    let stop = Arc::new(AtomicBool::new(false));
    let vanish = Arc::new(AtomicBool::new(false));
    let session_id = client.session_id.clone();
    let (l, s, v) = (log.clone(), stop.clone(), vanish.clone());
    let task = tokio::spawn(async move {
        let vp8 = client.pt_for(Codec::Vp8).expect("vp8 negotiated").pt();
        let opus = client.pt_for(Codec::Opus).expect("opus negotiated").pt();
        let mut source = FrameSource::test_pattern();
        let (mut vseq, mut aseq) = (first_seq, first_seq);
        let (mut vts, mut ats) = (first_seq as u32 * 7, first_seq as u32 * 5);
        let start = Instant::now();
        let mut next_video = start;
        let mut next_audio = start;
        while !s.load(Ordering::SeqCst) {
            let now = Instant::now();
            if now >= next_video {
                let frame = source.next_frame().expect("frames").clone();
                let packets = packetize(source.codec, &frame);
                let n = packets.len();
                for (i, p) in packets.into_iter().enumerate() {
                    let key = is_keyframe_start(VideoCodec::Vp8, &p);
                    l.video_sent.lock().unwrap().push((Instant::now(), key));
                    client.send_packet(true, vp8, vseq, vts, i + 1 == n, p);
                    vseq += 1;
                    l.sent.fetch_add(1, Ordering::SeqCst);
                }
                vts = vts.wrapping_add(3000);
                next_video += Duration::from_millis(33);
            }
            if now >= next_audio {
                client.send_packet(false, opus, aseq, ats, false, OPUS_SILENCE.to_vec());
                aseq += 1;
                ats = ats.wrapping_add(960);
                l.sent.fetch_add(1, Ordering::SeqCst);
                next_audio += Duration::from_millis(20);
            }
            let until = next_video.min(next_audio);
            // An error is the connection failing, not a timeout: it ends the robot and the
            // test hears of it from `stop`.
            while let Some(ev) = client
                .next_event(until)
                .await
                .map_err(|e| format!("robot connection: {e}"))?
            {
                match ev {
                    ClientEvent::KeyframeRequest => {
                        l.keyframe_requests.lock().unwrap().push(Instant::now());
                        if !keep_gop {
                            source.restart_at_keyframe();
                        }
                    }
                    ClientEvent::Control(b) => l.control.lock().unwrap().push((Instant::now(), b)),
                    ClientEvent::Event(e) => l.events.lock().unwrap().push(e),
                    _ => {}
                }
            }
        }
        if v.load(Ordering::SeqCst) {
            client.vanish();
        } else {
            client
                .close()
                .await
                .map_err(|e| format!("robot DELETE: {e}"))?;
        }
        Ok(())
    });
    RobotHandle {
        log,
        stop,
        vanish,
        task,
        session_id,
    }
}

/// One received RTP packet.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub video: bool,
    pub ssrc: u32,
    pub seq: u64,
    pub keyframe_start: bool,
}

#[derive(Default)]
pub struct ViewerLog {
    pub packets: Mutex<Vec<Received>>,
    pub events: Mutex<Vec<String>>,
    pub control: Mutex<Vec<Vec<u8>>>,
    /// Messages a data channel refused to take (buffer full or channel closed).
    pub unwritten: AtomicU64,
    /// ICE restarts done.
    pub restarted: AtomicU64,
    /// The server's ICE credentials as the viewer first connected.
    pub first_server_ice: Mutex<Option<bedside_sfu::ice_restart::IceCredentials>>,
}

pub struct ViewerHandle {
    pub log: Arc<ViewerLog>,
    pub joined_at: Instant,
    pub session_id: String,
    stop: Arc<AtomicBool>,
    vanish: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Result<(), String>>,
    outbox: tokio::sync::mpsc::UnboundedSender<Outgoing>,
}

/// What a test asks a running viewer to do.
pub enum Outgoing {
    Control(Vec<u8>),
    Event(String),
    /// Move to a new local port and restart ICE by PATCH (a network change).
    RestartIce,
}

impl ViewerHandle {
    /// Leave politely. Fails the test if the viewer's task panicked or its connection failed.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        expect_clean("viewer", self.task.await);
    }

    /// Disappear without a goodbye: no DELETE, no DTLS close, the socket just goes quiet.
    pub async fn vanish(self) {
        self.vanish.store(true, Ordering::SeqCst);
        self.stop.store(true, Ordering::SeqCst);
        expect_clean("viewer", self.task.await);
    }

    /// Stop and return how the viewer's task ended, for tests in which the server ends it.
    pub async fn finish(self) -> Result<(), String> {
        self.stop.store(true, Ordering::SeqCst);
        flatten(self.task.await)
    }

    /// Wait until an `events` message satisfies `pred`; returns it.
    pub async fn wait_event(
        &self,
        within: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let found = self
                .events()
                .iter()
                .filter_map(|e| serde_json::from_str::<serde_json::Value>(e).ok())
                .find(|v| pred(v));
            if found.is_some() {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    /// Send a control frame from this viewer. Panics if the viewer's task has ended: a test
    /// must not believe it sent something that went nowhere.
    pub fn send_control(&self, frame: Vec<u8>) {
        self.outbox
            .send(Outgoing::Control(frame))
            .expect("the viewer is running");
    }

    /// Move to a new local port and restart ICE (see [`Outgoing::RestartIce`]).
    pub fn restart_ice(&self) {
        self.outbox
            .send(Outgoing::RestartIce)
            .expect("the viewer is running");
    }

    /// Send an `events` message from this viewer (see [`send_control`](Self::send_control)).
    pub fn send_event(&self, json: &str) {
        self.outbox
            .send(Outgoing::Event(json.to_string()))
            .expect("the viewer is running");
    }

    pub fn video(&self) -> Vec<Received> {
        self.log
            .packets
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.video)
            .cloned()
            .collect()
    }

    pub fn count_between(&self, from: Instant, to: Instant) -> usize {
        self.log
            .packets
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.at >= from && p.at < to)
            .count()
    }

    pub fn events(&self) -> Vec<String> {
        self.log.events.lock().unwrap().clone()
    }

    /// Send a control frame if the viewer's task still runs; whether it did. For tests in which
    /// the server may already have ended the session.
    pub fn try_send_control(&self, frame: Vec<u8>) -> bool {
        self.outbox.send(Outgoing::Control(frame)).is_ok()
    }

    /// Something that sends control frames from this viewer, for a task that drives while the
    /// test does something else.
    pub fn control_sender(&self) -> ControlSender {
        ControlSender(self.outbox.clone())
    }
}

/// Sends control frames from a viewer (see [`ViewerHandle::control_sender`]).
pub struct ControlSender(tokio::sync::mpsc::UnboundedSender<Outgoing>);

impl ControlSender {
    /// Whether the viewer still runs to take it.
    pub fn send_control(&self, frame: Vec<u8>) -> bool {
        self.0.send(Outgoing::Control(frame)).is_ok()
    }
}

/// Connect a viewer (WHEP) and record what it receives until stopped.
pub async fn spawn_viewer(sfu: &TestSfu, room: &str, token: &str) -> ViewerHandle {
    let joined_at = Instant::now();
    let client = sfu.connect(Endpoint::Whep, room, token).await;
    spawn_viewer_client(client, joined_at)
}

pub fn spawn_viewer_client(mut client: WebRtcClient, joined_at: Instant) -> ViewerHandle {
    let log = Arc::new(ViewerLog::default());
    let stop = Arc::new(AtomicBool::new(false));
    let vanish = Arc::new(AtomicBool::new(false));
    let (outbox, mut inbox) = tokio::sync::mpsc::unbounded_channel();
    let session_id = client.session_id.clone();
    *log.first_server_ice.lock().unwrap() = client.server_ice();
    let (l, s, v) = (log.clone(), stop.clone(), vanish.clone());
    let task = tokio::spawn(async move {
        let vp8 = client.pt_for(Codec::Vp8).map(|x| x.pt());
        while !s.load(Ordering::SeqCst) {
            while let Ok(out) = inbox.try_recv() {
                let written = match out {
                    Outgoing::Control(f) => client.send_control(&f),
                    Outgoing::Event(e) => client.send_event(&e),
                    Outgoing::RestartIce => {
                        client
                            .restart_ice(LOCALHOST)
                            .await
                            .map_err(|e| format!("ICE restart: {e}"))?;
                        l.restarted.fetch_add(1, Ordering::SeqCst);
                        true
                    }
                };
                // The unreliable channel may refuse when its buffer is full (counted by the
                // tests that flood it); the reliable one must take everything.
                l.unwritten.fetch_add(u64::from(!written), Ordering::SeqCst);
            }
            let deadline = Instant::now() + Duration::from_millis(10);
            while let Some(ev) = client
                .next_event(deadline)
                .await
                .map_err(|e| format!("viewer connection: {e}"))?
            {
                match ev {
                    ClientEvent::Rtp(p) => {
                        let video = Some(p.header.payload_type) == vp8;
                        l.packets.lock().unwrap().push(Received {
                            at: Instant::now(),
                            video,
                            ssrc: *p.header.ssrc,
                            seq: *p.seq_no,
                            keyframe_start: video && is_keyframe_start(VideoCodec::Vp8, &p.payload),
                        });
                    }
                    ClientEvent::Event(e) => l.events.lock().unwrap().push(e),
                    ClientEvent::Control(c) => l.control.lock().unwrap().push(c),
                    _ => {}
                }
            }
        }
        if v.load(Ordering::SeqCst) {
            client.vanish();
        } else {
            client
                .close()
                .await
                .map_err(|e| format!("viewer DELETE: {e}"))?;
        }
        Ok(())
    });
    ViewerHandle {
        log,
        joined_at,
        session_id,
        stop,
        vanish,
        task,
        outbox,
    }
}

/// A fresh room id, so tests sharing one SFU never meet.
pub fn room() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// [`spawn_robot`] for a client that still has to finish connecting.
pub async fn spawn_robot_ready(mut client: WebRtcClient) -> RobotHandle {
    client
        .wait_ready(Duration::from_secs(5))
        .await
        .expect("robot connects");
    spawn_robot(client, 1)
}

/// [`spawn_viewer_client`] for a client that still has to finish connecting.
pub async fn spawn_viewer_client_ready(mut client: WebRtcClient) -> ViewerHandle {
    let joined = Instant::now();
    client
        .wait_ready(Duration::from_secs(5))
        .await
        .expect("viewer connects");
    spawn_viewer_client(client, joined)
}

/// Poll `cond` every 10 ms until it holds or `within` passes; whether it held. Tests wait for
/// what they expect instead of sleeping a fixed time (a busy 2-core machine is slow, and a
/// fixed sleep is either flaky or wasteful).
pub async fn wait_until(within: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every control frame the robot received, decoded, with when.
pub fn robot_frames(robot: &RobotHandle) -> Vec<(Instant, bedside_proto::ControlFrame)> {
    robot
        .log
        .control
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(t, b)| bedside_proto::ControlFrame::decode(b).ok().map(|f| (*t, f)))
        .collect()
}

/// Send `n` drive frames marked with `marker` (as `linear_x`) at 50 Hz.
pub async fn drive(v: &ViewerHandle, marker: i16, first_seq: u32, n: u32) {
    for seq in first_seq..first_seq + n {
        v.send_control(
            bedside_proto::ControlFrame::drive(seq, seq * 20, marker, 0, 0)
                .encode()
                .to_vec(),
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Ask for the lease and wait until the room says this viewer holds it; the granted epoch.
pub async fn take_lease(v: &ViewerHandle) -> u64 {
    v.send_event(r#"{"type":"request_lease"}"#);
    let me = v.session_id.clone();
    let ev = v
        .wait_event(Duration::from_secs(5), |e| {
            e["type"] == "lease" && e["holder"] == me.as_str()
        })
        .await
        .unwrap_or_else(|| panic!("lease granted to {me}: {:?}", v.events()));
    ev["epoch"].as_u64().expect("epoch")
}
