//! A robot as everyone sees it, and when it was retired. Not here: its credential, which only the
//! store and `robots` touch.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Robot {
    /// Also the robot's room id.
    pub id: Uuid,
    pub name: String,
    pub ward: String,
    pub description: String,
    /// When an administrator retired it: no credential works, nothing can be booked. Absent
    /// while it is in service (retired robots are listed to admins only, on request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<DateTime<Utc>>,
}
