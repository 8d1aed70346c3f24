//! The time source for every rule that depends on "now": booking windows, join windows, session
//! expiry and the login limiter.
//!
//! Production reads the system clock. A clock can be shifted by an offset so tests reach states
//! such as "the slot has started" or "the session sat idle" without sleeping. It is not used to
//! validate tokens: the SFU and [`bedside_proto::TokenVerifier`] always use real time.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};

/// The system clock plus an adjustable offset (zero unless a test moves it). Clones share the
/// offset, so a test keeps a clone of the clock it put in the [`crate::ApiConfig`].
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// Now, truncated to microseconds so that SQLite and PostgreSQL store the same instant.
    pub fn now(&self) -> DateTime<Utc> {
        let offset = chrono::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed));
        (Utc::now() + offset).trunc_subsecs(6)
    }

    /// Shift this clock (and all its clones) to system time plus `offset`.
    pub fn set_offset(&self, offset: chrono::Duration) {
        self.offset_ms
            .store(offset.num_milliseconds(), Ordering::Relaxed);
    }

    /// Move this clock (and all its clones) forward by `by` (backward if negative).
    pub fn advance(&self, by: chrono::Duration) {
        self.offset_ms
            .fetch_add(by.num_milliseconds(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_offset() {
        let a = Clock::system();
        let b = a.clone();
        let before = b.now();
        a.advance(chrono::Duration::hours(2));
        let after = b.now();
        assert!(after - before >= chrono::Duration::hours(2));
        a.set_offset(chrono::Duration::zero());
        assert!(b.now() - before < chrono::Duration::hours(1));
    }
}
