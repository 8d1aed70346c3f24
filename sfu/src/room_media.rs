//! Where a room's media goes: the robot's tracks to its viewers, with continuous numbering and
//! keyframe gating.
//!
//! A viewer gets audio at once and video from the next keyframe start on (an interframe is
//! useless to a decoder that has not seen its keyframe); a new publisher (the robot reconnecting)
//! sends every viewer back to waiting. Keyframe requests are coalesced: a join or a doctor's
//! decoder may ask at most once per `keyframe_interval`; a student's decoder only once per
//! `observer_keyframe_interval`, so a class of students cannot make the robot's encoder spend
//! the driver's bits on keyframes.
//!
//! Not here: who may be in the room or what they may do ([`crate::room`]), str0m or SSRCs of the
//! viewer side (`peer.rs`).

use std::time::{Duration, Instant};

use bedside_proto::Role;

use crate::forwarder::{Source, TrackForwarder};
use crate::keyframe::KeyframeCoalescer;
use crate::SessionId;

/// Audio or video; a room forwards one of each from its robot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    /// Opus.
    Audio = 0,
    /// VP8 or H.264.
    Video = 1,
}

/// What the room needs to know of one publisher packet.
#[derive(Debug, Clone, Copy)]
pub struct RtpIn {
    /// Which track.
    pub kind: TrackKind,
    /// The publisher's SSRC.
    pub ssrc: u32,
    /// Extended (rollover-free) sequence number.
    pub seq: u64,
    /// RTP timestamp.
    pub ts: u32,
    /// The payload starts a keyframe (see `keyframe.rs`).
    pub keyframe_start: bool,
}

/// Where one publisher packet goes.
#[derive(Debug)]
pub struct Fanout<'a> {
    /// Room-wide continuous sequence number.
    pub seq: u64,
    /// Room-wide continuous timestamp.
    pub ts: u32,
    /// The sessions to write it to.
    pub targets: &'a [SessionId],
}

/// See the module docs.
#[derive(Debug)]
pub struct RoomMedia {
    publisher: Option<SessionId>,
    video: TrackForwarder,
    audio: TrackForwarder,
    /// Viewers receiving video (they have seen a keyframe start).
    video_live: Vec<SessionId>,
    /// Viewers waiting for the next keyframe to start video.
    video_waiting: Vec<SessionId>,
    /// Viewers receiving audio.
    audio_live: Vec<SessionId>,
    keyframes: KeyframeCoalescer,
    /// Students' decoders ask through this one first.
    observer_keyframes: KeyframeCoalescer,
}

impl RoomMedia {
    /// No publisher, no viewers.
    pub fn new(keyframe_interval: Duration, observer_keyframe_interval: Duration) -> Self {
        RoomMedia {
            publisher: None,
            video: TrackForwarder::new(90_000),
            audio: TrackForwarder::new(48_000),
            video_live: Vec::new(),
            video_waiting: Vec::new(),
            audio_live: Vec::new(),
            keyframes: KeyframeCoalescer::new(keyframe_interval),
            observer_keyframes: KeyframeCoalescer::new(observer_keyframe_interval),
        }
    }

    /// The robot's session, if one publishes.
    pub fn publisher(&self) -> Option<SessionId> {
        self.publisher
    }

    /// A robot session became the publisher.
    pub fn set_publisher(&mut self, id: SessionId) {
        self.publisher = Some(id);
        // The new encoder owes us nothing.
        self.keyframes.reset();
    }

    /// A viewer joined: audio now, video from the next keyframe. True if the robot should be
    /// asked for one now.
    pub fn add_viewer(&mut self, id: SessionId, now: Instant) -> bool {
        self.video_waiting.push(id);
        self.audio_live.push(id);
        self.publisher.is_some() && self.keyframes.request(now)
    }

    /// A session left (viewer or publisher).
    pub fn remove(&mut self, id: SessionId) {
        self.video_live.retain(|s| *s != id);
        self.video_waiting.retain(|s| *s != id);
        self.audio_live.retain(|s| *s != id);
        if self.publisher == Some(id) {
            self.publisher = None;
            self.video.source_gone(id.0);
            self.audio.source_gone(id.0);
        }
    }

    /// A packet from `from`: where it goes and with what numbering, or `None` to drop it (not
    /// the publisher, or a straggler from before a switch). The bool says whether the robot
    /// should be asked for a keyframe now.
    pub fn on_rtp(
        &mut self,
        from: SessionId,
        pkt: RtpIn,
        now: Instant,
    ) -> (Option<Fanout<'_>>, bool) {
        if self.publisher != Some(from) {
            return (None, false);
        }
        let src = Source {
            session: from.0,
            ssrc: pkt.ssrc,
        };
        match pkt.kind {
            TrackKind::Audio => match self.audio.map(src, pkt.seq, pkt.ts, now) {
                Some(m) => (
                    Some(Fanout {
                        seq: m.seq,
                        ts: m.ts,
                        targets: &self.audio_live,
                    }),
                    false,
                ),
                None => (None, false),
            },
            TrackKind::Video => {
                let Some(m) = self.video.map(src, pkt.seq, pkt.ts, now) else {
                    return (None, false);
                };
                if m.switched {
                    // A new encoder: everybody needs its keyframe before more video.
                    self.video_waiting.append(&mut self.video_live);
                }
                let mut ask = false;
                if pkt.keyframe_start {
                    self.video_live.append(&mut self.video_waiting);
                    // Whoever was waiting has it now: a deferred request would only make the
                    // encoder spend bits on a keyframe nobody needs.
                    self.keyframes.satisfied(now);
                } else if !self.video_waiting.is_empty() {
                    ask = self.keyframes.request(now);
                }
                (
                    Some(Fanout {
                        seq: m.seq,
                        ts: m.ts,
                        targets: &self.video_live,
                    }),
                    ask,
                )
            }
        }
    }

    /// A viewer's decoder asked for a keyframe. True if the robot should be asked now.
    pub fn on_keyframe_request(&mut self, role: Role, now: Instant) -> bool {
        if self.publisher.is_none() {
            return false;
        }
        if role == Role::Observer && !self.observer_keyframes.request(now) {
            // Dropped, not deferred: a student's decoder asks again if it still needs one.
            return false;
        }
        self.keyframes.request(now)
    }

    /// Time passed. True if a deferred request should go out now.
    pub fn poll(&mut self, now: Instant) -> bool {
        // The students' coalescer never defers anything worth sending (see above).
        self.observer_keyframes.poll(now);
        self.keyframes.poll(now) && self.publisher.is_some()
    }

    /// When [`poll`](Self::poll) next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.keyframes.next_deadline()
    }
}
