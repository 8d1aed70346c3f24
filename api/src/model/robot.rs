//! A robot as everyone sees it. Not here: its credential, which only the store and `robots` touch.

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
}
