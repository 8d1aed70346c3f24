//! The audit log: an append-only record of who did what, when. Logins (ok and failed), logouts,
//! users and robots created, credential rotations, bookings made and cancelled, invitations,
//! tokens issued, and room events that the SFU reports (lease changes, e-stops).
//!
//! Actors and rooms are stored as opaque ids, never names. Entries are only ever appended: the
//! store has no update or delete for them, and the schema refuses both. Not here: the entry types
//! (`model`), application logs (`tracing`), metrics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::clock::Clock;
use crate::error::ApiError;
use crate::instants;
use crate::model::{AuditEntry, AuditFilter, NewAuditEntry};
use crate::store::Store;

/// The kinds this crate writes. Room events from the SFU are `room.<kind>`.
pub mod kinds {
    pub const LOGIN_OK: &str = "login.ok";
    pub const LOGIN_FAILED: &str = "login.failed";
    pub const LOGOUT: &str = "logout";
    pub const USER_CREATED: &str = "user.created";
    pub const ROBOT_CREATED: &str = "robot.created";
    pub const ROBOT_CREDENTIAL_ROTATED: &str = "robot.credential_rotated";
    pub const BOOKING_CREATED: &str = "booking.created";
    pub const BOOKING_CANCELLED: &str = "booking.cancelled";
    pub const INVITATION_ADDED: &str = "invitation.added";
    pub const INVITATION_REMOVED: &str = "invitation.removed";
    pub const TOKEN_JOIN: &str = "token.join";
    pub const TOKEN_PUBLISH: &str = "token.publish";
    pub const USER_DISABLED: &str = "user.disabled";
    pub const USER_ENABLED: &str = "user.enabled";
    pub const USER_UPDATED: &str = "user.updated";
    pub const USER_PASSWORD_RESET: &str = "user.password_reset";
    pub const ROBOT_UPDATED: &str = "robot.updated";
    pub const ROBOT_RETIRED: &str = "robot.retired";
    pub const AUDIT_EXPORTED: &str = "audit.exported";
    pub const SETUP_COMPLETED: &str = "setup.completed";
    pub const ROOM_PREFIX: &str = "room.";
}

/// Room events waiting to be written; past this new ones are dropped (and counted) rather than
/// letting the SFU's event loop wait on the database. E-stop events have a lane of their own
/// that is never full.
const QUEUE: usize = 4096;
const MAX_DETAIL_BYTES: usize = 8 * 1024;

/// Room event kinds that are never dropped: every e-stop latched, cleared, pressed, released.
pub(crate) fn is_estop(kind: &str) -> bool {
    kind.starts_with("estop")
}

/// Room ids, kinds and actors as the audit log accepts them: 1-64 characters of
/// `A-Z a-z 0-9 - _ .`.
pub(crate) fn token_like(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

enum Job {
    Write(NewAuditEntry),
    /// Everything queued before this is written: tell the sender.
    Flush(oneshot::Sender<()>),
}

/// One page of entries, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
    /// Entries matching the filter, on all pages.
    pub total: i64,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Exact kind, e.g. `login.failed` or `room.estop`; or a family ending in `.*`, e.g.
    /// `room.*` or `user.*`.
    pub kind: Option<String>,
    /// Opaque actor id (a user's or a robot's).
    pub actor: Option<String>,
    /// Room: the robot id. Also accepted as `robot`.
    #[serde(alias = "robot")]
    pub room: Option<String>,
    /// Entries at or after this instant (RFC 3339). Also accepted as `from`.
    #[serde(alias = "from")]
    pub since: Option<DateTime<Utc>>,
    /// Entries before this instant (RFC 3339). Also accepted as `to`.
    #[serde(alias = "to")]
    pub until: Option<DateTime<Utc>>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Only entries with an id below this (the previous page's `next_before`).
    pub before: Option<i64>,
}

/// A cheap, cloneable handle for writing to the audit log, for this crate and for the node
/// channel, which passes the media plane's room events on through
/// [`AuditSink::record_room_event`].
#[derive(Clone)]
pub struct AuditSink {
    store: Store,
    clock: Clock,
    queue: mpsc::Sender<Job>,
    estops: mpsc::UnboundedSender<Job>,
    dropped: Arc<AtomicU64>,
}

impl AuditSink {
    /// Starts the task that writes queued room events (e-stops first); it ends when the last
    /// sink is dropped.
    pub(crate) fn start(store: Store, clock: Clock) -> Self {
        let (queue, mut rx) = mpsc::channel::<Job>(QUEUE);
        let (estops, mut estop_rx) = mpsc::unbounded_channel::<Job>();
        let writer = store.clone();
        tokio::spawn(async move {
            loop {
                let job = tokio::select! {
                    biased;
                    Some(job) = estop_rx.recv() => job,
                    Some(job) = rx.recv() => job,
                    else => break,
                };
                match job {
                    Job::Write(e) => write(&writer, &e).await,
                    Job::Flush(done) => {
                        // E-stops queued meanwhile count as "before" too.
                        while let Ok(job) = estop_rx.try_recv() {
                            match job {
                                Job::Write(e) => write(&writer, &e).await,
                                Job::Flush(done) => drop(done.send(())),
                            }
                        }
                        let _ = done.send(());
                    }
                }
            }
        });
        AuditSink {
            store,
            clock,
            queue,
            estops,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Queue a room event without waiting (safe to call from the SFU's event loop). `kind` is
    /// stored as `room.<kind>`, e.g. `lease_changed` -> `room.lease_changed`. Invalid events and
    /// events beyond a full queue are dropped, logged and counted in [`AuditSink::dropped`];
    /// e-stop events are never dropped for a full queue.
    pub fn record_room_event(
        &self,
        room: &str,
        actor_sub: Option<&str>,
        kind: &str,
        detail: Value,
    ) {
        let e = match self.room_entry(room, actor_sub, kind, detail) {
            Ok(e) => e,
            Err(err) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %err, "room event refused by the audit log");
                return;
            }
        };
        let sent = if is_estop(kind) {
            self.estops.send(Job::Write(e)).is_ok()
        } else {
            self.queue.try_send(Job::Write(e)).is_ok()
        };
        if !sent {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(kind, "audit queue full or closed; room event dropped");
        }
    }

    /// Wait until every room event queued so far is written (at shutdown, before the database
    /// is closed).
    pub(crate) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Job::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Write a room event and wait until it is stored.
    pub async fn write_room_event(
        &self,
        room: &str,
        actor_sub: Option<&str>,
        kind: &str,
        detail: Value,
    ) -> Result<(), ApiError> {
        let e = self.room_entry(room, actor_sub, kind, detail)?;
        self.store.append_audit(&e).await
    }

    /// Room events dropped so far (invalid, or the queue was full).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Append an entry written by this crate and wait until it is stored.
    pub(crate) async fn record(
        &self,
        kind: &str,
        actor: Option<Uuid>,
        room: Option<Uuid>,
        detail: Value,
    ) -> Result<(), ApiError> {
        let e = NewAuditEntry::new(
            self.clock.now(),
            kind,
            actor.map(|a| a.to_string()),
            room.map(|r| r.to_string()),
            detail,
        );
        self.store.append_audit(&e).await
    }

    fn room_entry(
        &self,
        room: &str,
        actor_sub: Option<&str>,
        kind: &str,
        detail: Value,
    ) -> Result<NewAuditEntry, ApiError> {
        if !token_like(room) || !token_like(kind) || !actor_sub.is_none_or(token_like) {
            return Err(ApiError::validation(
                "room, kind and actor must be 1-64 characters of a-z, 0-9, '-', '_', '.'",
            ));
        }
        if serde_json::to_vec(&detail).map_or(true, |b| b.len() > MAX_DETAIL_BYTES) {
            return Err(ApiError::validation("room event detail is too large"));
        }
        Ok(NewAuditEntry::new(
            self.clock.now(),
            &format!("{}{}", kinds::ROOM_PREFIX, kind.to_ascii_lowercase()),
            actor_sub.map(str::to_string),
            Some(room.to_string()),
            detail,
        ))
    }
}

/// Write one queued entry. An e-stop entry is tried again a few times (the database may be
/// failing over); others are tried once.
async fn write(store: &Store, e: &NewAuditEntry) {
    let estop = is_estop(e.kind.trim_start_matches(kinds::ROOM_PREFIX));
    let mut pause = std::time::Duration::from_millis(100);
    for attempt in 1.. {
        let Err(err) = store.append_audit(e).await else {
            return;
        };
        if !estop {
            tracing::warn!(error = %err, kind = %e.kind, "audit entry lost");
            return;
        }
        if attempt == 6 {
            tracing::error!(error = %err, kind = %e.kind, "e-stop audit entry lost");
            return;
        }
        tokio::time::sleep(pause).await;
        pause *= 2;
    }
}

/// The store's filter for `q` (without its cursor and limit), or why `q` is wrong.
pub(crate) fn filter_of(q: &AuditQuery, limit: u32) -> Result<AuditFilter, ApiError> {
    let (since, until) = (
        instants::query("since", q.since)?,
        instants::query("until", q.until)?,
    );
    if let (Some(since), Some(until)) = (since, until) {
        if since > until {
            return Err(ApiError::validation("since must not be after until"));
        }
    }
    fn given(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }
    let (kind, kind_prefix) = match given(&q.kind) {
        Some(k) => match k.strip_suffix('*') {
            Some(prefix) if prefix.ends_with('.') => (None, Some(prefix.to_string())),
            _ => (Some(k.to_string()), None),
        },
        None => (None, None),
    };
    for (name, value) in [
        ("kind", kind.as_deref().or(kind_prefix.as_deref())),
        ("actor", given(&q.actor)),
        ("room", given(&q.room)),
    ] {
        if value.is_some_and(|v| v.len() > 128) {
            return Err(ApiError::validation(format!(
                "{name} must be at most 128 characters"
            )));
        }
    }
    Ok(AuditFilter {
        kind,
        kind_prefix,
        actor: given(&q.actor).map(str::to_string),
        room: given(&q.room).map(str::to_string),
        since,
        until,
        before: q.before,
        limit,
    })
}

/// Fill in who the actors and robots of `entries` are now (names are read, never stored).
pub(crate) async fn name_entries(
    store: &Store,
    entries: &mut [AuditEntry],
) -> Result<(), ApiError> {
    let ids = |f: fn(&AuditEntry) -> Option<&String>| -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = entries
            .iter()
            .filter_map(|e| f(e).and_then(|v| Uuid::parse_str(v).ok()))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let actors = ids(|e| e.actor.as_ref());
    let mut robot_ids = ids(|e| e.room.as_ref());
    // A robot acts too (its publish tokens).
    robot_ids.extend(actors.iter().copied());
    robot_ids.sort_unstable();
    robot_ids.dedup();
    let users: HashMap<String, (String, &'static str)> = store
        .user_names(&actors)
        .await?
        .into_iter()
        .map(|u| (u.id.to_string(), (u.display_name, u.role.as_str())))
        .collect();
    let robots: HashMap<String, String> = store
        .robot_names(&robot_ids)
        .await?
        .into_iter()
        .map(|(id, name)| (id.to_string(), name))
        .collect();
    for e in entries.iter_mut() {
        if let Some(actor) = &e.actor {
            if let Some((name, role)) = users.get(actor) {
                e.actor_name = Some(name.clone());
                e.actor_kind = Some((*role).to_string());
            } else if let Some(name) = robots.get(actor) {
                e.actor_name = Some(name.clone());
                e.actor_kind = Some("robot".to_string());
            }
        }
        e.robot_name = e.room.as_ref().and_then(|r| robots.get(r)).cloned();
    }
    Ok(())
}

/// One page of the log, newest first, filtered by `q`, with names, and the total.
pub(crate) async fn list(store: &Store, q: AuditQuery) -> Result<AuditPage, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::validation("limit must be 1-1000"));
    }
    let filter = filter_of(&q, limit)?;
    let mut entries = store.list_audit(&filter).await?;
    let total = store.count_audit(&filter).await?;
    name_entries(store, &mut entries).await?;
    let next_before = if entries.len() == limit as usize {
        entries.last().map(|e| e.id)
    } else {
        None
    };
    Ok(AuditPage {
        entries,
        next_before,
        total,
    })
}
