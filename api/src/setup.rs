//! First-run setup: a fresh server with no administrator makes a one-time setup code, the binary
//! prints it in its log as a link (`{public_url}/#setup=<code>`: a URL fragment, which browsers
//! never send to a server or a proxy log), and whoever holds it may create the first
//! administrator from the browser. The code works once, and not at all once any administrator
//! exists (made here, by `bedside admin create`, from the environment, or by another replica).
//!
//! The code lives in this process's memory only: with several API replicas each prints its own,
//! so clusters create their first admin from the environment or with `bedside admin create`.
//!
//! Not here: HTTP (`http::setup`), the user rules (`users`), logging in afterwards (`auth`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use utoipa::ToSchema;

use crate::audit::{kinds, AuditSink};
use crate::error::ApiError;
use crate::model::{User, UserRole};
use crate::password::Hasher;
use crate::secret;
use crate::store::Store;
use crate::users::{self, NewUser};

/// Prefix of setup codes (see `secret`).
pub const SETUP_PREFIX: &str = "bss_";

/// The pending setup code, if the server still has no administrator.
pub(crate) struct FirstRun {
    code: Mutex<Option<String>>,
}

impl FirstRun {
    /// A code if `admins` is zero, else none.
    pub(crate) fn new(admins: i64) -> Result<Self, ApiError> {
        let code = if admins == 0 {
            Some(secret::generate(SETUP_PREFIX)?)
        } else {
            None
        };
        Ok(FirstRun {
            code: Mutex::new(code),
        })
    }

    /// The code while it is still good for something (for the binary to print).
    pub(crate) async fn code(&self) -> Option<String> {
        self.code.lock().await.clone()
    }
}

/// Whether the first-run setup is open.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SetupState {
    /// No administrator exists yet: the setup code printed in the server's log creates one.
    pub setup_needed: bool,
}

/// The first administrator, and the code that allows creating it.
#[derive(Clone, Deserialize, ToSchema)]
pub struct FirstAdmin {
    /// The one-time code from the server's log (`bss_…`).
    pub code: String,
    pub username: String,
    pub display_name: String,
    /// At least 10 characters (at most 256 bytes).
    #[schema(min_length = 10)]
    pub password: String,
}

/// Is the setup still open? Closes it for good when an administrator appeared another way.
pub(crate) async fn state(first_run: &FirstRun, store: &Store) -> Result<SetupState, ApiError> {
    let mut code = first_run.code.lock().await;
    if code.is_some() && store.count_admins().await? > 0 {
        *code = None;
    }
    Ok(SetupState {
        setup_needed: code.is_some(),
    })
}

/// Create the first administrator with the setup code, which is then spent. Refused once any
/// administrator exists (`setup_done`) or for a wrong code (403); requests racing with the same
/// code are served one at a time, so only one of them creates an account.
pub(crate) async fn create_first_admin(
    first_run: &FirstRun,
    store: &Store,
    hasher: &Hasher,
    audit: &AuditSink,
    now: DateTime<Utc>,
    req: FirstAdmin,
) -> Result<User, ApiError> {
    let done = || {
        ApiError::conflict(
            "setup_done",
            "this server already has an administrator: log in, or ask one for an account",
        )
    };
    let mut pending = first_run.code.lock().await;
    let Some(expected) = pending.as_deref() else {
        return Err(done());
    };
    if store.count_admins().await? > 0 {
        *pending = None;
        return Err(done());
    }
    if !secret::matches(req.code.trim(), &secret::digest(expected)) {
        tracing::warn!("first-run setup refused: wrong setup code");
        return Err(ApiError::Forbidden("wrong setup code"));
    }
    let new = NewUser {
        username: req.username,
        display_name: req.display_name,
        password: req.password,
        role: UserRole::Admin,
    };
    // A validation error leaves the code usable: the person fixes the form and tries again.
    let user = users::create(store, hasher, now, None, new).await?;
    *pending = None;
    audit
        .record(
            kinds::SETUP_COMPLETED,
            Some(user.id),
            None,
            serde_json::json!({ "user": user.id }),
        )
        .await?;
    tracing::info!(user = %user.id, "first administrator created with the setup code");
    Ok(user)
}
