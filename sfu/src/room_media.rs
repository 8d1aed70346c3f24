//! Where a room's media goes: the robot's camera and microphone to everyone, and the doctors'
//! microphones and cameras to the robot and to each other, on receive slots negotiated once.
//!
//! **The robot's tracks** go to every session that receives them, with one room-wide continuous
//! numbering (the robot may reconnect with new SSRCs underneath). A viewer gets audio at once and
//! video from the next keyframe start on; a new publisher sends everyone back to waiting.
//!
//! **The doctors' tracks** go through *slots*: a session's extra receive m-lines, each carrying
//! one source at a time, switched without renegotiation (the receiving peer renumbers each slot
//! continuously and rewrites VP8 picture ids, see `peer.rs`):
//! - the robot's first video slot is the **presenter**: the lease holder's camera; when nobody
//!   drives, the booking's doctor (a member who may drive), else the doctor who spoke last;
//! - audio slots carry the loudest doctors (see [`crate::speakers`]), never the receiver
//!   itself (mix-minus by selection, nothing is decoded or mixed);
//! - a doctor's video slots carry other doctors' cameras, the one speaking first.
//!
//! A video slot switched to a new source waits for that source's keyframe (and asks for one).
//! Keyframe requests are coalesced per source: a join or a doctor's decoder may ask at most once
//! per `keyframe_interval`; a student's decoder only once per `observer_keyframe_interval`, so a
//! class of students cannot make the robot's encoder spend the driver's bits on keyframes.
//!
//! Not here: who may be in the room or what they may do ([`crate::room`]), str0m, payload types
//! or the receiving side's numbering (`peer.rs`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bedside_proto::Role;

use crate::forwarder::{Source, TrackForwarder};
use crate::keyframe::KeyframeCoalescer;
use crate::speakers::{SlotSet, SpeakerConfig, Speakers};
use crate::SessionId;

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    /// Opus.
    Audio = 0,
    /// VP8 or H.264.
    Video = 1,
}

/// What a session's m-lines let it receive and send (see `docs/protocol.md`, "m-lines").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Layout {
    /// It receives the robot's video (a viewer's first receive-only video m-line).
    pub robot_video: bool,
    /// It receives the robot's audio (a viewer's first receive-only audio m-line).
    pub robot_audio: bool,
    /// Doctors' audio slots it receives.
    pub audio_slots: u8,
    /// Video slots it receives (the presenter, for a robot; other doctors, for a doctor).
    pub video_slots: u8,
    /// It sends its own audio.
    pub sends_audio: bool,
    /// It sends its own video.
    pub sends_video: bool,
}

/// What the room needs to know of one incoming packet.
#[derive(Debug, Clone, Copy)]
pub struct RtpIn {
    /// Which track.
    pub kind: TrackKind,
    /// The sender's SSRC.
    pub ssrc: u32,
    /// Extended (rollover-free) sequence number.
    pub seq: u64,
    /// RTP timestamp.
    pub ts: u32,
    /// The payload starts a keyframe (see `keyframe.rs`).
    pub keyframe_start: bool,
    /// RFC 6464 audio level, dBov (0 loudest, -127 silence), when the packet carries one.
    pub audio_level: Option<i8>,
}

/// Where one packet goes.
#[derive(Debug)]
pub enum Fanout<'a> {
    /// A robot packet: to these sessions' robot line of its kind, numbered room-wide.
    Robot {
        /// Room-wide continuous sequence number.
        seq: u64,
        /// Room-wide continuous timestamp.
        ts: u32,
        /// The sessions to write it to.
        targets: &'a [SessionId],
    },
    /// A doctor's packet: to these (session, slot index) pairs of its kind; each receiving
    /// slot numbers it on.
    Slots {
        /// The receiving slots.
        targets: &'a [(SessionId, u8)],
    },
}

/// What one receiver's slots carry now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotsNow {
    /// The receiving session.
    pub receiver: SessionId,
    /// Its audio slots, in m-line order.
    pub audio: Vec<Option<SessionId>>,
    /// Its video slots, in m-line order.
    pub video: Vec<Option<SessionId>>,
}

/// One receiving session's slots.
#[derive(Debug, Clone)]
struct Receiver {
    role: Role,
    audio: SlotSet,
    video: SlotSet,
    /// Per video slot: its current source's keyframe has gone out (the decoder can start).
    video_live: Vec<bool>,
}

/// What a doctor publishes.
#[derive(Debug, Clone, Copy, Default)]
struct Publishing {
    audio: bool,
    video: bool,
    audio_muted: bool,
    video_muted: bool,
}

/// Who drives and who may, as the room tells it; the presenter depends on them.
#[derive(Debug, Clone, Default)]
pub struct Control {
    /// The lease holder.
    pub holder: Option<SessionId>,
    /// Members who may take a free lease (the booking's doctor), in join order.
    pub may_drive: Vec<SessionId>,
}

/// See the module docs.
#[derive(Debug)]
pub struct RoomMedia {
    publisher: Option<SessionId>,
    video: TrackForwarder,
    audio: TrackForwarder,
    /// Sessions receiving the robot's video (they have seen a keyframe start).
    video_live: Vec<SessionId>,
    /// Sessions waiting for the robot's next keyframe.
    video_waiting: Vec<SessionId>,
    /// Sessions receiving the robot's audio.
    audio_live: Vec<SessionId>,
    keyframes: KeyframeCoalescer,
    /// Students' decoders ask through this one first.
    observer_keyframes: KeyframeCoalescer,
    keyframe_interval: Duration,
    /// Doctors who publish, in join order.
    doctors: Vec<SessionId>,
    publishing: HashMap<SessionId, Publishing>,
    receivers: HashMap<SessionId, Receiver>,
    /// Receivers in join order (stable iteration).
    receiver_order: Vec<SessionId>,
    speakers: Speakers,
    /// Per doctor publishing video: coalesced keyframe requests.
    doctor_keyframes: HashMap<SessionId, KeyframeCoalescer>,
    /// Doctors' video sources that a switched slot is waiting for.
    wants_keyframe: Vec<SessionId>,
    control: Control,
    /// Receivers whose slots changed since [`take_changed`](Self::take_changed).
    changed: Vec<SessionId>,
    targets: Vec<(SessionId, u8)>,
    next_tick: Option<Instant>,
}

/// How often slots are reconsidered while doctors publish audio.
const TICK: Duration = Duration::from_millis(100);

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
            keyframe_interval,
            doctors: Vec::new(),
            publishing: HashMap::new(),
            receivers: HashMap::new(),
            receiver_order: Vec::new(),
            speakers: Speakers::new(SpeakerConfig::default()),
            doctor_keyframes: HashMap::new(),
            wants_keyframe: Vec::new(),
            control: Control::default(),
            changed: Vec::new(),
            targets: Vec::new(),
            next_tick: None,
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

    /// A session joined with this role and layout. True if the robot should be asked for a
    /// keyframe now (a new viewer of its video).
    pub fn add(&mut self, id: SessionId, role: Role, layout: Layout, now: Instant) -> bool {
        let mut ask = false;
        if role != Role::Robot {
            if layout.robot_video {
                self.video_waiting.push(id);
                ask = self.publisher.is_some() && self.keyframes.request(now);
            }
            if layout.robot_audio {
                self.audio_live.push(id);
            }
        }
        if role == Role::Doctor && (layout.sends_audio || layout.sends_video) {
            self.doctors.push(id);
            self.publishing.insert(
                id,
                Publishing {
                    audio: layout.sends_audio,
                    video: layout.sends_video,
                    ..Publishing::default()
                },
            );
            if layout.sends_video {
                self.doctor_keyframes
                    .insert(id, KeyframeCoalescer::new(self.keyframe_interval));
            }
        }
        if layout.audio_slots > 0 || layout.video_slots > 0 {
            self.receivers.insert(
                id,
                Receiver {
                    role,
                    audio: SlotSet::new(layout.audio_slots.into()),
                    video: SlotSet::new(layout.video_slots.into()),
                    video_live: vec![false; layout.video_slots.into()],
                },
            );
            self.receiver_order.push(id);
        }
        self.reassign(now);
        ask
    }

    /// A session left (viewer, doctor or publisher).
    pub fn remove(&mut self, id: SessionId, now: Instant) {
        self.video_live.retain(|s| *s != id);
        self.video_waiting.retain(|s| *s != id);
        self.audio_live.retain(|s| *s != id);
        if self.publisher == Some(id) {
            self.publisher = None;
            self.video.source_gone(id.0);
            self.audio.source_gone(id.0);
        }
        self.doctors.retain(|s| *s != id);
        self.publishing.remove(&id);
        self.speakers.remove(id);
        self.doctor_keyframes.remove(&id);
        self.wants_keyframe.retain(|s| *s != id);
        self.receivers.remove(&id);
        self.receiver_order.retain(|s| *s != id);
        self.changed.retain(|s| *s != id);
        self.control.may_drive.retain(|s| *s != id);
        if self.control.holder == Some(id) {
            self.control.holder = None;
        }
        self.reassign(now);
    }

    /// Who drives and who may changed: the robot's presenter may change.
    pub fn set_control(&mut self, control: Control, now: Instant) {
        self.control = control;
        self.reassign(now);
    }

    /// A doctor muted or unmuted its microphone or camera.
    pub fn set_muted(&mut self, id: SessionId, audio: bool, video: bool, now: Instant) {
        if let Some(p) = self.publishing.get_mut(&id) {
            p.audio_muted = audio;
            p.video_muted = video;
        }
        self.reassign(now);
    }

    /// A packet from `from`: where it goes, or `None` to drop it (a session that does not
    /// publish this kind, or a straggler from before a switch); and whether `from`'s encoder
    /// should be asked for a keyframe now (someone waits for one).
    pub fn on_rtp(
        &mut self,
        from: SessionId,
        pkt: RtpIn,
        now: Instant,
    ) -> (Option<Fanout<'_>>, bool) {
        if self.publisher == Some(from) {
            return self.robot_rtp(from, pkt, now);
        }
        let Some(p) = self.publishing.get(&from) else {
            return (None, false);
        };
        let sends = match pkt.kind {
            TrackKind::Audio => p.audio,
            TrackKind::Video => p.video,
        };
        if !sends {
            return (None, false);
        }
        let mut ask = false;
        self.targets.clear();
        match pkt.kind {
            TrackKind::Audio => {
                if let Some(level) = pkt.audio_level {
                    self.speakers.on_level(from, level, now);
                }
                for r in &self.receiver_order {
                    let slot = self.receivers.get(r).and_then(|rx| rx.audio.carries(from));
                    if let Some(slot) = slot {
                        self.targets.push((*r, slot as u8));
                    }
                }
            }
            TrackKind::Video => {
                for r in &self.receiver_order {
                    let Some(rx) = self.receivers.get_mut(r) else {
                        continue;
                    };
                    let Some(slot) = rx.video.carries(from) else {
                        continue;
                    };
                    if !rx.video_live[slot] {
                        if !pkt.keyframe_start {
                            continue;
                        }
                        rx.video_live[slot] = true;
                    }
                    self.targets.push((*r, slot as u8));
                }
                if pkt.keyframe_start {
                    tracing::debug!(session = %from, receivers = self.targets.len(), "doctor keyframe forwarded");
                    if let Some(k) = self.doctor_keyframes.get_mut(&from) {
                        k.satisfied(now);
                    }
                } else if self.waits_for(from) {
                    ask = self
                        .doctor_keyframes
                        .get_mut(&from)
                        .is_some_and(|k| k.request(now));
                }
            }
        }
        (
            Some(Fanout::Slots {
                targets: &self.targets,
            }),
            ask,
        )
    }

    fn robot_rtp(
        &mut self,
        from: SessionId,
        pkt: RtpIn,
        now: Instant,
    ) -> (Option<Fanout<'_>>, bool) {
        let src = Source {
            session: from.0,
            ssrc: pkt.ssrc,
        };
        match pkt.kind {
            TrackKind::Audio => match self.audio.map(src, pkt.seq, pkt.ts, now) {
                Some(m) => (
                    Some(Fanout::Robot {
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
                    Some(Fanout::Robot {
                        seq: m.seq,
                        ts: m.ts,
                        targets: &self.video_live,
                    }),
                    ask,
                )
            }
        }
    }

    /// Does any video slot wait for `source`'s keyframe?
    fn waits_for(&self, source: SessionId) -> bool {
        self.receivers.values().any(|rx| {
            rx.video
                .carries(source)
                .is_some_and(|slot| !rx.video_live[slot])
        })
    }

    fn ask_doctor(&mut self, source: SessionId, now: Instant) {
        if let Some(k) = self.doctor_keyframes.get_mut(&source) {
            if k.request(now) && !self.wants_keyframe.contains(&source) {
                self.wants_keyframe.push(source);
            }
        }
    }

    /// Doctors whose encoder must be asked for a keyframe now.
    pub fn take_keyframe_wants(&mut self) -> Vec<SessionId> {
        std::mem::take(&mut self.wants_keyframe)
    }

    /// A receiver's decoder asked for a keyframe on its robot line (`slot` None) or on a video
    /// slot. The session whose encoder should be asked now, if any.
    pub fn on_keyframe_request(
        &mut self,
        from: SessionId,
        role: Role,
        slot: Option<u8>,
        now: Instant,
    ) -> Option<SessionId> {
        match slot {
            None => {
                let publisher = self.publisher?;
                if role == Role::Observer && !self.observer_keyframes.request(now) {
                    // Dropped, not deferred: a student's decoder asks again if it still
                    // needs one.
                    return None;
                }
                self.keyframes.request(now).then_some(publisher)
            }
            Some(slot) => {
                let source = self
                    .receivers
                    .get(&from)
                    .and_then(|rx| rx.video.slots().get(usize::from(slot)).copied().flatten())?;
                let k = self.doctor_keyframes.get_mut(&source)?;
                k.request(now).then_some(source)
            }
        }
    }

    /// Time passed. Returns the sessions to ask for a keyframe now (deferred requests), and
    /// reconsiders the slots.
    pub fn poll(&mut self, now: Instant) -> Vec<SessionId> {
        let mut ask = Vec::new();
        // The students' coalescer never defers anything worth sending (see above).
        self.observer_keyframes.poll(now);
        if self.keyframes.poll(now) {
            if let Some(p) = self.publisher {
                ask.push(p);
            }
        }
        for (id, k) in self.doctor_keyframes.iter_mut() {
            if k.poll(now) {
                ask.push(*id);
            }
        }
        if self.next_tick.is_some_and(|t| t <= now) {
            self.reassign(now);
        }
        ask.extend(self.take_keyframe_wants());
        ask
    }

    /// When [`poll`](Self::poll) next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let doctors = self
            .doctor_keyframes
            .values()
            .filter_map(|k| k.next_deadline());
        self.keyframes
            .next_deadline()
            .into_iter()
            .chain(doctors)
            .chain(self.next_tick)
            .min()
    }

    /// Receivers whose slots changed since the last call, with what each slot carries now.
    pub fn take_changed(&mut self) -> Vec<SlotsNow> {
        std::mem::take(&mut self.changed)
            .into_iter()
            .filter_map(|id| {
                let rx = self.receivers.get(&id)?;
                Some(SlotsNow {
                    receiver: id,
                    audio: rx.audio.slots().to_vec(),
                    video: rx.video.slots().to_vec(),
                })
            })
            .collect()
    }

    /// The doctors speaking now, loudest first.
    pub fn speaking(&self, now: Instant) -> Vec<SessionId> {
        self.speakers.active(now)
    }

    /// The robot's presenter: see the module docs.
    fn presenter(&self) -> Option<SessionId> {
        let shows = |id: &SessionId| {
            self.publishing
                .get(id)
                .is_some_and(|p| p.video && !p.video_muted)
        };
        if let Some(h) = self.control.holder.filter(shows) {
            return Some(h);
        }
        if let Some(d) = self.control.may_drive.iter().copied().find(shows) {
            return Some(d);
        }
        self.doctors
            .iter()
            .copied()
            .filter(shows)
            .max_by_key(|d| self.speakers.last_spoke(*d))
    }

    /// Bring every receiver's slots up to date.
    fn reassign(&mut self, now: Instant) {
        let audio_sources: Vec<SessionId> = self
            .doctors
            .iter()
            .copied()
            .filter(|d| {
                self.publishing
                    .get(d)
                    .is_some_and(|p| p.audio && !p.audio_muted)
            })
            .collect();
        let video_sources: Vec<SessionId> = self
            .doctors
            .iter()
            .copied()
            .filter(|d| {
                self.publishing
                    .get(d)
                    .is_some_and(|p| p.video && !p.video_muted)
            })
            .collect();
        let presenter = self.presenter();
        let mut switched_to = Vec::new();
        for id in self.receiver_order.clone() {
            let Some(rx) = self.receivers.get_mut(&id) else {
                continue;
            };
            let others = |v: &[SessionId]| -> Vec<SessionId> {
                v.iter().copied().filter(|s| *s != id).collect()
            };
            let mut changed = !rx
                .audio
                .update(&others(&audio_sources), &self.speakers, now)
                .is_empty();
            let video_changes = if rx.role == Role::Robot {
                robot_video(&mut rx.video, presenter, &others(&video_sources))
            } else {
                rx.video
                    .update(&others(&video_sources), &self.speakers, now)
            };
            for (slot, source) in video_changes {
                changed = true;
                rx.video_live[slot] = false;
                if let Some(s) = source {
                    switched_to.push(s);
                }
            }
            if changed && !self.changed.contains(&id) {
                self.changed.push(id);
            }
        }
        for s in switched_to {
            tracing::debug!(session = %s, "a video slot switched to this source");
            self.ask_doctor(s, now);
        }
        self.next_tick = (!audio_sources.is_empty()).then(|| now + TICK);
    }
}

/// The robot's video slots: the first is the presenter; the rest (if it offered more) carry
/// the other doctors' cameras, each keeping its slot while it stays.
fn robot_video(
    slots: &mut SlotSet,
    presenter: Option<SessionId>,
    others: &[SessionId],
) -> Vec<(usize, Option<SessionId>)> {
    let before: Vec<Option<SessionId>> = slots.slots().to_vec();
    let n = before.len();
    if n == 0 {
        return Vec::new();
    }
    let mut spare: Vec<SessionId> = others
        .iter()
        .copied()
        .filter(|s| Some(*s) != presenter)
        .collect();
    let mut after = vec![None; n];
    after[0] = presenter;
    for i in 1..n {
        if let Some(b) = before[i].filter(|b| spare.contains(b)) {
            after[i] = Some(b);
            spare.retain(|s| *s != b);
        }
    }
    for slot in after.iter_mut().skip(1) {
        if slot.is_none() && !spare.is_empty() {
            *slot = Some(spare.remove(0));
        }
    }
    let changes = before
        .iter()
        .zip(after.iter())
        .enumerate()
        .filter(|(_, (b, a))| b != a)
        .map(|(i, (_, a))| (i, *a))
        .collect();
    *slots = SlotSet::with(after);
    changes
}

#[cfg(test)]
mod tests {
    //! Plain calls, time advanced by hand: who the robot's presenter slot carries, and that the
    //! slots never carry a receiver's own media nor the robot's.

    use super::*;

    const ROBOT: SessionId = SessionId(1);
    const D1: SessionId = SessionId(2);
    const D2: SessionId = SessionId(3);
    const D3: SessionId = SessionId(4);

    /// A robot: its camera and microphone, three doctors' voices and the presenter.
    fn robot_layout() -> Layout {
        Layout {
            audio_slots: 3,
            video_slots: 1,
            sends_audio: true,
            sends_video: true,
            ..Layout::default()
        }
    }

    /// A doctor: the robot, its own microphone and camera, three voices and one camera.
    fn doctor_layout() -> Layout {
        Layout {
            robot_video: true,
            robot_audio: true,
            audio_slots: 3,
            video_slots: 1,
            sends_audio: true,
            sends_video: true,
        }
    }

    struct Room {
        media: RoomMedia,
        now: Instant,
        seq: u64,
    }

    impl Room {
        /// A robot publishing, and doctors D1, D2, D3 joined in that order.
        fn consult() -> Room {
            let now = Instant::now();
            let mut media = RoomMedia::new(Duration::from_millis(500), Duration::from_secs(2));
            media.add(ROBOT, Role::Robot, robot_layout(), now);
            media.set_publisher(ROBOT);
            for d in [D1, D2, D3] {
                media.add(d, Role::Doctor, doctor_layout(), now);
            }
            Room { media, now, seq: 1 }
        }

        fn control(&mut self, holder: Option<SessionId>, may_drive: &[SessionId]) {
            self.media.set_control(
                Control {
                    holder,
                    may_drive: may_drive.to_vec(),
                },
                self.now,
            );
        }

        /// What the robot's presenter slot carries now.
        fn presenter(&self) -> Option<SessionId> {
            self.media.receivers[&ROBOT].video.slots()[0]
        }

        /// One audio packet from `from` at `level` dBov; where it went.
        fn audio(&mut self, from: SessionId, level: i8) -> Option<Vec<(SessionId, u8)>> {
            self.seq += 1;
            let pkt = RtpIn {
                kind: TrackKind::Audio,
                ssrc: 1000 + from.0 as u32,
                seq: self.seq,
                ts: self.seq as u32 * 960,
                keyframe_start: false,
                audio_level: Some(level),
            };
            match self.media.on_rtp(from, pkt, self.now).0 {
                Some(Fanout::Slots { targets }) => Some(targets.to_vec()),
                Some(Fanout::Robot { targets, .. }) => {
                    panic!("{from:?}'s audio went out as the robot's to {targets:?}")
                }
                None => None,
            }
        }

        /// `from` speaks for `ms` (a packet every 20 ms), time and the slot ticks running.
        fn speak(&mut self, from: SessionId, ms: u64) {
            for _ in 0..ms / 20 {
                self.now += Duration::from_millis(20);
                self.audio(from, -20);
                self.media.poll(self.now);
            }
        }
    }

    #[test]
    fn the_presenter_is_the_lease_holder() {
        let mut r = Room::consult();
        r.control(Some(D2), &[D1]);
        assert_eq!(
            r.presenter(),
            Some(D2),
            "the driver, not the booking doctor"
        );
        r.control(Some(D3), &[D1]);
        assert_eq!(r.presenter(), Some(D3), "a handoff moves the presenter");
        let changed = r.media.take_changed();
        assert!(
            changed
                .iter()
                .any(|s| s.receiver == ROBOT && s.video == vec![Some(D3)]),
            "the robot is told: {changed:?}"
        );
    }

    #[test]
    fn on_release_the_presenter_is_the_doctor_who_may_drive() {
        let mut r = Room::consult();
        // D3 spoke last: the booking's doctor still comes first.
        r.speak(D3, 400);
        r.control(Some(D2), &[D1]);
        assert_eq!(r.presenter(), Some(D2));
        r.control(None, &[D1]);
        assert_eq!(r.presenter(), Some(D1));
    }

    #[test]
    fn with_nobody_who_may_drive_the_presenter_is_the_last_doctor_who_spoke() {
        let mut r = Room::consult();
        r.control(None, &[]);
        r.speak(D1, 400);
        assert_eq!(r.presenter(), Some(D1));
        r.speak(D2, 400);
        assert_eq!(r.presenter(), Some(D2), "D2 spoke last");
        // Quiet (below the floor) is not speaking.
        for _ in 0..20 {
            r.now += Duration::from_millis(20);
            r.audio(D3, -90);
            r.media.poll(r.now);
        }
        assert_eq!(
            r.presenter(),
            Some(D2),
            "D3's silence does not make it speak"
        );
        r.speak(D1, 400);
        assert_eq!(r.presenter(), Some(D1));
    }

    #[test]
    fn a_presenter_whose_camera_is_off_gives_way_to_the_next_candidate() {
        let mut r = Room::consult();
        r.speak(D3, 400);
        r.control(Some(D2), &[D1]);
        assert_eq!(r.presenter(), Some(D2));
        // The driver's camera off: the booking's doctor.
        r.media.set_muted(D2, false, true, r.now);
        assert_eq!(r.presenter(), Some(D1));
        // Its camera off too: the doctor who spoke last.
        r.media.set_muted(D1, false, true, r.now);
        assert_eq!(r.presenter(), Some(D3));
        // Every camera off: the slot carries nobody.
        r.media.set_muted(D3, false, true, r.now);
        assert_eq!(r.presenter(), None);
        // The driver's camera back on: the driver again.
        r.media.set_muted(D2, false, false, r.now);
        assert_eq!(r.presenter(), Some(D2));
        // A muted microphone alone changes nothing.
        r.media.set_muted(D2, true, false, r.now);
        assert_eq!(r.presenter(), Some(D2));
    }

    #[test]
    fn a_presenter_who_leaves_gives_way_to_the_next_candidate() {
        let mut r = Room::consult();
        r.control(Some(D2), &[D1]);
        r.media.remove(D2, r.now);
        assert_eq!(r.presenter(), Some(D1));
        r.media.remove(D1, r.now);
        assert_eq!(r.presenter(), Some(D3), "the one doctor left with a camera");
    }

    #[test]
    fn the_robots_own_media_never_takes_a_slot() {
        let mut r = Room::consult();
        r.control(Some(D1), &[D1]);
        r.speak(D2, 400);
        // The robot's microphone goes out on the doctors' robot lines, never to itself and
        // never on a slot, however loud.
        for _ in 0..50 {
            r.now += Duration::from_millis(20);
            r.seq += 1;
            let pkt = RtpIn {
                kind: TrackKind::Audio,
                ssrc: 7,
                seq: r.seq,
                ts: r.seq as u32 * 960,
                keyframe_start: false,
                audio_level: Some(0),
            };
            match r.media.on_rtp(ROBOT, pkt, r.now).0 {
                Some(Fanout::Robot { targets, .. }) => {
                    assert!(!targets.contains(&ROBOT), "{targets:?}");
                    assert_eq!(targets.len(), 3, "every doctor: {targets:?}");
                }
                other => panic!("the robot's audio went {other:?}"),
            }
            r.media.poll(r.now);
        }
        assert!(!r.media.speaking(r.now).contains(&ROBOT));
        for (id, rx) in &r.media.receivers {
            for s in rx.audio.slots().iter().chain(rx.video.slots()) {
                assert_ne!(*s, Some(ROBOT), "{id:?}'s slots: {rx:?}");
            }
        }
        // A second robot session that is not the publisher sends nothing anywhere.
        let other = SessionId(99);
        r.media.add(other, Role::Robot, robot_layout(), r.now);
        assert!(r.audio(other, 0).is_none());
    }

    #[test]
    fn a_doctor_never_receives_its_own_voice_or_camera() {
        let mut r = Room::consult();
        r.control(Some(D1), &[D1]);
        for d in [D1, D2, D3] {
            r.speak(d, 200);
        }
        for d in [D1, D2, D3] {
            let rx = &r.media.receivers[&d];
            assert!(rx.audio.carries(d).is_none(), "{d:?} hears itself: {rx:?}");
            assert!(rx.video.carries(d).is_none(), "{d:?} sees itself: {rx:?}");
            // Three audio slots, two other doctors: each has one.
            let others: Vec<SessionId> = [D1, D2, D3].into_iter().filter(|o| *o != d).collect();
            for o in &others {
                assert!(rx.audio.carries(*o).is_some(), "{d:?} hears {o:?}: {rx:?}");
            }
        }
        for d in [D1, D2, D3] {
            let targets = r.audio(d, -10).expect("a doctor's voice goes somewhere");
            assert!(targets.iter().all(|(to, _)| *to != d), "{d:?}: {targets:?}");
            assert!(
                targets.iter().any(|(to, _)| *to == ROBOT),
                "the robot hears {d:?}"
            );
            assert_eq!(targets.len(), 3, "the robot and two doctors: {targets:?}");
        }
        // The robot's screen shows the driver; the driver does not see itself there.
        assert_eq!(r.presenter(), Some(D1));
        assert!(r.media.receivers[&D1].video.carries(D1).is_none());
    }
}
