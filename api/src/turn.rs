//! TURN credentials handed out beside each join or publish token, so that a client whose network
//! blocks UDP to the media nodes can still reach them through a TURN relay (coturn).
//!
//! The TURN REST convention (coturn's `use-auth-secret` / `static-auth-secret`): the API and the
//! TURN server share a secret; a credential is `username = "<expiry unix seconds>:<subject>"`,
//! `credential = base64(HMAC-SHA1(secret, username))`. The TURN server recomputes the HMAC and
//! refuses a username whose expiry has passed, so nothing is stored and nothing needs revoking:
//! a credential dies with the token it came with ([`TurnConfig::ice_servers`] never lets it
//! outlive the token). The subject is the token's `jti`, random and opaque: the relay's logs can
//! be matched to the audit log by an administrator, but carry no name, e-mail or user id.
//!
//! Not here: which peers the relay may reach (the TURN server's own configuration,
//! `docs/operations.md`), or reporting a session as relayed (the SFU, by the relay's addresses).

use std::fmt;

use aws_lc_rs::hmac;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;

/// Shortest shared secret accepted: anyone who knows it can mint credentials for the relay.
pub const MIN_TURN_SECRET_LEN: usize = 16;

/// The TURN servers clients are told about and the secret shared with them.
#[derive(Clone)]
pub struct TurnConfig {
    urls: Vec<String>,
    secret: String,
}

impl fmt::Debug for TurnConfig {
    // The secret mints relay credentials: never in a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TurnConfig")
            .field("urls", &self.urls)
            .finish_non_exhaustive()
    }
}

/// One entry of `RTCConfiguration.iceServers`, in the shape the browser takes as it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IceServer {
    /// `turn:` / `turns:` URLs (RFC 7065), e.g. `turns:turn.example.org:443?transport=tcp`.
    #[schema(example = json!(["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:443?transport=tcp"]))]
    pub urls: Vec<String>,
    /// `<expiry unix seconds>:<opaque id>`; the expiry is never later than the token's.
    #[schema(example = "1893492000:7b0f3c1e-2a4d-4c61-9a55-0c1f2e3d4b5a")]
    pub username: String,
    /// base64 of HMAC-SHA1(shared secret, username).
    pub credential: String,
}

impl TurnConfig {
    /// `urls` are `turn:`, `turns:` or `stun:` URLs; the secret is coturn's
    /// `static-auth-secret`. Refuses an empty list, a malformed URL or a short secret.
    pub fn new(urls: Vec<String>, secret: String) -> Result<Self, ApiError> {
        let urls: Vec<String> = urls
            .into_iter()
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect();
        if urls.is_empty() {
            return Err(ApiError::Config("TURN: no server URL given".into()));
        }
        for url in &urls {
            check_url(url)?;
        }
        if secret.trim().len() < MIN_TURN_SECRET_LEN {
            return Err(ApiError::Config(format!(
                "TURN: the shared secret must be at least {MIN_TURN_SECRET_LEN} characters"
            )));
        }
        Ok(TurnConfig { urls, secret })
    }

    /// A comma-separated list, as in `BEDSIDE_TURN_URLS`.
    pub fn from_list(list: &str, secret: String) -> Result<Self, ApiError> {
        Self::new(list.split(',').map(str::to_string).collect(), secret)
    }

    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Credentials for the holder of the token `jti`, valid until `expires_at` (the token's
    /// expiry, which they must not outlive).
    pub(crate) fn ice_servers(&self, jti: &str, expires_at: DateTime<Utc>) -> Vec<IceServer> {
        let username = format!("{}:{jti}", expires_at.timestamp().max(0));
        let credential = credential(&self.secret, &username);
        vec![IceServer {
            urls: self.urls.clone(),
            username,
            credential,
        }]
    }
}

/// `base64(HMAC-SHA1(secret, username))`: what coturn computes for `use-auth-secret`. SHA-1 is
/// the convention's, not a choice: coturn accepts nothing else there.
pub fn credential(secret: &str, username: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    STANDARD.encode(hmac::sign(&key, username.as_bytes()).as_ref())
}

/// The expiry a TURN REST username carries, if it has one.
pub fn username_expiry(username: &str) -> Option<i64> {
    username.split_once(':')?.0.parse().ok()
}

fn check_url(url: &str) -> Result<(), ApiError> {
    let bad = |why: &str| Err(ApiError::Config(format!("TURN URL {url:?}: {why}")));
    let Some((scheme, rest)) = url.split_once(':') else {
        return bad("expected turn:, turns: or stun:");
    };
    if !matches!(scheme, "turn" | "turns" | "stun" | "stuns") {
        return bad("expected turn:, turns: or stun:");
    }
    if rest.is_empty() || rest.starts_with('/') {
        return bad("expected host[:port][?transport=udp|tcp] after the scheme (no //)");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("contains white space");
    }
    if let Some((_, query)) = rest.split_once('?') {
        if !matches!(query, "transport=udp" | "transport=tcp") {
            return bad("the only query allowed is transport=udp or transport=tcp");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-shared-secret-of-some-length";

    #[test]
    fn credential_matches_the_rest_convention() {
        // Reference value computed independently:
        // printf '%s' 1893492000:user | openssl dgst -sha1 -hmac secret -binary | base64
        assert_eq!(
            credential("secret", "1893492000:user"),
            "mJfENZfS8W0E424sY735nDcylW8="
        );
    }

    #[test]
    fn ice_servers_carry_expiry_subject_and_a_verifiable_credential() {
        let turn = TurnConfig::from_list(
            "turn:t.example:3478?transport=udp, turns:t.example:443?transport=tcp",
            SECRET.into(),
        )
        .unwrap();
        let exp: DateTime<Utc> = "2030-01-01T11:00:00Z".parse().unwrap();
        let servers = turn.ice_servers("jti-1", exp);
        assert_eq!(servers.len(), 1);
        let s = &servers[0];
        assert_eq!(s.urls.len(), 2);
        assert_eq!(s.username, format!("{}:jti-1", exp.timestamp()));
        assert_eq!(username_expiry(&s.username), Some(exp.timestamp()));
        assert_eq!(s.credential, credential(SECRET, &s.username));
        assert_ne!(s.credential, credential("another-secret-0000", &s.username));
    }

    #[test]
    fn bad_settings_are_refused_and_the_secret_never_shown() {
        let ok = |u: &str| TurnConfig::new(vec![u.into()], SECRET.into()).is_ok();
        assert!(ok("turn:10.0.0.1:3478"));
        assert!(ok("turns:turn.example.org:443?transport=tcp"));
        assert!(ok("stun:turn.example.org"));
        assert!(!ok("http://turn.example.org"));
        assert!(!ok("turn://turn.example.org"));
        assert!(!ok("turn:"));
        assert!(!ok("turn:h?transport=sctp"));
        assert!(!ok("turn:h x"));
        assert!(TurnConfig::new(vec![], SECRET.into()).is_err());
        assert!(TurnConfig::new(vec!["turn:h".into()], "short".into()).is_err());
        let shown = format!(
            "{:?}",
            TurnConfig::new(vec!["turn:h".into()], SECRET.into()).unwrap()
        );
        assert!(!shown.contains(SECRET), "{shown}");
    }
}
