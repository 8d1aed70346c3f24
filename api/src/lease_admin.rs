//! Administrators taking the control lease away in a robot's room.
//!
//! The lease lives in the media plane; the API decides who may ask (admins), records it, and
//! tells the media nodes through the node channel: the booking in its slot now loses control
//! for good (a deny entry of scope `control` on it, and a mark on the booking so that `/join`
//! mints no control for it again: its doctor needs a new booking to drive), and whoever holds
//! the lease loses it (`RevokeLease`). It answers the same whether or not a media node is
//! connected: the deny entry waits for the node in the database.
//!
//! Not here: the lease rules themselves (`bedside_sfu::lease`), delivering commands
//! (`node_hub`).

use bedside_proto::node::{DenyScope, DenyTarget, NodeCommand, RevokeReason};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::AuditSink;
use crate::error::ApiError;
use crate::model::Actor;
use crate::node_hub::NodeHub;
use crate::store::Store;

pub const LEASE_REVOKED: &str = "room.lease_revoked_by_admin";

/// What a revoke did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LeaseRevoked {
    /// The room (robot id).
    pub room: String,
    /// The booking in its slot now, whose control was withdrawn; absent if there was none.
    pub booking: Option<Uuid>,
}

/// Revoke the lease in `robot`'s room on behalf of `actor` (an admin).
pub(crate) async fn revoke(
    store: &Store,
    audit: &AuditSink,
    hub: &NodeHub,
    now: DateTime<Utc>,
    actor: &Actor,
    robot: Uuid,
) -> Result<LeaseRevoked, ApiError> {
    if store.robot_by_id(robot).await?.is_none() {
        return Err(ApiError::NotFound("robot"));
    }
    let room = robot.to_string();
    let booking = store.booking_in_slot(robot, now).await?;
    if let Some(b) = &booking {
        // Control first: the holder must not be able to take the lease straight back.
        store.set_control_revoked(b.id, now).await?;
        hub.deny(
            DenyTarget::Booking {
                booking: b.id.to_string(),
            },
            DenyScope::Control,
            None,
            b.ends_at,
            RevokeReason::ControlRevoked,
        )
        .await?;
    }
    hub.publish(NodeCommand::RevokeLease { room: room.clone() })
        .await?;
    let booking = booking.map(|b| b.id);
    tracing::info!(robot = %robot, "lease revoked by an administrator");
    audit
        .record(
            LEASE_REVOKED,
            Some(actor.user.id),
            Some(robot),
            serde_json::json!({ "booking": booking }),
        )
        .await?;
    Ok(LeaseRevoked { room, booking })
}
