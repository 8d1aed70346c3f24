//! The join-token signing key: from `BEDSIDE_JWT_PRIVATE_KEY_PEM`, or from
//! `<data_dir>/jwt-ed25519.pem`, which is created (mode 0600) on first run.
//!
//! Also [`sign`], which every token this crate issues goes through. Not here: the key type, the
//! token format and verifying (`bedside_proto::join_token`), what a token grants (`join`,
//! `robots`).

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::Path;

use bedside_proto::{Claims, KeyPair, TokenSigner};
use chrono::{DateTime, Utc};

use crate::config::{ApiConfig, KEY_FILE_NAME};
use crate::error::ApiError;

/// `claims` as a signed token.
pub fn sign(signer: &TokenSigner, claims: &Claims) -> Result<String, ApiError> {
    signer
        .sign(claims)
        .map_err(|e| ApiError::internal(format!("signing failed: {e}")))
}

/// Whole seconds since the epoch, rounded down (so an `exp` never lands after its instant).
pub fn unix(t: DateTime<Utc>) -> u64 {
    t.timestamp().max(0) as u64
}

pub fn load_or_create(config: &ApiConfig) -> Result<KeyPair, ApiError> {
    if let Some(pem) = &config.jwt_private_key_pem {
        return KeyPair::from_pem(pem)
            .map_err(|e| ApiError::Config(format!("BEDSIDE_JWT_PRIVATE_KEY_PEM: {e}")));
    }
    let path = config.data_dir.join(KEY_FILE_NAME);
    match read(&path) {
        Ok(kp) => Ok(kp),
        Err(ReadError::Missing) => create(&path),
        Err(ReadError::Other(e)) => Err(e),
    }
}

enum ReadError {
    Missing,
    Other(ApiError),
}

fn read(path: &Path) -> Result<KeyPair, ReadError> {
    let pem = match fs::read_to_string(path) {
        Ok(p) => p,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(ReadError::Missing),
        Err(e) => {
            return Err(ReadError::Other(ApiError::Config(format!(
                "reading {}: {e}",
                path.display()
            ))))
        }
    };
    warn_if_readable_by_others(path);
    KeyPair::from_pem(&pem)
        .map_err(|e| ReadError::Other(ApiError::Config(format!("{}: {e}", path.display()))))
}

fn create(path: &Path) -> Result<KeyPair, ApiError> {
    let kp = KeyPair::generate().map_err(|e| ApiError::Config(e.to_string()))?;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(kp.to_pem().as_bytes())
                .and_then(|_| file.sync_all())
                .map_err(|e| ApiError::Config(format!("writing {}: {e}", path.display())))?;
            tracing::info!(path = %path.display(), kid = kp.kid(), "created join-token signing key");
            Ok(kp)
        }
        // Another process (a second replica on the same volume) created it first: use theirs.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => match read(path) {
            Ok(kp) => Ok(kp),
            Err(ReadError::Missing) => Err(ApiError::Config(format!(
                "{} vanished while starting",
                path.display()
            ))),
            Err(ReadError::Other(e)) => Err(e),
        },
        Err(e) => Err(ApiError::Config(format!(
            "creating {}: {e}",
            path.display()
        ))),
    }
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "signing key is readable by group or others; chmod 600 it");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}
