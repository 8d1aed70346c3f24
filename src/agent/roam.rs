//! When the robot's network path needs mending, and how: the agent's roaming policy, sans-IO.
//!
//! A robot roams between Wi-Fi access points all day. Its session survives a roam if the agent
//! restarts ICE (WHIP `PATCH`, `bedside_sfu::client::WebRtcClient::restart_ice`) before the
//! server's silence timer for robots (3 s) ends it, so the agent:
//!
//! - pings the server on `events` every 250 ms (the SFU answers `pong` at once), so a healthy
//!   path is heard from several times a second whatever the media does;
//! - restarts ICE when nothing at all was heard for 1 s with a ping unanswered (the path went
//!   silent), when the address the routing table picks towards the server changes (a new
//!   network: the agent follows it when `--local-ip auto`), or when its ICE agent reports the
//!   connection lost;
//! - gives the restart 2 s to be heard from on the new path, and otherwise asks for a full
//!   reconnect (a new session: the viewers' streams are spliced, the lease was never the
//!   robot's). So does every path problem of an ICE-TCP agent: its connection closing already
//!   ends the session.
//!
//! Plain calls in, actions out ([`Roam::poll`]); the agent's loop does the I/O.
//!
//! Not here: the WebRTC client, the route lookup (the agent's shell), the watchdog.

use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The policy's timings.
#[derive(Debug, Clone, Copy)]
pub struct RoamConfig {
    /// Send a `ping` this often.
    pub ping_every: Duration,
    /// Nothing heard for this long, with a ping unanswered: the path is silent.
    pub silent_after: Duration,
    /// A restart not heard from on the new path within this time: reconnect.
    pub restart_deadline: Duration,
}

impl Default for RoamConfig {
    fn default() -> Self {
        RoamConfig {
            ping_every: Duration::from_millis(250),
            // Well inside the server's 3 s for robots, with time for the restart.
            silent_after: Duration::from_secs(1),
            restart_deadline: Duration::from_secs(2),
        }
    }
}

/// Why the path is mended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Nothing heard for [`RoamConfig::silent_after`].
    Silent,
    /// The route to the server now leaves from another address.
    AddressChanged,
    /// The ICE agent gave the server up.
    IceDisconnected,
    /// A restart was not heard from in time.
    RestartUnanswered,
}

impl Why {
    /// For logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Silent => "the path went silent",
            Why::AddressChanged => "the local address changed",
            Why::IceDisconnected => "ICE lost the server",
            Why::RestartUnanswered => "no answer after an ICE restart",
        }
    }
}

/// What the agent's loop should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoamAction {
    /// Send `{"type":"ping"}` on `events`.
    Ping,
    /// Restart ICE from this local address (then call [`Roam::restarted`]).
    RestartIce { local_ip: IpAddr, why: Why },
    /// Give the session up and connect again.
    Reconnect { why: Why },
}

/// The policy's state for one session.
#[derive(Debug)]
pub struct Roam {
    cfg: RoamConfig,
    /// The address the session's ICE candidate has now.
    local_ip: IpAddr,
    /// ICE restarts are possible (UDP; an ICE-TCP client reconnects instead).
    can_restart: bool,
    last_heard: Instant,
    last_ping: Option<Instant>,
    unanswered_since: Option<Instant>,
    /// The latest answer of the routing table towards the server (when followed).
    route: Option<IpAddr>,
    ice_lost: bool,
    /// A restart under way, since.
    restarting: Option<Instant>,
    /// A reconnect was asked for: this session is over.
    given_up: bool,
}

impl Roam {
    /// A connected session whose candidate is on `local_ip`.
    pub fn new(now: Instant, local_ip: IpAddr, can_restart: bool, cfg: RoamConfig) -> Roam {
        Roam {
            cfg,
            local_ip,
            can_restart,
            last_heard: now,
            last_ping: None,
            unanswered_since: None,
            route: None,
            ice_lost: false,
            restarting: None,
            given_up: false,
        }
    }

    /// Something arrived from the server (any packet the client surfaced).
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.unanswered_since = None;
        self.restarting = None;
        self.ice_lost = false;
    }

    /// The routing table's source address towards the server now (`None`: no route).
    pub fn route(&mut self, ip: Option<IpAddr>) {
        self.route = ip;
    }

    /// The ICE agent reports the connection lost.
    pub fn ice_disconnected(&mut self) {
        self.ice_lost = true;
    }

    /// The restart was answered by the server; wait to hear from it on the new path.
    pub fn restarted(&mut self, now: Instant, local_ip: IpAddr) {
        self.local_ip = local_ip;
        self.restarting = Some(now);
        self.ice_lost = false;
        self.unanswered_since = None;
    }

    /// The address the session's candidate is on.
    pub fn local_ip(&self) -> IpAddr {
        self.local_ip
    }

    /// The next thing to do, if any; call until `None`.
    pub fn poll(&mut self, now: Instant) -> Option<RoamAction> {
        if self.given_up {
            return None;
        }
        if let Some(since) = self.restarting {
            if now.duration_since(since) >= self.cfg.restart_deadline {
                self.given_up = true;
                return Some(RoamAction::Reconnect {
                    why: Why::RestartUnanswered,
                });
            }
        } else if let Some(why) = self.trouble(now) {
            if !self.can_restart {
                self.given_up = true;
                return Some(RoamAction::Reconnect { why });
            }
            let local_ip = self.route.unwrap_or(self.local_ip);
            // Asked for once: the loop answers with `restarted` or reconnects.
            self.restarting = Some(now);
            return Some(RoamAction::RestartIce { local_ip, why });
        }
        if self
            .last_ping
            .is_none_or(|t| now.duration_since(t) >= self.cfg.ping_every)
        {
            self.last_ping = Some(now);
            self.unanswered_since.get_or_insert(now);
            return Some(RoamAction::Ping);
        }
        None
    }

    fn trouble(&self, now: Instant) -> Option<Why> {
        if self.route.is_some_and(|ip| ip != self.local_ip) {
            return Some(Why::AddressChanged);
        }
        if self.ice_lost {
            return Some(Why::IceDisconnected);
        }
        let silent = now.duration_since(self.last_heard) >= self.cfg.silent_after;
        if silent && self.unanswered_since.is_some() {
            return Some(Why::Silent);
        }
        None
    }

    /// When [`poll`](Self::poll) next has something to say, at the latest.
    pub fn next_deadline(&self) -> Instant {
        let ping = self
            .last_ping
            .map_or(self.last_heard, |t| t + self.cfg.ping_every);
        let check = match self.restarting {
            Some(since) => since + self.cfg.restart_deadline,
            None => self.last_heard + self.cfg.silent_after,
        };
        ping.min(check)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 0, 3));
    const MS: Duration = Duration::from_millis(1);

    fn drain(r: &mut Roam, now: Instant) -> Vec<RoamAction> {
        std::iter::from_fn(|| r.poll(now)).collect()
    }

    #[test]
    fn a_healthy_path_is_pinged_and_never_restarted() {
        let t0 = Instant::now();
        let mut r = Roam::new(t0, A, true, RoamConfig::default());
        for i in 0..40u32 {
            let now = t0 + 250 * MS * i;
            assert_eq!(drain(&mut r, now), vec![RoamAction::Ping], "at {i}");
            r.heard(now + 5 * MS);
        }
    }

    #[test]
    fn a_silent_path_is_restarted_after_a_second_then_reconnected_if_still_silent() {
        let t0 = Instant::now();
        let mut r = Roam::new(t0, A, true, RoamConfig::default());
        assert_eq!(drain(&mut r, t0), vec![RoamAction::Ping]);
        // Silent but no ping has gone unanswered that long: only pings.
        assert_eq!(drain(&mut r, t0 + 999 * MS), vec![RoamAction::Ping]);
        assert!(r.next_deadline() <= t0 + 1000 * MS);
        assert_eq!(
            drain(&mut r, t0 + 1000 * MS),
            vec![RoamAction::RestartIce {
                local_ip: A,
                why: Why::Silent
            }]
        );
        r.restarted(t0 + 1010 * MS, A);
        assert_eq!(drain(&mut r, t0 + 2000 * MS), vec![RoamAction::Ping]);
        assert_eq!(
            drain(&mut r, t0 + 3010 * MS),
            vec![RoamAction::Reconnect {
                why: Why::RestartUnanswered
            }],
            "and then nothing more: the session is over"
        );
    }

    #[test]
    fn a_restart_heard_from_is_done() {
        let t0 = Instant::now();
        let mut r = Roam::new(t0, A, true, RoamConfig::default());
        drain(&mut r, t0);
        assert!(matches!(
            r.poll(t0 + 1500 * MS),
            Some(RoamAction::RestartIce { .. })
        ));
        r.restarted(t0 + 1600 * MS, A);
        r.heard(t0 + 1700 * MS);
        let later = drain(&mut r, t0 + 5000 * MS);
        assert!(
            !later
                .iter()
                .any(|a| matches!(a, RoamAction::Reconnect { .. })),
            "{later:?}"
        );
    }

    #[test]
    fn a_new_route_moves_the_session_to_the_new_address_at_once() {
        let t0 = Instant::now();
        let mut r = Roam::new(t0, A, true, RoamConfig::default());
        r.route(Some(A));
        assert_eq!(drain(&mut r, t0), vec![RoamAction::Ping]);
        r.heard(t0 + MS);
        r.route(Some(B));
        assert_eq!(
            r.poll(t0 + 2 * MS),
            Some(RoamAction::RestartIce {
                local_ip: B,
                why: Why::AddressChanged
            })
        );
        // Not asked again while it runs.
        assert_eq!(r.poll(t0 + 3 * MS), None);
        r.restarted(t0 + 10 * MS, B);
        assert_eq!(r.local_ip(), B);
        r.heard(t0 + 50 * MS);
        assert_eq!(drain(&mut r, t0 + 300 * MS), vec![RoamAction::Ping]);
        // No route at all (the old network gone, the new one not up yet): wait for silence.
        r.route(None);
        r.heard(t0 + 300 * MS);
        assert_eq!(drain(&mut r, t0 + 400 * MS), vec![]);
    }

    #[test]
    fn ice_loss_restarts_and_an_ice_tcp_agent_reconnects_instead() {
        let t0 = Instant::now();
        let mut r = Roam::new(t0, A, true, RoamConfig::default());
        drain(&mut r, t0);
        r.heard(t0 + MS);
        r.ice_disconnected();
        assert_eq!(
            r.poll(t0 + 2 * MS),
            Some(RoamAction::RestartIce {
                local_ip: A,
                why: Why::IceDisconnected
            })
        );
        let mut tcp = Roam::new(t0, A, false, RoamConfig::default());
        drain(&mut tcp, t0);
        tcp.ice_disconnected();
        assert_eq!(
            tcp.poll(t0 + MS),
            Some(RoamAction::Reconnect {
                why: Why::IceDisconnected
            })
        );
        let mut tcp = Roam::new(t0, A, false, RoamConfig::default());
        tcp.route(Some(B));
        assert_eq!(
            tcp.poll(t0 + 2 * MS),
            Some(RoamAction::Reconnect {
                why: Why::AddressChanged
            })
        );
    }
}
