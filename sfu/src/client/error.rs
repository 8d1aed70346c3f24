//! The client's one error type.
//!
//! Not here: the server's errors (`SfuError`), which the client sees only as an HTTP status and
//! body in [`ClientError::Refused`].

use thiserror::Error;

/// Why a WHIP/WHEP client could not connect or run.
#[derive(Debug, Error)]
pub enum ClientError {
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    #[error("server answered {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("WebRTC: {0}")]
    Rtc(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("timed out: {0}")]
    Timeout(&'static str),
}
