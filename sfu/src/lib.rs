#![deny(missing_docs)]

//! Bedside's media plane: a WHIP/WHEP selective forwarding unit on [str0m], one robot and its
//! viewers per room.
//!
//! A robot publishes its camera and microphone over WHIP; doctors and students watch over WHEP.
//! The SFU forwards the robot's RTP to every viewer without decoding it, and carries two data
//! channels per session: `control` (the lease holder's joystick frames, to the robot) and
//! `events` (presence, the control lease, the e-stop, telemetry). Who may join is decided by a
//! signed join token ([`bedside_proto::join_token`]); the SFU holds public keys only. The wire
//! formats are specified in [`bedside_proto`]; how a client uses them in `docs/protocol.md`.
//!
//! Not here: users, bookings, or issuing tokens (that is `bedside-api`). `bedside-sfu` never
//! depends on the API: in a cluster it runs alone and fetches the API's JWKS.
//!
//! # Usage
//!
//! Start the workers with [`Sfu::start`], mount [`signalling::router`] in an axum app, serve it.
//! That is the whole public surface a binary needs; `bedside sfu` (`src/media_node.rs`) and
//! `bedside serve` (`src/serve.rs`) do the same.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use bedside_proto::KeyPair;
//! use bedside_proto::node::NodeReport;
//! use bedside_sfu::{signalling, Metrics, RoomEventHook, Sfu, SfuConfig};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // A media node holds public keys only: in production `TokenVerifier::from_jwks` on the
//!     // API's `/.well-known/jwks.json`, refreshed with `Sfu::set_verifier`. Here one process
//!     // signs and verifies.
//!     let key = KeyPair::generate()?;
//!     let config = SfuConfig {
//!         bind_ip: "0.0.0.0".parse()?,
//!         public_ip: Some("203.0.113.10".parse()?), // NAT 1:1
//!         udp_port: 40000,                          // worker i listens on 40000 + i
//!         workers: 2,
//!         ..SfuConfig::default()
//!     };
//!     // Lease changes and e-stops for an audit log, and rooms' live status (the all-in-one
//!     // binary hands them to the API's node hub).
//!     let audit: RoomEventHook = Arc::new(|report: NodeReport| println!("{report:?}"));
//!     let sfu = Sfu::start(config, key.verifier(), Metrics::new(), Some(audit)).await?;
//!     println!("ICE candidates: {:?}", sfu.media_addrs());
//!
//!     // POST /whip/{room}, POST /whep/{room}, DELETE and PATCH /sessions/{key}, GET /metrics.
//!     let app = axum::Router::new().merge(signalling::router(sfu.clone()));
//!     let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//!     axum::serve(listener, app).await?;
//!     Ok(())
//! }
//! ```
//!
//! [`client::WebRtcClient`] is the other side: a WHIP/WHEP client on str0m, used by the robot
//! agent (`bedside robot`), the integration tests and the bench.
//!
//! # Run loop
//!
//! Like str0m, the media plane is sans-IO at its core: a [`Switchboard`](switchboard::Switchboard)
//! per worker owns that worker's sessions and rooms, does no I/O and spawns nothing; time comes
//! in as an argument (the clock is read only to measure forwarding latency). It is driven by a thin tokio worker (`worker.rs`), one task and one UDP socket per
//! worker. The shape mirrors str0m's `handle_input` / `poll_output`:
//!
//! | str0m's `Rtc` | the switchboard |
//! |---------------|-----------------|
//! | `handle_input(Input::Receive)` | [`handle_batch`](switchboard::Switchboard::handle_batch): one receive batch, urgent datagrams first |
//! | `handle_input(Input::Timeout)` | [`handle_timeout`](switchboard::Switchboard::handle_timeout): str0m timers, connect timeouts, rooms' deadlines |
//! | the user's mutations | commands from signalling: [`admit`](switchboard::Switchboard::admit), [`leave`](switchboard::Switchboard::leave), [`revoke_lease`](switchboard::Switchboard::revoke_lease) |
//! | `Output::Transmit` | the [`Io`](io::Io) it is handed: `send` now, or `gather` for one GSO send per viewer at [`flush`](switchboard::Switchboard::flush) |
//! | `Output::Event` | [`poll_event`](switchboard::Switchboard::poll_event): audit records, room statuses, closed sessions' keys |
//! | `Output::Timeout` | [`poll_timeout`](switchboard::Switchboard::poll_timeout) |
//!
//! Sends are not queued as outputs but made through [`Io`](io::Io), and that is the one
//! departure from str0m's shape, bought by the benchmark: a viewer's datagrams of one flush
//! leave in one GSO send without being copied into a queue first, and in the middle of a long
//! flush the switchboard can ask [`Io::read_now`](io::Io::read_now) for what arrived meanwhile
//! (a joystick frame must not wait for the 500th viewer).
//!
//! The worker's loop, one `tokio::select!` over these inputs, deliberately **not** `biased`:
//! under a flood of offers the socket still gets its turns, and under a flood of media the
//! commands get theirs (a biased loop starved one or the other):
//!
//! 1. **Commands** from signalling (join, leave, revoke lease): up to `COMMANDS_PER_TURN` (16)
//!    at a time, the rest on the next turn.
//! 2. **Deferred media**, read in the middle of the last pass, goes before anything newer
//!    ([`handle_deferred`](switchboard::Switchboard::handle_deferred)).
//! 3. **A readable socket**: one `recvmmsg` (up to 32 buffers, GRO split back into datagrams)
//!    and [`handle_batch`](switchboard::Switchboard::handle_batch).
//! 4. **The timeout** from [`poll_timeout`](switchboard::Switchboard::poll_timeout).
//!
//! After any of them: [`handle_timeout`](switchboard::Switchboard::handle_timeout) if it is due,
//! [`flush`](switchboard::Switchboard::flush) (a command or a timer may have routed media), and
//! [`poll_event`](switchboard::Switchboard::poll_event) until empty (audit records and room
//! statuses to the [`RoomEventHook`], closed sessions' `Location` keys out of the directory).
//! Every str0m `Rtc` is drained to its timeout after each input, as str0m requires, inside
//! `peer.rs`. [`poll_timeout`](switchboard::Switchboard::poll_timeout) is the earliest of every
//! peer's and every room's timer, including timers a room set while handling a datagram (a
//! stop frame's repeats, a switched slot's keyframe retry): the shell never sleeps past them.
//!
//! Because the switchboard touches no socket, it runs just as well over vectors:
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::{Duration, Instant};
//!
//! use bedside_sfu::io::{Arrived, Io};
//! use bedside_sfu::switchboard::Switchboard;
//! use bedside_sfu::{Metrics, SfuConfig};
//! use str0m::net::Transmit;
//!
//! /// The shell's side, over plain vectors.
//! #[derive(Default)]
//! struct Wire {
//!     sent: Vec<(SocketAddr, usize)>,
//!     arriving: Vec<Arrived>,
//! }
//!
//! impl Io for Wire {
//!     fn send(&mut self, t: &Transmit) {
//!         self.sent.push((t.destination, t.contents.len()));
//!     }
//!     fn gather(&mut self, t: &Transmit) {
//!         self.send(t) // no GSO here
//!     }
//!     fn flush(&mut self) {}
//!     fn read_now(&mut self, out: &mut Vec<Arrived>) {
//!         out.append(&mut self.arriving)
//!     }
//! }
//!
//! let start = Instant::now();
//! let metrics = Metrics::new();
//! let local: SocketAddr = "192.0.2.1:40000".parse()?;
//! let mut board = Switchboard::new(SfuConfig::default(), local, metrics.clone(), start);
//! let mut wire = Wire::default();
//!
//! // An RTP-looking datagram from an address no STUN request introduced: dropped and counted,
//! // no session sees it.
//! let stranger = Arrived { src: "198.51.100.7:5000".parse()?, data: vec![0x80, 96, 0, 1] };
//! board.handle_batch(start, &[stranger][..], &mut wire);
//! let dropped = metrics.datagrams_dropped.with_label_values(&["unknown_source"]);
//! assert_eq!(dropped.get(), 1);
//!
//! // Time is an input: the shell sleeps until `poll_timeout`, then hands the time back, with
//! // the wall clock (unix ms) that token expiry is measured in.
//! let now = board.poll_timeout().max(start) + Duration::from_millis(5);
//! board.handle_timeout(now, 1_700_000_000_000, &mut wire);
//! board.flush(now, &mut wire);
//! assert!(board.poll_event().is_none());
//! assert!(wire.sent.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The switchboard's own tests (`switchboard_tests.rs`) do the same with real str0m peers in
//! memory: robots, viewers, lease changes and e-stops without a socket.
//!
//! # Design
//!
//! The logic is in plain structs fed events and polled for outputs, and the I/O shell around
//! them is thin. A room and all its sessions live on one worker (one core), so nothing in a
//! worker needs a lock; the only state shared between workers is the directory.
//!
//! ## The sans-IO core, file by file
//!
//! Unit tested with plain function calls; time is always an argument.
//!
//! - [`switchboard`]: one worker's sessions and rooms, and every policy about more than one
//!   session: admission of a new address only through a STUN binding request naming a session's
//!   ICE ufrag and signed with its password, sessions still setting up bounded per token and per
//!   worker, the [viewer cap](#the-viewer-cap), deny entries from the API ending the sessions
//!   they name, the [priority](#priority-of-urgent-datagrams)
//!   of urgent datagrams, routing what a peer produces through its room and carrying out the
//!   room's outputs in order, creating a room with its first session and dropping it with its
//!   last (its e-stop latch and lease epoch are remembered for the next), removing sessions that
//!   do not connect within `connect_timeout`.
//! - `sessions.rs`: the session table and its indexes (by remote address, by ICE ufrag). Peers
//!   and indexes live in one struct so that one `remove` clears a session from all of them: a
//!   stale index entry would route a stranger's datagrams into a dead session, or a live one.
//! - [`demux`]: what kind a datagram is from its first two bytes (RFC 7983), and which kinds
//!   are urgent.
//! - [`io`]: the [`Io`](io::Io) trait, what the switchboard asks of the shell.
//! - [`room`]: one room. Members (one live session per person and booking), the lease, the
//!   e-stop, the `events` rate limit; turns events into [`Output`](room::Output)s
//!   (`RequestKeyframe`, `Control`, `Event`, `Close`, `ControlDropped`, `Audit`). Queues the
//!   robot's stop frame before any lease or e-stop event, and repeats it twice within 60 ms.
//! - [`room_media`]: where the robot's media goes: which viewers receive video (only after a
//!   keyframe start) and audio, continuous numbering, keyframe requests coalesced (students'
//!   decoders to one per 2 s).
//! - [`deny_list`]: the API's revocations as the node enforces them at every join.
//! - [`lease`]: who may drive; the epoch; requests, grants, handoffs, expiry. Property-tested.
//! - [`control_gate`]: whether one control frame may reach the robot: role, lease, sequence,
//!   rate limit (100/s sustained, burst 10), e-stop; epoch stamping; drop reasons.
//! - [`estop`]: the room's latch (any doctor sets it, the lease holder clears it) and the
//!   robot's own (pressed at the bedside, cleared only there).
//! - [`forwarder`]: continuous sequence numbers and timestamps across robot reconnects
//!   ([`TrackForwarder`](forwarder::TrackForwarder)), and per-viewer rebasing
//!   ([`DownTrack`](forwarder::DownTrack)).
//! - [`keyframe`]: keyframe detection (VP8, H.264) and PLI coalescing (one request per 300 ms,
//!   counted from the keyframe that answered, because a browser robot ignores requests within
//!   300 ms of the last one it honoured).
//! - [`nack_history`]: how much retransmission history a viewer gets: four of its round trips,
//!   100 ms to 1 s (the history is most of what a viewer costs in memory).
//! - [`room_event`]: lease changes and e-stops as typed audit records
//!   ([`RoomAudit`](room_event::RoomAudit)), handed to the [`RoomEventHook`] as [`RoomEvent`]s.
//! - [`room_status`]: when a room's live status ([`Room::status`](room::Room::status)) goes to
//!   the API: on a change at most once a second, and as a refresh every `status_refresh`.
//!
//! ## The shell, file by file
//!
//! - [`sfu`]: [`Sfu::start`] binds one UDP socket per worker and spawns each worker. A join,
//!   once signalling has verified the token, builds the session's peer on the signalling task,
//!   registers its `Location` key and sends it to the room's worker.
//! - `directory.rs`: room id -> worker (new rooms round-robin, entries never removed, so a room
//!   can never be split across workers by a race with its teardown) and secret `Location` key
//!   -> (worker, session). The only state shared between workers; it holds no room state.
//! - `worker.rs`: one UDP socket, one tokio task, one switchboard: the [run loop](#run-loop).
//!   Its `SocketIo` implements [`Io`](io::Io) over the socket with GSO batching. A panic inside
//!   the switchboard is caught and the worker starts over with a fresh one (its sessions
//!   reconnect; latches and epochs are carried over), counted in
//!   `bedside_worker_restarts_total`.
//! - `socket.rs`: the worker's socket through `quinn-udp`: `recvmmsg` (and GRO, split back into
//!   datagrams) on the way in, GSO on the way out (`SendBatch` groups a viewer's equal-sized
//!   datagrams of one pass into one `sendmsg`; quinn-udp falls back to single sends where the
//!   kernel or NIC cannot segment).
//! - `peer.rs`: one str0m `Rtc` (RTP mode, ICE-lite, VP8/H.264/Opus, one host candidate) per
//!   session, built from the offer on the signalling task so that a burst of offers costs the
//!   media loop only the insertion. Every call into str0m is wrapped in `catch_unwind`, so a
//!   str0m bug costs one session, not the worker.
//! - [`signalling`]: WHIP/WHEP/`DELETE`/`PATCH` over axum, token checks, and the one mapping
//!   from [`SfuError`] to HTTP status.
//! - [`metrics`]: Prometheus families (no room or user ids as labels).
//! - [`config`], [`error`], [`session_id`]: the [`SfuConfig`], the one error type, the
//!   non-secret [`SessionId`] participants see (`s<N>`).
//! - [`client`]: a str0m WHIP/WHEP client and fixture packetizer for the robot agent, the tests
//!   and the bench.
//!
//! ## Forwarding path of one robot packet
//!
//! 1. The worker wakes on a readable socket and reads one batch (one `recvmmsg`, up to 32
//!    buffers) into [`handle_batch`](switchboard::Switchboard::handle_batch), which first handles
//!    every urgent datagram of the batch, then media held back by the last pass, then the
//!    batch's own RTP.
//! 2. The session table finds the robot's session by the datagram's source address, and
//!    `peer.rs` feeds it to str0m: it decrypts SRTP, handles NACK and RTX, and yields an
//!    `RtpPacket`; the peer marks whether the payload starts a keyframe.
//! 3. [`Room::on_rtp`](room::Room::on_rtp) maps the packet to the room's continuous numbering
//!    and returns the viewers to send it to (a viewer waiting for a keyframe gets no video).
//! 4. For each viewer `peer.rs` rebases the numbering, maps the payload type and writes the
//!    packet to its `Rtc`. The payload is shared, not copied: str0m takes an `Arc<[u8]>`.
//! 5. Every [`MAX_PACKETS_PER_FLUSH`](switchboard::MAX_PACKETS_PER_FLUSH) (8) media packets, and
//!    at the end of the batch, [`flush`](switchboard::Switchboard::flush) gives each viewer
//!    written to one str0m pass, and what it produces leaves in one GSO send
//!    ([`Io::gather`](io::Io::gather), [`Io::flush`](io::Io::flush)). Slicing keeps a big batch
//!    (after a stall) from holding its first packets back for its last, and bounds str0m's
//!    per-viewer send queue.
//!
//! A 500-viewer flush takes milliseconds, so every [`URGENT_EVERY`](switchboard::URGENT_EVERY)
//! (16) viewers of a flush, and every 16 due timers, the switchboard reads the socket again
//! ([`Io::read_now`](io::Io::read_now)) and handles urgent datagrams on the spot; media read then
//! waits (deferred, at most [`MAX_DEFERRED`](switchboard::MAX_DEFERRED), past which the socket's
//! own buffer takes the overload) and goes first in the next turn, keeping its order.
//!
//! Viewers negotiate no transport-wide-cc or abs-send-time: there is no bandwidth estimation
//! toward them (one layer), and each would cost a per-packet extension, a 1000-entry send
//! register and ten feedback packets a second. Measured costs: `docs/benchmarks.md`.
//!
//! ## Priority of urgent datagrams
//!
//! One UDP port carries everything, and one robot packet fans out to hundreds of viewers, so a
//! joystick frame or an e-stop read in the same batch must not wait behind that. The kind of a
//! datagram is told by its first bytes ([`PacketKind`](demux::PacketKind), RFC 7983):
//!
//! | first byte | kind | |
//! |-----------|------|---|
//! | 0-3 | STUN | urgent: ICE checks and consent |
//! | 20-63 | DTLS | urgent: the handshake and the data channels (control frames, e-stops, events) |
//! | 128-191, packet type 192-223 | RTCP (RFC 5761) | urgent: reports, NACKs, PLIs |
//! | 128-191 otherwise | RTP | media: handled last, in slices |
//! | anything else | other | handled early and cheaply (dropped by str0m or the lookup) |
//!
//! Urgency is a property of the packet, not of who sent it: a doctor's microphone is media, a
//! robot's receiver report is not. The first bytes are not trusted: a wrong guess changes only
//! the order of handling, never whether a packet is handled.
//!
//! ## The viewer cap
//!
//! A worker is one core, and a saturated core delays the lease holder's joystick frames and
//! e-stops along with the video. So a worker takes at most
//! [`max_viewers_per_worker`](SfuConfig::max_viewers_per_worker) watching sessions (default
//! 500, `--max-viewers-per-worker`); past it a join gets 503 ([`SfuError::Full`]). Observers and
//! doctors whose token may not drive count once connected (sessions still setting up are bounded
//! apart: `max_pending_per_worker`, `max_pending_per_token` and `max_pending_per_room`, the last
//! so that a flood of offers into one room leaves the worker's other rooms their joins); the
//! robot and the doctor whose token may drive are never refused by the viewer cap nor by the
//! room's and worker's pending bounds (only per token), so no crowd and no flood can lock out
//! the robot or its driver. A room lives on one
//! worker, so a room's audience is bounded by its worker's cap, shared with the other rooms
//! there.
//!
//! ## Safety ordering
//!
//! On every lease change and every e-stop latch the robot is sent a **stop** frame, carrying the
//! new epoch, *before* anyone is told of the change: the old holder's last command must not keep
//! the robot moving while the new holder is still finding the joystick. The order is kept end
//! to end:
//!
//! - the [`room`] queues its outputs in order: the stop frame (`Control` to the robot), then
//!   the audit record, then the `lease` or `estop` event;
//! - the switchboard carries a room's outputs out in queue order, and each output's datagrams
//!   are sent ([`Io::send`](io::Io::send), never gathered) before the next output is looked at.
//!
//! Around it: the [`control_gate`] forwards only the lease holder's frames, stamps the current
//! epoch (a client's own epoch is overwritten), rate-limits them, and drops motion while the
//! e-stop is latched; only the lease holder may clear the room's e-stop, and nobody but the
//! robot its own. The robot's watchdog (it stops
//! when frames stop, ignores older epochs) and the motor controller's own timeout are the
//! layers beyond the SFU: `docs/architecture.md`, "Safety in depth".

pub mod client;
pub mod config;
pub mod control_gate;
pub mod demux;
pub mod deny_list;
mod directory;
pub mod error;
pub mod estop;
pub mod forwarder;
pub mod framing;
pub mod ice_restart;
pub mod io;
pub mod keyframe;
pub mod lease;
pub mod lines;
pub mod metrics;
pub mod metrics_text;
pub mod nack_history;
mod peer;
pub mod picture_ids;
pub mod room;
pub mod room_event;
pub mod room_media;
pub mod room_status;
pub mod session_id;
mod sessions;
pub mod sfu;
pub mod signalling;
pub mod silence;
mod socket;
pub mod speakers;
pub mod switchboard;
mod tcp;
mod worker;

pub use config::SfuConfig;
pub use error::SfuError;
pub use metrics::Metrics;
pub use room_event::{RoomEvent, RoomEventHook};
pub use session_id::SessionId;
pub use sfu::Sfu;
