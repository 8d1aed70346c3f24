//! Where the robot agent writes drive commands: one JSON object per line (stdout) or per
//! datagram (UDP, Unix datagram socket), for a motor controller or a ROS bridge to read.
//!
//! Format: `{"t_ms":…,"linear_x":…,"linear_y":…,"angular_z":…,"epoch":…,"reason":"frame|stop|deadman|estop|disconnected"}`.
//! `disconnected`: the connection to the server ended, so the driver is lost, whatever the
//! watchdog thinks.
//! `t_ms` is milliseconds since the agent started. A write that fails is logged, never fatal:
//! the motor controller's own timeout is the next safety layer.
//!
//! Not here: deciding what to drive (the watchdog).

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Instant;

use super::watchdog::Drive;

#[derive(Debug, Clone)]
pub enum Sink {
    Stdout,
    Udp(SocketAddr),
    Unix(PathBuf),
}

impl FromStr for Sink {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "stdout" || s == "-" {
            return Ok(Sink::Stdout);
        }
        if let Some(a) = s.strip_prefix("udp:") {
            return a
                .parse()
                .map(Sink::Udp)
                .map_err(|_| format!("bad UDP address {a:?}"));
        }
        if let Some(p) = s.strip_prefix("unix:") {
            return Ok(Sink::Unix(PathBuf::from(p)));
        }
        Err(format!(
            "unknown sink {s:?}: use stdout, udp:HOST:PORT or unix:PATH"
        ))
    }
}

fn started() -> Instant {
    static T: OnceLock<Instant> = OnceLock::new();
    *T.get_or_init(Instant::now)
}

impl Sink {
    pub fn emit(&self, d: &Drive) {
        let line = serde_json::json!({
            "t_ms": started().elapsed().as_millis() as u64,
            "linear_x": d.linear_x,
            "linear_y": d.linear_y,
            "angular_z": d.angular_z,
            "epoch": d.epoch,
            "reason": d.reason,
        })
        .to_string();
        let r = match self {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{line}").and_then(|_| out.flush())
            }
            Sink::Udp(addr) => UdpSocket::bind("0.0.0.0:0")
                .and_then(|s| s.send_to(line.as_bytes(), addr))
                .map(|_| ()),
            Sink::Unix(path) => std::os::unix::net::UnixDatagram::unbound()
                .and_then(|s| s.send_to(line.as_bytes(), path))
                .map(|_| ()),
        };
        if let Err(e) = r {
            tracing::warn!(error = %e, "drive command sink write failed");
        }
    }
}
