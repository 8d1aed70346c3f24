//! The process-wide directory of the media plane: which worker a room lives on, and which
//! session a secret `Location` key names.
//!
//! Signalling handlers read it to send a command to the right worker; workers write to it when a
//! session ends. It is the only state shared between workers, and it holds no room state.
//!
//! Not here: the sessions themselves (each worker's switchboard owns its own).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;

use crate::SessionId;

pub(crate) struct Directory {
    /// `Location` key -> (worker, session).
    sessions: DashMap<String, (usize, SessionId)>,
    /// Room id -> worker.
    rooms: DashMap<String, usize>,
    /// Sessions' current ICE ufrags -> worker, for routing a new ICE-TCP connection by the
    /// binding request it opens with.
    ufrags: DashMap<String, usize>,
    next_id: AtomicU64,
    next_worker: AtomicUsize,
    workers: usize,
}

impl Directory {
    pub fn new(workers: usize) -> Self {
        Directory {
            sessions: DashMap::new(),
            rooms: DashMap::new(),
            ufrags: DashMap::new(),
            next_id: AtomicU64::new(1),
            next_worker: AtomicUsize::new(0),
            workers: workers.max(1),
        }
    }

    /// A session id unique in this process.
    pub fn next_session_id(&self) -> SessionId {
        SessionId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// The worker a room lives on; new rooms go round-robin. Entries are never removed: room ids
    /// are robot ids from signed tokens, so the map is bounded by the robot fleet, and a stable
    /// mapping means a room can never be split across workers by a race with its teardown.
    pub fn worker_for(&self, room: &str) -> usize {
        if let Some(w) = self.rooms.get(room) {
            return *w;
        }
        *self
            .rooms
            .entry(room.to_string())
            .or_insert_with(|| self.next_worker.fetch_add(1, Ordering::Relaxed) % self.workers)
    }

    /// The worker of a room that has been live, if any.
    pub fn existing_worker(&self, room: &str) -> Option<usize> {
        self.rooms.get(room).map(|w| *w)
    }

    pub fn register_session(&self, key: String, worker: usize, id: SessionId) {
        self.sessions.insert(key, (worker, id));
    }

    pub fn session(&self, key: &str) -> Option<(usize, SessionId)> {
        self.sessions.get(key).map(|e| *e)
    }

    /// Remove a key (its session ended or is being ended); what it named, if anything.
    pub fn take_session(&self, key: &str) -> Option<(usize, SessionId)> {
        self.sessions.remove(key).map(|(_, v)| v)
    }

    pub fn forget_session(&self, key: &str) {
        self.sessions.remove(key);
    }

    /// Forget every session of one worker (it started over after a panic).
    pub fn forget_worker(&self, worker: usize) {
        self.sessions.retain(|_, (w, _)| *w != worker);
        self.ufrags.retain(|_, w| *w != worker);
    }

    pub fn register_ufrag(&self, ufrag: String, worker: usize) {
        self.ufrags.insert(ufrag, worker);
    }

    pub fn forget_ufrag(&self, ufrag: &str) {
        self.ufrags.remove(ufrag);
    }

    /// The worker owning the session with this ICE ufrag.
    pub fn worker_of_ufrag(&self, ufrag: &str) -> Option<usize> {
        self.ufrags.get(ufrag).map(|w| *w)
    }
}
