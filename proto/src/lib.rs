#![deny(missing_docs)]

//! Bedside's wire specification: what the SFU, the API, the robot agent, the bench and the web
//! client must agree on byte for byte.
//!
//! - [`join_token`]: the EdDSA-signed JWT that admits a participant to a room;
//! - [`control_frame`]: the fixed-size binary joystick frame on the `control` data channel;
//! - [`events`]: the JSON messages on the reliable `events` data channel;
//! - [`node`]: the channel between the API and its media nodes (revocations, room events).
//!
//! These docs are the specification; the Rust types are its one implementation, and the
//! browser's mirror (`web/js/control_frame.js`, `web/js/events.js`) follows them. How a client
//! uses them (WHIP/WHEP requests, which data channels to open, the safety rules around driving)
//! is told in `docs/protocol.md`.
//!
//! This crate does no I/O and holds no state. It is not the place for room or lease logic.
//!
//! # Join tokens
//!
//! A compact JWS (RFC 7515) JWT signed by the API with Ed25519: header `alg` is `EdDSA`, `typ`
//! `JWT`, and `kid` names the signing key. The SFU verifies with public keys only, which it
//! takes from the API's JWKS document (`GET /.well-known/jwks.json`, RFC 7517; one key per
//! entry with `kty` `OKP`, `crv` `Ed25519`, `alg` `EdDSA`, `use` `sig`, `kid`, and `x` the raw
//! 32-byte public key in base64url). A key's `kid` is the base64url of the first 12 bytes of
//! the SHA-256 of its public key. A token without `kid` is accepted only while the verifier
//! holds exactly one key; any other algorithm is refused.
//!
//! Claims ([`Claims`]); all ids are opaque, never names or other personal data, because tokens
//! end up in logs and browser storage:
//!
//! | claim | type | meaning |
//! |-------|------|---------|
//! | `sub` | string | the user or robot (a UUID); required |
//! | `room` | string | the robot's id; the token is refused for any other room (403) |
//! | `role` | `"robot"`, `"doctor"`, `"observer"` | WHIP for robots, WHEP for the others ([`Role`]) |
//! | `can_control` | bool, default `false` | may take a free control lease (the booking's doctor, within the slot) |
//! | `booking` | string, optional | the booking the token was issued for |
//! | `iat` | integer, default 0 | issued at, seconds; a deny entry cut in time refuses tokens issued up to its cut ([`node`]) |
//! | `nbf` | integer | not before, seconds since the Unix epoch; required |
//! | `exp` | integer | expiry, seconds; never later than the booking's end; required |
//! | `jti` | string | unique token id (a UUID) |
//!
//! `nbf` is checked with [`LEEWAY_SECS`](join_token::LEEWAY_SECS) (5 s) of clock skew; `exp`
//! with none (a token past its end opens nothing, not even for a few seconds). Refusals are [`TokenError`]s: 401 for everything but a token for another room (403).
//!
//! ```
//! use bedside_proto::{Claims, KeyPair, Role, TokenError, TokenVerifier};
//!
//! let key = KeyPair::generate()?;
//! let mut claims = Claims::new("8d0c…-doctor", "robot-7", Role::Doctor, 3600);
//! claims.can_control = true;
//! let token = key.signer().sign(&claims)?;
//!
//! // The SFU's side: public keys only, from the JWKS document.
//! let verifier = TokenVerifier::from_jwks(&key.jwks())?;
//! assert_eq!(verifier.verify(&token, "robot-7"), Ok(claims));
//! assert_eq!(verifier.verify(&token, "robot-8"), Err(TokenError::WrongRoom));
//! # Ok::<(), bedside_proto::join_token::KeyError>(())
//! ```
//!
//! # Control frame
//!
//! One binary message of exactly [`FRAME_LEN`](control_frame::FRAME_LEN) (24) bytes on the
//! `control` data channel (unordered, no retransmits: a late joystick frame is worse than a lost
//! one). All integers little-endian ([`ControlFrame`]):
//!
//! | offset | size | field | notes |
//! |-------:|-----:|-------|-------|
//! | 0 | 1 | version | [`VERSION`](control_frame::VERSION), 1 |
//! | 1 | 1 | kind | 1 = drive, 2 = stop ([`FrameKind`]); stop is sent by the SFU only |
//! | 2 | 2 | flags | reserved, must be 0 |
//! | 4 | 4 | epoch | u32, lease epoch; clients may send 0, the SFU overwrites it |
//! | 8 | 4 | seq | u32, strictly increasing per sender within an epoch |
//! | 12 | 4 | timestamp_ms | u32, sender's clock in ms, wrapping; informational |
//! | 16 | 2 | linear_x | i16, forward positive |
//! | 18 | 2 | linear_y | i16, left positive |
//! | 20 | 2 | angular_z | i16, counter-clockwise positive |
//! | 22 | 2 | buttons | u16 bit field, robot-defined |
//!
//! A drive frame with all three axes zero means "hold still" (sent once on release). A stop frame
//! has zero axes and buttons and carries the new epoch; the SFU sends one to the robot on every
//! lease change and e-stop latch, before anyone is told of the change.
//!
//! Anything that does not decode is refused with a [`FrameError`], whose
//! [`reason`](FrameError::reason) is the drop label the SFU counts: `wrong_size` (not 24 bytes),
//! `bad_version`, `bad_kind`, `bad_flags`. The SFU's further drop reasons (`not_holder`, `stale`,
//! `over_rate`, …) are rules, not encoding; they are listed in `docs/protocol.md`.
//!
//! ```
//! use bedside_proto::{ControlFrame, FrameKind};
//!
//! let bytes = ControlFrame::drive(7, 1_000, 200, 0, -50).encode();
//! assert_eq!(bytes[..4], [1, 1, 0, 0]); // version, kind, flags
//! assert_eq!(bytes[16..18], 200i16.to_le_bytes());
//!
//! // The SFU stamps the lease epoch in place; nothing else changes.
//! let mut stamped = bytes;
//! ControlFrame::stamp_epoch(&mut stamped, 42);
//! let f = ControlFrame::decode(&stamped).unwrap();
//! assert_eq!((f.kind, f.epoch, f.seq), (FrameKind::Drive, 42, 7));
//! assert_eq!(ControlFrame::decode(&bytes[..23]).unwrap_err().reason(), "wrong_size");
//! ```
//!
//! # Events
//!
//! UTF-8 JSON text on the reliable, ordered `events` data channel, one object per message, with
//! a `type` field in snake_case. Messages larger than
//! [`MAX_EVENT_BYTES`](events::MAX_EVENT_BYTES) (4 KiB) or that do not parse are answered with
//! `error` `bad_event`. Participants are named by session id (`"s<N>"`, also the
//! `X-Bedside-Session` header of the WHIP/WHEP answer) and token `sub`. A participant object
//! ([`Participant`](events::Participant)) is `{"id", "sub", "role", "can_control"}`.
//!
//! SFU to participant ([`ServerEvent`](events::ServerEvent)):
//!
//! | `type` | fields | when |
//! |--------|--------|------|
//! | `welcome` | `you`: participant | first message on a session |
//! | `presence` | `participants`: array of participants, join order, the newcomer included | once, to a participant that just joined |
//! | `joined` | `participant` | to everyone else, when someone joins |
//! | `left` | `id` | to everyone still there, when someone leaves |
//! | `lease` | `holder` (session id or `null`), `epoch`, `reason` | every change, to everyone; once on join (reason `granted`) |
//! | `lease_requested` | `from` | to the holder and the requester |
//! | `lease_denied` | `to` | to the requester |
//! | `estop` | `latched`, `by` (session id) | latch or clear, by a doctor or by the robot's own button; once on join if latched |
//! | `telemetry` | `from`, `telemetry`: {`battery`, `link_quality`, `estop`, `drive`} | the robot's reports (~1 Hz), to everyone |
//! | `pong` | `n` | the answer to your `ping`, at once |
//! | `error` | `code`, `message` | something you sent was refused |
//!
//! Lease `reason` ([`LeaseReason`](events::LeaseReason)): `granted`, `handoff`, `released`,
//! `disconnected`, `expired`, `revoked`. Error `code`: `bad_event`, `forbidden`, `not_holder`,
//! `no_holder`, `not_in_room`, `no_request`, `already_holder`, and `expired` (which also ends
//! the session when the token runs out). `message` is for people and may change.
//!
//! Participant to SFU ([`ClientEvent`](events::ClientEvent)):
//!
//! | `type` | fields | who |
//! |--------|--------|-----|
//! | `request_lease` | — | a doctor: takes a free lease with `can_control`, otherwise asks the holder |
//! | `grant_lease` | `to` | the holder, answering a request |
//! | `deny_lease` | `to` | the holder, answering a request |
//! | `handoff` | `to` | the holder, to any doctor in the room |
//! | `release` | — | the holder |
//! | `estop` | — | any doctor |
//! | `estop_clear` | — | the holder |
//! | `telemetry` | `battery`, `link_quality`, `estop`, `drive` (inline, not nested) | the robot |
//! | `ping` | `n` (a number, echoed) | anyone, observers too: a heartbeat, answered by `pong` outside the events budget (at most 20 a second answered) |
//!
//! Telemetry fields ([`Telemetry`](events::Telemetry)): `battery` and `link_quality` are
//! optional numbers 0.0-1.0; `estop` (default `false`) is the robot's *own* e-stop button, never
//! an echo of the room's latch, which could cross a clear on the wire and latch the room again;
//! `drive` is optional `[linear_x, linear_y, angular_z]`, what the robot executes after its
//! watchdog. Observers may send nothing but `ping`: every other message gets `error` `forbidden`.
//!
//! ```
//! use bedside_proto::events::{ClientEvent, LeaseReason, ServerEvent};
//!
//! let lease = ServerEvent::Lease {
//!     holder: Some("s3".into()),
//!     epoch: 5,
//!     reason: LeaseReason::Handoff,
//! };
//! assert_eq!(lease.to_json(), r#"{"type":"lease","holder":"s3","epoch":5,"reason":"handoff"}"#);
//!
//! let t = ClientEvent::parse(br#"{"type":"telemetry","battery":0.8,"drive":[0,0,0]}"#).unwrap();
//! assert!(matches!(t, ClientEvent::Telemetry(ref t) if t.battery == Some(0.8) && !t.estop));
//! ```

pub mod control_frame;
pub mod events;
pub mod join_token;
pub mod node;

pub use control_frame::{ControlFrame, FrameError, FrameKind};
pub use join_token::{Claims, KeyPair, Role, TokenError, TokenSigner, TokenVerifier};
