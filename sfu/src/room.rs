//! One room: one robot publishing, any number of viewers, and who may drive.
//!
//! This is the sans-IO core of the SFU. It is fed plain events (a session joined, an RTP packet
//! arrived from the publisher, a viewer asked for a keyframe, a control frame or an `events`
//! message arrived, time passed) and answers with what to do: which sessions a packet goes to
//! and with what continuous numbering ([`Fanout`], from [`crate::room_media`]), and queued
//! [`Output`]s (ask the robot for a keyframe, send this control frame to the robot, send this
//! event, disconnect that session). It owns no sockets and no str0m state, so it is tested with
//! plain function calls.
//!
//! Safety ordering lives here: on every lease change and e-stop the room queues the robot's stop
//! frame before the event that tells anyone, and repeats it twice within [`STOP_REPEATS`] (the
//! `control` channel is unreliable: one lost stop must not leave the old driver's last command
//! running until the watchdog fires). A repeat is dropped once the new epoch's first frame has
//! gone to the robot.
//!
//! Who a participant is: one live session per (`sub`, booking). A second session of the same
//! person replaces the first when it connects (a reload, a second tab), as the robot's does.
//!
//! It also says what it looks like from outside ([`Room::status`]: the robot online, its battery
//! and link, the e-stop, the lease holder, who is connected) for the API's live view; when that
//! is sent is `room_status.rs`'s business.
//!
//! Not here: SDP, ICE, DTLS, SRTP, payload-type mapping (the shell's `peer.rs` and str0m).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bedside_proto::events::{ClientEvent, LeaseReason, Participant, ServerEvent, Transport};
use bedside_proto::node::{EstopStatus, LeaseHolder, LinkStatus, ParticipantStatus, RoomStatus};
use bedside_proto::Role;

use crate::control_gate::{ControlGate, ControlGateConfig, FrameContext, Verdict};
use crate::estop::{Estop, Latcher};
use crate::lease::{Lease, LeaseInput, LeaseOutput, Member as LeaseMember};
use crate::room_event::RoomAudit;
use crate::room_media::{Control, RoomMedia};
pub use crate::room_media::{Fanout, Layout, RtpIn, TrackKind};
use crate::SessionId;

/// When the stop frame of a lease change or an e-stop is sent again, after the first.
pub const STOP_REPEATS: [Duration; 2] = [Duration::from_millis(30), Duration::from_millis(60)];

/// A participant as admitted by its join token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The token's `sub` (opaque user or robot id).
    pub sub: String,
    /// What it is in the room.
    pub role: Role,
    /// May take a free lease (the booking's doctor, within the slot).
    pub can_control: bool,
    /// The token's `exp`, unix ms: the session ends here.
    pub expires_at_ms: u64,
    /// The booking the token was issued for, if any.
    pub booking: Option<String>,
    /// What its m-lines receive and send (known once it connected).
    pub layout: Layout,
    /// How it reaches the node (known once its first packet after the ICE check arrived).
    pub transport: Option<Transport>,
}

/// Can a robot publish here?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Nobody publishes.
    Accept,
    /// The same robot reconnecting (Wi-Fi roam): the old session is replaced.
    Replace(SessionId),
    /// Another robot already publishes in this room.
    Conflict,
}

/// Who an event goes to, as the room decides it when it queues the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One session.
    One(SessionId),
    /// Everyone in the room.
    All,
    /// Everyone but one.
    AllBut(SessionId),
}

/// Who an event goes to, resolved when queued: a member who leaves later in the same step
/// (an expired holder, say) still hears what was said to everyone before it left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipients {
    /// One session.
    One(SessionId),
    /// These sessions.
    Many(Vec<SessionId>),
}

impl Recipients {
    /// Is `id` among them?
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
        /// The encoded frame.
        frame: [u8; 24],
    },
    /// Send this JSON on the `events` channel.
    Event {
        /// Who hears it.
        to: Recipients,
        /// The message.
        json: Arc<str>,
    },
    /// Close this session (it has been told why, if there was anyone to tell).
    Close {
        /// The session.
        id: SessionId,
        /// Why, as a metric label: `replaced`, `expired`, `revoked`.
        reason: &'static str,
    },
    /// For metrics: a control frame was dropped.
    ControlDropped {
        /// Who sent it.
        from: SessionId,
        /// The drop reason's label.
        reason: &'static str,
    },
    /// For metrics and the audit log: the lease changed or an e-stop latched/cleared.
    Audit(RoomAudit),
}

/// A room's settings.
#[derive(Debug, Clone, Copy)]
pub struct RoomConfig {
    /// At most one keyframe request to the robot per this long.
    pub keyframe_interval: Duration,
    /// At most one keyframe request per this long from students' decoders.
    pub observer_keyframe_interval: Duration,
    /// Joystick frame limits.
    pub gate: ControlGateConfig,
    /// `events` messages a participant may send per second, sustained (e-stops never count).
    pub events_per_second: f64,
    /// ... and in a burst.
    pub events_burst: f64,
}

impl Default for RoomConfig {
    fn default() -> Self {
        RoomConfig {
            keyframe_interval: Duration::from_millis(300),
            observer_keyframe_interval: Duration::from_secs(2),
            gate: ControlGateConfig::default(),
            events_per_second: 10.0,
            events_burst: 20.0,
        }
    }
}

/// What a room leaves behind when its last session leaves; the next room of the same id starts
/// from it, so an e-stop latch outlives the room emptying and epochs never go back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomMemory {
    /// The room latch, if a doctor latched it and nobody cleared it.
    pub latch: Option<Latcher>,
    /// The last lease epoch.
    pub epoch: u32,
}

/// A token bucket for one participant's `events` messages.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    /// When the last "rate_limited" error went out (one per second at most).
    told: Option<Instant>,
}

/// Heartbeats (`ping`) answered per participant per second, sustained and in a burst: four times
/// what a browser sends, so a busy tab catching up is still answered.
const PINGS_PER_SECOND: f64 = 20.0;

/// Take one token from a bucket (created full), refilled at `rate` per second up to `burst`.
fn take(
    entry: std::collections::hash_map::Entry<'_, SessionId, Bucket>,
    rate: f64,
    burst: f64,
    now: Instant,
) -> bool {
    let b = entry.or_insert(Bucket {
        tokens: burst,
        at: now,
        told: None,
    });
    let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
    b.tokens = (b.tokens + elapsed * rate).min(burst);
    b.at = now;
    if b.tokens >= 1.0 {
        b.tokens -= 1.0;
        return true;
    }
    false
}

/// See the module docs.
pub struct Room {
    config: RoomConfig,
    members: HashMap<SessionId, Member>,
    /// Join order, for stable presence lists.
    order: Vec<SessionId>,
    media: RoomMedia,
    lease: Lease,
    gate: ControlGate,
    estop: Estop,
    buckets: HashMap<SessionId, Bucket>,
    /// Each participant's heartbeat budget (`ping`), apart from `buckets` so a client's
    /// heartbeat never eats into what it may do, nor a burst of actions silence its heartbeat.
    ping_buckets: HashMap<SessionId, Bucket>,
    /// Stop frames still to repeat: when, and for which epoch.
    stop_repeats: VecDeque<(Instant, u32)>,
    /// The soonest token expiry among members, unix ms.
    earliest_expiry: Option<u64>,
    /// The current lease holder's `sub`, for the "previous holder" of the next audit record.
    holder_sub: Option<String>,
    /// The speakers last announced, and when.
    speaking: (Vec<SessionId>, Option<Instant>),
    /// Stop frames carry milliseconds since this instant (the room's creation).
    origin: Instant,
    outputs: VecDeque<Output>,
    /// What the robot publishing now said and what its session measured, for [`Room::status`];
    /// cleared when it leaves.
    robot: RobotReadings,
}

/// The robot's last readings: its telemetry and its session's link statistics.
#[derive(Debug, Clone, Copy, Default)]
struct RobotReadings {
    battery: Option<f32>,
    reported_quality: Option<f32>,
    loss: Option<f32>,
    rtt: Option<Duration>,
}

impl Room {
    /// An empty room created at `now`.
    pub fn new(config: RoomConfig, now: Instant) -> Self {
        Self::restore(config, now, RoomMemory::default())
    }

    /// A room that starts where the last one of its id left off.
    pub fn restore(config: RoomConfig, now: Instant, memory: RoomMemory) -> Self {
        Room {
            config,
            members: HashMap::new(),
            order: Vec::new(),
            media: RoomMedia::new(config.keyframe_interval, config.observer_keyframe_interval),
            lease: Lease::with_epoch(memory.epoch),
            gate: ControlGate::new(config.gate),
            estop: Estop::restored(memory.latch),
            buckets: HashMap::new(),
            ping_buckets: HashMap::new(),
            stop_repeats: VecDeque::new(),
            earliest_expiry: None,
            holder_sub: None,
            speaking: (Vec::new(), None),
            origin: now,
            outputs: VecDeque::new(),
            robot: RobotReadings::default(),
        }
    }

    /// What the next room of this id must start from.
    pub fn memory(&self) -> RoomMemory {
        RoomMemory {
            latch: self.estop.room_latch().map(|l| Latcher {
                session: None,
                sub: l.sub.clone(),
            }),
            epoch: self.lease.epoch(),
        }
    }

    /// No members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The robot's session, if one publishes.
    pub fn publisher(&self) -> Option<SessionId> {
        self.media.publisher()
    }

    /// A member by session.
    pub fn member(&self, id: SessionId) -> Option<&Member> {
        self.members.get(&id)
    }

    /// How many members have `role`.
    pub fn count_by_role(&self, role: Role) -> usize {
        self.members.values().filter(|m| m.role == role).count()
    }

    /// Who drives.
    pub fn lease_holder(&self) -> Option<SessionId> {
        self.lease.holder()
    }

    /// The lease's epoch.
    pub fn lease_epoch(&self) -> u32 {
        self.lease.epoch()
    }

    /// The gate obeys an e-stop (the room's or the robot's own).
    pub fn estop_latched(&self) -> bool {
        self.estop.is_latched()
    }

    /// May a robot with token subject `sub` publish here now?
    pub fn admit_publisher(&self, sub: &str) -> Admission {
        match self
            .media
            .publisher()
            .and_then(|p| self.members.get(&p).map(|m| (p, m)))
        {
            None => Admission::Accept,
            Some((p, m)) if m.sub == sub => Admission::Replace(p),
            Some(_) => Admission::Conflict,
        }
    }

    /// A session joined. Robots become the publisher (call [`admit_publisher`] first); a
    /// person already here under the same (`sub`, booking) is replaced.
    ///
    /// [`admit_publisher`]: Self::admit_publisher
    pub fn join(&mut self, id: SessionId, member: Member, now: Instant) {
        let role = member.role;
        if role == Role::Robot {
            if let Admission::Replace(old) = self.admit_publisher(&member.sub) {
                self.outputs.push_back(Output::Close {
                    id: old,
                    reason: "replaced",
                });
                self.leave(old, now);
            }
            self.media.set_publisher(id);
        } else if let Some(old) = self.same_person(&member) {
            self.evict(
                old,
                "replaced",
                "you joined this room again from another window or device",
                "replaced",
                now,
            );
        }
        self.earliest_expiry = Some(
            self.earliest_expiry
                .map_or(member.expires_at_ms, |e| e.min(member.expires_at_ms)),
        );
        self.members.insert(id, member.clone());
        self.order.push(id);
        if self.media.add(id, role, member.layout, now) {
            self.ask_robot_for_keyframe();
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
        // Everyone learns the e-stop state on joining, latched or not: a page that reconnects
        // shows the server's state rather than its own memory, and a reconnecting robot holds
        // the latch it kept until the room says it is clear.
        let ev = self.estop_event();
        self.send(Target::One(id), ev);
        // The newcomer gets the whole room once; everyone else only the change. Sending the
        // full list to everyone on every join would cost O(n^2) bytes as a class fills up.
        self.send_presence_to(id);
        self.send_to_others(
            id,
            ServerEvent::Joined {
                participant: participant(id, &member),
            },
        );
        self.update_control(now);
    }

    fn same_person(&self, m: &Member) -> Option<SessionId> {
        self.order.iter().copied().find(|id| {
            self.members
                .get(id)
                .is_some_and(|o| o.sub == m.sub && o.booking == m.booking && o.role == m.role)
        })
    }

    /// A session left (goodbye, ICE timeout, DTLS failure or replaced).
    pub fn leave(&mut self, id: SessionId, now: Instant) {
        let Some(gone) = self.members.remove(&id) else {
            return;
        };
        if gone.role == Role::Robot {
            // Readings of a robot that left say nothing about the next one.
            self.robot = RobotReadings::default();
        }
        self.order.retain(|s| *s != id);
        self.media.remove(id, now);
        self.gate.forget(id);
        self.buckets.remove(&id);
        self.ping_buckets.remove(&id);
        self.lease_input(LeaseInput::Leave { id }, now);
        self.send(Target::All, ServerEvent::Left { id: id.to_string() });
        self.update_control(now);
    }

    /// Tell a member why, then close its session (revoked, replaced, expired).
    pub fn evict(
        &mut self,
        id: SessionId,
        code: &str,
        message: &str,
        reason: &'static str,
        now: Instant,
    ) {
        if !self.members.contains_key(&id) {
            return;
        }
        self.refuse(id, code, message);
        self.outputs.push_back(Output::Close { id, reason });
        self.leave(id, now);
    }

    /// Take `can_control` away from a member (an administrator revoked the lease of its
    /// booking): it loses the lease if it holds it and cannot take it again.
    pub fn withdraw_control(&mut self, id: SessionId, code: &str, message: &str, now: Instant) {
        let Some(m) = self.members.get_mut(&id) else {
            return;
        };
        let had = m.can_control || self.lease.is_holder(id);
        m.can_control = false;
        self.lease_input(LeaseInput::Withdraw { id }, now);
        if had {
            self.refuse(id, code, message);
        }
    }

    /// The API's record of the room latch (after a restart, or a latch made elsewhere): latch
    /// the room if it says so. A clear is never taken from here: only the holder clears.
    pub fn restore_latch(&mut self, latch: Latcher, now: Instant) {
        if !self.estop.restore_room_latch(latch) {
            return;
        }
        self.stop_robot(self.lease.epoch(), now);
        let ev = self.estop_event();
        self.send(Target::All, ev);
    }

    /// An RTP packet from `from`. Returns where it goes, or `None` to drop it.
    pub fn on_rtp(&mut self, from: SessionId, pkt: RtpIn, now: Instant) -> Option<Fanout<'_>> {
        let (fan, ask) = self.media.on_rtp(from, pkt, now);
        if ask {
            self.outputs
                .push_back(Output::RequestKeyframe { publisher: from });
        }
        fan
    }

    /// A receiver's decoder asked for a keyframe (PLI/FIR from its browser), on its robot line
    /// (`slot` None) or on a video slot.
    pub fn on_keyframe_request(&mut self, from: SessionId, slot: Option<u8>, now: Instant) {
        let Some(role) = self.members.get(&from).map(|m| m.role) else {
            return;
        };
        if let Some(publisher) = self.media.on_keyframe_request(from, role, slot, now) {
            if publisher != from {
                self.outputs
                    .push_back(Output::RequestKeyframe { publisher });
            }
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
            // A suspended holder (gone silent) does not drive until it is heard from again.
            is_holder: self.lease.drives(from),
            epoch: self.lease.epoch(),
            estop_latched: self.estop.is_latched(),
        };
        let verdict = self.gate.check(ctx, bytes, now);
        match (verdict, self.media.publisher()) {
            (Verdict::Forward(frame), Some(robot)) => {
                // The robot has the new epoch from the holder's own frame: a repeated stop for
                // it would only interrupt the new driver.
                self.stop_repeats.clear();
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
                if self.take_token(from, now) {
                    self.send(
                        Target::One(from),
                        ServerEvent::Error {
                            code: "bad_event".into(),
                            message,
                        },
                    );
                }
                return;
            }
        };
        if let ClientEvent::Ping { n } = event {
            // The heartbeat: anyone, students included, learns the room still hears them.
            if take(
                self.ping_buckets.entry(from),
                PINGS_PER_SECOND,
                PINGS_PER_SECOND,
                now,
            ) {
                self.send(Target::One(from), ServerEvent::Pong { n });
            }
            return;
        }
        if member.role == Role::Observer {
            // Students are read-only: everything they send is refused.
            if self.take_token(from, now) {
                self.refuse(from, "forbidden", "observers are read-only");
            }
            return;
        }
        // An e-stop is never rate limited: it is the one message that must always get through.
        if event != ClientEvent::Estop && !self.take_token(from, now) {
            return;
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
            ClientEvent::Estop => match self.estop.latch(from, &member.sub, member.role) {
                Ok(true) => self.room_latch_changed(true, &member.sub, now),
                Ok(false) => {}
                Err(code) => self.refuse(from, code, "only doctors may latch the e-stop"),
            },
            ClientEvent::EstopClear => match self.estop.clear(self.lease.is_holder(from)) {
                Ok(true) => self.room_latch_changed(false, &member.sub, now),
                Ok(false) if self.estop.robot_latched() => self.refuse(
                    from,
                    "robot_estop",
                    "the e-stop was pressed at the robot: it can only be released there",
                ),
                Ok(false) => {}
                Err(e) => self.refuse(
                    from,
                    e.code(),
                    "only the doctor who has control may clear the e-stop",
                ),
            },
            ClientEvent::Media {
                audio_muted,
                video_muted,
            } => {
                self.media.set_muted(from, audio_muted, video_muted, now);
                self.send(
                    Target::All,
                    ServerEvent::Media {
                        id: from.to_string(),
                        audio_muted,
                        video_muted,
                    },
                );
                self.media_events(now);
            }
            // Answered above, before the budget.
            ClientEvent::Ping { .. } => {}
            ClientEvent::Telemetry(t) => {
                if member.role != Role::Robot {
                    return self.refuse(from, "forbidden", "only the robot sends telemetry");
                }
                // Untrusted numbers: only a fraction in range is kept.
                let fraction = |v: Option<f32>| v.filter(|v| (0.0..=1.0).contains(v));
                if let Some(b) = fraction(t.battery) {
                    self.robot.battery = Some(b);
                }
                if let Some(q) = fraction(t.link_quality) {
                    self.robot.reported_quality = Some(q);
                }
                if self.estop.robot_reported(t.estop) {
                    if t.estop {
                        // Already stopping by its own hand; the repeat costs nothing.
                        self.stop_robot(self.lease.epoch(), now);
                    }
                    self.outputs.push_back(Output::Audit(RoomAudit::RobotEstop {
                        robot: Some(member.sub.clone()),
                        pressed: t.estop,
                    }));
                    let ev = self.estop_event();
                    self.send(Target::All, ev);
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

    /// Take one token from `from`'s bucket. False (and one error a second) when it is empty.
    fn take_token(&mut self, from: SessionId, now: Instant) -> bool {
        let (rate, burst) = (self.config.events_per_second, self.config.events_burst);
        if take(self.buckets.entry(from), rate, burst, now) {
            return true;
        }
        let Some(b) = self.buckets.get_mut(&from) else {
            return false;
        };
        let tell = b
            .told
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1));
        if tell {
            b.told = Some(now);
            self.refuse(
                from,
                "rate_limited",
                "too many messages; slow down (the e-stop always gets through)",
            );
        }
        false
    }

    /// `id` has gone silent (no datagram for the holder's silence timeout): if it holds the
    /// lease, the robot is stopped and the lease suspended until `until_unix_ms`.
    pub fn suspend(&mut self, id: SessionId, until_unix_ms: u64, now: Instant) {
        self.lease_input(
            LeaseInput::Suspend {
                id,
                until_ms: until_unix_ms,
            },
            now,
        );
    }

    /// `id` is heard from again: a suspended lease is its own again, same epoch.
    pub fn resume(&mut self, id: SessionId, now: Instant) {
        self.lease_input(LeaseInput::Resume { id }, now);
    }

    /// `id` now reaches the node by `transport` (its first path, or a change: an ICE restart
    /// onto another network): everyone is told, so a doctor sees why a picture lags.
    pub fn set_transport(&mut self, id: SessionId, transport: Transport) {
        let Some(m) = self.members.get_mut(&id) else {
            return;
        };
        if m.transport.replace(transport) == Some(transport) {
            return;
        }
        self.send(
            Target::All,
            ServerEvent::Transport {
                id: id.to_string(),
                transport,
            },
        );
    }

    /// Link statistics of session `id` (kept if it is the robot publishing here): the loss of
    /// what it sends, and a round trip, each when known.
    pub fn set_link(&mut self, id: SessionId, loss: Option<f32>, rtt: Option<Duration>) {
        if self.media.publisher() != Some(id) {
            return;
        }
        if let Some(l) = loss.filter(|l| l.is_finite()) {
            self.robot.loss = Some(l.clamp(0.0, 1.0));
        }
        if rtt.is_some() {
            self.robot.rtt = rtt;
        }
    }

    /// The room as the API's live view shows it, for room `id` on media node `node`, to be
    /// refreshed within `refresh_secs`.
    pub fn status(&self, id: &str, node: &str, refresh_secs: u32) -> RoomStatus {
        let robot = self.media.publisher().and_then(|p| self.members.get(&p));
        let link = robot.map(|r| LinkStatus {
            transport: r.transport,
            loss: self.robot.loss,
            rtt_ms: self
                .robot
                .rtt
                .map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX)),
            reported_quality: self.robot.reported_quality,
        });
        let lease = self.lease.holder().and_then(|h| {
            self.members.get(&h).map(|m| LeaseHolder {
                sub: m.sub.clone(),
                session: h.to_string(),
                role: m.role,
            })
        });
        let participants = self
            .order
            .iter()
            .filter_map(|id| {
                self.members.get(id).map(|m| ParticipantStatus {
                    session: id.to_string(),
                    sub: m.sub.clone(),
                    role: m.role,
                    booking: m.booking.clone(),
                    transport: m.transport,
                })
            })
            .collect();
        RoomStatus {
            room: id.to_string(),
            node: node.to_string(),
            closed: false,
            refresh_secs,
            robot_online: robot.is_some(),
            battery: robot.and(self.robot.battery),
            link,
            estop: self.estop_status(),
            lease,
            participants,
        }
    }

    /// The e-stop as the live view shows it.
    pub fn estop_status(&self) -> EstopStatus {
        EstopStatus {
            latched: self.estop.is_latched(),
            robot: self.estop.robot_latched(),
        }
    }

    /// The holder is suspended (silent).
    pub fn lease_suspended(&self) -> bool {
        self.lease.is_suspended()
    }

    /// An administrator takes the lease away.
    pub fn admin_revoke(&mut self, now: Instant) {
        self.lease_input(LeaseInput::AdminRevoke, now);
    }

    /// Time passed: stop repeats, deferred keyframe requests, lease and token expiry.
    pub fn handle_timeout(&mut self, now: Instant, now_unix_ms: u64) {
        while let Some(&(due, epoch)) = self.stop_repeats.front() {
            if due > now {
                break;
            }
            self.stop_repeats.pop_front();
            if let Some(robot) = self.media.publisher() {
                let frame = self.gate.stop_frame(epoch, self.ms_since_origin(now));
                self.outputs.push_back(Output::Control { to: robot, frame });
            }
        }
        for publisher in self.media.poll(now) {
            self.outputs
                .push_back(Output::RequestKeyframe { publisher });
        }
        self.media_events(now);
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
            self.evict(
                id,
                "expired",
                "your access to this room has ended",
                "expired",
                now,
            );
        }
        self.earliest_expiry = self.members.values().map(|m| m.expires_at_ms).min();
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has work, as (monotonic, unix ms).
    pub fn next_deadline(&self) -> (Option<Instant>, Option<u64>) {
        let wall = match (self.lease.next_deadline_ms(), self.earliest_expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mono = match (self.media.next_deadline(), self.stop_repeats.front()) {
            (Some(a), Some((b, _))) => Some(a.min(*b)),
            (a, b) => a.or(b.map(|(t, _)| *t)),
        };
        (mono, wall)
    }

    /// The next thing to do, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    fn ask_robot_for_keyframe(&mut self) {
        if let Some(publisher) = self.media.publisher() {
            self.outputs
                .push_back(Output::RequestKeyframe { publisher });
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

    /// The robot hears "stop" now and twice more within [`STOP_REPEATS`].
    fn stop_robot(&mut self, epoch: u32, now: Instant) {
        let Some(robot) = self.media.publisher() else {
            return;
        };
        let frame = self.gate.stop_frame(epoch, self.ms_since_origin(now));
        self.outputs.push_back(Output::Control { to: robot, frame });
        // Repeats for an older epoch say nothing the new stop does not.
        self.stop_repeats.retain(|(_, e)| *e >= epoch);
        for d in STOP_REPEATS {
            self.stop_repeats.push_back((now + d, epoch));
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
                    self.stop_robot(epoch, now);
                    let holder_sub = holder
                        .and_then(|h| self.members.get(&h))
                        .map(|m| m.sub.clone());
                    let previous = std::mem::replace(&mut self.holder_sub, holder_sub.clone());
                    self.outputs
                        .push_back(Output::Audit(RoomAudit::LeaseChanged {
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
                    // The robot's screen follows the driver.
                    self.update_control(now);
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
                LeaseOutput::Suspended { holder, epoch }
                | LeaseOutput::Resumed { holder, epoch } => {
                    let suspended = matches!(out, LeaseOutput::Suspended { .. });
                    if suspended {
                        // Whatever the silent holder last sent, the robot stops now.
                        self.stop_robot(epoch, now);
                    }
                    let reason = if suspended {
                        LeaseReason::Suspended
                    } else {
                        LeaseReason::Resumed
                    };
                    let sub = self.members.get(&holder).map(|m| m.sub.clone());
                    self.outputs
                        .push_back(Output::Audit(RoomAudit::LeaseChanged {
                            holder: sub.clone(),
                            previous: sub,
                            epoch,
                            reason,
                        }));
                    self.send(
                        Target::All,
                        ServerEvent::Lease {
                            holder: Some(holder.to_string()),
                            epoch,
                            reason,
                        },
                    );
                }
                LeaseOutput::Rejected { to, code, message } => self.refuse(to, code, message),
            }
        }
    }

    /// The room latch changed (a doctor latched it, or the holder cleared it).
    fn room_latch_changed(&mut self, latched: bool, by_sub: &str, now: Instant) {
        if latched {
            self.stop_robot(self.lease.epoch(), now);
        }
        let by = Some(by_sub.to_string());
        self.outputs.push_back(Output::Audit(if latched {
            RoomAudit::EstopLatched { by }
        } else {
            RoomAudit::EstopCleared { by }
        }));
        let ev = self.estop_event();
        self.send(Target::All, ev);
    }

    /// Tell the media who drives and who may (the robot's presenter follows them), then tell
    /// receivers what their slots carry.
    fn update_control(&mut self, now: Instant) {
        let may_drive = self
            .order
            .iter()
            .copied()
            .filter(|id| self.members.get(id).is_some_and(|m| m.can_control))
            .collect();
        self.media.set_control(
            Control {
                holder: self.lease.holder(),
                may_drive,
            },
            now,
        );
        self.media_events(now);
    }

    /// Keyframe requests for sources a slot just switched to, at once; slot changes to their
    /// receivers; who is speaking to everyone (at most 4 times a second).
    fn media_events(&mut self, now: Instant) {
        // A slot that switched shows its old picture until the new source's keyframe: asking
        // only at the media's next timer would add up to a coalescing window to every handoff.
        for publisher in self.media.take_keyframe_wants() {
            self.outputs
                .push_back(Output::RequestKeyframe { publisher });
        }
        for s in self.media.take_changed() {
            let ids =
                |v: &[Option<SessionId>]| v.iter().map(|s| s.map(|s| s.to_string())).collect();
            let ev = ServerEvent::Slots {
                audio: ids(&s.audio),
                video: ids(&s.video),
            };
            self.send(Target::One(s.receiver), ev);
        }
        let speaking = self.media.speaking(now);
        let due = self
            .speaking
            .1
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_millis(250));
        if speaking != self.speaking.0 && due {
            self.speaking = (speaking.clone(), Some(now));
            self.send(
                Target::All,
                ServerEvent::Speaking {
                    ids: speaking.iter().map(|s| s.to_string()).collect(),
                },
            );
        }
    }

    fn estop_event(&self) -> ServerEvent {
        ServerEvent::Estop {
            latched: self.estop.is_latched(),
            by: self
                .estop
                .latched_by()
                .map(|s| s.to_string())
                .unwrap_or_default(),
            robot: self.estop.robot_latched(),
        }
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
        sends_audio: m.layout.sends_audio,
        sends_video: m.layout.sends_video,
        transport: m.transport,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(role: Role, sub: &str, can_control: bool) -> Member {
        let layout = match role {
            Role::Robot => Layout {
                sends_audio: true,
                sends_video: true,
                ..Layout::default()
            },
            _ => Layout {
                robot_video: true,
                robot_audio: true,
                ..Layout::default()
            },
        };
        Member {
            sub: sub.into(),
            role,
            can_control,
            expires_at_ms: u64::MAX / 2,
            booking: None,
            layout,
            transport: None,
        }
    }

    fn robot_targets(f: &Fanout<'_>) -> (u64, Vec<SessionId>) {
        match f {
            Fanout::Robot { seq, targets, .. } => (*seq, targets.to_vec()),
            Fanout::Slots { .. } => panic!("a robot packet goes to robot lines"),
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
    fn the_status_says_who_is_here_and_what_the_robot_reports() {
        let now = Instant::now();
        let mut r = full_room(now);
        r.on_event(
            ROBOT,
            br#"{"type":"telemetry","battery":0.61,"link_quality":0.9}"#,
            now,
        );
        // A doctor's numbers are refused; out-of-range ones from the robot are ignored.
        r.on_event(DOC, br#"{"type":"telemetry","battery":0.01}"#, now);
        r.on_event(ROBOT, br#"{"type":"telemetry","battery":7.0}"#, now);
        r.set_link(ROBOT, Some(0.05), Some(Duration::from_millis(42)));
        r.set_link(DOC, Some(0.9), None);
        r.on_event(DOC, br#"{"type":"request_lease"}"#, now);
        r.on_event(CONSULT, br#"{"type":"estop"}"#, now);
        drain(&mut r);
        let s = r.status("room-1", "node-a", 10);
        assert_eq!((s.room.as_str(), s.node.as_str()), ("room-1", "node-a"));
        assert!(s.robot_online && !s.closed);
        assert_eq!(s.battery, Some(0.61));
        let link = s.link.expect("a link");
        assert_eq!(link.loss, Some(0.05));
        assert_eq!(link.rtt_ms, Some(42));
        assert_eq!(link.reported_quality, Some(0.9));
        assert!(s.estop.latched && !s.estop.robot);
        let lease = s.lease.expect("a holder");
        assert_eq!((lease.sub.as_str(), lease.role), ("doc", Role::Doctor));
        assert_eq!(lease.session, DOC.to_string());
        let who: Vec<(&str, Role)> = s
            .participants
            .iter()
            .map(|p| (p.sub.as_str(), p.role))
            .collect();
        assert_eq!(
            who,
            vec![
                ("robot", Role::Robot),
                ("doc", Role::Doctor),
                ("consultant", Role::Doctor),
                ("student", Role::Observer),
            ]
        );
        assert_eq!(s.participants[3].session, STUDENT.to_string());

        // The robot leaves: offline, and its readings go with it.
        r.leave(ROBOT, now);
        let s = r.status("room-1", "node-a", 10);
        assert!(!s.robot_online);
        assert_eq!((s.battery, s.link), (None, None));
        assert_eq!(s.participants.len(), 3);
        r.join(ROBOT, member(Role::Robot, "robot", false), now);
        assert_eq!(
            r.status("room-1", "node-a", 10).battery,
            None,
            "not the old robot's"
        );
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
        let closed = out.iter().position(|o| {
            *o == Output::Close {
                id: short,
                reason: "expired",
            }
        });
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
        let closed = out.iter().position(|o| {
            *o == Output::Close {
                id: doc,
                reason: "expired",
            }
        });
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
    fn every_ping_is_answered_to_its_sender_outside_the_events_budget() {
        let now = Instant::now();
        let mut r = full_room(now);
        // A doctor who spent the whole events budget still hears its heartbeat answered...
        for _ in 0..40 {
            r.on_event(CONSULT, br#"{"type":"release"}"#, now);
        }
        drain(&mut r);
        for n in 0..20 {
            r.on_event(
                CONSULT,
                format!(r#"{{"type":"ping","n":{n}}}"#).as_bytes(),
                now,
            );
        }
        // ... up to its own budget: a flood goes unanswered, without an error.
        r.on_event(CONSULT, br#"{"type":"ping","n":99}"#, now);
        let out = drain(&mut r);
        let pongs = |who: SessionId| -> Vec<String> {
            out.iter()
                .filter_map(|o| match o {
                    Output::Event {
                        to: Recipients::One(to),
                        json,
                    } if *to == who => Some(json.to_string()),
                    _ => None,
                })
                .collect()
        };
        let consult = pongs(CONSULT);
        assert_eq!(consult.len(), 20, "{consult:?}");
        assert_eq!(consult[0], r#"{"type":"pong","n":0}"#);
        assert!(consult.iter().all(|j| j.contains(r#""type":"pong""#)));
        // The budget refills with time.
        r.on_event(
            CONSULT,
            br#"{"type":"ping","n":100}"#,
            now + Duration::from_millis(100),
        );
        assert!(drain(&mut r).iter().any(
            |o| matches!(o, Output::Event { json, .. } if &**json == r#"{"type":"pong","n":100}"#)
        ));
        // A student's heartbeat is answered too (it may send nothing else), to the student only.
        let mut r = full_room(now);
        r.on_event(STUDENT, br#"{"type":"ping","n":41}"#, now);
        let out = drain(&mut r);
        assert_eq!(
            out,
            vec![Output::Event {
                to: Recipients::One(STUDENT),
                json: r#"{"type":"pong","n":41}"#.into()
            }]
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
        assert!(out.contains(&Output::Close {
            id: ROBOT,
            reason: "replaced"
        }));
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
                    keyframe_start: true,
                    audio_level: None,
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
                    audio_level: None,
                },
                now,
            )
            .unwrap();
        assert!(
            robot_targets(&f).1.is_empty(),
            "interframe: nobody started yet"
        );
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
                    audio_level: None,
                },
                now,
            )
            .unwrap();
        assert_eq!(
            robot_targets(&f).1.len(),
            3,
            "keyframe starts all three viewers"
        );
        assert_eq!(robot_targets(&f).0, 2);
        let a = r
            .on_rtp(
                ROBOT,
                RtpIn {
                    kind: TrackKind::Audio,
                    ssrc: 6,
                    seq: 77,
                    ts: 0,
                    keyframe_start: false,
                    audio_level: None,
                },
                now,
            )
            .unwrap();
        assert_eq!(robot_targets(&a).1.len(), 3, "audio needs no keyframe");
    }

    /// The stop frames the robot was sent in `out`, with their positions.
    fn stops(out: &[Output]) -> Vec<(usize, bedside_proto::ControlFrame)> {
        out.iter()
            .enumerate()
            .filter_map(|(i, o)| match o {
                Output::Control { to, frame } if *to == ROBOT => {
                    bedside_proto::ControlFrame::decode(frame)
                        .ok()
                        .filter(|f| f.kind == bedside_proto::FrameKind::Stop)
                        .map(|f| (i, f))
                }
                _ => None,
            })
            .collect()
    }

    fn first_event(out: &[Output], kind: &str) -> Option<usize> {
        let tag = format!(r#""type":"{kind}""#);
        out.iter()
            .position(|o| matches!(o, Output::Event { json, .. } if json.contains(&tag)))
    }

    /// Every way the lease can change sends the robot a stop frame for the new epoch, before
    /// anybody hears of the change.
    #[test]
    fn every_lease_change_stops_the_robot_first() {
        let now = Instant::now();
        type Step = fn(&mut Room, Instant);
        let take: Step = |r, now| r.on_event(DOC, br#"{"type":"request_lease"}"#, now);
        let cases: [(&str, Step); 5] = [
            ("granted", |_, _| {}),
            ("released", |r, now| {
                r.on_event(DOC, br#"{"type":"release"}"#, now)
            }),
            ("revoked", |r, now| r.admin_revoke(now)),
            ("disconnected", |r, now| r.leave(DOC, now)),
            ("handoff", |r, now| {
                r.on_event(DOC, br#"{"type":"handoff","to":"s3"}"#, now)
            }),
        ];
        for (reason, step) in cases {
            let mut r = full_room(now);
            take(&mut r, now);
            if reason != "granted" {
                drain(&mut r);
                step(&mut r, now);
            }
            let out = drain(&mut r);
            let stops = stops(&out);
            let lease = first_event(&out, "lease").expect("a lease event");
            assert!(
                out[lease..]
                    .iter()
                    .any(|o| matches!(o, Output::Event { json, .. }
                    if json.contains(&format!(r#""reason":"{reason}""#)))),
                "{reason}: {out:?}"
            );
            assert_eq!(stops.len(), 1, "{reason}: one stop frame");
            let (at, frame) = stops[0];
            assert!(at < lease, "{reason}: stop before the lease event");
            assert_eq!(frame.epoch, r.lease_epoch(), "{reason}: the new epoch");
        }
    }

    #[test]
    fn latching_the_estop_stops_the_robot_before_anyone_is_told() {
        let now = Instant::now();
        let mut r = full_room(now);
        r.on_event(DOC, br#"{"type":"request_lease"}"#, now);
        drain(&mut r);
        r.on_event(CONSULT, br#"{"type":"estop"}"#, now);
        let out = drain(&mut r);
        let stops = stops(&out);
        let told = first_event(&out, "estop").expect("estop event");
        assert_eq!(stops.len(), 1, "{out:?}");
        assert!(stops[0].0 < told);
        assert!(r.estop_latched());
        assert!(out.contains(&Output::Audit(RoomAudit::EstopLatched {
            by: Some("consultant".into())
        })));
    }

    #[test]
    fn the_robots_own_estop_latches_the_room_and_everyone_hears_it() {
        let now = Instant::now();
        let mut r = full_room(now);
        r.on_event(ROBOT, br#"{"type":"telemetry","estop":true}"#, now);
        let out = drain(&mut r);
        assert!(r.estop_latched());
        let told: Vec<_> = out
            .iter()
            .filter_map(|o| match o {
                Output::Event { to, json } if json.contains(r#""type":"estop""#) => Some(to),
                _ => None,
            })
            .collect();
        assert_eq!(told.len(), 1);
        for id in [DOC, CONSULT, STUDENT] {
            assert!(told[0].contains(id), "{id} is told");
        }
        // A doctor's telemetry is refused and latches nothing.
        let mut r = full_room(now);
        r.on_event(DOC, br#"{"type":"telemetry","estop":true}"#, now);
        assert!(!r.estop_latched());
    }

    #[test]
    fn the_latch_is_told_to_late_joiners_and_a_reconnecting_robot() {
        let now = Instant::now();
        let mut r = full_room(now);
        r.on_event(CONSULT, br#"{"type":"estop"}"#, now);
        drain(&mut r);
        let late = SessionId(20);
        r.join(late, member(Role::Observer, "late", false), now);
        let robot_again = SessionId(21);
        r.join(robot_again, member(Role::Robot, "robot", false), now);
        let out = drain(&mut r);
        for id in [late, robot_again] {
            assert!(
                out.iter().any(|o| matches!(o, Output::Event { to: Recipients::One(to), json }
                    if *to == id && json.contains(r#""type":"estop""#) && json.contains(r#""latched":true"#))),
                "{id} hears the room is latched: {out:?}"
            );
        }
    }

    fn drive(seq: u32) -> Vec<u8> {
        bedside_proto::ControlFrame::drive(seq, 0, 1000, 0, 0)
            .encode()
            .to_vec()
    }

    fn forwarded_drives(out: &[Output]) -> usize {
        out.iter()
            .filter(|o| matches!(o, Output::Control { frame, .. }
                if bedside_proto::ControlFrame::decode(frame).is_ok_and(|f| f.kind == bedside_proto::FrameKind::Drive)))
            .count()
    }

    /// The e-stop pressed at the bedside belongs to the bedside: the holder's clear and drive
    /// frames do not move a robot whose own e-stop is pressed.
    #[test]
    fn a_doctors_clear_never_releases_the_robots_own_estop() {
        let now = Instant::now();
        let mut r = full_room(now);
        r.on_event(DOC, br#"{"type":"request_lease"}"#, now);
        r.on_event(ROBOT, br#"{"type":"telemetry","estop":true}"#, now);
        drain(&mut r);
        r.on_event(DOC, br#"{"type":"estop_clear"}"#, now);
        r.on_control(DOC, &drive(1), now);
        let out = drain(&mut r);
        assert!(r.estop_latched());
        assert_eq!(forwarded_drives(&out), 0, "{out:?}");
        assert!(out
            .iter()
            .any(|o| matches!(o, Output::Event { json, .. } if json.contains("robot_estop"))));
        // Only the robot releases it.
        r.on_event(ROBOT, br#"{"type":"telemetry","estop":false}"#, now);
        assert!(!r.estop_latched());
        r.on_control(DOC, &drive(2), now);
        assert_eq!(forwarded_drives(&drain(&mut r)), 1);
    }

    #[test]
    fn the_room_latch_and_epoch_outlive_the_room() {
        let now = Instant::now();
        let mut r = full_room(now);
        r.on_event(DOC, br#"{"type":"request_lease"}"#, now);
        r.on_event(CONSULT, br#"{"type":"estop"}"#, now);
        drain(&mut r);
        let memory = r.memory();
        assert_eq!(memory.epoch, 1);
        assert_eq!(
            memory.latch.as_ref().unwrap().sub.as_deref(),
            Some("consultant")
        );
        // Everyone leaves; the next room of this id starts latched, with epochs going on.
        let mut again = Room::restore(RoomConfig::default(), now, memory);
        assert!(again.estop_latched());
        again.join(ROBOT, member(Role::Robot, "robot", false), now);
        again.join(DOC, member(Role::Doctor, "doc", true), now);
        again.on_event(DOC, br#"{"type":"request_lease"}"#, now);
        again.on_control(DOC, &drive(1), now);
        let out = drain(&mut again);
        assert_eq!(again.lease_epoch(), 2, "epochs never go back");
        assert_eq!(forwarded_drives(&out), 0, "still latched");
        assert!(out.iter().any(
            |o| matches!(o, Output::Event { to: Recipients::One(ROBOT), json }
            if json.contains(r#""type":"estop""#) && json.contains(r#""latched":true"#))
        ));
    }

    #[test]
    fn stop_frames_are_repeated_until_the_new_epoch_drives() {
        let now = Instant::now();
        let mut r = full_room(now);
        r.on_event(DOC, br#"{"type":"request_lease"}"#, now);
        assert_eq!(stops(&drain(&mut r)).len(), 1);
        assert_eq!(r.next_deadline().0, Some(now + STOP_REPEATS[0]));
        r.handle_timeout(now + STOP_REPEATS[0], 0);
        let second = stops(&drain(&mut r));
        r.handle_timeout(now + STOP_REPEATS[1], 0);
        let third = stops(&drain(&mut r));
        assert_eq!((second.len(), third.len()), (1, 1));
        assert_eq!(second[0].1.epoch, 1);
        assert!(
            third[0].1.seq > second[0].1.seq,
            "each repeat is a newer frame"
        );

        // Once the new holder's own frame has gone out, the repeats are dropped.
        r.on_event(DOC, br#"{"type":"release"}"#, now);
        r.on_event(DOC, br#"{"type":"request_lease"}"#, now);
        drain(&mut r);
        r.on_control(DOC, &drive(1), now);
        drain(&mut r);
        r.handle_timeout(now + Duration::from_secs(1), 0);
        assert!(stops(&drain(&mut r)).is_empty());
    }

    #[test]
    fn events_are_rate_limited_but_the_estop_always_gets_through() {
        let now = Instant::now();
        let mut r = full_room(now);
        for _ in 0..100 {
            r.on_event(CONSULT, br#"{"type":"release"}"#, now);
        }
        let out = drain(&mut r);
        let errors = |out: &[Output], code: &str| {
            out.iter()
                .filter(|o| matches!(o, Output::Event { json, .. } if json.contains(code)))
                .count()
        };
        assert_eq!(errors(&out, "not_holder"), 20, "the burst");
        assert_eq!(errors(&out, "rate_limited"), 1, "told once");
        r.on_event(CONSULT, br#"{"type":"estop"}"#, now);
        assert!(r.estop_latched(), "an e-stop is never rate limited");
        // Tokens come back with time.
        r.on_event(
            CONSULT,
            br#"{"type":"release"}"#,
            now + Duration::from_secs(1),
        );
        assert_eq!(errors(&drain(&mut r), "not_holder"), 1);
    }

    #[test]
    fn a_second_session_of_the_same_person_replaces_the_first() {
        let now = Instant::now();
        let mut r = full_room(now);
        r.on_event(DOC, br#"{"type":"request_lease"}"#, now);
        drain(&mut r);
        let again = SessionId(30);
        r.join(again, member(Role::Doctor, "doc", true), now);
        let out = drain(&mut r);
        assert!(out.contains(&Output::Close {
            id: DOC,
            reason: "replaced"
        }));
        assert!(r.member(DOC).is_none());
        assert_eq!(
            r.lease_holder(),
            None,
            "the old session's lease ended with it"
        );
        assert!(!stops(&out).is_empty(), "and the robot was stopped");
        // Another booking of the same user is another seat.
        let other = Member {
            booking: Some("other".into()),
            ..member(Role::Doctor, "doc", true)
        };
        r.join(SessionId(31), other, now);
        assert!(r.member(again).is_some());
    }

    #[test]
    fn a_handoff_asks_the_new_presenter_for_a_keyframe_at_once() {
        // The robot's presenter slot shows the old driver's last picture until the new one's
        // keyframe: the request must leave with the lease change, not at the media's next timer.
        let now = Instant::now();
        let camera = |role, sub: &str, can_control| {
            let mut m = member(role, sub, can_control);
            m.layout.sends_video = true;
            m.layout.sends_audio = true;
            m
        };
        let mut robot = member(Role::Robot, "robot", false);
        robot.layout.video_slots = 1;
        let mut r = Room::new(RoomConfig::default(), now);
        r.join(ROBOT, robot, now);
        r.join(DOC, camera(Role::Doctor, "doc", true), now);
        r.join(CONSULT, camera(Role::Doctor, "consultant", false), now);
        r.on_event(DOC, br#"{"type":"request_lease"}"#, now);
        drain(&mut r);
        let t = now + Duration::from_secs(2);
        r.on_event(DOC, br#"{"type":"handoff","to":"s3"}"#, t);
        let out = drain(&mut r);
        assert_eq!(r.lease_holder(), Some(CONSULT));
        assert!(
            out.iter().any(
                |o| matches!(o, Output::RequestKeyframe { publisher } if *publisher == CONSULT)
            ),
            "the new holder's encoder is asked for a keyframe with the handoff"
        );
    }

    #[test]
    fn students_cannot_make_the_robot_spend_its_bits_on_keyframes() {
        let now = Instant::now();
        let mut r = full_room(now);
        let mut t = now + Duration::from_secs(1);
        let mut asked = 0;
        for _ in 0..20 {
            r.on_keyframe_request(STUDENT, None, t);
            r.handle_timeout(t, 0);
            asked += drain(&mut r)
                .iter()
                .filter(|o| matches!(o, Output::RequestKeyframe { .. }))
                .count();
            t += Duration::from_millis(100);
        }
        assert_eq!(asked, 1, "one in two seconds from students");
        for _ in 0..20 {
            r.on_keyframe_request(DOC, None, t);
            r.handle_timeout(t, 0);
            asked += drain(&mut r)
                .iter()
                .filter(|o| matches!(o, Output::RequestKeyframe { .. }))
                .count();
            t += Duration::from_millis(100);
        }
        assert!(
            asked >= 6,
            "a doctor's decoder is served every 300 ms: {asked}"
        );
    }
}
