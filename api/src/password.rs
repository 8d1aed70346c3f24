//! Passwords: the length policy and argon2id hashing and verification.
//!
//! Hashing is deliberately slow, so it runs on the blocking thread pool and never stalls the
//! async workers. Not here: login flow and rate limiting (`auth`, `ratelimit`).

use std::sync::OnceLock;

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

/// argon2id (v19, the crate's defaults: 19 MiB, 2 passes, 1 lane) in PHC string form.
pub async fn hash(password: String) -> Result<String, ApiError> {
    let salt = secret::random_bytes::<16>()?;
    tokio::task::spawn_blocking(move || hash_blocking(&password, &salt))
        .await
        .map_err(|e| ApiError::internal(format!("hashing task failed: {e}")))?
}

fn hash_blocking(password: &str, salt: &[u8]) -> Result<String, ApiError> {
    let salt = SaltString::encode_b64(salt).map_err(|e| ApiError::internal(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(format!("hashing failed: {e}")))
}

/// Check `password` against `stored`. With `stored == None` (no such user) a dummy hash is
/// checked instead, so an unknown username takes as long as a wrong password.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
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
    })
    .await
    .map_err(|e| ApiError::internal(format!("verify task failed: {e}")))?
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
        let h = hash("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery".into(), Some(h.clone()))
            .await
            .unwrap());
        assert!(!verify("wrong horse battery".into(), Some(h)).await.unwrap());
        assert!(!verify("anything at all".into(), None).await.unwrap());
    }

    #[test]
    fn policy() {
        assert!(validate("short").is_err());
        assert!(validate("long enough pw").is_ok());
        assert!(validate(&"x".repeat(MAX_LEN + 1)).is_err());
    }
}
