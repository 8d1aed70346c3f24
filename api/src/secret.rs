//! Opaque secrets: access and refresh tokens and robot credentials.
//!
//! Each is 256 random bits, shown to its owner once and stored only as a SHA-256 digest. A fast
//! hash is enough because the secrets are random, not chosen by people (passwords are in
//! `password`). Not for join tokens, which are signed JWTs (`bedside_proto::join_token`).

use aws_lc_rs::{constant_time, digest, rand};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::error::ApiError;

/// Prefixes make a leaked secret recognisable (e.g. by a secret scanner) and say what it is.
pub const ACCESS_PREFIX: &str = "bsa_";
pub const REFRESH_PREFIX: &str = "bsr_";
pub const ROBOT_PREFIX: &str = "bsc_";
// Setup codes (`bss_`) are made by `setup`.

/// A fresh secret: `prefix` + 43 characters of base64url.
pub fn generate(prefix: &str) -> Result<String, ApiError> {
    Ok(format!(
        "{prefix}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)
    ))
}

pub fn random_bytes<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut buf = [0u8; N];
    rand::fill(&mut buf).map_err(|_| ApiError::internal("system random source failed"))?;
    Ok(buf)
}

/// The stored form of a secret.
pub fn digest(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, secret.as_bytes()))
}

/// Does `secret` match the stored `expected_digest`? Constant time in the digest bytes.
pub fn matches(secret: &str, expected_digest: &str) -> bool {
    constant_time::verify_slices_are_equal(digest(secret).as_bytes(), expected_digest.as_bytes())
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_unique_and_match_only_their_digest() {
        let a = generate(ROBOT_PREFIX).unwrap();
        let b = generate(ROBOT_PREFIX).unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(ROBOT_PREFIX) && a.len() == 4 + 43);
        assert!(matches(&a, &digest(&a)));
        assert!(!matches(&b, &digest(&a)));
    }
}
