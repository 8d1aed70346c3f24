//! The client's one error type.
//!
//! Not here: the server's errors (`SfuError`), which the client sees only as an HTTP status and
//! body in [`ClientError::Refused`].

use thiserror::Error;

/// Why a WHIP/WHEP client could not connect or run.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The signalling request did not get an answer.
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    /// The SFU refused the offer; tests assert on the status (401, 403, 409, 503, ...).
    #[error("server answered {status}: {body}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The SFU's plain-text reason.
        body: String,
    },
    /// str0m refused the answer or failed.
    #[error("WebRTC: {0}")]
    Rtc(String),
    /// The UDP socket.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// What did not happen in time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
}
