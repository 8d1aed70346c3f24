//! [`NodeHub`], the API's end of the one channel to its media nodes (`bedside_proto::node`):
//! what the API tells them (deny entries, lease revokes) and what they report back (room events).
//!
//! - [`NodeHub::subscribe`] is how a media node follows the API: a [`NodeCommand::Snapshot`]
//!   read from the database (deny entries still in force, latched rooms), then every command
//!   published after it. The in-process SFU of `bedside serve` subscribes directly; a media node
//!   apart gets the same through `GET /internal/node/stream` (`http::node`). A subscriber that
//!   lags behind is told so by the receiver and subscribes again, starting over from a snapshot.
//! - [`NodeHub::publish`] sends a command to every subscriber. A [`NodeCommand::Deny`] is first
//!   stored (with its `until`, after which it is pruned), so that a restarted API or a node that
//!   reconnects still enforces it, and so that other API replicas pass it on: each hub tails the
//!   table and publishes entries written by the others within a second.
//! - [`NodeHub::report`] takes a media node's room event without waiting: into the audit log,
//!   and for `estop_latched` / `estop_cleared` into the record of latched rooms, so that a
//!   restarted server comes back latched. No e-stop report is dropped. A room's live status
//!   goes into [`LiveRooms`] (in memory; see `live`).
//!
//! Lease revokes are not stored: they reach the nodes following this API process. The part of a
//! revoke that must outlive it (no control for the booking) is a deny entry.
//!
//! Not here: deciding what to deny (the domain modules: `booking`, `users`, `robots`,
//! `lease_admin`), HTTP (`http::node`), or enforcing anything (the SFU).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bedside_proto::node::{Deny, DenyScope, DenyTarget, NodeCommand, NodeReport, RevokeReason};
use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::audit::{token_like, AuditSink};
use crate::clock::Clock;
use crate::error::ApiError;
use crate::keys::unix;
use crate::live::LiveRooms;
use crate::store::Store;

/// Commands a subscriber may fall behind by before it must start over from a snapshot.
const BACKLOG: usize = 1024;
/// How often each hub looks for deny entries other API replicas wrote.
const TAIL_EVERY: Duration = Duration::from_secs(1);
/// Deny entries numbered this far below the highest seen are looked at again, in case their
/// insert committed after a higher one's.
const LATE_COMMITS: i64 = 256;
/// Prune expired deny entries every this many tail rounds.
const PRUNE_EVERY: u32 = 60;

/// The audit kinds that change the record of latched rooms.
const ESTOP_LATCHED: &str = "estop_latched";
const ESTOP_CLEARED: &str = "estop_cleared";

/// See the module docs. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct NodeHub {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    audit: AuditSink,
    clock: Clock,
    commands: broadcast::Sender<NodeCommand>,
    seen: Mutex<Seen>,
    latches: mpsc::UnboundedSender<LatchJob>,
    closing: watch::Sender<bool>,
    live: LiveRooms,
}

/// Deny entries already published, by sequence number, so that none goes out twice.
struct Seen {
    /// Entries up to this one were stored before the hub started: subscribers get them in
    /// snapshots.
    start: i64,
    high: i64,
    recent: BTreeSet<i64>,
}

impl Seen {
    fn new(start: i64) -> Self {
        Seen {
            start,
            high: start,
            recent: BTreeSet::new(),
        }
    }

    /// Newly seen (publish it) or not.
    fn insert(&mut self, seq: i64) -> bool {
        if seq <= self.floor() || !self.recent.insert(seq) {
            return false;
        }
        self.high = self.high.max(seq);
        self.recent = self.recent.split_off(&(self.floor() + 1));
        true
    }

    /// Entries at or below this are not looked at again.
    fn floor(&self) -> i64 {
        self.start.max(self.high - LATE_COMMITS)
    }
}

enum LatchJob {
    Set {
        room: String,
        by: Option<String>,
        at: DateTime<Utc>,
    },
    Clear {
        room: String,
    },
    Flush(oneshot::Sender<()>),
}

impl NodeHub {
    /// Start the hub's tasks: the tail of the deny table and the writer of latched rooms.
    pub(crate) async fn start(
        store: Store,
        audit: AuditSink,
        clock: Clock,
    ) -> Result<Self, ApiError> {
        let high = store.last_deny_seq().await?;
        let (commands, _) = broadcast::channel(BACKLOG);
        let (latches, latch_rx) = mpsc::unbounded_channel();
        let (closing, _) = watch::channel(false);
        let hub = NodeHub {
            inner: Arc::new(Inner {
                store: store.clone(),
                audit,
                clock,
                commands,
                seen: Mutex::new(Seen::new(high)),
                latches,
                closing,
                live: LiveRooms::default(),
            }),
        };
        tokio::spawn(tail(Arc::downgrade(&hub.inner), hub.closing()));
        tokio::spawn(write_latches(store, latch_rx));
        Ok(hub)
    }

    /// A snapshot of everything in force, and the commands published from now on. The receiver
    /// is made before the snapshot is read, so nothing falls between them (an entry may come
    /// twice; applying it again changes nothing).
    pub async fn subscribe(
        &self,
    ) -> Result<(NodeCommand, broadcast::Receiver<NodeCommand>), ApiError> {
        let rx = self.inner.commands.subscribe();
        let store = &self.inner.store;
        let now = self.inner.clock.now();
        store.prune_denies(now).await?;
        let denies = store
            .denies_in_force(now)
            .await?
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        let latches = store.latches().await?;
        Ok((NodeCommand::Snapshot { denies, latches }, rx))
    }

    /// Send `cmd` to every subscriber; a deny entry is stored first. Snapshots are made by
    /// [`NodeHub::subscribe`] only.
    pub async fn publish(&self, cmd: NodeCommand) -> Result<(), ApiError> {
        match cmd {
            NodeCommand::Snapshot { .. } => Err(ApiError::internal(
                "snapshots are made by subscribe, not published",
            )),
            NodeCommand::Deny { deny } => {
                let until =
                    DateTime::from_timestamp(i64::try_from(deny.until).unwrap_or(i64::MAX), 0)
                        .unwrap_or(DateTime::<Utc>::MAX_UTC);
                let seq = self
                    .inner
                    .store
                    .insert_deny(&deny, until, self.inner.clock.now())
                    .await?;
                tracing::info!(seq, reason = deny.reason.code(), "deny entry published");
                self.inner.pass_on(seq, deny);
                Ok(())
            }
            other => {
                let _ = self.inner.commands.send(other);
                Ok(())
            }
        }
    }

    /// Store and publish a deny entry. `issued_until` cuts it in time (tokens issued later
    /// pass); `until` is when no token it matches can still be valid.
    pub(crate) async fn deny(
        &self,
        target: DenyTarget,
        scope: DenyScope,
        issued_until: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
        reason: RevokeReason,
    ) -> Result<(), ApiError> {
        let deny = Deny {
            target,
            scope,
            issued_until: issued_until.map(unix),
            until: unix(until),
            reason,
        };
        self.publish(NodeCommand::Deny { deny }).await
    }

    /// A media node's report, taken without waiting (safe from the SFU's event loop).
    pub fn report(&self, report: NodeReport) {
        let (room, kind, actor, detail) = match report {
            NodeReport::RoomEvent {
                room,
                kind,
                actor,
                detail,
            } => (room, kind, actor, detail),
            NodeReport::RoomStatus { status } => {
                self.inner.live.update(status, self.inner.clock.now());
                return;
            }
        };
        if (kind == ESTOP_LATCHED || kind == ESTOP_CLEARED) && token_like(&room) {
            let job = if kind == ESTOP_LATCHED {
                LatchJob::Set {
                    room: room.clone(),
                    by: actor.clone().filter(|a| token_like(a)),
                    at: self.inner.clock.now(),
                }
            } else {
                LatchJob::Clear { room: room.clone() }
            };
            if self.inner.latches.send(job).is_err() {
                tracing::error!(kind = %kind, "room latch record lost: the hub is gone");
            }
        }
        self.inner
            .audit
            .record_room_event(&room, actor.as_deref(), &kind, detail);
    }

    /// What the media nodes last said about each live room.
    pub(crate) fn live(&self) -> &LiveRooms {
        &self.inner.live
    }

    /// Becomes true when the API shuts down: long-lived node streams end then.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.inner.closing.subscribe()
    }

    /// End the node streams (shutdown has begun); the hub keeps working for the rest.
    pub fn close_streams(&self) {
        self.inner.closing.send_replace(true);
    }

    /// Wait until every latch record reported so far is written.
    pub(crate) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.inner.latches.send(LatchJob::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

impl Inner {
    fn pass_on(&self, seq: i64, deny: Deny) {
        // Checked and sent under the lock, so the tail and a local publish never both send it.
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.insert(seq) {
            let _ = self.commands.send(NodeCommand::Deny { deny });
        }
    }
}

/// Publish deny entries other API replicas stored, until the hub is gone or closing.
async fn tail(hub: Weak<Inner>, mut closing: watch::Receiver<bool>) {
    let mut round: u32 = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TAIL_EVERY) => {}
            _ = closing.wait_for(|c| *c) => return,
        }
        let Some(inner) = hub.upgrade() else { return };
        round = round.wrapping_add(1);
        if round.is_multiple_of(PRUNE_EVERY) {
            if let Err(e) = inner.store.prune_denies(inner.clock.now()).await {
                tracing::warn!(error = %e, "pruning deny entries failed");
            }
        }
        let floor = inner.seen.lock().unwrap_or_else(|p| p.into_inner()).floor();
        match inner.store.denies_after(floor).await {
            Ok(rows) => {
                for (seq, deny) in rows {
                    inner.pass_on(seq, deny);
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading deny entries failed"),
        }
    }
}

/// Write latch records in the order reported; each is tried again a few times, since a room
/// that comes back unlatched after a restart is the failure this record exists to prevent.
async fn write_latches(store: Store, mut jobs: mpsc::UnboundedReceiver<LatchJob>) {
    while let Some(job) = jobs.recv().await {
        let mut pause = Duration::from_millis(100);
        for attempt in 1..=6 {
            let written = match &job {
                LatchJob::Set { room, by, at } => store.set_latch(room, by.as_deref(), *at).await,
                LatchJob::Clear { room } => store.clear_latch(room).await,
                LatchJob::Flush(_) => Ok(()),
            };
            match written {
                Ok(()) => break,
                Err(e) if attempt == 6 => tracing::error!(error = %e, "room latch record lost"),
                Err(e) => {
                    tracing::warn!(error = %e, "writing a room latch record failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
            }
        }
        if let LatchJob::Flush(done) = job {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sequence_number_goes_out_once() {
        let mut seen = Seen::new(3);
        assert!(!seen.insert(2), "stored before the start: in snapshots");
        assert!(seen.insert(11));
        assert!(!seen.insert(11), "twice");
        assert!(seen.insert(5), "a late commit below the highest");
        assert!(seen.insert(400));
        assert!(!seen.insert(400 - LATE_COMMITS), "too old to be looked at");
        assert_eq!(seen.floor(), 400 - LATE_COMMITS);
        assert!(seen.recent.iter().all(|s| *s > 400 - LATE_COMMITS));
    }
}
