//! Passwords: the length policy and argon2id hashing and verification.
//!
//! Hashing is deliberately slow, so it runs on the blocking thread pool and never stalls the
//! async workers; and it is deliberately memory-hard (19 MiB a hash), so [`Hasher`] lets only a
//! few run at once: a flood of logins queues here instead of taking the process over its memory
//! limit. Not here: login flow and rate limiting (`auth`, `ratelimit`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::error::ApiError;
use crate::secret;

pub const MIN_LEN: usize = 10;
pub const MAX_LEN: usize = 256;

pub fn validate(password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err(ApiError::validation(format!(
            "password must be at least {MIN_LEN} characters"
        )));
    }
    if password.len() > MAX_LEN {
        return Err(ApiError::validation(format!(
            "password must be at most {MAX_LEN} bytes"
        )));
    }
    Ok(())
}

/// Hashes and verifies passwords, at most `max` at a time; clones share the limit.
#[derive(Clone)]
pub struct Hasher {
    inner: Arc<Limit>,
}

struct Limit {
    permits: Arc<Semaphore>,
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl Hasher {
    pub fn new(max: usize) -> Self {
        Hasher {
            inner: Arc::new(Limit {
                permits: Arc::new(Semaphore::new(max.max(1))),
                running: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
            }),
        }
    }

    /// The most hashes that ever ran at once (for tests and a gauge).
    pub fn peak(&self) -> usize {
        self.inner.peak.load(Ordering::SeqCst)
    }

    /// argon2id (v19, the crate's defaults: 19 MiB, 2 passes, 1 lane) in PHC string form.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let salt = secret::random_bytes::<16>()?;
        self.run(move || hash_blocking(&password, &salt)).await
    }

    /// Check `password` against `stored`. With `stored == None` (no such user) a dummy hash is
    /// checked instead, so an unknown username takes as long as a wrong password.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        self.run(move || verify_blocking(&password, stored)).await
    }

    /// `work` on the blocking pool once a permit is free; the permit goes with it, so a request
    /// given up half-way still holds it until the hash is done.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = self
            .inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::internal("password hasher closed"))?;
        let limit = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let now = limit.running.fetch_add(1, Ordering::SeqCst) + 1;
            limit.peak.fetch_max(now, Ordering::SeqCst);
            let out = work();
            limit.running.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
            out
        })
        .await
        .map_err(|e| ApiError::internal(format!("hashing task failed: {e}")))?
    }
}

fn hash_blocking(password: &str, salt: &[u8]) -> Result<String, ApiError> {
    let salt = SaltString::encode_b64(salt).map_err(|e| ApiError::internal(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(format!("hashing failed: {e}")))
}

fn verify_blocking(password: &str, stored: Option<String>) -> Result<bool, ApiError> {
    let (stored, real) = match stored {
        Some(s) => (s, true),
        None => (dummy_hash()?.to_string(), false),
    };
    let parsed = PasswordHash::new(&stored)
        .map_err(|e| ApiError::internal(format!("stored hash is malformed: {e}")))?;
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    Ok(ok && real)
}

fn dummy_hash() -> Result<&'static str, ApiError> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h);
    }
    let salt = secret::random_bytes::<16>()?;
    let pw = secret::generate("")?;
    let h = hash_blocking(&pw, &salt)?;
    Ok(DUMMY.get_or_init(|| h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let hasher = Hasher::new(2);
        let h = hasher.hash("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(hasher
            .verify("correct horse battery".into(), Some(h.clone()))
            .await
            .unwrap());
        assert!(!hasher
            .verify("wrong horse battery".into(), Some(h))
            .await
            .unwrap());
        assert!(!hasher.verify("anything at all".into(), None).await.unwrap());
        assert_eq!(hasher.peak(), 1, "one at a time here");
    }

    #[test]
    fn policy() {
        assert!(validate("short").is_err());
        assert!(validate("long enough pw").is_ok());
        assert!(validate(&"x".repeat(MAX_LEN + 1)).is_err());
    }
}
