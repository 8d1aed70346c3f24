//! The client's one error type.
//!
//! Not here: the server's errors (`SfuError`), which the client sees only as an HTTP status and
//! body in [`ClientError::Refused`].

use thiserror::Error;

/// Why a WHIP/WHEP client could not connect or run.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The signalling request did not get an answer. Held without its URL (see the `From`
    /// below): a session's URL is its capability, and this error reaches logs.
    #[error("HTTP: {0}")]
    Http(reqwest::Error),
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

impl From<reqwest::Error> for ClientError {
    /// Drops the request's URL: `/sessions/{key}` is the session's capability (docs/protocol.md)
    /// and must not reach the robot agent's log through `robot session failed`.
    fn from(e: reqwest::Error) -> Self {
        ClientError::Http(e.without_url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_http_error_does_not_carry_the_session_url() {
        // Nothing listens on port 9 of loopback: the request fails with a connection error.
        let secret = "sessions/k3y-that-must-not-be-logged";
        let err = reqwest::Client::new()
            .delete(format!("http://127.0.0.1:9/{secret}"))
            .send()
            .await
            .expect_err("nothing listens there");
        assert!(
            err.to_string().contains(secret),
            "reqwest names the URL: {err}"
        );
        let ours = ClientError::from(err);
        assert!(!ours.to_string().contains(secret), "{ours}");
        assert!(!format!("{ours:?}").contains(secret), "{ours:?}");
    }
}
