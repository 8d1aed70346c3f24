//! What a room reports for the audit log and the metrics: lease changes and e-stops, typed.
//!
//! Rooms produce [`RoomAudit`] values; the switchboard counts them and hands each one, with the
//! room id, to the process's [`RoomEventHook`] as a [`RoomEvent`] in the node channel's form
//! ([`NodeReport::RoomEvent`]; the API writes it to its audit log). The same hook carries each
//! room's live status ([`NodeReport::RoomStatus`]). Participants appear only by their token's
//! opaque `sub`.
//!
//! Not here: writing the log (the API does that) or deciding when something is worth a record
//! (the room does that).

use std::sync::Arc;

use bedside_proto::events::LeaseReason;
use bedside_proto::node::NodeReport;

/// One auditable thing that happened in a room.
#[derive(Debug, Clone, PartialEq)]
pub enum RoomAudit {
    /// The lease moved (or was freed).
    LeaseChanged {
        /// The new holder's `sub`, if anybody holds it now.
        holder: Option<String>,
        /// The previous holder's `sub`, if anybody held it.
        previous: Option<String>,
        /// The new epoch.
        epoch: u32,
        /// Why it moved.
        reason: LeaseReason,
    },
    /// A doctor latched the e-stop through the SFU.
    EstopLatched {
        /// The doctor's `sub`.
        by: Option<String>,
    },
    /// The lease holder cleared the e-stop.
    EstopCleared {
        /// The holder's `sub`.
        by: Option<String>,
    },
    /// The e-stop at the robot itself was pressed or released (reported by the robot).
    RobotEstop {
        /// The robot's `sub`.
        robot: Option<String>,
        /// Pressed (true) or released.
        pressed: bool,
    },
}

impl RoomAudit {
    /// The audit log's kind for this event.
    pub fn kind(&self) -> &'static str {
        match self {
            RoomAudit::LeaseChanged { .. } => "lease_changed",
            RoomAudit::EstopLatched { .. } => "estop_latched",
            RoomAudit::EstopCleared { .. } => "estop_cleared",
            RoomAudit::RobotEstop { pressed: true, .. } => "estop_robot_pressed",
            RoomAudit::RobotEstop { pressed: false, .. } => "estop_robot_released",
        }
    }

    /// The participant the event is about (its `sub`), if any.
    pub fn actor(&self) -> Option<&str> {
        match self {
            RoomAudit::LeaseChanged { holder, .. } => holder.as_deref(),
            RoomAudit::EstopLatched { by } | RoomAudit::EstopCleared { by } => by.as_deref(),
            RoomAudit::RobotEstop { robot, .. } => robot.as_deref(),
        }
    }

    /// The rest, as the audit row's JSON detail.
    pub fn detail(&self) -> serde_json::Value {
        match self {
            RoomAudit::LeaseChanged {
                previous,
                epoch,
                reason,
                ..
            } => serde_json::json!({"epoch": epoch, "reason": reason, "previous": previous}),
            RoomAudit::EstopLatched { .. }
            | RoomAudit::EstopCleared { .. }
            | RoomAudit::RobotEstop { .. } => serde_json::json!({}),
        }
    }
}

/// Something that happened in a room worth an audit record, as the hook receives it.
#[derive(Debug, Clone)]
pub struct RoomEvent {
    /// The room (robot id).
    pub room: String,
    /// The audit log's kind ([`RoomAudit::kind`]).
    pub kind: &'static str,
    /// Opaque subject of the participant concerned, if any.
    pub actor: Option<String>,
    /// Everything else, as JSON.
    pub detail: serde_json::Value,
}

impl RoomEvent {
    /// The hook's view of `audit` in `room`.
    pub fn new(room: &str, audit: &RoomAudit) -> Self {
        RoomEvent {
            room: room.to_string(),
            kind: audit.kind(),
            actor: audit.actor().map(str::to_string),
            detail: audit.detail(),
        }
    }
}

impl From<RoomEvent> for NodeReport {
    fn from(ev: RoomEvent) -> Self {
        NodeReport::RoomEvent {
            room: ev.room,
            kind: ev.kind.to_string(),
            actor: ev.actor,
            detail: ev.detail,
        }
    }
}

/// Where the media plane reports to the API, in the node channel's form: room events for the
/// audit log and rooms' live status (the API's hub in one process, `POST
/// /internal/node/reports` apart). Called from the media workers: it must not block.
pub type RoomEventHook = Arc<dyn Fn(NodeReport) + Send + Sync>;
