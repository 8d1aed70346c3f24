//! Failed-login back-off: may this login attempt go ahead, and if not, how long must the client
//! wait.
//!
//! Each attempt counts against two keys: the (account, client address) pair, and the address
//! alone. After the n-th failure in a row a key waits 2^(n - free - 1) seconds (1, 2, 4, ... up
//! to `backoff_cap`), where `free` is `per_pair` (3) for a pair and `per_address` (20) for an
//! address: a doctor's typo costs nothing, a guesser soon waits, and an address backs off once
//! it has failed across many accounts.
//! A key waiting refuses every attempt (429) without checking the password; once the wait is
//! over the right password works and clears the pair. There is no lock-out, so nobody can lock
//! a doctor out of their account from elsewhere. Counts live in the database (shared by API
//! replicas) under digests of the keys, and are forgotten `window` after their last failure and
//! their last wait ended. An attempt is counted as a failure before its password is checked, so
//! parallel guesses cannot all slip through, and forgiven if it was right.
//!
//! An unknown client address (the server was not started with connect info) counts the pair as
//! (account, unknown) and skips the address key. Not here: the login flow (`auth`) or where the
//! client address comes from (`proxy`, `http::extract`).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::LoginLimits;
use crate::error::ApiError;
use crate::secret;
use crate::store::Store;

/// A key one login counts against, and the failures it may have before waiting.
struct Key {
    digest: String,
    free: i64,
}

/// The keys a login counted against, to forgive if its password was right.
pub(crate) struct Counted {
    pair: String,
    address: Option<String>,
}

fn keys(limits: &LoginLimits, account: &str, address: Option<&str>) -> Vec<Key> {
    let pair = Key {
        digest: secret::digest(&format!("pair\n{account}\n{}", address.unwrap_or("-"))),
        free: i64::from(limits.per_pair),
    };
    let by_address = address.map(|a| Key {
        digest: secret::digest(&format!("address\n{a}")),
        free: i64::from(limits.per_address),
    });
    std::iter::once(pair).chain(by_address).collect()
}

/// How long a key with `failures` failures waits (0 while within `free`).
pub(crate) fn backoff(failures: i64, free: i64, cap: Duration) -> chrono::Duration {
    let over = failures - free;
    if over <= 0 {
        return chrono::Duration::zero();
    }
    let secs = 1u64
        .checked_shl(u32::try_from(over - 1).unwrap_or(u32::MAX))
        .unwrap_or(u64::MAX)
        .min(cap.as_secs().max(1));
    chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// Seconds until `t` (at least 1), for `Retry-After`.
fn wait_secs(t: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    let ms = (t - now).num_milliseconds().max(1);
    (ms as u64).div_ceil(1000)
}

/// May this attempt go ahead? If so it is counted as a failure on each key now; call
/// [`succeeded`] if the password was right. `Err(RateLimited)` with the wait otherwise.
///
/// Checked, then counted: attempts made at the same moment may all pass the check, but each is
/// counted, and one counted while the key was already waiting (another of them failed first)
/// is refused after all.
pub(crate) async fn admit(
    store: &Store,
    limits: &LoginLimits,
    account: &str,
    address: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Counted, ApiError> {
    let keys = keys(limits, account, address);
    let refuse = |until: DateTime<Utc>| {
        let retry_after_secs = wait_secs(until, now);
        tracing::warn!(retry_after_secs, "login refused by back-off");
        ApiError::RateLimited { retry_after_secs }
    };
    for key in &keys {
        if let Some(t) = store.throttle(&key.digest).await? {
            if t.blocked_until > now {
                return Err(refuse(t.blocked_until));
            }
        }
    }
    let window = chrono::Duration::from_std(limits.window).unwrap_or(chrono::Duration::MAX);
    let forget_before = now
        .checked_sub_signed(window)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let mut waiting = None;
    for key in &keys {
        let counted = store.count_failure(&key.digest, now, forget_before).await?;
        if counted.blocked_until > now {
            waiting = waiting.max(Some(counted.blocked_until));
        }
        let wait = backoff(counted.failures, key.free, limits.backoff_cap);
        if wait > chrono::Duration::zero() {
            store.extend_wait(&key.digest, now + wait).await?;
        }
    }
    if let Some(until) = waiting {
        return Err(refuse(until));
    }
    let mut digests = keys.into_iter().map(|k| k.digest);
    Ok(Counted {
        pair: digests.next().unwrap_or_default(),
        address: digests.next(),
    })
}

/// The counted attempt had the right password: the pair starts over, and the address loses
/// that one failure (it may still be guessing at other accounts).
pub(crate) async fn succeeded(store: &Store, counted: &Counted) -> Result<(), ApiError> {
    store.delete_throttle(&counted.pair).await?;
    if let Some(address) = &counted.address {
        store.forgive_throttle(address).await?;
    }
    Ok(())
}

/// Forget counts quiet for longer than the window.
pub(crate) async fn purge(
    store: &Store,
    limits: &LoginLimits,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let window = chrono::Duration::from_std(limits.window).unwrap_or(chrono::Duration::MAX);
    if let Some(cutoff) = now.checked_sub_signed(window) {
        store.purge_throttle(cutoff).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LoginLimits {
        LoginLimits {
            backoff_cap: Duration::from_secs(60),
            per_pair: 2,
            per_address: 3,
            window: Duration::from_secs(600),
        }
    }

    #[test]
    fn waits_double_up_to_the_cap() {
        let cap = Duration::from_secs(60);
        let waits: Vec<i64> = (0..10).map(|n| backoff(n, 0, cap).num_seconds()).collect();
        assert_eq!(waits, vec![0, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(3, 3, cap).num_seconds(), 0, "within the free ones");
        assert_eq!(backoff(4, 3, cap).num_seconds(), 1);
        assert_eq!(backoff(i64::MAX, 0, cap).num_seconds(), 60, "no overflow");
    }

    #[test]
    fn keys_are_digests_and_the_address_is_optional() {
        let l = limits();
        let with = keys(&l, "alice", Some("10.0.0.1"));
        assert_eq!(with.len(), 2);
        assert!(with
            .iter()
            .all(|k| !k.digest.contains("alice") && !k.digest.contains("10.0")));
        assert_eq!((with[0].free, with[1].free), (2, 3));
        assert_ne!(
            with[0].digest,
            keys(&l, "alice", Some("10.0.0.2"))[0].digest
        );
        assert_eq!(keys(&l, "alice", None).len(), 1);
    }
}
