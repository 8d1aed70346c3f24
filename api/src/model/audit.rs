//! An audit entry as read back, an entry to append, and the filter entries are listed by.
//!
//! Not here: which kinds exist, the room-event queue, paging rules (`audit`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// Increasing; use as the `before` cursor to page backwards.
    pub id: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    /// Opaque id of the user or robot that acted, if any.
    pub actor: Option<String>,
    /// Room (robot id) the entry concerns, if any.
    pub room: Option<String>,
    #[schema(value_type = Object)]
    pub detail: Value,
    /// The actor's display name (a user) or name (a robot) as it is now, when the actor is one
    /// of them; read beside the entry, never stored in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_name: Option<String>,
    /// `admin`, `doctor`, `student` or `robot`, when the actor is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_kind: Option<String>,
    /// The name of the robot whose room the entry concerns, if it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub robot_name: Option<String>,
}

/// An entry to append.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub actor: Option<String>,
    pub room: Option<String>,
    pub detail: Value,
}

impl NewAuditEntry {
    pub fn new(
        at: DateTime<Utc>,
        kind: &str,
        actor: Option<String>,
        room: Option<String>,
        detail: Value,
    ) -> Self {
        NewAuditEntry {
            at,
            kind: kind.to_string(),
            actor,
            room,
            detail,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AuditFilter {
    /// Exactly this kind.
    pub kind: Option<String>,
    /// Kinds starting with this (e.g. `room.`).
    pub kind_prefix: Option<String>,
    pub actor: Option<String>,
    pub room: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Only entries with a smaller id (the paging cursor); counting ignores it.
    pub before: Option<i64>,
    pub limit: u32,
}
