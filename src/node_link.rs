//! A media node's end of the node channel (`bedside_proto::node`) when it runs apart from the
//! API (`bedside sfu`): the command stream in, room-event reports out.
//!
//! In: `GET {api}/internal/node/stream` with the cluster's node secret, one JSON
//! [`NodeCommand`] per line, a snapshot first and a ping every few seconds. Each command goes to
//! [`Sfu::apply`] as it arrives (a revocation ends its sessions within the second it was made).
//! If the stream breaks or goes quiet, the node reconnects with back-off and gets a fresh
//! snapshot; meanwhile it keeps enforcing the deny list it has (a missing API must not reopen
//! what was revoked).
//!
//! Out: room events (lease changes, e-stops) for the API's audit log and its record of latched
//! rooms, and rooms' live status, batched to `POST {api}/internal/node/reports`, retried until
//! the API takes them (a status superseded by a newer one of its room is dropped from the
//! queue: only the newest matters).
//!
//! Not here: the in-process channel of `bedside serve` (`node_local`), or what a command does
//! (the SFU).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bedside_proto::node::{NodeCommand, NodeReport};
use bedside_sfu::{RoomEventHook, Sfu};
use tokio::sync::{mpsc, watch};

/// The stream is dead if not even a ping arrived for this long.
const QUIET: Duration = Duration::from_secs(30);
/// How long the API has to answer a request (for the stream: its headers).
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// Reports queued while the API cannot be reached, at most; past it the oldest non-e-stop
/// ones go (an e-stop record is never dropped here).
const MAX_QUEUED: usize = 10_000;

/// Where the API is and how to prove we are a node of this cluster.
#[derive(Clone)]
pub struct NodeLink {
    /// The API's base URL, e.g. `http://bedside-api:8080`.
    pub api_url: String,
    /// The cluster's node secret.
    pub secret: String,
}

impl NodeLink {
    /// Follow the command stream for ever, applying each command to `sfu`. `synced` counts the
    /// snapshots applied (a node may wait for the first before it takes participants).
    pub async fn follow(self, sfu: Sfu, synced: watch::Sender<u64>) {
        let http = reqwest::Client::builder()
            .connect_timeout(ANSWER_WITHIN)
            .build()
            .unwrap_or_default();
        let mut backoff = Duration::from_millis(250);
        loop {
            let applied = *synced.borrow();
            match self.stream_once(&http, &sfu, &synced).await {
                Ok(()) => tracing::warn!("node stream from the API ended; reconnecting"),
                Err(e) => tracing::warn!(error = %e, "node stream from the API failed"),
            }
            // A stream that got as far as a snapshot was a working connection: start over
            // quickly (an API restart or deploy), rather than at the longest back-off.
            if *synced.borrow() > applied {
                backoff = Duration::from_millis(250);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    async fn stream_once(
        &self,
        http: &reqwest::Client,
        sfu: &Sfu,
        synced: &watch::Sender<u64>,
    ) -> anyhow::Result<()> {
        let request = http
            .get(format!("{}/internal/node/stream", self.api_url))
            .bearer_auth(&self.secret)
            .send();
        let mut resp = tokio::time::timeout(ANSWER_WITHIN, request)
            .await
            .map_err(|_| anyhow::anyhow!("the API did not answer within {ANSWER_WITHIN:?}"))??
            .error_for_status()?;
        tracing::info!("following the API's node stream");
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let chunk = match tokio::time::timeout(QUIET, resp.chunk()).await {
                Err(_) => anyhow::bail!("no message (not even a ping) for {QUIET:?}"),
                Ok(r) => r?,
            };
            let Some(chunk) = chunk else {
                return Ok(());
            };
            buf.extend_from_slice(&chunk);
            while let Some(end) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=end).collect();
                let line = &line[..line.len() - 1];
                if line.is_empty() {
                    continue;
                }
                match serde_json::from_slice::<NodeCommand>(line) {
                    Ok(cmd) => {
                        let snapshot = matches!(cmd, NodeCommand::Snapshot { .. });
                        sfu.apply(cmd).await;
                        if snapshot {
                            synced.send_modify(|n| *n += 1);
                        }
                    }
                    // A newer API may say things this node does not know: skip, do not die.
                    Err(e) => tracing::warn!(error = %e, "unreadable node command skipped"),
                }
            }
            if buf.len() > 1 << 20 {
                anyhow::bail!("node stream line longer than 1 MiB");
            }
        }
    }

    /// A hook for the SFU's room events that reports them to the API, and the task that does.
    pub fn reporter(self) -> (RoomEventHook, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel::<NodeReport>();
        let hook: RoomEventHook = Arc::new(move |report: NodeReport| {
            let _ = tx.send(report);
        });
        (hook, tokio::spawn(self.send_reports(rx)))
    }

    async fn send_reports(self, mut rx: mpsc::UnboundedReceiver<NodeReport>) {
        let http = reqwest::Client::new();
        let mut queue: VecDeque<NodeReport> = VecDeque::new();
        let mut backoff = Duration::from_millis(200);
        loop {
            if queue.is_empty() {
                match rx.recv().await {
                    Some(r) => queue.push_back(r),
                    None => return,
                }
            }
            while let Ok(r) = rx.try_recv() {
                queue.push_back(r);
            }
            trim(&mut queue);
            let batch: Vec<NodeReport> = queue.iter().take(200).cloned().collect();
            let sent = http
                .post(format!("{}/internal/node/reports", self.api_url))
                .bearer_auth(&self.secret)
                .json(&batch)
                .timeout(ANSWER_WITHIN)
                .send()
                .await
                .and_then(|r| r.error_for_status());
            match sent {
                Ok(_) => {
                    queue.drain(..batch.len());
                    backoff = Duration::from_millis(200);
                }
                // The API will never take this batch (malformed, too large): sending it again
                // would block every report behind it.
                Err(e) if e.status().is_some_and(is_refused_for_good) => {
                    tracing::error!(error = %e, dropped = batch.len(), "the API refused a batch of room events; dropped");
                    queue.drain(..batch.len());
                }
                Err(e) => {
                    tracing::warn!(error = %e, queued = queue.len(), "reporting room events failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

/// Statuses that say this batch will never be taken, as opposed to "not now" (401 while the
/// secret is being rolled out, 404 before the API has one, 5xx, 429).
fn is_refused_for_good(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 400 | 413 | 422)
}

/// Keep the queue bounded without ever dropping an e-stop record; a room's status superseded by
/// a newer one of the same room goes first (while the API is away, a busy room would otherwise
/// fill the queue with statuses nobody needs).
fn trim(queue: &mut VecDeque<NodeReport>) {
    let mut newest: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut keep = vec![true; queue.len()];
    for (i, r) in queue.iter().enumerate().rev() {
        if let NodeReport::RoomStatus { status } = r {
            keep[i] = newest.insert(status.room.clone());
        }
    }
    if keep.iter().any(|k| !k) {
        let mut k = keep.into_iter();
        queue.retain(|_| k.next().unwrap_or(true));
    }
    while queue.len() > MAX_QUEUED {
        let pos = queue.iter().position(|r| !is_estop(r));
        match pos {
            Some(i) => {
                queue.remove(i);
            }
            None => break,
        }
    }
}

fn is_estop(r: &NodeReport) -> bool {
    matches!(r, NodeReport::RoomEvent { kind, .. } if kind.starts_with("estop"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str) -> NodeReport {
        NodeReport::RoomEvent {
            room: "r".into(),
            kind: kind.into(),
            actor: None,
            detail: serde_json::json!({}),
        }
    }

    #[test]
    fn only_a_batch_the_api_can_never_take_is_dropped() {
        use reqwest::StatusCode;
        assert!(is_refused_for_good(StatusCode::BAD_REQUEST));
        assert!(is_refused_for_good(StatusCode::PAYLOAD_TOO_LARGE));
        for later in [401, 403, 404, 429, 500, 503] {
            assert!(
                !is_refused_for_good(StatusCode::from_u16(later).unwrap()),
                "{later}"
            );
        }
    }

    fn status(room: &str, online: bool) -> NodeReport {
        let mut s = bedside_proto::node::RoomStatus::closed(room, "n", 10, Default::default());
        s.closed = false;
        s.robot_online = online;
        NodeReport::RoomStatus { status: s }
    }

    #[test]
    fn only_the_newest_status_of_a_room_waits_in_the_queue() {
        let mut q: VecDeque<NodeReport> = VecDeque::new();
        q.push_back(status("a", false));
        q.push_back(ev("estop_latched"));
        q.push_back(status("b", true));
        q.push_back(status("a", true));
        trim(&mut q);
        assert_eq!(q.len(), 3);
        assert!(is_estop(&q[0]));
        assert_eq!(q[1], status("b", true));
        assert_eq!(
            q[2],
            status("a", true),
            "the newest of room a, in its place"
        );
    }

    #[test]
    fn a_full_queue_drops_lease_records_before_any_estop() {
        let mut q: VecDeque<NodeReport> = VecDeque::new();
        q.push_back(ev("estop_latched"));
        for _ in 0..MAX_QUEUED {
            q.push_back(ev("lease_changed"));
        }
        q.push_back(ev("estop_cleared"));
        trim(&mut q);
        assert_eq!(q.len(), MAX_QUEUED);
        assert!(is_estop(&q[0]));
        assert!(is_estop(&q[q.len() - 1]));
    }
}
