//! The bench's outputs: `results.json` (everything), `results.md` (tables: figures per run,
//! Bedside/Janus ratios, targets measured against), `results.png` (CPU per forwarded packet and
//! p99 forward latency against viewers, one line per server).
//!
//! The plot uses plotters' bitmap backend with `ab_glyph` text: the font is read at run time
//! from Debian's DejaVu or Liberation fonts; without one the plot is drawn without text.
//!
//! Not here: measuring (see `run.rs`).

use std::path::Path;

use serde::Serialize;

use crate::run::{Pcts, RunResult};

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub mem_total_kib: u64,
}

impl Machine {
    pub fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let mem_total_kib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0);
        Machine {
            nproc: crate::procs::cores_online(),
            cpu_model,
            kernel,
            mem_total_kib,
        }
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Ratio {
    pub viewers: usize,
    pub cpu_per_packet: Option<f64>,
    pub latency_p50: Option<f64>,
    pub latency_p99: Option<f64>,
    pub rss_per_viewer: Option<f64>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Report {
    pub command: String,
    pub started_unix: u64,
    pub duration_s: f64,
    pub machine: Machine,
    pub network: String,
    pub fixture: String,
    pub fixture_kbps: f64,
    pub fps: u32,
    pub pacing: f64,
    pub seconds: f64,
    pub viewer_mode: String,
    pub runs: Vec<RunResult>,
    pub ratios: Vec<Ratio>,
    pub notes: Vec<String>,
}

pub fn ratios(runs: &[RunResult]) -> Vec<Ratio> {
    let ok = |r: &&RunResult| r.error.is_none();
    let mut out = Vec::new();
    for b in runs.iter().filter(ok).filter(|r| r.server == "bedside") {
        let Some(j) = runs
            .iter()
            .filter(ok)
            .find(|r| r.server == "janus" && r.viewers == b.viewers)
        else {
            continue;
        };
        let div = |x: f64, y: f64| (y > 0.0).then(|| x / y);
        out.push(Ratio {
            viewers: b.viewers,
            cpu_per_packet: div(b.cpu_us_per_packet_schedstat, j.cpu_us_per_packet_schedstat),
            latency_p50: div(b.latency_us.p50, j.latency_us.p50),
            latency_p99: div(b.latency_us.p99, j.latency_us.p99),
            rss_per_viewer: div(b.rss_per_viewer_kib, j.rss_per_viewer_kib),
        });
    }
    out
}

fn ms(p: &Pcts) -> String {
    if p.n == 0 {
        return "-".into();
    }
    format!("{:.2} / {:.2}", p.p50 / 1000.0, p.p99 / 1000.0)
}

/// Single joins: their times, and how many of them failed (a failure is never "0 ms").
fn single_join(r: &RunResult) -> String {
    match (r.join_single_failed, r.join_single_ms.n) {
        (0, _) => join(&r.join_single_ms),
        (f, 0) => format!("**all {f} failed**"),
        (f, _) => format!(
            "{} (**{f} of {} failed**)",
            join(&r.join_single_ms),
            r.join_single_tried
        ),
    }
}

fn join(p: &Pcts) -> String {
    if p.n == 0 {
        return "-".into();
    }
    format!("{:.0} / {:.0}", p.p50, p.p99)
}

fn opt_ms(p: &Option<Pcts>) -> String {
    p.as_ref().map(ms).unwrap_or_else(|| "n/a".into())
}

fn x(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}x")).unwrap_or_else(|| "-".into())
}

pub fn markdown(rep: &Report) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "Machine: {} x {} ({}), kernel {}. Network: {}. Stream: {} ({:.0} kbit/s real, {} fps, pacing {}x). Window {} s per run, viewers in {} mode. Run took {:.0} s.\n\n",
        rep.machine.nproc, rep.machine.cpu_model, format_args!("{} MiB", rep.machine.mem_total_kib / 1024),
        rep.machine.kernel, rep.network, rep.fixture, rep.fixture_kbps, rep.fps, rep.pacing,
        rep.seconds, rep.viewer_mode, rep.duration_s
    ));
    s.push_str("| server | viewers | with video | fwd pkt/s | loss mean / max % | fwd latency p50 / p99 / max ms | server CPU % | CPU us/pkt (stat) | CPU us/pkt (schedstat) | datagrams per send | RSS before -> after MiB | RSS/viewer KiB | join ramp p50 / p99 ms | join single p50 / p99 ms | control idle p50 / p99 ms | control load p50 / p99 ms | generator CPU % | other load on server / generator core % |\n");
    s.push_str(
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in &rep.runs {
        if let Some(e) = &r.error {
            s.push_str(&format!(
                "| {} | {} | failed: {} ||||||||||||||\n",
                r.server,
                r.viewers,
                e.replace('|', "/").replace('\n', " ")
            ));
            continue;
        }
        s.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.3} / {:.3} | {:.2} / {:.2} / {:.2} | {:.1} | {:.2} | {:.2} | {} | {:.1} -> {:.1} | {:.0} | {} | {} | {} | {} | {:.0}{} | {:.0} / {:.0} |\n",
            r.server,
            r.viewers,
            r.viewers_with_video,
            r.forwarded_pps,
            r.loss_mean_pct,
            r.loss_max_pct,
            r.latency_us.p50 / 1000.0,
            r.latency_us.p99 / 1000.0,
            r.latency_us.max / 1000.0,
            r.server_cpu_pct,
            r.cpu_us_per_packet,
            r.cpu_us_per_packet_schedstat,
            r.datagrams_per_send
                .map_or_else(|| "n/a".to_string(), |d| format!("{d:.2}")),
            r.rss_before_kib as f64 / 1024.0,
            r.rss_after_kib as f64 / 1024.0,
            r.rss_per_viewer_kib,
            join(&r.join_ms),
            single_join(r),
            opt_ms(&r.control_idle_us),
            opt_ms(&r.control_load_us),
            r.generator_cpu_pct,
            if r.generator_saturated { " (saturated)" } else { "" },
            r.foreign_server_core_pct,
            r.foreign_generator_core_pct,
        ));
    }
    if !rep.ratios.is_empty() {
        s.push_str("\nBedside / Janus (below 1 means Bedside uses less):\n\n");
        s.push_str("| viewers | CPU per packet | latency p50 | latency p99 | RSS per viewer |\n");
        s.push_str("|---:|---:|---:|---:|---:|\n");
        for q in &rep.ratios {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                q.viewers,
                x(q.cpu_per_packet),
                x(q.latency_p50),
                x(q.latency_p99),
                x(q.rss_per_viewer)
            ));
        }
    }
    s.push_str(&targets(rep));
    if !rep.notes.is_empty() {
        s.push('\n');
        for n in &rep.notes {
            s.push_str(&format!("- {n}\n"));
        }
    }
    s
}

/// Targets from issue 6, judged on the largest Bedside run that completed.
fn targets(rep: &Report) -> String {
    let Some(b) = rep
        .runs
        .iter()
        .filter(|r| r.server == "bedside" && r.error.is_none())
        .max_by_key(|r| r.viewers)
    else {
        return String::new();
    };
    let j = rep
        .runs
        .iter()
        .find(|r| r.server == "janus" && r.error.is_none() && r.viewers == b.viewers);
    let ok = |c: bool| if c { "met" } else { "**missed**" };
    let mut s = format!(
        "\nTargets (issue 6) at the largest Bedside run, {} viewers:\n\n| target | measured | |\n|---|---|---|\n",
        b.viewers
    );
    let cpu = b.cpu_us_per_packet_schedstat;
    s.push_str(&format!(
        "| CPU per forwarded packet <= 1.5 us | {cpu:.2} us | {} |\n",
        ok(cpu <= 1.5)
    ));
    if let Some(j) = j {
        let ratio = cpu / j.cpu_us_per_packet_schedstat.max(1e-9);
        s.push_str(&format!(
            "| ... and <= 0.5 x Janus in the same run | {ratio:.2} x ({:.2} us) | {} |\n",
            j.cpu_us_per_packet_schedstat,
            ok(ratio <= 0.5)
        ));
    }
    let full = b.viewers >= 500;
    let scope = if full { "" } else { " (not at 500 viewers)" };
    s.push_str(&format!(
        "| 0.0% loss{scope} | mean {:.3}%, max {:.3}% | {} |\n",
        b.loss_mean_pct,
        b.loss_max_pct,
        ok(b.loss_max_pct == 0.0 && full)
    ));
    s.push_str(&format!(
        "| p99 forward latency <= 2 ms{scope} | {:.2} ms | {} |\n",
        b.latency_us.p99 / 1000.0,
        ok(b.latency_us.p99 <= 2000.0 && full)
    ));
    if let (Some(idle), Some(load)) = (&b.control_idle_us, &b.control_load_us) {
        let added = (load.p99 - idle.p50).max(0.0);
        s.push_str(&format!(
            "| control p99 added by the SFU under load <= 1 ms{scope} | {:.2} ms (load p99 {:.2} - idle p50 {:.2}) | {} |\n",
            added / 1000.0,
            load.p99 / 1000.0,
            idle.p50 / 1000.0,
            ok(added <= 1000.0 && full)
        ));
    }
    s.push_str(&format!(
        "| join p50 <= 150 ms (single joins under this load) | {} ms (ramp: {:.0} ms) | {} |\n",
        single_join(b),
        b.join_ms.p50,
        ok(b.join_single_failed == 0 && b.join_single_ms.n > 0 && b.join_single_ms.p50 <= 150.0)
    ));
    s.push_str(&format!(
        "| memory <= 150 KiB per viewer | {:.0} KiB | {} |\n",
        b.rss_per_viewer_kib,
        ok(b.rss_per_viewer_kib <= 150.0)
    ));
    s
}

fn load_font() -> bool {
    for p in [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    ] {
        if let Ok(bytes) = std::fs::read(p) {
            let leaked: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font(
                "sans-serif",
                plotters::style::FontStyle::Normal,
                leaked,
            )
            .is_ok()
            {
                return true;
            }
        }
    }
    false
}

/// Two panels: CPU us per forwarded packet, and p99 forward latency (ms), against viewers.
pub fn plot(rep: &Report, path: &Path) -> anyhow::Result<()> {
    use plotters::prelude::*;
    let text = load_font();
    let root = BitMapBackend::new(path, (1400, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(700);
    let servers = [
        ("bedside", RGBColor(0, 114, 178)),
        ("janus", RGBColor(213, 94, 0)),
    ];
    let ok_runs: Vec<&RunResult> = rep.runs.iter().filter(|r| r.error.is_none()).collect();
    let max_n = ok_runs.iter().map(|r| r.viewers).max().unwrap_or(1).max(2) as f64;
    type Pick = fn(&RunResult) -> f64;
    let panels: [(&DrawingArea<BitMapBackend, _>, &str, Pick); 2] = [
        (&left, "SFU CPU per forwarded packet (us)", |r| {
            r.cpu_us_per_packet_schedstat
        }),
        (&right, "p99 forward latency (ms)", |r| {
            r.latency_us.p99 / 1000.0
        }),
    ];
    for (area, title, pick) in panels {
        let ymax = ok_runs
            .iter()
            .map(|r| pick(r))
            .fold(0.0, f64::max)
            .max(1e-3)
            * 1.3;
        let ymin = ok_runs
            .iter()
            .map(|r| pick(r))
            .filter(|v| *v > 0.0)
            .fold(f64::MAX, f64::min)
            .min(ymax / 2.0)
            * 0.7;
        let mut b = ChartBuilder::on(area);
        b.margin(20);
        if text {
            b.caption(title, ("sans-serif", 22))
                .x_label_area_size(45)
                .y_label_area_size(60);
        }
        // Both axes logarithmic: the figures span orders of magnitude once a server saturates.
        let mut chart =
            b.build_cartesian_2d((0.8f64..max_n * 1.25).log_scale(), (ymin..ymax).log_scale())?;
        let mut mesh = chart.configure_mesh();
        if text {
            mesh.x_desc("viewers (log scale)")
                .y_desc("log scale")
                .label_style(("sans-serif", 15))
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_label_formatter(&|v| {
                    if *v >= 10.0 {
                        format!("{v:.0}")
                    } else if *v >= 1.0 {
                        format!("{v:.1}")
                    } else {
                        format!("{v:.2}")
                    }
                });
        } else {
            mesh.disable_x_mesh().disable_y_mesh();
        }
        mesh.draw()?;
        for (name, color) in servers {
            let mut pts: Vec<(f64, f64)> = ok_runs
                .iter()
                .filter(|r| r.server == name)
                .map(|r| (r.viewers as f64, pick(r)))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            if pts.is_empty() {
                continue;
            }
            let series = chart.draw_series(LineSeries::new(pts.clone(), color.stroke_width(3)))?;
            if text {
                series.label(name).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                });
            }
            chart.draw_series(pts.iter().map(|p| Circle::new(*p, 5, color.filled())))?;
        }
        if text {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 16))
                .position(SeriesLabelPosition::UpperLeft)
                .draw()?;
        }
    }
    root.present()?;
    Ok(())
}

pub fn write_all(rep: &Report, out: &Path) -> anyhow::Result<String> {
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(rep)?)?;
    let md = markdown(rep);
    std::fs::write(out.join("results.md"), &md)?;
    if let Err(e) = plot(rep, &out.join("results.png")) {
        eprintln!("plot: {e:#}");
    }
    Ok(md)
}
