//! The servers under test as processes: starting them pinned to a core, reading their CPU and
//! memory accounting from `/proc`, stopping them.
//!
//! CPU time comes from two places: `/proc/<pid>/stat` `utime + stime` (clock ticks, what the
//! issue asks for; 10 ms resolution) and the sum of `/proc/<pid>/task/*/schedstat` run times
//! (nanoseconds; lets the small runs be read too). Memory is `VmRSS` from `/proc/<pid>/status`.
//!
//! Not here: talking to the servers (see `bedside.rs`, `janus.rs`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// A server process we started; stopped (SIGINT, then SIGKILL) when dropped.
pub struct Server {
    child: Option<Child>,
    pub pid: u32,
}

impl Server {
    /// Start `cmd` under `taskset -c <cpu>`, output appended to `log`.
    pub fn spawn(
        name: &'static str,
        cpu: usize,
        cmd: &[String],
        log: &Path,
    ) -> anyhow::Result<Server> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let err = out.try_clone()?;
        let child = Command::new("taskset")
            .arg("-c")
            .arg(cpu.to_string())
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {name}: taskset -c {cpu} {}", cmd.join(" ")))?;
        // taskset execs the command: same pid.
        let pid = child.id();
        Ok(Server {
            child: Some(child),
            pid,
        })
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn cpu(&self) -> Cpu {
        Cpu::of(self.pid)
    }

    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid)
    }

    pub fn threads(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.pid))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// SIGINT, wait up to 5 s, then SIGKILL.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: signalling a child we spawned and have not reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// CPU time of a process at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    /// utime + stime from /proc/<pid>/stat, in seconds (10 ms resolution).
    pub stat_s: f64,
    /// Sum of the threads' schedstat run time, seconds (ns resolution).
    pub sched_s: f64,
}

impl Cpu {
    pub fn of(pid: u32) -> Cpu {
        Cpu {
            stat_s: stat_cpu_s(&format!("/proc/{pid}/stat")),
            sched_s: schedstat_s(pid),
        }
    }

    pub fn this_process() -> Cpu {
        Cpu::of(std::process::id())
    }

    pub fn since(&self, earlier: &Cpu) -> Cpu {
        Cpu {
            stat_s: self.stat_s - earlier.stat_s,
            sched_s: self.sched_s - earlier.sched_s,
        }
    }
}

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

fn stat_cpu_s(path: &str) -> f64 {
    let Ok(s) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // The command name may contain spaces; fields restart after the last ')'.
    let Some(rest) = s.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    let get = |field: usize| {
        f.get(field - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (get(14) + get(15)) / clk_tck()
}

fn schedstat_s(pid: u32) -> f64 {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    let mut ns = 0u64;
    for t in dir.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
            ns += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    ns as f64 / 1e9
}

pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Busy seconds of one CPU from /proc/stat (everything but idle and iowait), all processes.
pub fn core_busy_s(cpu: usize) -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let tag = format!("cpu{cpu}");
    let Some(line) = s
        .lines()
        .find(|l| l.split_whitespace().next() == Some(tag.as_str()))
    else {
        return 0.0;
    };
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    (total - idle) / clk_tck()
}

/// Cores online (not the ones this process may run on).
pub fn cores_online() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 {
        n as usize
    } else {
        1
    }
}

/// UDP counters from /proc/net/snmp (of the current network namespace).
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct UdpCounters {
    pub in_errors: u64,
    pub rcvbuf_errors: u64,
    pub sndbuf_errors: u64,
}

impl UdpCounters {
    pub fn read() -> UdpCounters {
        let Ok(s) = std::fs::read_to_string("/proc/net/snmp") else {
            return UdpCounters::default();
        };
        let mut lines = s.lines().filter(|l| l.starts_with("Udp:"));
        let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
            return UdpCounters::default();
        };
        let pairs: Vec<(&str, u64)> = names
            .split_whitespace()
            .zip(values.split_whitespace())
            .map(|(n, v)| (n, v.parse().unwrap_or(0)))
            .collect();
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| *v)
                .unwrap_or(0)
        };
        UdpCounters {
            in_errors: get("InErrors"),
            rcvbuf_errors: get("RcvbufErrors"),
            sndbuf_errors: get("SndbufErrors"),
        }
    }

    pub fn since(&self, e: &UdpCounters) -> UdpCounters {
        UdpCounters {
            in_errors: self.in_errors.saturating_sub(e.in_errors),
            rcvbuf_errors: self.rcvbuf_errors.saturating_sub(e.rcvbuf_errors),
            sndbuf_errors: self.sndbuf_errors.saturating_sub(e.sndbuf_errors),
        }
    }
}

/// Pin the calling thread (and threads it starts later) to one CPU.
pub fn pin_to_cpu(cpu: usize) -> anyhow::Result<()> {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET writes within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            anyhow::bail!("sched_setaffinity: {}", std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A free TCP/UDP port on 127.0.0.1 (bind to 0 and let go; fine for a benchmark).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18080)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_accounting_reads() {
        let start = Cpu::this_process();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        let d = Cpu::this_process().since(&start);
        assert!(d.sched_s > 0.0);
        assert!(rss_kib(std::process::id()) > 0);
    }
}
