//! A user, the three roles, and the filter users are listed by. Not here: username and password
//! rules (`users`, `password`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserRole {
    Admin,
    Doctor,
    Student,
}

impl UserRole {
    pub fn as_str(self) -> &'static str {
        match self {
            UserRole::Admin => "admin",
            UserRole::Doctor => "doctor",
            UserRole::Student => "student",
        }
    }

    pub(crate) fn from_db(s: &str) -> Result<Self, ApiError> {
        match s {
            "admin" => Ok(UserRole::Admin),
            "doctor" => Ok(UserRole::Doctor),
            "student" => Ok(UserRole::Student),
            other => Err(ApiError::internal(format!(
                "unknown role {other:?} in database"
            ))),
        }
    }
}

/// A user as the user and admins see them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub role: UserRole,
}

/// Which users a listing wants, one page of them, ordered by display name.
#[derive(Clone, Debug, Default)]
pub struct UserFilter {
    pub role: Option<UserRole>,
    /// Lower-case text the display name or username contains.
    pub text: Option<String>,
    /// Only disabled (`Some(true)`) or only enabled (`Some(false)`) users.
    pub disabled: Option<bool>,
    /// Leave administrators out.
    pub exclude_admins: bool,
    pub limit: u32,
    pub offset: u64,
}
