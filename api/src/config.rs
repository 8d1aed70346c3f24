//! Configuration of the control plane: where its data lives, which database it uses, the public
//! address clients reach, and the time limits of the booking, token and session rules.
//!
//! [`ApiConfig::new`] gives defaults and reads nothing from the environment;
//! [`ApiConfig::from_env`] adds the environment variables listed here. Not here: command-line
//! parsing (the binary does that) or the SFU's settings.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::clock::Clock;
use crate::error::ApiError;
use crate::proxy::IpNet;
use crate::turn::TurnConfig;

/// `postgres://...` switches the store to PostgreSQL; `sqlite:...` picks another SQLite file.
pub const ENV_DATABASE_URL: &str = "DATABASE_URL";
/// A PKCS#8 Ed25519 private key (PEM) used instead of `<data_dir>/jwt-ed25519.pem`.
pub const ENV_JWT_PRIVATE_KEY_PEM: &str = "BEDSIDE_JWT_PRIVATE_KEY_PEM";
/// With [`ENV_ADMIN_PASSWORD`]: the first admin, created at start if no admin exists.
pub const ENV_ADMIN_USERNAME: &str = "BEDSIDE_ADMIN_USERNAME";
pub const ENV_ADMIN_PASSWORD: &str = "BEDSIDE_ADMIN_PASSWORD";
/// Optional display name of that admin (default "Administrator").
pub const ENV_ADMIN_DISPLAY_NAME: &str = "BEDSIDE_ADMIN_DISPLAY_NAME";
/// The secret media nodes present on `/internal/node/*` (at least 16 characters). Unset: those
/// routes answer 404.
pub const ENV_NODE_SECRET: &str = "BEDSIDE_NODE_SECRET";
/// Comma-separated addresses or CIDRs of the reverse proxies whose `X-Forwarded-For` is believed.
pub const ENV_TRUSTED_PROXIES: &str = "BEDSIDE_TRUSTED_PROXIES";
/// Comma-separated TURN URLs handed to clients with each token, e.g.
/// `turn:turn.example.org:3478?transport=udp,turns:turn.example.org:443?transport=tcp`.
pub const ENV_TURN_URLS: &str = "BEDSIDE_TURN_URLS";
/// The TURN server's `static-auth-secret` (at least 16 characters); needed with the URLs.
pub const ENV_TURN_SECRET: &str = "BEDSIDE_TURN_SECRET";

/// Shortest node secret accepted: it is the only thing between the internet and the channel
/// that can end every session.
pub const MIN_NODE_SECRET_LEN: usize = 16;

/// Name of the signing key file inside the data directory.
pub const KEY_FILE_NAME: &str = "jwt-ed25519.pem";
/// Name of the default SQLite database file inside the data directory.
pub const SQLITE_FILE_NAME: &str = "bedside.db";

#[derive(Clone)]
pub struct ApiConfig {
    /// Holds the SQLite file and the signing key; created on first run.
    pub data_dir: PathBuf,
    /// `None`: SQLite at `<data_dir>/bedside.db`.
    pub database_url: Option<String>,
    /// Base URL clients use to reach the SFU, e.g. `https://bedside.example.org` (no trailing
    /// slash needed); WHIP/WHEP URLs are `{public_url}/whip/{room}` and `{public_url}/whep/{room}`.
    pub public_url: String,
    /// Overrides the key file in the data directory.
    pub jwt_private_key_pem: Option<String>,
    /// Created at start when no admin exists.
    pub bootstrap_admin: Option<BootstrapAdmin>,
    /// How long before a slot starts its participants may join (without control).
    pub join_grace: Duration,
    /// Longest booking.
    pub max_booking: Duration,
    /// Lifetime of a robot's publish token.
    pub publish_token_ttl: Duration,
    /// Lifetime of an access token; the client refreshes before it runs out.
    pub access_token_ttl: Duration,
    /// Absolute lifetime of a session (and of its refresh token), however active.
    pub session_max_age: Duration,
    /// A session with no request for this long is ended.
    pub idle_timeout: Duration,
    pub login_limits: LoginLimits,
    /// Reverse proxies (addresses or CIDRs) whose `X-Forwarded-For` is believed: when a request
    /// comes from one of them, the client is the nearest address in that header that is not a
    /// trusted proxy itself (for one proxy: the entry it appended, the last). Empty: the socket's
    /// peer address, and the header is ignored.
    pub trusted_proxies: Vec<IpNet>,
    /// Password hashes computed at once, at most (each argon2id hash holds 19 MiB).
    pub max_concurrent_hashes: usize,
    /// The secret media nodes present on `/internal/node/*`; `None`: those routes answer 404.
    pub node_secret: Option<String>,
    /// Size of the database connection pool.
    pub max_db_connections: u32,
    /// TURN relays and their shared secret: every join and publish token comes with
    /// credentials for them (`ice_servers`). `None`: no `ice_servers` in the answers.
    pub turn: Option<TurnConfig>,
    pub clock: Clock,
}

/// Failed-login back-off. Counted in the database, so every API replica sees the same counts.
///
/// A pair (account, client address) may fail `per_pair` times in a row for free (a mistyped
/// password costs a doctor nothing); after the n-th failure beyond that, the next attempt from
/// that pair waits 2^(n-1) seconds (1, 2, 4, ...) up to `backoff_cap`; an address that failed
/// more than `per_address` times (any accounts) waits the same way. While waiting every
/// attempt is answered 429, the right password too; once the wait is over the right password
/// works. Counts are forgotten `window` after the last failure and the last wait ended.
#[derive(Clone, Debug)]
pub struct LoginLimits {
    /// Longest wait.
    pub backoff_cap: Duration,
    /// Failures in a row of one account from one address before that pair backs off.
    pub per_pair: u32,
    /// Failures from one address, over all accounts, before that address backs off too.
    pub per_address: u32,
    /// A count is forgotten once this long has passed since its last failure and its wait ended.
    pub window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            backoff_cap: Duration::from_secs(5 * 60),
            per_pair: 3,
            per_address: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Clone)]
pub struct BootstrapAdmin {
    pub username: String,
    pub display_name: String,
    pub password: String,
}

impl fmt::Debug for BootstrapAdmin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootstrapAdmin").finish_non_exhaustive()
    }
}

impl fmt::Debug for ApiConfig {
    // Hand-written so that the key, the admin password and database credentials never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiConfig")
            .field("data_dir", &self.data_dir)
            .field("database", &self.backend_name())
            .field("public_url", &self.public_url)
            .field("jwt_private_key_pem", &self.jwt_private_key_pem.is_some())
            .field("bootstrap_admin", &self.bootstrap_admin.is_some())
            .field("join_grace", &self.join_grace)
            .field("max_booking", &self.max_booking)
            .field("publish_token_ttl", &self.publish_token_ttl)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("session_max_age", &self.session_max_age)
            .field("idle_timeout", &self.idle_timeout)
            .field("login_limits", &self.login_limits)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("max_concurrent_hashes", &self.max_concurrent_hashes)
            .field("node_secret", &self.node_secret.is_some())
            .field("max_db_connections", &self.max_db_connections)
            .field("turn", &self.turn)
            .finish()
    }
}

impl ApiConfig {
    /// Defaults: SQLite in `data_dir`, 5 min join grace, 4 h maximum booking, 12 h publish
    /// tokens, 15 min access tokens, 12 h sessions, 30 min idle timeout, no trusted proxy, 4
    /// password hashes at once, no node secret. Reads no environment.
    pub fn new(data_dir: PathBuf, public_url: String) -> Self {
        ApiConfig {
            data_dir,
            database_url: None,
            public_url: public_url.trim_end_matches('/').to_string(),
            jwt_private_key_pem: None,
            bootstrap_admin: None,
            join_grace: Duration::from_secs(5 * 60),
            max_booking: Duration::from_secs(4 * 3600),
            publish_token_ttl: Duration::from_secs(12 * 3600),
            access_token_ttl: Duration::from_secs(15 * 60),
            session_max_age: Duration::from_secs(12 * 3600),
            idle_timeout: Duration::from_secs(30 * 60),
            login_limits: LoginLimits::default(),
            trusted_proxies: Vec::new(),
            max_concurrent_hashes: 4,
            node_secret: None,
            max_db_connections: 10,
            turn: None,
            clock: Clock::system(),
        }
    }

    /// [`ApiConfig::new`] plus [`ENV_DATABASE_URL`], [`ENV_JWT_PRIVATE_KEY_PEM`], the
    /// bootstrap admin variables, [`ENV_NODE_SECRET`], [`ENV_TRUSTED_PROXIES`], [`ENV_TURN_URLS`]
    /// and [`ENV_TURN_SECRET`]. Empty variables count as unset. Fails on a malformed proxy list,
    /// a short node secret, a malformed TURN URL, or TURN URLs without a secret (or the reverse).
    pub fn from_env(data_dir: PathBuf, public_url: String) -> Result<Self, ApiError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut config = Self::new(data_dir, public_url);
        config.database_url = var(ENV_DATABASE_URL);
        config.jwt_private_key_pem = var(ENV_JWT_PRIVATE_KEY_PEM);
        if let (Some(username), Some(password)) = (var(ENV_ADMIN_USERNAME), var(ENV_ADMIN_PASSWORD))
        {
            config.bootstrap_admin = Some(BootstrapAdmin {
                username,
                password,
                display_name: var(ENV_ADMIN_DISPLAY_NAME)
                    .unwrap_or_else(|| "Administrator".to_string()),
            });
        }
        config.node_secret = var(ENV_NODE_SECRET);
        if let Some(list) = var(ENV_TRUSTED_PROXIES) {
            config.trusted_proxies = IpNet::parse_list(&list)
                .map_err(|e| ApiError::Config(format!("{ENV_TRUSTED_PROXIES}: {e}")))?;
        }
        config.turn = turn_from(var(ENV_TURN_URLS), var(ENV_TURN_SECRET))?;
        config.check()?;
        Ok(config)
    }

    /// Settings that cannot work, refused before anything starts.
    pub(crate) fn check(&self) -> Result<(), ApiError> {
        if let Some(secret) = &self.node_secret {
            if secret.trim().len() < MIN_NODE_SECRET_LEN {
                return Err(ApiError::Config(format!(
                    "{ENV_NODE_SECRET} must be at least {MIN_NODE_SECRET_LEN} characters"
                )));
            }
        }
        if self.max_concurrent_hashes == 0 {
            return Err(ApiError::Config(
                "max_concurrent_hashes must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// "sqlite" or "postgres", for logs (never the URL, which may hold a password).
    pub fn backend_name(&self) -> &'static str {
        match self.database_url.as_deref() {
            Some(url) if is_postgres_url(url) => "postgres",
            _ => "sqlite",
        }
    }

    pub(crate) fn whep_url(&self, room: &str) -> String {
        format!("{}/whep/{room}", self.public_url.trim_end_matches('/'))
    }

    pub(crate) fn whip_url(&self, room: &str) -> String {
        format!("{}/whip/{room}", self.public_url.trim_end_matches('/'))
    }
}

/// TURN settings from a URL list and a secret: both or neither.
pub fn turn_from(
    urls: Option<String>,
    secret: Option<String>,
) -> Result<Option<TurnConfig>, ApiError> {
    match (urls, secret) {
        (None, None) => Ok(None),
        (Some(urls), Some(secret)) => TurnConfig::from_list(&urls, secret).map(Some),
        (Some(_), None) => Err(ApiError::Config(format!(
            "{ENV_TURN_URLS} needs the shared secret ({ENV_TURN_SECRET})"
        ))),
        (None, Some(_)) => Err(ApiError::Config(format!(
            "{ENV_TURN_SECRET} is set but no TURN server ({ENV_TURN_URLS})"
        ))),
    }
}

pub(crate) fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_debug_hide_secrets() {
        let mut c = ApiConfig::new("/tmp/x".into(), "https://h.example/".into());
        assert_eq!(c.whep_url("r1"), "https://h.example/whep/r1");
        assert_eq!(c.whip_url("r1"), "https://h.example/whip/r1");
        c.database_url = Some("postgres://u:hunter2@db/x".into());
        c.bootstrap_admin = Some(BootstrapAdmin {
            username: "root".into(),
            display_name: "Root".into(),
            password: "hunter2hunter2".into(),
        });
        c.node_secret = Some("hunter2-node-secret".into());
        c.turn = turn_from(
            Some("turn:t.example:3478".into()),
            Some("hunter2-turn-secret".into()),
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("postgres"));
        assert!(c.check().is_ok());
        c.node_secret = Some("short".into());
        assert!(matches!(c.check(), Err(ApiError::Config(_))));
        assert!(turn_from(Some("turn:t".into()), None).is_err());
        assert!(turn_from(None, Some("hunter2-turn-secret".into())).is_err());
        assert!(turn_from(None, None).unwrap().is_none());
    }
}
