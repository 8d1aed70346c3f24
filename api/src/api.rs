//! [`Api`], the handle the binary holds: opening the database and keys, the router, the
//! public key material for the SFU, the audit sink. Also [`create_admin`] for
//! `bedside admin create`.
//!
//! Not here: the rules (domain modules) or the handlers (`http`).

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use axum::Router;
use bedside_proto::{Claims, TokenSigner, TokenVerifier};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::AuditSink;
use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::model::UserRole;
use crate::ratelimit::LoginLimiter;
use crate::store::Store;
use crate::users::{self, NewUser};
use crate::{http, keys};

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
    limiter: Mutex<LoginLimiter>,
    audit: AuditSink,
    openapi_json: OnceLock<serde_json::Value>,
    lease_revoker: OnceLock<crate::lease_admin::LeaseRevoker>,
}

impl Api {
    /// Connect to the database (creating the SQLite file on first run), apply migrations, load
    /// or create the signing key, and create the bootstrap admin if configured and no admin
    /// exists yet.
    pub async fn open(config: ApiConfig) -> Result<Api, ApiError> {
        crate::store::create_dir_private(&config.data_dir)?;
        let store = Store::open(&config).await?;
        let keys = keys::load_or_create(&config)?;
        if let Some(admin) = &config.bootstrap_admin {
            bootstrap_admin(&store, &config, admin).await?;
        } else if store.count_admins().await? == 0 {
            tracing::warn!("no admin yet: run `bedside admin create` or set BEDSIDE_ADMIN_USERNAME and BEDSIDE_ADMIN_PASSWORD");
        }
        let audit = AuditSink::start(store.clone(), config.clock.clone());
        Ok(Api {
            inner: Arc::new(Inner {
                limiter: Mutex::new(LoginLimiter::new(config.login_limits.clone())),
                signer: keys.signer(),
                verifier: keys.verifier(),
                jwks: keys.jwks(),
                config,
                store,
                audit,
                openapi_json: OnceLock::new(),
                lease_revoker: OnceLock::new(),
            }),
        })
    }

    /// Connect `POST /api/robots/{id}/lease/revoke` to the media plane. Set once; later calls
    /// are ignored.
    pub fn set_lease_revoker(&self, revoker: crate::lease_admin::LeaseRevoker) {
        let _ = self.inner.lease_revoker.set(revoker);
    }

    pub(crate) fn lease_revoker(&self) -> Option<crate::lease_admin::LeaseRevoker> {
        self.inner.lease_revoker.get().cloned()
    }

    /// Every route of the API with its state applied. Serve it with
    /// `into_make_service_with_connect_info::<SocketAddr>()` so the login limiter sees client
    /// addresses. It sets no fallback, so it merges with other routers.
    pub fn router(&self) -> Router {
        http::router(self.clone())
    }

    /// The OpenAPI description of [`Api::router`].
    pub fn openapi(&self) -> utoipa::openapi::OpenApi {
        http::openapi()
    }

    pub(crate) fn openapi_json(&self) -> serde_json::Value {
        self.inner
            .openapi_json
            .get_or_init(|| serde_json::to_value(self.openapi()).unwrap_or_default())
            .clone()
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

    /// Close the database pool (open requests fail afterwards). For orderly shutdown and tests.
    pub async fn close(&self) {
        self.inner.store.close().await
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(crate) fn audit(&self) -> &AuditSink {
        &self.inner.audit
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.inner.config.clock.now()
    }

    pub(crate) fn limiter(&self) -> MutexGuard<'_, LoginLimiter> {
        // A panic while holding this lock leaves only counters behind; keep using them.
        self.inner
            .limiter
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn sign(&self, claims: &Claims) -> Result<String, ApiError> {
        self.inner
            .signer
            .sign(claims)
            .map_err(|e| ApiError::internal(format!("signing failed: {e}")))
    }
}

async fn bootstrap_admin(
    store: &Store,
    config: &ApiConfig,
    admin: &crate::config::BootstrapAdmin,
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
    match users::create(store, config.clock.now(), None, new).await {
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
    let new = NewUser {
        username: username.into(),
        display_name: display_name.into(),
        password: password.into(),
        role: UserRole::Admin,
    };
    let created = users::create(&store, config.clock.now(), None, new).await;
    store.close().await;
    Ok(created?.id)
}
