//! The media server as a whole: starts the workers and routes requests to them.
//!
//! [`Sfu::start`] binds one UDP socket per worker and spawns each worker as a tokio task.
//! A `dashmap` maps room id -> worker so all sessions of a room meet on one worker; a second one
//! maps the secret session key of a `Location` URL -> (worker, session).
//!
//! Not here: HTTP parsing (`signalling.rs`) or anything about rooms' contents (`room.rs`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use bedside_proto::{Claims, TokenVerifier};
use dashmap::DashMap;
use str0m::change::SdpOffer;
use str0m::config::DtlsCert;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::config::SfuConfig;
use crate::error::SfuError;
use crate::metrics::Metrics;
use crate::worker::{Command, Joined, Worker};
use crate::SessionId;

/// Something that happened in a room worth an audit record (lease change, e-stop).
#[derive(Debug, Clone)]
pub struct RoomEvent {
    pub room: String,
    pub kind: &'static str,
    /// Opaque subject of the participant concerned, if any.
    pub actor: Option<String>,
    pub detail: serde_json::Value,
}

pub type RoomEventHook = Arc<dyn Fn(RoomEvent) + Send + Sync>;

/// State every worker and handler reads.
pub(crate) struct Shared {
    pub config: SfuConfig,
    pub metrics: Metrics,
    pub dtls_cert: DtlsCert,
    pub sessions: DashMap<String, (usize, SessionId)>,
    pub room_events: Option<RoomEventHook>,
    next_id: AtomicU64,
}

impl Shared {
    pub fn next_session_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// Handle to the running media server. Cheap to clone.
#[derive(Clone)]
pub struct Sfu {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    workers: Vec<mpsc::Sender<Command>>,
    addrs: Vec<SocketAddr>,
    rooms: DashMap<String, usize>,
    next_worker: AtomicUsize,
    verifier: RwLock<TokenVerifier>,
}

impl Sfu {
    /// Bind sockets and spawn workers on the current tokio runtime.
    pub async fn start(
        config: SfuConfig,
        verifier: TokenVerifier,
        metrics: Metrics,
        room_events: Option<RoomEventHook>,
    ) -> Result<Sfu, SfuError> {
        // Idempotent: str0m wants one process-wide crypto provider.
        let provider = str0m::crypto::from_feature_flags();
        let dtls_cert = provider
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| SfuError::Internal("could not generate DTLS certificate".into()))?;
        provider.install_process_default();

        let advertised = config.advertised_ip();
        let shared = Arc::new(Shared {
            config: config.clone(),
            metrics,
            dtls_cert,
            sessions: DashMap::new(),
            room_events,
            next_id: AtomicU64::new(1),
        });
        let mut workers = Vec::new();
        let mut addrs = Vec::new();
        for i in 0..config.workers.max(1) {
            let port = if config.udp_port == 0 {
                0
            } else {
                config.udp_port + i as u16
            };
            let socket = UdpSocket::bind(SocketAddr::new(config.bind_ip, port)).await?;
            let local = SocketAddr::new(advertised, socket.local_addr()?.port());
            let (tx, rx) = mpsc::channel(256);
            let socket = crate::socket::MediaSocket::new(socket)?;
            tokio::spawn(Worker::new(i, socket, local, shared.clone(), rx).run());
            tracing::info!(worker = i, candidate = %local, "media worker listening");
            workers.push(tx);
            addrs.push(local);
        }
        Ok(Sfu {
            inner: Arc::new(Inner {
                shared,
                workers,
                addrs,
                rooms: DashMap::new(),
                next_worker: AtomicUsize::new(0),
                verifier: RwLock::new(verifier),
            }),
        })
    }

    /// The advertised UDP address of each worker.
    pub fn media_addrs(&self) -> &[SocketAddr] {
        &self.inner.addrs
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.shared.metrics
    }

    /// Replace the keys tokens are checked with (key rotation, JWKS refresh).
    pub fn set_verifier(&self, verifier: TokenVerifier) {
        if let Ok(mut v) = self.inner.verifier.write() {
            *v = verifier;
        }
    }

    pub(crate) fn verify(&self, token: &str, room: &str) -> Result<Claims, SfuError> {
        let v = self
            .inner
            .verifier
            .read()
            .map_err(|_| SfuError::Internal("verifier lock poisoned".into()))?;
        Ok(v.verify(token, room)?)
    }

    /// The worker a room lives on; new rooms go round-robin. Entries are never removed: room ids
    /// are robot ids from signed tokens, so the map is bounded by the robot fleet, and a stable
    /// mapping means a room can never be split across workers by a race with its teardown.
    fn worker_for(&self, room: &str) -> usize {
        *self.inner.rooms.entry(room.to_string()).or_insert_with(|| {
            self.inner.next_worker.fetch_add(1, Ordering::Relaxed) % self.inner.workers.len()
        })
    }

    /// Admit a participant with verified `claims` and answer its SDP offer.
    pub(crate) async fn join(&self, claims: Claims, offer: SdpOffer) -> Result<Joined, SfuError> {
        let w = self.worker_for(&claims.room);
        let (reply, rx) = oneshot::channel();
        self.inner.workers[w]
            .send(Command::Join {
                room: claims.room.as_str().into(),
                claims,
                offer: Box::new(offer),
                reply,
            })
            .await
            .map_err(|_| SfuError::ShuttingDown)?;
        rx.await.map_err(|_| SfuError::ShuttingDown)?
    }

    pub(crate) fn has_session(&self, key: &str) -> bool {
        self.inner.shared.sessions.contains_key(key)
    }

    /// End the session behind a `Location` key. False if there is none.
    pub(crate) async fn leave(&self, key: &str) -> bool {
        let Some((_, (w, id))) = self.inner.shared.sessions.remove(key) else {
            return false;
        };
        self.inner.workers[w]
            .send(Command::Leave { id })
            .await
            .is_ok()
    }

    /// Take the control lease away in a room (admin action). False if the room is not active.
    pub async fn revoke_lease(&self, room: &str) -> bool {
        let Some(w) = self.inner.rooms.get(room).map(|w| *w) else {
            return false;
        };
        let (reply, rx) = oneshot::channel();
        if self.inner.workers[w]
            .send(Command::RevokeLease {
                room: room.into(),
                reply,
            })
            .await
            .is_err()
        {
            return false;
        }
        rx.await.unwrap_or(false)
    }
}
