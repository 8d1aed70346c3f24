//! A worker: one UDP socket, one task, the rooms pinned to it and their sessions.
//!
//! This is the thin I/O shell around the sans-IO parts. It reads datagrams, finds the session by
//! remote address (or, for a new address, by the ICE username in a STUN binding request), feeds
//! str0m, and routes what comes out through the session's [`Room`]. Because a room and all its
//! sessions live on one worker, nothing here needs a lock.
//!
//! Not here: HTTP (see `signalling.rs`), and no room rules (see `room.rs`).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bedside_proto::{Claims, Role};
use str0m::change::SdpOffer;
use str0m::ice::StunMessage;
use str0m::net::{Protocol, Receive, Transmit};
use str0m::rtp::{Extension, ExtensionMap};
use str0m::{Candidate, IceCreds, Input, Rtc};
use tokio::sync::{mpsc, oneshot};

use crate::error::SfuError;
use crate::peer::{Peer, PeerEvent};
use crate::room::{Member, Output, Recipients, Room, RtpIn, TrackKind};
use crate::sfu::{RoomEvent, Shared};
use crate::socket::{Fit, MediaSocket, RecvBatch, SendBatch};
use crate::SessionId;

/// Requests from the HTTP side to a worker.
pub(crate) enum Command {
    Join {
        room: Arc<str>,
        claims: Claims,
        offer: Box<SdpOffer>,
        reply: oneshot::Sender<Result<Joined, SfuError>>,
    },
    Leave {
        id: SessionId,
    },
    RevokeLease {
        room: Arc<str>,
        reply: oneshot::Sender<bool>,
    },
}

pub(crate) struct Joined {
    pub id: SessionId,
    pub key: String,
    pub answer: String,
}

/// During a flush, look for viewers' datagrams after every this many viewers (each viewer's
/// pass costs a few microseconds per packet: at 500 viewers this bounds a joystick frame's
/// wait to ~0.2 ms; 32 measured twice that tail, 0.9-2.1 ms p99 against 0.5-0.6).
const URGENT_EVERY: usize = 16;
/// Robot packets written to viewers before they are flushed: a big batch (after a stall) is
/// sent in slices, so its first packets do not wait for its last and str0m's per-viewer send
/// queue never grows past this (its capacity is never given back). GSO still gets up to this
/// many datagrams per send.
const MAX_PACKETS_PER_FLUSH: usize = 8;
/// Receive buffers for those mid-flush reads.
const URGENT_BUFFERS: usize = 8;
/// Robot datagrams held back by mid-flush reads, at most. Past it the reads stop and the
/// socket's own buffer takes the overload, as it did before there were mid-flush reads.
const MAX_DEFERRED: usize = 256;

pub(crate) struct Worker {
    index: usize,
    socket: MediaSocket,
    local: SocketAddr,
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Command>,
    peers: HashMap<SessionId, Peer>,
    keys: HashMap<SessionId, String>,
    by_addr: HashMap<SocketAddr, SessionId>,
    by_ufrag: HashMap<String, SessionId>,
    rooms: HashMap<Arc<str>, Room>,
    /// Admitted by token, joined to the room once ICE and DTLS complete.
    pending_members: HashMap<SessionId, Member>,
    /// Earliest time any peer or room wants a timeout.
    wake: Instant,
    queue: VecDeque<(SessionId, PeerEvent)>,
    scratch: Vec<PeerEvent>,
    /// Viewers with RTP written but not yet sent (see [`Worker::flush_dirty`]).
    dirty: Vec<SessionId>,
    /// Receive times of forwarded packets not yet sent, for the latency histogram.
    unsent: Vec<Instant>,
    /// Per-packet counters for audio [0] and video [1], resolved once: a label lookup hashes.
    counters: [TrackCounters; 2],
    /// Which datagrams of the current receive batch came from a robot.
    from_publisher: Vec<bool>,
    /// A viewer's datagrams of one flush, gathered for one GSO send.
    gso: SendBatch,
    /// Buffers for reads in the middle of a flush ([`Worker::serve_urgent`]).
    urgent: RecvBatch,
    /// Robot datagrams read mid-flush or mid-timer-pass; the loop handles them next, before
    /// anything newer.
    deferred: Vec<(Vec<u8>, SocketAddr)>,
    /// Peers whose timers are due (reused between passes).
    due: Vec<SessionId>,
    /// Sessions counted against `max_viewers_per_worker`.
    viewers: usize,
}

struct TrackCounters {
    packets_in: prometheus::IntCounter,
    bytes_in: prometheus::IntCounter,
    packets_out: prometheus::IntCounter,
}

impl TrackCounters {
    fn new(m: &crate::metrics::Metrics, kind: &str) -> Self {
        TrackCounters {
            packets_in: m.packets_in.with_label_values(&[kind]),
            bytes_in: m.bytes_in.with_label_values(&[kind]),
            packets_out: m.packets_out.with_label_values(&[kind]),
        }
    }
}

impl Worker {
    pub(crate) fn new(
        index: usize,
        socket: MediaSocket,
        local: SocketAddr,
        shared: Arc<Shared>,
        commands: mpsc::Receiver<Command>,
    ) -> Self {
        let urgent = socket.recv_batch(URGENT_BUFFERS);
        let counters = [
            TrackCounters::new(&shared.metrics, "audio"),
            TrackCounters::new(&shared.metrics, "video"),
        ];
        Worker {
            index,
            socket,
            local,
            shared,
            commands,
            peers: HashMap::new(),
            keys: HashMap::new(),
            by_addr: HashMap::new(),
            by_ufrag: HashMap::new(),
            rooms: HashMap::new(),
            pending_members: HashMap::new(),
            wake: Instant::now(),
            queue: VecDeque::new(),
            scratch: Vec::new(),
            dirty: Vec::new(),
            unsent: Vec::new(),
            counters,
            from_publisher: Vec::new(),
            gso: SendBatch::default(),
            urgent,
            deferred: Vec::new(),
            due: Vec::new(),
            viewers: 0,
        }
    }

    pub(crate) async fn run(mut self) {
        let mut batch = self.socket.recv_batch(quinn_udp::BATCH_SIZE);
        loop {
            let sleep = tokio::time::sleep_until(self.wake.into());
            tokio::select! {
                biased;
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.handle_command(cmd),
                    None => break,
                },
                // Robot media read mid-flush is next in line, before anything newer.
                _ = std::future::ready(()), if !self.deferred.is_empty() => self.handle_deferred(),
                r = self.socket.readable() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "udp readiness error");
                    }
                    // One `recvmmsg` per wake-up (up to quinn-udp's batch of datagrams), then
                    // timers get their turn.
                    match self.socket.try_recv(&mut batch) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        // ICMP port unreachable and the like surface here; never fatal.
                        Err(e) => tracing::debug!(error = %e, "udp receive error"),
                    }
                    self.handle_batch(&mut batch);
                }
                _ = sleep => {}
            }
            let now = Instant::now();
            if now >= self.wake {
                self.handle_timeouts(now);
            }
            // Anything routed by commands or timers (str0m can release a buffered packet
            // on a timeout) goes out now too.
            self.flush_dirty(Instant::now());
        }
        for (_, peer) in self.peers.iter_mut() {
            peer.disconnect();
        }
    }

    /// Viewers' datagrams first (the lease holder's joystick frames, e-stops, RTCP), then the
    /// robots' media, whose fan-out is the expensive part: a control frame read in the same
    /// batch as a video frame reaches the robot before the video reaches 500 viewers.
    fn handle_batch(&mut self, batch: &mut RecvBatch) {
        let now = Instant::now();
        // Classify before handling anything: handling a STUN request can map a new address.
        self.from_publisher.clear();
        for d in &batch.datagrams {
            let robot = self.is_publisher(d.src);
            self.from_publisher.push(robot);
        }
        for i in 0..batch.datagrams.len() {
            if !self.from_publisher[i] {
                let d = batch.datagrams[i];
                self.handle_datagram(batch.bytes(&d), d.src, now);
            }
        }
        // Robot media read during the previous flush is older than this batch's.
        let mut written = 0;
        for (bytes, src) in std::mem::take(&mut self.deferred) {
            self.handle_publisher_datagram(&bytes, src, &mut written);
        }
        for i in 0..batch.datagrams.len() {
            if self.from_publisher[i] {
                let d = batch.datagrams[i];
                self.handle_publisher_datagram(batch.bytes(&d), d.src, &mut written);
            }
        }
        batch.clear();
        self.flush_dirty(Instant::now());
    }

    fn handle_command(&mut self, cmd: Command) {
        match cmd {
            Command::Join {
                room,
                claims,
                offer,
                reply,
            } => {
                let r = self.join(room, claims, *offer);
                let _ = reply.send(r);
            }
            Command::Leave { id } => {
                if let Some(peer) = self.peers.get_mut(&id) {
                    peer.disconnect();
                    let mut out = Vec::new();
                    let (socket, metrics) = (&self.socket, &self.shared.metrics);
                    peer.drain(&mut |t| send(socket, metrics, t), &mut out);
                }
                self.remove_peer(id, "goodbye");
            }
            Command::RevokeLease { room, reply } => {
                let found = match self.rooms.get_mut(&room) {
                    Some(r) => {
                        r.admin_revoke(Instant::now());
                        true
                    }
                    None => false,
                };
                if found {
                    self.flush_room(&room);
                }
                let _ = reply.send(found);
            }
        }
    }

    fn join(
        &mut self,
        room: Arc<str>,
        claims: Claims,
        offer: SdpOffer,
    ) -> Result<Joined, SfuError> {
        if claims.role == Role::Robot {
            if let Some(r) = self.rooms.get(&room) {
                if r.admit_publisher(&claims.sub) == crate::room::Admission::Conflict {
                    return Err(SfuError::RoomBusy);
                }
            }
        }
        let claims_caps = (claims.role, claims.can_control);
        if is_capped(&claims_caps) && self.viewers >= self.shared.config.max_viewers_per_worker {
            return Err(SfuError::Full(self.viewers));
        }
        let now = Instant::now();
        let creds = IceCreds::new();
        let mut builder = Rtc::builder();
        if claims.role != Role::Robot {
            // Viewers get one stream and no bandwidth estimation (there is no lower layer to
            // switch them to), so no transport-wide-cc or abs-send-time: per viewer that saves
            // str0m's 1000-packet TWCC send register (~88 KiB), an extension write per packet,
            // and the feedback packets a browser would send back ten times a second.
            builder = builder.set_extension_map(viewer_extensions());
        }
        let mut rtc = builder
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .set_dtls_cert(self.shared.dtls_cert.clone())
            .set_local_ice_credentials(creds.clone())
            .clear_codecs()
            .enable_vp8(true)
            .enable_h264(true)
            .enable_opus(true, false)
            // Stats carry the NACK counts for /metrics; every 2 s is cheap.
            .set_stats_interval(Some(Duration::from_secs(2)))
            // Viewers' retransmission history is set per stream by age (`Peer::write_rtp`);
            // this caps it for streams that never get there.
            .set_send_buffer_video(512)
            .build(now);
        let candidate = Candidate::host(self.local, "udp")
            .map_err(|e| SfuError::Internal(format!("candidate: {e}")))?;
        rtc.add_local_candidate(candidate);
        let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rtc.sdp_api().accept_offer(offer)
        }))
        .map_err(|_| SfuError::BadSdp("offer could not be processed".into()))?
        .map_err(|e| SfuError::BadSdp(e.to_string()))?;

        let id = SessionId(self.shared.next_session_id());
        let key = new_session_key();
        let mut peer = Peer::new(id, room.clone(), claims.role, rtc, creds.ufrag.clone(), now);
        let member = Member {
            sub: claims.sub,
            role: claims.role,
            can_control: claims.can_control && claims.role == Role::Doctor,
            expires_at_ms: claims.exp.saturating_mul(1000),
        };
        let mut out = Vec::new();
        let (socket, metrics) = (&self.socket, &self.shared.metrics);
        peer.drain(&mut |t| send(socket, metrics, t), &mut out);
        self.wake = self
            .wake
            .min(peer.next_timeout)
            .min(now + self.shared.config.connect_timeout);
        self.by_ufrag.insert(creds.ufrag, id);
        self.keys.insert(id, key.clone());
        self.shared.sessions.insert(key.clone(), (self.index, id));
        self.shared
            .metrics
            .sessions
            .with_label_values(&[member.role.as_str()])
            .inc();
        peer.capped = is_capped(&claims_caps);
        self.viewers += usize::from(peer.capped);
        self.pending_members.insert(id, member);
        self.peers.insert(id, peer);
        self.rooms.entry(room).or_insert_with(|| {
            self.shared.metrics.rooms.inc();
            Room::new(self.shared.config.room)
        });
        Ok(Joined {
            id,
            key,
            answer: answer.to_sdp_string(),
        })
    }
}

impl Worker {
    fn handle_datagram(&mut self, data: &[u8], src: SocketAddr, now: Instant) {
        let known = self.by_addr.get(&src).copied();
        let id = match known {
            Some(id) => id,
            None => match self.session_for_stun(data) {
                Some(id) => id,
                None => return self.dropped("unknown_source"),
            },
        };
        let Ok(receive) = Receive::new(Protocol::Udp, src, self.local, data) else {
            return self.dropped("unparseable");
        };
        let Some(peer) = self.peers.get_mut(&id) else {
            return self.dropped("unknown_source");
        };
        if known.is_none() {
            self.by_addr.insert(src, id);
            peer.addrs.push(src);
        }
        let mut out = std::mem::take(&mut self.scratch);
        let (socket, metrics) = (&self.socket, &self.shared.metrics);
        peer.handle_input(
            Input::Receive(now, receive),
            &mut |t| send(socket, metrics, t),
            &mut out,
        );
        self.wake = self.wake.min(peer.next_timeout);
        self.queue.extend(out.drain(..).map(|e| (id, e)));
        self.scratch = out;
        self.process_queue(now);
    }

    /// A datagram from an unknown address may only be a STUN binding request naming one of our
    /// sessions' ICE usernames; anything else is dropped without touching any session.
    fn session_for_stun(&self, data: &[u8]) -> Option<SessionId> {
        let msg = StunMessage::parse(data).ok()?;
        if !msg.is_binding_request() {
            return None;
        }
        let (local, _remote) = msg.split_username()?;
        self.by_ufrag.get(local).copied()
    }

    fn dropped(&self, reason: &str) {
        self.shared
            .metrics
            .datagrams_dropped
            .with_label_values(&[reason])
            .inc();
    }

    fn handle_timeouts(&mut self, now: Instant) {
        let mut wake = now + Duration::from_secs(1);
        let mut expired = Vec::new();
        let mut due = std::mem::take(&mut self.due);
        for (id, peer) in self.peers.iter() {
            if !peer.connected
                && now.saturating_duration_since(peer.created) > self.shared.config.connect_timeout
            {
                expired.push(*id);
                continue;
            }
            if peer.next_timeout <= now {
                due.push(*id);
            } else {
                wake = wake.min(peer.next_timeout);
            }
            if !peer.connected {
                wake = wake.min(peer.created + self.shared.config.connect_timeout);
            }
        }
        // Datagrams handled mid-pass lower this as they go.
        self.wake = wake;
        let mut out = std::mem::take(&mut self.scratch);
        for (n, id) in due.iter().enumerate() {
            if n > 0 && n % URGENT_EVERY == 0 {
                // Timers of a big room come due together (str0m's stats and reports line up
                // once a room's viewers are flushed in one pass): same rule as the fan-out.
                self.serve_urgent(now);
            }
            let (socket, metrics) = (&self.socket, &self.shared.metrics);
            let Some(peer) = self.peers.get_mut(id) else {
                continue;
            };
            peer.handle_input(
                Input::Timeout(now),
                &mut |t| send(socket, metrics, t),
                &mut out,
            );
            self.wake = self.wake.min(peer.next_timeout);
            self.queue.extend(out.drain(..).map(|e| (*id, e)));
        }
        self.scratch = out;
        due.clear();
        self.due = due;
        for id in expired {
            self.remove_peer(id, "connect_timeout");
        }
        let unix_ms = unix_ms();
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
            self.flush_room(&name);
        }
        self.process_queue(now);
    }

    /// Send what was written to viewers since the last flush (a receive batch, or a slice of
    /// [`MAX_PACKETS_PER_FLUSH`] robot packets). str0m releases written RTP on its next
    /// timeout, so each dirty viewer gets one `Timeout(now)`.
    fn flush_dirty(&mut self, now: Instant) {
        if self.dirty.is_empty() {
            return;
        }
        let mut out = std::mem::take(&mut self.scratch);
        let dirty = std::mem::take(&mut self.dirty);
        for (n, id) in dirty.iter().enumerate() {
            if n > 0 && n % URGENT_EVERY == 0 {
                // A big room's flush takes milliseconds: a joystick frame or an e-stop that
                // arrived meanwhile must not wait for the last viewer.
                self.serve_urgent(now);
            }
            let (socket, metrics, gso) = (&self.socket, &self.shared.metrics, &mut self.gso);
            let Some(peer) = self.peers.get_mut(id) else {
                continue;
            };
            peer.dirty = false;
            // The viewer's packets of this batch leave together: one send per run of
            // equal-sized datagrams instead of one per datagram.
            peer.handle_input(
                Input::Timeout(now),
                &mut |t| {
                    // Read each time: quinn-udp turns GSO off if the kernel refuses it once.
                    let max_segments = socket.max_segments();
                    if gso.fits(t.destination, t.contents.len(), max_segments) == Fit::FlushFirst {
                        flush_gso(gso, socket, metrics);
                    }
                    gso.push(t.destination, &t.contents);
                },
                &mut out,
            );
            flush_gso(gso, socket, metrics);
            self.wake = self.wake.min(peer.next_timeout);
            self.queue.extend(out.drain(..).map(|e| (*id, e)));
        }
        self.scratch = out;
        let done = Instant::now();
        for t in self.unsent.drain(..) {
            self.shared
                .metrics
                .forward_latency
                .observe(done.saturating_duration_since(t).as_secs_f64());
        }
        self.process_queue(now);
    }

    /// In the middle of a long pass: read what has arrived and handle the viewers' datagrams
    /// now (control frames, e-stops, RTCP); the robots' media waits in `deferred` (handled by
    /// the loop next, before anything newer), so a pass never starts another fan-out.
    fn serve_urgent(&mut self, now: Instant) {
        if self.deferred.len() >= MAX_DEFERRED {
            return;
        }
        let mut urgent = std::mem::replace(&mut self.urgent, RecvBatch::with_buffers(0, 0));
        if self.socket.try_recv_now(&mut urgent).is_ok() {
            for d in &urgent.datagrams {
                if self.is_publisher(d.src) {
                    self.deferred.push((urgent.bytes(d).to_vec(), d.src));
                } else {
                    self.handle_datagram(urgent.bytes(d), d.src, now);
                }
            }
        }
        urgent.clear();
        self.urgent = urgent;
    }

    /// Robot media held back by [`serve_urgent`](Self::serve_urgent), handled as a batch.
    fn handle_deferred(&mut self) {
        let mut written = 0;
        for (bytes, src) in std::mem::take(&mut self.deferred) {
            self.handle_publisher_datagram(&bytes, src, &mut written);
        }
        self.flush_dirty(Instant::now());
    }

    /// A robot's datagram, flushing the fan-out every [`MAX_PACKETS_PER_FLUSH`] of them.
    fn handle_publisher_datagram(&mut self, data: &[u8], src: SocketAddr, written: &mut usize) {
        if *written == MAX_PACKETS_PER_FLUSH {
            self.flush_dirty(Instant::now());
            *written = 0;
        }
        self.handle_datagram(data, src, Instant::now());
        *written += 1;
    }

    fn is_publisher(&self, src: SocketAddr) -> bool {
        self.by_addr
            .get(&src)
            .and_then(|id| self.peers.get(id))
            .is_some_and(|p| p.role == Role::Robot)
    }

    /// Route everything sessions produced, including what routing itself produces.
    fn process_queue(&mut self, now: Instant) {
        while let Some((from, ev)) = self.queue.pop_front() {
            self.route(from, ev, now);
        }
    }

    fn route(&mut self, from: SessionId, ev: PeerEvent, now: Instant) {
        let Some(room_id) = self.peers.get(&from).map(|p| p.room.clone()) else {
            return;
        };
        match ev {
            PeerEvent::Connected => self.connected(from, &room_id, now),
            PeerEvent::Rtp {
                kind,
                keyframe_start,
                packet,
                codec,
            } => {
                let counters = match kind {
                    TrackKind::Audio => &self.counters[0],
                    TrackKind::Video => &self.counters[1],
                };
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
                };
                let Some(fan) = room.on_rtp(from, input, now) else {
                    return;
                };
                let mut sent = 0u64;
                for target in fan.targets {
                    let Some(peer) = self.peers.get_mut(target) else {
                        continue;
                    };
                    if peer.write_rtp(kind, &packet, &codec, fan.seq, fan.ts, now) {
                        sent += 1;
                        // Sent when the receive batch is done: one str0m pass per viewer per
                        // batch instead of one per packet (a video frame is several packets).
                        if !peer.dirty {
                            peer.dirty = true;
                            self.dirty.push(*target);
                        }
                    }
                }
                let counters = match kind {
                    TrackKind::Audio => &self.counters[0],
                    TrackKind::Video => &self.counters[1],
                };
                counters.packets_out.inc_by(sent);
                self.unsent.push(packet.timestamp);
                // Room outputs (a keyframe request for waiting viewers) go out now.
                self.flush_room(&room_id);
            }
            PeerEvent::KeyframeRequest => {
                if let Some(room) = self.rooms.get_mut(&room_id) {
                    room.on_keyframe_request(from, now);
                    self.flush_room(&room_id);
                }
            }
            PeerEvent::Control(bytes) => {
                if let Some(room) = self.rooms.get_mut(&room_id) {
                    room.on_control(from, &bytes, now);
                    self.flush_room(&room_id);
                }
            }
            PeerEvent::Events(bytes) => {
                if let Some(room) = self.rooms.get_mut(&room_id) {
                    room.on_event(from, &bytes, now);
                    self.flush_room(&room_id);
                }
            }
            PeerEvent::Nacks { received, sent } => {
                let nacks = &self.shared.metrics.nacks;
                nacks.with_label_values(&["received"]).inc_by(received);
                nacks.with_label_values(&["sent"]).inc_by(sent);
            }
            PeerEvent::Closed(reason) => self.remove_peer(from, reason),
        }
    }

    fn connected(&mut self, id: SessionId, room_id: &Arc<str>, now: Instant) {
        let Some(member) = self.pending_members.remove(&id) else {
            return;
        };
        let Some(peer) = self.peers.get(&id) else {
            return;
        };
        self.shared
            .metrics
            .join_seconds
            .with_label_values(&[member.role.as_str()])
            .observe(now.saturating_duration_since(peer.created).as_secs_f64());
        let Some(room) = self.rooms.get_mut(room_id) else {
            return;
        };
        if member.role == Role::Robot
            && room.admit_publisher(&member.sub) == crate::room::Admission::Conflict
        {
            // Another robot won the race between our signalling check and now.
            return self.remove_peer(id, "room_busy");
        }
        room.join(id, member, now);
        self.flush_room(room_id);
    }

    /// Carry out what the room asked for, in order.
    fn flush_room(&mut self, room_id: &Arc<str>) {
        let mut close = Vec::new();
        let mut out = std::mem::take(&mut self.scratch);
        while let Some(room) = self.rooms.get_mut(room_id) {
            let Some(output) = room.poll_output() else {
                break;
            };
            let (socket, metrics) = (&self.socket, &self.shared.metrics);
            let touch = |peer: &mut Peer, out: &mut Vec<PeerEvent>, queue: &mut VecDeque<_>| {
                peer.drain(&mut |t| send(socket, metrics, t), out);
                queue.extend(out.drain(..).map(|e| (peer.id, e)));
            };
            match output {
                Output::RequestKeyframe { publisher } => {
                    if let Some(p) = self.peers.get_mut(&publisher) {
                        if p.request_keyframe() {
                            metrics.keyframe_requests.inc();
                        }
                        touch(p, &mut out, &mut self.queue);
                    }
                }
                Output::Control { to, frame } => {
                    if let Some(p) = self.peers.get_mut(&to) {
                        if p.send_control(&frame) {
                            metrics.control_forwarded.inc();
                        } else {
                            metrics
                                .control_dropped
                                .with_label_values(&["robot_channel_closed"])
                                .inc();
                        }
                        touch(p, &mut out, &mut self.queue);
                    }
                }
                Output::Event { to, json } => {
                    let targets = match to {
                        Recipients::One(id) => vec![id],
                        Recipients::Many(ids) => ids,
                    };
                    for id in targets {
                        if let Some(p) = self.peers.get_mut(&id) {
                            p.send_event(json.clone());
                            touch(p, &mut out, &mut self.queue);
                        }
                    }
                }
                Output::Close { id } => close.push(id),
                Output::ControlDropped { reason, .. } => {
                    metrics.control_dropped.with_label_values(&[reason]).inc();
                }
                Output::Audit {
                    kind,
                    actor,
                    detail,
                } => {
                    match kind {
                        "lease_changed" => metrics.lease_changes.inc(),
                        "estop_latched" => metrics.estops.inc(),
                        _ => {}
                    }
                    if let Some(hook) = &self.shared.room_events {
                        hook(RoomEvent {
                            room: room_id.to_string(),
                            kind,
                            actor,
                            detail,
                        });
                    }
                }
            }
        }
        self.scratch = out;
        for id in close {
            if let Some(p) = self.peers.get_mut(&id) {
                p.disconnect();
            }
            self.remove_peer(id, "replaced");
        }
    }

    fn remove_peer(&mut self, id: SessionId, reason: &'static str) {
        let Some(peer) = self.peers.remove(&id) else {
            return;
        };
        self.viewers -= usize::from(peer.capped);
        tracing::info!(session = %id, role = peer.role.as_str(), reason, "session closed");
        if !matches!(reason, "goodbye" | "replaced") {
            self.shared
                .metrics
                .session_failures
                .with_label_values(&[reason])
                .inc();
        }
        self.shared
            .metrics
            .sessions
            .with_label_values(&[peer.role.as_str()])
            .dec();
        for a in &peer.addrs {
            if self.by_addr.get(a) == Some(&id) {
                self.by_addr.remove(a);
            }
        }
        self.by_ufrag.remove(&peer.ufrag);
        self.pending_members.remove(&id);
        if let Some(key) = self.keys.remove(&id) {
            self.shared.sessions.remove(&key);
        }
        let room_id = peer.room.clone();
        if let Some(room) = self.rooms.get_mut(&room_id) {
            room.leave(id, Instant::now());
            self.flush_room(&room_id);
        }
        let empty = self.rooms.get(&room_id).is_some_and(|r| r.is_empty())
            && !self.peers.values().any(|p| p.room == room_id);
        if empty {
            self.rooms.remove(&room_id);
            self.shared.metrics.rooms.dec();
        }
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Does a session with this (role, may drive) count against the worker's viewer cap? Robots
/// and the doctor who may drive never do: the cap must not lock out the robot or its driver.
fn is_capped(&(role, can_control): &(Role, bool)) -> bool {
    match role {
        Role::Robot => false,
        Role::Doctor => !can_control,
        Role::Observer => true,
    }
}

/// Header extensions a viewer session negotiates: what the forwarded packets carry.
fn viewer_extensions() -> ExtensionMap {
    let mut exts = ExtensionMap::empty();
    exts.set(1, Extension::AudioLevel);
    exts.set(4, Extension::RtpMid);
    exts.set(13, Extension::VideoOrientation);
    exts
}

fn new_session_key() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Send one datagram without waiting: UDP either takes it now or it is lost like on the wire.
fn send(socket: &MediaSocket, metrics: &crate::metrics::Metrics, t: &Transmit) {
    metrics.udp_sends.inc();
    match socket.send_one(t.destination, &t.contents) {
        Ok(()) => {
            metrics.bytes_out.inc_by(t.contents.len() as u64);
            metrics.datagrams_out.inc();
        }
        Err(_) => metrics
            .datagrams_dropped
            .with_label_values(&["send_failed"])
            .inc(),
    }
}

/// Send a viewer's gathered datagrams (one syscall), same accounting as [`send`].
fn flush_gso(gso: &mut SendBatch, socket: &MediaSocket, metrics: &crate::metrics::Metrics) {
    if gso.count() == 0 {
        return;
    }
    let done = gso.flush(socket);
    metrics.udp_sends.inc_by(done.calls as u64);
    metrics.bytes_out.inc_by(done.bytes as u64);
    metrics.datagrams_out.inc_by(done.datagrams as u64);
    if done.lost > 0 {
        metrics
            .datagrams_dropped
            .with_label_values(&["send_failed"])
            .inc_by(done.lost as u64);
    }
}
