//! One measured run: a fresh server, the robot (and, on Bedside, the controller), N viewers, a
//! measurement window, and the figures that come out of it.
//!
//! Timeline of a run: start the server pinned to its core; connect the robot and start
//! publishing; connect the controller and take the lease; **idle phase** (control latency with
//! no viewers, server RSS baseline); **join phase** (N viewers, a few at a time, each timed from
//! the moment it starts signalling with its token to the first keyframe packet it receives);
//! settle; **window** (server CPU, forwarded packets, latency, loss, control latency under load);
//! stop everything. Every run starts from a fresh process so RSS deltas are not blurred by an
//! earlier run's allocations.
//!
//! Not here: the CLI, netns and the report (see `main.rs`, `netns.rs`, `report.rs`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use serde::Serialize;
use tokio::sync::{watch, Semaphore};

use crate::bedside::{self, metric_sum};
use crate::janus;
use crate::procs::{self, Cpu, Server, UdpCounters};
use crate::roles::{self, ControllerStats, RobotConfig, RobotStats, Target, ViewerResult};
use crate::track::{ControlLog, Window};
use crate::udp::now_ns;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Bedside,
    /// Bedside with a two-way room (see `two_way.rs`).
    BedsideTwoWay,
    /// Bedside with every viewer on ICE-TCP (a network that blocks UDP); the robot on UDP.
    BedsideTcp,
    Janus,
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Bedside => "bedside",
            Kind::BedsideTwoWay => "bedside-2way",
            Kind::BedsideTcp => "bedside-tcp",
            Kind::Janus => "janus",
        }
    }
}

pub struct Settings {
    pub bedside_bin: PathBuf,
    pub janus_setup: PathBuf,
    pub out: PathBuf,
    pub fixture: PathBuf,
    pub fps: u32,
    pub bitrate_bps: f64,
    pub pacing: f64,
    pub audio: bool,
    pub seconds: f64,
    pub idle_seconds: f64,
    pub settle_seconds: f64,
    pub join_concurrency: usize,
    pub light: bool,
    pub probe_joins: usize,
    pub perf: bool,
    pub ip: IpAddr,
    pub server_cpu: usize,
    pub generator_cpu: usize,
    pub udp_port: u16,
    /// Talking doctors besides the driver, in a two-way room.
    pub consultants: u32,
}

#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize)]
pub struct Pcts {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Pcts {
    /// Percentiles of `v` (sorted in place), scaled by `scale`.
    pub fn of<T: Copy + Ord + Into<u64>>(v: &mut [T], scale: f64) -> Pcts {
        if v.is_empty() {
            return Pcts::default();
        }
        v.sort_unstable();
        let at = |p: f64| {
            let i = ((v.len() as f64 - 1.0) * p).round() as usize;
            v[i.min(v.len() - 1)].into() as f64 * scale
        };
        Pcts {
            n: v.len(),
            p50: at(0.50),
            p99: at(0.99),
            max: v[v.len() - 1].into() as f64 * scale,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct RunResult {
    pub server: String,
    pub viewers: usize,
    pub viewers_connected: usize,
    pub viewers_with_video: usize,
    pub join_failures: usize,
    pub join_phase_s: f64,
    pub window_s: f64,
    pub robot_video_pps: f64,
    pub robot_video_kbps: f64,
    pub keyframe_requests: u64,
    /// RTP datagrams received by all receivers (viewers and controller) per second.
    pub forwarded_pps: f64,
    /// The server's own count, where it has one (Bedside's /metrics).
    pub server_reported_pps: Option<f64>,
    /// UDP datagrams per send syscall in the window (Bedside's /metrics; above 1 with GSO).
    #[serde(default)]
    pub datagrams_per_send: Option<f64>,
    pub expected_per_viewer: u64,
    pub loss_mean_pct: f64,
    pub loss_max_pct: f64,
    pub viewers_with_loss: usize,
    pub latency_us: Pcts,
    pub server_cpu_pct: f64,
    pub cpu_us_per_packet: f64,
    pub cpu_us_per_packet_schedstat: f64,
    pub idle_cpu_pct: f64,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub rss_per_viewer_kib: f64,
    pub server_threads: usize,
    /// Joins during the ramp (several at once, sharing the keyframe coalescing window).
    pub join_ms: Pcts,
    /// Single joins after the window, one at a time, with all N viewers still receiving.
    pub join_single_ms: Pcts,
    /// Of the single joins tried, how many never got video (refused, timed out, no keyframe):
    /// a join that failed is reported as failed, never as "0 ms".
    #[serde(default)]
    pub join_single_failed: usize,
    #[serde(default)]
    pub join_single_tried: usize,
    /// Medians of the single joins' phases, ms: signalling (HTTP until the answer), ICE + DTLS
    /// (answer until connected), waiting for the keyframe (connected until its first packet).
    pub join_single_phases_ms: [f64; 3],
    /// A `perf record` ran during the window (its cost is in the CPU figures).
    pub profiled: bool,
    pub control_idle_us: Option<Pcts>,
    pub control_load_us: Option<Pcts>,
    pub control_load_sent: u64,
    pub generator_cpu_pct: f64,
    pub generator_saturated: bool,
    /// Busy time on the server's core not spent by the server (other processes, IRQs), % of the
    /// window: what the server competed with.
    pub foreign_server_core_pct: f64,
    /// Busy time on the generator's core not spent by the generator, % of the window.
    pub foreign_generator_core_pct: f64,
    pub udp_errors: UdpCounters,
    pub resyncs: u64,
    pub error: Option<String>,
}

struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(h) = &self.0 {
            h.abort();
        }
    }
}

/// Run one (server, N) combination. Errors inside the run end up in `error`.
pub async fn run_one(s: &Settings, kind: Kind, n: usize) -> RunResult {
    let mut r = RunResult {
        server: kind.name().into(),
        viewers: n,
        ..Default::default()
    };
    if let Err(e) = run_inner(s, kind, n, &mut r).await {
        r.error = Some(format!("{e:#}"));
    }
    r
}

async fn run_inner(s: &Settings, kind: Kind, n: usize, r: &mut RunResult) -> anyhow::Result<()> {
    let dir = s.out.join("runs").join(format!("{}-{n}", kind.name()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;

    // Server.
    let (mut server, target, poller): (Server, Target, Option<tokio::task::JoinHandle<()>>) =
        match kind {
            Kind::Bedside | Kind::BedsideTwoWay | Kind::BedsideTcp => {
                // Room for the N viewers and the probe joins: the bench measures forwarding,
                // not the cap (which answers 503 past its default of 500 watchers).
                let max_viewers = n + s.probe_joins + 16;
                let st = bedside::start(
                    &s.bedside_bin,
                    &dir,
                    s.ip,
                    s.udp_port,
                    s.server_cpu,
                    max_viewers,
                )
                .await?;
                (st.server, Target::Bedside(st.sig), None)
            }
            Kind::Janus => {
                let range = format!("{}-{}", s.udp_port, s.udp_port as u32 + 4000);
                let st = janus::start(&s.janus_setup, &dir, s.ip, &range, s.server_cpu).await?;
                (st.server, Target::Janus(st.sig), Some(st.poller))
            }
        };
    let _poller = AbortOnDrop(poller);
    let http = reqwest::Client::new();

    // Robot and controller on their own thread (the generator's core is shared with viewers, but
    // the scheduler favours a thread that mostly sleeps, which keeps the robot's pacing honest).
    let (stop_tx, stop_rx) = watch::channel(false);
    let robot_stats = Arc::new(RobotStats::default());
    let control_log = Arc::new(ControlLog::default());
    let window = Arc::new(Window::default());
    let ctrl_stats = Arc::new(ControllerStats::default());
    let (feed_tx, feed_rx) = tokio::sync::oneshot::channel();
    let (source, _) = crate::fixture::load(&s.fixture, s.fps)?;
    let robot_thread = {
        let (target, ip) = (target.clone(), s.ip);
        let cfg = RobotConfig {
            fps: s.fps,
            bitrate_bps: s.bitrate_bps,
            pacing: s.pacing,
            audio: s.audio,
            two_way: kind == Kind::BedsideTwoWay,
        };
        // The driver's camera: the same fixture at half the robot's frame rate.
        let camera = if kind == Kind::BedsideTwoWay {
            Some((
                crate::fixture::load(&s.fixture, s.fps)?.0,
                (s.fps / 2).max(1),
                s.consultants + 1,
            ))
        } else {
            None
        };
        let (rs, cl, w, cs, stop) = (
            robot_stats.clone(),
            control_log.clone(),
            window.clone(),
            ctrl_stats.clone(),
            stop_rx.clone(),
        );
        std::thread::Builder::new()
            .name("robot".into())
            .spawn(move || -> anyhow::Result<()> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async move {
                    let robot = tokio::spawn(roles::robot(
                        target.clone(),
                        ip,
                        source,
                        cfg,
                        rs.clone(),
                        cl.clone(),
                        w.clone(),
                        stop.clone(),
                        Some(feed_tx),
                    ));
                    let mut ctrl = None;
                    if let Target::Bedside(b) = &target {
                        let deadline = Instant::now() + Duration::from_secs(25);
                        while !rs.connected.load(Relaxed) && Instant::now() < deadline {
                            if robot.is_finished() {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        ctrl = Some(tokio::spawn(roles::controller(
                            b.clone(),
                            ip,
                            cl,
                            w,
                            cs,
                            camera,
                            stop,
                        )));
                    }
                    let rr = robot.await.map_err(|e| anyhow!("robot task: {e}"))?;
                    if let Some(c) = ctrl {
                        c.await.map_err(|e| anyhow!("controller task: {e}"))??;
                    }
                    rr
                })
            })?
    };

    let stop_all = |stop_tx: &watch::Sender<bool>| {
        let _ = stop_tx.send(true);
    };
    let ready_deadline = Instant::now() + Duration::from_secs(30);
    let mut feed = 0u64;
    let mut feed_rx = Some(feed_rx);
    loop {
        let robot_ok = robot_stats.connected.load(Relaxed);
        let ctrl_ok = kind == Kind::Janus || ctrl_stats.holding.load(Relaxed);
        if robot_ok && ctrl_ok {
            break;
        }
        if robot_thread.is_finished() || Instant::now() > ready_deadline {
            stop_all(&stop_tx);
            let why = match robot_thread.join() {
                Ok(Err(e)) => format!("{e:#}"),
                Ok(Ok(())) => "robot/controller stopped early".into(),
                Err(_) => "robot thread panicked".into(),
            };
            server.stop();
            return Err(anyhow!(
                "robot {} / controller {}: {why}",
                if robot_ok {
                    "connected"
                } else {
                    "not connected"
                },
                if ctrl_ok {
                    "holds the lease"
                } else {
                    "has no lease"
                }
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The two-way room's consultants join before the viewers, like a consultation that has begun.
    let consultant_stats = Arc::new(crate::two_way::ConsultantStats::default());
    let mut consultants = Vec::new();
    if let (Kind::BedsideTwoWay, Target::Bedside(b)) = (kind, &target) {
        for i in 0..s.consultants {
            consultants.push(AbortOnDrop(Some(tokio::spawn({
                let (b, w, cs, stop) = (
                    b.clone(),
                    window.clone(),
                    consultant_stats.clone(),
                    stop_rx.clone(),
                );
                let (ip, doctors) = (s.ip, s.consultants + 1);
                async move {
                    if let Err(e) =
                        crate::two_way::consultant(b, ip, i + 1, doctors, w, cs, stop).await
                    {
                        eprintln!("consultant: {e:#}");
                    }
                }
            }))));
        }
        let deadline = Instant::now() + Duration::from_secs(25);
        while (consultant_stats.connected.load(Relaxed) as u32) < s.consultants {
            if Instant::now() > deadline || consultant_stats.failed.load(Relaxed) {
                stop_all(&stop_tx);
                server.stop();
                return Err(anyhow!("the consultants did not connect"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    if kind == Kind::Janus {
        if let Some(rx) = feed_rx.take() {
            feed = tokio::time::timeout(Duration::from_secs(5), rx)
                .await
                .context("no feed id from janus")??;
        }
    }

    // Idle phase.
    let idle_t0 = now_ns();
    let idle_cpu0 = server.cpu();
    tokio::time::sleep(Duration::from_secs_f64(s.idle_seconds)).await;
    let idle_cpu1 = server.cpu();
    let idle_t1 = now_ns();
    r.idle_cpu_pct =
        idle_cpu1.since(&idle_cpu0).sched_s / ((idle_t1 - idle_t0) as f64 / 1e9) * 100.0;
    r.rss_before_kib = server.rss_kib();

    // Join phase.
    let join_t0 = Instant::now();
    let sem = Arc::new(Semaphore::new(s.join_concurrency.max(1)));
    let joined = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::with_capacity(n);
    // Bounded whatever the server does: joins stop being started after this.
    let join_deadline =
        Instant::now() + Duration::from_secs(60) + Duration::from_millis(200 * n as u64);
    for _ in 0..n {
        let left = join_deadline.saturating_duration_since(Instant::now());
        let Ok(permit) = tokio::time::timeout(left, sem.clone().acquire_owned()).await else {
            break;
        };
        let permit = permit?;
        handles.push(tokio::spawn(roles::viewer(
            target.clone(),
            feed,
            s.ip,
            robot_stats.clone(),
            window.clone(),
            s.light,
            http.clone(),
            permit,
            joined.clone(),
            kind == Kind::BedsideTwoWay,
            kind == Kind::BedsideTcp,
            stop_rx.clone(),
        )));
    }
    let started = handles.len();
    let join_deadline = join_deadline.min(Instant::now() + Duration::from_secs(40));
    while (joined.load(Relaxed) as usize) < started && Instant::now() < join_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    r.join_phase_s = join_t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs_f64(s.settle_seconds)).await;
    r.rss_after_kib = server.rss_kib();
    r.server_threads = server.threads();

    // Measurement window.
    let metrics0 = match &target {
        Target::Bedside(b) => b.metrics(&http).await.ok(),
        Target::Janus(_) => None,
    };
    let m0_at = Instant::now();
    let udp0 = UdpCounters::read();
    let gen0 = Cpu::this_process();
    let core0 = (
        procs::core_busy_s(s.server_cpu),
        procs::core_busy_s(s.generator_cpu),
    );
    let t0 = now_ns();
    let cpu0 = server.cpu();
    let dur_ns = (s.seconds * 1e9) as u64;
    let mut perf = if s.perf {
        std::process::Command::new("perf")
            .args([
                "record",
                "-q",
                "-F",
                "499",
                "-e",
                "cpu-clock",
                "--call-graph",
                "dwarf,16384",
            ])
            .arg("-p")
            .arg(server.pid.to_string())
            .arg("-o")
            .arg(dir.join("perf.data"))
            .args(["--", "sleep"])
            .arg(format!("{}", s.seconds))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()
    } else {
        None
    };
    r.profiled = perf.is_some();
    window.t1.store(t0 + dur_ns, Relaxed);
    window.t0.store(t0, Relaxed);
    tokio::time::sleep(Duration::from_nanos(dur_ns)).await;
    let cpu1 = server.cpu();
    let t1 = now_ns();
    let core1 = (
        procs::core_busy_s(s.server_cpu),
        procs::core_busy_s(s.generator_cpu),
    );
    let gen1 = Cpu::this_process();
    let udp1 = UdpCounters::read();
    let metrics1 = match &target {
        Target::Bedside(b) => b.metrics(&http).await.ok(),
        Target::Janus(_) => None,
    };
    let m_secs = m0_at.elapsed().as_secs_f64();
    let newest = robot_stats.newest_seq.load(Relaxed);
    if let Some(p) = perf.as_mut() {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(p.try_wait(), Ok(Some(_))) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = p.kill();
    }
    // Let the last packets of the window arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Single joins under load: one at a time, 0.3-1.3 s apart.
    let mut probes = Vec::new();
    for _ in 0..s.probe_joins {
        let sem = Arc::new(Semaphore::new(1));
        let permit = sem.clone().acquire_owned().await?;
        let done = Arc::new(AtomicU64::new(0));
        let h = tokio::spawn(roles::viewer(
            target.clone(),
            feed,
            s.ip,
            robot_stats.clone(),
            Arc::new(Window::default()),
            s.light,
            http.clone(),
            permit,
            done.clone(),
            kind == Kind::BedsideTwoWay,
            kind == Kind::BedsideTcp,
            stop_rx.clone(),
        ));
        let deadline = Instant::now() + Duration::from_secs(10);
        while done.load(Relaxed) == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        probes.push(h);
        // A random gap, so the joins land at random phases of the server's keyframe
        // coalescing window, as real joins do.
        let gap = 300 + rand::random::<u64>() % 1000;
        tokio::time::sleep(Duration::from_millis(gap)).await;
    }
    stop_all(&stop_tx);

    let mut results: Vec<ViewerResult> = Vec::with_capacity(n);
    for h in handles {
        if let Ok(Ok(v)) = tokio::time::timeout(Duration::from_secs(10), h).await {
            results.push(v);
        }
    }
    let mut single: Vec<u64> = Vec::new();
    let mut phases: [Vec<u64>; 3] = Default::default();
    r.join_single_tried = probes.len();
    for h in probes {
        let probe = tokio::time::timeout(Duration::from_secs(10), h).await;
        let Ok(Ok(v)) = probe else {
            r.join_single_failed += 1;
            continue;
        };
        if let Some(e) = &v.error {
            eprintln!("  single join failed: {e}");
        }
        let (Some(k), Some(sig), Some(con)) = (
            v.track.first_keyframe_ns,
            v.signalled_ns,
            v.track.connected_ns,
        ) else {
            r.join_single_failed += 1;
            continue;
        };
        single.push(k.saturating_sub(v.start_ns) / 1000);
        phases[0].push(sig.saturating_sub(v.start_ns) / 1000);
        phases[1].push(con.saturating_sub(sig) / 1000);
        phases[2].push(k.saturating_sub(con) / 1000);
        if std::env::var("BEDSIDE_BENCH_DEBUG").is_ok() {
            let after = |v: &std::sync::Mutex<Vec<u64>>| {
                v.lock()
                    .ok()
                    .and_then(|v| {
                        v.iter()
                            .find(|t| **t >= v.first().map(|_| con).unwrap_or(0))
                            .copied()
                    })
                    .map(|t| (t as i64 - con as i64) / 1000)
            };
            eprintln!(
                        "   single join: signalled +{} us, connected +{} us, PLI at robot {:?} us after connect, keyframe queued {:?} us after connect, first keyframe packet +{} us",
                        (sig - v.start_ns) / 1000,
                        (con - v.start_ns) / 1000,
                        after(&robot_stats.keyframe_request_ns),
                        after(&robot_stats.keyframe_sent_ns),
                        (k - v.start_ns) / 1000
                    );
        }
    }
    r.join_single_ms = Pcts::of(&mut single, 1e-3);
    if std::env::var("BEDSIDE_BENCH_DEBUG").is_ok() {
        if let Ok(v) = robot_stats.keyframe_request_ns.lock() {
            let gaps: Vec<u64> = v.windows(2).map(|w| (w[1] - w[0]) / 1_000_000).collect();
            eprintln!(
                "   keyframe requests at the robot: {}, gaps ms {:?}",
                v.len(),
                gaps
            );
        }
    }
    for (i, p) in phases.iter_mut().enumerate() {
        r.join_single_phases_ms[i] = Pcts::of(p, 1e-3).p50;
    }
    let robot_outcome = tokio::task::spawn_blocking(move || robot_thread.join()).await;
    server.stop();
    if let Ok(Ok(Err(e))) = robot_outcome {
        // Reported, but the window's figures stand if the robot failed only at shutdown.
        eprintln!("  robot/controller: {e:#}");
    }

    // Figures.
    let window_s = (t1 - t0) as f64 / 1e9;
    r.window_s = window_s;
    let server_cpu = cpu1.since(&cpu0);
    r.server_cpu_pct = server_cpu.sched_s / window_s * 100.0;
    let gen = gen1.since(&gen0);
    r.generator_cpu_pct = gen.sched_s / window_s * 100.0;
    r.generator_saturated = r.generator_cpu_pct > 90.0;
    r.foreign_server_core_pct =
        ((core1.0 - core0.0) - server_cpu.sched_s).max(0.0) / window_s * 100.0;
    r.foreign_generator_core_pct = ((core1.1 - core0.1) - gen.sched_s).max(0.0) / window_s * 100.0;
    r.udp_errors = udp1.since(&udp0);
    r.keyframe_requests = robot_stats.keyframe_requests.load(Relaxed);

    let (lo, hi) = robot_stats
        .log
        .seq_range(t0, t0 + dur_ns, newest)
        .ok_or_else(|| anyhow!("the robot sent nothing during the window"))?;
    r.expected_per_viewer = hi - lo;
    r.robot_video_pps = (hi - lo) as f64 / s.seconds;
    r.robot_video_kbps = s.bitrate_bps / 1000.0;

    r.viewers_connected = results
        .iter()
        .filter(|v| v.error.is_none() && v.track.connected_ns.is_some())
        .count();
    r.join_failures = n - results
        .iter()
        .filter(|v| v.track.first_keyframe_ns.is_some())
        .count();
    let mut joins: Vec<u64> = results
        .iter()
        .filter_map(|v| {
            v.track
                .first_keyframe_ns
                .map(|k| k.saturating_sub(v.start_ns) / 1000)
        })
        .collect();
    r.join_ms = Pcts::of(&mut joins, 1e-3);

    // Every RTP datagram the server forwarded to the generator's peers inside the window; in a
    // two-way room the robot and the consultants receive too.
    let mut rtp_total = ctrl_stats.rtp_in_window.load(Relaxed)
        + robot_stats.rtp_in_window.load(Relaxed)
        + consultant_stats.rtp_in_window.load(Relaxed);
    let mut lat: Vec<u32> = Vec::new();
    let mut losses = Vec::new();
    for v in &results {
        rtp_total += v.track.rtp_in_window;
        r.resyncs += v.track.mismatches;
        if v.track.first_keyframe_ns.is_none() {
            continue;
        }
        r.viewers_with_video += 1;
        let got = v.track.received_in(lo, hi);
        let loss = 1.0 - got as f64 / (hi - lo).max(1) as f64;
        losses.push(loss);
        lat.extend(v.track.samples.iter().map(|(_, l)| *l));
    }
    r.latency_us = Pcts::of(&mut lat, 1e-3);
    if !losses.is_empty() {
        r.loss_mean_pct = losses.iter().sum::<f64>() / losses.len() as f64 * 100.0;
        r.loss_max_pct = losses.iter().cloned().fold(0.0, f64::max) * 100.0;
        r.viewers_with_loss = losses.iter().filter(|l| **l > 0.0).count();
    }
    r.forwarded_pps = rtp_total as f64 / window_s;
    if rtp_total > 0 {
        r.cpu_us_per_packet = server_cpu.stat_s * 1e6 / rtp_total as f64;
        r.cpu_us_per_packet_schedstat = server_cpu.sched_s * 1e6 / rtp_total as f64;
    }
    if let (Some(a), Some(b)) = (metrics0, metrics1) {
        let d = metric_sum(&b, "bedside_rtp_packets_out_total")
            - metric_sum(&a, "bedside_rtp_packets_out_total");
        r.server_reported_pps = Some(d / m_secs);
        let sends = metric_sum(&b, "bedside_udp_send_calls_total")
            - metric_sum(&a, "bedside_udp_send_calls_total");
        let datagrams = metric_sum(&b, "bedside_udp_datagrams_out_total")
            - metric_sum(&a, "bedside_udp_datagrams_out_total");
        if sends > 0.0 {
            r.datagrams_per_send = Some(datagrams / sends);
        }
    }
    if n > 0 {
        r.rss_per_viewer_kib = (r.rss_after_kib as f64 - r.rss_before_kib as f64) / n as f64;
    }
    if kind != Kind::Janus {
        let mut idle: Vec<u64> = control_log.between(idle_t0, idle_t1);
        r.control_idle_us = Some(Pcts::of(&mut idle, 1e-3));
        // Every window sample, for looking at a tail's pattern (when in the window, how late).
        if let Ok(samples) = control_log.samples.lock() {
            let mut csv = String::from("sent_s,latency_ms\n");
            for (sent, l) in samples.iter().filter(|(s, _)| *s >= t0 && *s < t0 + dur_ns) {
                csv.push_str(&format!(
                    "{:.4},{:.3}\n",
                    (*sent - t0) as f64 / 1e9,
                    *l as f64 / 1e6
                ));
            }
            let _ = std::fs::write(dir.join("control-latency.csv"), csv);
        }
        let mut load: Vec<u64> = control_log.between(t0, t0 + dur_ns);
        r.control_load_us = Some(Pcts::of(&mut load, 1e-3));
        r.control_load_sent = (s.seconds * 50.0) as u64;
    }
    Ok(())
}
