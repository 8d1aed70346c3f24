//! `bedside-bench`: the load generator and side-by-side benchmark of issue 6.
//!
//! A synthetic robot publishes a real 720p VP8 stream, a controller drives at 50 Hz, N viewers
//! subscribe; the same robot stream and viewers then run against Janus VideoRoom. The servers
//! run as their own processes pinned to one core (`taskset -c 0`), the generator pins itself to
//! the other. Results go to `--out` as JSON, markdown and a PNG plot. See `docs/benchmarks.md`
//! for how to read them and the latest figures.
//!
//! ```text
//! cargo build --release --bin bedside && cargo build --release -p bedside-bench --bin bedside-bench
//! target/release/bedside-bench run --viewers 1,10,50,100,250,500 --seconds 10 --bitrate 2500k --janus
//! ```
//!
//! Not here: the measuring itself (see `run.rs`) or the servers' code.

mod bedside;
mod fixture;
mod floor;
mod janus;
mod netns;
mod peer;
mod procs;
mod report;
mod roles;
mod run;
mod soak;
mod track;
mod two_way;
mod udp;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::fixture::FixtureSpec;
use crate::run::{Kind, Settings};

#[derive(Parser)]
#[command(
    name = "bedside-bench",
    about = "Bedside SFU benchmark (and Janus VideoRoom side by side)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the sweep: for each server and each viewer count, a fresh server and a measured window.
    Run(RunArgs),
    /// Only make the video fixture (ffmpeg) into OUT/fixtures.
    Fixture(FixtureArgs),
    /// The kernel's floor: sender CPU per datagram for an SFU-shaped UDP fan-out, no WebRTC.
    UdpFloor {
        /// Receiving sockets (viewers).
        #[arg(long, value_delimiter = ',', default_value = "100,250,500")]
        sockets: Vec<usize>,
        /// Fan-outs per second (the robot's packet rate).
        #[arg(long, default_value_t = 300)]
        rate: u32,
        /// Datagram size (a full SRTP video packet is about 1150 bytes).
        #[arg(long, default_value_t = 1150)]
        size: usize,
        /// Datagrams per syscall: 1 = sendto, more = sendmmsg.
        #[arg(long, value_delimiter = ',', default_value = "1,32")]
        batch: Vec<usize>,
        /// Also send with GSO, this many datagrams per destination per `sendmsg` (0 = skip).
        #[arg(long, value_delimiter = ',', default_value = "0")]
        gso: Vec<usize>,
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        #[arg(long, default_value_os_t = default_out())]
        out: PathBuf,
    },
    /// Churn soak: viewers join and leave continuously in several rooms while a driver drives;
    /// then fds, sessions and RSS against their baselines (see `soak.rs`, docs/reliability.md).
    Soak {
        #[arg(long, default_value_t = 600.0)]
        seconds: f64,
        #[arg(long, default_value_t = 4)]
        rooms: usize,
        #[arg(long, default_value_t = 300)]
        viewers: usize,
        /// A viewer stays between half of this and all of it before it leaves and rejoins.
        #[arg(long, default_value_t = 20.0)]
        stay_seconds: f64,
        /// How long the server may take to reclaim the last sessions after everyone left.
        #[arg(long, default_value_t = 60.0)]
        drain_seconds: f64,
        #[arg(long, default_value_os_t = default_bedside())]
        bedside_bin: PathBuf,
        #[arg(long, default_value_t = 0)]
        server_cpu: usize,
        #[arg(long, default_value_t = 41000)]
        udp_port: u16,
        #[arg(long, default_value_os_t = default_out())]
        out: PathBuf,
    },
    /// Re-render results.md and results.png from OUT/results.json.
    Report {
        #[arg(long, default_value_os_t = default_out())]
        out: PathBuf,
    },
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default()
}

fn default_out() -> PathBuf {
    root().join("bench/out")
}

fn default_bedside() -> PathBuf {
    root().join("target/release/bedside")
}

fn default_setup() -> PathBuf {
    root().join("bench/janus/setup.sh")
}

#[derive(Args, Clone)]
struct FixtureArgs {
    /// Video bitrate: 2500k, 2.5M or bits per second.
    #[arg(long, default_value = "2500k", value_parser = parse_bitrate)]
    bitrate: u32,
    #[arg(long, default_value_t = 30)]
    fps: u32,
    #[arg(long, default_value_t = 1280)]
    width: u32,
    #[arg(long, default_value_t = 720)]
    height: u32,
    /// Keyframe interval in frames.
    #[arg(long, default_value_t = 60)]
    gop: u32,
    /// Fixture length (it loops).
    #[arg(long, default_value_t = 10)]
    fixture_seconds: u32,
    #[arg(long, default_value_os_t = default_out())]
    out: PathBuf,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum NetnsMode {
    /// Use a namespace of our own if the machine allows it, else the host's addresses.
    Auto,
    On,
    Off,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ViewerMode {
    /// Every viewer decrypts and processes every packet (as a browser does).
    Full,
    /// After sync and the first keyframe, SRTP media is matched from its clear header only.
    Light,
}

#[derive(Args, Clone)]
struct RunArgs {
    /// Viewer counts to sweep.
    #[arg(long, value_delimiter = ',', default_value = "1,10,50,100")]
    viewers: Vec<usize>,
    /// Measurement window per run.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    #[command(flatten)]
    fixture: FixtureArgs,
    /// Pace each frame's packets at this multiple of the bitrate (0: one burst per frame).
    #[arg(long, default_value_t = 2.5)]
    pacing: f64,
    /// Also publish Opus (silence, 50 packets/s).
    #[arg(long)]
    audio: bool,
    /// Run the same sweep against Janus VideoRoom.
    #[arg(long)]
    janus: bool,
    /// Skip Bedside (Janus only).
    #[arg(long)]
    no_bedside: bool,
    /// Also run Bedside with a two-way room at each point (`bedside-2way`): the robot receives
    /// the driver's camera and the doctors' voices, the driver publishes a camera and a
    /// microphone, `--consultants` more doctors talk, the observers hear them (audio slots).
    #[arg(long)]
    two_way: bool,
    /// Also run Bedside with every viewer on ICE-TCP at each point (`bedside-tcp`): the
    /// viewers of a hospital network that blocks UDP, beside the UDP run in the same sitting.
    #[arg(long)]
    ice_tcp: bool,
    /// Consultants (talking doctors besides the driver) in the two-way room.
    #[arg(long, default_value_t = 2)]
    consultants: u32,
    /// Packet loss to add with tc netem (e.g. 1%).
    #[arg(long)]
    loss: Option<String>,
    /// Delay to add with tc netem (e.g. 20ms).
    #[arg(long)]
    delay: Option<String>,
    #[arg(long, value_enum, default_value_t = NetnsMode::Auto)]
    netns: NetnsMode,
    /// Steer the namespace's loopback receive processing to the generator's core (RPS). On
    /// loopback the receivers' half of the UDP stack otherwise runs on the sending server's
    /// core and is billed to it; on a real network it runs on the viewers' machines.
    #[arg(long)]
    rps: bool,
    #[arg(long, value_enum, default_value_t = ViewerMode::Full)]
    viewer_mode: ViewerMode,
    /// Viewers joining at the same time.
    #[arg(long, default_value_t = 8)]
    join_concurrency: usize,
    /// Single joins timed after each window (one at a time, under the run's load).
    #[arg(long, default_value_t = 5)]
    probe_joins: usize,
    /// Record a `perf` profile of the server during each window (OUT/runs/*/perf.data).
    #[arg(long)]
    perf: bool,
    /// Seconds with only the robot and controller (idle control latency, RSS baseline).
    #[arg(long, default_value_t = 3.0)]
    idle_seconds: f64,
    /// Seconds between the last join and the window.
    #[arg(long, default_value_t = 2.0)]
    settle_seconds: f64,
    #[arg(long, default_value_os_t = default_bedside())]
    bedside_bin: PathBuf,
    #[arg(long, default_value_os_t = default_setup())]
    janus_setup: PathBuf,
    /// Core for the server under test.
    #[arg(long, default_value_t = 0)]
    server_cpu: usize,
    /// Core for the load generator.
    #[arg(long, default_value_t = 1)]
    generator_cpu: usize,
    /// Media UDP port of the servers (Janus gets a range starting here).
    #[arg(long, default_value_t = 40000)]
    udp_port: u16,
}

fn parse_bitrate(s: &str) -> Result<u32, String> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mul) = if let Some(n) = t.strip_suffix('k') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 1000.0)
    } else {
        (t.as_str(), 0.001)
    };
    let v: f64 = num.parse().map_err(|_| format!("bad bitrate {s:?}"))?;
    let kbps = (v * mul).round();
    if !(50.0..=50_000.0).contains(&kbps) {
        return Err(format!("bitrate {s:?} out of range (50k..50M)"));
    }
    Ok(kbps as u32)
}

fn spec(a: &FixtureArgs) -> FixtureSpec {
    FixtureSpec {
        width: a.width,
        height: a.height,
        fps: a.fps,
        bitrate_kbps: a.bitrate,
        gop: a.gop,
        seconds: a.fixture_seconds,
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Fixture(a) => {
            let p = fixture::ensure(&spec(&a), &a.out.join("fixtures"))?;
            let (src, bps) = fixture::load(&p, a.fps)?;
            println!(
                "{} ({} frames, {:.0} kbit/s)",
                p.display(),
                src.len(),
                bps / 1000.0
            );
            Ok(())
        }
        Command::Report { out } => {
            let text = std::fs::read_to_string(out.join("results.json"))
                .with_context(|| format!("reading {}", out.join("results.json").display()))?;
            let rep: report::Report = serde_json::from_str(&text)?;
            println!("{}", report::write_all(&rep, &out)?);
            Ok(())
        }
        Command::Run(a) => run(a),
        Command::Soak {
            seconds,
            rooms,
            viewers,
            stay_seconds,
            drain_seconds,
            bedside_bin,
            server_cpu,
            udp_port,
            out,
        } => {
            let r = soak::soak(soak::SoakSettings {
                bedside_bin,
                out,
                ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                udp_port,
                seconds,
                rooms,
                viewers,
                stay_seconds,
                drain_seconds,
                server_cpu,
            })?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            let back = r.fds_end <= r.fds_baseline && r.sessions_end <= r.sessions_baseline;
            if !back || !r.server_alive || r.panics > 0 {
                bail!("the soak failed: not back at baseline, server down, or panics");
            }
            Ok(())
        }
        Command::UdpFloor {
            sockets,
            rate,
            size,
            batch,
            gso,
            seconds,
            out,
        } => {
            let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
            let mut rows = Vec::new();
            let modes: Vec<(usize, usize)> = batch
                .iter()
                .map(|&b| (b, 1))
                .chain(gso.iter().filter(|&&g| g > 1).map(|&g| (1, g)))
                .collect();
            println!("| sockets | datagrams/s | syscall | sender CPU us per datagram | received |");
            println!("|---:|---:|---|---:|---:|");
            for &n in &sockets {
                for &(b, g) in &modes {
                    let f = floor::run(ip, n, rate, size, b, g, seconds, 0, 1)?;
                    println!(
                        "| {} | {} | {} | {:.2} | {:.1}% |",
                        n,
                        n as u64 * rate as u64,
                        if g > 1 {
                            format!("sendmsg GSO x{g}")
                        } else if b <= 1 {
                            "sendto".to_string()
                        } else {
                            format!("sendmmsg x{b}")
                        },
                        f.sender_us_per_datagram,
                        f.received as f64 * 100.0 / f.datagrams.max(1) as f64
                    );
                    rows.push(f);
                }
            }
            std::fs::create_dir_all(&out)?;
            std::fs::write(
                out.join("udp-floor.json"),
                serde_json::to_string_pretty(&rows)?,
            )?;
            Ok(())
        }
    }
}

fn run(a: RunArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let inside = std::env::var(netns::ENV_NS).ok();
    if inside.is_none() && a.netns != NetnsMode::Off {
        match netns::Namespace::create() {
            Ok(ns) => {
                let mut note = if a.loss.is_some() || a.delay.is_some() {
                    ns.impair(a.loss.as_deref(), a.delay.as_deref())
                } else {
                    String::new()
                };
                if a.rps {
                    let rps = ns.steer_receive(a.generator_cpu);
                    note = if note.is_empty() {
                        rps
                    } else {
                        format!("{note}; {rps}")
                    };
                }
                if !note.is_empty() {
                    eprintln!("{note}");
                }
                let exe = std::env::current_exe()?;
                let status = std::process::Command::new("ip")
                    .args(["netns", "exec", &ns.name])
                    .arg(exe)
                    .args(std::env::args_os().skip(1))
                    .env(netns::ENV_NS, &ns.name)
                    .env(netns::ENV_NOTES, &note)
                    .status()
                    .context("ip netns exec")?;
                drop(ns);
                if !status.success() {
                    bail!("the bench inside the namespace failed: {status}");
                }
                return Ok(());
            }
            Err(e) if a.netns == NetnsMode::On || a.rps => {
                bail!("cannot make a network namespace: {e}")
            }
            Err(e) => eprintln!("no network namespace ({e}); running on the host's addresses"),
        }
    }

    let mut notes: Vec<String> = Vec::new();
    if let Ok(n) = std::env::var(netns::ENV_NOTES) {
        if !n.is_empty() {
            notes.push(n);
        }
    }
    let (ip, network): (IpAddr, String) = if let Some(ns) = &inside {
        (
            netns::NS_IP.parse()?,
            format!(
                "network namespace {ns}, servers and peers on {} (traffic on lo)",
                netns::NS_IP
            ),
        )
    } else if a.janus {
        let ip = netns::primary_ipv4().context("no primary IPv4 for Janus")?;
        if a.loss.is_some() || a.delay.is_some() {
            notes.push("loss/delay requested but no network namespace: NOT applied".into());
        }
        (
            ip,
            format!("host, servers and peers on {ip} (local address, traffic on lo)"),
        )
    } else {
        (
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            "host loopback 127.0.0.1".into(),
        )
    };

    if !a.no_bedside && !a.bedside_bin.exists() {
        bail!(
            "{} not found: cargo build --release --bin bedside",
            a.bedside_bin.display()
        );
    }
    let fspec = spec(&a.fixture);
    let fixture_path = fixture::ensure(&fspec, &a.fixture.out.join("fixtures"))?;
    let (_, bitrate_bps) = fixture::load(&fixture_path, fspec.fps)?;

    procs::pin_to_cpu(a.generator_cpu).context("pinning the generator")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let settings = Settings {
        bedside_bin: a.bedside_bin.clone(),
        janus_setup: a.janus_setup.clone(),
        out: a.fixture.out.clone(),
        fixture: fixture_path.clone(),
        fps: fspec.fps,
        bitrate_bps,
        pacing: a.pacing,
        audio: a.audio,
        seconds: a.seconds,
        idle_seconds: a.idle_seconds,
        settle_seconds: a.settle_seconds,
        join_concurrency: a.join_concurrency,
        light: a.viewer_mode == ViewerMode::Light,
        probe_joins: a.probe_joins,
        perf: a.perf,
        ip,
        server_cpu: a.server_cpu,
        generator_cpu: a.generator_cpu,
        udp_port: a.udp_port,
        consultants: a.consultants,
    };
    let mut kinds = Vec::new();
    if !a.no_bedside {
        kinds.push(Kind::Bedside);
    }
    if a.two_way {
        kinds.push(Kind::BedsideTwoWay);
    }
    if a.ice_tcp {
        kinds.push(Kind::BedsideTcp);
    }
    if a.janus {
        kinds.push(Kind::Janus);
    }
    let command = std::iter::once("bedside-bench".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut rep = report::Report {
        command,
        started_unix,
        duration_s: 0.0,
        machine: report::Machine::read(),
        network,
        fixture: fixture_path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        fixture_kbps: bitrate_bps / 1000.0,
        fps: fspec.fps,
        pacing: a.pacing,
        seconds: a.seconds,
        viewer_mode: match a.viewer_mode {
            ViewerMode::Full => "full".into(),
            ViewerMode::Light => "light".into(),
        },
        runs: Vec::new(),
        ratios: Vec::new(),
        notes,
    };
    eprintln!(
        "fixture {} ({:.0} kbit/s); servers on core {}, generator on core {}; {}",
        fixture_path.display(),
        bitrate_bps / 1000.0,
        a.server_cpu,
        a.generator_cpu,
        rep.network
    );
    rt.block_on(async {
        for &n in &a.viewers {
            for &kind in &kinds {
                let t = Instant::now();
                eprintln!("== {} with {n} viewers", kind.name());
                let r = run::run_one(&settings, kind, n).await;
                match &r.error {
                    Some(e) => eprintln!("   failed after {:.0} s: {e}", t.elapsed().as_secs_f64()),
                    None => eprintln!(
                        "   {} s: {}/{} with video, {:.0} pkt/s fwd, loss max {:.3}%, latency p50 {:.2} p99 {:.2} ms, CPU {:.1}% = {:.2} us/pkt, RSS/viewer {:.0} KiB, join p50 {:.0} ms (single {:.0} ms, {} of {} failed), generator {:.0}%",
                        t.elapsed().as_secs(),
                        r.viewers_with_video,
                        n,
                        r.forwarded_pps,
                        r.loss_max_pct,
                        r.latency_us.p50 / 1000.0,
                        r.latency_us.p99 / 1000.0,
                        r.server_cpu_pct,
                        r.cpu_us_per_packet_schedstat,
                        r.rss_per_viewer_kib,
                        r.join_ms.p50,
                        r.join_single_ms.p50,
                        r.join_single_failed,
                        r.join_single_tried,
                        r.generator_cpu_pct
                    ),
                }
                rep.runs.push(r);
                rep.ratios = report::ratios(&rep.runs);
                rep.duration_s = started.elapsed().as_secs_f64();
                if let Err(e) = report::write_all(&rep, &a.fixture.out) {
                    eprintln!("writing results: {e:#}");
                }
            }
        }
    });
    if rep.runs.iter().any(|r| r.generator_saturated) {
        rep.notes.push(
            "the load generator's core saturated in some runs (marked): the server's per-packet \
             figures stand, but those runs' latency and loss may include generator delays"
                .into(),
        );
    }
    rep.duration_s = started.elapsed().as_secs_f64();
    let md = report::write_all(&rep, &a.fixture.out)?;
    println!("{md}");
    eprintln!("results in {}", a.fixture.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitrates_parse() {
        assert_eq!(parse_bitrate("2500k"), Ok(2500));
        assert_eq!(parse_bitrate("2.5M"), Ok(2500));
        assert_eq!(parse_bitrate("800000"), Ok(800));
        assert!(parse_bitrate("fast").is_err());
    }
}
