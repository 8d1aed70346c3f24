//! Keeps one outgoing track continuous while its source changes underneath.
//!
//! When the robot roams between Wi-Fi access points it reconnects as a new session with a new
//! SSRC, new sequence numbers and a new RTP clock origin. Viewers must not notice: they keep
//! their sessions and their decoders see one stream. [`TrackForwarder`] maps each source packet's
//! (extended sequence number, timestamp) onto one continuous output numbering: gaps and
//! reordering inside a source are preserved (so NACK still works), and at a source switch the
//! output continues at `last + 1` with the timestamp advanced by the wall-clock time that passed.
//!
//! [`DownTrack`] rebases that room-wide numbering per viewer, because str0m wants a new
//! receiver's first sequence number below 65 536 (no out-of-band rollover counter in WebRTC).
//!
//! Not here: payload type mapping or SSRCs of the viewer side (str0m owns those per session).

use std::time::Instant;

/// Identifies one incoming stream: which session sent it and with what SSRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source {
    /// The publisher's session id: a reconnecting robot may reuse its SSRC.
    pub session: u64,
    /// The stream's SSRC: a robot may restart its encoder within one session.
    pub ssrc: u32,
}

/// One room track's continuous numbering across publishers. See the module docs.
#[derive(Debug)]
pub struct TrackForwarder {
    clock_rate: u32,
    source: Option<Source>,
    seq_offset: u64,
    ts_offset: u32,
    last_out: Option<Last>,
}

#[derive(Debug, Clone, Copy)]
struct Last {
    seq: u64,
    ts: u32,
    at: Instant,
}

/// Where one packet goes in the continuous output numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapped {
    /// Extended output sequence number (viewers' [`DownTrack`]s rebase it).
    pub seq: u64,
    /// Output RTP timestamp.
    pub ts: u32,
    /// This packet is the first of a new source (viewers need a keyframe again).
    pub switched: bool,
}

impl TrackForwarder {
    /// A track whose RTP clock runs at `clock_rate` Hz (90 000 for video, 48 000 for Opus),
    /// needed to advance timestamps across a switch by the time that passed.
    pub fn new(clock_rate: u32) -> Self {
        TrackForwarder {
            clock_rate,
            source: None,
            seq_offset: 0,
            ts_offset: 0,
            last_out: None,
        }
    }

    /// The stream currently mapped, if the publisher has not gone.
    pub fn source(&self) -> Option<Source> {
        self.source
    }

    /// Map one packet from `src`. Returns `None` for a packet that would land at or before the
    /// output position where the current source began (a late straggler from before a switch).
    pub fn map(&mut self, src: Source, in_seq: u64, in_ts: u32, now: Instant) -> Option<Mapped> {
        let mut switched = false;
        if self.source != Some(src) {
            switched = true;
            self.source = Some(src);
            match self.last_out {
                Some(last) => {
                    // Continue right after the last packet we sent, and let the media clock
                    // advance by the wall-clock gap so players do not see time stand still.
                    self.seq_offset = (last.seq + 1).wrapping_sub(in_seq);
                    let gap_ms = now.saturating_duration_since(last.at).as_millis() as u64;
                    let gap_ticks = (gap_ms.max(1) * self.clock_rate as u64 / 1000) as u32;
                    self.ts_offset = last.ts.wrapping_add(gap_ticks).wrapping_sub(in_ts);
                }
                None => {
                    self.seq_offset = 1u64.wrapping_sub(in_seq);
                    self.ts_offset = 0;
                }
            }
        }
        let seq = in_seq.wrapping_add(self.seq_offset);
        // A u64 that wrapped "below zero" is a packet from before this source's first one.
        if seq > (1 << 62) {
            return None;
        }
        let ts = in_ts.wrapping_add(self.ts_offset);
        let newer = self.last_out.is_none_or(|l| seq > l.seq);
        if newer {
            self.last_out = Some(Last { seq, ts, at: now });
        }
        Some(Mapped { seq, ts, switched })
    }

    /// The source went away; the next packet from anyone is a switch.
    pub fn source_gone(&mut self, session: u64) {
        if self.source.is_some_and(|s| s.session == session) {
            self.source = None;
        }
    }
}

/// One viewer's rebasing of a room track's numbering.
#[derive(Debug, Default, Clone, Copy)]
pub struct DownTrack {
    base: Option<u64>,
}

impl DownTrack {
    /// The viewer-side sequence number for room sequence `seq`, starting at 1 for the first
    /// packet this viewer gets. Older packets than that first one are not sent (`None`).
    pub fn seq(&mut self, seq: u64) -> Option<u64> {
        let base = *self.base.get_or_insert(seq.saturating_sub(1));
        seq.checked_sub(base).filter(|s| *s > 0)
    }

    /// The viewer has been sent a packet of this track.
    pub fn started(&self) -> bool {
        self.base.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const A: Source = Source {
        session: 1,
        ssrc: 111,
    };
    const B: Source = Source {
        session: 2,
        ssrc: 222,
    };

    #[test]
    fn continuous_across_a_source_switch() {
        let t0 = Instant::now();
        let mut f = TrackForwarder::new(90_000);
        let a1 = f.map(A, 5000, 1_000_000, t0).unwrap();
        assert!(a1.switched);
        assert_eq!(a1.seq, 1);
        let a2 = f
            .map(A, 5001, 1_003_000, t0 + Duration::from_millis(33))
            .unwrap();
        assert_eq!((a2.seq, a2.ts.wrapping_sub(a1.ts)), (2, 3000));
        // Robot reconnects 500 ms later with new SSRC, seq and clock origin.
        let b1 = f
            .map(B, 40_000, 77, t0 + Duration::from_millis(533))
            .unwrap();
        assert!(b1.switched);
        assert_eq!(b1.seq, 3);
        assert_eq!(b1.ts.wrapping_sub(a2.ts), 45_000);
        let b2 = f
            .map(B, 40_001, 3077, t0 + Duration::from_millis(566))
            .unwrap();
        assert_eq!((b2.seq, b2.switched), (4, false));
        assert_eq!(b2.ts.wrapping_sub(b1.ts), 3000);
    }

    #[test]
    fn gaps_and_reordering_are_preserved() {
        let t0 = Instant::now();
        let mut f = TrackForwarder::new(90_000);
        assert_eq!(f.map(A, 10, 0, t0).unwrap().seq, 1);
        assert_eq!(f.map(A, 13, 0, t0).unwrap().seq, 4);
        assert_eq!(f.map(A, 12, 0, t0).unwrap().seq, 3);
        // A packet older than the source's first is refused rather than wrapped.
        assert_eq!(f.map(A, 8, 0, t0), None);
    }

    #[test]
    fn down_track_rebases_to_small_numbers() {
        let mut d = DownTrack::default();
        assert!(!d.started());
        assert_eq!(d.seq(1_000_000), Some(1));
        assert_eq!(d.seq(1_000_002), Some(3));
        assert_eq!(d.seq(999_999), None);
        assert_eq!(d.seq(1_000_001), Some(2));
    }
}
