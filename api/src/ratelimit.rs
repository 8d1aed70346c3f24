//! The failed-login limiter: a plain data structure fed login attempts and asked "may this
//! attempt go ahead, and if not, for how long must the client wait".
//!
//! Counts are kept in memory per process (see [`crate::LoginLimits`]). Keys are digests, so no
//! username sits in memory as plain text longer than a request. An unknown client address (the
//! server was not started with connect info) skips the per-address limit rather than putting
//! every client in one bucket that anyone could fill. Not here: the login flow
//! (`auth`) or where the client address comes from (`http::extract`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::LoginLimits;
use crate::secret;

/// Past this many tracked keys, expired ones are swept on the next failure.
const SWEEP_AT: usize = 10_000;

pub struct LoginLimiter {
    limits: LoginLimits,
    failures: HashMap<String, VecDeque<DateTime<Utc>>>,
}

impl LoginLimiter {
    pub fn new(limits: LoginLimits) -> Self {
        LoginLimiter {
            limits,
            failures: HashMap::new(),
        }
    }

    /// May a login attempt go ahead? If so it is counted as a failure straight away (and
    /// forgiven by [`LoginLimiter::succeeded`]), so parallel guesses cannot all slip past the
    /// check while their passwords are being verified. `Err(seconds)` to wait otherwise.
    pub fn try_attempt(
        &mut self,
        account: &str,
        address: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), u64> {
        let a = self.retry_after(&account_key(account), self.limits.per_account, now);
        let b = match address {
            Some(addr) => self.retry_after(&address_key(addr), self.limits.per_address, now),
            None => 0,
        };
        match a.max(b) {
            0 => {
                self.record(account, address, now);
                Ok(())
            }
            secs => Err(secs),
        }
    }

    /// The attempt made at `at` had the right password: the account's count is cleared, and the
    /// address's count loses that one attempt (the address may still be guessing elsewhere).
    pub fn succeeded(&mut self, account: &str, address: Option<&str>, at: DateTime<Utc>) {
        self.failures.remove(&account_key(account));
        let Some(address) = address else { return };
        let key = address_key(address);
        if let Some(times) = self.failures.get_mut(&key) {
            if let Some(i) = times.iter().rposition(|t| *t == at) {
                times.remove(i);
            }
            if times.is_empty() {
                self.failures.remove(&key);
            }
        }
    }

    fn record(&mut self, account: &str, address: Option<&str>, now: DateTime<Utc>) {
        if self.failures.len() >= SWEEP_AT {
            let window = self.window();
            self.failures
                .retain(|_, times| times.back().is_some_and(|t| *t + window > now));
        }
        let keys = [Some(account_key(account)), address.map(address_key)];
        for key in keys.into_iter().flatten() {
            let times = self.failures.entry(key).or_default();
            times.push_back(now);
            // Never keep more entries than the larger limit needs.
            let cap = self.limits.per_account.max(self.limits.per_address) as usize;
            while times.len() > cap.max(1) {
                times.pop_front();
            }
        }
    }

    fn window(&self) -> chrono::Duration {
        to_chrono(self.limits.window)
    }

    fn retry_after(&mut self, key: &str, limit: u32, now: DateTime<Utc>) -> u64 {
        let window = self.window();
        let Some(times) = self.failures.get_mut(key) else {
            return 0;
        };
        while times.front().is_some_and(|t| *t + window <= now) {
            times.pop_front();
        }
        if times.is_empty() {
            self.failures.remove(key);
            return 0;
        }
        if (times.len() as u64) < u64::from(limit) {
            return 0;
        }
        // The attempt may go ahead once enough failures have aged out to be under the limit.
        let release_index = times.len() - limit as usize;
        let release_at = times[release_index] + window;
        let ms = (release_at - now).num_milliseconds().max(1);
        (ms as u64).div_ceil(1000)
    }
}

/// The one [`LoginLimiter`] of a process, shared by its requests.
pub struct SharedLimiter(Mutex<LoginLimiter>);

impl SharedLimiter {
    pub fn new(limits: LoginLimits) -> Self {
        SharedLimiter(Mutex::new(LoginLimiter::new(limits)))
    }

    pub fn lock(&self) -> MutexGuard<'_, LoginLimiter> {
        // A panic while holding this lock leaves only counters behind; keep using them.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn account_key(account: &str) -> String {
    format!("a:{}", secret::digest(account))
}

fn address_key(address: &str) -> String {
    format!("n:{address}")
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> LoginLimiter {
        LoginLimiter::new(LoginLimits {
            per_account: 3,
            per_address: 5,
            window: Duration::from_secs(60),
        })
    }

    #[test]
    fn account_limit_then_release_after_window() {
        let mut l = limiter();
        let t0 = Utc::now();
        for i in 0..3 {
            assert!(
                l.try_attempt("alice", Some("10.0.0.1"), t0).is_ok(),
                "attempt {i}"
            );
        }
        assert_eq!(l.try_attempt("alice", Some("10.0.0.2"), t0), Err(60));
        assert_eq!(
            l.try_attempt(
                "alice",
                Some("10.0.0.2"),
                t0 + chrono::Duration::seconds(59)
            ),
            Err(1)
        );
        assert!(l.try_attempt("bob", Some("10.0.0.2"), t0).is_ok());
        assert!(l
            .try_attempt(
                "alice",
                Some("10.0.0.2"),
                t0 + chrono::Duration::seconds(60)
            )
            .is_ok());
    }

    #[test]
    fn address_limit_spans_accounts() {
        let mut l = limiter();
        let t0 = Utc::now();
        for name in ["a", "b", "c", "d", "e"] {
            assert!(l.try_attempt(name, Some("10.0.0.9"), t0).is_ok());
        }
        assert!(l.try_attempt("f", Some("10.0.0.9"), t0).is_err());
        assert!(l.try_attempt("f", Some("10.0.0.8"), t0).is_ok());
    }

    #[test]
    fn success_forgives_its_own_attempt() {
        let mut l = limiter();
        let t0 = Utc::now();
        for _ in 0..2 {
            assert!(l.try_attempt("alice", Some("10.0.0.1"), t0).is_ok());
        }
        let t1 = t0 + chrono::Duration::seconds(1);
        assert!(l.try_attempt("alice", Some("10.0.0.1"), t1).is_ok());
        l.succeeded("alice", Some("10.0.0.1"), t1);
        // Account cleared; the address keeps the two real failures only.
        for _ in 0..3 {
            assert!(l.try_attempt("alice", Some("10.0.0.1"), t1).is_ok());
        }
        assert!(l.try_attempt("alice", Some("10.0.0.1"), t1).is_err());
        assert!(
            l.try_attempt("zed", Some("10.0.0.1"), t1).is_err(),
            "address at 5"
        );
    }

    #[test]
    fn unknown_address_counts_per_account_only() {
        let mut l = limiter();
        let t0 = Utc::now();
        for name in ["a", "b", "c", "d", "e", "f", "g"] {
            assert!(l.try_attempt(name, None, t0).is_ok(), "{name}");
        }
        for _ in 0..2 {
            assert!(l.try_attempt("a", None, t0).is_ok());
        }
        assert!(l.try_attempt("a", None, t0).is_err());
    }
}
