//! The switchboard: the sans-IO core of one worker. Sessions, rooms, and the order things happen.
//!
//! It is fed what the shell sees (a batch of datagrams, the time, a command from signalling) and
//! does its sending through the shell's [`Io`]. It owns the worker's `Sessions` (`sessions.rs`:
//! peers and the indexes that find them), the [`Room`]s pinned to the worker, and every policy
//! that is about more than one session:
//!
//! - **Admission**: a new remote address is mapped only through a STUN binding request naming a
//!   session's ufrag; anything else from an unknown address is dropped and counted.
//! - **The viewer cap**: at most `max_viewers_per_worker` watching sessions; robots and doctors
//!   whose token may drive are never refused (a saturated core delays the driver's joystick).
//! - **Sessions still setting up** (offers that may never finish ICE): bounded per token, per
//!   room and per worker; the room bound is below the worker's, so a flood of offers into one
//!   room leaves the other rooms on the worker free to join.
//! - **Priority**: in every batch the urgent datagrams (STUN, DTLS: the data channels, RTCP) are
//!   handled before media (RTP), and media fans out in slices of [`MAX_PACKETS_PER_FLUSH`];
//!   during a long flush the switchboard reads again every [`URGENT_EVERY`] viewers and handles
//!   urgent datagrams on the spot, deferring the media it read to the front of the next turn.
//! - **Routing**: what a peer produces (connected, RTP, keyframe requests, data-channel bytes,
//!   closed) goes through its room, and the room's outputs are carried out in order (the stop
//!   frame before the lease event).
//! - **Lifecycle**: a room is created with its first session and dropped with its last; a
//!   session that does not connect within `connect_timeout` is removed.
//! - **Live status**: each room's [`RoomStatus`] goes out as an [`Event::Status`] when it
//!   changes and as a refresh (paced by `room_status.rs`), and a closed one when the room
//!   empties.
//!
//! Time is always an input. Nothing here blocks, spawns or touches a socket, so it is tested
//! with plain calls against in-memory str0m peers (see the tests at the end).
//!
//! Not here: sockets, GSO and the tokio loop (`worker.rs`), str0m details (`peer.rs`), room rules
//! (`room.rs`).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bedside_proto::events::Transport;
use bedside_proto::node::{Deny, DenyScope, Latch, RoomStatus};
use bedside_proto::{Claims, Role};
use str0m::net::{Protocol, Receive};
use str0m::Input;

use crate::config::SfuConfig;
use crate::demux::PacketKind;
use crate::error::SfuError;
use crate::estop::Latcher;
use crate::ice_restart::IceCredentials;
use crate::io::{Arrived, Io};
use crate::metrics::Metrics;
use crate::peer::{Accepted, Peer, PeerEvent};
use crate::room::{Admission, Fanout, Member, Output, Recipients, Room, RoomMemory, RtpIn};
use crate::room_event::{RoomAudit, RoomEvent};
use crate::room_status::StatusPacer;
use crate::sessions::{Lookup, NewSession, Sessions};
use crate::silence::Verdict;
use crate::SessionId;

/// During a flush, look for viewers' datagrams after every this many viewers (each viewer's
/// pass costs a few microseconds per packet: at 500 viewers this bounds a joystick frame's
/// wait to ~0.2 ms; 32 measured twice that tail, 0.9-2.1 ms p99 against 0.5-0.6).
pub const URGENT_EVERY: usize = 16;
/// Media packets written to viewers before they are flushed: a big batch (after a stall) is
/// sent in slices, so its first packets do not wait for its last and str0m's per-viewer send
/// queue never grows past this (its capacity is never given back). GSO still gets up to this
/// many datagrams per send.
pub const MAX_PACKETS_PER_FLUSH: usize = 8;
/// Media datagrams held back by mid-flush reads, at most. Past it the reads stop and the
/// socket's own buffer takes the overload, as it did before there were mid-flush reads.
pub const MAX_DEFERRED: usize = 256;

/// A batch of received datagrams, however the shell stores them.
pub trait Datagrams {
    /// How many.
    fn len(&self) -> usize;
    /// The `i`th: sender and bytes.
    fn get(&self, i: usize) -> (SocketAddr, &[u8]);
    /// None at all.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Datagrams for [Arrived] {
    fn len(&self) -> usize {
        <[Arrived]>::len(self)
    }
    fn get(&self, i: usize) -> (SocketAddr, &[u8]) {
        (self[i].src, &self[i].data)
    }
}

/// A session ready to be admitted: its peer built from the offer, and its token.
pub struct Admit {
    /// The peer and its ICE credentials, from `Peer::accept` (`peer.rs`).
    pub accepted: Accepted,
    /// The secret of its `Location` URL.
    pub key: String,
    /// Who it is, from the join token (after the deny list had its say on `can_control`).
    pub member: Member,
    /// The token's claims, for deny entries that arrive later.
    pub claims: Claims,
}

/// What the shell must carry out besides sending datagrams.
#[derive(Debug)]
pub enum Event {
    /// Report this to the audit hook.
    Audit(RoomEvent),
    /// Report a room's live status to the API.
    Status(RoomStatus),
    /// This session is gone: forget its `Location` key and its ICE ufrag.
    SessionClosed {
        /// The closed session.
        id: SessionId,
        /// Its `Location` key.
        key: String,
        /// Its ICE ufrag at the end.
        ufrag: String,
        /// Why it closed (a metric label).
        reason: &'static str,
    },
    /// An ICE restart replaced a session's ufrag.
    Rekeyed {
        /// The ufrag no longer in use.
        old: String,
        /// The new one.
        new: String,
    },
}

/// Per-packet counters resolved once: a label lookup hashes.
struct TrackCounters {
    packets_in: prometheus::IntCounter,
    bytes_in: prometheus::IntCounter,
    packets_out: prometheus::IntCounter,
}

impl TrackCounters {
    fn new(m: &Metrics, kind: &str) -> Self {
        TrackCounters {
            packets_in: m.packets_in.with_label_values(&[kind]),
            bytes_in: m.bytes_in.with_label_values(&[kind]),
            packets_out: m.packets_out.with_label_values(&[kind]),
        }
    }
}

/// See the module docs.
pub struct Switchboard {
    config: SfuConfig,
    /// Our ICE candidate: the local address of every datagram we receive.
    local: SocketAddr,
    /// Our passive ICE-TCP candidate, if the node listens for ICE-TCP.
    local_tcp: Option<SocketAddr>,
    metrics: Metrics,
    /// For audio [0] and video [1].
    counters: [TrackCounters; 2],
    sessions: Sessions,
    rooms: HashMap<Arc<str>, Room>,
    /// Earliest time any peer or room wants a timeout.
    wake: Instant,
    queue: VecDeque<(SessionId, PeerEvent)>,
    scratch: Vec<PeerEvent>,
    /// Sessions with RTP written but not yet sent (see [`Switchboard::flush`]).
    dirty: Vec<SessionId>,
    /// Receive times of forwarded packets not yet sent, for the latency histogram.
    unsent: Vec<Instant>,
    /// Media read mid-pass; handled next, before anything newer.
    deferred: Vec<Arrived>,
    /// Reused buffer for mid-pass reads.
    arrived: Vec<Arrived>,
    /// Peers whose timers are due (reused between passes).
    due: Vec<SessionId>,
    events: VecDeque<Event>,
    /// What rooms that emptied left behind (their latch and epoch), by room id.
    memories: HashMap<Arc<str>, RoomMemory>,
    /// When each live room's status is next reported.
    pacers: HashMap<Arc<str>, StatusPacer>,
}

impl Switchboard {
    /// An empty switchboard whose sessions are reached at `local`.
    pub fn new(config: SfuConfig, local: SocketAddr, metrics: Metrics, now: Instant) -> Self {
        let counters = [
            TrackCounters::new(&metrics, "audio"),
            TrackCounters::new(&metrics, "video"),
        ];
        Switchboard {
            config,
            local,
            local_tcp: None,
            metrics,
            counters,
            sessions: Sessions::default(),
            rooms: HashMap::new(),
            wake: now,
            queue: VecDeque::new(),
            scratch: Vec::new(),
            dirty: Vec::new(),
            unsent: Vec::new(),
            deferred: Vec::new(),
            arrived: Vec::new(),
            due: Vec::new(),
            events: VecDeque::new(),
            memories: HashMap::new(),
            pacers: HashMap::new(),
        }
    }

    /// The node's passive ICE-TCP candidate (frames from TCP connections arrive "at" it).
    pub fn set_local_tcp(&mut self, addr: SocketAddr) {
        self.local_tcp = Some(addr);
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to run next.
    pub fn poll_timeout(&self) -> Instant {
        self.wake
    }

    /// The next thing the shell must do besides sending.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Media read during the last pass waits to be handled ([`handle_deferred`](Self::handle_deferred)).
    pub fn has_deferred(&self) -> bool {
        !self.deferred.is_empty()
    }

    /// Connected watchers: what the viewer cap counts.
    pub fn watchers(&self) -> usize {
        self.sessions.watchers()
    }

    /// The room `id` if it is live on this worker.
    pub fn room(&self, id: &str) -> Option<&Room> {
        self.rooms.get(id)
    }

    /// Admit a session whose token was verified and whose offer was answered. It joins its
    /// room once ICE and DTLS complete.
    pub fn admit(&mut self, now: Instant, admit: Admit) -> Result<SessionId, SfuError> {
        let Admit {
            accepted,
            key,
            member,
            claims,
        } = admit;
        let room_id = accepted.peer.room().clone();
        if member.role == Role::Robot {
            if let Some(r) = self.rooms.get(&room_id) {
                if r.admit_publisher(&member.sub) == Admission::Conflict {
                    return Err(SfuError::RoomBusy);
                }
            }
        }
        // Sessions that never finish ICE cost an Rtc each for `connect_timeout`: bounded per
        // token (one token must not open hundreds), per room (many tokens of one room must not
        // take every slot of the worker: the other rooms on it keep theirs) and per worker.
        // The robot and the doctor whose token may drive are bounded per token only: a flood
        // of other people's offers must not keep the robot from coming back to its own room,
        // nor its driver from joining (as with the viewer cap). Their tokens are few (the
        // robot's credential, the booking's doctor), so this exemption cannot be flooded.
        let watcher = is_watcher(member.role, member.can_control);
        let pending = self.sessions.pending(&claims.jti, &room_id);
        if pending.token >= self.config.max_pending_per_token {
            return Err(SfuError::TooManyPending);
        }
        if watcher
            && (pending.room >= self.config.max_pending_per_room
                || pending.all >= self.config.max_pending_per_worker)
        {
            return Err(SfuError::Busy);
        }
        if watcher && self.sessions.watchers() >= self.config.max_viewers_per_worker {
            return Err(SfuError::Full(self.sessions.watchers()));
        }
        let role = member.role;
        let mut peer = accepted.peer;
        let mut out = std::mem::take(&mut self.scratch);
        peer.drain(&mut |_| {}, &mut out);
        out.clear();
        self.scratch = out;
        self.wake = self
            .wake
            .min(peer.next_timeout())
            .min(now + self.config.connect_timeout);
        let id = self.sessions.insert(
            peer,
            NewSession {
                key,
                claims,
                ufrag: accepted.ufrag,
                pass: accepted.pass,
                member,
                watcher,
                now,
            },
        );
        self.metrics
            .sessions
            .with_label_values(&[role.as_str()])
            .inc();
        if !self.rooms.contains_key(&room_id) {
            self.metrics.rooms.inc();
            let memory = self.memories.remove(&room_id).unwrap_or_default();
            let room = Room::restore(self.config.room, now, memory);
            self.rooms.insert(room_id, room);
        }
        Ok(id)
    }

    /// A deny entry from the API: end the live sessions it matches (telling them why), or take
    /// their control away.
    pub fn apply_deny(&mut self, now: Instant, deny: &Deny, io: &mut dyn Io) {
        let hit: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|s| deny.matches(&s.claims))
            .map(|s| s.peer.id())
            .collect();
        let (code, message) = (deny.reason.code(), deny.reason.message());
        for id in hit {
            let Some(s) = self.sessions.get(id) else {
                continue;
            };
            let room_id = s.peer.room().clone();
            let pending = s.is_pending();
            match deny.scope {
                DenyScope::Access if pending => self.remove(now, id, "revoked", io),
                DenyScope::Access => {
                    if let Some(room) = self.rooms.get_mut(&room_id) {
                        room.evict(id, code, message, "revoked", now);
                    }
                    self.flush_room(now, &room_id, io);
                }
                DenyScope::Control => {
                    if let Some(room) = self.rooms.get_mut(&room_id) {
                        room.withdraw_control(id, code, message, now);
                        self.flush_room(now, &room_id, io);
                    }
                }
            }
        }
        self.process_queue(now, io);
    }

    /// Restart ICE on session `id` with the remote's new credentials (WHIP/WHEP `PATCH`): the
    /// answer fragment (our new credentials and candidates). The session keeps everything else;
    /// its old ufrag no longer finds it.
    pub fn ice_restart(
        &mut self,
        id: SessionId,
        remote: &IceCredentials,
    ) -> Result<String, SfuError> {
        let s = self.sessions.get_mut(id).ok_or(SfuError::NoSession)?;
        let (local, candidates) = s.peer.restart_ice(remote)?;
        let fragment = crate::ice_restart::answer_fragment(&local, &candidates);
        let new = local.ufrag.clone();
        if let Some(old) = self.sessions.rekey(id, local.ufrag, local.pwd) {
            self.events.push_back(Event::Rekeyed { old, new });
        }
        self.metrics.ice_restarts.inc();
        Ok(fragment)
    }

    /// An administrator ends one participant's session, named by its public id. False if it is
    /// not in that room here.
    pub fn end_session(
        &mut self,
        now: Instant,
        room: &str,
        session: &str,
        io: &mut dyn Io,
    ) -> bool {
        let Ok(id) = session.parse::<SessionId>() else {
            return false;
        };
        let Some(r) = self.rooms.get_mut(room) else {
            return false;
        };
        if r.member(id).is_none() {
            return false;
        }
        let reason = bedside_proto::node::RevokeReason::SessionEnded;
        r.evict(id, reason.code(), reason.message(), "revoked", now);
        let room: Arc<str> = room.into();
        self.flush_room(now, &room, io);
        self.process_queue(now, io);
        true
    }

    /// The API's record of latched rooms (after a restart of either): live rooms latch now,
    /// others start latched when they next fill.
    pub fn restore_latches(&mut self, now: Instant, latches: &[Latch], io: &mut dyn Io) {
        for l in latches {
            let latcher = Latcher {
                session: None,
                sub: l.by.clone(),
            };
            let room_id: Arc<str> = l.room.as_str().into();
            match self.rooms.get_mut(&room_id) {
                Some(room) => {
                    room.restore_latch(latcher, now);
                    self.flush_room(now, &room_id, io);
                }
                None => {
                    let m = self.memories.entry(room_id).or_default();
                    if m.latch.is_none() {
                        m.latch = Some(latcher);
                    }
                }
            }
        }
        self.process_queue(now, io);
    }

    /// End a session on its owner's request (WHIP/WHEP `DELETE`): say goodbye, then remove it.
    pub fn leave(&mut self, now: Instant, id: SessionId, io: &mut dyn Io) {
        if let Some(peer) = self.sessions.peer_mut(id) {
            peer.disconnect();
            let mut out = Vec::new();
            peer.drain(&mut |t| io.send(t), &mut out);
        }
        self.remove(now, id, "goodbye", io);
    }

    /// An administrator takes the lease away in `room`. False if the room is not live here.
    pub fn revoke_lease(&mut self, now: Instant, room: &str, io: &mut dyn Io) -> bool {
        let Some(r) = self.rooms.get_mut(room) else {
            return false;
        };
        r.admin_revoke(now);
        let room: Arc<str> = room.into();
        self.flush_room(now, &room, io);
        self.process_queue(now, io);
        true
    }

    /// Give up on everything (a panic left the state in doubt): the gauges forget these
    /// sessions and rooms; the switchboard is dropped after this.
    pub fn abandon(&mut self) {
        for s in self.sessions.iter() {
            self.metrics
                .sessions
                .with_label_values(&[s.peer.role().as_str()])
                .dec();
        }
        self.metrics.rooms.sub(self.rooms.len() as i64);
    }

    /// The latches and epochs of every room (live or remembered), to carry into a new
    /// switchboard.
    pub fn memories(&self) -> Vec<(Arc<str>, RoomMemory)> {
        let live = self.rooms.iter().map(|(id, r)| (id.clone(), r.memory()));
        self.memories
            .iter()
            .map(|(id, m)| (id.clone(), m.clone()))
            .chain(live)
            .collect()
    }

    /// Start from what a previous switchboard remembered.
    pub fn remember(&mut self, memories: Vec<(Arc<str>, RoomMemory)>) {
        self.memories.extend(memories);
    }

    /// Panic, as a bug inside the switchboard would (tests of the worker's recovery).
    #[doc(hidden)]
    pub fn panic_for_tests(&mut self) {
        panic!("injected fault in the switchboard");
    }

    /// Say goodbye to every session (the worker is stopping).
    pub fn shutdown(&mut self, io: &mut dyn Io) {
        for s in self.sessions.iter_mut() {
            s.peer.disconnect();
            s.peer.drain(&mut |t| io.send(t), &mut Vec::new());
        }
    }

    /// One receive batch: urgent datagrams first, then media read earlier, then this batch's
    /// media in slices; then everything written goes out.
    pub fn handle_batch(
        &mut self,
        now: Instant,
        batch: &(impl Datagrams + ?Sized),
        io: &mut dyn Io,
    ) {
        for i in 0..batch.len() {
            let (src, data) = batch.get(i);
            if !PacketKind::of(data).is_media() {
                self.handle_datagram(now, src, data, io);
            }
        }
        // Media read during the previous flush is older than this batch's.
        let mut written = 0;
        let deferred = std::mem::take(&mut self.deferred);
        for d in &deferred {
            self.handle_media(now, d.src, &d.data, &mut written, io);
        }
        self.recycle(deferred);
        for i in 0..batch.len() {
            let (src, data) = batch.get(i);
            if PacketKind::of(data).is_media() {
                self.handle_media(now, src, data, &mut written, io);
            }
        }
        self.flush(now, io);
    }

    /// Media held back by a mid-pass read, handled as a batch of its own.
    pub fn handle_deferred(&mut self, now: Instant, io: &mut dyn Io) {
        let mut written = 0;
        let deferred = std::mem::take(&mut self.deferred);
        for d in &deferred {
            self.handle_media(now, d.src, &d.data, &mut written, io);
        }
        self.recycle(deferred);
        self.flush(now, io);
    }

    fn recycle(&mut self, mut v: Vec<Arrived>) {
        // New media may have been deferred while the old was handled: keep it, in order.
        v.clear();
        if self.deferred.is_empty() {
            self.deferred = v;
        }
    }

    /// A media datagram, flushing the fan-out every [`MAX_PACKETS_PER_FLUSH`] of them.
    fn handle_media(
        &mut self,
        now: Instant,
        src: SocketAddr,
        data: &[u8],
        written: &mut usize,
        io: &mut dyn Io,
    ) {
        if *written == MAX_PACKETS_PER_FLUSH {
            self.flush(now, io);
            *written = 0;
        }
        self.handle_datagram(now, src, data, io);
        *written += 1;
    }

    /// One UDP datagram from `src`, whatever it is.
    pub fn handle_datagram(&mut self, now: Instant, src: SocketAddr, data: &[u8], io: &mut dyn Io) {
        self.handle_on(now, Protocol::Udp, src, data, io);
    }

    /// One frame from an ICE-TCP connection whose remote end is `src` (RFC 4571 framing
    /// already removed). Media over TCP is rare and never batched: handled at once.
    pub fn handle_tcp(&mut self, now: Instant, src: SocketAddr, data: &[u8], io: &mut dyn Io) {
        self.handle_on(now, Protocol::Tcp, src, data, io);
        self.flush(now, io);
    }

    /// An ICE-TCP connection closed: its session has lost its path at once (no silence timer
    /// to wait for).
    pub fn tcp_closed(&mut self, now: Instant, src: SocketAddr, io: &mut dyn Io) {
        if let Some(id) = self.sessions.at(Protocol::Tcp, src) {
            // Only if that connection was its path (or, still setting up, its newest address):
            // a client that tried TCP and settled on UDP keeps its session.
            let conn = (Protocol::Tcp, src);
            let path = self.sessions.get(id).and_then(|s| s.path);
            if path == Some(conn) || (path.is_none() && self.sessions.newest_addr(id) == Some(conn))
            {
                self.remove(now, id, "tcp_closed", io);
            }
        }
    }

    /// How `id` reaches us, once its first packet past the ICE check arrived: `tcp` (ICE-TCP),
    /// `relay` (from one of the configured TURN relays: the SFU cannot tell a relayed address
    /// from another, so it is told them), otherwise `udp`.
    pub fn transport(&self, id: SessionId) -> Option<Transport> {
        self.sessions.get(id).and_then(|s| s.transport)
    }

    fn handle_on(
        &mut self,
        now: Instant,
        proto: Protocol,
        src: SocketAddr,
        data: &[u8],
        io: &mut dyn Io,
    ) {
        let id = match self.sessions.find(proto, src, data) {
            Lookup::Known(id) => id,
            Lookup::Stun(id) => {
                self.sessions.learn(id, proto, src);
                id
            }
            Lookup::Unknown => return self.dropped("unknown_source"),
        };
        let local = match proto {
            Protocol::Tcp => match self.local_tcp {
                Some(a) => a,
                None => return self.dropped("unknown_source"),
            },
            _ => self.local,
        };
        let Ok(receive) = Receive::new(proto, src, local, data) else {
            return self.dropped("unparseable");
        };
        let Some(peer) = self.sessions.peer_mut(id) else {
            return self.dropped("unknown_source");
        };
        if peer.role() == Role::Observer && PacketKind::of(data).is_media() {
            // Students publish nothing: their offers' sending lines were answered `inactive`,
            // and media sent anyway is dropped here, before it costs a decryption.
            return self.dropped("observer_media");
        }
        let path = (!matches!(PacketKind::of(data), PacketKind::Stun)).then_some((proto, src));
        self.heard_from(now, id, path, io);
        let Some(peer) = self.sessions.peer_mut(id) else {
            return;
        };
        let mut out = std::mem::take(&mut self.scratch);
        peer.handle_input(Input::Receive(now, receive), &mut |t| io.send(t), &mut out);
        self.wake = self.wake.min(peer.next_timeout());
        self.queue.extend(out.drain(..).map(|e| (id, e)));
        self.scratch = out;
        self.process_queue(now, io);
    }

    /// A datagram from `id`: it is not silent, and a lease suspended for its silence is its own
    /// again. `path` is where it came from unless it was a connectivity check: DTLS and media
    /// travel only on the selected pair, checks on every candidate pair.
    fn heard_from(
        &mut self,
        now: Instant,
        id: SessionId,
        path: Option<(Protocol, SocketAddr)>,
        io: &mut dyn Io,
    ) {
        let relays = &self.config.relay_ips;
        let Some(s) = self.sessions.get_mut(id) else {
            return;
        };
        s.last_heard = now;
        let resumed = std::mem::take(&mut s.suspended);
        let mut changed = None;
        if let Some(p) = path.filter(|p| s.path != Some(*p)) {
            s.path = Some(p);
            let t = match p {
                (Protocol::Tcp, _) => Transport::Tcp,
                (_, a) if relays.contains(&a.ip()) => Transport::Relay,
                _ => Transport::Udp,
            };
            let old = s.transport.replace(t);
            if old != Some(t) {
                if let Some(o) = old {
                    self.metrics
                        .transports
                        .with_label_values(&[o.as_str()])
                        .dec();
                }
                self.metrics
                    .transports
                    .with_label_values(&[t.as_str()])
                    .inc();
                changed = Some(t);
            }
        }
        if !resumed && changed.is_none() {
            return;
        }
        let room_id = s.peer.room().clone();
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return;
        };
        if resumed {
            room.resume(id, now);
        }
        if let Some(t) = changed {
            room.set_transport(id, t);
        }
        self.flush_room(now, &room_id, io);
    }

    fn dropped(&self, reason: &str) {
        self.metrics
            .datagrams_dropped
            .with_label_values(&[reason])
            .inc();
    }

    /// Time passed: str0m timers, connect timeouts, rooms' deadlines.
    pub fn handle_timeout(&mut self, now: Instant, unix_ms: u64, io: &mut dyn Io) {
        let mut wake = now + Duration::from_secs(1);
        let mut expired = Vec::new();
        let mut due = std::mem::take(&mut self.due);
        let connect_timeout = self.config.connect_timeout;
        let silence = self.config.silence;
        let mut suspend = Vec::new();
        for s in self.sessions.iter() {
            let p = &s.peer;
            if !p.is_connected() && now.saturating_duration_since(p.created()) > connect_timeout {
                expired.push((p.id(), "connect_timeout"));
                continue;
            }
            if p.is_connected() && !s.is_pending() {
                // A holder's silence matters while there is a robot to stop; without one it is
                // just another participant (and may well be quiet: nothing to receive).
                let holder = self
                    .rooms
                    .get(p.room())
                    .is_some_and(|r| r.lease_holder() == Some(p.id()) && r.publisher().is_some());
                let silent = now.saturating_duration_since(s.last_heard);
                match silence.verdict(p.role(), holder, s.suspended, silent) {
                    Verdict::Wait(left) => wake = wake.min(now + left),
                    Verdict::Suspend => suspend.push(p.id()),
                    Verdict::End => {
                        expired.push((p.id(), "silent"));
                        continue;
                    }
                }
            }
            if p.next_timeout() <= now {
                due.push(p.id());
            } else {
                wake = wake.min(p.next_timeout());
            }
            if !p.is_connected() {
                wake = wake.min(p.created() + connect_timeout);
            }
        }
        // Datagrams handled mid-pass lower this as they go.
        self.wake = wake;
        let mut out = std::mem::take(&mut self.scratch);
        for (n, id) in due.iter().enumerate() {
            if n > 0 && n % URGENT_EVERY == 0 {
                // Timers of a big room come due together (str0m's stats and reports line up
                // once a room's viewers are flushed in one pass): same rule as the fan-out.
                self.serve_urgent(now, io);
            }
            let Some(peer) = self.sessions.peer_mut(*id) else {
                continue;
            };
            peer.handle_input(Input::Timeout(now), &mut |t| io.send(t), &mut out);
            self.wake = self.wake.min(peer.next_timeout());
            self.queue.extend(out.drain(..).map(|e| (*id, e)));
        }
        self.scratch = out;
        due.clear();
        self.due = due;
        for id in suspend {
            let grace = u64::try_from(silence.grace.as_millis()).unwrap_or(u64::MAX);
            let Some(s) = self.sessions.get_mut(id) else {
                continue;
            };
            s.suspended = true;
            let room_id = s.peer.room().clone();
            if let Some(room) = self.rooms.get_mut(&room_id) {
                room.suspend(id, unix_ms.saturating_add(grace), now);
                self.flush_room(now, &room_id, io);
            }
            wake = wake.min(now + silence.grace);
            self.wake = self.wake.min(wake);
        }
        for (id, reason) in expired {
            self.remove(now, id, reason, io);
        }
        let mut due_rooms = Vec::new();
        for (name, room) in self.rooms.iter_mut() {
            let (mono, wall) = room.next_deadline();
            if mono.is_some_and(|d| d <= now) || wall.is_some_and(|d| d <= unix_ms) {
                room.handle_timeout(now, unix_ms);
                due_rooms.push(name.clone());
            }
            let (mono, wall) = room.next_deadline();
            if let Some(d) = mono {
                self.wake = self.wake.min(d);
            }
            if let Some(d) = wall {
                self.wake = self
                    .wake
                    .min(now + Duration::from_millis(d.saturating_sub(unix_ms)));
            }
        }
        for name in due_rooms {
            self.flush_room(now, &name, io);
        }
        self.process_queue(now, io);
        self.report_status(now);
    }

    /// Rooms' statuses that are due (see `room_status.rs`).
    fn report_status(&mut self, now: Instant) {
        let refresh = self.config.status_refresh;
        let refresh_secs = u32::try_from(refresh.as_secs()).unwrap_or(u32::MAX).max(1);
        for (name, room) in &self.rooms {
            let pacer = self
                .pacers
                .entry(name.clone())
                .or_insert_with(|| StatusPacer::new(refresh));
            if let Some(s) = pacer.poll(now, || {
                room.status(name, &self.config.node_id, refresh_secs)
            }) {
                self.events.push_back(Event::Status(s));
            }
            if let Some(due) = pacer.next_check() {
                self.wake = self.wake.min(due);
            }
        }
    }

    /// Send what was written to viewers since the last flush (a receive batch, or a slice of
    /// [`MAX_PACKETS_PER_FLUSH`] media packets). str0m releases written RTP on its next
    /// timeout, so each dirty viewer gets one `Timeout(now)`, and its datagrams leave together
    /// (one GSO send per run of equal-sized datagrams).
    pub fn flush(&mut self, now: Instant, io: &mut dyn Io) {
        if self.dirty.is_empty() {
            return;
        }
        let mut out = std::mem::take(&mut self.scratch);
        let dirty = std::mem::take(&mut self.dirty);
        for (n, id) in dirty.iter().enumerate() {
            if n > 0 && n % URGENT_EVERY == 0 {
                // A big room's flush takes milliseconds: a joystick frame or an e-stop that
                // arrived meanwhile must not wait for the last viewer.
                self.serve_urgent(now, io);
            }
            let Some(s) = self.sessions.get_mut(*id) else {
                continue;
            };
            s.clear_dirty();
            s.peer
                .handle_input(Input::Timeout(now), &mut |t| io.gather(t), &mut out);
            io.flush();
            self.wake = self.wake.min(s.peer.next_timeout());
            self.queue.extend(out.drain(..).map(|e| (*id, e)));
        }
        self.scratch = out;
        let done = Instant::now();
        for t in self.unsent.drain(..) {
            self.metrics
                .forward_latency
                .observe(done.saturating_duration_since(t).as_secs_f64());
        }
        self.process_queue(now, io);
    }

    /// In the middle of a long pass: read what has arrived and handle the urgent datagrams now
    /// (control frames, e-stops, RTCP); media waits in `deferred` (handled next, before
    /// anything newer), so a pass never starts another fan-out.
    fn serve_urgent(&mut self, now: Instant, io: &mut dyn Io) {
        if self.deferred.len() >= MAX_DEFERRED {
            return;
        }
        let mut arrived = std::mem::take(&mut self.arrived);
        io.read_now(&mut arrived);
        for d in arrived.drain(..) {
            if PacketKind::of(&d.data).is_media() {
                self.deferred.push(d);
            } else {
                self.handle_datagram(now, d.src, &d.data, io);
            }
        }
        self.arrived = arrived;
    }

    /// Route everything sessions produced, including what routing itself produces.
    fn process_queue(&mut self, now: Instant, io: &mut dyn Io) {
        while let Some((from, ev)) = self.queue.pop_front() {
            self.route(now, from, ev, io);
        }
    }

    fn route(&mut self, now: Instant, from: SessionId, ev: PeerEvent, io: &mut dyn Io) {
        let Some(room_id) = self.sessions.get(from).map(|s| s.peer.room().clone()) else {
            return;
        };
        match ev {
            PeerEvent::Connected => self.connected(now, from, &room_id, io),
            PeerEvent::Rtp {
                kind,
                keyframe_start,
                packet,
                codec,
            } => {
                let counters = &self.counters[kind as usize];
                counters.packets_in.inc();
                counters.bytes_in.inc_by(packet.payload.len() as u64);
                let Some(codec) = codec else { return };
                let Some(room) = self.rooms.get_mut(&room_id) else {
                    return;
                };
                let input = RtpIn {
                    kind,
                    ssrc: *packet.header.ssrc,
                    seq: *packet.seq_no,
                    ts: packet.header.timestamp,
                    keyframe_start,
                    audio_level: packet.header.ext_vals.audio_level,
                };
                let Some(fan) = room.on_rtp(from, input, now) else {
                    return;
                };
                let mut sent = 0u64;
                match fan {
                    Fanout::Robot { seq, ts, targets } => {
                        for target in targets {
                            let Some(s) = self.sessions.get_mut(*target) else {
                                continue;
                            };
                            if s.peer.write_rtp(kind, &packet, &codec, seq, ts, now) {
                                sent += 1;
                                // Sent when the batch is done: one str0m pass per viewer per
                                // batch instead of one per packet (a frame is several packets).
                                if s.mark_dirty() {
                                    self.dirty.push(*target);
                                }
                            }
                        }
                    }
                    Fanout::Slots { targets } => {
                        for (target, slot) in targets {
                            let Some(s) = self.sessions.get_mut(*target) else {
                                continue;
                            };
                            if s.peer.write_slot(kind, *slot, from, &packet, &codec, now) {
                                sent += 1;
                                if s.mark_dirty() {
                                    self.dirty.push(*target);
                                }
                            }
                        }
                    }
                }
                self.counters[kind as usize].packets_out.inc_by(sent);
                self.unsent.push(packet.timestamp);
                // Room outputs (a keyframe request for waiting viewers) go out now.
                self.flush_room(now, &room_id, io);
            }
            PeerEvent::KeyframeRequest { slot } => {
                if let Some(room) = self.rooms.get_mut(&room_id) {
                    room.on_keyframe_request(from, slot, now);
                    self.flush_room(now, &room_id, io);
                }
            }
            PeerEvent::Control(bytes) => {
                if let Some(room) = self.rooms.get_mut(&room_id) {
                    room.on_control(from, &bytes, now);
                    self.flush_room(now, &room_id, io);
                }
            }
            PeerEvent::Events(bytes) => {
                if let Some(room) = self.rooms.get_mut(&room_id) {
                    room.on_event(from, &bytes, now);
                    self.flush_room(now, &room_id, io);
                }
            }
            PeerEvent::Nacks { received, sent } => {
                let nacks = &self.metrics.nacks;
                nacks.with_label_values(&["received"]).inc_by(received);
                nacks.with_label_values(&["sent"]).inc_by(sent);
            }
            PeerEvent::Link { loss, rtt } => {
                if let Some(room) = self.rooms.get_mut(&room_id) {
                    room.set_link(from, loss, rtt);
                }
            }
            PeerEvent::Closed(reason) => self.remove(now, from, reason, io),
        }
    }

    fn connected(&mut self, now: Instant, id: SessionId, room_id: &Arc<str>, io: &mut dyn Io) {
        let Some(mut member) = self.sessions.connected(id) else {
            return;
        };
        let Some(s) = self.sessions.get(id) else {
            return;
        };
        member.layout = s.peer.layout();
        member.transport = s.transport;
        self.metrics
            .join_seconds
            .with_label_values(&[member.role.as_str()])
            .observe(
                now.saturating_duration_since(s.peer.created())
                    .as_secs_f64(),
            );
        if is_watcher(member.role, member.can_control)
            && self.sessions.watchers() > self.config.max_viewers_per_worker
        {
            // Others finished setting up first; the cap counts connected watchers.
            return self.remove(now, id, "full", io);
        }
        let Some(room) = self.rooms.get_mut(room_id) else {
            return;
        };
        if member.role == Role::Robot && room.admit_publisher(&member.sub) == Admission::Conflict {
            // Another robot won the race between our admission check and now.
            return self.remove(now, id, "room_busy", io);
        }
        room.join(id, member, now);
        self.flush_room(now, room_id, io);
    }

    /// Carry out what the room asked for, in order.
    fn flush_room(&mut self, now: Instant, room_id: &Arc<str>, io: &mut dyn Io) {
        let mut close = Vec::new();
        let mut out = std::mem::take(&mut self.scratch);
        while let Some(room) = self.rooms.get_mut(room_id) {
            let Some(output) = room.poll_output() else {
                break;
            };
            let metrics = &self.metrics;
            let queue = &mut self.queue;
            let mut touch = |peer: &mut Peer, out: &mut Vec<PeerEvent>| {
                peer.drain(&mut |t| io.send(t), out);
                queue.extend(out.drain(..).map(|e| (peer.id(), e)));
            };
            match output {
                Output::RequestKeyframe { publisher } => {
                    if let Some(p) = self.sessions.peer_mut(publisher) {
                        if p.request_keyframe() {
                            tracing::debug!(session = %publisher, "keyframe requested");
                            metrics.keyframe_requests.inc();
                        }
                        touch(p, &mut out);
                    }
                }
                Output::Control { to, frame } => {
                    if let Some(p) = self.sessions.peer_mut(to) {
                        if p.send_control(&frame) {
                            metrics.control_forwarded.inc();
                        } else {
                            metrics
                                .control_dropped
                                .with_label_values(&["robot_channel_closed"])
                                .inc();
                        }
                        touch(p, &mut out);
                    }
                }
                Output::Event { to, json } => {
                    let targets = match to {
                        Recipients::One(id) => vec![id],
                        Recipients::Many(ids) => ids,
                    };
                    for id in targets {
                        if let Some(p) = self.sessions.peer_mut(id) {
                            p.send_event(json.clone());
                            touch(p, &mut out);
                        }
                    }
                }
                Output::Close { id, reason } => close.push((id, reason)),
                Output::ControlDropped { reason, .. } => {
                    metrics.control_dropped.with_label_values(&[reason]).inc();
                }
                Output::Audit(audit) => {
                    match audit {
                        RoomAudit::LeaseChanged { .. } => metrics.lease_changes.inc(),
                        RoomAudit::EstopLatched { .. } => metrics.estops.inc(),
                        _ => {}
                    }
                    self.events
                        .push_back(Event::Audit(RoomEvent::new(room_id, &audit)));
                }
            }
        }
        self.scratch = out;
        // What the room just did may have set it an earlier timer (a slot's tick, a stop
        // repeat): the shell must not sleep past it on the wake computed before.
        if let Some(d) = self.rooms.get(room_id).and_then(|r| r.next_deadline().0) {
            self.wake = self.wake.min(d);
        }
        for (id, reason) in close {
            if let Some(p) = self.sessions.peer_mut(id) {
                p.disconnect();
                p.drain(&mut |t| io.send(t), &mut Vec::new());
            }
            self.remove(now, id, reason, io);
        }
    }

    /// Take a session out of the table, its room and the shell's key map.
    fn remove(&mut self, now: Instant, id: SessionId, reason: &'static str, io: &mut dyn Io) {
        let Some(s) = self.sessions.remove(id) else {
            return;
        };
        let role = s.peer.role();
        tracing::info!(session = %id, role = role.as_str(), reason, "session closed");
        if !matches!(reason, "goodbye" | "replaced" | "revoked" | "expired") {
            self.metrics
                .session_failures
                .with_label_values(&[reason])
                .inc();
        }
        self.metrics
            .sessions
            .with_label_values(&[role.as_str()])
            .dec();
        if let Some(t) = s.transport {
            self.metrics
                .transports
                .with_label_values(&[t.as_str()])
                .dec();
        }
        self.dirty.retain(|d| *d != id);
        let ufrag = s.ufrag.clone();
        self.events.push_back(Event::SessionClosed {
            id,
            key: s.key,
            ufrag,
            reason,
        });
        let room_id = s.peer.room().clone();
        if let Some(room) = self.rooms.get_mut(&room_id) {
            room.leave(id, now);
            self.flush_room(now, &room_id, io);
        }
        let empty = self.rooms.get(&room_id).is_some_and(|r| r.is_empty())
            && !self.sessions.any_in_room(&room_id);
        if empty {
            if let Some(room) = self.rooms.remove(&room_id) {
                // The live view forgets the room now rather than when its refreshes stop.
                self.pacers.remove(&room_id);
                let refresh_secs = u32::try_from(self.config.status_refresh.as_secs())
                    .unwrap_or(u32::MAX)
                    .max(1);
                // The latch and the epoch outlive the room: the next one starts from them.
                let memory = room.memory();
                let estop = bedside_proto::node::EstopStatus {
                    latched: memory.latch.is_some(),
                    robot: false,
                };
                self.events.push_back(Event::Status(RoomStatus::closed(
                    &room_id,
                    &self.config.node_id,
                    refresh_secs,
                    estop,
                )));
                if memory != RoomMemory::default() {
                    self.memories.insert(room_id, memory);
                }
            }
            self.metrics.rooms.dec();
        }
    }
}

/// Does a session with this (role, may drive) count against the worker's viewer cap? Robots
/// and the doctor who may drive never do: the cap must not lock out the robot or its driver.
fn is_watcher(role: Role, can_control: bool) -> bool {
    match role {
        Role::Robot => false,
        Role::Doctor => !can_control,
        Role::Observer => true,
    }
}

#[cfg(test)]
#[path = "switchboard_tests.rs"]
mod tests;
