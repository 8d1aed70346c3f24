//! One room: one robot publishing, any number of viewers, and who may drive.
//!
//! This is the sans-IO core of the SFU. It is fed plain events (a session joined, an RTP packet
//! arrived from the publisher, a viewer asked for a keyframe, a control frame or an `events`
//! message arrived, time passed) and answers with what to do: which sessions a packet goes to
//! and with what continuous numbering ([`Fanout`]), and queued [`Output`]s (ask the robot for a
//! keyframe, send this control frame to the robot, send this event, disconnect that session).
//! It owns no sockets and no str0m state, so it is tested with plain function calls.
//!
//! Safety ordering lives here: on every lease change the room queues the robot's stop frame
//! before the lease event, and the shell sends outputs in queue order.
//!
//! Not here: SDP, ICE, DTLS, SRTP, payload-type mapping (the shell's `peer.rs` and str0m).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bedside_proto::events::{ClientEvent, LeaseReason, Participant, ServerEvent};
use bedside_proto::Role;

use crate::control_gate::{ControlGate, ControlGateConfig, FrameContext, Verdict};
use crate::estop::Estop;
use crate::forwarder::{Source, TrackForwarder};
use crate::keyframe::KeyframeCoalescer;
use crate::lease::{Lease, LeaseInput, LeaseOutput, Member as LeaseMember};
use crate::room_event::RoomAudit;
use crate::SessionId;

/// Audio or video; a room forwards one of each from its robot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    /// Opus; forwarded to every viewer from its first packet.
    Audio,
    /// VP8 or H.264; a viewer gets it from a keyframe start on.
    Video,
}

/// A participant as admitted by its join token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The token's opaque subject: what audit records name, and how a reconnecting robot is
    /// told from a different one.
    pub sub: String,
    /// The token's role.
    pub role: Role,
    /// May take a free lease (only ever true for doctors).
    pub can_control: bool,
    /// The token's `exp`, unix ms: the lease is revoked then.
    pub expires_at_ms: u64,
}

/// Can a robot publish here?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// No robot publishes here yet.
    Accept,
    /// The same robot reconnecting (Wi-Fi roam): the old session is replaced.
    Replace(SessionId),
    /// Another robot already publishes in this room.
    Conflict,
}

/// Who an event goes to, as the room decides it when it queues the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One participant.
    One(SessionId),
    /// Everyone in the room now.
    All,
    /// Everyone but this one (the newcomer of a `joined`).
    AllBut(SessionId),
}

/// Who an event goes to, resolved when queued: a member who leaves later in the same step
/// (an expired holder, say) still hears what was said to everyone before it left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipients {
    /// One participant.
    One(SessionId),
    /// These participants, in join order.
    Many(Vec<SessionId>),
}

impl Recipients {
    /// Is `id` among them.
    pub fn contains(&self, id: SessionId) -> bool {
        match self {
            Recipients::One(x) => *x == id,
            Recipients::Many(v) => v.contains(&id),
        }
    }
}

/// What the shell must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send a PLI to the publisher's video track.
    RequestKeyframe {
        /// The robot's session.
        publisher: SessionId,
    },
    /// Send these 24 bytes on the publisher's `control` channel.
    Control {
        /// The robot's session.
        to: SessionId,
        /// A forwarded frame with the epoch stamped, or the room's own stop frame.
        frame: [u8; 24],
    },
    /// Send this JSON on the `events` channel.
    Event {
        /// Resolved when queued.
        to: Recipients,
        /// Serialised once, shared by every recipient.
        json: Arc<str>,
    },
    /// Close this session (replaced by a reconnecting robot, or its token expired).
    Close {
        /// The session to say goodbye to and remove.
        id: SessionId,
    },
    /// For metrics and the audit log: a control frame was dropped.
    ControlDropped {
        /// The sender.
        from: SessionId,
        /// The `reason` label of `bedside_control_frames_dropped_total`.
        reason: &'static str,
    },
    /// For metrics and the audit log: the lease changed or the e-stop latched/cleared.
    Audit(RoomAudit),
}

/// What the room needs to know of one publisher packet.
#[derive(Debug, Clone, Copy)]
pub struct RtpIn {
    /// Which of the room's two tracks.
    pub kind: TrackKind,
    /// Tells a restarted encoder from the same stream.
    pub ssrc: u32,
    /// Extended (rollover-free) sequence number.
    pub seq: u64,
    /// The publisher's RTP timestamp.
    pub ts: u32,
    /// The payload starts a keyframe (see `keyframe.rs`).
    pub keyframe_start: bool,
}

/// Where one publisher packet goes.
#[derive(Debug)]
pub struct Fanout<'a> {
    /// The room's continuous sequence number (each viewer rebases it).
    pub seq: u64,
    /// The room's continuous timestamp.
    pub ts: u32,
    /// The viewers receiving this track now; borrowed, so a packet costs no allocation.
    pub targets: &'a [SessionId],
}

/// Per-room policy, the same for every room of a process.
#[derive(Debug, Clone, Copy)]
pub struct RoomConfig {
    /// Least time between keyframe requests to the robot (300 ms: a browser robot ignores
    /// requests within 300 ms of the last one it honoured).
    pub keyframe_interval: Duration,
    /// Rate limits on control frames.
    pub gate: ControlGateConfig,
}

impl Default for RoomConfig {
    fn default() -> Self {
        RoomConfig {
            keyframe_interval: Duration::from_millis(300),
            gate: ControlGateConfig::default(),
        }
    }
}

/// One room. See the module docs.
pub struct Room {
    members: HashMap<SessionId, Member>,
    /// Join order, for stable presence lists.
    order: Vec<SessionId>,
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
    lease: Lease,
    gate: ControlGate,
    estop: Estop,
    /// The soonest token expiry among members, unix ms.
    earliest_expiry: Option<u64>,
    /// The current lease holder's `sub`, for the "previous holder" of the next audit record.
    holder_sub: Option<String>,
    /// Stop frames carry milliseconds since this instant (the room's creation).
    origin: Instant,
    outputs: VecDeque<Output>,
}

impl Room {
    /// An empty room created at `now`.
    pub fn new(config: RoomConfig, now: Instant) -> Self {
        Room {
            members: HashMap::new(),
            order: Vec::new(),
            publisher: None,
            video: TrackForwarder::new(90_000),
            audio: TrackForwarder::new(48_000),
            video_live: Vec::new(),
            video_waiting: Vec::new(),
            audio_live: Vec::new(),
            keyframes: KeyframeCoalescer::new(config.keyframe_interval),
            lease: Lease::new(),
            gate: ControlGate::new(config.gate),
            estop: Estop::new(),
            earliest_expiry: None,
            holder_sub: None,
            origin: now,
            outputs: VecDeque::new(),
        }
    }

    /// Nobody has joined, or everybody left: the switchboard drops the room then.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The robot's session, while one publishes.
    pub fn publisher(&self) -> Option<SessionId> {
        self.publisher
    }

    /// A joined participant (sessions still connecting are not members yet).
    pub fn member(&self, id: SessionId) -> Option<&Member> {
        self.members.get(&id)
    }

    /// Members with this role.
    pub fn count_by_role(&self, role: Role) -> usize {
        self.members.values().filter(|m| m.role == role).count()
    }

    /// Who may drive now.
    pub fn lease_holder(&self) -> Option<SessionId> {
        self.lease.holder()
    }

    /// The epoch stamped into forwarded frames.
    pub fn lease_epoch(&self) -> u32 {
        self.lease.epoch()
    }

    /// Latched by a doctor or by the robot's own button.
    pub fn estop_latched(&self) -> bool {
        self.estop.is_latched()
    }

    /// May a robot with token subject `sub` publish here now?
    pub fn admit_publisher(&self, sub: &str) -> Admission {
        match self
            .publisher
            .and_then(|p| self.members.get(&p).map(|m| (p, m)))
        {
            None => Admission::Accept,
            Some((p, m)) if m.sub == sub => Admission::Replace(p),
            Some(_) => Admission::Conflict,
        }
    }

    /// A session joined. Robots become the publisher (call [`admit_publisher`](Self::admit_publisher) first).
    pub fn join(&mut self, id: SessionId, member: Member, now: Instant) {
        let role = member.role;
        if role == Role::Robot {
            if let Admission::Replace(old) = self.admit_publisher(&member.sub) {
                self.outputs.push_back(Output::Close { id: old });
                self.leave(old, now);
            }
            self.publisher = Some(id);
            self.keyframes.reset();
        }
        self.earliest_expiry = Some(
            self.earliest_expiry
                .map_or(member.expires_at_ms, |e| e.min(member.expires_at_ms)),
        );
        self.members.insert(id, member.clone());
        self.order.push(id);
        if role != Role::Robot {
            self.video_waiting.push(id);
            self.audio_live.push(id);
            self.request_keyframe(now);
        }
        self.lease_input(
            LeaseInput::Join(LeaseMember {
                id,
                role,
                can_control: member.can_control,
                expires_at_ms: member.expires_at_ms,
            }),
            now,
        );
        self.send(
            Target::One(id),
            ServerEvent::Welcome {
                you: participant(id, &member),
            },
        );
        self.send(
            Target::One(id),
            ServerEvent::Lease {
                holder: self.lease.holder().map(|h| h.to_string()),
                epoch: self.lease.epoch(),
                reason: LeaseReason::Granted,
            },
        );
        if self.estop.is_latched() {
            self.send(
                Target::One(id),
                ServerEvent::Estop {
                    latched: true,
                    by: self
                        .estop
                        .latched_by()
                        .map(|s| s.to_string())
                        .unwrap_or_default(),
                },
            );
        }
        // The newcomer gets the whole room once; everyone else only the change. Sending the
        // full list to everyone on every join would cost O(n^2) bytes as a class fills up.
        self.send_presence_to(id);
        self.send_to_others(
            id,
            ServerEvent::Joined {
                participant: participant(id, &member),
            },
        );
    }

    /// A session left (goodbye, ICE timeout, DTLS failure or replaced).
    pub fn leave(&mut self, id: SessionId, now: Instant) {
        if self.members.remove(&id).is_none() {
            return;
        }
        self.order.retain(|s| *s != id);
        self.video_live.retain(|s| *s != id);
        self.video_waiting.retain(|s| *s != id);
        self.audio_live.retain(|s| *s != id);
        if self.publisher == Some(id) {
            self.publisher = None;
            self.video.source_gone(id.0);
            self.audio.source_gone(id.0);
        }
        self.gate.forget(id);
        self.lease_input(LeaseInput::Leave { id }, now);
        self.send(Target::All, ServerEvent::Left { id: id.to_string() });
    }

    /// An RTP packet from `from`. Returns where it goes, or `None` to drop it.
    pub fn on_rtp(&mut self, from: SessionId, pkt: RtpIn, now: Instant) -> Option<Fanout<'_>> {
        if self.publisher != Some(from) {
            return None;
        }
        let RtpIn {
            kind,
            ssrc,
            seq,
            ts,
            keyframe_start,
        } = pkt;
        let src = Source {
            session: from.0,
            ssrc,
        };
        match kind {
            TrackKind::Audio => {
                let m = self.audio.map(src, seq, ts, now)?;
                Some(Fanout {
                    seq: m.seq,
                    ts: m.ts,
                    targets: &self.audio_live,
                })
            }
            TrackKind::Video => {
                let m = self.video.map(src, seq, ts, now)?;
                if m.switched {
                    // A new encoder: everybody needs its keyframe before more video.
                    self.video_waiting.append(&mut self.video_live);
                }
                if keyframe_start {
                    self.video_live.append(&mut self.video_waiting);
                    // Whoever was waiting has it now: a deferred request would only make the
                    // encoder spend bits on a keyframe nobody needs.
                    self.keyframes.satisfied(now);
                } else if !self.video_waiting.is_empty() {
                    self.request_keyframe(now);
                }
                Some(Fanout {
                    seq: m.seq,
                    ts: m.ts,
                    targets: &self.video_live,
                })
            }
        }
    }

    /// A viewer's decoder asked for a keyframe (PLI/FIR from its browser).
    pub fn on_keyframe_request(&mut self, from: SessionId, now: Instant) {
        if self.members.contains_key(&from) && self.publisher != Some(from) {
            self.request_keyframe(now);
        }
    }

    /// Bytes on a participant's `control` channel.
    pub fn on_control(&mut self, from: SessionId, bytes: &[u8], now: Instant) {
        let Some(member) = self.members.get(&from) else {
            return;
        };
        let ctx = FrameContext {
            from,
            role: member.role,
            is_holder: self.lease.is_holder(from),
            epoch: self.lease.epoch(),
            estop_latched: self.estop.is_latched(),
        };
        let verdict = self.gate.check(ctx, bytes, now);
        match (verdict, self.publisher) {
            (Verdict::Forward(frame), Some(robot)) => {
                self.outputs.push_back(Output::Control { to: robot, frame });
            }
            (Verdict::Forward(_), None) => self.outputs.push_back(Output::ControlDropped {
                from,
                reason: "no_robot",
            }),
            (Verdict::Drop(reason), _) => self.outputs.push_back(Output::ControlDropped {
                from,
                reason: reason.label(),
            }),
        }
    }

    /// Bytes on a participant's `events` channel.
    pub fn on_event(&mut self, from: SessionId, bytes: &[u8], now: Instant) {
        let Some(member) = self.members.get(&from).cloned() else {
            return;
        };
        let event = match ClientEvent::parse(bytes) {
            Ok(e) => e,
            Err(message) => {
                return self.send(
                    Target::One(from),
                    ServerEvent::Error {
                        code: "bad_event".into(),
                        message,
                    },
                )
            }
        };
        if member.role == Role::Observer {
            // Students are read-only: everything they send is refused.
            return self.send(
                Target::One(from),
                ServerEvent::Error {
                    code: "forbidden".into(),
                    message: "observers are read-only".into(),
                },
            );
        }
        match event {
            ClientEvent::RequestLease => self.lease_input(LeaseInput::Request { from }, now),
            ClientEvent::GrantLease { to } => {
                self.with_target(from, &to, now, |by, to| LeaseInput::Grant { by, to })
            }
            ClientEvent::DenyLease { to } => {
                self.with_target(from, &to, now, |by, to| LeaseInput::Deny { by, to })
            }
            ClientEvent::Handoff { to } => {
                self.with_target(from, &to, now, |by, to| LeaseInput::Handoff { by, to })
            }
            ClientEvent::Release => self.lease_input(LeaseInput::Release { by: from }, now),
            ClientEvent::Estop => match self.estop.latch(from, member.role) {
                Ok(true) => self.estop_changed(true, from, now),
                Ok(false) => {}
                Err(code) => self.refuse(from, code, "only doctors may latch the e-stop"),
            },
            ClientEvent::EstopClear => match self.estop.clear(self.lease.is_holder(from)) {
                Ok(true) => self.estop_changed(false, from, now),
                Ok(false) => {}
                Err(code) => self.refuse(from, code, "only the lease holder may clear the e-stop"),
            },
            ClientEvent::Telemetry(t) => {
                if member.role != Role::Robot {
                    return self.refuse(from, "forbidden", "only the robot sends telemetry");
                }
                if self.estop.robot_reported(t.estop) {
                    self.send(
                        Target::All,
                        ServerEvent::Estop {
                            latched: t.estop,
                            by: from.to_string(),
                        },
                    );
                }
                self.send(
                    Target::All,
                    ServerEvent::Telemetry {
                        from: from.to_string(),
                        telemetry: t,
                    },
                );
            }
        }
    }

    /// An administrator takes the lease away.
    pub fn admin_revoke(&mut self, now: Instant) {
        self.lease_input(LeaseInput::AdminRevoke, now);
    }

    /// Time passed: deferred keyframe requests, lease expiry.
    pub fn handle_timeout(&mut self, now: Instant, now_unix_ms: u64) {
        if self.keyframes.poll(now) {
            if let Some(publisher) = self.publisher {
                self.outputs
                    .push_back(Output::RequestKeyframe { publisher });
            }
        }
        if self
            .lease
            .next_deadline_ms()
            .is_some_and(|d| d <= now_unix_ms)
        {
            self.lease_input(
                LeaseInput::Tick {
                    now_ms: now_unix_ms,
                },
                now,
            );
        }
        if self.earliest_expiry.is_some_and(|d| d <= now_unix_ms) {
            self.expire_members(now, now_unix_ms);
        }
    }

    /// Tokens end with the booking: whoever's token ran out is told and disconnected, so a
    /// consultant or student cannot keep watching a patient after the slot.
    fn expire_members(&mut self, now: Instant, now_unix_ms: u64) {
        let expired: Vec<SessionId> = self
            .order
            .iter()
            .copied()
            .filter(|id| {
                self.members
                    .get(id)
                    .is_some_and(|m| m.expires_at_ms <= now_unix_ms)
            })
            .collect();
        for id in expired {
            self.refuse(id, "expired", "your access to this room has ended");
            self.outputs.push_back(Output::Close { id });
            self.leave(id, now);
        }
        self.recompute_expiry();
    }

    fn recompute_expiry(&mut self) {
        self.earliest_expiry = self.members.values().map(|m| m.expires_at_ms).min();
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has work, as (monotonic, unix ms).
    pub fn next_deadline(&self) -> (Option<Instant>, Option<u64>) {
        let wall = match (self.lease.next_deadline_ms(), self.earliest_expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        (self.keyframes.next_deadline(), wall)
    }

    /// The next thing to carry out. The order is the safety order: carry them out as they
    /// come (the stop frame is queued before the lease event).
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    fn request_keyframe(&mut self, now: Instant) {
        if let Some(publisher) = self.publisher {
            if self.keyframes.request(now) {
                self.outputs
                    .push_back(Output::RequestKeyframe { publisher });
            }
        }
    }

    fn with_target(
        &mut self,
        from: SessionId,
        to: &str,
        now: Instant,
        make: impl FnOnce(SessionId, SessionId) -> LeaseInput,
    ) {
        match to.parse::<SessionId>() {
            Ok(to) => self.lease_input(make(from, to), now),
            Err(()) => self.refuse(from, "not_in_room", "no such participant"),
        }
    }

    fn lease_input(&mut self, input: LeaseInput, now: Instant) {
        if let Some(out) = self.lease.handle(input) {
            match out {
                LeaseOutput::Changed {
                    holder,
                    epoch,
                    reason,
                } => {
                    // The robot hears "stop" before anybody hears who drives next.
                    if let Some(robot) = self.publisher {
                        let frame = self.gate.stop_frame(epoch, self.ms_since_origin(now));
                        self.outputs.push_back(Output::Control { to: robot, frame });
                    }
                    let holder_sub = holder
                        .and_then(|h| self.members.get(&h))
                        .map(|m| m.sub.clone());
                    let previous = std::mem::replace(&mut self.holder_sub, holder_sub.clone());
                    self.outputs.push_back(Output::Audit(RoomAudit::LeaseChanged {
                        holder: holder_sub,
                        previous,
                        epoch,
                        reason,
                    }));
                    self.send(
                        Target::All,
                        ServerEvent::Lease {
                            holder: holder.map(|h| h.to_string()),
                            epoch,
                            reason,
                        },
                    );
                }
                LeaseOutput::Requested { from, holder } => {
                    let ev = ServerEvent::LeaseRequested {
                        from: from.to_string(),
                    };
                    self.send(Target::One(holder), ev.clone());
                    self.send(Target::One(from), ev);
                }
                LeaseOutput::Denied { to } => self.send(
                    Target::One(to),
                    ServerEvent::LeaseDenied { to: to.to_string() },
                ),
                LeaseOutput::Rejected { to, code, message } => self.refuse(to, code, message),
            }
        }
    }

    fn estop_changed(&mut self, latched: bool, by: SessionId, now: Instant) {
        if latched {
            if let Some(robot) = self.publisher {
                let frame = self
                    .gate
                    .stop_frame(self.lease.epoch(), self.ms_since_origin(now));
                self.outputs.push_back(Output::Control { to: robot, frame });
            }
        }
        let by_sub = self.members.get(&by).map(|m| m.sub.clone());
        self.outputs.push_back(Output::Audit(if latched {
            RoomAudit::EstopLatched { by: by_sub }
        } else {
            RoomAudit::EstopCleared { by: by_sub }
        }));
        self.send(
            Target::All,
            ServerEvent::Estop {
                latched,
                by: by.to_string(),
            },
        );
    }

    fn refuse(&mut self, to: SessionId, code: &str, message: &str) {
        self.send(
            Target::One(to),
            ServerEvent::Error {
                code: code.to_string(),
                message: message.to_string(),
            },
        );
    }

    fn send_presence_to(&mut self, to: SessionId) {
        let participants = self
            .order
            .iter()
            .filter_map(|id| self.members.get(id).map(|m| participant(*id, m)))
            .collect();
        self.send(Target::One(to), ServerEvent::Presence { participants });
    }

    fn send_to_others(&mut self, except: SessionId, event: ServerEvent) {
        self.send(Target::AllBut(except), event);
    }

    fn send(&mut self, to: Target, event: ServerEvent) {
        let to = match to {
            Target::One(id) => Recipients::One(id),
            Target::All => Recipients::Many(self.order.clone()),
            Target::AllBut(except) => Recipients::Many(
                self.order
                    .iter()
                    .copied()
                    .filter(|id| *id != except)
                    .collect(),
            ),
        };
        self.outputs.push_back(Output::Event {
            to,
            json: event.to_json().into(),
        });
    }

    /// All members, in join order.
    pub fn member_ids(&self) -> &[SessionId] {
        &self.order
    }

    /// A wrapping millisecond clock for stop-frame timestamps, from the room's creation.
    fn ms_since_origin(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.origin).as_millis() as u32
    }
}

fn participant(id: SessionId, m: &Member) -> Participant {
    Participant {
        id: id.to_string(),
        sub: m.sub.clone(),
        role: m.role,
        can_control: m.can_control,
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    fn member(role: Role, sub: &str, can_control: bool) -> Member {
        Member {
            sub: sub.into(),
            role,
            can_control,
            expires_at_ms: u64::MAX / 2,
        }
    }

    fn drain(room: &mut Room) -> Vec<Output> {
        std::iter::from_fn(|| room.poll_output()).collect()
    }

    const ROBOT: SessionId = SessionId(1);
    const DOC: SessionId = SessionId(2);
    const CONSULT: SessionId = SessionId(3);
    const STUDENT: SessionId = SessionId(4);

    fn full_room(now: Instant) -> Room {
        let mut r = Room::new(RoomConfig::default(), now);
        r.join(ROBOT, member(Role::Robot, "robot", false), now);
        r.join(DOC, member(Role::Doctor, "doc", true), now);
        r.join(CONSULT, member(Role::Doctor, "consultant", false), now);
        r.join(STUDENT, member(Role::Observer, "student", false), now);
        drain(&mut r);
        r
    }

    fn is_lease_event(o: &Output) -> bool {
        matches!(o, Output::Event { json, .. } if json.contains(r#""type":"lease""#))
    }

    #[test]
    fn lease_change_sends_stop_to_robot_before_any_event() {
        let now = Instant::now();
        let mut r = full_room(now);
        r.on_event(DOC, br#"{"type":"request_lease"}"#, now);
        let out = drain(&mut r);
        let stop = out
            .iter()
            .position(|o| matches!(o, Output::Control { to, .. } if *to == ROBOT))
            .expect("stop frame");
        let event = out.iter().position(is_lease_event).expect("lease event");
        assert!(stop < event);
        assert_eq!(r.lease_holder(), Some(DOC));

        // The holder leaving is also a change: stop first again.
        r.leave(DOC, now);
        let out = drain(&mut r);
        let stop = out.iter().position(|o| matches!(o, Output::Control { .. }));
        let event = out.iter().position(is_lease_event);
        assert!(stop.is_some() && stop < event);
        assert_eq!(r.lease_holder(), None);
    }

    #[test]
    fn only_the_holders_frames_are_forwarded_and_stamped() {
        let now = Instant::now();
        let mut r = full_room(now);
        r.on_event(DOC, br#"{"type":"request_lease"}"#, now);
        drain(&mut r);
        let mut forged = bedside_proto::ControlFrame::drive(1, 0, 100, 0, 0);
        forged.epoch = 999;
        for from in [CONSULT, STUDENT, ROBOT, DOC] {
            r.on_control(from, &forged.encode(), now);
        }
        let out = drain(&mut r);
        let forwarded: Vec<_> = out
            .iter()
            .filter_map(|o| match o {
                Output::Control { frame, .. } => bedside_proto::ControlFrame::decode(frame).ok(),
                _ => None,
            })
            .collect();
        assert_eq!(forwarded.len(), 1);
        assert_eq!(forwarded[0].epoch, r.lease_epoch());
        let reasons: Vec<_> = out
            .iter()
            .filter_map(|o| match o {
                Output::ControlDropped { reason, .. } => Some(*reason),
                _ => None,
            })
            .collect();
        assert_eq!(reasons, vec!["not_holder", "observer", "robot"]);
    }

    #[test]
    fn presence_is_a_snapshot_for_the_newcomer_and_deltas_for_the_rest() {
        let now = Instant::now();
        let mut r = full_room(now);
        let late = SessionId(7);
        r.join(late, member(Role::Observer, "late", false), now);
        let out = drain(&mut r);
        let to_late: Vec<&str> = out
            .iter()
            .filter_map(|o| match o {
                Output::Event {
                    to: Recipients::One(id),
                    json,
                } if *id == late => Some(&**json),
                _ => None,
            })
            .collect();
        let snapshot = to_late
            .iter()
            .find(|j| j.contains(r#""type":"presence""#))
            .expect("snapshot");
        assert_eq!(
            snapshot.matches(r#""role""#).count(),
            5,
            "all five members listed"
        );
        assert!(out.iter().any(|o| matches!(o,
            Output::Event { to, json } if !to.contains(late) && to.contains(DOC) && json.contains(r#""type":"joined""#))));
        r.leave(late, now);
        let out = drain(&mut r);
        assert!(out.iter().any(|o| matches!(o,
            Output::Event { to, json } if to.contains(DOC) && json.contains(r#""type":"left""#) && json.contains(r#""id":"s7""#))));
    }

    #[test]
    fn members_are_disconnected_when_their_token_expires() {
        let now = Instant::now();
        let mut r = full_room(now);
        let short = SessionId(8);
        let mut m = member(Role::Observer, "short", false);
        m.expires_at_ms = 5_000;
        r.join(short, m, now);
        drain(&mut r);
        assert_eq!(r.next_deadline().1, Some(5_000));
        r.handle_timeout(now, 4_999);
        assert!(drain(&mut r).is_empty());
        r.handle_timeout(now, 5_000);
        let out = drain(&mut r);
        let told = out.iter().position(|o| {
            matches!(o,
            Output::Event { to: Recipients::One(id), json } if *id == short && json.contains("expired"))
        });
        let closed = out.iter().position(|o| *o == Output::Close { id: short });
        assert!(
            told.is_some() && told < closed,
            "told, then disconnected: {out:?}"
        );
        assert!(r.member(short).is_none());
        assert_eq!(r.count_by_role(Role::Observer), 1);
    }

    #[test]
    fn the_holder_expiring_loses_the_lease_before_being_disconnected() {
        let now = Instant::now();
        let mut r = full_room(now);
        let doc = SessionId(9);
        let mut m = member(Role::Doctor, "late-doc", true);
        m.expires_at_ms = 5_000;
        r.join(doc, m, now);
        r.on_event(doc, br#"{"type":"request_lease"}"#, now);
        drain(&mut r);
        assert_eq!(r.lease_holder(), Some(doc));
        r.handle_timeout(now, 5_000);
        let out = drain(&mut r);
        let lease = out.iter().position(
            |o| matches!(o, Output::Event { to, json } if to.contains(doc) && json.contains(r#""reason":"expired""#)),
        );
        let closed = out.iter().position(|o| *o == Output::Close { id: doc });
        assert!(lease.is_some() && lease < closed, "{out:?}");
    }

    #[test]
    fn observers_are_read_only() {
        let now = Instant::now();
        let mut r = full_room(now);
        r.on_event(STUDENT, br#"{"type":"estop"}"#, now);
        r.on_event(STUDENT, br#"{"type":"request_lease"}"#, now);
        let out = drain(&mut r);
        assert!(!r.estop_latched());
        assert_eq!(r.lease_holder(), None);
        assert_eq!(
            out.iter()
                .filter(|o| matches!(o, Output::Event { to: Recipients::One(STUDENT), json } if json.contains("forbidden")))
                .count(),
            2
        );
    }

    #[test]
    fn garbage_events_get_an_error_not_a_panic() {
        let now = Instant::now();
        let mut r = full_room(now);
        for bad in [
            &b"{"[..],
            b"\xff\xfe",
            br#"{"type":"handoff","to":"nobody"}"#,
            &[b'x'; 10_000],
        ] {
            r.on_event(CONSULT, bad, now);
        }
        let out = drain(&mut r);
        assert_eq!(
            out.iter()
                .filter(|o| matches!(o, Output::Event { json, .. } if json.contains(r#""type":"error""#)))
                .count(),
            4
        );
    }

    #[test]
    fn a_second_robot_is_refused_the_same_one_replaces_itself() {
        let now = Instant::now();
        let mut r = full_room(now);
        assert_eq!(r.admit_publisher("other-robot"), Admission::Conflict);
        assert_eq!(r.admit_publisher("robot"), Admission::Replace(ROBOT));
        r.join(SessionId(9), member(Role::Robot, "robot", false), now);
        let out = drain(&mut r);
        assert!(out.contains(&Output::Close { id: ROBOT }));
        assert_eq!(r.publisher(), Some(SessionId(9)));
        assert_eq!(r.count_by_role(Role::Robot), 1);
    }

    #[test]
    fn viewers_wait_for_a_keyframe_and_packets_only_come_from_the_publisher() {
        let now = Instant::now();
        let mut r = full_room(now);
        // A viewer cannot inject media.
        assert!(r
            .on_rtp(
                DOC,
                RtpIn {
                    kind: TrackKind::Video,
                    ssrc: 5,
                    seq: 1,
                    ts: 0,
                    keyframe_start: true
                },
                now
            )
            .is_none());
        let f = r
            .on_rtp(
                ROBOT,
                RtpIn {
                    kind: TrackKind::Video,
                    ssrc: 5,
                    seq: 1,
                    ts: 0,
                    keyframe_start: false,
                },
                now,
            )
            .unwrap();
        assert!(f.targets.is_empty(), "interframe: nobody started yet");
        // Viewers still waiting: the robot is asked again once the coalescing window closes.
        r.handle_timeout(now + Duration::from_millis(300), 0);
        let out = drain(&mut r);
        assert!(out
            .iter()
            .any(|o| matches!(o, Output::RequestKeyframe { publisher } if *publisher == ROBOT)));
        let f = r
            .on_rtp(
                ROBOT,
                RtpIn {
                    kind: TrackKind::Video,
                    ssrc: 5,
                    seq: 2,
                    ts: 0,
                    keyframe_start: true,
                },
                now,
            )
            .unwrap();
        assert_eq!(f.targets.len(), 3, "keyframe starts all three viewers");
        assert_eq!(f.seq, 2);
        let a = r
            .on_rtp(
                ROBOT,
                RtpIn {
                    kind: TrackKind::Audio,
                    ssrc: 6,
                    seq: 77,
                    ts: 0,
                    keyframe_start: false,
                },
                now,
            )
            .unwrap();
        assert_eq!(a.targets.len(), 3, "audio needs no keyframe");
    }
}
