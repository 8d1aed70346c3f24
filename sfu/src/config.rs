//! Configuration of the media plane: where to listen, what to advertise, how many workers.
//!
//! Not here: parsing flags (the binary does that with clap) or API settings.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::room::RoomConfig;
use crate::silence::SilenceConfig;

/// See [`SfuConfig::max_viewers_per_worker`].
pub const DEFAULT_MAX_VIEWERS_PER_WORKER: usize = 500;

/// Everything [`Sfu::start`](crate::Sfu::start) needs besides keys and metrics. The binary's
/// `MediaArgs` flags fill it; tests use [`Default`] (loopback, free ports, one worker).
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// Address the UDP sockets bind to (e.g. 0.0.0.0 or 127.0.0.1).
    pub bind_ip: IpAddr,
    /// Address put in ICE host candidates. Defaults to `bind_ip`, or the primary interface's
    /// address when binding the unspecified address. Set it for NAT 1:1 (`--public-ip`).
    pub public_ip: Option<IpAddr>,
    /// First UDP port; worker `i` listens on `udp_port + i`. 0 picks free ports (tests).
    pub udp_port: u16,
    /// Worker count: one UDP socket and one task each; a room lives on one worker.
    pub workers: usize,
    /// A session that does not complete ICE+DTLS in this time is dropped.
    pub connect_timeout: Duration,
    /// Watching sessions (observers, and doctors who may not drive) one worker accepts; past
    /// it a join gets 503. A worker is one core, and a saturated core delays the lease
    /// holder's joystick frames and e-stops along with the video, so the cap keeps it below
    /// saturation. Robots and the doctor whose token may drive are always let in. Default:
    /// 500, one-way viewers of a 2.5 Mbit/s robot on one core of the benchmark machine; a
    /// two-way consultation forwards ~1.5x the packets per observer, so about 250 there
    /// (`docs/benchmarks.md`). Lower it on slower hardware or for higher bitrates.
    pub max_viewers_per_worker: usize,
    /// Sessions still setting up (ICE, DTLS) one worker holds; past it an offer gets 503. They
    /// cost an `Rtc` each and do not count against the viewer cap, so they are bounded apart.
    pub max_pending_per_worker: usize,
    /// Sessions still setting up per join token (`jti`); past it an offer gets 429. A browser
    /// needs one, two while it retries.
    pub max_pending_per_token: usize,
    /// Sessions still setting up in one room; past it an offer to that room gets 503. Below
    /// `max_pending_per_worker` (default: half of it) so that a flood of offers into one room,
    /// from however many tokens, cannot hold every pending slot of the worker: the other rooms
    /// on it keep the rest and their joins go on being answered.
    pub max_pending_per_room: usize,
    /// How long a connected session may be silent before the SFU acts (see
    /// [`crate::silence`]).
    pub silence: SilenceConfig,
    /// ICE-TCP: the TCP port a node listens on for clients that cannot send UDP (`None`: no
    /// ICE-TCP; `Some(0)`: any free port, for tests). A passive TCP candidate is offered to
    /// every session; UDP stays preferred by its candidate priority.
    pub tcp_port: Option<u16>,
    /// ICE-TCP connections that have not yet sent a valid binding request, at most; past it new
    /// connections are closed at once.
    pub max_tcp_pending: usize,
    /// The TURN servers' relay addresses: a session reaching us from one of them is reported
    /// as `relay`.
    pub relay_ips: Vec<IpAddr>,
    /// Per-room policy: keyframe request interval, control-frame rate limits.
    pub room: RoomConfig,
    /// This media node's name in room status reports (the API's live view says which node holds
    /// a room): the pod or host name in a cluster.
    pub node_id: String,
    /// Each live room's status is reported again this often while nothing changes; the API
    /// forgets a room not refreshed for three periods (its node is gone).
    pub status_refresh: Duration,
}

impl Default for SfuConfig {
    fn default() -> Self {
        SfuConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            public_ip: None,
            udp_port: 0,
            workers: 1,
            connect_timeout: Duration::from_secs(15),
            max_viewers_per_worker: DEFAULT_MAX_VIEWERS_PER_WORKER,
            max_pending_per_worker: 200,
            max_pending_per_token: 2,
            max_pending_per_room: 100,
            silence: SilenceConfig::default(),
            tcp_port: None,
            max_tcp_pending: 64,
            relay_ips: Vec::new(),
            room: RoomConfig::default(),
            node_id: "local".to_string(),
            status_refresh: Duration::from_secs(10),
        }
    }
}

impl SfuConfig {
    /// The address put in ICE candidates.
    pub fn advertised_ip(&self) -> IpAddr {
        if let Some(ip) = self.public_ip {
            return ip;
        }
        if !self.bind_ip.is_unspecified() {
            return self.bind_ip;
        }
        primary_ip().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }
}

/// The address the OS would use for outbound traffic. `connect` on UDP sends nothing.
fn primary_ip() -> Option<IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    s.local_addr().ok().map(|a| a.ip())
}
