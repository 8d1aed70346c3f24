//! A login session as stored, and the authenticated caller a request acts as.
//!
//! Not here: issuing, refreshing or expiring sessions (`auth`).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::user::User;

/// One login. Tokens appear only as digests.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub access_hash: String,
    pub refresh_hash: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub access_expires_at: DateTime<Utc>,
    /// Absolute end of the session and of its refresh token.
    pub expires_at: DateTime<Utc>,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: User,
    pub session_id: Uuid,
}
