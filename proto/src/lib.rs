//! Wire types that more than one part of Bedside speaks.
//!
//! The SFU, the API, the robot agent, the bench and (by documented layout) the web client all
//! agree on these, and they live here so there is exactly one definition of each:
//!
//! - [`join_token`]: the EdDSA-signed JWT that admits a participant to a room;
//! - [`control_frame`]: the fixed-size binary joystick frame on the `control` data channel;
//! - [`events`]: the JSON messages on the reliable `events` data channel;
//! - [`node`]: the channel between the API and its media nodes (revocations, room events).
//!
//! This crate does no I/O and holds no state. It is not the place for room or lease logic.

pub mod control_frame;
pub mod events;
pub mod join_token;
pub mod node;

pub use control_frame::{ControlFrame, FrameError, FrameKind};
pub use join_token::{Claims, KeyPair, Role, TokenError, TokenSigner, TokenVerifier};
