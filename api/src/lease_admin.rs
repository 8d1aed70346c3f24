//! Administrators taking the control lease away from whoever holds it in a robot's room.
//!
//! The lease lives in the SFU; the API only decides who may ask (admins) and records that they
//! did. The binary connects the two with `Api::set_lease_revoker`: a callback into the media
//! plane, so `api` keeps no dependency on `sfu`.
//!
//! Not here: the lease rules themselves (`bedside_sfu::lease`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use uuid::Uuid;

use crate::audit::AuditSink;
use crate::error::ApiError;
use crate::model::Actor;
use crate::store::Store;

/// Asks the media plane to revoke the lease in a room; resolves to false if the room has no
/// sessions on this node.
pub type LeaseRevoker =
    Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

pub const LEASE_REVOKED: &str = "room.lease_revoked_by_admin";

/// Revoke the lease in `robot`'s room on behalf of `actor` (an admin). `revoker` is `None`
/// when this process runs no media plane.
pub(crate) async fn revoke(
    store: &Store,
    audit: &AuditSink,
    revoker: Option<&LeaseRevoker>,
    actor: &Actor,
    robot: Uuid,
) -> Result<(), ApiError> {
    let Some(revoker) = revoker else {
        return Err(ApiError::Conflict {
            code: "media_unavailable",
            message: "this API process runs no media plane".into(),
        });
    };
    if store.robot_by_id(robot).await?.is_none() {
        return Err(ApiError::NotFound("robot"));
    }
    if !revoker(robot.to_string()).await {
        return Err(ApiError::NotFound("nobody is in this robot's room"));
    }
    tracing::info!(robot = %robot, "lease revoked by an administrator");
    audit
        .record(
            LEASE_REVOKED,
            Some(actor.user.id),
            Some(robot),
            serde_json::json!({}),
        )
        .await
}
