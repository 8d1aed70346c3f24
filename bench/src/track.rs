//! Matching what viewers receive to what the robot sent, without touching the payload.
//!
//! The robot and all viewers live in one process, so the robot keeps a send log: for every
//! video packet its sequence number, RTP timestamp and the wall-clock time just before the
//! `sendto`. A viewer learns once how the server renumbered the stream for it (Bedside rebases
//! sequence numbers per viewer, Janus rewrites both sequence numbers and timestamps): at the
//! first decrypted packet that starts a frame, the VP8 PictureID names the frame, the send log
//! names that frame's first sequence number, and the differences become the viewer's offsets.
//! From then on every packet is matched from its clear RTP header alone (SRTP does not encrypt
//! the header) and checked against the logged timestamp; a mismatch drops the sync until the
//! next frame start.
//!
//! Latency is the viewer's kernel receive time minus the robot's send time, both
//! `CLOCK_REALTIME`. Loss is counted over the robot sequence numbers sent inside the measurement
//! window, so a packet is either received (any time before the viewer stops) or lost.
//!
//! Not here: sockets or str0m (see `peer.rs`, `roles.rs`).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use crate::udp::{RtpHead, SeqExt};

const RING: usize = 1 << 18;
const PIDS: usize = 1 << 15;

struct Entry {
    seq: AtomicU64,
    ts: AtomicU32,
    sent_ns: AtomicU64,
}

/// The robot's video send log; read by every viewer.
pub struct SendLog {
    ring: Vec<Entry>,
    frame_first_seq: Vec<AtomicU64>,
}

impl Default for SendLog {
    fn default() -> Self {
        SendLog::new()
    }
}

impl SendLog {
    pub fn new() -> Self {
        SendLog {
            ring: (0..RING)
                .map(|_| Entry {
                    seq: AtomicU64::new(u64::MAX),
                    ts: AtomicU32::new(0),
                    sent_ns: AtomicU64::new(0),
                })
                .collect(),
            frame_first_seq: (0..PIDS).map(|_| AtomicU64::new(u64::MAX)).collect(),
        }
    }

    /// The robot wrote packet `seq` of a frame (first of its frame if `first`).
    pub fn written(&self, seq: u64, ts: u32, picture_id: u16, first: bool) {
        let e = &self.ring[seq as usize % RING];
        e.sent_ns.store(0, Relaxed);
        e.ts.store(ts, Relaxed);
        e.seq.store(seq, Relaxed);
        if first {
            self.frame_first_seq[picture_id as usize % PIDS].store(seq, Relaxed);
        }
    }

    /// Packet `seq` is about to leave the robot's socket.
    pub fn sent(&self, seq: u64, ns: u64) {
        let e = &self.ring[seq as usize % RING];
        if e.seq.load(Relaxed) == seq && e.sent_ns.load(Relaxed) == 0 {
            e.sent_ns.store(ns, Relaxed);
        }
    }

    /// (RTP timestamp, send time) of packet `seq`, if it is still in the log and was sent.
    pub fn get(&self, seq: u64) -> Option<(u32, u64)> {
        let e = &self.ring[seq as usize % RING];
        if e.seq.load(Relaxed) != seq {
            return None;
        }
        let sent = e.sent_ns.load(Relaxed);
        (sent != 0).then(|| (e.ts.load(Relaxed), sent))
    }

    pub fn frame_start(&self, picture_id: u16) -> Option<u64> {
        let s = self.frame_first_seq[picture_id as usize % PIDS].load(Relaxed);
        (s != u64::MAX).then_some(s)
    }

    /// Sequence numbers whose send time is in `[t0, t1)`: (first, last+1), or None.
    pub fn seq_range(&self, t0: u64, t1: u64, newest: u64) -> Option<(u64, u64)> {
        let mut lo = None;
        let mut hi = None;
        let oldest = newest.saturating_sub(RING as u64 - 1);
        for seq in oldest..=newest {
            if let Some((_, sent)) = self.get(seq) {
                if sent >= t0 && sent < t1 {
                    lo.get_or_insert(seq);
                    hi = Some(seq + 1);
                }
            }
        }
        Some((lo?, hi?))
    }
}

/// The measurement window, shared by everyone: `[t0, t1)` in wall-clock ns (0, 0 = none yet).
#[derive(Default)]
pub struct Window {
    pub t0: AtomicU64,
    pub t1: AtomicU64,
}

impl Window {
    pub fn contains(&self, ns: u64) -> bool {
        ns >= self.t0.load(Relaxed) && ns < self.t1.load(Relaxed)
    }
}

/// One viewer's view of the stream.
#[derive(Default)]
pub struct RxTrack {
    pub video_ssrc: Option<u32>,
    ext: SeqExt,
    /// The datagram being processed: (extended seq, RTP timestamp, 16-bit seq).
    cur: Option<(u64, u32, u16)>,
    /// robot_seq = ext_seq + seq_off; robot_ts = ts + ts_off.
    sync: Option<(u64, u32)>,
    pub syncs: u32,
    pub mismatches: u64,
    pub first_keyframe_ns: Option<u64>,
    pub connected_ns: Option<u64>,
    /// (robot seq, latency ns) for packets the robot sent inside the window.
    pub samples: Vec<(u64, u32)>,
    /// RTP datagrams (any SSRC) received inside the window.
    pub rtp_in_window: u64,
}

impl RxTrack {
    pub fn synced(&self) -> bool {
        self.sync.is_some()
    }

    /// A datagram arrived. Matches it if it is video and we are in sync; returns whether it is
    /// RTP at all.
    pub fn datagram(
        &mut self,
        head: Option<RtpHead>,
        rx_ns: u64,
        log: &SendLog,
        w: &Window,
    ) -> bool {
        self.cur = None;
        let Some(h) = head else { return false };
        if w.contains(rx_ns) {
            self.rtp_in_window += 1;
        }
        if self.video_ssrc.is_some_and(|s| s != h.ssrc) {
            return true;
        }
        let ext = self.ext.extend(h.seq);
        self.cur = Some((ext, h.ts, h.seq));
        let Some((seq_off, ts_off)) = self.sync else {
            return true;
        };
        let robot_seq = ext.wrapping_add(seq_off);
        match log.get(robot_seq) {
            Some((ts, sent)) if ts == h.ts.wrapping_add(ts_off) => {
                self.matched(robot_seq, sent, rx_ns, w)
            }
            Some(_) => {
                self.mismatches += 1;
                self.sync = None;
            }
            // Not sent yet (cannot happen) or already overwritten: leave the sync alone.
            None => {}
        }
        true
    }

    fn matched(&mut self, robot_seq: u64, sent: u64, rx_ns: u64, w: &Window) {
        if w.contains(sent) {
            let lat = rx_ns.saturating_sub(sent).min(u32::MAX as u64) as u32;
            self.samples.push((robot_seq, lat));
        }
    }

    /// A decrypted video packet (from str0m) for the datagram last passed to [`datagram`].
    pub fn video_payload(
        &mut self,
        ssrc: u32,
        seq16: u16,
        payload: &[u8],
        rx_ns: u64,
        log: &SendLog,
    ) {
        if self.first_keyframe_ns.is_none()
            && bedside_sfu::keyframe::is_keyframe_start(
                bedside_sfu::keyframe::VideoCodec::Vp8,
                payload,
            )
        {
            self.first_keyframe_ns = Some(rx_ns);
        }
        if self.sync.is_some() {
            return;
        }
        let Some((ext, ts, cur16)) = self.cur else {
            return;
        };
        if cur16 != seq16 {
            return;
        }
        let Some((pid, true)) = crate::fixture::vp8_picture_id(payload) else {
            return;
        };
        let Some(robot_seq) = log.frame_start(pid) else {
            return;
        };
        let Some((robot_ts, _)) = log.get(robot_seq) else {
            return;
        };
        self.video_ssrc = Some(ssrc);
        self.sync = Some((robot_seq.wrapping_sub(ext), robot_ts.wrapping_sub(ts)));
        self.syncs += 1;
    }

    /// Distinct robot sequence numbers received in `[lo, hi)`.
    pub fn received_in(&self, lo: u64, hi: u64) -> u64 {
        let n = hi.saturating_sub(lo) as usize;
        let mut seen = vec![false; n];
        let mut count = 0;
        for &(s, _) in &self.samples {
            if s >= lo && s < hi && !seen[(s - lo) as usize] {
                seen[(s - lo) as usize] = true;
                count += 1;
            }
        }
        count
    }
}

/// Control frames: the controller's send times by sequence number; the robot's measurements.
pub struct ControlLog {
    sent: Vec<AtomicU64>,
    seqs: Vec<AtomicU32>,
    pub samples: std::sync::Mutex<Vec<(u64, u64)>>,
    pub received: AtomicU64,
    pub sent_count: AtomicU64,
}

impl Default for ControlLog {
    fn default() -> Self {
        ControlLog {
            sent: (0..4096).map(|_| AtomicU64::new(0)).collect(),
            seqs: (0..4096).map(|_| AtomicU32::new(u32::MAX)).collect(),
            samples: Default::default(),
            received: AtomicU64::new(0),
            sent_count: AtomicU64::new(0),
        }
    }
}

impl ControlLog {
    pub fn sent(&self, seq: u32, ns: u64) {
        let i = seq as usize % 4096;
        self.sent[i].store(ns, Relaxed);
        self.seqs[i].store(seq, Relaxed);
        self.sent_count.fetch_add(1, Relaxed);
    }

    /// The robot received frame `seq` at `rx_ns`.
    pub fn received(&self, seq: u32, rx_ns: u64) {
        let i = seq as usize % 4096;
        if self.seqs[i].load(Relaxed) != seq {
            return;
        }
        let sent = self.sent[i].load(Relaxed);
        self.received.fetch_add(1, Relaxed);
        if let Ok(mut s) = self.samples.lock() {
            s.push((sent, rx_ns.saturating_sub(sent)));
        }
    }

    /// Latencies (ns) of frames sent in `[t0, t1)`, and how many were sent then.
    pub fn between(&self, t0: u64, t1: u64) -> Vec<u64> {
        self.samples
            .lock()
            .map(|s| {
                s.iter()
                    .filter(|(sent, _)| *sent >= t0 && *sent < t1)
                    .map(|(_, l)| *l)
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(seq: u16, ts: u32) -> Option<RtpHead> {
        Some(RtpHead {
            pt: 96,
            seq,
            ts,
            ssrc: 42,
        })
    }

    #[test]
    fn a_viewer_syncs_on_a_frame_start_and_then_matches_by_header() {
        let log = SendLog::new();
        let w = Window::default();
        w.t1.store(u64::MAX, Relaxed);
        // Robot: frame pid 7 at seqs 1000..1003, ts 5000; frame 8 at 1003..1005, ts 8000.
        for (seq, ts, pid, first) in [
            (1000, 5000, 7, true),
            (1001, 5000, 7, false),
            (1002, 5000, 7, false),
            (1003, 8000, 8, true),
            (1004, 8000, 8, false),
        ] {
            log.written(seq, ts, pid, first);
            log.sent(seq, 1_000 + seq);
        }
        let mut v = RxTrack::default();
        // The server renumbered: seq 1000 -> 1, ts 5000 -> 0. First packet mid-frame: no sync.
        v.datagram(head(2, 0), 2_000, &log, &w);
        let mid = crate::fixture::packetize_vp8(&[1u8; 3000], 7);
        v.video_payload(42, 2, &mid[1], 2_000, &log);
        assert!(!v.synced());
        // Frame 8 starts: sync.
        v.datagram(head(4, 3000), 3_000, &log, &w);
        let p = crate::fixture::packetize_vp8(&[1u8; 100], 8);
        v.video_payload(42, 4, &p[0], 3_000, &log);
        assert!(v.synced());
        v.datagram(head(5, 3000), 3_500, &log, &w);
        assert_eq!(v.samples, vec![(1004, (3_500 - 2_004) as u32)]);
        // A header that does not fit the log drops the sync.
        v.datagram(head(3, 777), 4_000, &log, &w);
        assert!(!v.synced());
        assert_eq!(v.mismatches, 1);
        assert_eq!(v.received_in(1000, 1005), 1);
        assert_eq!(log.seq_range(2_001, 2_004, 1004), Some((1001, 1004)));
    }
}

#[cfg(test)]
mod sizes {
    /// docs/benchmarks.md sizes the SFU's per-viewer retransmission cache from the size of
    /// str0m's `RtpPacket` (one per packet sent; str0m keeps up to 2000 or 3 s per video
    /// stream). A str0m upgrade that changes it makes that estimate stale: this says so.
    #[test]
    fn rtp_packet_size_is_the_one_the_memory_estimate_uses() {
        let doc = include_str!("../../docs/benchmarks.md");
        let documented: usize = doc
            .split("-byte `RtpPacket`")
            .next()
            .and_then(|before| before.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .expect("docs/benchmarks.md names the size of an `RtpPacket` (\"N-byte `RtpPacket`\")");
        assert_eq!(
            std::mem::size_of::<str0m::rtp::RtpPacket>(),
            documented,
            "str0m's RtpPacket changed size: update the retransmission cache estimate in \
             docs/benchmarks.md"
        );
    }
}
