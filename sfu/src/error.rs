//! The one error type of the SFU crate. Its mapping to HTTP status lives in `signalling.rs`.

use bedside_proto::TokenError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SfuError {
    #[error("{0}")]
    Token(#[from] TokenError),
    #[error("{0}")]
    Forbidden(String),
    #[error("invalid SDP offer: {0}")]
    BadSdp(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("another robot is already publishing in this room")]
    RoomBusy,
    #[error(
        "this media server is full ({0} viewers on the worker serving this room); try again later"
    )]
    Full(usize),
    #[error("no such session")]
    NoSession,
    #[error("access revoked: {0}")]
    Revoked(&'static str),
    #[error("too many connections are being set up with this token; wait for them to finish")]
    TooManyPending,
    #[error("this media server is busy setting up connections; try again in a few seconds")]
    Busy,
    #[error("the media server is shutting down")]
    ShuttingDown,
    #[error("media server error: {0}")]
    Internal(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
