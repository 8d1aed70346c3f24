//! A worker: one UDP socket, one tokio task, and the [`Switchboard`] that owns its sessions.
//!
//! This is the thin I/O shell. The loop waits for a command from signalling, a readable socket
//! or the switchboard's next timeout, and feeds what it got to the switchboard; the switchboard
//! sends through [`SocketIo`], which turns a viewer's datagrams of one flush into GSO sends and
//! reads the socket again when the switchboard asks in the middle of a long pass. Because a
//! room and all its sessions live on one worker, nothing here needs a lock.
//!
//! A panic inside the switchboard (a bug in room code, say) must not leave a dead worker behind
//! that still owns its rooms: every call into the switchboard is isolated, and a worker that
//! caught one starts over with a fresh switchboard (its sessions are gone and reconnect; rooms'
//! e-stop latches and epochs are carried over), counted in `bedside_worker_restarts_total`.
//!
//! Not here: any policy (the switchboard decides what to handle first and where things go),
//! HTTP (`signalling.rs`), building a session from an offer (`peer.rs`).

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bedside_proto::node::{Deny, Latch};
use std::collections::HashMap;

use str0m::net::{Protocol, Transmit};
use tokio::sync::{mpsc, oneshot};

use crate::config::SfuConfig;
use crate::directory::Directory;
use crate::error::SfuError;
use crate::ice_restart::IceCredentials;
use crate::io::{Arrived, Io};
use crate::metrics::Metrics;
use crate::room_event::RoomEventHook;
use crate::socket::{Fit, MediaSocket, RecvBatch, SendBatch};
use crate::switchboard::{Admit, Datagrams, Event, Switchboard};
use crate::SessionId;

/// Requests from the HTTP side to a worker.
pub(crate) enum Command {
    Join {
        admit: Box<Admit>,
        reply: oneshot::Sender<Result<SessionId, SfuError>>,
    },
    Leave {
        id: SessionId,
    },
    RevokeLease {
        room: Arc<str>,
        reply: oneshot::Sender<bool>,
    },
    EndSession {
        room: Arc<str>,
        session: String,
        reply: oneshot::Sender<bool>,
    },
    Deny(Deny),
    RestoreLatches(Vec<Latch>),
    IceRestart {
        id: SessionId,
        remote: IceCredentials,
        reply: oneshot::Sender<Result<String, SfuError>>,
    },
    /// Something happened on an ICE-TCP connection (see `tcp.rs`).
    Tcp {
        remote: SocketAddr,
        event: TcpEvent,
    },
    /// A fault injected by a test.
    Panic,
}

/// What an ICE-TCP connection tells its worker.
pub(crate) enum TcpEvent {
    /// The connection is ours: write what goes to its remote address here.
    Open(mpsc::Sender<Vec<u8>>),
    /// One frame arrived.
    Frame(Vec<u8>),
    /// It closed.
    Closed,
}

/// Receive buffers for the switchboard's mid-pass reads.
const URGENT_BUFFERS: usize = 8;
/// Commands handled per turn of the loop at most: a burst of offers or revocations waits for
/// the next turn rather than keep the socket unread.
const COMMANDS_PER_TURN: usize = 16;

pub(crate) struct Worker {
    index: usize,
    config: SfuConfig,
    local: SocketAddr,
    socket: MediaSocket,
    metrics: Metrics,
    board: Switchboard,
    commands: mpsc::Receiver<Command>,
    directory: Arc<Directory>,
    room_events: Option<RoomEventHook>,
    /// A viewer's datagrams of one flush, gathered for one GSO send.
    gso: SendBatch,
    /// Buffers for reads in the middle of a pass.
    urgent: RecvBatch,
    /// ICE-TCP connections by remote address: where to write what goes to them.
    tcp: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
    /// The node's passive ICE-TCP candidate, kept across a restart of the switchboard.
    local_tcp: Option<SocketAddr>,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        index: usize,
        config: SfuConfig,
        local: SocketAddr,
        socket: MediaSocket,
        metrics: Metrics,
        commands: mpsc::Receiver<Command>,
        directory: Arc<Directory>,
        room_events: Option<RoomEventHook>,
        local_tcp: Option<SocketAddr>,
    ) -> Self {
        let urgent = socket.recv_batch(URGENT_BUFFERS);
        let mut board = Switchboard::new(config.clone(), local, metrics.clone(), Instant::now());
        if let Some(t) = local_tcp {
            board.set_local_tcp(t);
        }
        Worker {
            index,
            config,
            local,
            socket,
            metrics,
            board,
            commands,
            directory,
            room_events,
            gso: SendBatch::default(),
            urgent,
            tcp: HashMap::new(),
            local_tcp,
        }
    }

    pub(crate) async fn run(mut self) {
        let mut batch = self.socket.recv_batch(quinn_udp::BATCH_SIZE);
        loop {
            let sleep = tokio::time::sleep_until(self.board.poll_timeout().into());
            // Not biased: under a flood of offers the socket still gets its turns, and under a
            // flood of media the commands get theirs.
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => {
                        self.handle_command(cmd);
                        for _ in 1..COMMANDS_PER_TURN {
                            match self.commands.try_recv() {
                                Ok(cmd) => self.handle_command(cmd),
                                Err(_) => break,
                            }
                        }
                    }
                    None => break,
                },
                // Media read mid-pass is next in line, before anything newer.
                _ = std::future::ready(()), if self.board.has_deferred() => {
                    self.guarded(|board, io| board.handle_deferred(Instant::now(), io));
                }
                r = self.socket.readable() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "udp readiness error");
                    }
                    // One `recvmmsg` per wake-up (up to quinn-udp's batch), then timers get
                    // their turn.
                    match self.socket.try_recv(&mut batch) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        // ICMP port unreachable and the like surface here; never fatal.
                        Err(e) => tracing::debug!(error = %e, "udp receive error"),
                    }
                    let b = &batch;
                    self.guarded(|board, io| board.handle_batch(Instant::now(), b, io));
                    batch.clear();
                }
                _ = sleep => {}
            }
            self.guarded(|board, io| {
                let now = Instant::now();
                if now >= board.poll_timeout() {
                    board.handle_timeout(now, unix_ms(), io);
                }
                // Anything routed by commands or timers (str0m can release a buffered packet
                // on a timeout) goes out now too.
                board.flush(Instant::now(), io);
            });
            self.carry_out_events();
        }
        self.guarded(|board, io| board.shutdown(io));
    }

    /// Run `f` on the switchboard; if it panics, start over with a fresh one (see the module
    /// docs). `None` when it panicked.
    fn guarded<T>(&mut self, f: impl FnOnce(&mut Switchboard, &mut dyn Io) -> T) -> Option<T> {
        let (board, mut io) = self.split();
        let r = catch_unwind(AssertUnwindSafe(|| f(board, &mut io)));
        match r {
            Ok(v) => Some(v),
            Err(_) => {
                self.restart();
                None
            }
        }
    }

    fn restart(&mut self) {
        tracing::error!(
            worker = self.index,
            "media worker caught a panic; starting over"
        );
        self.metrics.worker_restarts.inc();
        let memories = catch_unwind(AssertUnwindSafe(|| {
            self.board.abandon();
            self.board.memories()
        }))
        .unwrap_or_default();
        let mut board = Switchboard::new(
            self.config.clone(),
            self.local,
            self.metrics.clone(),
            Instant::now(),
        );
        board.remember(memories);
        if let Some(t) = self.local_tcp {
            board.set_local_tcp(t);
        }
        self.board = board;
        self.directory.forget_worker(self.index);
    }

    /// The switchboard and an [`Io`] over the socket, borrowed side by side.
    fn split(&mut self) -> (&mut Switchboard, SocketIo<'_>) {
        (
            &mut self.board,
            SocketIo {
                socket: &self.socket,
                metrics: &self.metrics,
                gso: &mut self.gso,
                urgent: &mut self.urgent,
                tcp: &mut self.tcp,
            },
        )
    }

    fn handle_command(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Join { admit, reply } => {
                let r = self.guarded(|board, _| board.admit(now, *admit));
                let _ = reply.send(
                    r.unwrap_or(Err(SfuError::Internal("the media worker restarted".into()))),
                );
            }
            Command::Leave { id } => {
                self.guarded(|board, io| board.leave(now, id, io));
            }
            Command::RevokeLease { room, reply } => {
                let found = self.guarded(|board, io| board.revoke_lease(now, &room, io));
                let _ = reply.send(found.unwrap_or(false));
            }
            Command::EndSession {
                room,
                session,
                reply,
            } => {
                let found = self.guarded(|board, io| board.end_session(now, &room, &session, io));
                let _ = reply.send(found.unwrap_or(false));
            }
            Command::Deny(deny) => {
                self.guarded(|board, io| board.apply_deny(now, &deny, io));
            }
            Command::RestoreLatches(latches) => {
                self.guarded(|board, io| board.restore_latches(now, &latches, io));
            }
            Command::IceRestart { id, remote, reply } => {
                let r = self.guarded(|board, _| board.ice_restart(id, &remote));
                let _ = reply.send(
                    r.unwrap_or(Err(SfuError::Internal("the media worker restarted".into()))),
                );
            }
            Command::Tcp { remote, event } => match event {
                TcpEvent::Open(tx) => {
                    self.tcp.insert(remote, tx);
                }
                TcpEvent::Frame(f) => {
                    self.guarded(|board, io| board.handle_tcp(now, remote, &f, io));
                }
                TcpEvent::Closed => {
                    self.tcp.remove(&remote);
                    self.guarded(|board, io| board.tcp_closed(now, remote, io));
                }
            },
            Command::Panic => {
                self.guarded(|board, _| board.panic_for_tests());
            }
        }
        self.carry_out_events();
    }

    fn carry_out_events(&mut self) {
        while let Some(ev) = self.board.poll_event() {
            match ev {
                Event::Audit(ev) => {
                    if let Some(hook) = &self.room_events {
                        hook(ev.into());
                    }
                }
                Event::Status(status) => {
                    if let Some(hook) = &self.room_events {
                        hook(bedside_proto::node::NodeReport::RoomStatus { status });
                    }
                }
                Event::SessionClosed { key, ufrag, .. } => {
                    self.directory.forget_session(&key);
                    self.directory.forget_ufrag(&ufrag);
                }
                Event::Rekeyed { old, new } => {
                    self.directory.forget_ufrag(&old);
                    self.directory.register_ufrag(new, self.index);
                }
            }
        }
    }
}

impl Datagrams for RecvBatch {
    fn len(&self) -> usize {
        self.datagrams.len()
    }
    fn get(&self, i: usize) -> (SocketAddr, &[u8]) {
        let d = &self.datagrams[i];
        (d.src, self.bytes(d))
    }
}

/// The switchboard's [`Io`] over the worker's socket.
struct SocketIo<'a> {
    socket: &'a MediaSocket,
    metrics: &'a Metrics,
    gso: &'a mut SendBatch,
    urgent: &'a mut RecvBatch,
    tcp: &'a mut HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
}

impl SocketIo<'_> {
    /// A datagram for an ICE-TCP connection: queued for its writer, or dropped (and counted)
    /// if the connection's queue is full or it is gone; never waited for.
    fn send_tcp(&mut self, t: &Transmit) {
        let m = self.metrics;
        let sent = self
            .tcp
            .get(&t.destination)
            .is_some_and(|tx| tx.try_send(t.contents.to_vec()).is_ok());
        if sent {
            m.bytes_out.inc_by(t.contents.len() as u64);
            m.datagrams_out.inc();
        } else {
            m.datagrams_dropped
                .with_label_values(&["tcp_send_full"])
                .inc();
        }
    }
}

impl Io for SocketIo<'_> {
    /// One datagram without waiting: UDP either takes it now or it is lost like on the wire.
    fn send(&mut self, t: &Transmit) {
        if t.proto == Protocol::Tcp {
            return self.send_tcp(t);
        }
        let m = self.metrics;
        m.udp_sends.inc();
        match self.socket.send_one(t.destination, &t.contents) {
            Ok(()) => {
                m.bytes_out.inc_by(t.contents.len() as u64);
                m.datagrams_out.inc();
            }
            Err(_) => m
                .datagrams_dropped
                .with_label_values(&["send_failed"])
                .inc(),
        }
    }

    fn gather(&mut self, t: &Transmit) {
        if t.proto == Protocol::Tcp {
            return self.send_tcp(t);
        }
        // Read each time: quinn-udp turns GSO off if the kernel refuses it once.
        let max_segments = self.socket.max_segments();
        if self.gso.fits(t.destination, t.contents.len(), max_segments) == Fit::FlushFirst {
            self.flush();
        }
        self.gso.push(t.destination, &t.contents);
    }

    fn flush(&mut self) {
        if self.gso.count() == 0 {
            return;
        }
        let done = self.gso.flush(self.socket);
        let m = self.metrics;
        m.udp_sends.inc_by(done.calls as u64);
        m.bytes_out.inc_by(done.bytes as u64);
        m.datagrams_out.inc_by(done.datagrams as u64);
        if done.lost > 0 {
            m.datagrams_dropped
                .with_label_values(&["send_failed"])
                .inc_by(done.lost as u64);
        }
    }

    fn read_now(&mut self, out: &mut Vec<Arrived>) {
        if self.socket.try_recv_now(self.urgent).is_ok() {
            for d in &self.urgent.datagrams {
                out.push(Arrived {
                    src: d.src,
                    data: self.urgent.bytes(d).to_vec(),
                });
            }
        }
        self.urgent.clear();
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
