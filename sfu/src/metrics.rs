//! Prometheus metrics of the media plane, served as text on `/metrics`.
//!
//! One [`Metrics`] per process, registered in its own registry (other families can join it
//! through [`Metrics::registry`], or bring theirs with [`Metrics::with_registry`]). Labels are
//! low-cardinality on purpose: no room ids or participant ids (they would grow without bound and
//! room ids are robot ids).
//!
//! Not here: deciding what to count (the switchboard, the worker and signalling decide; this
//! only holds the counters).

// Each field's doc names its family, so a dashboard query leads back to the code.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The media plane's metric families. Cheap to clone: clones share the counters.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// `bedside_rooms`: rooms live on any worker.
    pub rooms: IntGauge,
    /// `bedside_sessions{role}`: admitted sessions, connected or not.
    pub sessions: IntGaugeVec,
    /// `bedside_session_transports{transport}`: sessions by their path (`udp`, `tcp`, `relay`),
    /// once their first packet after the ICE check arrived.
    pub transports: IntGaugeVec,
    /// `bedside_rtp_packets_in_total{kind}`.
    pub packets_in: IntCounterVec,
    /// `bedside_rtp_bytes_in_total{kind}`: payload bytes, not datagram bytes.
    pub bytes_in: IntCounterVec,
    /// `bedside_rtp_packets_out_total{kind}`: one per packet and viewer.
    pub packets_out: IntCounterVec,
    /// `bedside_udp_bytes_out_total`: everything sent, media or not.
    pub bytes_out: IntCounter,
    /// `bedside_udp_send_calls_total`: send syscalls; against `datagrams_out` it shows how much
    /// GSO batches.
    pub udp_sends: IntCounter,
    /// `bedside_udp_datagrams_out_total`.
    pub datagrams_out: IntCounter,
    /// `bedside_datagrams_dropped_total{reason}`: `unknown_source` and `unparseable` (no
    /// session saw them), `send_failed`.
    pub datagrams_dropped: IntCounterVec,
    /// `bedside_keyframe_requests_total`: PLIs that reached a robot, after coalescing.
    pub keyframe_requests: IntCounter,
    /// `bedside_nacks_total{direction}`: `received` (viewers lost our packets) or `sent` (we
    /// lost the robot's).
    pub nacks: IntCounterVec,
    /// `bedside_forward_latency_seconds`: robot packet read to its last viewer's send.
    pub forward_latency: Histogram,
    /// `bedside_control_frames_forwarded_total`, stop frames included.
    pub control_forwarded: IntCounter,
    /// `bedside_control_frames_dropped_total{reason}`: the control gate's labels, `no_robot`
    /// and `robot_channel_closed`.
    pub control_dropped: IntCounterVec,
    /// `bedside_lease_changes_total`.
    pub lease_changes: IntCounter,
    /// `bedside_estops_total`: latches through the SFU (not the robot's own button).
    pub estops: IntCounter,
    /// `bedside_session_failures_total{reason}`: sessions that ended other than by goodbye or
    /// replacement: `connect_timeout`, `room_busy`, `ice_disconnected`, `rtc_error`, `dead`,
    /// `panic`.
    pub session_failures: IntCounterVec,
    /// A worker caught a panic in its switchboard and started over with no sessions.
    pub worker_restarts: IntCounter,
    /// `bedside_ice_restarts_total`: sessions that restarted ICE by `PATCH` (a network change).
    pub ice_restarts: IntCounter,
    /// `bedside_signalling_requests_total{endpoint,status}`.
    pub signalling: IntCounterVec,
    /// `bedside_join_seconds{role}`: offer accepted to ICE and DTLS connected.
    pub join_seconds: HistogramVec,
}

impl Metrics {
    /// Families in a registry of their own.
    pub fn new() -> Self {
        Self::with_registry(Registry::new())
    }

    /// Families in a registry the caller owns, to serve them with its own on one `/metrics`.
    pub fn with_registry(registry: Registry) -> Self {
        let m = Metrics {
            rooms: IntGauge::new("bedside_rooms", "Rooms with at least one session")
                .unwrap_or_else(unreachable),
            sessions: gauge_vec("bedside_sessions", "Sessions by role", &["role"]),
            transports: gauge_vec(
                "bedside_session_transports",
                "Sessions by how they reach the node: udp, tcp (ICE-TCP) or relay (TURN)",
                &["transport"],
            ),
            packets_in: counter_vec(
                "bedside_rtp_packets_in_total",
                "RTP packets received, by kind",
                &["kind"],
            ),
            bytes_in: counter_vec(
                "bedside_rtp_bytes_in_total",
                "RTP payload bytes received, by kind",
                &["kind"],
            ),
            packets_out: counter_vec(
                "bedside_rtp_packets_out_total",
                "RTP packets forwarded to viewers, by kind",
                &["kind"],
            ),
            bytes_out: IntCounter::new("bedside_udp_bytes_out_total", "UDP bytes sent")
                .unwrap_or_else(unreachable),
            udp_sends: IntCounter::new(
                "bedside_udp_send_calls_total",
                "UDP send syscalls (one may carry several datagrams with GSO)",
            )
            .unwrap_or_else(unreachable),
            datagrams_out: IntCounter::new(
                "bedside_udp_datagrams_out_total",
                "UDP datagrams handed to the kernel",
            )
            .unwrap_or_else(unreachable),
            datagrams_dropped: counter_vec(
                "bedside_datagrams_dropped_total",
                "UDP datagrams dropped before reaching a session, by reason",
                &["reason"],
            ),
            keyframe_requests: IntCounter::new(
                "bedside_keyframe_requests_total",
                "Keyframe requests (PLI) sent to robots",
            )
            .unwrap_or_else(unreachable),
            nacks: counter_vec(
                "bedside_nacks_total",
                "NACKs: received from peers (they lost our packets) or sent to peers (we lost theirs)",
                &["direction"],
            ),
            forward_latency: Histogram::with_opts(
                HistogramOpts::new(
                    "bedside_forward_latency_seconds",
                    "Time from receiving a robot packet to handing it to the last viewer's session",
                )
                .buckets(vec![
                    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05,
                ]),
            )
            .unwrap_or_else(unreachable),
            control_forwarded: IntCounter::new(
                "bedside_control_frames_forwarded_total",
                "Control frames forwarded to robots (including stop frames)",
            )
            .unwrap_or_else(unreachable),
            control_dropped: counter_vec(
                "bedside_control_frames_dropped_total",
                "Control frames dropped, by reason",
                &["reason"],
            ),
            lease_changes: IntCounter::new("bedside_lease_changes_total", "Control lease changes")
                .unwrap_or_else(unreachable),
            estops: IntCounter::new("bedside_estops_total", "E-stops latched")
                .unwrap_or_else(unreachable),
            session_failures: counter_vec(
                "bedside_session_failures_total",
                "Sessions closed because of an error, by reason",
                &["reason"],
            ),
            worker_restarts: IntCounter::new(
                "bedside_worker_restarts_total",
                "Media workers that caught a panic and started over (their sessions reconnect)",
            )
            .unwrap_or_else(unreachable),
            ice_restarts: IntCounter::new(
                "bedside_ice_restarts_total",
                "Sessions that restarted ICE by PATCH (a network change), keeping the session",
            )
            .unwrap_or_else(unreachable),
            signalling: counter_vec(
                "bedside_signalling_requests_total",
                "WHIP/WHEP requests, by endpoint and status",
                &["endpoint", "status"],
            ),
            join_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "bedside_join_seconds",
                    "Time from WHIP/WHEP request to ICE+DTLS connected, by role",
                )
                .buckets(vec![0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5]),
                &["role"],
            )
            .unwrap_or_else(unreachable),
            registry,
        };
        m.register_all();
        m
    }

    fn register_all(&self) {
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(self.rooms.clone()),
            Box::new(self.sessions.clone()),
            Box::new(self.transports.clone()),
            Box::new(self.packets_in.clone()),
            Box::new(self.bytes_in.clone()),
            Box::new(self.packets_out.clone()),
            Box::new(self.bytes_out.clone()),
            Box::new(self.udp_sends.clone()),
            Box::new(self.datagrams_out.clone()),
            Box::new(self.datagrams_dropped.clone()),
            Box::new(self.keyframe_requests.clone()),
            Box::new(self.nacks.clone()),
            Box::new(self.forward_latency.clone()),
            Box::new(self.control_forwarded.clone()),
            Box::new(self.control_dropped.clone()),
            Box::new(self.lease_changes.clone()),
            Box::new(self.estops.clone()),
            Box::new(self.session_failures.clone()),
            Box::new(self.worker_restarts.clone()),
            Box::new(self.ice_restarts.clone()),
            Box::new(self.signalling.clone()),
            Box::new(self.join_seconds.clone()),
        ];
        for c in collectors {
            // Registering twice only happens if two Metrics share a registry: keep the first.
            let _ = self.registry.register(c);
        }
    }

    /// The registry, for other crates to add their families to.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Prometheus text exposition of everything in the registry.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(unreachable)
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).unwrap_or_else(unreachable)
}

/// Metric definitions are constants: a bad one is a programming error caught by the first test.
fn unreachable<T>(e: prometheus::Error) -> T {
    panic!("invalid metric definition: {e}")
}
