//! The one error type of the SFU crate. Its mapping to HTTP status lives in `signalling.rs`.

use bedside_proto::TokenError;
use thiserror::Error;

/// Why a signalling request failed. The messages are the plain-text bodies clients see, so
/// they say what to do and never carry personal data.
#[derive(Debug, Error)]
pub enum SfuError {
    /// The join token was refused: 401, or 403 for another room.
    #[error("{0}")]
    Token(#[from] TokenError),
    /// A valid token on the wrong endpoint (a robot on WHEP, a viewer on WHIP): 403.
    #[error("{0}")]
    Forbidden(String),
    /// The offer is not SDP str0m accepts: 400.
    #[error("invalid SDP offer: {0}")]
    BadSdp(String),
    /// Bad room id or content type: 400.
    #[error("{0}")]
    BadRequest(String),
    /// A different robot already publishes in the room: 409.
    #[error("another robot is already publishing in this room")]
    RoomBusy,
    /// The room's worker is at its viewer cap (the count at refusal): 503.
    #[error(
        "this media server is full ({0} viewers on the worker serving this room); try again later"
    )]
    Full(usize),
    /// No session behind this `Location` key: 404.
    #[error("no such session")]
    NoSession,
    /// A deny entry from the API refuses this token: 401.
    #[error("access revoked: {0}")]
    Revoked(&'static str),
    /// Too many sessions of this token are still setting up: 429.
    #[error("too many connections are being set up with this token; wait for them to finish")]
    TooManyPending,
    /// Too many sessions on this worker are still setting up: 503.
    #[error("this media server is busy setting up connections; try again in a few seconds")]
    Busy,
    /// The worker's task has ended: 503.
    #[error("the media server is shutting down")]
    ShuttingDown,
    /// A bug or a resource failure on our side: 500.
    #[error("media server error: {0}")]
    Internal(String),
    /// Binding a worker's socket at start: 500 if it ever reaches a request.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
