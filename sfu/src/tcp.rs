//! ICE-TCP (RFC 6544, passive candidates) for clients that cannot send UDP: the robot agent on
//! a network that blocks it, any client without a TURN relay.
//!
//! One TCP listener per node. A new connection must send, within [`FIRST_FRAME_TIMEOUT`], a
//! first frame (RFC 4571: a 2-byte length, then the packet) that is a STUN binding request
//! naming a session's ICE ufrag; the directory says which worker owns that ufrag, and the
//! connection is handed to it: every frame becomes a datagram for the worker's switchboard, and
//! what the switchboard sends to the connection's address is written back framed. At most
//! [`SfuConfig::max_tcp_pending`](crate::SfuConfig::max_tcp_pending) connections may be waiting
//! for their first frame; more are closed at once. Each connection's send buffer is bounded
//! ([`SEND_QUEUE`] frames): a slow reader loses media (counted), never blocks a worker. When the
//! connection closes, its session ends at once.
//!
//! Not here: what a frame means (the switchboard and str0m), or STUN verification (the
//! switchboard checks the signature before it learns the address).

use std::sync::Arc;
use std::time::Duration;

use str0m::ice::StunMessage;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};

use crate::directory::Directory;
use crate::framing::{self, read_frame};
use crate::metrics::Metrics;
use crate::worker::{Command, TcpEvent};

/// A new connection's first frame must come within this.
pub const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(5);
/// Frames waiting to be written to one connection, at most.
pub const SEND_QUEUE: usize = 512;

/// Accept ICE-TCP connections on `listener` until the process ends.
pub(crate) async fn serve(
    listener: TcpListener,
    directory: Arc<Directory>,
    workers: Vec<mpsc::Sender<Command>>,
    metrics: Metrics,
    max_pending: usize,
) {
    let pending = Arc::new(Semaphore::new(max_pending.max(1)));
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "ICE-TCP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            metrics
                .datagrams_dropped
                .with_label_values(&["tcp_too_many_pending"])
                .inc();
            continue;
        };
        let (directory, workers, metrics) = (directory.clone(), workers.clone(), metrics.clone());
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let (mut rd, wr) = stream.into_split();
            let first = tokio::time::timeout(FIRST_FRAME_TIMEOUT, read_frame(&mut rd)).await;
            drop(permit);
            let first = match first {
                Ok(Ok(Some(f))) => f,
                _ => return drop_conn(&metrics, "tcp_no_first_frame"),
            };
            let Some(w) = ufrag_of(&first).and_then(|u| directory.worker_of_ufrag(&u)) else {
                return drop_conn(&metrics, "tcp_unknown_ufrag");
            };
            let worker = workers[w].clone();
            let (tx, rx) = mpsc::channel::<Vec<u8>>(SEND_QUEUE);
            tokio::spawn(write_frames(wr, rx));
            let open = TcpEvent::Open(tx);
            if worker
                .send(Command::Tcp {
                    remote,
                    event: open,
                })
                .await
                .is_err()
            {
                return;
            }
            let mut frame = Some(first);
            while let Some(f) = frame.take() {
                let data = TcpEvent::Frame(f);
                if worker
                    .send(Command::Tcp {
                        remote,
                        event: data,
                    })
                    .await
                    .is_err()
                {
                    return;
                }
                frame = match read_frame(&mut rd).await {
                    Ok(Some(f)) => Some(f),
                    _ => None,
                };
            }
            let _ = worker
                .send(Command::Tcp {
                    remote,
                    event: TcpEvent::Closed,
                })
                .await;
        });
    }
}

fn drop_conn(metrics: &Metrics, reason: &str) {
    metrics.datagrams_dropped.with_label_values(&[reason]).inc();
}

/// The local ufrag a STUN binding request names, if that is what `frame` is.
fn ufrag_of(frame: &[u8]) -> Option<String> {
    let msg = StunMessage::parse(frame).ok()?;
    if !msg.is_binding_request() {
        return None;
    }
    msg.split_username().map(|(local, _)| local.to_string())
}

async fn write_frames(mut wr: impl AsyncWriteExt + Unpin, mut rx: mpsc::Receiver<Vec<u8>>) {
    while let Some(f) = rx.recv().await {
        let Some(out) = framing::encode(&f) else {
            continue;
        };
        if wr.write_all(&out).await.is_err() {
            return;
        }
    }
}
