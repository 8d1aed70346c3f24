//! A failed-login counter as stored: how many failures in a row, and until when its key waits.
//!
//! Not here: the back-off rule (`ratelimit`).

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttle {
    pub failures: i64,
    pub last_failure_at: DateTime<Utc>,
    /// Attempts before this instant are refused without looking at the password.
    pub blocked_until: DateTime<Utc>,
}
