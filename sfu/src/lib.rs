//! Bedside's media plane: a selective forwarding unit for one robot and its viewers per room.
//!
//! Sans-IO core (plain structs fed events, returning actions, no sockets, tested with plain
//! calls): [`room`], [`lease`], [`control_gate`], [`estop`], [`forwarder`], [`keyframe`].
//! Thin I/O shell: [`sfu`] (start, routing to workers), `worker` (one UDP socket and task per
//! worker), `peer` (one str0m `Rtc` per session), [`signalling`] (WHIP/WHEP over axum).
//! [`client`] is a str0m WHIP/WHEP client for the robot agent, the tests and the bench.
//!
//! Not here: users, bookings, or issuing tokens (that is `bedside-api`).

pub mod client;
pub mod config;
pub mod control_gate;
pub mod demux;
pub mod deny_list;
mod directory;
pub mod error;
pub mod estop;
pub mod forwarder;
pub mod io;
pub mod keyframe;
pub mod lease;
pub mod metrics;
pub mod nack_history;
mod peer;
pub mod room;
pub mod room_event;
pub mod room_media;
pub mod session_id;
mod sessions;
pub mod sfu;
pub mod signalling;
mod socket;
pub mod switchboard;
mod worker;

pub use config::SfuConfig;
pub use error::SfuError;
pub use metrics::Metrics;
pub use room_event::{RoomEvent, RoomEventHook};
pub use session_id::SessionId;
pub use sfu::Sfu;
