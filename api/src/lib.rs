//! Bedside control plane: the HTTP API that decides who may be in which robot's room, and when.
//!
//! It owns users and their sessions, robots and their credentials, bookings and invitations, the
//! join tokens that admit people to a room, and the append-only audit log. The media plane
//! (`bedside-sfu`) never calls into this crate: it verifies join tokens with the public key from
//! [`Api::jwks`], follows the API's commands (deny entries, lease revokes) and reports room
//! events back through the one channel between them, [`NodeHub`] (in one process directly, apart
//! over `/internal/node/*`).
//!
//! Layers, outside in: `http` (routes and handlers, reading the composition root [`Api`]) ->
//! domain modules (`auth`, `users`, `robots`, `booking`, `join`, `roster`, `audit`,
//! `lease_admin`, `live`, `rooms`, `node_hub`, `ratelimit`, `turn`), which
//! take the store, the clock's "now", the actor and whatever else they need as arguments ->
//! `store` (the only place with SQL; SQLite or PostgreSQL). All of them share the plain types
//! in `model`, which depends on none of them. No module depends on one that depends on it.
//!
//! Not here: WebRTC, rooms, the control lease (all in `bedside-sfu`), the join-token format
//! (`bedside_proto::join_token`), or serving the web client (the binary does that).

mod api;
mod audit;
mod audit_export;
mod auth;
mod booking;
mod clock;
mod config;
mod error;
mod failpoint;
mod http;
mod instants;
mod join;
mod keys;
mod lease_admin;
mod live;
mod model;
mod node_hub;
mod openapi;
mod password;
mod proxy;
mod ratelimit;
mod robots;
mod rooms;
mod roster;
mod secret;
mod setup;
mod store;
mod turn;
mod users;

#[cfg(feature = "testing")]
pub mod testing;

pub use api::{create_admin, Api};
pub use audit::{AuditPage, AuditSink};
pub use auth::TokenResponse;
pub use clock::Clock;
pub use config::turn_from;
pub use config::{
    ApiConfig, BootstrapAdmin, LoginLimits, ENV_ADMIN_DISPLAY_NAME, ENV_ADMIN_PASSWORD,
    ENV_ADMIN_USERNAME, ENV_DATABASE_URL, ENV_JWT_PRIVATE_KEY_PEM, ENV_NODE_SECRET,
    ENV_TRUSTED_PROXIES, ENV_TURN_SECRET, ENV_TURN_URLS, MIN_NODE_SECRET_LEN,
};
pub use error::{ApiError, ConflictSlot, ErrorBody};
pub use join::JoinResponse;
pub use lease_admin::LeaseRevoked;
pub use model::{
    AuditEntry, Booking, BookingStatus, Invitation, InvitationRole, Robot, User, UserRole,
};
pub use node_hub::NodeHub;
pub use proxy::IpNet;
pub use robots::PublishTokenResponse;
pub use rooms::{LiveStatus, SessionEnded};
pub use roster::{RosterEntry, RosterRole};
pub use turn::{
    credential as turn_credential, username_expiry as turn_username_expiry, IceServer, TurnConfig,
    MIN_TURN_SECRET_LEN,
};
