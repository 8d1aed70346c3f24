//! The node channel inside one process (`bedside serve`): the in-process SFU follows the API's
//! [`NodeHub`] directly, as a media node apart follows it over HTTP (`node_link`).
//!
//! [`sync`] applies a first snapshot before the server takes any request, so that after a
//! restart nothing revoked is let in and latched rooms are latched again; [`follow`] then applies
//! every command as it is published, and starts over from a fresh snapshot if it ever falls
//! behind. [`reporter`] is the SFU's report hook: it hands each room event and room status to
//! the hub without waiting.
//!
//! Not here: what a command does (the SFU) or what the hub does with a report (the API).

use std::sync::Arc;
use std::time::Duration;

use bedside_api::NodeHub;
use bedside_proto::node::NodeCommand;
use bedside_proto::node::NodeReport;
use bedside_sfu::{RoomEventHook, Sfu};
use tokio::sync::broadcast;

/// Subscribe `sfu` to `hub` and apply the snapshot; the receiver for [`follow`].
pub async fn sync(
    hub: &NodeHub,
    sfu: &Sfu,
) -> Result<broadcast::Receiver<NodeCommand>, bedside_api::ApiError> {
    let (snapshot, rx) = hub.subscribe().await?;
    sfu.apply(snapshot).await;
    Ok(rx)
}

/// Apply every command `hub` publishes to `sfu`, for as long as the hub lives.
pub async fn follow(hub: NodeHub, sfu: Sfu, mut rx: broadcast::Receiver<NodeCommand>) {
    loop {
        match rx.recv().await {
            Ok(cmd) => sfu.apply(cmd).await,
            Err(broadcast::error::RecvError::Closed) => return,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "the media plane fell behind the node channel; resyncing"
                );
                rx = resync(&hub, &sfu).await;
            }
        }
    }
}

/// A fresh snapshot, tried until the database answers (meanwhile the deny list in force stays).
async fn resync(hub: &NodeHub, sfu: &Sfu) -> broadcast::Receiver<NodeCommand> {
    let mut pause = Duration::from_millis(100);
    loop {
        match sync(hub, sfu).await {
            Ok(rx) => return rx,
            Err(e) => {
                tracing::warn!(error = %e, "node channel snapshot failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The SFU's report hook: every room event and room status to `hub.report`, without waiting.
pub fn reporter(hub: NodeHub) -> RoomEventHook {
    Arc::new(move |report: NodeReport| hub.report(report))
}
