//! `bedside-bench soak`: a churn soak. Viewers join and leave continuously in several rooms (each
//! with a publishing robot) while a driver drives room 0 at 50 Hz, for a bounded time; then every
//! viewer leaves and the server must return to its baseline.
//!
//! Measured: open file descriptors and sessions before the viewers came and after they all left
//! (must be back at baseline), RSS after the first churn cycle (the baseline: allocators keep
//! capacity they have used once) and at the end, server panics (its log) and whether it stayed
//! up, joins and failed joins, and the driver's control latency (sent -> received at the robot)
//! over the whole run. Viewers leave without a goodbye, as a closed laptop does, so the sessions
//! are reclaimed by the server's own liveness timer.
//!
//! Not here: throughput or per-viewer quality (`run.rs`), or the servers' code.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use bedside_sfu::client::media::FrameSource;
use serde::Serialize;
use tokio::sync::{watch, Semaphore};

use crate::bedside::{self, metric_sum, Bedside};
use crate::procs;
use crate::roles::{self, ControllerStats, RobotConfig, RobotStats, Target};
use crate::run::Pcts;
use crate::track::{ControlLog, Window};
use crate::udp::now_ns;

/// What the soak is asked to do.
pub struct SoakSettings {
    pub bedside_bin: PathBuf,
    pub out: PathBuf,
    pub ip: IpAddr,
    pub udp_port: u16,
    pub seconds: f64,
    pub rooms: usize,
    pub viewers: usize,
    /// A viewer stays between half of this and all of it, then leaves and rejoins.
    pub stay_seconds: f64,
    /// How long the server may take to reclaim the last viewers' sessions.
    pub drain_seconds: f64,
    pub server_cpu: usize,
}

/// The figures, as written to `OUT/soak.json`.
#[derive(Serialize, Default, Debug)]
pub struct SoakResult {
    pub seconds: f64,
    pub rooms: usize,
    pub viewers: usize,
    pub joins: u64,
    pub failed_joins: u64,
    pub fds_baseline: usize,
    pub fds_end: usize,
    pub sessions_baseline: f64,
    pub sessions_peak: f64,
    pub sessions_end: f64,
    pub rss_kib_before_viewers: u64,
    pub rss_kib_after_first_cycle: u64,
    pub rss_kib_peak: u64,
    pub rss_kib_end: u64,
    pub control_frames_sent: u64,
    pub control_frames_received: u64,
    pub control_latency_ms: Pcts,
    pub server_alive: bool,
    pub panics: usize,
    pub drained_after_s: f64,
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

async fn sessions(b: &Bedside, http: &reqwest::Client) -> f64 {
    match b.metrics(http).await {
        Ok(t) => metric_sum(&t, "bedside_sessions"),
        Err(_) => f64::NAN,
    }
}

pub fn soak(s: SoakSettings) -> anyhow::Result<SoakResult> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(run(s))
}

async fn run(s: SoakSettings) -> anyhow::Result<SoakResult> {
    std::fs::create_dir_all(&s.out)?;
    let dir = tempfile_dir(&s.out)?;
    let started = bedside::start(
        &s.bedside_bin,
        &dir,
        s.ip,
        s.udp_port,
        s.server_cpu,
        s.viewers + 16,
    )
    .await?;
    let mut server = started.server;
    let pid = server.pid;
    let http = reqwest::Client::new();
    let rooms: Vec<Bedside> = (0..s.rooms)
        .map(|i| {
            let mut b = started.sig.clone();
            b.room = format!("{}-room{i}", started.sig.room);
            b
        })
        .collect();

    // Robots (and the driver in room 0) on a thread of their own, as in `run.rs`.
    let (stop_tx, stop_rx) = watch::channel(false);
    let control_log = Arc::new(ControlLog::default());
    let window = Arc::new(Window::default());
    let robot_stats: Vec<Arc<RobotStats>> = rooms.iter().map(|_| Arc::default()).collect();
    let ctrl_stats = Arc::new(ControllerStats::default());
    let robots = {
        let (rooms, stats, log, win, ctrl, stop, ip) = (
            rooms.clone(),
            robot_stats.clone(),
            control_log.clone(),
            window.clone(),
            ctrl_stats.clone(),
            stop_rx.clone(),
            s.ip,
        );
        std::thread::Builder::new()
            .name("robots".into())
            .spawn(move || -> anyhow::Result<()> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async move {
                    let mut tasks = Vec::new();
                    for (b, st) in rooms.iter().zip(&stats) {
                        let cfg = RobotConfig {
                            fps: 30,
                            bitrate_bps: 300_000.0,
                            pacing: 2.5,
                            audio: true,
                            two_way: false,
                        };
                        tasks.push(tokio::spawn(roles::robot(
                            Target::Bedside(b.clone()),
                            ip,
                            FrameSource::test_pattern(),
                            cfg,
                            st.clone(),
                            log.clone(),
                            win.clone(),
                            stop.clone(),
                            None,
                        )));
                    }
                    let deadline = Instant::now() + Duration::from_secs(25);
                    while !stats[0].connected.load(Relaxed) && Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    let driver = tokio::spawn(roles::controller(
                        rooms[0].clone(),
                        ip,
                        log,
                        win,
                        ctrl,
                        None,
                        stop,
                    ));
                    for t in tasks {
                        t.await.map_err(|e| anyhow!("robot task: {e}"))??;
                    }
                    driver.await.map_err(|e| anyhow!("driver task: {e}"))?
                })
            })?
    };
    // Control latency over the whole run.
    window.t0.store(now_ns(), Relaxed);
    window.t1.store(u64::MAX, Relaxed);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ctrl_stats.holding.load(Relaxed) {
        if Instant::now() > deadline || robots.is_finished() {
            bail!("the driver did not get the lease; see {}", dir.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut r = SoakResult {
        seconds: s.seconds,
        rooms: s.rooms,
        viewers: s.viewers,
        fds_baseline: fds(pid),
        sessions_baseline: sessions(&rooms[0], &http).await,
        rss_kib_before_viewers: procs::rss_kib(pid),
        ..Default::default()
    };
    println!(
        "baseline: {} fds, {} sessions, RSS {} KiB",
        r.fds_baseline, r.sessions_baseline, r.rss_kib_before_viewers
    );

    // The churn: each viewer slot joins, stays, vanishes, joins again, until the end.
    let end = Instant::now() + Duration::from_secs_f64(s.seconds);
    let joins = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let joining = Arc::new(Semaphore::new(8));
    let mut slots = Vec::new();
    for v in 0..s.viewers {
        let b = rooms[v % rooms.len()].clone();
        let (joins, failed, joining, http, ip) = (
            joins.clone(),
            failed.clone(),
            joining.clone(),
            http.clone(),
            s.ip,
        );
        let stay = s.stay_seconds;
        slots.push(tokio::spawn(async move {
            // Spread the first joins over the first cycle.
            let offset = stay * (v as f64 / 300.0).fract();
            tokio::time::sleep(Duration::from_secs_f64(offset)).await;
            let mut rounds = 0u64;
            while Instant::now() < end {
                let (stop_tx, stop_rx) = watch::channel(false);
                let permit = joining.clone().acquire_owned().await.expect("semaphore");
                let joined = Arc::new(AtomicU64::new(0));
                let robot = Arc::new(RobotStats::default());
                let task = tokio::spawn(roles::viewer(
                    Target::Bedside(b.clone()),
                    0,
                    ip,
                    robot,
                    Arc::new(Window::default()),
                    true,
                    http.clone(),
                    permit,
                    joined,
                    false, // one-way viewers
                    false, // over UDP
                    stop_rx,
                ));
                rounds += 1;
                let jitter = ((v as u64 * 7919 + rounds * 104_729) % 1000) as f64 / 1000.0;
                let here = stay * (0.5 + 0.5 * jitter);
                tokio::time::sleep(Duration::from_secs_f64(here)).await;
                let _ = stop_tx.send(true);
                match task.await {
                    Ok(res) if res.error.is_none() && res.track.first_keyframe_ns.is_some() => {
                        joins.fetch_add(1, Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }

    // Samples every 5 s; the RSS baseline after the first full cycle.
    let t0 = Instant::now();
    let first_cycle = Duration::from_secs_f64(s.stay_seconds * 2.0);
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let rss = procs::rss_kib(pid);
        let n = sessions(&rooms[0], &http).await;
        r.rss_kib_peak = r.rss_kib_peak.max(rss);
        if n.is_finite() {
            r.sessions_peak = r.sessions_peak.max(n);
        }
        if r.rss_kib_after_first_cycle == 0 && t0.elapsed() >= first_cycle {
            r.rss_kib_after_first_cycle = rss;
        }
        println!(
            "{:>5.0} s: {n} sessions, {} fds, RSS {rss} KiB, {} joins, {} failed",
            t0.elapsed().as_secs_f64(),
            fds(pid),
            joins.load(Relaxed),
            failed.load(Relaxed)
        );
    }
    for s in slots {
        let _ = s.await;
    }
    r.joins = joins.load(Relaxed);
    r.failed_joins = failed.load(Relaxed);

    // Every viewer is gone: wait for the server to reclaim their sessions.
    let left = Instant::now();
    loop {
        let n = sessions(&rooms[0], &http).await;
        let settled = n <= r.sessions_baseline && fds(pid) <= r.fds_baseline;
        if settled || left.elapsed() > Duration::from_secs_f64(s.drain_seconds) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    r.drained_after_s = left.elapsed().as_secs_f64();
    r.sessions_end = sessions(&rooms[0], &http).await;
    r.fds_end = fds(pid);
    r.rss_kib_end = procs::rss_kib(pid);
    r.server_alive = server.alive();
    r.control_frames_sent = control_log.sent_count.load(Relaxed);
    r.control_frames_received = control_log.received.load(Relaxed);
    let mut lat = control_log.between(0, u64::MAX);
    r.control_latency_ms = Pcts::of(&mut lat, 1e-6);
    let _ = stop_tx.send(true);
    let robots_ok = robots
        .join()
        .map_err(|_| anyhow!("robot thread panicked"))?;
    server.stop();
    let log = std::fs::read_to_string(dir.join("bedside.log")).unwrap_or_default();
    r.panics = log.matches("panicked").count();
    std::fs::write(s.out.join("soak.json"), serde_json::to_string_pretty(&r)?)?;
    if let Err(e) = robots_ok {
        println!("robots/driver ended with: {e}");
    }
    Ok(r)
}

/// A fresh directory under `out` for the server's data and log.
fn tempfile_dir(out: &Path) -> anyhow::Result<PathBuf> {
    let d = out.join(format!("soak-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
