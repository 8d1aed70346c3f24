//! A network namespace of the bench's own, so servers and peers talk on addresses nobody else
//! uses and `tc` impairments touch nothing outside the run.
//!
//! The namespace gets `lo` and a veth pair with `198.18.0.1/30` and `198.18.0.2/30` (the
//! benchmarking range of RFC 2544): Janus needs a non-loopback address to gather on, and since
//! both ends are local, traffic to them still flows over `lo`. `--loss`/`--delay` become a
//! `tc netem` qdisc on that `lo` (every hop: robot -> server and server -> viewer); if the kernel
//! has no netem (as on the machine the results were recorded on) the run goes ahead unimpaired
//! and says so in its notes. The bench re-executes itself inside the namespace with
//! `ip netns exec` and deletes the namespace afterwards.
//!
//! Not here: anything measured.

use std::process::Command;

/// Address of the servers and peers inside the namespace.
pub const NS_IP: &str = "198.18.0.1";
/// Set in the child: the namespace it runs in.
pub const ENV_NS: &str = "BEDSIDE_BENCH_NETNS";
/// Set in the child: notes from the parent (impairment applied or skipped).
pub const ENV_NOTES: &str = "BEDSIDE_BENCH_NOTES";

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

pub struct Namespace {
    pub name: String,
}

impl Namespace {
    /// Create and wire the namespace; `Err` with the reason when this machine does not allow it.
    pub fn create() -> Result<Namespace, String> {
        let name = format!("bedside-bench-{}", std::process::id());
        ip(&["netns", "add", &name])?;
        let ns = Namespace { name };
        let n = ns.name.as_str();
        ip(&["-n", n, "link", "set", "lo", "up"])?;
        ip(&[
            "-n", n, "link", "add", "bb0", "type", "veth", "peer", "name", "bb1",
        ])?;
        ip(&["-n", n, "addr", "add", &format!("{NS_IP}/30"), "dev", "bb0"])?;
        ip(&["-n", n, "addr", "add", "198.18.0.2/30", "dev", "bb1"])?;
        ip(&["-n", n, "link", "set", "bb0", "up"])?;
        ip(&["-n", n, "link", "set", "bb1", "up"])?;
        Ok(ns)
    }

    /// Add `tc netem` on the namespace's `lo`. Returns a note saying what happened.
    pub fn impair(&self, loss: Option<&str>, delay: Option<&str>) -> String {
        let mut args = vec![
            "netns", "exec", &self.name, "tc", "qdisc", "add", "dev", "lo", "root", "netem",
        ];
        if let Some(l) = loss {
            args.extend(["loss", l]);
        }
        if let Some(d) = delay {
            args.extend(["delay", d]);
        }
        let what = format!(
            "loss {} delay {}",
            loss.unwrap_or("0%"),
            delay.unwrap_or("0ms")
        );
        match ip(&args) {
            Ok(()) => format!("tc netem on the namespace's lo: {what} (applies to every hop)"),
            Err(e) => format!(
                "requested {what} NOT applied: tc netem is unavailable here ({e}); the run is unimpaired"
            ),
        }
    }
}

impl Namespace {
    /// Process the namespace's loopback receive path on `cpu` (RPS), not on the sender's core.
    /// Returns a note saying what happened.
    pub fn steer_receive(&self, cpu: usize) -> String {
        let mask = format!("{:x}", 1u64 << cpu.min(63));
        let script = format!("echo {mask} > /sys/class/net/lo/queues/rx-0/rps_cpus");
        match ip(&["netns", "exec", &self.name, "sh", "-c", &script]) {
            Ok(()) => format!(
                "RPS: loopback receive processing steered to core {cpu} (the receivers' half of \
                 the UDP stack is billed to the generator's core, as on a real network)"
            ),
            Err(e) => format!("RPS requested but NOT applied ({e})"),
        }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// The machine's primary IPv4 (`ip -4 route get 1.1.1.1` only looks up a route; it sends
/// nothing). Used for Janus when no namespace is available.
pub fn primary_ipv4() -> Option<std::net::IpAddr> {
    let out = Command::new("ip")
        .args(["-4", "route", "get", "1.1.1.1"])
        .output()
        .ok()?;
    let s = String::from_utf8_lossy(&out.stdout);
    let mut words = s.split_whitespace();
    while let Some(w) = words.next() {
        if w == "src" {
            return words.next()?.parse().ok();
        }
    }
    None
}
