//! [`Api`], the composition root the binary holds: it opens the database and the signing key,
//! starts the audit writer and the node channel ([`NodeHub`]), keeps the password hasher, hands
//! each of them out, and shuts them down in order. Also [`create_admin`] for
//! `bedside admin create`.
//!
//! Not here: the rules (domain modules take what they need from here as arguments), the routes
//! (`http` reads an `Api` and builds the router; this module does not know it exists).

use std::sync::Arc;

use bedside_proto::{TokenSigner, TokenVerifier};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::AuditSink;
use crate::config::{ApiConfig, BootstrapAdmin};
use crate::error::ApiError;
use crate::keys;
use crate::model::{Robot, User, UserRole};
use crate::node_hub::NodeHub;
use crate::password::Hasher;
use crate::robots::{self, NewRobot};
use crate::setup::FirstRun;
use crate::store::{self, Store};
use crate::users::{self, NewUser};

/// The control plane. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Api {
    inner: Arc<Inner>,
}

struct Inner {
    config: ApiConfig,
    store: Store,
    signer: TokenSigner,
    verifier: TokenVerifier,
    jwks: serde_json::Value,
    hasher: Hasher,
    audit: AuditSink,
    hub: NodeHub,
    first_run: FirstRun,
}

impl Api {
    /// Connect to the database (creating the SQLite file on first run), apply migrations, load
    /// or create the signing key, and create the bootstrap admin if configured and no admin
    /// exists yet.
    pub async fn open(config: ApiConfig) -> Result<Api, ApiError> {
        config.check()?;
        store::create_dir_private(&config.data_dir)?;
        let store = Store::open(&config).await?;
        let keys = keys::load_or_create(&config)?;
        let hasher = Hasher::new(config.max_concurrent_hashes);
        if let Some(admin) = &config.bootstrap_admin {
            bootstrap_admin(&store, &hasher, &config, admin).await?;
        }
        // No admin yet: a one-time setup code (the binary prints it; see `setup`).
        let first_run = FirstRun::new(store.count_admins().await?)?;
        let audit = AuditSink::start(store.clone(), config.clock.clone());
        let hub = NodeHub::start(store.clone(), audit.clone(), config.clock.clone()).await?;
        Ok(Api {
            inner: Arc::new(Inner {
                hasher,
                signer: keys.signer(),
                verifier: keys.verifier(),
                jwks: keys.jwks(),
                config,
                store,
                audit,
                hub,
                first_run,
            }),
        })
    }

    /// The channel to the media nodes: subscribe a node to it, publish to them, take their
    /// reports.
    pub fn node_hub(&self) -> NodeHub {
        self.inner.hub.clone()
    }

    /// While this server has no administrator: the one-time code that creates the first one
    /// from the browser (`POST /api/setup`), to print as `{public_url}/#setup=<code>`. `None`
    /// once an administrator exists, however it was made.
    pub async fn setup_code(&self) -> Option<String> {
        let code = self.inner.first_run.code().await?;
        match self.inner.store.count_admins().await {
            Ok(0) => Some(code),
            _ => None,
        }
    }

    /// The public signing key as a JWKS document, for an in-process SFU verifier.
    pub fn jwks(&self) -> serde_json::Value {
        self.inner.jwks.clone()
    }

    pub fn verifier(&self) -> TokenVerifier {
        self.inner.verifier.clone()
    }

    /// For `bedside token` (minting tokens by hand in development).
    pub fn signer(&self) -> TokenSigner {
        self.inner.signer.clone()
    }

    pub fn audit_sink(&self) -> AuditSink {
        self.inner.audit.clone()
    }

    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    /// "sqlite" or "postgres".
    pub fn backend_name(&self) -> &'static str {
        self.inner.store.backend_name()
    }

    /// Orderly shutdown: end the node streams, write every room event and latch record still
    /// queued, then close the database pool (requests still open fail afterwards).
    pub async fn shutdown(&self) {
        self.inner.hub.close_streams();
        self.inner.hub.flush().await;
        self.inner.audit.flush().await;
        self.inner.store.close().await;
    }

    /// The most password hashes that ever ran at once (at most
    /// `ApiConfig::max_concurrent_hashes`); for tests and a gauge.
    pub fn hashing_peak(&self) -> usize {
        self.inner.hasher.peak()
    }

    /// Create a user without an acting admin (for the binary and for tests in other crates).
    pub async fn create_user(
        &self,
        username: &str,
        display_name: &str,
        password: &str,
        role: UserRole,
    ) -> Result<User, ApiError> {
        let new = NewUser {
            username: username.into(),
            display_name: display_name.into(),
            password: password.into(),
            role,
        };
        users::create(self.store(), self.hasher(), self.now(), None, new).await
    }

    /// Register a robot without an acting admin (for the binary and for tests in other crates).
    /// Returns the robot and its credential.
    pub async fn create_robot(
        &self,
        name: &str,
        ward: &str,
        description: &str,
    ) -> Result<(Robot, String), ApiError> {
        let new = NewRobot {
            name: name.into(),
            ward: ward.into(),
            description: description.into(),
        };
        robots::create(self.store(), self.audit(), self.now(), None, new).await
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(crate) fn audit(&self) -> &AuditSink {
        &self.inner.audit
    }

    pub(crate) fn hasher(&self) -> &Hasher {
        &self.inner.hasher
    }

    pub(crate) fn first_run(&self) -> &FirstRun {
        &self.inner.first_run
    }

    pub(crate) fn hub(&self) -> &NodeHub {
        &self.inner.hub
    }

    pub(crate) fn token_signer(&self) -> &TokenSigner {
        &self.inner.signer
    }

    /// The instant a request acts at, read once per request.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.inner.config.clock.now()
    }
}

async fn bootstrap_admin(
    store: &Store,
    hasher: &Hasher,
    config: &ApiConfig,
    admin: &BootstrapAdmin,
) -> Result<(), ApiError> {
    if store.count_admins().await? > 0 {
        return Ok(());
    }
    let new = NewUser {
        username: admin.username.clone(),
        display_name: admin.display_name.clone(),
        password: admin.password.clone(),
        role: UserRole::Admin,
    };
    match users::create(store, hasher, config.clock.now(), None, new).await {
        Ok(user) => {
            tracing::info!(user = %user.id, "created the first admin from the environment");
            Ok(())
        }
        // Another replica starting at the same moment won the race.
        Err(ApiError::Conflict { .. }) if store.count_admins().await? > 0 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Create an admin account (what `bedside admin create` runs). Opens the configured database
/// and migrates it if needed; needs no running server. Fails with `username_taken` if the
/// username exists.
pub async fn create_admin(
    config: &ApiConfig,
    username: &str,
    display_name: &str,
    password: &str,
) -> Result<Uuid, ApiError> {
    let store = Store::open(config).await?;
    let hasher = Hasher::new(1);
    let new = NewUser {
        username: username.into(),
        display_name: display_name.into(),
        password: password.into(),
        role: UserRole::Admin,
    };
    let created = users::create(&store, &hasher, config.clock.now(), None, new).await;
    store.close().await;
    Ok(created?.id)
}
