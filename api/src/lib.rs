//! Bedside control plane: the HTTP API that decides who may be in which robot's room, and when.
//!
//! It owns users and their sessions, robots and their credentials, bookings and invitations, the
//! join tokens that admit people to a room, and the append-only audit log. The media plane
//! (`bedside-sfu`) never calls into this crate: it verifies join tokens with the public key from
//! [`Api::jwks`] and reports room events back through an [`AuditSink`].
//!
//! Layers, outside in: `http` (routes and handlers, reading the composition root [`Api`]) ->
//! domain modules (`auth`, `users`, `robots`, `booking`, `join`, `audit`, `lease_admin`), which
//! take the store, the clock's "now", the actor and whatever else they need as arguments ->
//! `store` (the only place with SQL; SQLite or PostgreSQL). All of them share the plain types
//! in `model`, which depends on none of them. No module depends on one that depends on it.
//!
//! Not here: WebRTC, rooms, the control lease (all in `bedside-sfu`), the join-token format
//! (`bedside_proto::join_token`), or serving the web client (the binary does that).

mod api;
mod audit;
mod auth;
mod booking;
mod clock;
mod config;
mod error;
mod http;
mod join;
mod keys;
mod lease_admin;
mod model;
mod openapi;
mod password;
mod ratelimit;
mod robots;
mod secret;
mod store;
mod users;

pub use api::{create_admin, Api};
pub use audit::{AuditPage, AuditSink};
pub use auth::TokenResponse;
pub use clock::Clock;
pub use config::{
    ApiConfig, BootstrapAdmin, LoginLimits, ENV_ADMIN_DISPLAY_NAME, ENV_ADMIN_PASSWORD,
    ENV_ADMIN_USERNAME, ENV_DATABASE_URL, ENV_JWT_PRIVATE_KEY_PEM,
};
pub use error::{ApiError, ConflictSlot, ErrorBody};
pub use join::JoinResponse;
pub use lease_admin::LeaseRevoker;
pub use model::{
    AuditEntry, Booking, BookingStatus, Invitation, InvitationRole, Robot, User, UserRole,
};
pub use robots::PublishTokenResponse;
